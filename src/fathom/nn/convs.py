"""Message-passing operators, by name, wrapping PyTorch Geometric.

Every factory has the signature ``factory(in_channels, out_channels, *, final, **options)``
and returns a module called as ``conv(x, edge_index)``. ``final`` is True for a conv that
produces the model's output (class logits), where attention heads are averaged rather
than concatenated. Adding an operator is one small function registered in :data:`CONVS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn
from torch_geometric.nn import GATConv, GCNConv

from fathom.errors import ConfigError
from fathom.registry import Registry

__all__ = ["CONVS", "ConvFactory", "build_conv"]

ConvFactory = Callable[..., nn.Module]
CONVS: Registry[ConvFactory] = Registry("conv")


@CONVS.register("gcn")
def gcn(in_channels: int, out_channels: int, *, final: bool = False, **_: Any) -> nn.Module:
    """Graph convolution (Kipf & Welling, ICLR 2017):
    :math:`X' = \\hat D^{-1/2} (A + I) \\hat D^{-1/2} X W`.
    """
    return GCNConv(in_channels, out_channels)


@CONVS.register("gat")
def gat(
    in_channels: int,
    out_channels: int,
    *,
    final: bool = False,
    heads: int = 8,
    out_heads: int = 1,
    attn_dropout: float = 0.6,
    **_: Any,
) -> nn.Module:
    """Graph attention (Veličković et al., ICLR 2018).

    A hidden layer concatenates ``heads`` heads of ``out_channels // heads`` channels each
    (so it outputs ``out_channels``); a final layer averages ``out_heads`` heads.
    """
    if final:
        return GATConv(in_channels, out_channels, heads=out_heads, concat=False,
                       dropout=attn_dropout)
    if out_channels % heads:
        raise ConfigError(
            f"model.hidden ({out_channels}) must be divisible by model.heads ({heads}) for gat"
        )
    return GATConv(in_channels, out_channels // heads, heads=heads, dropout=attn_dropout)


def build_conv(name: str, in_channels: int, out_channels: int, *, final: bool = False,
               **options: Any) -> nn.Module:
    """Instantiate the conv registered as ``name``."""
    return CONVS.get(name)(in_channels, out_channels, final=final, **options)
