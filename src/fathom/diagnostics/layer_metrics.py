"""Per-layer over-smoothing metrics, computed for many layers at once.

:class:`ProbeGraph` holds what the metrics need from the graph (computed once per graph) and
the node rows / edge endpoints / node pairs each metric reads. A probe gathers just those
rows of every layer's output (one ``index_select`` per layer) and :func:`measure_layers`
computes every requested metric for a whole stack of layers of one width in a handful of
batched tensor operations: the cost per layer is a few small kernels, not a few dozen Python
calls. Each metric's batched form is part of its record in :mod:`fathom.diagnostics.metrics`;
the values equal those of the pure functions in :mod:`fathom.diagnostics.oversmoothing` on the
same rows / edges / pairs (tests check this).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from fathom.diagnostics import oversmoothing as om
from fathom.diagnostics.metrics import (
    DEFAULT_METRICS,
    METRICS,
    LayerBatch,
    metric_records,
    resolve_metrics,
)
from fathom.errors import DataError

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "ProbeGraph",
    "hop_pairs",
    "measure_layers",
    "measure_one",
    "resolve_metrics",
]


@dataclass
class ProbeGraph:
    """The graph-side quantities the metrics need, computed once per graph.

    By default (``max_nodes=512``, ``max_edges=2048``, ``max_pairs=512``) a graph larger
    than that is measured on a fixed random sample (seeded), so that probing every layer stays
    cheap during training: the Dirichlet energies on ``max_edges`` directed edges (unbiased
    estimates of the sums over all edges), MAD, ranks, class separation, row norm and the
    distance to the dominant subspace on the rows of ``max_nodes`` nodes (MAD: unbiased for
    the all-pairs mean; the distance: least-squares projection of the sampled rows onto the
    sampled basis vectors, exact when the representation has fully collapsed onto the
    subspace), MADGap on ``max_pairs`` pairs of each kind. ``None`` means no limit (exact):
    ``fathom diagnose`` measures exactly. ``sampled`` says whether anything was sampled.
    """

    edge_index: Tensor
    num_nodes: int
    y: Tensor | None = None
    max_nodes: int | None = 512
    max_edges: int | None = 2048
    max_pairs: int | None = 512
    seed: int = 0
    nodes: Tensor | None = field(default=None, init=False)
    energy_edges: Tensor = field(init=False)
    energy_scale: float = field(init=False)
    inv_sqrt_degree: Tensor = field(init=False, repr=False)
    _basis: tuple[Tensor, Tensor] | None = field(default=None, init=False, repr=False)
    _pairs: tuple[Tensor, Tensor] | None = field(default=None, init=False, repr=False)
    _weights: tuple[Tensor, Tensor] | None = field(default=None, init=False, repr=False)
    _classes: tuple[Tensor, Tensor] | None = field(default=None, init=False, repr=False)
    _sampled_basis: tuple[Tensor, Tensor] | None = field(default=None, init=False, repr=False)
    _compact: tuple[Tensor, ...] | None = field(default=None, init=False, repr=False)
    _layouts: dict[Any, tuple[Tensor, dict[str, slice]]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        om._check_edges(self.edge_index, self.num_nodes)
        if self.y is not None and (self.y.dim() != 1 or self.y.size(0) != self.num_nodes):
            raise DataError(
                f"labels must have one entry per node ({self.num_nodes}), "
                f"got shape {tuple(self.y.shape)}"
            )
        gen = torch.Generator().manual_seed(self.seed)
        ei = self.edge_index.detach()
        num_edges = ei.size(1)
        if self.max_edges is not None and num_edges > self.max_edges:
            pick = torch.randperm(num_edges, generator=gen)[: self.max_edges].to(ei.device)
            self.energy_edges = ei[:, pick]
        else:
            self.energy_edges = ei
        kept = self.energy_edges.size(1)
        not_loop = ei[0] != ei[1]
        deg = torch.zeros(self.num_nodes, device=ei.device)
        deg.index_add_(0, ei[0][not_loop], torch.ones(int(not_loop.sum()), device=ei.device))
        self.inv_sqrt_degree = (1.0 + deg).rsqrt()
        # E(X) = (1/N) * sum over all directed entries = (num_edges / N) * mean over entries.
        self.energy_scale = num_edges / max(self.num_nodes, 1) / max(kept, 1)
        if self.max_nodes is not None and self.num_nodes > self.max_nodes:
            self.nodes = (
                torch.randperm(self.num_nodes, generator=gen)[: self.max_nodes].sort().values
            )

    def endpoint_weights(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """``1/sqrt(1+d)`` at the source and target of every energy edge, ``[E', 1]`` each."""
        if self._weights is None:
            w = self.inv_sqrt_degree
            src, dst = self.energy_edges
            self._weights = (w[src].unsqueeze(1), w[dst].unsqueeze(1))
        return self._weights[0].to(device), self._weights[1].to(device)

    def layout(
        self, metrics: Sequence[str], device: torch.device
    ) -> tuple[Tensor, dict[str, slice]]:
        """The node indices to gather from a layer's output for ``metrics`` (one
        ``index_select``) and where each part lies in the gathered rows: ``rows`` (measured
        nodes), ``src`` / ``dst`` (energy edge endpoints), ``pairs`` (MADGap nodes)."""
        key = (tuple(sorted(set(metrics))), str(device))
        if key not in self._layouts:
            parts: list[tuple[str, Tensor]] = []
            gathered = set().union(*(m.gathers for m in metric_records(set(metrics))))
            if "rows" in gathered:
                rows = self.nodes if self.nodes is not None else torch.arange(self.num_nodes)
                parts.append(("rows", rows))
            if "edges" in gathered:
                parts += [("src", self.energy_edges[0].cpu()), ("dst", self.energy_edges[1].cpu())]
            if "pairs" in gathered:
                parts.append(("pairs", self.compact_pairs(torch.device("cpu"))[0]))
            slices, start = {}, 0
            for name, idx in parts:
                slices[name] = slice(start, start + idx.numel())
                start += idx.numel()
            index = (
                torch.cat([idx.cpu() for _, idx in parts])
                if parts
                else torch.zeros(0, dtype=torch.long)
            )
            self._layouts[key] = (index.to(device), slices)
        return self._layouts[key]

    @property
    def sampled(self) -> bool:
        return self.nodes is not None or self.energy_edges.size(1) < self.edge_index.size(1)

    @property
    def num_rows(self) -> int:
        return self.num_nodes if self.nodes is None else self.nodes.numel()

    def rows(self, x: Tensor) -> Tensor:
        """The rows of ``x`` the sampled metrics use."""
        return x if self.nodes is None else x.index_select(0, self.nodes.to(x.device))

    def labels(self) -> Tensor | None:
        if self.y is None:
            return None
        return self.y if self.nodes is None else self.y[self.nodes.to(self.y.device)]

    def classes(self, device: torch.device) -> tuple[Tensor, Tensor] | None:
        """(class index of each measured row, ``[K, rows]`` row-averaging matrix per class)
        over the labelled (``y >= 0``) measured rows; None without labels or < 2 classes."""
        y = self.labels()
        if y is None:
            return None
        if self._classes is None:
            keep = (y >= 0).nonzero(as_tuple=True)[0]
            classes, inverse = torch.unique(y[keep], return_inverse=True)
            if classes.numel() < 2:
                return None
            avg = torch.zeros(classes.numel(), y.numel())
            avg[inverse, keep] = 1.0
            avg /= avg.sum(1, keepdim=True)
            full = torch.full((y.numel(),), -1, dtype=torch.long)
            full[keep] = inverse
            self._classes = (full, avg)
        return self._classes[0].to(device), self._classes[1].to(device)

    @property
    def basis(self) -> tuple[Tensor, Tensor]:
        """(component id, weight of ``D~^{1/2} 1_c / norm``) of every node."""
        if self._basis is None:
            self._basis = om._components_and_weights(self.edge_index, self.num_nodes)
        return self._basis

    def sampled_basis(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """Component id and basis weight of every measured row, weights renormalised to unit
        norm per component over those rows."""
        if self._sampled_basis is None:
            comp, weight = self.basis
            if self.nodes is not None:
                comp, weight = comp[self.nodes], weight[self.nodes]
            norms = torch.zeros(int(comp.max()) + 1 if comp.numel() else 0, dtype=weight.dtype)
            norms.index_add_(0, comp, weight.square())
            self._sampled_basis = (comp, (weight / norms.sqrt()[comp]).float())
        return self._sampled_basis[0].to(device), self._sampled_basis[1].to(device)

    @property
    def pairs(self) -> tuple[Tensor, Tensor]:
        """(neighbour pairs ≤ 3 hops, remote pairs ≥ 8 hops) for MADGap, sampled."""
        if self._pairs is None:
            self._pairs = hop_pairs(
                self.edge_index, self.num_nodes, max_pairs=self.max_pairs, seed=self.seed
            )
        return self._pairs

    def compact_pairs(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The nodes the MADGap pairs touch; both pair sets (near, then far) re-indexed into
        them; each pair's aggregation slot; the number of near pairs."""
        if self._compact is None:
            near, far = self.pairs
            nodes, inverse = torch.unique(torch.cat([near, far], 1).cpu(), return_inverse=True)
            # Sources of remote pairs get their own slots (offset by |nodes|), so one
            # index_add aggregates both pair sets per source node.
            slot = inverse[0].clone()
            slot[near.size(1) :] += nodes.numel()
            self._compact = (nodes, inverse, slot, torch.tensor(near.size(1)))
        return tuple(t.to(device) for t in self._compact)  # type: ignore[return-value]


def hop_pairs(
    edge_index: Tensor,
    num_nodes: int,
    *,
    near: int = 3,
    far: int = 8,
    max_pairs: int | None = 512,
    max_sources: int = 512,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Node pairs at most ``near`` hops apart and at least ``far`` hops apart (Chen et al.,
    AAAI 2020, use 3 and 8 for MADGap), from BFS out of up to ``max_sources`` sampled
    sources; each set subsampled to ``max_pairs``. Unreachable pairs count as remote.

    Shapes:
        edge_index: ``[2, E]`` -> (``[2, P]``, ``[2, Q]``).
    """
    from fathom.diagnostics.oversquashing import hop_distances

    gen = torch.Generator().manual_seed(seed)
    if num_nodes > max_sources:
        sources = torch.randperm(num_nodes, generator=gen)[:max_sources]
    else:
        sources = torch.arange(num_nodes)
    dist = hop_distances(edge_index.cpu(), num_nodes, sources)
    out = []
    for mask in ((dist >= 1) & (dist <= near), (dist >= far) | (dist < 0)):
        src, dst = mask.nonzero(as_tuple=True)
        pairs = torch.stack([sources[src], dst])
        if max_pairs is not None and pairs.size(1) > max_pairs:
            pairs = pairs[:, torch.randperm(pairs.size(1), generator=gen)[:max_pairs]]
        out.append(pairs.to(edge_index.device))
    return out[0], out[1]


# ------------------------------------------------------------------------ batched metrics


@torch.no_grad()
def measure_layers(
    samples: Tensor, graph: ProbeGraph, metrics: Sequence[str], slices: dict[str, slice]
) -> list[dict[str, float]]:
    """Every metric in ``metrics`` for a stack of layers of one width, by each metric's
    batched form (:attr:`~fathom.diagnostics.metrics.LayerMetric.batched`).

    Args:
        samples: ``[L, G, C]``: for each of ``L`` layers, the rows of its output at
            ``graph.layout(metrics)``'s index.
        graph: the :class:`ProbeGraph` the layout came from.
        metrics: names from :data:`METRICS`.
        slices: the layout's parts.

    Returns:
        One ``{metric: value}`` dict per layer.
    """
    batch = LayerBatch(samples, graph, slices)
    values = {m.name: m.batched(batch).tolist() for m in metric_records(dict.fromkeys(metrics))}
    return [{m: float(values[m][i]) for m in metrics} for i in range(batch.num_layers)]


def measure_one(x: Tensor, graph: ProbeGraph, metrics: Sequence[str] | str) -> dict[str, float]:
    """The metrics of one node representation ``x`` ``[N, C]`` on ``graph`` (sampled as the
    graph says)."""
    names = resolve_metrics(metrics) if isinstance(metrics, str) else tuple(metrics)
    index, slices = graph.layout(names, x.device)
    return measure_layers(x.detach().index_select(0, index).unsqueeze(0), graph, names, slices)[0]
