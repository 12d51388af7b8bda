"""Stratified splits.

The node splitters (:func:`stratified_split`, :func:`per_class_split`) return three boolean
masks of shape ``[num_nodes]`` that are pairwise disjoint; nodes with a negative label
(unlabelled) are in no split. :func:`stratified_split_indices` splits a set of examples (e.g.
graphs) into train / test index lists. All randomness comes from a local generator seeded with
``seed``, so the global RNG is neither used nor disturbed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from fathom.errors import ConfigError, DataError

__all__ = ["per_class_split", "stratified_split", "stratified_split_indices"]


def stratified_split(
    y: Tensor, *, train_frac: float = 0.6, val_frac: float = 0.2, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Random per-class stratified split into train / validation / test masks.

    Within each class of :math:`n_c` labelled nodes, a random
    :math:`n^{train}_c = \lfloor f_{train} n_c + \tfrac12 \rfloor` nodes go to train,
    :math:`n^{val}_c = \lfloor f_{val} n_c + \tfrac12 \rfloor` to validation and the rest to test.
    Every class with at least 3 nodes gets at least one node in each split: :math:`n^{train}_c`
    is clamped to :math:`[1, n_c - 2]`, then :math:`n^{val}_c` to
    :math:`[1, n_c - 1 - n^{train}_c]`. A class with 1 node puts it in train; a class with 2
    nodes puts one in train and one in test.

    Args:
        y (Tensor): node labels; negative entries mark unlabelled nodes, which go to no split.
        train_frac (float, optional): fraction of each class used for training.
            (default: :obj:`0.6`)
        val_frac (float, optional): fraction of each class used for validation; test gets the
            remaining ``1 - train_frac - val_frac``. (default: :obj:`0.2`)
        seed (int, optional): seed of the local random generator. (default: :obj:`0`)

    Returns:
        (train_mask, val_mask, test_mask): disjoint boolean masks on ``y.device`` that together
        cover every labelled node.

    Shapes:
        - **input:** y :math:`(N)`
        - **output:** three masks :math:`(N)`
    """
    _check_fraction("train_frac", train_frac)
    _check_fraction("val_frac", val_frac)
    if train_frac + val_frac >= 1:
        raise ConfigError(
            f"train_frac + val_frac must be < 1 to leave a test split, got "
            f"{train_frac} + {val_frac} = {train_frac + val_frac}"
        )
    _check_seed(seed)
    labels = _check_labels(y)
    rank, counts = _random_rank_within_class(labels, seed)

    n = counts
    n_train = torch.floor(n.double() * train_frac + 0.5).long()
    n_val = torch.floor(n.double() * val_frac + 0.5).long()
    # Rounding can empty a split of a small class: clamp so that every class with >= 3 nodes is
    # seen in train, val and test (train in [1, n-2], then val in [1, n-1-train]).
    big = n >= 3
    one = torch.ones_like(n)
    big_train = torch.minimum(torch.maximum(n_train, one), n - 2)
    big_val = torch.minimum(torch.maximum(n_val, one), n - 1 - big_train)
    # Tiny classes: 1 node -> train; 2 nodes -> train + test.
    n_train = torch.where(big, big_train, torch.minimum(n, one))
    n_val = torch.where(big, big_val, torch.zeros_like(n))

    return _masks_from_rank(labels, rank, n_train, n_val, y.device)


def per_class_split(
    y: Tensor,
    *,
    train_per_class: int = 20,
    val_per_class: int = 30,
    test_size: int | None = None,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Fixed number of nodes per class for train / validation, as in Shchur et al.

    The split of `"Pitfalls of Graph Neural Network Evaluation"
    <https://arxiv.org/abs/1811.05868>`_ (Shchur et al., 2018): for every class, a random
    ``train_per_class`` nodes go to train and a random ``val_per_class`` other nodes to
    validation. Test is every remaining labelled node, or a uniformly random ``test_size`` of
    them (not stratified) when ``test_size`` is given.

    Args:
        y (Tensor): node labels; negative entries mark unlabelled nodes, which go to no split.
        train_per_class (int, optional): training nodes per class. (default: :obj:`20`)
        val_per_class (int, optional): validation nodes per class. (default: :obj:`30`)
        test_size (int, optional): number of test nodes; :obj:`None` uses all remaining labelled
            nodes. (default: :obj:`None`)
        seed (int, optional): seed of the local random generator. (default: :obj:`0`)

    Returns:
        (train_mask, val_mask, test_mask): disjoint boolean masks on ``y.device``.

    Raises:
        DataError: a class has fewer than ``train_per_class + val_per_class`` nodes, or fewer
            than ``test_size`` nodes remain for the test split.

    Shapes:
        - **input:** y :math:`(N)`
        - **output:** three masks :math:`(N)`
    """
    if isinstance(train_per_class, bool) or not isinstance(train_per_class, int):
        raise ConfigError(f"train_per_class must be an int, got {train_per_class!r}")
    if train_per_class < 1:
        raise ConfigError(f"train_per_class must be >= 1, got {train_per_class}")
    if isinstance(val_per_class, bool) or not isinstance(val_per_class, int):
        raise ConfigError(f"val_per_class must be an int, got {val_per_class!r}")
    if val_per_class < 0:
        raise ConfigError(f"val_per_class must be >= 0, got {val_per_class}")
    if test_size is not None and (
        isinstance(test_size, bool) or not isinstance(test_size, int) or test_size < 1
    ):
        raise ConfigError(f"test_size must be None or an int >= 1, got {test_size!r}")
    _check_seed(seed)
    labels = _check_labels(y)
    rank, counts = _random_rank_within_class(labels, seed)

    need = train_per_class + val_per_class
    short = ((counts > 0) & (counts < need)).nonzero().flatten()
    if short.numel() > 0:
        c = int(short[0])
        raise DataError(
            f"y class {c} has {int(counts[c])} nodes, fewer than train_per_class + "
            f"val_per_class = {need}"
            + (f" ({short.numel()} classes too small)" if short.numel() > 1 else "")
        )
    n_train = torch.full_like(counts, train_per_class)
    n_val = torch.full_like(counts, val_per_class)
    train, val, test = _masks_from_rank(labels, rank, n_train, n_val, y.device)

    if test_size is not None:
        rest = test.nonzero().flatten()
        if rest.numel() < test_size:
            raise DataError(
                f"test_size={test_size} but only {rest.numel()} labelled nodes remain after "
                f"train and val"
            )
        gen = torch.Generator().manual_seed(seed + 1)  # independent of the within-class ranks
        keep = rest[torch.randperm(rest.numel(), generator=gen)[:test_size].to(rest.device)]
        test = torch.zeros_like(test)
        test[keep] = True
    return train, val, test


def _check_fraction(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{name} must be a number in (0, 1), got {value!r}")
    if not 0 < value < 1:
        raise ConfigError(f"{name} must be in (0, 1), got {value}")


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int, got {seed!r}")


def _check_labels(y: Tensor) -> Tensor:
    if not isinstance(y, Tensor):
        raise DataError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() != 1:
        raise DataError(f"y must be 1-D [num_nodes], got shape {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise DataError(f"y must have an integer dtype, got {y.dtype}")
    labels = y.detach().to("cpu", torch.long)
    if not bool((labels >= 0).any()):
        raise DataError(f"y has no labelled (non-negative) entries among {labels.numel()} nodes")
    top = int(labels.max())
    if top >= labels.numel():
        # Per-class counts are sized by max(y) + 1: refuse a label no class count could need.
        raise DataError(
            f"y has label {top}, so {top + 1} classes, among only {labels.numel()} nodes; "
            "labels must be 0..C-1"
        )
    return labels


def _random_rank_within_class(labels: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    """Random rank of each labelled node within its class (-1 for unlabelled) and class sizes.

    Vectorised: a random permutation followed by a *stable* sort by label puts each class in
    a contiguous block whose internal order is uniformly random.
    """
    gen = torch.Generator().manual_seed(seed)
    num_nodes = labels.numel()
    perm = torch.randperm(num_nodes, generator=gen)
    _, order = torch.sort(labels[perm], stable=True)
    nodes = perm[order]  # grouped by label, random within a label
    sorted_labels = labels[nodes]
    labelled = labels >= 0
    counts = torch.bincount(labels[labelled])
    # Position of each node in `nodes` minus the start of its class block = rank within class.
    first = int((sorted_labels < 0).sum())  # unlabelled nodes sort first
    starts = first + torch.cumsum(counts, 0) - counts
    pos = torch.empty(num_nodes, dtype=torch.long)
    pos[nodes] = torch.arange(num_nodes)
    rank = torch.full((num_nodes,), -1, dtype=torch.long)
    rank[labelled] = pos[labelled] - starts[labels[labelled]]
    return rank, counts


def _masks_from_rank(
    labels: Tensor, rank: Tensor, n_train: Tensor, n_val: Tensor, device: torch.device
) -> tuple[Tensor, Tensor, Tensor]:
    labelled = labels >= 0
    cls = labels.clamp(min=0)
    train = labelled & (rank < n_train[cls])
    val = labelled & ~train & (rank < (n_train + n_val)[cls])
    test = labelled & ~train & ~val
    return train.to(device), val.to(device), test.to(device)


def stratified_split_indices(
    y: Tensor, *, train_fraction: float = 0.8, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Shuffled split of examples into train / test, stratified by label.

    Like the official ``sklearn.model_selection.train_test_split(..., train_size=0.8,
    stratify=y)``: ``floor(train_fraction * N)`` examples go to train, and each label's share of
    the test set matches its share of the data to within one example (systematic sampling over
    the examples sorted by label in random order).

    Returns:
        (train_index, test_index): int64 example ids, each in random order.

    Shapes:
        - **input:** y :math:`(N)`
        - **output:** :math:`(N_{train})`, :math:`(N - N_{train})`
    """
    if not 0 < train_fraction < 1:
        raise ConfigError(f"train_fraction must be in (0, 1), got {train_fraction}")
    labels = y.detach().cpu().numpy()
    total = labels.size
    n_train = math.floor(train_fraction * total)
    n_test = total - n_train
    if n_train < 1 or n_test < 1:
        raise ConfigError(
            f"train_fraction {train_fraction} leaves an empty split of {total} examples"
        )
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(total)
    order = shuffled[np.argsort(labels[shuffled], kind="stable")]
    step = total / n_test
    pos = np.floor(np.arange(n_test) * step + rng.uniform(0, step)).astype(np.int64)
    is_test = np.zeros(total, dtype=bool)
    is_test[order[np.minimum(pos, total - 1)]] = True
    test = rng.permutation(np.flatnonzero(is_test))
    train = rng.permutation(np.flatnonzero(~is_test))
    return torch.from_numpy(train), torch.from_numpy(test)
