"""Message-passing operators, by name, wrapping PyTorch Geometric.

Every factory has the signature ``factory(in_channels, out_channels, *, final, **options)``
and returns a module called as ``conv(x, edge_index)``. ``final`` is True for a conv that
produces the model's output (class logits), where attention heads are averaged rather
than concatenated. Adding an operator is one small function registered in :data:`CONVS`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from fathom.errors import ConfigError
from fathom.registry import Registry

__all__ = ["CONVS", "CachedGCNConv", "ConvFactory", "build_conv", "normalized_adjacency"]

ConvFactory = Callable[..., nn.Module]
CONVS: Registry[ConvFactory] = Registry("conv")


class CachedGCNConv(GCNConv):
    """:class:`~torch_geometric.nn.GCNConv` that normalises the adjacency once per graph.

    The first call with a given ``edge_index`` tensor builds
    :math:`\\hat D^{-1/2} (A + I) \\hat D^{-1/2}` as a sparse CSR matrix and keeps it while
    the same tensor (same object, unmodified) is passed again; a new ``edge_index`` (another
    graph, a DropEdge sample) rebuilds it. Sparse-dense products on CSR are several times
    faster on CPU than gather/scatter message passing (benchmarked: ~3x for forward +
    backward on a 1000-node, 10K-edge graph), and deep models pay the normalisation once,
    not once per layer. Calls with ``edge_weight`` or a sparse adjacency fall through to
    :class:`GCNConv` unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__(in_channels, out_channels, **kwargs)
        self._graph: Tensor | None = None  # holding it keeps its address from being reused
        self._key: tuple[int, int] = (-1, -1)
        self._adj: Tensor | None = None

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,  # type: ignore[override]
        edge_weight: Tensor | None = None,
    ) -> Tensor:
        if edge_weight is not None or edge_index.layout != torch.strided:
            return super().forward(x, edge_index, edge_weight)
        key = (edge_index._version, x.size(0))
        if self._graph is not edge_index or self._key != key or self._adj is None:
            self._graph, self._key = edge_index, key
            self._adj = normalized_adjacency(
                edge_index, x.size(0), dtype=x.dtype, add_self_loops=self.add_self_loops
            )
        if self._adj.device != x.device:
            self._adj = self._adj.to(x.device)
        # normalize=False: the cached matrix is already normalised
        normalize, self.normalize = self.normalize, False
        try:
            return super().forward(x, self._adj)
        finally:
            self.normalize = normalize


def normalized_adjacency(
    edge_index: Tensor,
    num_nodes: int,
    *,
    dtype: torch.dtype = torch.float32,
    add_self_loops: bool = True,
) -> Tensor:
    """:math:`\\hat D^{-1/2} (A + I) \\hat D^{-1/2}` as a ``[num_nodes, num_nodes]`` sparse CSR
    matrix whose row ``i`` holds node ``i``'s incoming edges (PyG's ``adj_t`` convention).

    Shapes:
        edge_index: ``[2, num_edges]`` (source, target) -> ``[num_nodes, num_nodes]``.
    """
    ei, w = gcn_norm(edge_index, None, num_nodes, add_self_loops=add_self_loops, dtype=dtype)
    adj = torch.sparse_coo_tensor(
        ei.flip(0), w, (num_nodes, num_nodes), check_invariants=False
    ).coalesce()
    with warnings.catch_warnings():
        # torch flags CSR support as beta; the conversion and spmm used here are stable
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return adj.to_sparse_csr()


@CONVS.register("gcn")
def gcn(in_channels: int, out_channels: int, *, final: bool = False, **_: Any) -> nn.Module:
    """Graph convolution (Kipf & Welling, ICLR 2017):
    :math:`X' = \\hat D^{-1/2} (A + I) \\hat D^{-1/2} X W + b`.
    """
    return CachedGCNConv(in_channels, out_channels)


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
        return GATConv(
            in_channels, out_channels, heads=out_heads, concat=False, dropout=attn_dropout
        )
    if out_channels % heads:
        raise ConfigError(
            f"model.hidden ({out_channels}) must be divisible by model.heads ({heads}) for gat"
        )
    return GATConv(in_channels, out_channels // heads, heads=heads, dropout=attn_dropout)


def build_conv(
    name: str, in_channels: int, out_channels: int, *, final: bool = False, **options: Any
) -> nn.Module:
    """Instantiate the conv registered as ``name``."""
    return CONVS.get(name)(in_channels, out_channels, final=final, **options)
