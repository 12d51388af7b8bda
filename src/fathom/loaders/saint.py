r"""GraphSAINT random-walk sampler with its loss and aggregator normalisation, plain torch.

`"GraphSAINT: Graph Sampling Based Inductive Learning Method"
<https://arxiv.org/abs/1907.04931>`_ (Zeng et al., ICLR 2020), with the semantics of PyG's
``GraphSAINTRandomWalkSampler`` (which needs torch-sparse / torch-cluster, not installable
everywhere). A batch: ``num_roots`` roots drawn uniformly over the nodes, a random walk of
``walk_length`` steps from each (along ``edge_index[0] -> edge_index[1]``, as PyG; a node
without out-neighbour stays put), and the subgraph induced by every visited node.

Normalisation (Sec. 3.2 of the paper; the formulas of PyG's ``GraphSAINTSampler``). A
pre-sampling phase draws whole epochs of ``num_steps`` batches until
:math:`\sum_{\text{batches}} |V_s| \ge N \cdot` ``sample_coverage``; with :math:`M` the number
of batches drawn, :math:`C_v` the batches containing node :math:`v` and :math:`C_e` those
containing edge :math:`e = (u, v)` (``u = edge_index[0, e]``),

.. math::
    \text{node\_norm}_v = \frac{M}{C_v \, N}, \qquad
    \text{edge\_norm}_e = \operatorname{clamp}\Big(\frac{C_u}{C_e}, 0, 10^4\Big),

with :math:`C_v = 0` replaced by :math:`0.1` in ``node_norm`` and :math:`0/0` by
``edge_norm = 0.1``. Since :math:`C_v / M \approx p_v = P(v \in V_s)`,

.. math::
    \mathbb{E}\Big[\sum_{v \in V_s \cap V_{train}} \text{node\_norm}_v\, \ell_v\Big]
    \approx \frac{1}{N} \sum_{v \in V_{train}} \ell_v,

the full-graph loss (the mean over the training nodes times :math:`|V_{train}| / N`, a
constant; exactly the mean when every node trains), and ``edge_norm`` undoes the sampling
bias of a sum aggregator (:math:`1 / \alpha_{u,v}`, :math:`\alpha_{u,v} = C_e / C_u`). PyG's
training recipe: ``loss = (loss_per_node * batch.node_norm)[batch.train_mask].sum()``, edge
weight ``batch.edge_norm`` in the convolutions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor
from torch_geometric.data import Data

from fathom.errors import ConfigError
from fathom.loaders.csr import expand_segments, to_csr
from fathom.loaders.partition import batch_data
from fathom.loaders.shard import resolve_shard
from fathom.seeding import derive_seed

__all__ = ["GraphSAINTRandomWalkLoader", "random_walk"]

_CHUNK_ENTRIES = 1 << 22
"""Batches are sampled many at once, about this many gathered CSR entries at a time."""


def random_walk(
    rowptr: Tensor,
    col: Tensor,
    start: Tensor,
    walk_length: int,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Uniform random walks from every ``start`` node at once.

    Step :math:`v \to` ``col[rowptr[v] + floor(r * deg(v))]``, :math:`r \sim U[0, 1)`; a node
    with :math:`\deg v = 0` stays where it is (as torch-cluster's ``random_walk``).

    Args:
        rowptr, col: the graph in CSR form grouped by the node walked from.
        start: the roots.
        walk_length: :math:`L`, steps per walk.
        generator: the random stream (on ``start``'s device); the global one if :obj:`None`.

    Shapes:
        - **rowptr:** :math:`(N + 1)`; **col:** :math:`(E)`; **start:** :math:`(R)`
        - **output:** :math:`(R, L + 1)`, the roots in column 0.
    """
    deg = rowptr[1:] - rowptr[:-1]
    cur = start
    walk = [start]
    for _ in range(walk_length):
        d = deg[cur]
        r = torch.rand(cur.numel(), generator=generator, device=cur.device, dtype=torch.float64)
        off = torch.minimum((r * d).long(), (d - 1).clamp(min=0))
        if col.numel():
            nxt = col[(rowptr[cur] + off).clamp_(max=col.numel() - 1)]
            cur = torch.where(d > 0, nxt, cur)
        walk.append(cur)
    return torch.stack(walk, dim=1)


class GraphSAINTRandomWalkLoader:
    r"""GraphSAINT random-walk mini-batches (Zeng et al., ICLR 2020), PyG's semantics.

    Each batch samples ``num_roots`` roots uniformly (with repeats), walks ``walk_length``
    steps from each (:func:`random_walk`), and returns the subgraph induced by the visited
    nodes :math:`V_s` (at most ``num_roots * (walk_length + 1)``) as a PyG ``Data``: node
    attributes (``x``, ``y``, masks, ...) sliced, edge attributes sliced, ``edge_index``
    relabelled, ``n_id`` / ``e_id`` (global ids, ascending) and, when ``sample_coverage >
    0``, ``node_norm`` (loss normalisation) and ``edge_norm`` (aggregator normalisation) —
    formulas in :mod:`fathom.loaders.saint`. On ``data``'s device (CPU or CUDA).

    Args:
        data: the graph (``edge_index`` and ``num_nodes`` at least).
        num_roots: roots per batch (PyG's ``batch_size``).
        walk_length: steps per walk.
        num_steps: batches per epoch (``len(loader)``).
        sample_coverage: pre-sampling budget for the normalisation, in sampled nodes per
            node (PyG's; the paper uses 50). 0: no normalisation.
        seed: seed of the loader's generator (pre-sampling first, then the epochs).
        rank, world_size: this process's share of a multi-process run
            (:mod:`fathom.loaders.shard`): every rank pre-samples the same normalisation
            from ``seed``, then draws ``ceil(num_steps / world_size)`` batches per epoch
            from a stream of its own (``derive_seed(seed, "rank", rank)``). ``None``: the
            process group's (one process without one).

    Attributes:
        node_norm, edge_norm: the normalisation of every node / edge (``sample_coverage >
            0``). Shapes :math:`(N)`, :math:`(E)`.
        node_count, edge_count, num_samples: :math:`C_v`, :math:`C_e` and :math:`M` of the
            pre-sampling.
    """

    def __init__(
        self,
        data: Data,
        num_roots: int,
        walk_length: int,
        *,
        num_steps: int = 1,
        sample_coverage: int = 0,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if data.edge_index is None:
            raise ConfigError("GraphSAINTRandomWalkLoader needs data.edge_index")
        for name, value, low in (
            ("num_roots", num_roots, 1),
            ("walk_length", walk_length, 0),
            ("num_steps", num_steps, 1),
            ("sample_coverage", sample_coverage, 0),
        ):
            if int(value) != value or value < low:
                raise ConfigError(f"{name} must be an integer of at least {low}, got {value!r}")
        if "node_norm" in data or "edge_norm" in data:
            raise ConfigError("data already holds node_norm / edge_norm; remove them first")
        self.data = data
        self.num_nodes = N = int(data.num_nodes)
        if N < 1:
            raise ConfigError("GraphSAINTRandomWalkLoader needs a graph with at least one node")
        self.num_edges = data.edge_index.size(1)
        self.num_roots = int(num_roots)
        self.walk_length = int(walk_length)
        self.num_steps = int(num_steps)
        self.sample_coverage = int(sample_coverage)
        self.device = data.edge_index.device
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        # Walks go edge_index[0] -> edge_index[1] (PyG's): rows grouped by the source, so
        # CSR row ``u`` lists the targets of u's out-edges.
        self._csr = to_csr(data.edge_index.flip(0), N)
        self.node_norm: Tensor | None = None
        self.edge_norm: Tensor | None = None
        if self.sample_coverage > 0:
            self._compute_norm()
        self.rank, self.world_size = resolve_shard(rank, world_size)
        self.steps = self.num_steps  # batches per epoch of this rank
        if self.world_size > 1:
            self.steps = math.ceil(self.num_steps / self.world_size)
            self.generator = torch.Generator(device=self.device).manual_seed(
                derive_seed(int(seed), "rank", self.rank)
            )

    def __len__(self) -> int:
        return self.steps

    def _chunk_size(self) -> int:
        """Batches sampled at once: about :data:`_CHUNK_ENTRIES` gathered CSR entries."""
        avg_deg = self.num_edges / self.num_nodes
        per_batch = self.num_roots * (self.walk_length + 1) * (1.0 + avg_deg)
        return max(1, int(_CHUNK_ENTRIES // per_batch))

    def _sample_chunk(self, num_batches: int) -> _Chunk:
        r"""``num_batches`` batches at once, vectorised over all their roots.

        Node :math:`v` of batch :math:`b` is the key :math:`bN + v` (unique, sorted, so
        grouped by batch); edge :math:`e = (u, w)` of the graph is in batch :math:`b` when
        both keys :math:`bN + u` and :math:`bN + w` are, found among the out-edges of the
        batch's nodes (CSR rows) by a binary search of the keys.
        """
        N, E, R = self.num_nodes, self.num_edges, self.num_roots
        dev = self.device
        csr = self._csr
        start = torch.randint(0, N, (num_batches * R,), generator=self.generator, device=dev)
        walk = random_walk(csr.rowptr, csr.col, start, self.walk_length, generator=self.generator)
        per_batch = R * (self.walk_length + 1)
        b = torch.arange(walk.numel(), device=dev) // per_batch
        key = torch.unique(b * N + walk.reshape(-1))
        node_batch, node = key // N, key % N
        node_count = torch.bincount(node_batch, minlength=num_batches)
        node_ptr = torch.cumsum(node_count, 0) - node_count

        starts = csr.rowptr[node]
        pos, seg, _ = expand_segments(starts, csr.rowptr[node + 1] - starts)
        query = node_batch[seg] * N + csr.col[pos]
        idx = torch.searchsorted(key, query).clamp_(max=key.numel() - 1)
        found = key[idx] == query
        pos, seg, idx = pos[found], seg[found], idx[found]
        edge = csr.edge_ids(pos)
        edge_batch = node_batch[seg]
        order = torch.argsort(edge_batch * E + edge)
        edge, edge_batch = edge[order], edge_batch[order]
        # local ids: position in the batch's node list (seg is the source, idx the target)
        offset = node_ptr[edge_batch]
        edge_index = torch.stack([seg[order] - offset, idx[order] - offset])
        edge_count = torch.bincount(edge_batch, minlength=num_batches)
        return _Chunk(node, node_count, edge_index, edge, edge_count)

    def _chunks(self, num_batches: int) -> Iterator[_Chunk]:
        size = self._chunk_size()
        for first in range(0, num_batches, size):
            yield self._sample_chunk(min(size, num_batches - first))

    def _compute_norm(self) -> None:
        N = self.num_nodes
        node_count = torch.zeros(N, device=self.device)
        edge_count = torch.zeros(self.num_edges, device=self.device)
        num_samples = total = 0
        while total < N * self.sample_coverage:
            for chunk in self._chunks(self.num_steps):
                node_count += torch.bincount(chunk.n_id, minlength=N)
                edge_count += torch.bincount(chunk.e_id, minlength=self.num_edges)
                total += chunk.n_id.numel()
            num_samples += self.num_steps
        self.node_count, self.edge_count, self.num_samples = node_count, edge_count, num_samples

        t = node_count[self.data.edge_index[0]]
        edge_norm = (t / edge_count).clamp_(0, 1e4)
        edge_norm[torch.isnan(edge_norm)] = 0.1
        node_norm = torch.where(node_count == 0, 0.1, node_count)
        self.node_norm = num_samples / node_norm / N
        self.edge_norm = edge_norm

    def __iter__(self) -> Iterator[Data]:
        for chunk in self._chunks(self.steps):
            node_sizes = chunk.node_count.tolist()
            edge_sizes = chunk.edge_count.tolist()
            for n_id, edge_index, e_id in zip(
                chunk.n_id.split(node_sizes),
                chunk.edge_index.split(edge_sizes, dim=1),
                chunk.e_id.split(edge_sizes),
                strict=True,
            ):
                batch = batch_data(self.data, n_id, edge_index, e_id)
                if self.node_norm is not None and self.edge_norm is not None:
                    batch.node_norm = self.node_norm[n_id]
                    batch.edge_norm = self.edge_norm[e_id]
                yield batch


class _Chunk(NamedTuple):
    """Consecutive batches, concatenated: per batch, ``n_id`` ascending, ``edge_index``
    (local ids) and ``e_id`` ascending; ``node_count`` / ``edge_count`` their sizes."""

    n_id: Tensor
    node_count: Tensor
    edge_index: Tensor
    e_id: Tensor
    edge_count: Tensor
