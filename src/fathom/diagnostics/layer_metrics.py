"""Per-layer over-smoothing metrics, computed for many layers at once.

:class:`ProbeGraph` holds what the metrics need from the graph (computed once per graph) and
the node rows / edge endpoints / node pairs each metric reads. A probe gathers just those
rows of every layer's output (one ``index_select`` per layer) and :func:`measure_layers`
computes every requested metric for a whole stack of layers of one width in a handful of
batched tensor operations: the cost per layer is a few small kernels, not a few dozen Python
calls. The values equal those of the pure functions in
:mod:`fathom.diagnostics.oversmoothing` on the same rows / edges / pairs (tests check this).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from fathom.diagnostics import oversmoothing as om
from fathom.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "ProbeGraph",
    "hop_pairs",
    "measure_layers",
    "measure_one",
    "resolve_metrics",
]

DEFAULT_METRICS = ("dirichlet_energy", "mad", "effective_rank")
"""What ``fathom diagnose`` reports per layer at least, and a probe measures by default."""

METRICS: dict[str, str] = {
    "dirichlet_energy": "Dirichlet energy (Rusch et al. 2023), oversmoothing.dirichlet_energy",
    "normalized_energy": "Rayleigh quotient of GCN's Laplacian, "
    "oversmoothing.normalized_dirichlet_energy",
    "mad": "mean average cosine distance over all pairs (Chen et al. 2020), oversmoothing.mad",
    "mad_gap": "MAD of remote (>= 8 hops) minus neighbour (<= 3 hops) pairs, oversmoothing.mad_gap",
    "numerical_rank": "stable rank |X|_F^2 / |X|_2^2, oversmoothing.numerical_rank",
    "effective_rank": "entropy rank of the singular values, oversmoothing.effective_rank",
    "dominant_distance": "relative distance to the dominant subspace (Oono & Suzuki 2020), "
    "oversmoothing.dominant_subspace_distance",
    "class_separation": "between / within class centroid distance (needs labels), "
    "oversmoothing.class_separation",
    "norm": "mean row norm (explosion / vanishing)",
}
"""Per-layer metrics by name, with what they are (see :mod:`fathom.diagnostics.oversmoothing`
for formulas and papers)."""


def resolve_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """``"all"``, a comma-separated string or names -> validated names (ConfigError if unknown)."""
    if isinstance(metrics, str):
        names = (
            tuple(METRICS)
            if metrics == "all"
            else tuple(m.strip() for m in metrics.split(",") if m.strip())
        )
    else:
        names = tuple(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ConfigError(
            f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)} or 'all'"
        )
    return names


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
            names = set(metrics)
            if names & {
                "mad",
                "numerical_rank",
                "effective_rank",
                "normalized_energy",
                "dominant_distance",
                "class_separation",
                "norm",
            }:
                rows = self.nodes if self.nodes is not None else torch.arange(self.num_nodes)
                parts.append(("rows", rows))
            if names & {"dirichlet_energy", "normalized_energy"}:
                parts += [("src", self.energy_edges[0].cpu()), ("dst", self.energy_edges[1].cpu())]
            if "mad_gap" in names:
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


def _safe_div(a: Tensor, b: Tensor) -> Tensor:
    return torch.where(b > 0, a / b.clamp_min(1e-30), torch.zeros_like(a))


@torch.no_grad()
def measure_layers(
    samples: Tensor, graph: ProbeGraph, metrics: Sequence[str], slices: dict[str, slice]
) -> list[dict[str, float]]:
    """Every metric in ``metrics`` for a stack of layers of one width.

    Args:
        samples: ``[L, G, C]``: for each of ``L`` layers, the rows of its output at
            ``graph.layout(metrics)``'s index.
        graph: the :class:`ProbeGraph` the layout came from.
        metrics: names from :data:`METRICS`.
        slices: the layout's parts.

    Returns:
        One ``{metric: value}`` dict per layer.
    """
    x = samples.float()
    num_layers = x.size(0)
    out: dict[str, Tensor] = {}
    names = set(metrics)
    rows = x[:, slices["rows"]] if "rows" in slices else None
    sq = None
    if rows is not None:
        norms = torch.linalg.vector_norm(rows, dim=2, keepdim=True)  # [L, R, 1]
        sq = norms.square().sum((1, 2))
        if "norm" in names:
            out["norm"] = norms.mean((1, 2))
        if "mad" in names:
            n = rows.size(1)
            unit = rows / norms.clamp_min(1e-12)
            s = unit.sum(1).double()
            cos_sum = s.square().sum(1) - (norms > 0).sum((1, 2)).double()
            out["mad"] = (
                (1.0 - cos_sum / max(n * (n - 1), 1)).clamp_min(0.0)
                if n > 1
                else torch.zeros(num_layers)
            )
        if names & {"numerical_rank", "effective_rank"}:
            r, c = rows.shape[1:]
            gram = rows.transpose(1, 2) @ rows if r >= c else rows @ rows.transpose(1, 2)
            sv = torch.linalg.eigvalsh(gram).double().clamp_min(0.0).sqrt()  # ascending
            top = sv[:, -1]
            out["numerical_rank"] = _safe_div(sv.square().sum(1), top.square())
            total = sv.sum(1, keepdim=True)
            p = _safe_div(sv, total.expand_as(sv))
            entropy = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(1)
            out["effective_rank"] = torch.where(
                total.squeeze(1) > 0, entropy.exp(), torch.zeros_like(entropy)
            )
        if "dominant_distance" in names:
            comp, w = graph.sampled_basis(x.device)
            k = int(comp.max()) + 1 if comp.numel() else 0
            basis = torch.zeros(k, rows.size(1), device=x.device)
            basis[comp, torch.arange(rows.size(1), device=x.device)] = w
            coeff = basis @ rows  # [L, K, C]
            residual = rows - w.view(1, -1, 1) * coeff.index_select(1, comp)
            out["dominant_distance"] = _safe_div(residual.square().sum((1, 2)), sq).sqrt()
        if "class_separation" in names:
            classes = graph.classes(x.device)
            if classes is None:
                out["class_separation"] = torch.full((num_layers,), math.nan)
            else:
                index, avg = classes
                centroids = avg @ rows  # [L, K, C]
                labelled = index >= 0
                gathered = centroids.index_select(1, index.clamp_min(0))
                dist = torch.linalg.vector_norm(rows - gathered, dim=2) * labelled
                within = (dist @ avg.T).mean(1)  # [L]
                k = centroids.size(1)
                between = torch.cdist(centroids, centroids).sum((1, 2)) / (k * (k - 1))
                ratio = _safe_div(between, within)
                out["class_separation"] = torch.where(
                    (within <= 0) & (between > 0), torch.full_like(ratio, math.inf), ratio
                )
    if names & {"dirichlet_energy", "normalized_energy"}:
        a, b = x[:, slices["src"]], x[:, slices["dst"]]
        if "dirichlet_energy" in names:
            out["dirichlet_energy"] = (a - b).square().sum((1, 2)).double() * graph.energy_scale
        if "normalized_energy" in names:
            ws, wd = graph.endpoint_weights(x.device)
            diff = (a * ws - b * wd).square().sum((1, 2)).double() * graph.energy_scale
            # (1/2) sum_edges |.|^2 / |X|_F^2, with |X|_F^2 estimated from the measured rows
            total = sq.double() * graph.num_nodes / max(graph.num_rows, 1)  # type: ignore[union-attr]
            out["normalized_energy"] = _safe_div(diff * graph.num_nodes / 2.0, total)
    if "mad_gap" in names:
        _, pairs, slot, _ = graph.compact_pairs(x.device)
        u = x[:, slices["pairs"]]
        if pairs.size(1) == 0:
            out["mad_gap"] = torch.zeros(num_layers)
        else:
            u = u / torch.linalg.vector_norm(u, dim=2, keepdim=True).clamp_min(1e-12)
            cos = (u.index_select(1, pairs[0]) * u.index_select(1, pairs[1])).sum(2)
            dist = (1.0 - cos).clamp_min(0.0)
            nonzero = (dist > 1e-6).float()
            num_slots = 2 * u.size(1)
            # one index_add over (layer, slot) pairs flattened; distances then counts
            flat = (
                slot.unsqueeze(0)
                + num_slots * torch.arange(num_layers, device=x.device).unsqueeze(1)
            ).reshape(-1)
            sums = torch.zeros(2, num_layers * num_slots, device=x.device)
            sums.index_add_(1, flat, torch.stack([dist * nonzero, nonzero]).reshape(2, -1))
            sums = sums.view(2, num_layers, num_slots)
            per_node = (sums[0] / sums[1].clamp_min(1)).view(num_layers, 2, -1)
            counted = (per_node > 0).sum(2).clamp_min(1)
            mads = per_node.sum(2) / counted  # [L, 2]: near, far
            out["mad_gap"] = mads[:, 1] - mads[:, 0]
    values = {k: v.tolist() for k, v in out.items()}
    return [{m: float(values[m][i]) for m in metrics} for i in range(num_layers)]


def measure_one(x: Tensor, graph: ProbeGraph, metrics: Sequence[str] | str) -> dict[str, float]:
    """The metrics of one node representation ``x`` ``[N, C]`` on ``graph`` (sampled as the
    graph says)."""
    names = resolve_metrics(metrics) if isinstance(metrics, str) else tuple(metrics)
    index, slices = graph.layout(names, x.device)
    return measure_layers(x.detach().index_select(0, index).unsqueeze(0), graph, names, slices)[0]
