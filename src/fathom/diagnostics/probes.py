"""Layer probes: record what every message-passing layer of any ``nn.Module`` outputs.

:class:`LayerProbe` attaches forward hooks to the layers of a model — fathom's
:class:`~fathom.nn.block.GNNBlock` s and conv head, the convs of a PyG ``BasicGNN``
(``torch_geometric.nn.models.GCN`` …), or any stack of PyG ``MessagePassing`` modules — without
changing the model. During one forward pass it computes over-smoothing metrics
(:mod:`fathom.diagnostics.oversmoothing`) on each layer's output as it is produced and then
drops the tensor (streaming: memory does not grow with depth), or keeps the states when asked.

Example::

    with LayerProbe(model, metrics=("dirichlet_energy", "effective_rank")) as probe:
        model(data.x, data.edge_index)
    for record in probe.records:        # one per layer, layer 0 = the model's input
        print(record["layer"], record["dirichlet_energy"])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from fathom.diagnostics import oversmoothing as om
from fathom.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "LayerProbe",
    "ProbeGraph",
    "find_layers",
    "hop_pairs",
    "probe_layers",
]

DEFAULT_METRICS = ("dirichlet_energy", "mad", "effective_rank")
"""What ``fathom diagnose`` reports per layer at least."""


@dataclass
class ProbeGraph:
    """The graph-side quantities the metrics need, computed once per graph.

    By default (``max_nodes=1024``, ``max_edges=4096``, ``max_pairs=2048``) a graph larger
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
    max_nodes: int | None = 1024
    max_edges: int | None = 4096
    max_pairs: int | None = 2048
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
    max_pairs: int | None = 2048,
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


# ------------------------------------------------------------------------------ metrics

Metric = Callable[[Tensor, ProbeGraph, dict[str, Any]], float]

# The metric functions below compute the same quantities as the pure functions of
# :mod:`fathom.diagnostics.oversmoothing` (the tests check they agree), but share their
# intermediates through ``cache`` (one per layer: sampled rows, row norms, unit rows, the
# Gram matrix, the gathered edge endpoints) so that probing every layer costs a few tensor
# operations per metric, not a few dozen.


def _rows(x: Tensor, graph: ProbeGraph, cache: dict[str, Any]) -> Tensor:
    if "rows" not in cache:
        cache["rows"] = graph.rows(x)
    return cache["rows"]


def _unit(x: Tensor, graph: ProbeGraph, cache: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """(row norms, unit rows) of the sampled rows; zero rows stay zero."""
    if "unit" not in cache:
        rows = _rows(x, graph, cache)
        norms = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
        cache["unit"] = (norms, rows / norms.clamp_min(1e-12))
    return cache["unit"]


def _endpoints(x: Tensor, graph: ProbeGraph, cache: dict[str, Any]) -> tuple[Tensor, Tensor]:
    if "ends" not in cache:
        src, dst = graph.energy_edges.to(x.device)
        cache["ends"] = (x.index_select(0, src), x.index_select(0, dst))
    return cache["ends"]


def _svals(x: Tensor, graph: ProbeGraph, cache: dict[str, Any]) -> Tensor:
    if "svals" not in cache:
        rows = _rows(x, graph, cache)
        n, c = rows.shape
        gram = rows.T @ rows if n >= c else rows @ rows.T
        eig = torch.linalg.eigvalsh(gram.double()).clamp_min(0.0)
        cache["svals"] = eig.flip(0).sqrt()
    return cache["svals"]


def _energy(x: Tensor, graph: ProbeGraph, cache: dict[str, Any]) -> float:
    if graph.energy_edges.size(1) == 0:
        return 0.0
    a, b = _endpoints(x, graph, cache)
    return float(torch.sub(a, b).square_().sum(dtype=torch.float64)) * graph.energy_scale


def _normalized_energy(x: Tensor, graph: ProbeGraph, cache: dict[str, Any]) -> float:
    rows = _rows(x, graph, cache)
    total = float(rows.square().sum(dtype=torch.float64)) * graph.num_nodes / max(rows.size(0), 1)
    if graph.energy_edges.size(1) == 0 or total <= 0:
        return 0.0
    a, b = _endpoints(x, graph, cache)
    ws, wd = graph.endpoint_weights(x.device)
    diff = float(torch.addcmul(-b * wd, a, ws).square_().sum(dtype=torch.float64))
    return diff * graph.energy_scale * graph.num_nodes / (2.0 * total)


def _mad(x: Tensor, graph: ProbeGraph, cache: dict[str, Any]) -> float:
    norms, unit = _unit(x, graph, cache)
    n = unit.size(0)
    if n < 2:
        return 0.0
    s = unit.sum(0, dtype=torch.float64)
    cos_sum = float(s.dot(s)) - float((norms > 0).sum())
    return max(0.0, 1.0 - cos_sum / (n * (n - 1)))


def _numerical_rank(x: Tensor, graph: ProbeGraph, cache: dict[str, Any]) -> float:
    s = _svals(x, graph, cache)
    return float(s.pow(2).sum() / s[0].pow(2)) if s.numel() and float(s[0]) > 0 else 0.0


def _effective_rank(x: Tensor, graph: ProbeGraph, cache: dict[str, Any]) -> float:
    s = _svals(x, graph, cache)
    total = float(s.sum()) if s.numel() else 0.0
    if total <= 0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def _class_separation(x: Tensor, graph: ProbeGraph, cache: dict[str, Any]) -> float:
    classes = graph.classes(x.device)
    if classes is None:
        return math.nan
    index, avg = classes
    rows = _rows(x, graph, cache)
    centroids = avg @ rows
    labelled = index >= 0
    within_rows = torch.zeros(rows.size(0), dtype=rows.dtype, device=rows.device)
    within_rows[labelled] = torch.linalg.vector_norm(
        rows[labelled] - centroids.index_select(0, index[labelled]), dim=1
    )
    within = float((avg @ within_rows).mean())
    k = centroids.size(0)
    between = float(torch.cdist(centroids, centroids).sum()) / (k * (k - 1))
    if within > 0:
        return between / within
    return math.inf if between > 0 else 0.0


def _mad_gap(x: Tensor, graph: ProbeGraph, cache: dict[str, Any]) -> float:
    # Both pair sets in one pass: Chen et al.'s per-node averages over non-zero distances,
    # near-pair sources in slots [0, U), remote-pair sources in [U, 2U).
    nodes, pairs, slot, _ = graph.compact_pairs(x.device)
    if pairs.size(1) == 0:
        return 0.0
    unit = torch.nn.functional.normalize(x.index_select(0, nodes), dim=1)
    dist = (
        1.0 - (unit.index_select(0, pairs[0]) * unit.index_select(0, pairs[1])).sum(1)
    ).clamp_min_(0.0)
    nonzero = (dist > 1e-6).to(dist.dtype)
    sums = torch.zeros(2, 2 * nodes.numel(), dtype=dist.dtype, device=dist.device)
    sums.index_add_(1, slot, torch.stack([dist * nonzero, nonzero]))
    per_node = (sums[0] / sums[1].clamp_min(1)).view(2, -1)
    counted = (per_node > 0).sum(1).clamp_min(1)
    near_mad, far_mad = (per_node.sum(1) / counted).tolist()
    return far_mad - near_mad


def _dominant_distance(x: Tensor, graph: ProbeGraph, cache: dict[str, Any]) -> float:
    rows = _rows(x, graph, cache)
    total = float(rows.square().sum(dtype=torch.float64))
    if total <= 0:
        return 0.0
    comp, w = graph.sampled_basis(x.device)
    w = w.unsqueeze(1)
    coeff = torch.zeros(int(comp.max()) + 1, rows.size(1), dtype=rows.dtype, device=rows.device)
    coeff.index_add_(0, comp, rows * w)
    residual = torch.addcmul(rows, w, coeff.index_select(0, comp), value=-1.0)
    return math.sqrt(float(residual.square_().sum(dtype=torch.float64)) / total)


def _norm(x: Tensor, graph: ProbeGraph, cache: dict[str, Any]) -> float:
    return float(_unit(x, graph, cache)[0].mean())


METRICS: dict[str, Metric] = {
    "dirichlet_energy": _energy,
    "normalized_energy": _normalized_energy,
    "mad": _mad,
    "mad_gap": _mad_gap,
    "numerical_rank": _numerical_rank,
    "effective_rank": _effective_rank,
    "dominant_distance": _dominant_distance,
    "class_separation": _class_separation,
    "norm": _norm,
}
"""Per-layer metrics by name: ``dirichlet_energy`` (:func:`~fathom.diagnostics.oversmoothing.
dirichlet_energy`), ``normalized_energy`` (:func:`~fathom.diagnostics.oversmoothing.
normalized_dirichlet_energy`), ``mad``, ``mad_gap``, ``numerical_rank``, ``effective_rank``,
``dominant_distance`` (:func:`~fathom.diagnostics.oversmoothing.dominant_subspace_distance`),
``class_separation`` (needs labels), ``norm`` (mean row norm: explosion / vanishing)."""


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


# ------------------------------------------------------------------------------- layers


def find_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The message-passing layers of ``model``, outermost first, in registration order.

    A layer is a fathom :class:`~fathom.nn.block.GNNBlock` (conv + norm + activation + skip)
    or a PyG ``MessagePassing`` module that is not inside one (a conv head, the convs of a
    ``BasicGNN``, a user's own stack). The probe records them in call order, so a module
    called twice (shared weights) is recorded twice.
    """
    from fathom.nn.block import GNNBlock

    found: list[tuple[str, nn.Module]] = []
    inside: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(prefix + ".") for prefix in inside):
            continue
        if isinstance(module, GNNBlock | MessagePassing):
            found.append((name or type(module).__name__, module))
            inside.append(name)
    return found


def _first_tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, tuple | list):
        for item in value:
            t = _first_tensor(item)
            if t is not None:
                return t
    return None


def _find_edge_index(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor | None:
    if isinstance(kwargs.get("edge_index"), Tensor):
        return kwargs["edge_index"]
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, Tensor) and a.dim() == 2 and a.size(0) == 2 and not a.is_floating_point():
            return a
    return None


class LayerProbe:
    """Context manager recording per-layer metrics (and optionally states) of ``model``.

    Args:
        model: any ``nn.Module``; it is not modified (hooks are removed on exit).
        metrics: names from :data:`METRICS`, ``"all"``, or ``()`` to only keep states.
        edge_index: the graph the metrics use; default: the first ``[2, E]`` integer tensor
            passed to ``model``'s forward (the training graph, before any DropEdge).
        y: node labels, for ``class_separation``.
        layers: modules to record (default :func:`find_layers`).
        include_input: record the model's input features as layer 0.
        keep: also keep every layer's detached output in :attr:`states`.
        max_nodes, max_edges, max_pairs, seed: sampling of large graphs (see :class:`ProbeGraph`).

    After a forward pass, :attr:`records` holds one dict per recorded layer:
    ``{"forward": f, "layer": l, "name": module name, "channels": C, <metric>: value, …}``;
    :meth:`last` returns the records of the latest forward pass only.
    """

    def __init__(
        self,
        model: nn.Module,
        metrics: str | Sequence[str] = DEFAULT_METRICS,
        *,
        edge_index: Tensor | None = None,
        y: Tensor | None = None,
        layers: Sequence[nn.Module] | None = None,
        include_input: bool = True,
        keep: bool = False,
        max_nodes: int | None = 1024,
        max_edges: int | None = 4096,
        max_pairs: int | None = 2048,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.metrics = resolve_metrics(metrics)
        self.edge_index, self.y = edge_index, y
        named = dict((id(m), n) for n, m in model.named_modules())
        if layers is None:
            self.layers = find_layers(model)
        else:
            self.layers = [(named.get(id(m), type(m).__name__), m) for m in layers]
        if not self.layers:
            raise ConfigError(
                f"found no message-passing layers in {type(model).__name__}; pass layers=[...]"
            )
        self.include_input, self.keep = include_input, keep
        self.sampling = {
            "max_nodes": max_nodes,
            "max_edges": max_edges,
            "max_pairs": max_pairs,
            "seed": seed,
        }
        self.records: list[dict[str, Any]] = []
        self.states: list[Tensor] = []
        self._graphs: dict[tuple[int, int], ProbeGraph] = {}
        self._handles: list[Any] = []
        self._forward = -1
        self._layer = 0
        self._graph_edges: Tensor | None = None
        self._input_cache: dict[tuple[Any, ...], dict[str, float]] = {}

    # -- hooks
    def __enter__(self) -> LayerProbe:
        self._handles.append(
            self.model.register_forward_pre_hook(self._on_model_start, with_kwargs=True)
        )
        for name, module in self.layers:
            self._handles.append(module.register_forward_hook(self._make_hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook (also done on leaving the ``with`` block)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _on_model_start(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self._forward += 1
        self._layer = 0
        self._graph_edges = (
            self.edge_index if self.edge_index is not None else _find_edge_index(args, kwargs)
        )
        if self.include_input:
            x = _first_tensor(args) if args else _first_tensor(kwargs.get("x"))
            if x is not None and x.is_floating_point():
                self._record("input", x)

    def _make_hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            out = _first_tensor(output)
            if out is not None:
                self._record(name, out)

        return hook

    # -- measuring
    def graph(self, num_nodes: int) -> ProbeGraph | None:
        """The :class:`ProbeGraph` for the current edge_index (cached per graph)."""
        ei = self._graph_edges
        if ei is None:
            return None
        key = (id(ei), num_nodes)
        if key not in self._graphs:
            self._graphs[key] = ProbeGraph(ei, num_nodes, y=self.y, **self.sampling)
        return self._graphs[key]

    @torch.no_grad()
    def _record(self, name: str, out: Tensor) -> None:
        x = out.detach()
        if x.dim() == 1:
            x = x.unsqueeze(1)
        elif x.dim() > 2:
            x = x.reshape(x.size(0), -1)
        record: dict[str, Any] = {
            "forward": self._forward,
            "layer": self._layer,
            "name": name,
            "channels": int(x.size(1)),
        }
        self._layer += 1
        if self.metrics:
            graph = self.graph(x.size(0))
            needs_graph = {"dirichlet_energy", "mad_gap", "dominant_distance"}
            if graph is None and needs_graph & set(self.metrics):
                raise DataError(
                    "the probe found no edge_index in the model's arguments; pass edge_index=..."
                )
            key = (x.data_ptr(), x._version, tuple(x.shape), x.dtype, id(graph))
            if name == "input" and key in self._input_cache:
                # The model's input rarely changes between forward passes (epochs): its
                # metrics are computed once per input tensor (and version).
                record.update(self._input_cache[key])
            else:
                cache: dict[str, Any] = {}
                xf = x.float()
                values = {m: METRICS[m](xf, graph, cache) for m in self.metrics}  # type: ignore[arg-type]
                record.update(values)
                if name == "input":
                    self._input_cache = {key: values}
            if graph is not None and graph.sampled:
                record["sampled"] = True
        self.records.append(record)
        if self.keep:
            self.states.append(x)

    def last(self) -> list[dict[str, Any]]:
        """Records of the latest forward pass."""
        return [r for r in self.records if r["forward"] == self._forward]

    def reset(self) -> None:
        """Forget recorded layers and states (the hooks stay)."""
        self.records.clear()
        self.states.clear()
        self._forward = -1


def probe_layers(
    model: nn.Module,
    x: Tensor,
    edge_index: Tensor,
    metrics: str | Sequence[str] = DEFAULT_METRICS,
    *,
    y: Tensor | None = None,
    forward: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """One evaluation-mode, no-grad forward of ``model(x, edge_index)`` (or ``forward()``)
    under a :class:`LayerProbe`; returns its per-layer records. The model's train/eval mode
    is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with (
            torch.no_grad(),
            LayerProbe(model, metrics, edge_index=edge_index, y=y, **kwargs) as probe,
        ):
            if forward is None:
                model(x, edge_index)
            else:
                forward()
    finally:
        model.train(was_training)
    return probe.records
