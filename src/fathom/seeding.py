"""The one place random state is seeded."""

from __future__ import annotations

import hashlib
import operator
import random

import numpy as np
import torch

from fathom.errors import ConfigError
from fathom.yamlio import short

__all__ = ["derive_seed", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so the same config and seed give the same numbers on CPU.

    Raises:
        ConfigError: ``seed`` is not an integer with ``0 <= seed < 2**63`` (torch's generators
            hold 64 bits; fathom's seeds, as :func:`derive_seed`'s, are 63-bit).
    """
    try:
        value = operator.index(seed)  # ints and NumPy integers
    except TypeError:
        value = -1
    if isinstance(seed, bool) or not 0 <= value < 2**63:
        raise ConfigError(f"seed must be an integer with 0 <= seed < 2**63, got {short(seed)}")
    seed = value
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
