"""Decoupled GNNs: feature propagation separated from feature transformation.

All four models propagate with the GCN matrix
:math:`S = \\hat D^{-1/2} (A + I) \\hat D^{-1/2}` from
:func:`~fathom.nn.adjacency.gcn_adjacency`. SGC, GfNN and SIGN propagate the *input*
features only, with no parameters in between, so :math:`S^k X` is computed once per graph
by :func:`propagated_features` and every training epoch costs just the transformation.
APPNP propagates the output of an MLP, so it runs its :math:`K` sparse products every pass,
on the cached CSR matrix (several times faster on CPU than PyG's gather/scatter
:class:`~torch_geometric.nn.conv.APPNP`, which it matches numerically).

Layer-wise inference passes a :class:`~fathom.nn.layerwise.ChunkedGraph` for ``edge_index``:
each propagation step then runs by chunks of rows of the whole graph's matrix (APPNP holds
:math:`H`, :math:`Z^{(k)}` and :math:`Z^{(k+1)}`), and SGC / GfNN / SIGN read the hops
cached for the underlying ``edge_index`` (precomputed in training) or compute them so.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fathom.nn.adjacency import gcn_adjacency, propagate, propagate_initial
from fathom.nn.dropouts import Dropout
from fathom.nn.layerwise import ChunkedGraph

__all__ = [
    "APPNP",
    "SGC",
    "SIGN",
    "GfNN",
    "clear_feature_cache",
    "personalized_pagerank",
    "propagated_features",
]

_MAX_ENTRIES = 4


@dataclass
class _Entry:
    x: weakref.ref[Tensor]
    edge_index: weakref.ref[Tensor]
    hops: list[Tensor]


_CACHE: OrderedDict[tuple[int, int, int, int], _Entry] = OrderedDict()


def _extend(hops: list[Tensor], edge_index: Tensor | ChunkedGraph, K: int) -> None:
    """Append :math:`S^{k} X` to ``hops`` (which starts ``[X, …]``) until it has ``K + 1``."""
    if len(hops) > K:
        return
    if isinstance(edge_index, ChunkedGraph):
        while len(hops) <= K:
            hops.append(edge_index.propagate_gcn(hops[-1]))
        return
    x = hops[0]
    adj = gcn_adjacency(edge_index, x.size(0), dtype=x.dtype, device=x.device)
    while len(hops) <= K:
        hops.append(propagate(adj, hops[-1]))


def propagated_features(x: Tensor, edge_index: Tensor | ChunkedGraph, K: int) -> list[Tensor]:
    """The hops :math:`[X, SX, S^2 X, \\dots, S^K X]` with
    :math:`S = \\hat D^{-1/2} (A + I) \\hat D^{-1/2}`, cached.

    The cache is keyed, like :func:`~fathom.nn.adjacency.gcn_adjacency`, on the identity and
    in-place version of both ``x`` and ``edge_index``; it holds weak references to them and
    checks them on a hit, so a dead tensor whose ``id`` was reused never hits, and an entry
    is dropped when either tensor is garbage-collected. A request for more hops than cached
    extends the cached list from its last hop; fewer hops return a prefix. The returned
    tensors are shared with the cache: do not modify them in place.

    When ``x`` requires a gradient (and autograd is on), e.g. for input-sensitivity
    diagnostics, the hops are computed afresh with autograd and not cached.

    A :class:`~fathom.nn.layerwise.ChunkedGraph` (layer-wise inference) shares the cache
    entry of its ``edge_index``; missing hops are propagated by chunks of rows.

    Args:
        x: node features.
        edge_index: graph connectivity (source, target).
        K: number of propagation steps (``K >= 0``).

    Shapes:
        x: ``[num_nodes, channels]``, edge_index: ``[2, num_edges]`` ->
        ``K + 1`` tensors of ``[num_nodes, channels]``.
    """
    if K < 0:
        raise ValueError(f"K must be >= 0, got {K}")
    if x.requires_grad and torch.is_grad_enabled():
        hops = [x]
        _extend(hops, edge_index, K)
        return hops
    graph = edge_index.edge_index if isinstance(edge_index, ChunkedGraph) else edge_index
    key = (id(x), x._version, id(graph), graph._version)
    hit = _CACHE.get(key)
    if hit is not None and hit.x() is x and hit.edge_index() is graph:
        _CACHE.move_to_end(key)
        hops = hit.hops
    else:

        def drop(_ref: weakref.ref[Tensor], key: tuple[int, int, int, int] = key) -> None:
            _CACHE.pop(key, None)

        # detach() is a new tensor object sharing x's storage, so the entry keeps the data
        # alive but not x itself, and x's weak reference still fires when x is collected
        hops = [x.detach()]
        _CACHE[key] = _Entry(weakref.ref(x, drop), weakref.ref(graph, drop), hops)
        while len(_CACHE) > _MAX_ENTRIES:
            _CACHE.popitem(last=False)
    with torch.no_grad():
        _extend(hops, edge_index, K)
    return hops[: K + 1]


def clear_feature_cache() -> None:
    """Drop every cached list of propagated features (tests; freeing memory)."""
    _CACHE.clear()


def personalized_pagerank(
    h: Tensor, edge_index: Tensor | ChunkedGraph, K: int, alpha: float
) -> Tensor:
    """APPNP's propagation, :math:`K` steps of power iteration towards personalised PageRank:
    :math:`Z^{(0)} = H,\\ Z^{(k+1)} = (1 - \\alpha) S Z^{(k)} + \\alpha H`.

    Equals :class:`torch_geometric.nn.conv.APPNP` ``(K, alpha)`` applied to ``h``.

    Shapes:
        h: ``[num_nodes, channels]``, edge_index: ``[2, num_edges]`` -> ``[num_nodes, channels]``.
    """
    z = h
    if isinstance(edge_index, ChunkedGraph):  # layer-wise inference: one step at a time
        for _ in range(K):
            z = (1.0 - alpha) * edge_index.propagate_gcn(z) + alpha * h
        return z
    adj = gcn_adjacency(edge_index, h.size(0), dtype=h.dtype, device=h.device)
    for _ in range(K):
        z = propagate_initial(adj, z, h, alpha)  # (1 - alpha) S z + alpha h, one product
    return z


class _MLP(nn.Module):
    """``dropout -> Linear -> ReLU -> dropout -> Linear`` (the MLP of GfNN and APPNP)."""

    def __init__(
        self, in_channels: int, hidden_channels: int, out_channels: int, dropout: float
    ) -> None:
        super().__init__()
        self.lin1 = nn.Linear(in_channels, hidden_channels)
        self.lin2 = nn.Linear(hidden_channels, out_channels)
        self.dropout = Dropout(dropout)

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        x = self.lin1(self.dropout(x)).relu()
        return self.lin2(self.dropout(x))


class SGC(nn.Module):
    """Simplifying Graph Convolution from `"Simplifying Graph Convolutional Networks"
    <https://arxiv.org/abs/1902.07153>`_ (Wu et al., ICML 2019): a ``K``-layer GCN with the
    nonlinearities removed, i.e. logistic regression on propagated features,

    .. math::
        \\hat Y = S^K X W + b, \\qquad S = \\hat D^{-1/2} (A + I) \\hat D^{-1/2}.

    :math:`S^K X` is computed once per graph (:func:`propagated_features`), so an epoch
    costs one linear layer.

    Args:
        in_channels: input feature size.
        out_channels: number of classes.
        K: number of propagation steps (default ``2``, as in the paper).

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, K: int = 2) -> None:
        super().__init__()
        self.K = K
        self.lin = nn.Linear(in_channels, out_channels)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor | ChunkedGraph) -> Tensor:
        return self.lin(propagated_features(x, edge_index, self.K)[self.K])


class GfNN(nn.Module):
    """gfNN from `"Revisiting Graph Neural Networks: All We Have is Low-Pass Filters"
    <https://arxiv.org/abs/1905.09550>`_ (NT & Maehara, 2019): an MLP on low-pass filtered
    features,

    .. math::
        \\hat Y = W_2\\, \\mathrm{drop}\\big(\\mathrm{ReLU}(W_1\\, \\mathrm{drop}(S^K X)
        + b_1)\\big) + b_2.

    :math:`S^K X` is computed once per graph (:func:`propagated_features`).

    Args:
        in_channels: input feature size.
        hidden_channels: hidden width of the MLP.
        out_channels: number of classes.
        K: number of propagation steps.
        dropout: dropout probability before each linear layer.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, out_channels]``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        K: int = 2,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.K = K
        self.mlp = _MLP(in_channels, hidden_channels, out_channels, dropout)

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor | ChunkedGraph) -> Tensor:
        return self.mlp(propagated_features(x, edge_index, self.K)[self.K])


class APPNP(nn.Module):
    """APPNP from `"Predict then Propagate: Graph Neural Networks meet Personalized
    PageRank" <https://arxiv.org/abs/1810.05997>`_ (Gasteiger et al., ICLR 2019): predict
    with an MLP, then propagate the predictions by :func:`personalized_pagerank`,

    .. math::
        H = \\mathrm{MLP}(X), \\quad Z^{(0)} = H, \\quad
        Z^{(k+1)} = (1 - \\alpha) S Z^{(k)} + \\alpha H, \\quad \\hat Y = Z^{(K)},

    with :math:`\\mathrm{MLP} = ` dropout -> Linear -> ReLU -> dropout -> Linear. The
    propagation has no parameters, so depth (``K``) adds no over-fitting capacity and the
    teleport term :math:`\\alpha H` keeps it from over-smoothing. The paper's dropout on
    the adjacency matrix is not applied.

    Args:
        in_channels: input feature size.
        hidden_channels: hidden width of the MLP.
        out_channels: number of classes.
        K: number of propagation steps (paper: ``10``).
        alpha: teleport (restart) probability (paper: ``0.1``).
        dropout: dropout probability before each linear layer (paper: ``0.5``).

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, out_channels]``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        K: int = 10,
        alpha: float = 0.1,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.K, self.alpha = K, alpha
        self.mlp = _MLP(in_channels, hidden_channels, out_channels, dropout)

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor | ChunkedGraph) -> Tensor:
        return personalized_pagerank(self.mlp(x), edge_index, self.K, self.alpha)


class SIGN(nn.Module):
    """SIGN from `"SIGN: Scalable Inception Graph Neural Networks"
    <https://arxiv.org/abs/2004.11198>`_ (Frasca et al., 2020), with the GCN operator's
    powers as the precomputed filters: each hop gets its own linear layer (an inception
    module), and a final linear layer mixes them,

    .. math::
        Z = \\big\\Vert_{k=0}^{K} \\mathrm{drop}\\big(\\mathrm{ReLU}(S^k X\\, \\Theta_k +
        b_k)\\big), \\qquad \\hat Y = Z\\, \\Omega + c.

    :math:`[X, SX, \\dots, S^K X]` is computed once per graph (:func:`propagated_features`).

    Args:
        in_channels: input feature size.
        hidden_channels: output width of each hop's linear layer.
        out_channels: number of classes.
        K: number of propagation steps (``K + 1`` hops including :math:`X` itself).
        dropout: dropout probability on each hop's output.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, out_channels]``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        K: int = 2,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.K = K
        self.lins = nn.ModuleList(nn.Linear(in_channels, hidden_channels) for _ in range(K + 1))
        self.lin = nn.Linear(hidden_channels * (K + 1), out_channels)
        self.dropout = Dropout(dropout)

    def reset_parameters(self) -> None:
        for lin in self.lins:
            lin.reset_parameters()
        self.lin.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor | ChunkedGraph) -> Tensor:
        hops = propagated_features(x, edge_index, self.K)
        z = torch.cat(
            [self.dropout(lin(h).relu()) for lin, h in zip(self.lins, hops, strict=True)],
            dim=-1,
        )  # [num_nodes, hidden * (K + 1)]
        return self.lin(z)
