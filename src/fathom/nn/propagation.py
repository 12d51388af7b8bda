r"""Propagation matrices other than GCN's, and the GCN layer of DropEdge's code that uses them.

A GCN layer multiplies its transformed input by a normalised adjacency matrix
:math:`\hat{\mathbf{P}}`. Kipf & Welling's symmetric normalisation with self-loops is the
usual one (:func:`~fathom.nn.adjacency.gcn_adjacency`); the code of `"DropEdge: Towards Deep
Graph Convolutional Networks on Node Classification" <https://arxiv.org/abs/1907.10903>`_
(Rong et al., ICLR 2020; DropEdge/DropEdge, ``src/normalization.py``) picks one per model and
dataset with ``--normalization``. The ones of :data:`ADJ_NORMS`, with :math:`\tilde{\mathbf{A}}
= \mathbf{A} + \mathbf{I}` and :math:`\tilde{\mathbf{D}}` its degree matrix:

===============  ================================================================  ===============
name             matrix                                                            DropEdge's name
===============  ================================================================  ===============
``sym``          :math:`\tilde{D}^{-1/2} \tilde{A} \tilde{D}^{-1/2}` (Kipf & Welling)  AugNormAdj
``rw``           :math:`\tilde{D}^{-1} \tilde{A}` (random walk with self-loops)      AugRWalk
``first-order``  :math:`I + D^{-1/2} A D^{-1/2}` (the first-order ChebNet filter)    FirstOrderGCN
``sym+i``        :math:`I + \tilde{D}^{-1/2} \tilde{A} \tilde{D}^{-1/2}`             BingGeNormAdj
===============  ================================================================  ===============

Row :math:`i` of every matrix holds node :math:`i`'s incoming edges (PyG's ``adj_t``
convention: ``edge_index[1]`` aggregates from ``edge_index[0]``), and degrees are counted
over those rows, as DropEdge's code counts the row sums of the (possibly asymmetric, after
DropEdge) sampled adjacency. Self-loops are added only where a node has none (PyG's
``add_remaining_self_loops``). ``sym`` *is* :func:`~fathom.nn.adjacency.gcn_adjacency`
(same matrix, same cache); the others are cached in the same cache, per ``edge_index``
object.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.utils import add_remaining_self_loops

from fathom.nn.adjacency import (
    cached_per_graph,
    gcn_adjacency,
    normalized_adjacency,
    propagate,
)
from fathom.registry import Registry

__all__ = [
    "ADJ_NORMS",
    "DropEdgeGCNConv",
    "propagation_edges",
    "propagation_matrix",
]

EdgeWeights = Callable[[Tensor, int, torch.dtype], tuple[Tensor, Tensor, Tensor]]
"""``(edge_index, num_nodes, dtype) -> (rows, cols, values)`` of a propagation matrix."""

ADJ_NORMS: Registry[EdgeWeights] = Registry("adjacency normalisation")


def _degree_inv(rows: Tensor, weights: Tensor, num_nodes: int, power: float) -> Tensor:
    """``deg ** power`` per node, with ``deg`` the sum of ``weights`` over ``rows`` (0 where
    a node has no edge: an isolated node contributes nothing rather than inf)."""
    deg = torch.zeros(num_nodes, dtype=weights.dtype, device=weights.device)
    deg.scatter_add_(0, rows, weights)
    out = deg.pow(power)
    return out.masked_fill(deg == 0, 0.0)


def _with_self_loops(
    edge_index: Tensor, num_nodes: int, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    weights = torch.ones(edge_index.size(1), dtype=dtype, device=edge_index.device)
    ei, w = add_remaining_self_loops(edge_index, weights, 1.0, num_nodes)
    assert w is not None
    return ei, w


def _identity(num_nodes: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, ...]:
    idx = torch.arange(num_nodes, device=device)
    return idx, idx, torch.ones(num_nodes, dtype=dtype, device=device)


def _coo(adj: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    coo = adj.to_sparse_coo().coalesce()
    return coo.indices()[0], coo.indices()[1], coo.values()


@ADJ_NORMS.register("sym")
def _sym(edge_index: Tensor, num_nodes: int, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """:math:`\\tilde D^{-1/2} (A + I) \\tilde D^{-1/2}` (AugNormAdj)."""
    return _coo(normalized_adjacency(edge_index, num_nodes, dtype=dtype))


@ADJ_NORMS.register("rw")
def _rw(edge_index: Tensor, num_nodes: int, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """:math:`\\tilde D^{-1} (A + I)` (AugRWalk): each node averages itself and its
    in-neighbours."""
    ei, w = _with_self_loops(edge_index, num_nodes, dtype)
    rows, cols = ei[1], ei[0]
    return rows, cols, _degree_inv(rows, w, num_nodes, -1.0)[rows] * w


@ADJ_NORMS.register("first-order")
def _first_order(
    edge_index: Tensor, num_nodes: int, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor]:
    """:math:`I + D^{-1/2} A D^{-1/2}` (FirstOrderGCN), degrees without self-loops."""
    rows, cols = edge_index[1], edge_index[0]
    w = torch.ones(rows.numel(), dtype=dtype, device=edge_index.device)
    dinv = _degree_inv(rows, w, num_nodes, -0.5)
    i_rows, i_cols, i_vals = _identity(num_nodes, dtype, edge_index.device)
    return (
        torch.cat([rows, i_rows]),
        torch.cat([cols, i_cols]),
        torch.cat([dinv[rows] * w * dinv[cols], i_vals]),
    )


@ADJ_NORMS.register("sym+i")
def _sym_plus_identity(
    edge_index: Tensor, num_nodes: int, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor]:
    """:math:`I + \\tilde D^{-1/2} (A + I) \\tilde D^{-1/2}` (BingGeNormAdj)."""
    rows, cols, vals = _sym(edge_index, num_nodes, dtype)
    i_rows, i_cols, i_vals = _identity(num_nodes, dtype, edge_index.device)
    return torch.cat([rows, i_rows]), torch.cat([cols, i_cols]), torch.cat([vals, i_vals])


def propagation_edges(
    edge_index: Tensor, num_nodes: int, kind: str = "sym", *, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor, Tensor]:
    """``(rows, cols, values)`` of the propagation matrix ``kind`` (a name of
    :data:`ADJ_NORMS`; an unknown one raises a ConfigError listing the choices): row ``i``
    aggregates node ``i``'s in-edges. Entries may repeat (summed when the matrix is built).

    Shapes:
        edge_index: ``[2, num_edges]`` (source, target) -> three ``[nnz]`` tensors.
    """
    return ADJ_NORMS.get(kind)(edge_index, num_nodes, dtype)


def _csr(rows: Tensor, cols: Tensor, vals: Tensor, num_nodes: int) -> Tensor:
    adj = torch.sparse_coo_tensor(
        torch.stack([rows, cols]), vals, (num_nodes, num_nodes), check_invariants=False
    ).coalesce()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return adj.to_sparse_csr()


def propagation_matrix(
    edge_index: Tensor,
    num_nodes: int,
    kind: str = "sym",
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> Tensor:
    """The propagation matrix ``kind`` of :data:`ADJ_NORMS` as a ``[num_nodes, num_nodes]``
    sparse CSR matrix, cached per ``edge_index`` object (and its in-place version), as
    :func:`~fathom.nn.adjacency.gcn_adjacency` caches; ``sym`` is that function's matrix.

    Shapes:
        edge_index: ``[2, num_edges]`` -> ``[num_nodes, num_nodes]``.
    """
    if kind == "sym":
        return gcn_adjacency(edge_index, num_nodes, dtype=dtype, device=device)
    build = ADJ_NORMS.get(kind)  # an unknown name fails before the cache is touched
    device = device if device is not None else edge_index.device
    key = ("propagation", kind, num_nodes, dtype, str(device))
    return cached_per_graph(
        edge_index, key, lambda: _csr(*build(edge_index, num_nodes, dtype), num_nodes).to(device)
    )


class DropEdgeGCNConv(MessagePassing):
    r"""The graph convolution of DropEdge's code (``GraphConvolutionBS`` in DropEdge/DropEdge,
    ``src/layers.py``, without its batch norm, which fathom applies as the block's norm):

    .. math::
        \mathbf{X}' = \hat{\mathbf{P}} \mathbf{X} \mathbf{W}
        + \mathbf{X} \mathbf{W}_{\mathrm{self}} + \mathbf{b}

    with :math:`\hat{\mathbf{P}}` the propagation matrix ``adj_norm`` (:data:`ADJ_NORMS`) and,
    with ``root_weight`` (DropEdge's ``--withloop``, "self feature modeling"), a separate
    weight :math:`\mathbf{W}_{\mathrm{self}}` on each node's own features, so a node's own
    representation is not only mixed with its neighbours' through :math:`\hat{\mathbf{P}}`.
    With ``root_weight=False`` and ``adj_norm="sym"`` it computes what
    :class:`~fathom.nn.convs.CachedGCNConv` computes.

    Weights are initialised as PyG's ``GCNConv`` initialises them (Glorot, zero bias), not
    as DropEdge's code does (uniform in :math:`\pm 1/\sqrt{\text{out}}`, bias too).

    Args:
        in_channels: size of each input sample.
        out_channels: size of each output sample.
        root_weight: add the self-feature term :math:`\mathbf{X} \mathbf{W}_{\mathrm{self}}`.
        adj_norm: a name of :data:`ADJ_NORMS`. (default: ``"sym"``)
        bias: learn the additive bias :math:`\mathbf{b}`.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]``
        -> ``[num_nodes, out_channels]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        root_weight: bool = False,
        adj_norm: str = "sym",
        bias: bool = True,
    ) -> None:
        super().__init__(aggr="add")
        ADJ_NORMS.get(adj_norm)  # refuse an unknown name at construction
        self.in_channels, self.out_channels = in_channels, out_channels
        self.adj_norm = adj_norm
        self.lin = Linear(in_channels, out_channels, bias=False, weight_initializer="glorot")
        self.lin_root = (
            Linear(in_channels, out_channels, bias=False, weight_initializer="glorot")
            if root_weight
            else None
        )
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin.reset_parameters()
        if self.lin_root is not None:
            self.lin_root.reset_parameters()
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:  # type: ignore[override]
        adj = propagation_matrix(
            edge_index, x.size(0), self.adj_norm, dtype=x.dtype, device=x.device
        )
        out = propagate(adj, self.lin(x))
        if self.lin_root is not None:
            out = out + self.lin_root(x)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, adj_norm={self.adj_norm!r}, "
            f"root_weight={self.lin_root is not None}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
