"""GraphSAGE neighbour sampling (Hamilton et al., NeurIPS 2017) in plain torch, behind PyG.

PyG's :class:`~torch_geometric.loader.NeighborLoader` needs pyg-lib or torch-sparse for its
sampler. :class:`NeighborSampler` is a :class:`~torch_geometric.sampler.BaseSampler` that
samples with torch ops only, so PyG's own :class:`~torch_geometric.loader.NodeLoader` turns
it into the usual mini-batches (``n_id``, ``e_id``, ``batch_size``, ``input_id``, seeds
first) and a PyG training loop runs unchanged; :func:`neighbor_loader` is the one-liner.

Every hop is vectorised over its whole frontier (no Python loop over nodes), on the graph's
device:

* nodes with at most ``fanout`` in-neighbours (or ``fanout == -1``) keep all of them;
* without replacement, the others draw a uniform ``fanout``-subset of their in-edges with
  Floyd's algorithm, run for all of them at once: ``fanout`` vectorised steps, each drawing
  one index per node and comparing it with the (at most ``fanout``) already chosen. The cost
  is O(frontier * fanout^2) whatever the degrees, where random sort keys per candidate edge
  would cost O(sum of the frontier's degrees), which hubs make large;
* with replacement, every node with an in-neighbour draws exactly ``fanout`` of them
  (``rowptr[v] + floor(rand * deg[v])``).

Newly reached nodes are numbered in order of first discovery through a global->local map
(``int64 [num_nodes]``, ``-1`` = not in the batch) that :class:`NeighborSampler` allocates
once and resets only at the entries a batch touched, so a batch costs O(sampled), not
O(num_nodes). First occurrences are found without a sort: ``scatter_reduce(amin)`` of the
candidates' positions into the map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import LinkLoader, NodeLoader
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    NegativeSampling,
    NodeSamplerInput,
    SamplerOutput,
)
from torch_geometric.sampler.neighbor_sampler import edge_sample

from fathom.errors import ConfigError, DataError
from fathom.loaders.csr import CSR, to_csr

__all__ = [
    "NeighborSampler",
    "SampledSubgraph",
    "link_neighbor_loader",
    "neighbor_loader",
    "sample_neighbors",
]


@dataclass(frozen=True)
class SampledSubgraph:
    """The result of :func:`sample_neighbors`.

    Attributes:
        n_id: Global ids of the sampled nodes: the seeds first (in the given order), then the
            nodes each hop reached for the first time, in order of discovery.
        edge_index: Sampled edges ``(source, target)`` in local ids (positions in ``n_id``),
            hop by hop; within a hop grouped by target.
        e_id: Original edge ids of ``edge_index``'s columns.
        batch_size: The number of seeds (``n_id[:batch_size]`` are the seeds).
        num_sampled_nodes: Nodes per hop, PyG's convention: ``[batch_size, new at hop 1,
            ...]`` (``len(fanouts) + 1`` entries).
        num_sampled_edges: Edges per hop (``len(fanouts)`` entries).

    Shapes:
        n_id: ``[num_sampled]``; edge_index: ``[2, E]``; e_id: ``[E]``.
    """

    n_id: Tensor
    edge_index: Tensor
    e_id: Tensor
    batch_size: int
    num_sampled_nodes: list[int]
    num_sampled_edges: list[int]


def _check_fanouts(fanouts: Sequence[int]) -> list[int]:
    if isinstance(fanouts, (int, str)) or not isinstance(fanouts, Sequence):
        raise ConfigError(f"num_neighbors: expected a list of ints, got {fanouts!r}")
    out = list(fanouts)
    if not out:
        raise ConfigError("num_neighbors: expected at least one hop, got []")
    for k in out:
        if isinstance(k, bool) or not isinstance(k, int) or (k < 1 and k != -1):
            raise ConfigError(
                f"num_neighbors: each fan-out must be an int >= 1 or -1 (all), got {out}"
            )
    return out


def _sample_hop(
    csr: CSR,
    frontier: Tensor,
    fanout: int,
    replace: bool,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """CSR positions of the in-edges drawn for every frontier node, grouped by node.

    Returns ``(positions, segment)``: ``segment[e]`` is the index in ``frontier`` of the
    target of edge ``e``.
    """
    device = frontier.device
    # index_select rather than ``t[idx]`` throughout: several times faster on the CPU.
    starts = csr.rowptr.index_select(0, frontier)
    deg = csr.rowptr.index_select(0, frontier + 1) - starts
    if fanout < 0:
        counts = deg
    elif replace:
        counts = torch.where(deg > 0, fanout, 0)
    else:
        counts = deg.clamp(max=fanout)
    offsets = torch.cumsum(counts, dim=0) - counts
    total = int(counts.sum())
    seg = torch.repeat_interleave(
        torch.arange(frontier.numel(), device=device), counts, output_size=total
    )
    if total == 0:
        return seg, seg

    if replace and fanout > 0:
        # float64 so floor(u * deg) stays exact (and < deg) for any realistic degree.
        u = torch.rand(total, generator=generator, device=device, dtype=torch.float64)
        d = deg.index_select(0, seg)
        pick = (u * d).long().clamp_(max=d - 1)
        return starts.index_select(0, seg) + pick, seg

    # Every in-edge of the nodes with at most ``fanout`` (all when fanout == -1) ...
    pos = (starts - offsets).index_select(0, seg) + torch.arange(total, device=device)
    if fanout < 0:
        return pos, seg
    idx = (deg > fanout).nonzero().view(-1)
    if idx.numel():
        # ... and a uniform fanout-subset for the others: Floyd's algorithm, all of them at
        # once. Step i draws t in [0, j], j = deg - fanout + i, and takes t, or j when t is
        # already taken (Bentley & Floyd, CACM 1987).
        db = deg.index_select(0, idx)
        u = torch.rand(
            (idx.numel(), fanout), generator=generator, device=device, dtype=torch.float64
        )
        chosen = torch.empty((idx.numel(), fanout), dtype=torch.long, device=device)
        for i in range(fanout):
            j = db - fanout + i
            t = (u[:, i] * (j + 1)).long().clamp_(max=j)
            if i > 0:
                taken = (chosen[:, :i] == t.unsqueeze(1)).any(dim=1)
                t = torch.where(taken, j, t)
            chosen[:, i] = t
        # Such a node's draws fill exactly its ``fanout`` slots at offsets[node].
        ar = torch.arange(fanout, device=device)
        slots = (offsets.index_select(0, idx).unsqueeze(1) + ar).view(-1)
        pos.index_copy_(0, slots, (starts.index_select(0, idx).unsqueeze(1) + chosen).view(-1))
    return pos, seg


def sample_neighbors(
    csr: CSR,
    seeds: Tensor,
    fanouts: Sequence[int],
    *,
    replace: bool = False,
    generator: torch.Generator | None = None,
    node_map: Tensor | None = None,
) -> SampledSubgraph:
    """Sample ``len(fanouts)`` hops of in-neighbours around ``seeds`` (GraphSAGE).

    Hop ``l`` expands every node first reached at hop ``l - 1`` (the seeds at hop 0) by up to
    ``fanouts[l]`` of its in-neighbours (all when it has fewer or ``fanouts[l] == -1``),
    drawn uniformly without replacement, or exactly ``fanouts[l]`` draws with
    ``replace=True`` (none for a node without in-neighbours). Each node is expanded once.

    Args:
        csr: The graph, grouped by target (:func:`~fathom.loaders.csr.to_csr`).
        seeds: Distinct seed node ids.
        fanouts: In-neighbours per node at each hop; ``-1`` for all.
        replace: Sample with replacement.
        generator: A :class:`torch.Generator` on ``csr``'s device; the same generator state
            gives the same subgraph.
        node_map: Scratch ``int64 [num_nodes]`` tensor on ``csr``'s device, all ``-1``; it is
            all ``-1`` again on return. Pass one to reuse it across calls (a batch then costs
            O(sampled) instead of O(num_nodes)); default: a fresh one.

    Shapes:
        seeds: ``[batch_size]`` -> :class:`SampledSubgraph`.

    Raises:
        ConfigError: ``fanouts`` empty or holding 0 or a value < -1.
        DataError: ``seeds`` out of range, repeated, or not 1-D integer.
    """
    fanouts = _check_fanouts(fanouts)
    device = csr.device
    if not isinstance(seeds, Tensor):
        seeds = torch.as_tensor(seeds)
    if seeds.dim() != 1 or seeds.dtype.is_floating_point or seeds.dtype == torch.bool:
        raise DataError(
            f"seeds: expected a 1-D integer tensor, got {seeds.dtype} {tuple(seeds.shape)}"
        )
    seeds = seeds.to(device=device, dtype=torch.long)
    if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) >= csr.num_nodes):
        raise DataError(
            f"seeds: node ids must lie in [0, {csr.num_nodes}), "
            f"got [{int(seeds.min())}, {int(seeds.max())}]"
        )
    if node_map is None:
        node_map = torch.full((csr.num_nodes,), -1, dtype=torch.long, device=device)

    batch_size = seeds.numel()
    parts = [seeds]
    touched = [seeds]  # every map entry written, reset on the way out (errors included)
    try:
        local = torch.arange(batch_size, device=device)
        node_map.index_put_((seeds,), local)
        # With a repeat, at most one of its positions can be the value the map kept.
        if not bool((node_map.index_select(0, seeds) == local).all()):
            raise DataError("seeds: expected distinct node ids, got repeats")

        rows: list[Tensor] = []
        cols: list[Tensor] = []
        e_ids: list[Tensor] = []
        num_nodes = [batch_size]
        num_edges: list[int] = []
        frontier, start, count = seeds, 0, batch_size
        for fanout in fanouts:
            if frontier.numel() == 0:
                num_nodes.append(0)
                num_edges.append(0)
                continue
            pos, seg = _sample_hop(csr, frontier, fanout, replace, generator)
            src = csr.col.index_select(0, pos)
            # The frontier holds the local ids [start, start + len(frontier)), in order.
            cols.append(seg + start)
            e_ids.append(csr.edge_ids(pos))

            cand = src.masked_select(node_map.index_select(0, src) < 0)
            if cand.numel():
                # First occurrence of each new node, without a sort: park a sentinel, take the
                # smallest candidate position per node, keep the positions that won.
                order = torch.arange(cand.numel(), device=device)
                touched.append(cand)
                node_map.index_fill_(0, cand, cand.numel())
                node_map.scatter_reduce_(0, cand, order, reduce="amin")
                new = cand.masked_select(node_map.index_select(0, cand) == order)
                node_map.index_copy_(
                    0, new, torch.arange(count, count + new.numel(), device=device)
                )
            else:
                new = cand
            rows.append(node_map.index_select(0, src))
            parts.append(new)
            num_nodes.append(new.numel())
            num_edges.append(pos.numel())
            frontier, start, count = new, count, count + new.numel()
    finally:
        for nodes in touched:
            node_map.index_fill_(0, nodes, -1)

    empty = torch.empty(0, dtype=torch.long, device=device)
    edge_index = torch.stack([torch.cat(rows or [empty]), torch.cat(cols or [empty])])
    return SampledSubgraph(
        n_id=torch.cat(parts),
        edge_index=edge_index,
        e_id=torch.cat(e_ids or [empty]),
        batch_size=batch_size,
        num_sampled_nodes=num_nodes,
        num_sampled_edges=num_edges,
    )


class NeighborSampler(BaseSampler):
    """GraphSAGE neighbour sampler for PyG's :class:`~torch_geometric.loader.NodeLoader`.

    A drop-in for the sampler inside PyG's ``NeighborLoader`` (homogeneous graphs,
    directional subgraphs, no temporal sampling) that needs neither pyg-lib nor
    torch-sparse. It keeps the graph as a :class:`~fathom.loaders.csr.CSR` and a reusable
    global->local node map on ``device``; sampled edges come back with their original edge
    ids, so :attr:`edge_permutation` is ``None``.

    Args:
        data: A :class:`~torch_geometric.data.Data` with ``edge_index``, or an
            ``edge_index`` tensor (then ``num_nodes`` is required).
        num_neighbors: In-neighbours sampled per node at each hop (``-1``: all), as in
            ``NeighborLoader``.
        num_nodes: The number of nodes, for an ``edge_index``.
        replace: Sample with replacement.
        seed: Seed of the sampler's generator (``None``: torch's default generator). In a
            DataLoader worker the generator is re-seeded with ``seed + worker id``, so
            workers draw different streams, reproducibly.
        device: Where to sample (default: ``edge_index``'s device).

    Example::

        sampler = NeighborSampler(data, [10, 5])
        loader = NodeLoader(data, node_sampler=sampler, input_nodes=data.train_mask,
                            batch_size=64, shuffle=True)
        for batch in loader:
            out = model(batch.x, batch.edge_index)[: batch.batch_size]
    """

    def __init__(
        self,
        data: Data | Tensor,
        num_neighbors: Sequence[int],
        *,
        num_nodes: int | None = None,
        replace: bool = False,
        seed: int | None = 0,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(data, Data):
            edge_index = data.edge_index
            if edge_index is None:
                raise DataError("data: expected an edge_index (adj_t is not supported)")
            num_nodes = data.num_nodes if num_nodes is None else num_nodes
        else:
            edge_index = data
            if num_nodes is None:
                raise ConfigError("num_nodes: required when data is an edge_index tensor")
        self.num_neighbors = _check_fanouts(num_neighbors)
        self.replace = bool(replace)
        self.seed = seed
        device = torch.device(device) if device is not None else edge_index.device
        self.csr = to_csr(edge_index.to(device), int(num_nodes))
        self.node_map = torch.full((self.csr.num_nodes,), -1, dtype=torch.long, device=device)
        self.generator: torch.Generator | None = None
        self._worker: int | None = None
        if seed is not None:
            self.generator = torch.Generator(device=device).manual_seed(seed)

    @property
    def device(self) -> torch.device:
        """Where sampling runs."""
        return self.csr.device

    def _generator(self) -> torch.Generator | None:
        info = torch.utils.data.get_worker_info()
        if self.seed is not None and info is not None and self._worker != info.id:
            # Forked workers inherit the same generator state; give each its own stream.
            self._worker = info.id
            self.generator = torch.Generator(device=self.device).manual_seed(
                self.seed + 1 + info.id
            )
        return self.generator

    def sample(self, seeds: Tensor) -> SampledSubgraph:
        """:func:`sample_neighbors` from ``seeds`` with this sampler's settings."""
        return sample_neighbors(
            self.csr,
            seeds,
            self.num_neighbors,
            replace=self.replace,
            generator=self._generator(),
            node_map=self.node_map,
        )

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs: Any) -> SamplerOutput:
        """Sample around ``index.node`` (PyG's sampler interface, used by ``NodeLoader``).

        Returns:
            A :class:`~torch_geometric.sampler.SamplerOutput`: ``node`` (seeds first),
            ``row``/``col`` (local source/target), ``edge`` (original edge ids), the
            per-hop counts and ``metadata = (input_id, time)``, which ``NodeLoader`` turns
            into ``batch.input_id`` and ``batch.batch_size``.
        """
        if index.time is not None:
            raise ConfigError("input_time: temporal sampling is not supported")
        if index.input_type is not None:
            raise ConfigError("input_nodes: heterogeneous graphs are not supported")
        sub = self.sample(index.node)
        return SamplerOutput(
            node=sub.n_id,
            row=sub.edge_index[0],
            col=sub.edge_index[1],
            edge=sub.e_id,
            batch=None,
            num_sampled_nodes=sub.num_sampled_nodes,
            num_sampled_edges=sub.num_sampled_edges,
            metadata=(index.input_id, index.time),
        )

    def sample_from_edges(
        self, index: EdgeSamplerInput, neg_sampling: NegativeSampling | None = None
    ) -> SamplerOutput:
        """Sample around the endpoints of ``index``'s edges (used by ``LinkLoader``).

        PyG's own link-level protocol (``edge_sample``, what ``LinkNeighborLoader`` runs):
        with ``neg_sampling`` the ``binary`` negatives (random node pairs) or ``triplet``
        negative destinations are drawn first, the union of all endpoints becomes the seeds
        (in ascending id, non-disjoint), and :meth:`sample_from_nodes` samples around them;
        ``metadata`` carries ``edge_label_index`` in local ids, which ``LinkLoader`` puts on
        the batch with ``edge_label`` (1 for the given edges, 0 for negatives).

        Only the edges of this sampler's graph are ever sampled, so a graph without the
        held-out edges (the training graph of a link split) never passes a held-out edge.
        """
        if index.time is not None:
            raise ConfigError("edge_label_time: temporal sampling is not supported")
        if index.input_type is not None:
            raise ConfigError("edge_label_index: heterogeneous graphs are not supported")

        def sample(seed: Tensor, seed_time: Tensor | None) -> SamplerOutput:
            return self.sample_from_nodes(NodeSamplerInput(input_id=None, node=seed))

        return edge_sample(
            index, sample, self.csr.num_nodes, disjoint=False, neg_sampling=neg_sampling
        )


def neighbor_loader(
    data: Data,
    num_neighbors: Sequence[int],
    *,
    input_nodes: Tensor | None = None,
    batch_size: int = 1,
    shuffle: bool = False,
    replace: bool = False,
    seed: int | None = 0,
    device: torch.device | str | None = None,
    **kwargs: Any,
) -> NodeLoader:
    """A PyG ``NeighborLoader`` equivalent on :class:`NeighborSampler` (no pyg-lib needed).

    Args:
        data: The graph, with ``edge_index`` and node features.
        num_neighbors: In-neighbours sampled per node at each hop (``-1``: all).
        input_nodes: Seed nodes, as indices or a boolean mask (default: all nodes).
        batch_size: Seeds per mini-batch.
        shuffle: Shuffle the seeds every epoch.
        replace: Sample with replacement.
        seed: Seeds both the sampler and, when shuffling, the order of the seeds (unless
            ``kwargs`` holds a ``generator``), so the same seed gives the same epochs.
        device: Where to sample (default: ``data.edge_index``'s device).
        **kwargs: Passed on to :class:`~torch_geometric.loader.NodeLoader` and
            :class:`torch.utils.data.DataLoader` (``drop_last``, ``num_workers``,
            ``transform``, ...).

    Returns:
        A :class:`~torch_geometric.loader.NodeLoader` yielding ``Data`` batches with
        ``n_id``, ``e_id``, ``input_id``, ``batch_size`` and the seeds first.
    """
    sampler = NeighborSampler(data, num_neighbors, replace=replace, seed=seed, device=device)
    if shuffle and seed is not None and kwargs.get("generator") is None:
        kwargs["generator"] = torch.Generator().manual_seed(seed)
    return NodeLoader(
        data,
        node_sampler=sampler,
        input_nodes=input_nodes,
        batch_size=batch_size,
        shuffle=shuffle,
        **kwargs,
    )


def link_neighbor_loader(
    data: Data,
    num_neighbors: Sequence[int],
    *,
    edge_label_index: Tensor | None = None,
    edge_label: Tensor | None = None,
    neg_sampling_ratio: float | None = None,
    batch_size: int = 1,
    shuffle: bool = False,
    replace: bool = False,
    seed: int | None = 0,
    device: torch.device | str | None = None,
    **kwargs: Any,
) -> LinkLoader:
    """A PyG ``LinkNeighborLoader`` equivalent on :class:`NeighborSampler` (no pyg-lib).

    Each batch holds ``batch_size`` supervision edges of ``edge_label_index`` (plus
    ``neg_sampling_ratio`` times as many random node pairs as negatives, PyG's ``binary``
    negative sampling) and the sampled neighbourhood of all their endpoints:
    ``batch.edge_label_index`` (local ids), ``batch.edge_label`` (1 / 0), ``n_id``,
    ``e_id``, ``input_id``.

    Args:
        data: The message-passing graph. For link prediction, the *training* graph: held-out
            edges must not be in it (they would pass messages).
        num_neighbors: In-neighbours sampled per node at each hop (``-1``: all).
        edge_label_index: The supervision edges ``[2, E]`` (default: every edge of ``data``).
        edge_label: Their labels (default: ones, with negatives zeros).
        neg_sampling_ratio: Random negative pairs per supervision edge (``None``: none).
        batch_size: Supervision edges per mini-batch.
        shuffle: Shuffle the supervision edges every epoch.
        replace: Sample neighbours with replacement.
        seed: Seeds the sampler and, when shuffling, the order of the edges. The negatives
            are PyG's, drawn from torch's global generator (seeded by ``fit``'s seed).
        device: Where to sample (default: ``data.edge_index``'s device).
        **kwargs: Passed on to :class:`~torch_geometric.loader.LinkLoader` and the
            ``DataLoader``.
    """
    sampler = NeighborSampler(data, num_neighbors, replace=replace, seed=seed, device=device)
    if shuffle and seed is not None and kwargs.get("generator") is None:
        kwargs["generator"] = torch.Generator().manual_seed(seed)
    return LinkLoader(
        data,
        link_sampler=sampler,
        edge_label_index=edge_label_index,
        edge_label=edge_label,
        neg_sampling_ratio=neg_sampling_ratio,
        batch_size=batch_size,
        shuffle=shuffle,
        **kwargs,
    )
