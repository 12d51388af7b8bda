"""Tests of fathom.train.metrics against hand-computed values (ties included)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from fathom.errors import DataError
from fathom.train.metrics import (
    auc_and_ap,
    average_precision,
    confusion_matrix,
    hits_at_k,
    iou_per_class,
    mean_class_accuracy,
    mean_iou,
    overall_accuracy,
    roc_auc,
    segmentation_scores,
)


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


def _ap_by_thresholds(scores: list[float], labels: list[int]) -> float:
    """AP straight from its definition: one (precision, recall) per distinct threshold."""
    total, ap, last_recall = sum(labels), 0.0, 0.0
    for threshold in sorted(set(scores), reverse=True):
        chosen = [y for s, y in zip(scores, labels, strict=True) if s >= threshold]
        recall = sum(chosen) / total
        ap += (recall - last_recall) * sum(chosen) / len(chosen)
        last_recall = recall
    return ap


@pytest.mark.parametrize("distinct", [3, 10, 1000])
def test_auc_and_ap_from_one_sort_are_the_two_metrics(distinct: int) -> None:
    g = torch.Generator().manual_seed(distinct)
    scores = torch.randint(0, distinct, (300,), generator=g).float() / distinct
    labels = torch.randint(0, 2, (300,), generator=g)
    auc, ap = auc_and_ap(scores, labels)
    assert (auc, ap) == (roc_auc(scores, labels), average_precision(scores, labels))
    assert ap == pytest.approx(_ap_by_thresholds(scores.tolist(), labels.tolist()), abs=1e-12)


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
        lambda: auc_and_ap(_t([0.1, 0.2]), _t([1, 1])),
        lambda: hits_at_k(_t([0.1]), _t([0.2]), 0),
        lambda: hits_at_k(_t([]), _t([0.2]), 1),
    ],
)
def test_bad_input_raises_a_one_line_data_error(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError) as info:
        call()
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- segmentation


def _pairs(counts: dict[tuple[int, int], int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pred, target)`` with ``counts[(truth, prediction)]`` points of each pair, shuffled."""
    target = [t for (t, _), n in counts.items() for _ in range(n)]
    pred = [p for (_, p), n in counts.items() for _ in range(n)]
    order = torch.randperm(len(target), generator=torch.Generator().manual_seed(0))
    return torch.tensor(pred)[order], torch.tensor(target)[order]


# Truth (rows) x prediction (columns): [[3, 1, 0], [1, 2, 0], [0, 1, 2]].
THREE_CLASSES = {(0, 0): 3, (0, 1): 1, (1, 0): 1, (1, 1): 2, (2, 1): 1, (2, 2): 2}


def test_confusion_matrix_counts_truth_by_prediction() -> None:
    pred, target = _pairs(THREE_CLASSES)
    m = confusion_matrix(pred, target, 3)
    assert m.dtype == torch.long
    assert m.tolist() == [[3, 1, 0], [1, 2, 0], [0, 1, 2]]
    # matrices of parts add up to the matrix of the whole
    parts = confusion_matrix(pred[:4], target[:4], 3) + confusion_matrix(pred[4:], target[4:], 3)
    assert torch.equal(parts, m)
    assert confusion_matrix(torch.empty(0), torch.empty(0), 2).tolist() == [[0, 0], [0, 0]]


def test_segmentation_metrics_of_a_three_class_example_are_exact() -> None:
    m = confusion_matrix(*_pairs(THREE_CLASSES), 3)
    # TP = 3, 2, 2; truth sizes 4, 3, 3; predicted 4, 4, 2
    assert overall_accuracy(m) == 7 / 10
    # IoU_c = TP / (truth + predicted - TP): 3/5, 2/5, 2/3
    assert iou_per_class(m).tolist() == [3 / 5, 2 / 5, 2 / 3]
    assert mean_iou(m) == pytest.approx(5 / 9, rel=1e-12)
    # recalls 3/4, 2/3, 2/3
    assert mean_class_accuracy(m) == pytest.approx(25 / 36, rel=1e-12)
    scores = segmentation_scores(m)
    assert scores == {
        "oa": overall_accuracy(m),
        "miou": mean_iou(m),
        "macc": mean_class_accuracy(m),
    }


def test_absent_classes_are_left_out_of_the_means() -> None:
    # class 3: never true, never predicted -> no IoU, no recall; the means are unchanged
    m = confusion_matrix(*_pairs(THREE_CLASSES), 4)
    iou = iou_per_class(m)
    assert iou[:3].tolist() == [3 / 5, 2 / 5, 2 / 3] and math.isnan(iou[3].item())
    assert mean_iou(m) == pytest.approx(5 / 9, rel=1e-12)
    assert mean_class_accuracy(m) == pytest.approx(25 / 36, rel=1e-12)
    # one class-0 point predicted as 3: class 3 gets IoU 0 (a false positive) and counts in
    # the mIoU, but has no truth, so no recall in the mAcc
    m = confusion_matrix(*_pairs({**THREE_CLASSES, (0, 3): 1}), 4)
    assert overall_accuracy(m) == 7 / 11
    assert iou_per_class(m).tolist() == [3 / 6, 2 / 5, 2 / 3, 0.0]
    assert mean_iou(m) == pytest.approx(47 / 120, rel=1e-12)
    assert mean_class_accuracy(m) == pytest.approx(29 / 45, rel=1e-12)


def test_perfect_and_empty_segmentations() -> None:
    y = torch.tensor([0, 1, 1, 2, 2, 2])
    assert segmentation_scores(confusion_matrix(y, y, 5)) == {"oa": 1.0, "miou": 1.0, "macc": 1.0}
    empty = torch.zeros(3, 3, dtype=torch.long)
    assert all(math.isnan(v) for v in segmentation_scores(empty).values())
    assert iou_per_class(empty).isnan().all()


def test_confusion_matrix_rejects_bad_input() -> None:
    with pytest.raises(DataError, match="same size"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 2)
    with pytest.raises(DataError, match=r"target has class 2 outside \[0, 2\)"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 2]), 2)
    with pytest.raises(DataError, match=r"pred has class -1"):
        confusion_matrix(torch.tensor([-1, 1]), torch.tensor([0, 1]), 2)
