r"""Graph classification on top of a :class:`~fathom.models.deep_gnn.DeepGNN`:
node states -> per-graph readout -> dropout -> classifier.

The node stack is any ``DeepGNN`` of the model zoo (every conv, skip, norm, dropout, DropEdge
and DropNode); its node-level head is not used. Graphs of a mini-batch are one disjoint union
with a ``batch`` vector (PyG's convention), so convolutions never mix graphs, but
**normalisations see all nodes of the mini-batch** (BatchNorm's statistics in training, and
the per-"graph" norms such as GraphNorm or PairNorm, which treat the batch as one graph even
in evaluation). With BatchNorm in evaluation mode (running statistics) every graph's output is
independent of the others in its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import (
    AttentionalAggregation,
    SAGPooling,
    TopKPooling,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)

from fathom.errors import ConfigError
from fathom.models.deep_gnn import DeepGNN
from fathom.nn.dropouts import Dropout

__all__ = [
    "READOUTS",
    "GraphClassifier",
    "GraphReadout",
    "build_pool",
]

READOUTS = ("sum", "mean", "max", "attention")
_POOLS = {"sum": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}


class GraphReadout(nn.Module):
    r"""One vector per graph from its node states.

    ``sum`` / ``mean`` / ``max``: :math:`h_G = \mathrm{aggr}_{i \in G}\, x_i` (PyG's
    ``global_add_pool`` / ``global_mean_pool`` / ``global_max_pool``); sum is the injective
    readout of the GIN paper (Xu et al., ICLR 2019, Sec. 4.2). ``attention``: gated
    attention pooling (Li et al., "Gated Graph Sequence Neural Networks", ICLR 2016), PyG's
    ``AttentionalAggregation``:
    :math:`h_G = \sum_{i \in G} \mathrm{softmax}_{i \in G}(\mathrm{gate}(x_i))\, x_i` with a
    gate MLP ``Linear(c, c) -> ReLU -> Linear(c, 1)``.

    Args:
        kind: one of :data:`READOUTS`.
        channels: width of the node states (used by ``attention`` only).

    Shapes:
        x: ``[num_nodes, channels]``, batch: ``[num_nodes]`` (graph of each node) ->
        ``[num_graphs, channels]``.
    """

    def __init__(self, kind: str, channels: int) -> None:
        super().__init__()
        if kind not in READOUTS:
            raise ConfigError(f"graph.readout (--readout) must be one of {READOUTS}, got {kind!r}")
        self.kind = kind
        self.attention = (
            AttentionalAggregation(
                nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, 1))
            )
            if kind == "attention"
            else None
        )

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        if self.attention is not None:
            return self.attention(x, batch, dim_size=num_graphs)
        return _POOLS[self.kind](x, batch, num_graphs)

    def reset_parameters(self) -> None:
        if self.attention is not None:
            self.attention.reset_parameters()


def build_pool(kind: str, channels: int, ratio: float) -> nn.Module:
    r"""A hierarchical pooling layer keeping :math:`\lceil \mathrm{ratio} \cdot n\rceil` nodes
    of every graph: ``topk`` (Gao & Ji, ICML 2019; Cangea et al. 2018: a learnt projection
    scores nodes) or ``sag`` (SAGPool, Lee et al., ICML 2019: a ``GraphConv`` scores them);
    kept nodes are gated by ``tanh(score)``. PyG's ``TopKPooling`` / ``SAGPooling``."""
    if kind == "topk":
        return TopKPooling(channels, ratio)
    if kind == "sag":
        return SAGPooling(channels, ratio)
    raise ConfigError(f"graph.pool (--pool) must be none, topk or sag, got {kind!r}")


class GraphClassifier(nn.Module):
    r"""Classify whole graphs: node states of a ``DeepGNN``, a readout per graph, a classifier.

    Without pooling the graph representation is

    - ``readout_layers="last"``: :math:`h_G = R(x_L)` (with a jumping-knowledge skip,
      :math:`x_L` is the JK combination of the block outputs);
    - ``readout_layers="all"``: :math:`h_G = [R_0(x_0) \| R_1(x_1) \| … \| R_L(x_L)]`, the
      readouts of the input (after the encoder, if any) and of every block concatenated. A
      linear classifier on it equals the GIN paper's sum of per-layer linear scores
      :math:`\sum_l W_l R(x_l)` (Xu et al., ICLR 2019, Sec. 4.2, Eq. 4.2).

    With pooling layers (``pools``), a pooling follows every ``pool_every``-th block; each
    pooling keeps a fraction of every graph's nodes (the representations of earlier layers,
    which dense / initial / residual skips read, are restricted to the kept nodes too), and
    :math:`h_G = \sum_k R_k(x^{(k)})` sums the readouts taken after every pooling (and of the
    last block, if no pooling follows it), as in the hierarchical SAGPool (Lee et al., ICML
    2019, Fig. 2).

    Then :math:`\hat y_G = \mathrm{classifier}(\mathrm{dropout}(h_G))`.

    Norms inside the node stack see all nodes of a mini-batch (the graphs are one disjoint
    union). In evaluation mode (and with norms that use running statistics, such as BatchNorm) a
    graph's output does not depend on the order of the graphs in its batch, the order of its
    nodes, or the other graphs batched with it. With pooling this holds up to ties of the
    pooling scores: PyG selects nodes by ``tanh(score)``, which is exactly 1.0 in float32 for
    scores above about 9 (SAGPool's 1-channel score is not normalised and gets there), and
    among tied nodes the kept ones depend on the node order.

    Args:
        gnn: the node stack; only :meth:`DeepGNN.input_state`, its blocks and ``jk`` are used
            (its head is not).
        readouts: one readout module per read-out representation, called as
            ``readout(x, batch, num_graphs)``: 1 for ``last``; ``L + 1`` for ``all``; one
            per pooling level with ``pools``.
        classifier: maps the graph representation to class scores.
        readout_layers: ``last`` or ``all`` (``all`` is not combined with pooling).
        pools: pooling modules (PyG ``TopKPooling`` / ``SAGPooling`` interface), one per
            pooling level, or ``None``.
        pool_every: pool after every this many blocks.
        dropout: dropout probability on the graph representation.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]``, batch:
        ``[num_nodes]`` (``None``: one graph) -> ``[num_graphs, num_classes]``.
    """

    def __init__(
        self,
        gnn: DeepGNN,
        readouts: Sequence[nn.Module],
        classifier: nn.Module,
        *,
        readout_layers: str = "last",
        pools: Sequence[nn.Module] | None = None,
        pool_every: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if readout_layers not in ("last", "all"):
            raise ConfigError(f"graph.readout_layers must be last or all, got {readout_layers!r}")
        self.gnn = gnn
        self.readouts = nn.ModuleList(readouts)
        self.classifier = classifier
        self.readout_layers = readout_layers
        self.pools = nn.ModuleList(pools) if pools else None
        self.pool_every = pool_every
        self.dropout = Dropout(dropout)

    def graph_representation(self, x: Tensor, edge_index: Tensor, batch: Tensor | None) -> Tensor:
        """:math:`h_G` for every graph of the batch (before dropout and classifier).

        Shapes:
            -> ``[num_graphs, readout_channels]``.
        """
        if batch is None:
            batch = x.new_zeros(x.size(0), dtype=torch.long)
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        if self.pools is not None:
            return self._pooled(x, edge_index, batch, num_graphs)
        states = self.gnn.node_states(x, edge_index)
        if self.readout_layers == "all":
            parts = [r(h, batch, num_graphs) for r, h in zip(self.readouts, states, strict=True)]
            return torch.cat(parts, dim=-1)  # [num_graphs, sum of state widths]
        last = self.gnn.jk(states[1:]) if self.gnn.jk is not None else states[-1]
        return self.readouts[0](last, batch, num_graphs)

    def _pooled(self, x: Tensor, edge_index: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        assert self.pools is not None
        x, edge_index = self.gnn.input_state(x, edge_index)
        history = [x]
        blocks = self.gnn.blocks
        if self.gnn.active_blocks is not None:
            blocks = blocks[: self.gnn.active_blocks]
        out: Tensor | None = None
        level = 0
        for i, block in enumerate(blocks, start=1):
            x = block(x, edge_index, history)
            history.append(x)
            pooled = i % self.pool_every == 0 and level < len(self.pools)
            if pooled:
                x, edge_index, _, batch, perm, _ = self.pools[level](x, edge_index, batch=batch)
                # Earlier representations follow the kept nodes, so skips still line up.
                history = [h[perm] for h in history[:-1]] + [x]
            if pooled or i == len(blocks):
                r = self.readouts[level](x, batch, num_graphs)
                out = r if out is None else out + r
                level += 1
                if not pooled:
                    break
        assert out is not None
        return out

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None) -> Tensor:
        return self.classifier(self.dropout(self.graph_representation(x, edge_index, batch)))

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
