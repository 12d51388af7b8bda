"""Feature normalisations applied after each hidden conv, by name.

Each factory takes the number of channels and returns a module called as ``norm(x)``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from fathom.registry import Registry

__all__ = ["NORMS", "build_norm"]

NORMS: Registry[Callable[[int], nn.Module]] = Registry("norm")
NORMS.add("none", lambda channels: nn.Identity())
# BatchNorm over nodes (Ioffe & Szegedy 2015), as the Bag-of-Tricks benchmark uses it.
NORMS.add("batch", nn.BatchNorm1d)
NORMS.add("layer", nn.LayerNorm)


def build_norm(name: str, channels: int) -> nn.Module:
    """A fresh normalisation module for ``name`` over ``channels`` features."""
    return NORMS.get(name)(channels)
