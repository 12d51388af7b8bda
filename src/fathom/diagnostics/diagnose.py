"""One call that diagnoses a graph and (optionally) a model on it: what ``fathom diagnose`` runs.

The result is a plain, JSON-ready dict:

- ``structure``: the graph's structure report (receptive-field growth, diameters, clustering,
  small-world coefficient, homophily) — :mod:`fathom.diagnostics.structure`;
- ``curvature`` and ``resistance``: over-squashing on the graph itself — Balanced Forman
  curvature with the most negatively curved (bottleneck) edges, effective resistance of the
  edges;
- given a model, ``layers``: one record per layer with the over-smoothing metrics
  (:mod:`fathom.diagnostics.probes`), ``energy_decay``: the fitted per-layer decay rate of
  the Dirichlet energy, and ``sensitivity``: Jacobian sensitivity by hop distance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch_geometric.data import Data

from fathom.diagnostics.metrics import metric_records
from fathom.diagnostics.probes import probe_layers

__all__ = ["diagnose_graph", "diagnose_model", "energy_decay_rate", "propagation_steps"]

Progress = Callable[[str], None]


def _noop(message: str) -> None:
    return None


def diagnose_graph(
    data: Data,
    *,
    max_hops: int = 8,
    curvature: bool = True,
    resistance: bool = True,
    bottlenecks: int = 10,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Structure report and graph-level over-squashing figures of ``data``.

    Returns ``{"structure": …, "curvature": …, "resistance": …, "timings_s": …}``;
    ``curvature`` / ``resistance`` are left out when switched off.
    """
    from fathom.diagnostics.structure import structure_report

    say = progress or _noop
    out: dict[str, Any] = {"timings_s": {}}
    n = int(data.num_nodes)
    y = getattr(data, "y", None)
    t0 = time.perf_counter()
    say("structure report")
    out["structure"] = structure_report(
        data.edge_index,
        n,
        y if y is not None and y.dim() == 1 else None,
        max_hops=max_hops,
        seed=seed,
    ).to_dict()
    out["timings_s"]["structure"] = time.perf_counter() - t0
    if curvature:
        from fathom.diagnostics.curvature import curvature_and_bottlenecks

        t0 = time.perf_counter()
        say("Balanced Forman curvature")
        curv, worst = curvature_and_bottlenecks(data.edge_index, n, k=bottlenecks)
        curv = curv.double()
        curv = curv[~torch.isnan(curv)]  # self-loop columns have no curvature
        out["curvature"] = {
            "mean": float(curv.mean()) if curv.numel() else math.nan,
            "min": float(curv.min()) if curv.numel() else math.nan,
            "max": float(curv.max()) if curv.numel() else math.nan,
            "fraction_negative": float((curv < 0).double().mean()) if curv.numel() else math.nan,
            "bottlenecks": [{"u": u, "v": v, "curvature": c} for u, v, c in worst],
        }
        out["timings_s"]["curvature"] = time.perf_counter() - t0
    if resistance:
        from fathom.diagnostics.oversquashing import AUTO_EXACT_MAX_NODES, effective_resistance

        t0 = time.perf_counter()
        say("effective resistance of the edges")
        r = effective_resistance(data.edge_index, n, method="auto", seed=seed).double()
        method = "exact" if n <= AUTO_EXACT_MAX_NODES else "approx"  # what "auto" chose
        finite = r[torch.isfinite(r)]
        out["resistance"] = {
            "method": method,
            "edge_mean": float(finite.mean()) if finite.numel() else math.nan,
            "edge_max": float(finite.max()) if finite.numel() else math.nan,
            "edge_q90": float(finite.quantile(0.9)) if finite.numel() else math.nan,
        }
        out["timings_s"]["resistance"] = time.perf_counter() - t0
    return out


def energy_decay_rate(
    layers: Sequence[dict[str, Any]], metric: str = "dirichlet_energy"
) -> dict[str, Any]:
    r"""Least-squares fit :math:`\ln E_l \approx a - r\,l` over the hidden layers.

    Uses the layers between the input (layer 0) and the output layer, where the width is
    constant, with a positive finite energy; ``rate`` ``r`` is the decay per layer
    (``E_l ∝ e^{-r l}``; 0 when the energy stays level, negative when it grows) and
    ``factor_per_layer`` :math:`e^{-r}`. ``rate`` is NaN with fewer than 3 usable layers.
    """
    hidden = [r for r in layers[1:-1] if r.get(metric) is not None]
    pts = [(float(r["layer"]), math.log(r[metric])) for r in hidden if 0 < r[metric] < math.inf]
    if len(pts) < 3:
        return {
            "rate": math.nan,
            "factor_per_layer": math.nan,
            "layers_used": len(pts),
            "r2": math.nan,
        }
    xs, ys = zip(*pts, strict=True)
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (my + slope * (x - mx))) ** 2 for x, y in zip(xs, ys, strict=True))
    return {
        "rate": -slope,
        "factor_per_layer": math.exp(slope),
        "layers_used": len(pts),
        "r2": 1 - ss_res / ss_tot if ss_tot > 0 else 1.0,
    }


def _propagates_features(model: nn.Module) -> bool:
    from fathom.models.decoupled import SGC, SIGN, GfNN

    return isinstance(model, SGC | GfNN | SIGN)


def propagation_steps(
    model: nn.Module,
    data: Data,
    metrics: str | Sequence[str],
    *,
    seed: int = 0,
    max_nodes: int | None = None,
    max_edges: int | None = None,
    max_pairs: int | None = 65536,
) -> list[dict[str, Any]]:
    r"""Per-step metrics of a model that propagates its input features before any weight:
    SGC, GfNN and SIGN see :math:`X, SX, \dots, S^K X` (``fathom.models.decoupled``), so
    step ``k`` is recorded as layer ``k`` (named ``S^k X``). These models have no layers to
    hook; their over-smoothing is that of the propagation itself."""
    from fathom.diagnostics.layer_metrics import ProbeGraph, measure_one, resolve_metrics
    from fathom.models.decoupled import propagated_features

    names = resolve_metrics(metrics)
    y = getattr(data, "y", None)
    graph = ProbeGraph(
        data.edge_index,
        int(data.num_nodes),
        y=y if y is not None and y.dim() == 1 else None,
        max_nodes=max_nodes,
        max_edges=max_edges,
        max_pairs=max_pairs,
        seed=seed,
    )
    hops = propagated_features(data.x, data.edge_index, int(model.K))  # type: ignore[arg-type]
    return [
        {"layer": k, "name": f"S^{k} X", "channels": int(h.size(1)), **measure_one(h, graph, names)}
        for k, h in enumerate(hops)
    ]


def diagnose_model(
    model: nn.Module,
    data: Data,
    *,
    metrics: str | Sequence[str] = "all",
    targets: int = 16,
    sensitivity: bool = True,
    max_hops: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Per-layer over-smoothing metrics and Jacobian sensitivity of ``model`` on ``data``.

    The model is run in evaluation mode (``model(data.x, data.edge_index)``); its mode is
    restored. ``class_separation`` is measured when ``data.y`` holds node labels.
    ``sensitivity`` measures :math:`|\\partial h_i^{(L)} / \\partial x_j|` for ``targets``
    sampled nodes, by hop distance up to ``max_hops`` (default: the number of layers).
    """
    say = progress or _noop
    y = getattr(data, "y", None)
    if isinstance(metrics, str) and metrics == "all":
        metrics = tuple(
            m.name for m in metric_records() if "labels" not in m.needs or y is not None
        )
    t0 = time.perf_counter()
    say("per-layer over-smoothing metrics")
    # Exact metrics (no node / edge sampling); MADGap's hop pairs capped for large graphs.
    exact = {"max_nodes": None, "max_edges": None, "max_pairs": 65536}
    if _propagates_features(model):
        layers = propagation_steps(model, data, metrics, seed=seed, **exact)
    else:
        layers = probe_layers(model, data.x, data.edge_index, metrics, y=y, seed=seed, **exact)
    out: dict[str, Any] = {"layers": layers, "timings_s": {"layers": time.perf_counter() - t0}}
    if any("dirichlet_energy" in r for r in layers):
        out["energy_decay"] = energy_decay_rate(layers)
    if sensitivity:
        from fathom.diagnostics.oversquashing import jacobian_sensitivity

        t0 = time.perf_counter()
        num_layers = max(1, len(layers) - 1)
        hops = num_layers + 2 if max_hops is None else max_hops
        say(f"Jacobian sensitivity ({targets} targets, {hops} hops)")
        was_training = model.training
        model.eval()
        try:
            result = jacobian_sensitivity(
                lambda x: model(x, data.edge_index),
                data.x,
                data.edge_index,
                targets=targets,
                max_hops=hops,
                seed=seed,
            )
        finally:
            model.train(was_training)
        out["sensitivity"] = result.to_dict()
        out["timings_s"]["sensitivity"] = time.perf_counter() - t0
    return out
