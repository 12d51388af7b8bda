r"""Message passing over a whole graph in chunks of target nodes (layer-wise inference).

A :class:`ChunkedGraph` stands in for ``edge_index`` in a model's forward pass: every module
that passes messages hands it the conv (:func:`apply_conv`) or the propagation
(:meth:`ChunkedGraph.propagate_gcn`), and it computes the output of *all* nodes chunk by
chunk. For the targets ``[a, b)`` it gathers the rows of the layer's input that they read
(their 1-hop in-neighbourhood), runs the conv there and keeps only the targets' outputs, so
a layer costs one ``[N, C]`` output plus one chunk's subgraph (its edges' messages), never
the ``[E, C]`` messages of the whole graph. Everything between convs (norms, activations,
skips, jumping knowledge, heads) runs unchanged on the whole layer, so graph-wide statistics
(PairNorm, mean subtraction, GraphNorm) are exact too. How each conv is chunked:

=====================================  ====================================================
conv                                   per chunk of targets ``T``
=====================================  ====================================================
local: SAGE, GAT, GATv2, Transformer,  the conv on ``T`` with its in-neighbours and their
GIN (GIN-0's batch norm in eval),      edges into ``T`` (every edge into ``T``, in the
GEN, gated (one GRU step)              graph's order); the rows of ``T`` kept
GCN, GCNII (``normalize=True``)        the rows ``T`` of the *whole graph's* normalised
                                       adjacency (:func:`~fathom.nn.adjacency.gcn_adjacency`:
                                       the degrees of the full graph, not of the chunk)
                                       times the whole layer (GCN's ``lin`` applied to the
                                       layer once, then the rows, then its bias)
Chebyshev (``K``)                      ``K - 1`` propagations of the whole layer, each by
                                       rows of the whole graph's scaled Laplacian
                                       (PyG's own normalisation, ``lambda_max`` included)
``mlp`` (:class:`LinearConv`)          node-wise: the whole layer at once
=====================================  ====================================================

A conv of another class is refused (:func:`chunkable`): whether its output at a node depends
on that node's in-neighbourhood alone is not known here; :func:`register_local_conv` declares
a class that is local.

Results equal the ordinary forward pass up to the order of floating-point sums (a row's sum
runs over the same terms in the same order: the GCN rows are the whole matrix's rows, a local
conv's edges keep the graph's order).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
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
from torch_geometric.nn.conv import MessagePassing

from fathom.nn.adjacency import _spmm, gcn_adjacency
from fathom.nn.convs import LinearConv
from fathom.nn.trim import TrimmedLayer

__all__ = [
    "BIPARTITE_CONVS",
    "LOCAL_CONVS",
    "ChunkedGraph",
    "apply_conv",
    "chunkable",
    "conv_hops",
    "register_local_conv",
]

LOCAL_CONVS: list[type[nn.Module]] = [
    SAGEConv,
    GATConv,
    GATv2Conv,
    TransformerConv,
    GINConv,
    GENConv,
    GatedGraphConv,
]
"""Conv classes whose output at a node reads only that node's row and its in-edges (and
their sources' rows), in eval mode: exact on a chunk's 1-hop in-neighbourhood. (A gated conv
only with one GRU step: see :func:`chunkable`.)"""


BIPARTITE_CONVS: tuple[type[nn.Module], ...] = (SAGEConv, GINConv, GENConv)
"""Local convs whose forward takes a ``(x_source, x_target)`` pair and applies its node-wise
part (root weight, MLP) to the target rows alone: layer-wise inference hands them the chunk's
targets as ``x_target``, so that part runs on the chunk's rows, not on its whole 1-hop
neighbourhood (GENConv's 2-layer MLP ran on every neighbour's row before; those rows were then
cut away)."""


def register_local_conv(cls: type[nn.Module]) -> type[nn.Module]:
    """Declare ``cls`` local (see :data:`LOCAL_CONVS`), so layer-wise inference chunks it by
    in-neighbourhoods; usable as a class decorator."""
    if cls not in LOCAL_CONVS:
        LOCAL_CONVS.append(cls)
    return cls


def _gcn_normalised(conv: nn.Module) -> bool:
    return isinstance(conv, (GCNConv, GCN2Conv)) and bool(conv.normalize)


def chunkable(conv: nn.Module) -> str | None:
    """Why ``conv`` cannot run chunk by chunk (``None``: it can).

    Chunkable: :class:`~fathom.nn.convs.LinearConv`; GCN / GCNII convs (normalised with the
    whole graph's degrees, without GCN's ``improved`` self-loop weight 2, with the default
    ``flow``); Chebyshev convs;
    the :data:`LOCAL_CONVS` (a gated conv with one GRU step).
    """
    name = type(conv).__name__
    if isinstance(conv, (LinearConv, ChebConv)):
        return None
    if isinstance(conv, GCNConv) and conv.normalize and conv.improved:
        return f"{name} with improved=True (self-loop weight 2) is not chunked"
    if isinstance(conv, (GCNConv, GCN2Conv)) and conv.flow != "source_to_target":
        return f"{name} with flow={conv.flow!r} is not chunked"
    if isinstance(conv, (GCNConv, GCN2Conv)):
        return None
    if isinstance(conv, GatedGraphConv) and conv.num_layers != 1:
        return f"{name} with {conv.num_layers} GRU steps passes messages several hops"
    if isinstance(conv, tuple(LOCAL_CONVS)):
        return None
    return (
        f"{name} is not known to read only its in-neighbourhood (register_local_conv "
        "declares a local conv)"
    )


def conv_hops(conv: nn.Module) -> tuple[int, bool]:
    """``(hops, degrees)`` of one conv: how many message-passing steps it takes (0 for a
    node-wise conv, ``K - 1`` for a Chebyshev conv of order ``K``, the GRU steps of a gated
    conv, 1 otherwise) and whether it normalises by the degrees of the *source* nodes (GCN's
    symmetric normalisation, the Chebyshev Laplacian), so that a sampled neighbourhood needs
    one hop more to see those degrees whole."""
    if isinstance(conv, LinearConv):
        return 0, False
    if isinstance(conv, ChebConv):
        return len(conv.lins) - 1, True
    if isinstance(conv, GatedGraphConv):
        return conv.num_layers, False
    return 1, _gcn_normalised(conv)


@contextmanager
def _normalize_off(conv: Any) -> Iterator[None]:
    """The conv with ``normalize`` off: it is handed an already normalised matrix."""
    normalize, conv.normalize = conv.normalize, False
    try:
        yield
    finally:
        conv.normalize = normalize


def _csr(crow: Tensor, col: Tensor, values: Tensor, size: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)


class ChunkedGraph:
    """The whole graph of a layer-wise forward pass: pass it where a model takes
    ``edge_index`` (``model(x, ChunkedGraph(edge_index, N, chunk_size=4096))``); the models
    of :mod:`fathom.models` hand it their convs and propagations, and it computes every
    node's output in chunks of ``chunk_size`` target nodes (module docstring).

    The graph's structure stays on ``edge_index``'s device (the in-edge index, the
    normalised matrices); each chunk's part of it is moved to ``device``, where the layers
    and the model live. Only the eval-mode function is computed (no DropEdge: the caller
    puts the model in eval mode).

    Args:
        edge_index: the whole graph, ``(source, target)``; also the key under which
            :func:`~fathom.nn.adjacency.gcn_adjacency` and the decoupled models' feature
            cache find what the ordinary forward pass computed for it.
        num_nodes: the number of nodes.
        chunk_size: target nodes per chunk.
        device: where the layers are computed (default: ``edge_index``'s device).

    Attributes:
        max_chunk_nodes, max_chunk_edges: the largest subgraph a chunk gathered so far
            (input rows, edges); what bounds one chunk's memory.

    Shapes:
        edge_index: ``[2, num_edges]``.
    """

    def __init__(
        self,
        edge_index: Tensor,
        num_nodes: int,
        *,
        chunk_size: int,
        device: torch.device | str | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.edge_index = edge_index
        self.num_nodes = int(num_nodes)
        self.chunk_size = int(chunk_size)
        self.device = torch.device(device) if device is not None else edge_index.device
        self._in_edges: tuple[Tensor, Tensor] | None = None
        self._laplacians: dict[tuple[Any, ...], Tensor] = {}
        self._node_map: Tensor | None = None
        self.max_chunk_nodes = 0
        self.max_chunk_edges = 0

    @property
    def storage(self) -> torch.device:
        """Where the graph's structure lives (``edge_index``'s device)."""
        return self.edge_index.device

    def ranges(self) -> Iterator[tuple[int, int]]:
        """The chunks ``[a, b)`` of target nodes, in order."""
        for a in range(0, self.num_nodes, self.chunk_size):
            yield a, min(a + self.chunk_size, self.num_nodes)

    # ------------------------------------------------------------------ structure

    def in_edges(self) -> tuple[Tensor, Tensor]:
        """``(rowptr, col)``: the edges grouped by target (stable: within a target in the
        graph's order), built once in plain torch; node ``i``'s sources are
        ``col[rowptr[i]:rowptr[i + 1]]``.

        Shapes:
            -> ``[num_nodes + 1]``, ``[num_edges]``.
        """
        if self._in_edges is None:
            src, dst = self.edge_index[0].long(), self.edge_index[1].long()
            perm = torch.sort(dst, stable=True).indices
            counts = torch.bincount(dst, minlength=self.num_nodes)
            rowptr = torch.zeros(self.num_nodes + 1, dtype=torch.long, device=self.storage)
            rowptr[1:] = torch.cumsum(counts, dim=0)
            self._in_edges = (rowptr, src.index_select(0, perm))
        return self._in_edges

    def _neighbourhood(self, a: int, b: int, sources: Tensor) -> tuple[Tensor, Tensor]:
        """The nodes a chunk reads, the targets ``[a, b)`` first and then the other
        ``sources`` in order of first appearance, and ``sources`` relabelled into them; in
        O(len(sources)) through a node map that is all -1 between calls (as the neighbour
        sampler finds first occurrences: no sort)."""
        if self._node_map is None:
            self._node_map = torch.full(
                (self.num_nodes,), -1, dtype=torch.long, device=self.storage
            )
        node_map = self._node_map
        candidates = torch.cat([torch.arange(a, b, device=self.storage), sources])
        order = torch.arange(candidates.numel(), device=self.storage)
        node_map.index_fill_(0, candidates, candidates.numel())
        node_map.scatter_reduce_(0, candidates, order, reduce="amin")
        nodes = candidates.masked_select(node_map.index_select(0, candidates) == order)
        node_map.index_copy_(0, nodes, torch.arange(nodes.numel(), device=self.storage))
        local = node_map.index_select(0, sources)
        node_map.index_fill_(0, nodes, -1)
        self.max_chunk_nodes = max(self.max_chunk_nodes, nodes.numel())
        self.max_chunk_edges = max(self.max_chunk_edges, sources.numel())
        return nodes, local

    def _rows(self, adj: Tensor, a: int, b: int) -> tuple[Tensor, Tensor, Tensor]:
        """Rows ``[a, b)`` of the CSR matrix ``adj``: ``crow`` (from 0), global columns,
        values (views of ``adj``'s)."""
        crow = adj.crow_indices()
        p0, p1 = int(crow[a]), int(crow[b])
        return crow[a : b + 1] - p0, adj.col_indices()[p0:p1], adj.values()[p0:p1]

    def _gcn_matrix(self, dtype: torch.dtype, add_self_loops: bool) -> Tensor:
        """The whole graph's GCN matrix, as the ordinary forward pass gets it (cached)."""
        return gcn_adjacency(
            self.edge_index,
            self.num_nodes,
            dtype=dtype,
            add_self_loops=add_self_loops,
            device=self.storage,
        )

    def _laplacian(self, conv: ChebConv, dtype: torch.dtype) -> Tensor:
        """The whole graph's scaled Laplacian of ``conv`` as CSR (row = target), by PyG's own
        normalisation (``lambda_max`` from the whole graph)."""
        key = (conv.normalization, dtype)
        if key not in self._laplacians:
            ei, w = conv.__norm__(
                self.edge_index, self.num_nodes, None, conv.normalization, None, dtype=dtype
            )
            coo = torch.sparse_coo_tensor(
                ei.flip(0), w, (self.num_nodes, self.num_nodes), check_invariants=False
            ).coalesce()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                self._laplacians[key] = coo.to_sparse_csr()
        return self._laplacians[key]

    # ------------------------------------------------------------------ computation

    def matmul(self, adj: Tensor, z: Tensor) -> Tensor:
        """``adj @ z`` for a CSR ``[N, N]`` matrix on the storage device, computed by chunks
        of rows moved to ``z``'s device.

        Shapes:
            adj: ``[num_nodes, num_nodes]``, z: ``[num_nodes, C]`` -> ``[num_nodes, C]``.
        """
        out = z.new_empty((self.num_nodes, z.size(1)))
        for a, b in self.ranges():
            crow, col, values = self._rows(adj, a, b)
            self.max_chunk_edges = max(self.max_chunk_edges, col.numel())
            rows = _csr(crow, col, values, (b - a, self.num_nodes)).to(z.device)
            _spmm(rows, z, out=out[a:b])
        return out

    def propagate_gcn(self, z: Tensor, *, add_self_loops: bool = True) -> Tensor:
        r""":math:`\hat D^{-1/2} (A + I) \hat D^{-1/2} z` over the whole graph (as
        :func:`~fathom.nn.adjacency.propagate` with :func:`~fathom.nn.adjacency.gcn_adjacency`),
        by chunks of rows.

        Shapes:
            z: ``[num_nodes, C]`` -> ``[num_nodes, C]``.
        """
        return self.matmul(self._gcn_matrix(z.dtype, add_self_loops), z)

    def conv(self, conv: nn.Module, x: Tensor, x0: Tensor | None = None) -> Tensor:
        """Every node's output of ``conv`` (called ``conv(x, edge_index)``, or
        ``conv(x, x0, edge_index)`` for GCNII), chunk by chunk (module docstring).

        Raises:
            NotImplementedError: a conv that is not :func:`chunkable`.

        Shapes:
            x: ``[num_nodes, C_in]``, x0: ``[num_nodes, C]`` -> ``[num_nodes, C_out]``.
        """
        why = chunkable(conv)
        if why is not None:
            raise NotImplementedError(f"layer-wise inference: {why}")
        if isinstance(conv, LinearConv):
            return conv(x)
        if isinstance(conv, ChebConv):
            return self._cheb(conv, x)
        if isinstance(conv, GCNConv) and conv.normalize:
            return self._gcn(conv, x)
        if isinstance(conv, GCN2Conv) and conv.normalize:
            return self._gcn2(conv, x, x0)
        return self._local(conv, x, x0)

    def _gcn(self, conv: GCNConv, x: Tensor) -> Tensor:
        """:class:`~torch_geometric.nn.GCNConv`'s forward, ``lin``, propagation, ``bias``,
        with the propagation by rows of the whole graph's normalised matrix (its degrees)."""
        h = conv.lin(x)
        out = self.matmul(self._gcn_matrix(x.dtype, conv.add_self_loops), h)
        return out if conv.bias is None else out + conv.bias

    def _gcn2(self, conv: GCN2Conv, x: Tensor, x0: Tensor | None) -> Tensor:
        """GCNII's own forward on rows ``[a, b)`` of the whole graph's normalised matrix
        (global columns: it reads the whole layer ``x``) and ``x_0`` of those rows."""
        if x0 is None:
            raise ValueError("layer-wise inference: GCN2Conv needs x_0")
        adj = self._gcn_matrix(x.dtype, conv.add_self_loops)
        out: Tensor | None = None
        for a, b in self.ranges():
            crow, cols, values = self._rows(adj, a, b)
            self.max_chunk_edges = max(self.max_chunk_edges, cols.numel())
            rows = _csr(crow, cols, values, (b - a, self.num_nodes)).to(x.device)
            with _normalize_off(conv):  # the matrix is normalised already
                y = conv(x, x0[a:b], rows)
            if out is None:
                out = y.new_empty((self.num_nodes, *y.shape[1:]))
            out[a:b] = y
        if out is None:  # no nodes
            return conv(x, x0, self.edge_index)
        return out

    def _local(self, conv: nn.Module, x: Tensor, x0: Tensor | None) -> Tensor:
        """A local conv on each chunk's 1-hop in-neighbourhood: the targets' rows kept."""
        rowptr, col = self.in_edges()
        bipartite = x0 is None and isinstance(conv, BIPARTITE_CONVS)
        out: Tensor | None = None
        for a, b in self.ranges():
            p0, p1 = int(rowptr[a]), int(rowptr[b])
            sources = col[p0:p1]
            nodes, local = self._neighbourhood(a, b, sources)  # targets first
            # every edge into [a, b), grouped by target, in the graph's order
            targets = torch.repeat_interleave(
                torch.arange(b - a, device=self.storage),
                rowptr[a + 1 : b + 1] - rowptr[a:b],
                output_size=p1 - p0,
            )
            graph = torch.stack([local, targets]).to(self.device)
            index = nodes.to(x.device)
            x_in = x.index_select(0, index)
            if bipartite:
                # targets come first in `nodes`: their rows are x_in's first b - a
                y = conv((x_in, x_in[: b - a]), graph)
            elif x0 is None:
                y = conv(x_in, graph)[: b - a]
            else:
                y = conv(x_in, x0.index_select(0, index), graph)[: b - a]
            if out is None:
                out = y.new_empty((self.num_nodes, *y.shape[1:]))
            out[a:b] = y
        if out is None:  # no nodes
            return conv(x, self.edge_index) if x0 is None else conv(x, x0, self.edge_index)
        return out

    def _cheb(self, conv: ChebConv, x: Tensor) -> Tensor:
        """:class:`~torch_geometric.nn.ChebConv`'s forward with each propagation by chunks."""
        lap = self._laplacian(conv, x.dtype)
        tx_0 = x
        tx_1 = x
        out = conv.lins[0](tx_0)
        if len(conv.lins) > 1:
            tx_1 = self.matmul(lap, x)
            out = out + conv.lins[1](tx_1)
        for lin in conv.lins[2:]:
            tx_2 = self.matmul(lap, tx_1)
            tx_2 = 2.0 * tx_2 - tx_0
            out = out + lin.forward(tx_2)
            tx_0, tx_1 = tx_1, tx_2
        if conv.bias is not None:
            out = out + conv.bias
        return out


def apply_conv(
    conv: nn.Module,
    x: Tensor,
    graph: Tensor | ChunkedGraph | TrimmedLayer,
    x0: Tensor | None = None,
) -> Tensor:
    """``conv(x, graph)`` (``conv(x, x0, graph)`` for a conv that reads ``x_0``), or, when
    ``graph`` is a :class:`ChunkedGraph`, the same computed by chunks of target nodes, or,
    when it is a :class:`~fathom.nn.trim.TrimmedLayer`, the rows that layer keeps.

    Shapes:
        x: ``[num_nodes, C_in]`` -> ``[num_nodes, C_out]`` (a trimmed layer: its
        ``[num_in, C_in]`` -> ``[num_out, C_out]``).
    """
    if isinstance(graph, ChunkedGraph):
        return graph.conv(conv, x, x0)
    if isinstance(graph, TrimmedLayer):
        if x0 is not None:
            raise ValueError(f"{type(conv).__name__} reads x_0: it is not trimmed")
        return graph.conv(conv, x)
    return conv(x, graph) if x0 is None else conv(x, x0, graph)


def message_passing_modules(module: nn.Module) -> list[nn.Module]:
    """The PyG message-passing modules and linear convs inside ``module``."""
    return [m for m in module.modules() if isinstance(m, (MessagePassing, LinearConv))]
