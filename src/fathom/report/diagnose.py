"""Rendering a diagnosis (:mod:`fathom.diagnostics.diagnose`): console tables, Markdown, plots."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from fathom.diagnostics.metrics import metric_records
from fathom.files import atomic_path

__all__ = [
    "decay_lines",
    "diagnosis_markdown",
    "diagnosis_tables",
    "features_line",
    "write_diagnosis_report",
]

LAYER_COLUMNS = tuple((m.name, m.column) for m in metric_records())
"""(metric, column header) of the per-layer table, in the registry's order."""


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "inf"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def _cell(text: str) -> str:
    """Markdown table cell text: literal pipes escaped."""
    return str(text).replace("|", "\\|")


def _structure_rows(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("nodes / undirected edges", f"{s['num_nodes']} / {s['num_edges']}"),
        ("components (largest)", f"{s['num_components']} ({s['largest_component']})"),
        (
            "degree mean / median / max",
            " / ".join(_fmt(s["degree"][k]) for k in ("mean", "median", "max")),
        ),
        (
            "diameter" + ("" if s.get("diameter_exact") else " (lower bound)"),
            _fmt(s.get("diameter")),
        ),
        ("effective diameter (90%)", _fmt(s.get("effective_diameter"))),
        ("average shortest path", _fmt(s.get("average_shortest_path"))),
        (
            "clustering / transitivity",
            f"{_fmt(s.get('clustering'))} / {_fmt(s.get('transitivity'))}",
        ),
        ("small-world sigma", _fmt((s.get("small_world") or {}).get("sigma"))),
    ]
    rf = s.get("receptive_field") or {}
    if rf.get("hops"):
        rows.append(
            (
                "receptive field |N_k| mean, k=" + ",".join(str(h) for h in rf["hops"]),
                ", ".join(_fmt(float(v)) for v in rf["mean"]),
            )
        )
    h = s.get("homophily")
    if h:
        rows.append(
            (
                "homophily edge / node / class-insens.",
                " / ".join(_fmt(h[k]) for k in ("edge", "node", "class_insensitive")),
            )
        )
    return rows


def features_line(result: Mapping[str, Any]) -> str | None:
    """``Features: …``: which features the per-layer metrics were measured on (the
    ``features`` entry of :func:`~fathom.diagnostics.diagnose.diagnose_model`), or ``None``
    for a result without one (a graph-only diagnosis, an older result)."""
    features = result.get("features")
    if not isinstance(features, Mapping) or not features.get("description"):
        return None
    return f"Features: {features['description']}"


def _layer_keys(layers: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    return [(k, label) for k, label in LAYER_COLUMNS if any(k in r for r in layers)]


def diagnosis_tables(result: Mapping[str, Any]) -> list[Table]:
    """Rich tables: structure, graph over-squashing, per-layer metrics, sensitivity by hop."""
    tables = []
    name = result.get("dataset", {}).get("name", "graph")
    t = Table(title=f"{name}: structure", title_justify="left")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    for k, v in _structure_rows(result["structure"]):
        t.add_row(k, v)
    if "curvature" in result:
        c = result["curvature"]
        t.add_row("Balanced Forman curvature min / mean", f"{_fmt(c['min'])} / {_fmt(c['mean'])}")
        t.add_row("edges negatively curved", f"{100 * c['fraction_negative']:.1f}%")
        if c["bottlenecks"]:
            b = c["bottlenecks"][:3]
            t.add_row(
                "bottleneck edges (curvature)",
                ", ".join(f"{e['u']}-{e['v']} ({e['curvature']:.2f})" for e in b),
            )
    if "resistance" in result:
        r = result["resistance"]
        t.add_row(
            f"edge effective resistance mean / max ({r['method']})",
            f"{_fmt(r['edge_mean'])} / {_fmt(r['edge_max'])}",
        )
    tables.append(t)
    layers = result.get("layers")
    if layers:
        keys = _layer_keys(layers)
        caption = features_line(result)
        t = Table(
            title=f"{result.get('model_name', 'model')}: per layer",
            title_justify="left",
            caption=caption,
            caption_justify="left",
        )
        t.add_column("layer", justify="right")
        t.add_column("module")
        t.add_column("width", justify="right")
        for _, label in keys:
            t.add_column(label, justify="right")
        for r in layers:
            t.add_row(
                str(r["layer"]), r["name"], str(r["channels"]), *(_fmt(r.get(k)) for k, _ in keys)
            )
        tables.append(t)
    sens = result.get("sensitivity")
    if sens:
        t = Table(
            title="Jacobian sensitivity by hop distance (mean over targets)", title_justify="left"
        )
        t.add_column("hop", justify="right")
        t.add_column("nodes", justify="right")
        t.add_column("total", justify="right")
        t.add_column("per node", justify="right")
        t.add_column("normalised", justify="right")
        for i, hop in enumerate(sens["hops"]):
            t.add_row(
                str(hop),
                _fmt(sens["count"][i]),
                _fmt(sens["total"][i]),
                _fmt(sens["mean"][i]),
                _fmt(sens["normalized"][i]),
            )
        tables.append(t)
    return tables


def _decay_line(label: str, d: Mapping[str, Any] | None) -> str | None:
    if not d or d.get("rate") is None or math.isnan(d["rate"]):
        return None
    line = (
        f"{label}: Dirichlet energy decay rate {d['rate']:.3f} per layer "
        f"(x{d['factor_per_layer']:.3g} per layer, R² {d['r2']:.2f}, "
        f"{d['layers_used']} hidden layers)"
    )
    if d["r2"] < 0.8:
        line += "; poor fit: the energy does not follow one exponential"
    return line


def decay_lines(result: Mapping[str, Any]) -> list[str]:
    """One line per fitted energy decay (untrained and trained model when both exist)."""
    out = []
    if result.get("untrained"):
        line = _decay_line("untrained", result["untrained"].get("energy_decay"))
        if line:
            out.append(line)
    line = _decay_line(
        "trained" if result.get("untrained") else "model", result.get("energy_decay")
    )
    if line:
        out.append(line)
    return out


def diagnosis_markdown(result: Mapping[str, Any]) -> str:
    """The diagnosis as a Markdown document (tables of the console output, plots linked)."""
    name = result.get("dataset", {}).get("name", "graph")
    lines = [f"# Diagnosis: {name}", ""]
    if result.get("command"):
        lines += [f"Command: `{result['command']}`", ""]
    features = features_line(result)
    if features:
        lines += [features, ""]
    lines += ["## Structure", "", "| quantity | value |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in _structure_rows(result["structure"])]
    if "curvature" in result:
        c = result["curvature"]
        lines += ["", "## Over-squashing on the graph", ""]
        lines.append(
            f"Balanced Forman curvature: min {_fmt(c['min'])}, mean {_fmt(c['mean'])}, "
            f"{100 * c['fraction_negative']:.1f}% of edges negative."
        )
        if c["bottlenecks"]:
            lines += ["", "| bottleneck edge | curvature |", "|---|---|"]
            lines += [f"| {e['u']}–{e['v']} | {e['curvature']:.3f} |" for e in c["bottlenecks"]]
    if "resistance" in result:
        r = result["resistance"]
        lines += [
            "",
            f"Edge effective resistance ({r['method']}): mean {_fmt(r['edge_mean'])}, "
            f"90th percentile {_fmt(r['edge_q90'])}, max {_fmt(r['edge_max'])}.",
        ]
    layers = result.get("layers")
    if layers:
        keys = _layer_keys(layers)
        lines += ["", f"## Per layer: {result.get('model_name', 'model')}", ""]
        if result.get("training"):
            tr = result["training"]
            lines += [
                f"Trained: train {100 * tr.get('train_acc', math.nan):.1f}%, "
                f"test {100 * tr.get('test_acc', math.nan):.1f}%.",
                "",
            ]
        lines += decay_lines(result)
        lines += [
            "",
            "| layer | module | width | " + " | ".join(_cell(label) for _, label in keys) + " |",
        ]
        lines.append("|---" * (3 + len(keys)) + "|")
        for r in layers:
            lines.append(
                f"| {r['layer']} | {r['name']} | {r['channels']} | "
                + " | ".join(_fmt(r.get(k)) for k, _ in keys)
                + " |"
            )
    sens = result.get("sensitivity")
    if sens:
        lines += [
            "",
            "## Jacobian sensitivity by hop distance",
            "",
            "| hop | nodes | total | normalised |",
            "|---|---|---|---|",
        ]
        for i, hop in enumerate(sens["hops"]):
            lines.append(
                f"| {hop} | {_fmt(sens['count'][i])} | {_fmt(sens['total'][i])} "
                f"| {_fmt(sens['normalized'][i])} |"
            )
    for plot in result.get("plots", []):
        lines += ["", f"![{Path(plot).stem}]({Path(plot).name})"]
    return "\n".join(lines) + "\n"


def write_diagnosis_report(
    out_dir: str | Path, result: dict[str, Any], reference: Mapping[str, Any] | None = None
) -> list[Path]:
    """Plots (receptive field vs hops, energy vs layer, sensitivity vs hop) and
    ``diagnosis.md`` into ``out_dir``; ``reference`` is a second structure report to draw
    beside the graph's (e.g. a grid of the same size). Returns the written paths and
    records the plot file names in ``result["plots"]``."""
    from fathom.report.diagnostic_plots import (
        plot_layer_metric,
        plot_receptive_field,
        plot_sensitivity_by_hop,
    )

    out = Path(out_dir)
    name = result.get("dataset", {}).get("name", "graph")
    paths: list[Path] = []
    reports = {name: result["structure"]}
    if reference:
        reports.update(reference)
    paths.append(plot_receptive_field(reports, out / "receptive-field.png"))
    if result.get("layers"):
        series: dict[str, list[float]] = {}
        fits: dict[str, float] = {}
        if result.get("untrained"):
            series["untrained"] = [
                r.get("dirichlet_energy", math.nan) for r in result["untrained"]["layers"]
            ]
            rate = (result["untrained"].get("energy_decay") or {}).get("rate")
            if rate is not None and not math.isnan(rate):
                fits["untrained"] = rate
        label = "trained" if result.get("untrained") else result.get("model_name", "model")
        series[label] = [r.get("dirichlet_energy", math.nan) for r in result["layers"]]
        rate = (result.get("energy_decay") or {}).get("rate")
        if rate is not None and not math.isnan(rate):
            fits[label] = rate
        paths.append(
            plot_layer_metric(
                series,
                out / "energy-vs-layer.png",
                metric="dirichlet_energy",
                title=f"{name}: Dirichlet energy by layer",
                fits=fits,
            )
        )
    if result.get("sensitivity"):
        label = result.get("model_name", "model")
        paths.append(
            plot_sensitivity_by_hop(
                {label: result["sensitivity"]["normalized"]},
                out / "sensitivity-vs-hop.png",
                title=f"{name}: Jacobian sensitivity by hop",
            )
        )
    result["plots"] = [p.name for p in paths]
    md = out / "diagnosis.md"
    with atomic_path(md) as tmp:
        tmp.write_text(diagnosis_markdown(result))
    paths.append(md)
    return paths
