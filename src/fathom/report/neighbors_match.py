"""Reports of Tree-NeighborsMatch runs: ours vs Figure 3 of Alon & Yahav (ICLR 2021).

The rows are those of :func:`fathom.experiments.neighbors_match.run_neighbors_match` (one per
model, radius and seed); the published values come from the suite's references file
(:data:`fathom.experiments.neighbors_match.PUBLISHED`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fathom.data.neighbors_match import MAX_RADIUS, MIN_RADIUS
from fathom.errors import ConfigError
from fathom.experiments.neighbors_match import MODELS, PUBLISHED, results_document
from fathom.files import atomic_path, write_json

__all__ = ["neighbors_match_table", "write_neighbors_match_report"]


def _best_by_cell(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """The row with the highest training accuracy per (model, radius) (the paper's best of 2)."""
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        key = (row["model"], row["radius"])
        if key not in best or row["train_acc"] > best[key]["train_acc"]:
            best[key] = row
    return best


def _order(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[int]]:
    present = {r["model"] for r in rows}
    models = [m for m in MODELS if m in present] + sorted(present - set(MODELS))
    radii = sorted({int(r["radius"]) for r in rows})
    return models, radii


def neighbors_match_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table of training accuracy, models × radii, ours vs published.

    Each cell is the best training accuracy over the cell's seeds (the paper reports the better
    of two runs) followed by the Figure 3 value, e.g. ``0.98 (pub 1.00)``; ``–`` marks a missing
    run or published value.
    """
    models, radii = _order(rows)
    best = _best_by_cell(rows)
    header = ["model", *[f"r={r}" for r in radii]]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] + ["---:"] * len(radii)) + "|",
    ]
    for m in models:
        cells = []
        for r in radii:
            row = best.get((m, r))
            pub = PUBLISHED.get((m, r))
            if row is None and pub is None:
                cells.append("–")
                continue
            ours = "–" if row is None else f"{row['train_acc']:.2f}"
            cells.append(f"{ours} (pub {'–' if pub is None else f'{pub:.2f}'})")
        lines.append("| " + " | ".join([m.upper(), *cells]) + " |")
    return "\n".join(lines) + "\n"


def _runs_table(rows: Sequence[dict[str, Any]]) -> str:
    header = (
        "| model | r | layers | seed | train acc | test acc | published | epochs | best epoch "
        "| stop | examples | batch | time (s) |"
    )
    lines = [header, "|:---|---:|---:|---:|---:|---:|---:|---:|---:|:---|---:|---:|---:|"]
    for row in sorted(rows, key=lambda r: (MODELS.index(r["model"]), r["radius"], r["seed"])):
        pub = row.get("published", PUBLISHED.get((row["model"], row["radius"])))
        batch = row.get("batch_size", "")
        if row.get("accum_grad", 1) > 1:
            batch = f"{batch}×{row['accum_grad']}"
        lines.append(
            f"| {row['model'].upper()} | {row['radius']} | {row['depth']} | {row['seed']} "
            f"| {row['train_acc']:.4f} | {row['test_acc']:.4f} "
            f"| {'–' if pub is None else f'{pub:.2f}'} | {row['epochs']} "
            f"| {row.get('best_epoch', '')} | {row.get('stop_reason', '')} "
            f"| {row['num_examples']} | {batch} | {row['time_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _plot(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, radii = _order(rows)
    best = _best_by_cell(rows)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    try:
        for m in models:
            pts = [(r, best[(m, r)]["train_acc"]) for r in radii if (m, r) in best]
            (line,) = ax.plot([r for r, _ in pts], [v for _, v in pts], marker="o", label=m.upper())
            pub = [
                (r, PUBLISHED[(m, r)])
                for r in range(MIN_RADIUS, MAX_RADIUS + 1)
                if (m, r) in PUBLISHED and min(radii) <= r <= max(radii)
            ]
            if pub:
                ax.plot(
                    [r for r, _ in pub],
                    [v for _, v in pub],
                    linestyle="--",
                    marker="x",
                    color=line.get_color(),
                    alpha=0.8,
                )
        ax.plot([], [], linestyle="--", marker="x", color="grey", label="published (Fig. 3)")
        ax.plot(
            radii, [2.0**-r for r in radii], color="grey", linestyle=":", label="chance (1/2^r)"
        )
        ax.set_xticks(radii, [str(r) for r in radii])
        ax.set_xlabel("problem radius r (tree depth; r + 1 GNN layers)")
        ax.set_ylabel("training accuracy")
        ax.set_ylim(0, 1.02)
        ax.set_title("Tree-NeighborsMatch: training accuracy vs radius")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return path


def write_neighbors_match_report(rows: Sequence[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """Write ``neighbors-match.md``, ``neighbors-match.json`` and ``neighbors-match.png``.

    The Markdown holds the models × radii table (:func:`neighbors_match_table`) and one line per
    run; the JSON the rows and the published values
    (:func:`~fathom.experiments.neighbors_match.results_document`); the plot training accuracy
    against radius, one line per model, published values dashed in the same colour. Files are
    written atomically.

    Returns:
        The three paths written.
    """
    if not rows:
        raise ConfigError("no Tree-NeighborsMatch rows to report")
    out = Path(out_dir)
    md_path = out / "neighbors-match.md"
    json_path = out / "neighbors-match.json"
    png_path = out / "neighbors-match.png"
    n_seeds = max(
        sum(1 for r in rows if (r["model"], r["radius"]) == key) for key in _best_by_cell(rows)
    )
    seeds_note = (
        "one run per cell"
        if n_seeds == 1
        else f"best of up to {n_seeds} seeds per cell, as the paper reports the better of two"
    )
    total_time = sum(float(r["time_s"]) for r in rows)
    text = (
        "# Tree-NeighborsMatch (Alon & Yahav, ICLR 2021, Figure 3)\n\n"
        "Training accuracy against problem radius r (a complete binary tree of depth r, "
        "r + 1 GNN layers): the root must return the value of the leaf whose key matches its "
        f"own; chance is 1/2^r. Cells: ours ({seeds_note}) and the published value.\n\n"
        + neighbors_match_table(rows)
        + "\n## Runs\n\n"
        + _runs_table(rows)
        + f"\nTotal training time: {total_time:.1f} s"
        + (f" ({math.ceil(total_time / 60)} min)." if total_time >= 60 else ".")
        + "\n"
    )
    with atomic_path(md_path) as tmp:
        tmp.write_text(text)
    write_json(json_path, results_document(rows))
    _plot(rows, png_path)
    return [md_path, json_path, png_path]
