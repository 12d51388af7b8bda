"""Batches of a dataset held as ``train`` / ``val`` / ``test`` lists of graphs: the shuffled
training batches of an epoch and the fixed evaluation batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

__all__ = ["SPLITS", "shuffled_batches", "split_batches"]

SPLITS = ("train", "val", "test")


def split_batches(data: Any, batch_size: int) -> dict[str, list[Batch]]:
    """Each split's items (``data.train``, ``data.val``, ``data.test``: lists of ``Data``)
    collated in order into batches of ``batch_size``, so evaluation collates them once."""
    return {
        split: [
            Batch.from_data_list(items[i : i + batch_size])
            for i in range(0, len(items), batch_size)
        ]
        for split in SPLITS
        for items in [getattr(data, split)]
    }


def shuffled_batches(
    items: Sequence[Data],
    batch_size: int,
    generator: torch.Generator,
    weight: Callable[[Batch], float],
) -> Iterator[tuple[Batch, float]]:
    """One epoch over ``items`` in a new random order (PyG's ``DataLoader`` shuffled by
    ``generator``, so the order is reproducible and independent of the global RNG): each
    batch with its ``weight`` in the epoch's mean loss."""
    loader = DataLoader(items, batch_size=batch_size, shuffle=True, generator=generator)
    for batch in loader:
        yield batch, weight(batch)
