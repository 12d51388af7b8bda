"""Over-smoothing study: per-layer Dirichlet energy of a plain deep GCN against its remedies.

For each model (plain GCN, GCNII, GCN + PairNorm, ResGCN by default), at one depth, on one
graph: the per-layer metrics of the freshly initialised model and of the trained model
(:func:`fathom.diagnostics.diagnose.energy_decay_rate` fits the per-layer decay rate), plus
its accuracy. What Rusch, Bronstein and Mishra (2023) call the defining symptom — the energy
of a plain GCN decays exponentially with depth while remedies keep it bounded away from 0 —
is then visible in one plot and one table.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch_geometric.data import Data

from fathom.config import ExperimentConfig, with_seed
from fathom.diagnostics.diagnose import energy_decay_rate
from fathom.diagnostics.probes import probe_layers
from fathom.errors import ConfigError
from fathom.report.files import atomic_path

__all__ = [
    "STUDY_MODELS",
    "energy_study",
    "energy_study_markdown",
    "study_config",
    "write_energy_study",
]

EXACT: dict[str, Any] = {"max_nodes": None, "max_edges": None}
"""Probe settings: every node and edge measured (no sampling)."""
METRICS = ("dirichlet_energy", "normalized_energy", "effective_rank", "numerical_rank", "mad")

STUDY_MODELS: dict[str, str] = {
    "GCN": "depth-gcn",
    "GCNII": "gcnii-cora",
    "GCN+PairNorm": "depth-pairnorm",
    "ResGCN+BN": "depth-resgcn",
    "GCN+NodeNorm": "depth-nodenorm",
    "JKNet": "depth-jknet",
}
"""Models of the study by name -> the preset (``fathom presets``) whose settings they use;
depth, dataset and the epoch cap are set per study."""


def study_config(
    name: str, depth: int, data_name: str, seed: int, max_epochs: int | None
) -> ExperimentConfig:
    """The preset of study model ``name`` at ``depth`` on ``data_name``, epochs capped."""
    from fathom.models.presets import load_preset

    if name not in STUDY_MODELS:
        raise ConfigError(f"unknown study model {name!r}; choose from {', '.join(STUDY_MODELS)}")
    cfg = load_preset(STUDY_MODELS[name])
    train = (
        cfg.train
        if max_epochs is None
        else replace(cfg.train, epochs=min(cfg.train.epochs, max_epochs))
    )
    cfg = replace(
        cfg,
        model=replace(cfg.model, depth=depth),
        train=train,
        data=replace(cfg.data, name=data_name),
    )
    return with_seed(cfg, seed)


def energy_study(
    data: Data,
    *,
    models: Sequence[str] = ("GCN", "GCNII", "GCN+PairNorm", "ResGCN+BN"),
    depth: int = 32,
    max_epochs: int | None = 400,
    seed: int = 0,
    data_name: str = "graph",
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Untrained and trained per-layer metrics of each model; one row per model.

    Models are named in :data:`STUDY_MODELS` and use their preset's settings at ``depth``
    (training capped at ``max_epochs``).

    Each row: ``model``, ``depth``, ``untrained`` / ``trained`` (per-layer records),
    ``untrained_decay`` / ``trained_decay`` (:func:`energy_decay_rate`), ``train_acc``,
    ``test_acc``, ``epochs``, ``time_s``, and the resolved ``config``. The untrained model
    is exactly the one training starts from (same seed).
    """
    from fathom.config import config_to_dict
    from fathom.experiments.run import initial_model, train_one

    rows = []
    for name in models:
        cfg = study_config(name, depth, data_name, seed, max_epochs)
        if progress:
            progress(f"{name} x{depth}: untrained")
        untrained = probe_layers(
            initial_model(cfg, data), data.x, data.edge_index, METRICS, **EXACT
        )
        if progress:
            progress(f"{name} x{depth}: training")
        t0 = time.perf_counter()
        trained_models: list[Any] = []
        fitted = train_one(cfg, data, on_model=trained_models.append)
        trained = probe_layers(trained_models[0], data.x, data.edge_index, METRICS, **EXACT)
        rows.append(
            {
                "model": name,
                "depth": depth,
                "untrained": untrained,
                "trained": trained,
                "untrained_decay": energy_decay_rate(untrained),
                "trained_decay": energy_decay_rate(trained),
                "train_acc": fitted.metrics.get("train_acc"),
                "test_acc": fitted.metrics.get("test_acc"),
                "epochs": fitted.epochs,
                "status": fitted.status,
                "time_s": time.perf_counter() - t0,
                "config": config_to_dict(cfg),
            }
        )
    return rows


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
    from fathom.diagnostics.plots import plot_layer_metric
    from fathom.report.files import write_json

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
