"""The one place random state is seeded."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch

__all__ = ["derive_seed", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so the same config and seed give the same numbers on CPU."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(seed: int, *keys: object) -> int:
    """A seed for the stream ``keys`` of run ``seed`` (e.g. ``derive_seed(seed, "rank", 3)``):
    the first 63 bits of the sha256 of their text, so distinct ``(seed, keys)`` give
    unrelated streams (``seed + rank`` would give rank 1 of seed 0 the stream of rank 0 of
    seed 1)."""
    text = ":".join(str(k) for k in (seed, *keys))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1
