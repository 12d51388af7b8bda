"""Tests of fathom.data.splits."""

from __future__ import annotations

import pytest
import torch

from fathom.data.splits import per_class_split, stratified_split
from fathom.errors import ConfigError, DataError


def _counts(y: torch.Tensor, mask: torch.Tensor, num_classes: int) -> list[int]:
    return torch.bincount(y[mask], minlength=num_classes).tolist()


# Classes of 10, 5 and 3 nodes, then two unlabelled nodes, interleaved so that class blocks
# are not contiguous in node order.
Y = torch.tensor([0, 1, 2, 0, 0, 1, -1, 0, 2, 0, 1, 0, 0, 2, 1, -1, 0, 1, 0, 0])


def test_stratified_split_exact_per_class_counts() -> None:
    train, val, test = stratified_split(Y, train_frac=0.6, val_frac=0.2, seed=0)
    # 10 -> 6/2/2; 5 -> 3/1/1; 3 -> round(1.8)=2 train clamped to n-2 = 1, so 1/1/1.
    assert _counts(Y, train, 3) == [6, 3, 1]
    assert _counts(Y, val, 3) == [2, 1, 1]
    assert _counts(Y, test, 3) == [2, 1, 1]


def test_stratified_split_disjoint_covering_labelled_only() -> None:
    train, val, test = stratified_split(Y, seed=3)
    for mask in (train, val, test):
        assert mask.dtype == torch.bool
        assert mask.shape == Y.shape
    total = train.long() + val.long() + test.long()
    assert torch.equal(total, (Y >= 0).long())  # disjoint, covering, unlabelled in none


def test_stratified_split_tiny_classes() -> None:
    y = torch.tensor([0, 0, 0, 0, 0, 1, 2, 2])
    train, val, test = stratified_split(y, seed=0)
    assert _counts(y, train, 3) == [3, 1, 1]  # 1-node class -> train
    assert _counts(y, val, 3) == [1, 0, 0]
    assert _counts(y, test, 3) == [1, 0, 1]  # 2-node class -> train + test


def test_stratified_split_every_class_of_three_in_each_split() -> None:
    y = torch.arange(3).repeat_interleave(3)
    for masks in (
        stratified_split(y, train_frac=0.9, val_frac=0.05),
        stratified_split(y, train_frac=0.05, val_frac=0.05),
    ):
        for mask in masks:
            assert _counts(y, mask, 3) == [1, 1, 1]


def test_stratified_split_deterministic_and_local_rng() -> None:
    y = torch.arange(4).repeat(50)
    state = torch.get_rng_state()
    a = stratified_split(y, seed=7)
    b = stratified_split(y, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is not touched
    c = stratified_split(y, seed=8)
    assert all(torch.equal(m, n) for m, n in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    assert _counts(y, a[0], 4) == _counts(y, c[0], 4) == [30] * 4


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (dict(train_frac=0.0), "train_frac"),
        (dict(train_frac=1.0), "train_frac"),
        (dict(val_frac=-0.1), "val_frac"),
        (dict(val_frac=float("nan")), "val_frac"),
        (dict(train_frac=0.7, val_frac=0.3), "train_frac + val_frac"),
        (dict(seed=-1), "seed"),
    ],
)
def test_stratified_split_bad_arguments(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("+", r"\+")):
        stratified_split(Y, **kwargs)


@pytest.mark.parametrize(
    ("y", "words"),
    [
        (torch.tensor([0.0, 1.0, 1.0]), "integer dtype"),
        (torch.zeros(3, 2, dtype=torch.long), "1-D"),
        (torch.full((4,), -1), "no labelled"),
    ],
)
def test_split_bad_labels(y: torch.Tensor, words: str) -> None:
    with pytest.raises(DataError, match=words):
        stratified_split(y)
    with pytest.raises(DataError, match=words):
        per_class_split(y)


def test_per_class_split_counts() -> None:
    y = torch.tensor([-1] + [0] * 10 + [1] * 8 + [2] * 6)
    train, val, test = per_class_split(y, train_per_class=3, val_per_class=2, seed=1)
    assert _counts(y, train, 3) == [3, 3, 3]
    assert _counts(y, val, 3) == [2, 2, 2]
    assert _counts(y, test, 3) == [5, 3, 1]
    assert not (train[0] or val[0] or test[0])
    total = train.long() + val.long() + test.long()
    assert torch.equal(total, (y >= 0).long())


def test_per_class_split_test_size_and_determinism() -> None:
    y = torch.arange(3).repeat(40)
    a = per_class_split(y, train_per_class=5, val_per_class=5, test_size=17, seed=2)
    b = per_class_split(y, train_per_class=5, val_per_class=5, test_size=17, seed=2)
    assert [int(m.sum()) for m in a] == [15, 15, 17]
    assert not bool((a[2] & (a[0] | a[1])).any())
    assert all(torch.equal(m, n) for m, n in zip(a, b, strict=True))


def test_per_class_split_class_too_small_names_class_and_count() -> None:
    y = torch.tensor([0] * 60 + [1] * 12 + [2] * 55)
    with pytest.raises(DataError, match=r"class 1 has 12 nodes.*= 50") as info:
        per_class_split(y)
    assert "\n" not in str(info.value)


def test_per_class_split_test_size_too_large() -> None:
    y = torch.arange(2).repeat(10)
    with pytest.raises(DataError, match="test_size=17 but only 16 labelled nodes remain"):
        per_class_split(y, train_per_class=1, val_per_class=1, test_size=17)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (dict(train_per_class=0), "train_per_class"),
        (dict(val_per_class=-1), "val_per_class"),
        (dict(test_size=0), "test_size"),
        (dict(seed=-3), "seed"),
    ],
)
def test_per_class_split_bad_arguments(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        per_class_split(torch.arange(2).repeat(100), **kwargs)
