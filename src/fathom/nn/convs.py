"""Message-passing operators, by name, wrapping PyTorch Geometric.

Every factory in :data:`CONVS` is called as::

    factory(in_channels, out_channels, *, final=False, layer=1, aggr=None, heads=8,
            out_heads=1, attn_dropout=0.6, alpha=0.1, theta=0.5, cheb_k=2, msg_norm=False,
            root_weight=False, adj_norm="sym")

and accepts all of these keywords, ignoring those it does not use (each factory names the
ones it uses and swallows the rest in ``**_``), so a builder can pass one option dict to
any conv. ``final`` is True for a conv that produces the model's output (class logits),
where attention heads are averaged rather than concatenated; ``layer`` is the 1-based index
of the block (GCNII's identity-mapping strength depends on it); ``aggr`` picks the
neighbourhood aggregation where the conv allows a choice (see :data:`AGGREGATIONS` and
:func:`check_aggr`), ``None`` meaning the conv's default.

The returned module is called as ``conv(x, edge_index)``, except for a module whose class
has ``needs_x0 = True`` (GCNII), called as ``conv(x, x_0, edge_index)`` with ``x_0`` the
initial representation; a module without the attribute does not need ``x_0``.

Adding an operator is one small function registered in :data:`CONVS` plus its entry in
:data:`AGGREGATIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import (
    ChebConv,
    GATConv,
    GatedGraphConv,
    GATv2Conv,
    GCN2Conv,
    GCNConv,
    GENConv,
    GINConv,
    SAGEConv,
    TransformerConv,
)
from torch_geometric.nn.aggr import SoftmaxAggregation
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from fathom.errors import ConfigError
from fathom.nn.adjacency import gcn_adjacency, gcn_edge_weights, propagate, propagate_initial
from fathom.nn.aggregations import BlockedSoftmaxAggregation, gather_aggregate
from fathom.nn.propagation import DropEdgeGCNConv
from fathom.registry import Registry

__all__ = [
    "AGGREGATIONS",
    "CONVS",
    "BlockedGENConv",
    "BlockedGINConv",
    "BlockedSAGEConv",
    "CachedGCN2Conv",
    "CachedGCNConv",
    "ConvFactory",
    "GraphCachedGCNConv",
    "LinearConv",
    "build_conv",
    "check_aggr",
]

ConvFactory = Callable[..., nn.Module]
CONVS: Registry[ConvFactory] = Registry("conv")

AGGREGATIONS: dict[str, tuple[str, ...]] = {
    # fixed: the operator is defined by its (weighted or attention-weighted) sum
    "gcn": ("sum",),
    "gat": ("sum",),
    "gatv2": ("sum",),
    "transformer": ("sum",),
    "cheb": ("sum",),
    "gcn2": ("sum",),
    "gcn2-star": ("sum",),
    "gcn2-star-code": ("sum",),
    "mlp": (),  # ignores the graph
    # selectable
    "sage": ("mean", "max", "sum", "min"),
    "gin": ("sum", "mean", "max", "min"),
    "gin0": ("sum", "mean", "max", "min"),
    "gated": ("sum", "mean", "max", "min"),
    "gen": ("softmax", "powermean", "sum", "mean", "max", "min"),
}
"""Aggregations each conv allows, its default first; a conv with at most one has a fixed
aggregation (``mlp`` has none: it does not look at the graph)."""

_AGGR_FLAG = "model.aggr (--aggr)"


def check_aggr(conv: str, aggr: str) -> None:
    """Raise :class:`~fathom.errors.ConfigError` if ``conv`` does not allow ``aggr``.

    An unknown ``conv`` is not checked here: the registry reports it with the valid names.

    Args:
        conv: registered conv name (``sage`` …).
        aggr: aggregation name (``sum``, ``mean``, ``max``, ``min``, ``softmax``,
            ``powermean``).
    """
    allowed = AGGREGATIONS.get(conv.lower())
    if allowed is None or aggr in allowed:
        return
    if len(allowed) <= 1:
        raise ConfigError(
            f"{_AGGR_FLAG} {aggr!r} is not allowed: {conv} has a fixed aggregation "
            f"({allowed[0] if allowed else 'none'})"
        )
    raise ConfigError(
        f"{_AGGR_FLAG} {aggr!r} is not allowed for {conv}; choose one of: {', '.join(allowed)}"
    )


def _aggr(conv: str, aggr: str | None) -> str:
    """``aggr`` checked against ``conv``, or the conv's default when ``None``."""
    if aggr is None:
        return AGGREGATIONS[conv][0]
    check_aggr(conv, aggr)
    return aggr


# --------------------------------------------------------------------------- modules


class _FastSparseAggregation:
    """Aggregate with :func:`fathom.nn.adjacency.propagate` when PyG hands over a CSR
    matrix: its backward reuses a cached transpose instead of rebuilding it per layer."""

    def message_and_aggregate(self, adj_t: Any, x: Tensor) -> Tensor:
        if isinstance(adj_t, Tensor) and adj_t.layout == torch.sparse_csr:
            return propagate(adj_t, x)
        return super().message_and_aggregate(adj_t, x)  # type: ignore[misc]


class GraphCachedGCNConv(GCNConv):
    """:class:`~torch_geometric.nn.GCNConv`, bit for bit, with its ``gcn_norm`` (self-loops and
    edge weights) computed once per ``edge_index`` object instead of at every call
    (:func:`~fathom.nn.adjacency.gcn_edge_weights`): for models that call their layers on
    the same graph at every step (a graph autoencoder's encoder, in training and in
    evaluation) while keeping GCNConv's own gather/scatter propagation and its rounding.
    Unlike ``cached=True`` (honoured as GCNConv honours it: the first call's weights for
    every later call) a new graph gets its own weights. Calls with ``edge_weight``, a sparse
    adjacency or ``normalize=False`` run GCNConv's forward.

    Same arguments, parameters and initialisation as GCNConv.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]``
        -> ``[num_nodes, out_channels]``.
    """

    def forward(  # type: ignore[override]
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None
    ) -> Tensor:
        if (
            not isinstance(x, Tensor)
            or not isinstance(edge_index, Tensor)
            or edge_index.layout != torch.strided
            or edge_weight is not None
            or not self.normalize
        ):
            return super().forward(x, edge_index, edge_weight)
        cache = self._cached_edge_index
        if cache is None:
            cache = gcn_edge_weights(
                edge_index,
                x.size(self.node_dim),
                dtype=x.dtype,
                add_self_loops=bool(self.add_self_loops),
                improved=bool(self.improved),
                flow=self.flow,
            )
            if self.cached:
                self._cached_edge_index = cache
        edge_index, edge_weight = cache
        out = self.propagate(edge_index, x=self.transform(x), edge_weight=edge_weight)
        return out if self.bias is None else out + self.bias

    def transform(self, x: Tensor) -> Tensor:
        r"""The layer's :math:`X\Theta` (``self.lin(x)``, as GCNConv)."""
        return self.lin(x)


class CachedGCNConv(_FastSparseAggregation, GCNConv):
    """:class:`~torch_geometric.nn.GCNConv` (Kipf & Welling, ICLR 2017) propagating with the
    shared cached adjacency of :func:`~fathom.nn.adjacency.gcn_adjacency`.

    .. math::
        \\mathbf{X}' = \\hat{\\mathbf{D}}^{-1/2} (\\mathbf{A} + \\mathbf{I})
        \\hat{\\mathbf{D}}^{-1/2} \\mathbf{X} \\mathbf{\\Theta} + \\mathbf{b}

    The normalised matrix is built once per ``edge_index`` object and reused by every layer
    of the model (a CSR sparse-dense product is several times faster on CPU than
    gather/scatter message passing; see :mod:`fathom.nn.adjacency`).

    Every argument of :class:`GCNConv` is honoured, with GCNConv's results (up to float
    rounding): the fast path covers ``normalize=True`` with or without ``add_self_loops``,
    ``improved``, either ``flow``, ``bias`` and ``cached`` (with ``cached=True`` the first
    call's matrix is reused for every later call, whatever graph it gets, as GCNConv does;
    :meth:`reset_parameters` clears it). Calls with ``edge_weight`` or a sparse adjacency,
    and every call with ``normalize=False`` (propagation over the raw adjacency), run
    GCNConv's own forward unchanged.

    Args:
        in_channels: size of each input sample.
        out_channels: size of each output sample.
        **kwargs: further arguments of :class:`~torch_geometric.nn.GCNConv` (``improved``,
            ``cached``, ``add_self_loops``, ``normalize``, ``bias``, ``flow``, …).

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]``
        -> ``[num_nodes, out_channels]``.
    """

    _fathom_adj: Tensor | None = None

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self._fathom_adj = None

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,  # type: ignore[override]
        edge_weight: Tensor | None = None,
    ) -> Tensor:
        if not self.normalize or edge_weight is not None or edge_index.layout != torch.strided:
            return super().forward(x, edge_index, edge_weight)
        adj = _cached_or_new(self, edge_index, x, improved=self.improved)
        out = propagate(adj, self.lin(x))
        return out if self.bias is None else out + self.bias

    def propagate_transformed(self, h: Tensor, edge_index: Tensor) -> Tensor:
        """The layer's output for features already through its weight, ``h = self.lin(x)``:
        :math:`S h + b` (what :meth:`forward` computes after ``self.lin``), for callers that
        reuse one :math:`XW` (DGI's corrupted view is a row permutation of it).

        Shapes:
            h: ``[num_nodes, out_channels]``, edge_index: ``[2, num_edges]`` -> same as h.
        """
        if not self.normalize or edge_index.layout != torch.strided:
            raise ValueError("propagate_transformed needs normalize=True and an edge_index")
        adj = _cached_or_new(self, edge_index, h, improved=self.improved)
        out = propagate(adj, h)
        return out if self.bias is None else out + self.bias


class CachedGCN2Conv(_FastSparseAggregation, GCN2Conv):
    """:class:`~torch_geometric.nn.GCN2Conv` (GCNII, Chen et al., "Simple and Deep Graph
    Convolutional Networks", ICML 2020) propagating with the shared cached adjacency of
    :func:`~fathom.nn.adjacency.gcn_adjacency`.

    .. math::
        \\mathbf{X}' = \\left((1 - \\alpha) \\hat{\\mathbf{P}} \\mathbf{X}
        + \\alpha \\mathbf{X}^{(0)}\\right) \\left((1 - \\beta_\\ell) \\mathbf{I}
        + \\beta_\\ell \\mathbf{\\Theta}\\right), \\qquad
        \\beta_\\ell = \\log(\\theta / \\ell + 1)

    with :math:`\\hat{\\mathbf{P}}` the normalised adjacency with self-loops. With
    ``shared_weights=False`` (GCNII*) the two terms get their own weight matrices. The
    class attribute ``needs_x0`` tells the block to pass the initial representation.
    Every argument of :class:`GCN2Conv` is honoured, with GCN2Conv's results (up to float
    rounding): the fast path covers ``normalize=True`` with or without ``add_self_loops``,
    either ``flow`` and ``cached`` (as in :class:`CachedGCNConv`); calls with
    ``edge_weight`` or a sparse adjacency, and ``normalize=False``, run GCN2Conv's forward.

    Args:
        channels: size of each input and output sample.
        alpha: initial-residual strength :math:`\\alpha`.
        theta: identity-mapping hyper-parameter :math:`\\theta` (the paper's lambda).
        layer: 1-based layer index :math:`\\ell`.
        shared_weights: ``False`` for GCNII*.
        **kwargs: further arguments of :class:`~torch_geometric.nn.GCN2Conv`.

    Shapes:
        x, x_0: ``[num_nodes, channels]``, edge_index: ``[2, num_edges]``
        -> ``[num_nodes, channels]``.
    """

    needs_x0 = True
    _fathom_adj: Tensor | None = None

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self._fathom_adj = None

    def forward(
        self,
        x: Tensor,
        x_0: Tensor,
        edge_index: Tensor,  # type: ignore[override]
        edge_weight: Tensor | None = None,
    ) -> Tensor:
        if not self.normalize or edge_weight is not None or edge_index.layout != torch.strided:
            return super().forward(x, x_0, edge_index, edge_weight)
        adj = _cached_or_new(self, edge_index, x)
        if not self._hooked():
            if self.weight2 is None and x_0.size(0) == x.size(0):
                # GCN2Conv's combination, op for op, with the initial residual in the sparse
                # product (the same bits; see propagate_initial)
                out = propagate_initial(adj, x, x_0, self.alpha)
                return torch.addmm(out, out, self.weight1, beta=1.0 - self.beta, alpha=self.beta)
            return self._combine(propagate(adj, x), x_0)
        # GCN2Conv would re-normalise a sparse tensor too (it is a Tensor), so switch that
        # off; the matrix is already oriented for ``self.flow``, and PyG refuses a sparse
        # matrix with flow "target_to_source", so present it as source_to_target
        normalize, flow = self.normalize, self.flow
        self.normalize, self.flow = False, "source_to_target"
        try:
            return super().forward(x, x_0, adj)
        finally:
            self.normalize, self.flow = normalize, flow

    def _hooked(self) -> bool:
        """Whether PyG's ``propagate`` would do more than ``message_and_aggregate``: hooks
        on it, explain mode."""
        return bool(
            self.explain
            or self._propagate_forward_pre_hooks
            or self._propagate_forward_hooks
            or self._message_and_aggregate_forward_pre_hooks
            or self._message_and_aggregate_forward_hooks
        )

    def _combine(self, x: Tensor, x_0: Tensor) -> Tensor:
        """GCN2Conv's forward after its propagation, op for op (the same bits): ``x`` is the
        propagated representation, which is scaled in place. Calling it directly skips
        PyG's ``propagate`` machinery and the flag switches above (about 0.1 ms a layer)."""
        x.mul_(1 - self.alpha)
        # PyG slices x_0 to x's rows; when they already match the slice is the identity, but
        # its backward allocates zeros and copies the gradient in at every layer
        x_0 = self.alpha * (x_0 if x_0.size(0) == x.size(0) else x_0[: x.size(0)])
        if self.weight2 is None:
            out = x.add_(x_0)
            return torch.addmm(out, out, self.weight1, beta=1.0 - self.beta, alpha=self.beta)
        out = torch.addmm(x, x, self.weight1, beta=1.0 - self.beta, alpha=self.beta)
        return out + torch.addmm(x_0, x_0, self.weight2, beta=1.0 - self.beta, alpha=self.beta)


class AuthorsGCN2StarConv(CachedGCN2Conv):
    r"""GCNII* as the authors' code computes it (chennnM/GCNII ``model.py``,
    ``GraphConvolution`` with ``variant=True``):

    .. math::
        \mathbf{X}' = \beta_\ell \left(\hat{\mathbf{P}} \mathbf{X} \mathbf{W}_1
        + \mathbf{X}^{(0)} \mathbf{W}_2\right) + (1 - \beta_\ell)
        \left((1 - \alpha) \hat{\mathbf{P}} \mathbf{X} + \alpha \mathbf{X}^{(0)}\right)

    The weights see :math:`\hat{\mathbf{P}} \mathbf{X}` and :math:`\mathbf{X}^{(0)}`
    unscaled, where the paper's Eq. 6 (and :class:`CachedGCN2Conv` with
    ``shared_weights=False``, PyG's GCN2Conv) multiplies them by :math:`1 - \alpha` and
    :math:`\alpha` first: the same function class, but with weight decay and the initial
    weights acting on differently scaled terms (at ``alpha=0.2`` the initial representation's
    weight term is 5 times larger here for the same ``W_2``). The README's full-supervised
    figures come from this code.

    Every :class:`CachedGCN2Conv` argument is honoured; ``shared_weights`` is always
    ``False``. PyG's propagate hooks and explain mode are not run (the combination is not
    GCN2Conv's).
    """

    def __init__(self, channels: int, **kwargs: Any) -> None:
        if kwargs.pop("shared_weights", False):
            raise ValueError("AuthorsGCN2StarConv has separate weights (shared_weights=False)")
        super().__init__(channels, shared_weights=False, **kwargs)

    def forward(
        self,
        x: Tensor,
        x_0: Tensor,
        edge_index: Tensor,  # type: ignore[override]
        edge_weight: Tensor | None = None,
    ) -> Tensor:
        if self.normalize and edge_weight is None and edge_index.layout == torch.strided:
            return self._combine(propagate(_cached_or_new(self, edge_index, x), x), x_0)
        if self.normalize:
            edge_index, edge_weight = gcn_norm(  # type: ignore[assignment]
                edge_index,
                edge_weight,
                x.size(0),
                False,
                self.add_self_loops,
                self.flow,
                dtype=x.dtype,
            )
        return self._combine(self.propagate(edge_index, x=x, edge_weight=edge_weight), x_0)

    def _combine(self, x: Tensor, x_0: Tensor) -> Tensor:
        x_0 = x_0 if x_0.size(0) == x.size(0) else x_0[: x.size(0)]
        assert self.weight2 is not None
        residual = torch.add(x * (1.0 - self.alpha), x_0, alpha=self.alpha)
        out = torch.addmm(residual, x, self.weight1, beta=1.0 - self.beta, alpha=self.beta)
        return torch.addmm(out, x_0, self.weight2, alpha=self.beta)


def _cached_or_new(
    conv: CachedGCNConv | CachedGCN2Conv, edge_index: Tensor, x: Tensor, *, improved: bool = False
) -> Tensor:
    """The normalised adjacency ``conv`` propagates with: :func:`gcn_adjacency` for its
    ``add_self_loops``, ``improved`` and ``flow``, or with ``conv.cached`` the one its first
    call built (PyG's ``cached=True``: the graph is assumed fixed)."""
    if conv.cached and conv._fathom_adj is not None:
        return conv._fathom_adj
    adj = gcn_adjacency(
        edge_index,
        x.size(0),
        dtype=x.dtype,
        add_self_loops=bool(conv.add_self_loops),
        improved=improved,
        flow=conv.flow,
        device=x.device,
    )
    if conv.cached:
        conv._fathom_adj = adj
    return adj


class LinearConv(nn.Linear):
    """A :class:`~torch.nn.Linear` layer in a conv's place: :math:`\\mathbf{X}' =
    \\mathbf{X} \\mathbf{W}^\\top + \\mathbf{b}`, ignoring the graph (the MLP baseline).

    Args:
        in_channels: size of each input sample.
        out_channels: size of each output sample.

    Shapes:
        x: ``[num_nodes, in_channels]`` -> ``[num_nodes, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:  # type: ignore[override]
        return super().forward(x)


# --------------------------------------------------------------------------- factories


@CONVS.register("gcn")
def gcn(
    in_channels: int,
    out_channels: int,
    *,
    final: bool = False,
    aggr: str | None = None,
    root_weight: bool = False,
    adj_norm: str = "sym",
    **_: Any,
) -> nn.Module:
    """Graph convolution (Kipf & Welling, ICLR 2017):
    :math:`X' = \\hat D^{-1/2} (A + I) \\hat D^{-1/2} X W + b`; see :class:`CachedGCNConv`.

    ``root_weight`` adds a separate self-feature term :math:`X W_{self}` and ``adj_norm``
    picks another propagation matrix (DropEdge's ``--withloop`` and ``--normalization``);
    either gives a :class:`~fathom.nn.propagation.DropEdgeGCNConv`.
    """
    _aggr("gcn", aggr)
    if root_weight or adj_norm != "sym":
        return DropEdgeGCNConv(
            in_channels, out_channels, root_weight=root_weight, adj_norm=adj_norm
        )
    return CachedGCNConv(in_channels, out_channels)


def _heads(
    name: str,
    cls: Callable[..., nn.Module],
    in_channels: int,
    out_channels: int,
    final: bool,
    heads: int,
    out_heads: int,
    attn_dropout: float,
) -> nn.Module:
    """An attention conv: hidden concatenates ``heads`` heads of ``out // heads`` channels,
    final averages ``out_heads`` heads of ``out`` channels."""
    if final:
        return cls(in_channels, out_channels, heads=out_heads, concat=False, dropout=attn_dropout)
    if out_channels % heads:
        raise ConfigError(
            f"model.hidden ({out_channels}) must be divisible by model.heads ({heads}) for {name}"
        )
    return cls(in_channels, out_channels // heads, heads=heads, dropout=attn_dropout)


@CONVS.register("gat")
def gat(
    in_channels: int,
    out_channels: int,
    *,
    final: bool = False,
    aggr: str | None = None,
    heads: int = 8,
    out_heads: int = 1,
    attn_dropout: float = 0.6,
    **_: Any,
) -> nn.Module:
    """Graph attention (Veličković et al., ICLR 2018):
    :math:`x_i' = \\Vert_{k} \\sum_{j \\in N(i) \\cup \\{i\\}} \\alpha^k_{ij} W^k x_j` with
    :math:`\\alpha_{ij} = \\mathrm{softmax}_j(\\mathrm{LeakyReLU}(a^\\top [W x_i \\Vert W x_j]))`.

    A hidden layer concatenates ``heads`` heads of ``out_channels // heads`` channels each
    (so it outputs ``out_channels``); a final layer averages ``out_heads`` heads.
    """
    _aggr("gat", aggr)
    return _heads("gat", GATConv, in_channels, out_channels, final, heads, out_heads, attn_dropout)


@CONVS.register("gatv2")
def gatv2(
    in_channels: int,
    out_channels: int,
    *,
    final: bool = False,
    aggr: str | None = None,
    heads: int = 8,
    out_heads: int = 1,
    attn_dropout: float = 0.6,
    **_: Any,
) -> nn.Module:
    """GATv2 (Brody et al., "How Attentive are Graph Attention Networks?", ICLR 2022):
    dynamic attention :math:`\\alpha_{ij} = \\mathrm{softmax}_j(a^\\top
    \\mathrm{LeakyReLU}(W [x_i \\Vert x_j]))`. Heads as in ``gat``.
    """
    _aggr("gatv2", aggr)
    return _heads(
        "gatv2", GATv2Conv, in_channels, out_channels, final, heads, out_heads, attn_dropout
    )


@CONVS.register("transformer")
def transformer(
    in_channels: int,
    out_channels: int,
    *,
    final: bool = False,
    aggr: str | None = None,
    heads: int = 8,
    out_heads: int = 1,
    attn_dropout: float = 0.6,
    **_: Any,
) -> nn.Module:
    """Graph transformer (Shi et al., "Masked Label Prediction", IJCAI 2021):
    :math:`x_i' = W_1 x_i + \\sum_{j \\in N(i)} \\alpha_{ij} W_2 x_j` with
    :math:`\\alpha_{ij} = \\mathrm{softmax}_j((W_3 x_i)^\\top (W_4 x_j) / \\sqrt{d})`.
    Heads as in ``gat``.
    """
    _aggr("transformer", aggr)
    return _heads(
        "transformer",
        TransformerConv,
        in_channels,
        out_channels,
        final,
        heads,
        out_heads,
        attn_dropout,
    )


def _blocked_gather_applies(
    conv: MessagePassing,
    edge_index: Any,
    x_src: Tensor,
    aggrs: tuple[str, ...] = ("mean", "sum", "add"),
) -> bool:
    """Whether ``conv``'s aggregation of ``x_src`` along ``edge_index`` can run by blocks
    with PyG's results: an aggregation in ``aggrs`` (by default sum or mean, which
    :func:`~fathom.nn.aggregations.gather_aggregate` computes) over a dense ``edge_index``
    of a 2-D CPU tensor, nothing PyG's ``propagate`` would add (hooks, explain mode,
    ``decomposed_layers``)."""
    return (
        isinstance(edge_index, Tensor)
        and edge_index.layout == torch.strided
        and conv.aggr in aggrs
        and conv.decomposed_layers == 1
        and not _pyg_hooked(conv)
        and x_src.device.type == "cpu"
        and x_src.dim() == 2
    )


def _edges_and_targets(
    conv: MessagePassing,
    pair: tuple[Tensor, Tensor | None],
    edge_index: Tensor,
    size: tuple[int, int] | None,
) -> tuple[Tensor, Tensor, int]:
    """``(source, target, num_targets)`` of ``propagate(edge_index, x=pair, size=size)``
    for ``conv``'s flow: the targets are ``size[1]``, else ``pair[1]``'s rows, else
    ``pair[0]``'s, as MessagePassing sizes them."""
    x_src, x_dst = pair
    if size is not None and size[1] is not None:
        num_targets = int(size[1])
    else:
        num_targets = (x_dst if x_dst is not None else x_src).size(0)
    j, i = (0, 1) if conv.flow == "source_to_target" else (1, 0)
    return edge_index[j], edge_index[i], num_targets


def _gather_pair(
    conv: MessagePassing,
    pair: tuple[Tensor, Tensor | None],
    edge_index: Tensor,
    size: tuple[int, int] | None,
) -> Tensor:
    """``propagate(edge_index, x=pair, size=size)`` for a message ``x_j`` and a sum or mean
    ``aggr`` (see :func:`_blocked_gather_applies`): the same bits."""
    source, target, num_targets = _edges_and_targets(conv, pair, edge_index, size)
    return gather_aggregate(pair[0], source, target, num_targets, str(conv.aggr))


class BlockedSAGEConv(SAGEConv):
    """:class:`~torch_geometric.nn.SAGEConv` whose sum or mean aggregation over an
    ``edge_index`` gathers the neighbours' rows a block at a time
    (:func:`~fathom.nn.aggregations.gather_aggregate`) instead of into one
    ``[num_edges, channels]`` tensor: the same bits forward and backward on CPU, about half
    the time of PyG's gather / scatter (1M edges x 100 channels, 1 thread, fwd + bwd).

    Every argument of :class:`SAGEConv` is honoured; other aggregations, sparse adjacencies,
    ``decomposed_layers``, PyG's propagate hooks and explain mode, and other devices run
    SAGEConv's own forward.

    Shapes:
        x: ``[num_nodes, in_channels]`` or a pair (``[num_sources, in_channels]``,
        ``[num_targets, in_channels]``), edge_index: ``[2, num_edges]`` ->
        ``[num_targets, out_channels]``.
    """

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Tensor,  # type: ignore[override]
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        pair = (x, x) if isinstance(x, Tensor) else x
        if not _blocked_gather_applies(self, edge_index, pair[0]):
            return super().forward(x, edge_index, size)
        if self.project and hasattr(self, "lin"):
            pair = (self.lin(pair[0]).relu(), pair[1])
        out = self.lin_l(_gather_pair(self, pair, edge_index, size))
        if self.root_weight and pair[1] is not None:
            out = out + self.lin_r(pair[1])
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out


class BlockedGINConv(GINConv):
    """:class:`~torch_geometric.nn.GINConv` whose sum or mean aggregation over an
    ``edge_index`` gathers the neighbours' rows a block at a time, as
    :class:`BlockedSAGEConv` does: the same bits forward and backward on CPU. Every argument
    of :class:`GINConv` is honoured; what the fast path does not cover runs GINConv's own
    forward.

    Shapes:
        x: ``[num_nodes, in_channels]`` or a pair (``[num_sources, in_channels]``,
        ``[num_targets, in_channels]``), edge_index: ``[2, num_edges]`` ->
        ``[num_targets, out_channels]``.
    """

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Tensor,  # type: ignore[override]
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        pair = (x, x) if isinstance(x, Tensor) else x
        if not _blocked_gather_applies(self, edge_index, pair[0]):
            return super().forward(x, edge_index, size)
        out = _gather_pair(self, pair, edge_index, size)
        if pair[1] is not None:
            out = out + (1 + self.eps) * pair[1]
        return self.nn(out)


class BlockedGENConv(GENConv):
    """:class:`~torch_geometric.nn.GENConv` whose softmax aggregation (a
    :class:`~fathom.nn.aggregations.BlockedSoftmaxAggregation`, as ``build_conv("gen")``
    sets) gathers its messages block by block: the message ``ReLU(x_j) + eps`` is computed
    once per source node and its rows gathered a block of edges at a time inside the
    aggregation, so the ``[num_edges, channels]`` messages of ``propagate`` never exist.
    The same forward bits as GENConv; gradients within float rounding (the aggregation's
    analytic softmax gradient, summed per source node before the ReLU's mask).

    Calls with ``edge_attr``, another aggregation, sparse adjacencies, PyG's hooks or
    explain mode, and other devices run GENConv's own forward.

    Shapes:
        x: ``[num_nodes, in_channels]`` or a pair, edge_index: ``[2, num_edges]`` ->
        ``[num_targets, out_channels]``.
    """

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Tensor,  # type: ignore[override]
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        pair = (x, x) if isinstance(x, Tensor) else x
        aggr = self.aggr_module
        if (
            edge_attr is not None
            or not isinstance(aggr, BlockedSoftmaxAggregation)
            or (aggr.semi_grad and not aggr.learn)
            or not _blocked_gather_applies(self, edge_index, pair[0], ("softmax",))
        ):
            return super().forward(x, edge_index, edge_attr, size)
        if hasattr(self, "lin_src"):
            pair = (self.lin_src(pair[0]), pair[1])
        x_src, x_dst = pair
        source, target, num_targets = _edges_and_targets(self, pair, edge_index, size)
        # GENConv's message ReLU(x_j) + eps, per source node: the same values
        out = aggr.gathered(x_src.relu() + self.eps, source, target, num_targets)
        if hasattr(self, "lin_aggr_out"):
            out = self.lin_aggr_out(out)
        if hasattr(self, "msg_norm"):
            out = self.msg_norm(x_dst if x_dst is not None else x_src, out)
        if x_dst is not None:
            if hasattr(self, "lin_dst"):
                x_dst = self.lin_dst(x_dst)
            out = out + x_dst
        return self.mlp(out)


def _pyg_hooked(conv: MessagePassing) -> bool:
    """Whether PyG's ``propagate`` would do more than gather and aggregate: hooks on it,
    explain mode."""
    return bool(
        conv.explain
        or conv._propagate_forward_pre_hooks
        or conv._propagate_forward_hooks
        or conv._message_forward_pre_hooks
        or conv._message_forward_hooks
        or conv._aggregate_forward_pre_hooks
        or conv._aggregate_forward_hooks
        or conv._message_and_aggregate_forward_pre_hooks
        or conv._message_and_aggregate_forward_hooks
    )


@CONVS.register("sage")
def sage(
    in_channels: int,
    out_channels: int,
    *,
    aggr: str | None = None,
    **_: Any,
) -> nn.Module:
    """GraphSAGE (Hamilton et al., NeurIPS 2017):
    :math:`x_i' = W_1 x_i + W_2 \\cdot \\mathrm{aggr}_{j \\in N(i)} x_j`, ``aggr`` one of
    mean (default), max, sum, min. Sum and mean run by blocks of edges
    (:class:`BlockedSAGEConv`: SAGEConv's bits, about half its aggregation time on CPU).
    """
    return BlockedSAGEConv(in_channels, out_channels, aggr=_aggr("sage", aggr))


@CONVS.register("gin")
def gin(
    in_channels: int,
    out_channels: int,
    *,
    aggr: str | None = None,
    **_: Any,
) -> nn.Module:
    """Graph isomorphism network (Xu et al., ICLR 2019):
    :math:`x_i' = \\mathrm{MLP}((1 + \\epsilon) x_i + \\mathrm{aggr}_{j \\in N(i)} x_j)` with
    a learnt :math:`\\epsilon` and ``MLP = Linear(in, out) -> ReLU -> Linear(out, out)``;
    ``aggr`` one of sum (default), mean, max, min.
    """
    mlp = nn.Sequential(
        nn.Linear(in_channels, out_channels),
        nn.ReLU(),
        nn.Linear(out_channels, out_channels),
    )
    return BlockedGINConv(mlp, train_eps=True, aggr=_aggr("gin", aggr))


@CONVS.register("gin0")
def gin0(
    in_channels: int,
    out_channels: int,
    *,
    aggr: str | None = None,
    **_: Any,
) -> nn.Module:
    """GIN-0 (Xu et al., ICLR 2019: :math:`\\epsilon = 0`, fixed) with the reference code's
    MLP ``Linear -> BatchNorm -> ReLU -> Linear -> BatchNorm -> ReLU`` (also the GIN of
    Alon & Yahav's NeighborsMatch model); ``aggr`` one of sum (default), mean, max, min.
    """
    mlp = nn.Sequential(
        nn.Linear(in_channels, out_channels),
        nn.BatchNorm1d(out_channels),
        nn.ReLU(),
        nn.Linear(out_channels, out_channels),
        nn.BatchNorm1d(out_channels),
        nn.ReLU(),
    )
    return BlockedGINConv(mlp, aggr=_aggr("gin0", aggr))


@CONVS.register("cheb")
def cheb(
    in_channels: int,
    out_channels: int,
    *,
    aggr: str | None = None,
    cheb_k: int = 2,
    **_: Any,
) -> nn.Module:
    """Chebyshev spectral convolution (Defferrard et al., NeurIPS 2016):
    :math:`X' = \\sum_{k=0}^{K-1} T_k(\\hat L) X W_k` with ``K = cheb_k`` and
    :math:`\\hat L = L_{sym} - I` (PyG's ``lambda_max = 2``).
    """
    _aggr("cheb", aggr)
    return ChebConv(in_channels, out_channels, K=cheb_k)


@CONVS.register("gen")
def gen(
    in_channels: int,
    out_channels: int,
    *,
    aggr: str | None = None,
    msg_norm: bool = False,
    **_: Any,
) -> nn.Module:
    """Generalised graph convolution of DeeperGCN (Li et al., "DeeperGCN: All You Need to
    Train Deeper GCNs", 2020):
    :math:`x_i' = \\mathrm{MLP}(x_i + \\mathrm{aggr}_{j \\in N(i)} (\\mathrm{ReLU}(x_j)
    + \\epsilon))`.

    ``aggr``: ``softmax`` (default; learnt inverse temperature ``t``), ``powermean`` (learnt
    power ``p``), or sum/mean/max/min. ``msg_norm`` rescales the aggregated message to the
    norm of ``x_i`` times a learnt scale (MsgNorm). The MLP is PyG's default (two layers,
    expansion 2, batch norm inside). The softmax aggregation runs by blocks of target nodes
    (:class:`~fathom.nn.aggregations.BlockedSoftmaxAggregation`: GENConv's forward bits,
    its gradients up to float rounding, about 5x faster fwd + bwd at 1M edges x 64 channels).
    """
    conv = BlockedGENConv(
        in_channels,
        out_channels,
        aggr=_aggr("gen", aggr),
        learn_t=True,
        learn_p=True,
        msg_norm=msg_norm,
        learn_msg_scale=msg_norm,
    )
    softmax = conv.aggr_module
    if type(softmax) is SoftmaxAggregation:
        # the same aggregation (same parameter, same forward bits) by blocks of target nodes
        conv.aggr_module = BlockedSoftmaxAggregation(
            t=softmax._init_t,
            learn=softmax.learn,
            semi_grad=softmax.semi_grad,
            channels=softmax.channels,
        )
    return conv


@CONVS.register("gated")
def gated(
    in_channels: int,
    out_channels: int,
    *,
    aggr: str | None = None,
    **_: Any,
) -> nn.Module:
    """Gated graph convolution (Li et al., "Gated Graph Sequence Neural Networks", ICLR
    2016), one GRU step per block:
    :math:`x_i' = \\mathrm{GRU}(\\mathrm{aggr}_{j \\in N(i)} W x_j, x_i)`, ``aggr`` one of
    sum (default), mean, max, min.

    The input is zero-padded to ``out_channels``, so ``in_channels <= out_channels``.
    """
    if in_channels > out_channels:
        raise ConfigError(
            f"model.conv (--conv) gated needs in_channels <= out_channels (it zero-pads its "
            f"input), got {in_channels} > {out_channels}; use model.encoder=linear and "
            f"model.head=linear"
        )
    return GatedGraphConv(out_channels, num_layers=1, aggr=_aggr("gated", aggr))


def _register_gcnii(name: str, cls: type[CachedGCN2Conv], shared_weights: bool, doc: str) -> None:
    """Register the GCNII conv ``name``: a ``cls`` layer, which needs ``in_channels ==
    out_channels`` and a non-final position (``x_0`` enters every layer; the head must map
    to the classes)."""

    def factory(
        in_channels: int,
        out_channels: int,
        *,
        final: bool = False,
        layer: int = 1,
        aggr: str | None = None,
        alpha: float = 0.1,
        theta: float = 0.5,
        **_: Any,
    ) -> nn.Module:
        _aggr(name, aggr)
        if final or in_channels != out_channels:
            got = "a final layer" if final else f"{in_channels} -> {out_channels} channels"
            raise ConfigError(
                f"model.conv (--conv) {name} needs in_channels == out_channels and cannot be "
                f"the final layer, got {got}; use model.encoder=linear and model.head=linear"
            )
        return cls(
            out_channels, alpha=alpha, theta=theta, layer=layer, shared_weights=shared_weights
        )

    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    factory.__doc__ = doc
    CONVS.add(name, factory)


_register_gcnii(
    "gcn2",
    CachedGCN2Conv,
    True,
    """GCNII (Chen et al., ICML 2020) with shared weights; see :class:`CachedGCN2Conv`.

    Needs ``in_channels == out_channels`` and a non-final position (a linear encoder and
    head, as in the paper); called as ``conv(x, x_0, edge_index)``.
    """,
)
_register_gcnii(
    "gcn2-star",
    CachedGCN2Conv,
    False,
    """GCNII* (Chen et al., ICML 2020; the paper's Eq. 6, PyG's GCN2Conv with
    ``shared_weights=False``): separate weights for the propagated and the initial term;
    otherwise as ``gcn2``.
    """,
)
_register_gcnii(
    "gcn2-star-code",
    AuthorsGCN2StarConv,
    False,
    """GCNII* as chennnM/GCNII's ``model.py`` computes it (the weights see the propagated and
    the initial representation before the ``1 - alpha`` / ``alpha`` mix); see
    :class:`AuthorsGCN2StarConv`.
    """,
)


@CONVS.register("mlp")
def mlp(
    in_channels: int,
    out_channels: int,
    *,
    aggr: str | None = None,
    **_: Any,
) -> nn.Module:
    """A Linear layer that ignores the graph (the MLP baseline); see :class:`LinearConv`."""
    if aggr is not None:
        check_aggr("mlp", aggr)
    return LinearConv(in_channels, out_channels)


def build_conv(
    name: str, in_channels: int, out_channels: int, *, final: bool = False, **options: Any
) -> nn.Module:
    """Instantiate the conv registered as ``name``.

    Args:
        name: registered name (see :data:`CONVS`); an unknown one raises a
            :class:`~fathom.errors.ConfigError` listing the choices.
        in_channels: size of each input sample.
        out_channels: size of each output sample.
        final: whether the conv produces the model's output.
        **options: the keywords of the factory signature (module docstring).
    """
    return CONVS.get(name)(in_channels, out_channels, final=final, **options)
