"""Reports of the over-smoothing study: a Markdown table and energy-by-layer plots.

The rows are those of :func:`fathom.experiments.oversmoothing_study.energy_study` (one per
model: per-layer metrics of the untrained and the trained model, their fitted energy decay
rates and accuracy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fathom.files import atomic_path, write_json

__all__ = ["energy_study_markdown", "write_energy_study"]


def _last_hidden(records: Sequence[dict[str, Any]], key: str) -> float:
    hidden = records[1:-1] or records
    return float(hidden[-1].get(key, math.nan))


def energy_study_markdown(
    rows: Sequence[dict[str, Any]], *, dataset: str, command: str = ""
) -> str:
    """A Markdown table: fitted energy decay rate per layer (untrained, trained), energy and
    effective rank at the first and last hidden layer, accuracy."""
    lines = [f"# Over-smoothing on {dataset}: Dirichlet energy by layer", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        "Decay rate r: least-squares fit of ln E_l = a - r l over the hidden layers "
        "(E_l ∝ e^(-r l); 0 = level). E = Dirichlet energy (Rusch et al. 2023), "
        "E/‖X‖² = normalised energy (Rayleigh quotient), eff. rank = effective rank of X_l. "
        "'last' = the last hidden layer.",
        "",
        "| model | depth | r untrained | r trained | E layer 1 → last (trained) "
        "| E/‖X‖² last (trained) | eff. rank last (init / trained) | train acc | test acc |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def rate(d: dict[str, Any]) -> str:
        return "–" if math.isnan(d["rate"]) else f"{d['rate']:.3f} (R² {d['r2']:.2f})"

    for r in rows:
        t = r["trained"]
        first, last = t[1]["dirichlet_energy"], _last_hidden(t, "dirichlet_energy")
        ranks = (_last_hidden(r["untrained"], "effective_rank"), _last_hidden(t, "effective_rank"))
        accs = (100 * (r["train_acc"] or math.nan), 100 * (r["test_acc"] or math.nan))
        lines.append(
            f"| {r['model']} | {r['depth']} | {rate(r['untrained_decay'])} "
            f"| {rate(r['trained_decay'])} | {first:.3g} → {last:.3g} "
            f"| {_last_hidden(t, 'normalized_energy'):.3g} | {ranks[0]:.1f} / {ranks[1]:.1f} "
            f"| {accs[0]:.1f} | {accs[1]:.1f} |"
        )
    lines += [
        "",
        "![energy by layer](oversmoothing-energy.png)",
        "",
        "![normalised energy by layer](oversmoothing-normalized-energy.png)",
    ]
    return "\n".join(lines) + "\n"


def write_energy_study(
    rows: Sequence[dict[str, Any]], out_dir: str | Path, *, dataset: str, command: str = ""
) -> list[Path]:
    """``oversmoothing.md``, ``oversmoothing.json`` and the energy-by-layer plots (one colour
    per model; untrained dashed, labelled ``(init)``) into ``out_dir``."""
    from fathom.report.diagnostic_plots import plot_layer_metric

    out = Path(out_dir)
    paths = []
    for metric, fname, title in (
        ("dirichlet_energy", "oversmoothing-energy.png", f"{dataset}: Dirichlet energy by layer"),
        (
            "normalized_energy",
            "oversmoothing-normalized-energy.png",
            f"{dataset}: normalised energy by layer",
        ),
    ):
        series: dict[str, list[float]] = {}
        fits: dict[str, float] = {}
        colors: dict[str, str] = {}
        dashed: list[str] = []
        for i, r in enumerate(rows):
            for stage in ("untrained", "trained"):
                label = f"{r['model']} ({'init' if stage == 'untrained' else 'trained'})"
                series[label] = [x.get(metric, math.nan) for x in r[stage]]
                colors[label] = f"C{i % 10}"
                if stage == "untrained":
                    dashed.append(label)
                if metric == "dirichlet_energy" and not math.isnan(r[f"{stage}_decay"]["rate"]):
                    fits[label] = r[f"{stage}_decay"]["rate"]
        paths.append(
            plot_layer_metric(
                series,
                out / fname,
                metric=metric,
                title=title,
                fits=fits,
                dashed=dashed,
                colors=colors,
            )
        )
    md = out / "oversmoothing.md"
    with atomic_path(md) as tmp:
        tmp.write_text(energy_study_markdown(rows, dataset=dataset, command=command))
    paths.append(md)
    paths.append(
        write_json(
            out / "oversmoothing.json", {"dataset": dataset, "command": command, "rows": list(rows)}
        )
    )
    return paths
