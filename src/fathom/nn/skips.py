"""Skip connections between blocks, by name.

A skip combines a block's new output ``h`` with the history of representations that
entered the blocks so far, ``history = [h_0, h_1, …, h_{l-1}]`` (``h_0`` is the input of the
first block): ``x_l = skip(h, history)``. A skip that needs matching widths is bypassed by
the block when the widths differ (the first conv of a model without an encoder).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from fathom.registry import Registry

__all__ = ["SKIPS", "NoSkip", "Residual", "build_skip"]


class NoSkip(nn.Module):
    """Plain stacking: :math:`x_l = h`."""

    needs_same_width = False

    def forward(self, h: Tensor, history: list[Tensor]) -> Tensor:
        return h


class Residual(nn.Module):
    """Identity shortcut (He et al. 2016; ResGCN in Li et al. 2019): :math:`x_l = h + x_{l-1}`."""

    needs_same_width = True

    def forward(self, h: Tensor, history: list[Tensor]) -> Tensor:
        return h + history[-1]


SKIPS: Registry[Callable[[], nn.Module]] = Registry("skip")
SKIPS.add("none", NoSkip)
SKIPS.add("res", Residual)


def build_skip(name: str) -> nn.Module:
    """A fresh skip module for ``name``."""
    return SKIPS.get(name)()
