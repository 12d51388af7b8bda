"""Tests of fathom.train.metrics against hand-computed values (ties included)."""

from __future__ import annotations

import itertools

import pytest
import torch

from fathom.errors import DataError
from fathom.train.metrics import average_precision, hits_at_k, roc_auc


def _t(values: list[float]) -> torch.Tensor:
    return torch.tensor(values)


def test_roc_auc_without_ties() -> None:
    # sklearn's docstring example: 3 of the 4 positive/negative pairs are ordered right
    assert roc_auc(_t([0.1, 0.4, 0.35, 0.8]), _t([0, 0, 1, 1])) == 0.75


def test_roc_auc_counts_a_tied_pair_as_one_half() -> None:
    # pairs (pos, neg): (0.5, 0.5) -> 1/2, (0.5, 0.2) -> 1, (0.9, 0.5) -> 1, (0.9, 0.2) -> 1
    assert roc_auc(_t([0.5, 0.5, 0.2, 0.9]), _t([1, 0, 0, 1])) == 3.5 / 4
    assert roc_auc(_t([0.3, 0.3, 0.3, 0.3]), _t([1, 0, 0, 1])) == 0.5
    assert roc_auc(_t([0.0, 1.0]), _t([1, 0])) == 0.0


def test_roc_auc_equals_the_pairwise_probability_on_random_tied_scores() -> None:
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (60,), generator=g).float()  # many ties
    labels = torch.randint(0, 2, (60,), generator=g)
    pos, neg = scores[labels == 1].tolist(), scores[labels == 0].tolist()
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    assert roc_auc(scores, labels) == pytest.approx(wins / (len(pos) * len(neg)), abs=1e-12)


def test_average_precision_without_ties() -> None:
    # sklearn's docstring example: thresholds 0.8 (P=1, R=1/2), 0.4 (P=1/2, R=1/2),
    # 0.35 (P=2/3, R=1), 0.1 -> AP = 1/2 * 1 + 1/2 * 2/3
    assert average_precision(_t([0.1, 0.4, 0.35, 0.8]), _t([0, 0, 1, 1])) == pytest.approx(5 / 6)


def test_average_precision_puts_tied_scores_at_one_threshold() -> None:
    # 0.9: P=1, R=1/2; 0.5 (one pos, one neg tied): P=2/3, R=1 -> 1/2 + 1/3
    assert average_precision(_t([0.5, 0.5, 0.2, 0.9]), _t([1, 0, 0, 1])) == pytest.approx(5 / 6)
    # a tie at the top: threshold 1 -> P=1/2, R=1/2; threshold 0 -> P=2/3, R=1.
    # Breaking the tie positive-first would give 1/2 + 1/3 instead of 1/4 + 1/3.
    assert average_precision(_t([1.0, 1.0, 0.0]), _t([0, 1, 1])) == pytest.approx(7 / 12)
    # everything tied: one threshold, precision = prevalence
    assert average_precision(_t([2.0, 2.0, 2.0, 2.0]), _t([1, 0, 0, 0])) == 0.25


def test_average_precision_of_a_perfect_ranking_is_one() -> None:
    assert average_precision(_t([3.0, 2.0, 1.0, 0.0]), _t([1, 1, 0, 0])) == 1.0


def test_hits_at_k_counts_positives_strictly_above_the_kth_negative() -> None:
    pos, neg = _t([0.9, 0.5, 0.3]), _t([0.6, 0.5, 0.1])
    assert hits_at_k(pos, neg, 1) == pytest.approx(1 / 3)  # above 0.6
    assert hits_at_k(pos, neg, 2) == pytest.approx(1 / 3)  # above 0.5: the tied 0.5 misses
    assert hits_at_k(pos, neg, 3) == 1.0  # above 0.1
    assert hits_at_k(pos, neg, 4) == 1.0  # fewer negatives than K: OGB counts all as hits


@pytest.mark.parametrize(
    "call",
    [
        lambda: roc_auc(_t([0.1, 0.2]), _t([1, 1])),
        lambda: average_precision(_t([0.1, 0.2]), _t([0, 0])),
        lambda: roc_auc(_t([0.1, 0.2, 0.3]), _t([0, 1])),
        lambda: hits_at_k(_t([0.1]), _t([0.2]), 0),
        lambda: hits_at_k(_t([]), _t([0.2]), 1),
    ],
)
def test_bad_input_raises_a_one_line_data_error(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError) as info:
        call()
    assert "\n" not in str(info.value)
