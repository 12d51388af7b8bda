r"""Hierarchical trimming of a neighbour-sampled subgraph (PyG's ``trim_to_layer``).

A subgraph from :class:`~fathom.loaders.NeighborSampler` lists its nodes hop by hop (the
seeds, then the nodes first reached at hop 1, 2, …) and its edges hop by hop (the in-edges
drawn for the seeds, then for the hop-1 nodes, …). An ``L``-layer model reads the seeds'
outputs only, so layer ``l`` (1-based) needs outputs for the nodes within ``L - l`` hops of
the seeds, and only the edges into them: the outermost hops are dead weight from the layer
that no longer reaches them (Hamilton et al.'s minibatch algorithm; PyG's
``trim_to_layer`` and ``BasicGNN(..., num_sampled_nodes_per_hop=...)``). At fan-outs
15, 10, 5 around 1,024 seeds of a 100K-node graph the untrimmed model computes three layers
for every sampled node; trimmed, the last layer computes the 1,024 seeds, the one before it
the ~16K nodes within one hop.

:class:`HopGraph` holds the per-hop counts and hands each layer a :class:`TrimmedLayer`:
its edges (a prefix of the subgraph's), its input rows (a prefix of the nodes) and its output
rows. :func:`~fathom.nn.layerwise.apply_conv` runs a conv on it (:meth:`TrimmedLayer.conv`):
GraphSAGE as a bipartite conv from the input rows to the output rows (its root weight on
the output rows only), the other local convs on the input rows, their output cut to the
output rows.

Exactness: an output row reads the same rows through the same edges, in the same order, as
without trimming (a target's in-edges all lie in the kept prefix), so forward values agree
up to the dense products' blocking (one matrix product over fewer rows), and the dropout
masks are the same: every dropout of a trimmed layer draws a mask for all the subgraph's
rows, as the untrimmed layer does, and keeps the rows it needs (the ``rows`` of
:class:`~fathom.nn.dropouts.Dropout`), so the random stream, and every later draw, is
unchanged. Only convs whose
output at a node reads that node's in-edges alone, and norms that act on each row alone,
can be trimmed (:func:`~fathom.models.deep_gnn.DeepGNN.trim_support` says why a model cannot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch_geometric.nn import GATConv, GATv2Conv, SAGEConv, TransformerConv

from fathom.nn.convs import LinearConv
from fathom.nn.norms import NodeNorm

__all__ = ["ROW_WISE_NORMS", "TRIMMABLE_CONVS", "HopGraph", "TrimmedLayer", "trim_kwargs"]

TRIMMABLE_CONVS: tuple[type[nn.Module], ...] = (
    SAGEConv,
    GATConv,
    GATv2Conv,
    TransformerConv,
    LinearConv,
)
"""Convs whose output at a node reads only its own row, its in-edges and their sources' rows
(and no degree of another node, as GCN's symmetric normalisation does): trimming leaves the
rows it keeps exact."""

ROW_WISE_NORMS: tuple[type[nn.Module], ...] = (nn.Identity, nn.LayerNorm, NodeNorm)
"""Norms that act on each row alone (BatchNorm, PairNorm and the graph norms take statistics
over the rows, which trimming changes)."""


@dataclass(frozen=True)
class TrimmedLayer:
    """One layer's part of a hop-ordered sampled subgraph.

    Attributes:
        edge_index: the edges into the layer's output rows (a prefix of the subgraph's).
        num_in: rows of the layer's input (the nodes within ``hops + 1`` hops).
        num_out: rows of its output (the nodes within ``hops`` hops).
        num_rows: rows of the whole subgraph: what an untrimmed layer's dropout draws.
    """

    edge_index: Tensor
    num_in: int
    num_out: int
    num_rows: int

    def conv(self, conv: nn.Module, x: Tensor) -> Tensor:
        """``conv`` from the ``num_in`` input rows to the ``num_out`` output rows.

        Shapes:
            x: ``[num_in, C_in]`` -> ``[num_out, C_out]``.
        """
        if x.size(0) != self.num_in:
            raise ValueError(f"trimmed layer: expected {self.num_in} input rows, got {x.size(0)}")
        if isinstance(conv, SAGEConv):
            return conv((x, x[: self.num_out]), self.edge_index, (self.num_in, self.num_out))
        return conv(x, self.edge_index)[: self.num_out]


class HopGraph:
    """A neighbour-sampled subgraph with its per-hop node and edge counts, trimmed layer by
    layer for an ``num_layers``-layer model (module docstring).

    Args:
        edge_index: the subgraph's edges ``(source, target)``, grouped by hop: the first
            ``num_sampled_edges[0]`` end at the seeds, the next ``num_sampled_edges[1]`` at
            the hop-1 nodes, ….
        num_sampled_nodes: nodes per hop, the seeds first (``batch.num_sampled_nodes``).
        num_sampled_edges: edges per hop (``batch.num_sampled_edges``).
        num_layers: the model's message-passing layers.

    Raises:
        ValueError: counts that do not add up to the subgraph's edges, or negative counts.

    Shapes:
        edge_index: ``[2, num_edges]``.
    """

    def __init__(
        self,
        edge_index: Tensor,
        num_sampled_nodes: Sequence[int],
        num_sampled_edges: Sequence[int],
        num_layers: int,
    ) -> None:
        nodes, edges = [int(n) for n in num_sampled_nodes], [int(e) for e in num_sampled_edges]
        if min(nodes + edges, default=0) < 0:
            raise ValueError("num_sampled_nodes / num_sampled_edges: expected counts >= 0")
        if sum(edges) != edge_index.size(1):
            raise ValueError(
                f"num_sampled_edges: they add up to {sum(edges)}, the subgraph has "
                f"{edge_index.size(1)} edges"
            )
        self.edge_index = edge_index
        self.num_sampled_nodes, self.num_sampled_edges = nodes, edges
        self.num_layers = num_layers
        self.num_rows = sum(nodes)

    def rows(self, hops: int) -> int:
        """Nodes within ``hops`` hops of the seeds."""
        return sum(self.num_sampled_nodes[: hops + 1])

    def layer(self, layer: int) -> TrimmedLayer:
        """Layer ``layer``'s (1-based) part: outputs for the nodes within ``num_layers - layer``
        hops, inputs within one hop more."""
        hops = max(self.num_layers - layer, 0)
        num_edges = sum(self.num_sampled_edges[: hops + 1])
        return TrimmedLayer(
            edge_index=self.edge_index[:, :num_edges],
            num_in=self.rows(hops + 1),
            num_out=self.rows(hops),
            num_rows=self.num_rows,
        )

    def thinned(self, edge_mask: Tensor) -> HopGraph:
        """The same subgraph after DropEdge kept the edges ``edge_mask`` marks (in order):
        the per-hop edge counts recounted."""
        kept = [int(part.sum()) for part in edge_mask.split(self.num_sampled_edges)]
        return HopGraph(
            self.edge_index[:, edge_mask], self.num_sampled_nodes, kept, self.num_layers
        )


def trim_kwargs(model: nn.Module, batch: Any) -> dict[str, list[int]]:
    """The keyword arguments with which ``model`` computes only what ``batch``'s seeds read:
    ``num_sampled_nodes_per_hop`` / ``num_sampled_edges_per_hop`` from a neighbour-sampled
    batch's ``num_sampled_nodes`` / ``num_sampled_edges``, when the model (inside a DDP
    wrapper too) can be trimmed (its ``trim_support()`` is ``None``); ``{}`` otherwise."""
    inner = model.module if isinstance(model, DistributedDataParallel) else model
    support = getattr(inner, "trim_support", None)
    nodes = getattr(batch, "num_sampled_nodes", None)
    edges = getattr(batch, "num_sampled_edges", None)
    if support is None or nodes is None or edges is None or support() is not None:
        return {}
    return {"num_sampled_nodes_per_hop": list(nodes), "num_sampled_edges_per_hop": list(edges)}
