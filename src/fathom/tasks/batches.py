"""Fixed evaluation batches of a dataset held as ``train`` / ``val`` / ``test`` lists."""

from __future__ import annotations

from typing import Any

from torch_geometric.data import Batch

__all__ = ["SPLITS", "split_batches"]

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
