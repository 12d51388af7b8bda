"""One call that diagnoses a graph and (optionally) a model on it: what ``fathom diagnose`` runs.

The result is a plain, JSON-ready dict:

- ``structure``: the graph's structure report (receptive-field growth, diameters, clustering,
  small-world coefficient, homophily) — :mod:`fathom.diagnostics.structure`;
- ``curvature`` and ``resistance``: over-squashing on the graph itself — Balanced Forman
  curvature with the most negatively curved (bottleneck) edges, effective resistance of the
  edges;
- given a model, ``layers``: one record per layer with the over-smoothing metrics
  (:mod:`fathom.diagnostics.probes`), ``energy_decay``: the fitted per-layer decay rate of
  the Dirichlet energy, ``sensitivity``: Jacobian sensitivity by hop distance, and
  ``features``: which features those were measured on (:func:`describe_features`).

The metrics are not scale-free: the same Cora graph reads a Dirichlet energy of about 118 on
its raw bag-of-words features and about 0.48 on the row-normalised features fathom trains
on. ``features`` says which one a diagnosis saw: the input's scaling as detected from
``data.x`` (or as the caller states it) and what each layer record holds.
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

__all__ = [
    "describe_features",
    "diagnose_graph",
    "diagnose_model",
    "energy_decay_rate",
    "feature_scaling",
    "propagation_steps",
]

Progress = Callable[[str], None]


def _noop(message: str) -> None:
    return None


_ROW_SUM_TOL = 1e-4


def feature_scaling(x: torch.Tensor) -> str:
    """How the feature matrix ``x`` is scaled, as detected from its values:

    - ``row-normalised``: non-negative, every non-zero row sums to 1 (PyG's
      ``NormalizeFeatures``, what fathom's node-classification training uses by default);
    - ``standardised``: every column has mean 0 and standard deviation 1 (up to 1e-3);
    - ``binary``: values in {0, 1} (raw bag-of-words, one-hot);
    - ``raw``: none of these;
    - ``empty``: no rows or no columns.

    Shapes:
        x: ``[num_nodes, num_features]`` (a vector is one column).
    """
    x = x.detach()
    if x.dim() == 1:
        x = x.unsqueeze(1)
    if x.numel() == 0:
        return "empty"
    x = x.double()
    if bool((x >= 0).all()):
        sums = x.sum(dim=1)
        nonzero = sums != 0
        if bool(nonzero.any()) and bool(((sums[nonzero] - 1).abs() <= _ROW_SUM_TOL).all()):
            return "row-normalised"
    if x.size(0) > 1:
        mean, std = x.mean(dim=0), x.std(dim=0, unbiased=False)
        if bool((mean.abs() <= 1e-3).all()) and bool(((std - 1).abs() <= 1e-3).all()):
            return "standardised"
    if bool(((x == 0) | (x == 1)).all()):
        return "binary"
    return "raw"


_SCALING_TEXT = {
    "row-normalised": "row-normalised (every non-zero row sums to 1)",
    "standardised": "standardised (every column mean 0, std 1)",
    "binary": "raw, binary (0/1 values, not normalised)",
    "raw": "raw (not row-normalised nor standardised)",
    "empty": "empty",
}


def describe_features(
    model: nn.Module | None, x: torch.Tensor, *, input_features: str | None = None
) -> dict[str, Any]:
    """Which features a model diagnosis measures: the ``features`` entry of
    :func:`diagnose_model`.

    Returns ``{"input", "input_scaling", "input_shape", "layers", "description"}``:
    ``input_scaling`` is :func:`feature_scaling` of ``x``; ``input`` the caller's
    ``input_features`` (e.g. ``"row-normalised (NormalizeFeatures), as training uses"``)
    or a sentence built from the detected scaling; ``layers`` what the per-layer records
    hold; ``description`` one line of both, for a report header.
    """
    scaling = feature_scaling(x)
    shape = [int(d) for d in x.shape]
    size = "x".join(str(d) for d in shape)
    stated = input_features or f"data.x as given, {_SCALING_TEXT[scaling]}"
    if model is not None and _propagates_features(model):
        layers = (
            "layer k: S^k X, the input features propagated k times by the model's "
            "normalised adjacency S (no weights)"
        )
    else:
        from fathom.models.deep_gnn import DeepGNN

        if isinstance(model, DeepGNN):
            layers = (
                "layer 0: the model's input (before any encoder); layer k: the output of "
                "block k (after its conv, norm, activation and skip: what block k+1 reads); "
                "last layer: the conv head's output (logits, before softmax)"
                if model.head_is_conv
                else "layer 0: the model's input (before any encoder); layer k: the output of "
                "block k (after its conv, norm, activation and skip: what block k+1 reads)"
            )
        else:
            layers = (
                "layer 0: the model's input; layer k: the output of its k-th message-passing "
                "module (fathom.diagnostics.probes.find_layers)"
            )
    return {
        "input": stated,
        "input_scaling": scaling,
        "input_shape": shape,
        "layers": layers,
        "description": f"input features {size}: {stated}; {layers}",
    }


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
    input_features: str | None = None,
) -> dict[str, Any]:
    """Per-layer over-smoothing metrics and Jacobian sensitivity of ``model`` on ``data``.

    The model is run in evaluation mode (``model(data.x, data.edge_index)``); its mode is
    restored. ``class_separation`` is measured when ``data.y`` holds node labels.
    ``sensitivity`` measures :math:`|\\partial h_i^{(L)} / \\partial x_j|` for ``targets``
    sampled nodes, by hop distance up to ``max_hops`` (default: the number of layers).

    The metrics depend on how ``data.x`` is scaled (raw or row-normalised features give
    different Dirichlet energies): ``features`` in the result says what was measured
    (:func:`describe_features`); ``input_features`` states the input's preprocessing in
    words (default: described from the detected scaling).
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
    out: dict[str, Any] = {
        "layers": layers,
        "features": describe_features(model, data.x, input_features=input_features),
        "timings_s": {"layers": time.perf_counter() - t0},
    }
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
