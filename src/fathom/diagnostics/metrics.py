"""The per-layer over-smoothing metrics: one :class:`LayerMetric` record per metric.

A record names a metric and says everything the rest of fathom needs to know about it: its
axis label (plots), column header (``fathom diagnose`` tables), one-line description (CLI
help, :data:`METRICS`), the pure function of :mod:`fathom.diagnostics.oversmoothing` that
defines it and what that function takes besides the representation (:attr:`~LayerMetric.needs`),
and its batched form: the same formula over a stack of layers at once, reading the rows a
:class:`~fathom.diagnostics.layer_metrics.ProbeGraph` gathered
(:attr:`~LayerMetric.gathers`), as :func:`~fathom.diagnostics.layer_metrics.measure_layers`
computes it during probing.

Adding a metric: the pure function in :mod:`~fathom.diagnostics.oversmoothing`, one
``@layer_metric(...)``-decorated batched form here, and its test (the tests check every
record's batched form against its pure function).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from fathom.diagnostics import oversmoothing as om
from fathom.errors import ConfigError, DataError
from fathom.registry import Registry

if TYPE_CHECKING:
    from fathom.diagnostics.layer_metrics import ProbeGraph

__all__ = [
    "DEFAULT_METRICS",
    "GATHERED_PARTS",
    "INPUTS",
    "LAYER_METRICS",
    "METRICS",
    "TRAINING_METRICS",
    "LayerBatch",
    "LayerMetric",
    "layer_metric",
    "metric_names",
    "metric_records",
    "resolve_metrics",
    "series_label",
]

INPUTS = ("edge_index", "labels", "neighbor_pairs", "remote_pairs")
"""What a pure metric function may take after the representation ``x``, in this vocabulary:
``edge_index`` ``[2, E]``, node ``labels`` ``[N]``, MADGap's ``neighbor_pairs`` and
``remote_pairs`` ``[2, P]`` (:func:`~fathom.diagnostics.layer_metrics.hop_pairs`)."""

GATHERED_PARTS = ("rows", "edges", "pairs")
"""What a batched form may read of each layer's output: the measured node ``rows``, the
endpoints of the energy ``edges``, the nodes of MADGap's ``pairs`` (in this order in the
gathered rows)."""


@dataclass(frozen=True)
class LayerMetric:
    """One per-layer metric.

    Attributes:
        name: the key of the metric in probe records, results and configs.
        label: axis label, with units where there are any.
        column: short column header of ``fathom diagnose``'s per-layer table.
        description: one line: what it is, the paper, the pure function.
        function: the pure function defining the metric: ``function(x, *inputs) -> float``.
        needs: the inputs ``function`` takes after ``x``, in order, from :data:`INPUTS`.
        batched: ``batched(batch) -> [L]`` values for the stack of layers of a
            :class:`LayerBatch`; equal to ``function`` on the same rows / edges / pairs.
        gathers: the parts of each layer's output ``batched`` reads, from
            :data:`GATHERED_PARTS`.
    """

    name: str
    label: str
    column: str
    description: str
    function: Callable[..., Any]
    batched: Callable[[LayerBatch], Tensor]
    needs: tuple[str, ...] = ()
    gathers: frozenset[str] = frozenset({"rows"})

    def __post_init__(self) -> None:
        unknown = [n for n in self.needs if n not in INPUTS] + [
            p for p in self.gathers if p not in GATHERED_PARTS
        ]
        if unknown:
            raise ValueError(
                f"metric {self.name!r}: unknown input or part {unknown[0]!r}; "
                f"inputs: {', '.join(INPUTS)}; parts: {', '.join(GATHERED_PARTS)}"
            )

    def compute(self, x: Tensor, **inputs: Tensor | None) -> float:
        """The pure function on one representation ``x`` ``[N, C]``, given the
        :attr:`needs` as keywords (others are ignored)."""
        missing = [n for n in self.needs if inputs.get(n) is None]
        if missing:
            raise DataError(f"metric {self.name!r} needs {', '.join(missing)}")
        return float(self.function(x, *(inputs[n] for n in self.needs)))


LAYER_METRICS: Registry[LayerMetric] = Registry("metric")
"""Every per-layer metric by name."""

_ORDER: list[str] = []  # registration order: the order of "all", of METRICS and of the tables


def layer_metric(
    name: str,
    *,
    label: str,
    column: str,
    description: str,
    function: Callable[..., Any],
    needs: tuple[str, ...] = (),
    gathers: Iterable[str] = ("rows",),
) -> Callable[[Callable[[LayerBatch], Tensor]], Callable[[LayerBatch], Tensor]]:
    """Decorator registering the batched form it decorates as the :class:`LayerMetric`
    ``name`` (the other arguments are the record's fields)."""

    def deco(batched: Callable[[LayerBatch], Tensor]) -> Callable[[LayerBatch], Tensor]:
        record = LayerMetric(
            name=name,
            label=label,
            column=column,
            description=description,
            function=function,
            batched=batched,
            needs=tuple(needs),
            gathers=frozenset(gathers),
        )
        LAYER_METRICS.add(name, record)
        _ORDER.append(name)
        return batched

    return deco


def metric_names() -> tuple[str, ...]:
    """Every metric name, in registration order."""
    return tuple(_ORDER)


def metric_records(names: Iterable[str] | None = None) -> tuple[LayerMetric, ...]:
    """The records of ``names`` (default: every metric, in registration order)."""
    return tuple(LAYER_METRICS.get(n) for n in (_ORDER if names is None else names))


def series_label(name: str) -> str:
    """Axis label of a per-layer series: the metric's :attr:`~LayerMetric.label`, or, for a
    series that is no metric, the name de-underscored."""
    return LAYER_METRICS.get(name).label if name in LAYER_METRICS else name.replace("_", " ")


# --------------------------------------------------------------------------- batched inputs


def _safe_div(a: Tensor, b: Tensor) -> Tensor:
    return torch.where(b > 0, a / b.clamp_min(1e-30), torch.zeros_like(a))


class LayerBatch:
    """A stack of ``L`` layers' gathered rows, as the batched forms read them; what several
    metrics share (row norms, singular values, edge endpoints) is computed once, on first use.

    Args:
        samples: ``[L, G, C]``: for each layer, the rows of its output at the index of
            ``graph.layout(...)``.
        graph: the :class:`~fathom.diagnostics.layer_metrics.ProbeGraph` of the layout.
        slices: the layout's parts (``rows``, ``src`` / ``dst``, ``pairs``).
    """

    def __init__(self, samples: Tensor, graph: ProbeGraph, slices: Mapping[str, slice]) -> None:
        self.x = samples.float()
        self.graph = graph
        self.slices = slices
        self.num_layers = self.x.size(0)

    @cached_property
    def rows(self) -> Tensor:
        """``[L, R, C]``: the measured nodes' rows."""
        return self.x[:, self.slices["rows"]]

    @cached_property
    def row_norms(self) -> Tensor:
        """``[L, R, 1]``: their L2 norms."""
        return torch.linalg.vector_norm(self.rows, dim=2, keepdim=True)

    @cached_property
    def squared_norm(self) -> Tensor:
        """``[L]``: the squared Frobenius norm of the measured rows."""
        return self.row_norms.square().sum((1, 2))

    @cached_property
    def singular_values(self) -> Tensor:
        """``[L, min(R, C)]``: singular values of the measured rows, ascending, float64."""
        rows = self.rows
        r, c = rows.shape[1:]
        gram = rows.transpose(1, 2) @ rows if r >= c else rows @ rows.transpose(1, 2)
        return torch.linalg.eigvalsh(gram).double().clamp_min(0.0).sqrt()

    @cached_property
    def edge_ends(self) -> tuple[Tensor, Tensor]:
        """``[L, E', C]`` each: the rows at the sources and targets of the energy edges."""
        return self.x[:, self.slices["src"]], self.x[:, self.slices["dst"]]

    @property
    def pair_rows(self) -> Tensor:
        """``[L, P', C]``: the rows of the nodes MADGap's pairs touch."""
        return self.x[:, self.slices["pairs"]]


# ---------------------------------------------------------------------------------- records
# Registration order is the order of "all" (and so of probe records and tables).


@layer_metric(
    "dirichlet_energy",
    label="Dirichlet energy",
    column="energy",
    description="Dirichlet energy (Rusch et al. 2023), oversmoothing.dirichlet_energy",
    function=om.dirichlet_energy,
    needs=("edge_index",),
    gathers=("edges",),
)
def _dirichlet_energy(batch: LayerBatch) -> Tensor:
    a, b = batch.edge_ends
    return (a - b).square().sum((1, 2)).double() * batch.graph.energy_scale


@layer_metric(
    "normalized_energy",
    label="normalized Dirichlet energy (energy / |X|²)",
    column="energy / |X|²",
    description="Rayleigh quotient of GCN's Laplacian, oversmoothing.normalized_dirichlet_energy",
    function=om.normalized_dirichlet_energy,
    needs=("edge_index",),
    gathers=("rows", "edges"),
)
def _normalized_energy(batch: LayerBatch) -> Tensor:
    graph = batch.graph
    a, b = batch.edge_ends
    ws, wd = graph.endpoint_weights(batch.x.device)
    diff = (a * ws - b * wd).square().sum((1, 2)).double() * graph.energy_scale
    # (1/2) sum_edges |.|^2 / |X|_F^2, with |X|_F^2 estimated from the measured rows
    total = batch.squared_norm.double() * graph.num_nodes / max(graph.num_rows, 1)
    return _safe_div(diff * graph.num_nodes / 2.0, total)


@layer_metric(
    "mad",
    label="mean average distance (MAD)",
    column="MAD",
    description="mean average cosine distance over all pairs (Chen et al. 2020), oversmoothing.mad",
    function=om.mad,
)
def _mad(batch: LayerBatch) -> Tensor:
    rows, norms = batch.rows, batch.row_norms
    n = rows.size(1)
    if n <= 1:
        return torch.zeros(batch.num_layers)
    unit = rows / norms.clamp_min(1e-12)
    s = unit.sum(1).double()
    cos_sum = s.square().sum(1) - (norms > 0).sum((1, 2)).double()
    return (1.0 - cos_sum / max(n * (n - 1), 1)).clamp_min(0.0)


@layer_metric(
    "mad_gap",
    label="MADGap (remote minus neighbour MAD)",
    column="MADGap",
    description="MAD of remote (>= 8 hops) minus neighbour (<= 3 hops) pairs, "
    "oversmoothing.mad_gap",
    function=om.mad_gap,
    needs=("neighbor_pairs", "remote_pairs"),
    gathers=("pairs",),
)
def _mad_gap(batch: LayerBatch) -> Tensor:
    num_layers = batch.num_layers
    device = batch.x.device
    _, pairs, slot, _ = batch.graph.compact_pairs(device)
    u = batch.pair_rows
    if pairs.size(1) == 0:
        return torch.zeros(num_layers)
    u = u / torch.linalg.vector_norm(u, dim=2, keepdim=True).clamp_min(1e-12)
    cos = (u.index_select(1, pairs[0]) * u.index_select(1, pairs[1])).sum(2)
    dist = (1.0 - cos).clamp_min(0.0)
    nonzero = (dist > 1e-6).float()
    num_slots = 2 * u.size(1)
    # one index_add over (layer, slot) pairs flattened; distances then counts
    flat = (
        slot.unsqueeze(0) + num_slots * torch.arange(num_layers, device=device).unsqueeze(1)
    ).reshape(-1)
    sums = torch.zeros(2, num_layers * num_slots, device=device)
    sums.index_add_(1, flat, torch.stack([dist * nonzero, nonzero]).reshape(2, -1))
    sums = sums.view(2, num_layers, num_slots)
    per_node = (sums[0] / sums[1].clamp_min(1)).view(num_layers, 2, -1)
    counted = (per_node > 0).sum(2).clamp_min(1)
    mads = per_node.sum(2) / counted  # [L, 2]: near, far
    return mads[:, 1] - mads[:, 0]


@layer_metric(
    "numerical_rank",
    label="numerical rank (dimensions)",
    column="num. rank",
    description="stable rank |X|_F^2 / |X|_2^2, oversmoothing.numerical_rank",
    function=om.numerical_rank,
)
def _numerical_rank(batch: LayerBatch) -> Tensor:
    sv = batch.singular_values
    return _safe_div(sv.square().sum(1), sv[:, -1].square())


@layer_metric(
    "effective_rank",
    label="effective rank (dimensions)",
    column="eff. rank",
    description="entropy rank of the singular values, oversmoothing.effective_rank",
    function=om.effective_rank,
)
def _effective_rank(batch: LayerBatch) -> Tensor:
    sv = batch.singular_values
    total = sv.sum(1, keepdim=True)
    p = _safe_div(sv, total.expand_as(sv))
    entropy = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(1)
    return torch.where(total.squeeze(1) > 0, entropy.exp(), torch.zeros_like(entropy))


@layer_metric(
    "dominant_distance",
    label="relative distance to the dominant subspace",
    column="dist. dominant",
    description="relative distance to the dominant subspace (Oono & Suzuki 2020), "
    "oversmoothing.dominant_subspace_distance",
    function=om.dominant_subspace_distance,
    needs=("edge_index",),
)
def _dominant_distance(batch: LayerBatch) -> Tensor:
    rows, device = batch.rows, batch.x.device
    comp, w = batch.graph.sampled_basis(device)
    k = int(comp.max()) + 1 if comp.numel() else 0
    basis = torch.zeros(k, rows.size(1), device=device)
    basis[comp, torch.arange(rows.size(1), device=device)] = w
    coeff = basis @ rows  # [L, K, C]
    residual = rows - w.view(1, -1, 1) * coeff.index_select(1, comp)
    return _safe_div(residual.square().sum((1, 2)), batch.squared_norm).sqrt()


@layer_metric(
    "class_separation",
    label="class separation (between / within class distance)",
    column="class sep.",
    description="between / within class centroid distance (needs labels), "
    "oversmoothing.class_separation",
    function=om.class_separation,
    needs=("labels",),
)
def _class_separation(batch: LayerBatch) -> Tensor:
    classes = batch.graph.classes(batch.x.device)
    if classes is None:
        return torch.full((batch.num_layers,), math.nan)
    rows = batch.rows
    index, avg = classes
    centroids = avg @ rows  # [L, K, C]
    labelled = index >= 0
    gathered = centroids.index_select(1, index.clamp_min(0))
    dist = torch.linalg.vector_norm(rows - gathered, dim=2) * labelled
    within = (dist @ avg.T).mean(1)  # [L]
    k = centroids.size(1)
    between = torch.cdist(centroids, centroids).sum((1, 2)) / (k * (k - 1))
    ratio = _safe_div(between, within)
    return torch.where((within <= 0) & (between > 0), torch.full_like(ratio, math.inf), ratio)


@layer_metric(
    "norm",
    label="mean row norm (L2)",
    column="row norm",
    description="mean row norm (explosion / vanishing), oversmoothing.mean_row_norm",
    function=om.mean_row_norm,
)
def _norm(batch: LayerBatch) -> Tensor:
    return batch.row_norms.mean((1, 2))


# ------------------------------------------------------------------------- names and defaults

METRICS: dict[str, str] = {m.name: m.description for m in metric_records()}
"""Per-layer metrics by name, with what they are (see :mod:`fathom.diagnostics.oversmoothing`
for formulas and papers)."""

DEFAULT_METRICS = ("dirichlet_energy", "mad", "effective_rank")
"""What ``fathom diagnose`` reports per layer at least, and a probe measures by default."""

TRAINING_METRICS = (*DEFAULT_METRICS, "numerical_rank")
"""What a training run with ``train.diagnose_every`` measures per layer: the defaults plus the
numerical rank, the measure Zhang et al. (ICLR 2026) track through training."""


def resolve_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """``"all"``, a comma-separated string or names -> validated names (ConfigError if unknown)."""
    if isinstance(metrics, str):
        names = (
            metric_names()
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
