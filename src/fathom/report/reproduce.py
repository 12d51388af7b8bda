"""Reports of reproduction suites: ours vs published, as a console table, Markdown and plots."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from fathom.files import atomic_path
from fathom.report.plots import plot_accuracy_vs_depth

__all__ = ["reproduce_table", "write_reproduce_report"]


def _num(value: float | None, digits: int = 1, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _digits(value: float | None) -> int:
    """1 for figures published with one decimal (81.5), 2 for two (82.06)."""
    return 2 if value is not None and round(value * 100) % 10 else 1


def _ours(row: Mapping[str, Any], *, runs: bool = True) -> str:
    """Mean ± std of a row (``runs``: with the finished / planned runs when not all ran)."""
    if row["ours_mean"] is None:
        return "not run"
    if row["n"] == 1 and row.get("std_over_folds"):
        text = f"{row['ours_mean']:.1f} ± {row['ours_std']:.1f} ({row['std_over_folds']} folds)"
    elif row["n"] == 1:
        text = f"{row['ours_mean']:.1f}" + (" (1 run)" if row["n_planned"] == 1 else "")
    else:
        text = f"{row['ours_mean']:.1f} ± {row['ours_std']:.1f}"
    if runs and row["n"] < row["n_planned"]:
        text += f" ({row['n']}/{row['n_planned']} runs)"
    return text


def _runs(row: Mapping[str, Any]) -> str:
    """The runs behind a row's mean: seeds, splits or cross-validations (of those planned)."""
    if row["n"] == row["n_planned"]:
        return str(row["n"])
    return f"{row['n']}/{row['n_planned']}"


UNFIT = 60.0
"""Training accuracy (%) below which a flagged cell is reported as not fitting its
training set."""


def explain(row: Mapping[str, Any], tolerance: float) -> str:
    """What the measurements say about a cell further than ``tolerance`` points from its
    published figure (empty for cells within it): whether the model fit its training nodes
    at all (an optimisation failure) or fit them and generalised differently."""
    diff, train = row["diff"], row.get("train_mean")
    if diff is None or abs(diff) <= tolerance or train is None:
        return ""
    if diff > 0:
        return f"above the published figure (train {train:.0f}%)"
    items = {"tu": "graphs", "deepgcn": "points"}.get(row.get("suite", ""), "nodes")
    return _fit(row, train, items) + _selection(row)


def _selection(row: Mapping[str, Any]) -> str:
    """For runs whose epoch was picked by validation loss: the epochs picked and what the
    same runs read at their best validation accuracy (from their histories), where that
    moves the mean by more than a point."""
    other = row.get("by_val_acc_runs") or []
    if not other or row["ours_mean"] is None or row.get("published") is None:
        return ""
    mean = statistics.fmean(other)
    if abs(mean - row["ours_mean"]) <= 1.0:
        return ""
    epochs = [e for e in row.get("best_epochs") or [] if e is not None]
    std = statistics.pstdev(other)
    picked = f" (epochs {', '.join(str(e) for e in epochs)})" if epochs else ""
    return (
        f"; the epochs picked by validation loss{picked}: at each run's best validation "
        f"accuracy instead the same runs read {mean:.1f} ± {std:.1f} "
        f"({mean - row['published']:+.1f})"
    )


def _reach(lowest: float) -> str:
    return "100%" if lowest >= 99.5 else f"{lowest:.0f}% or more"


def _fit(row: Mapping[str, Any], train: float, items: str) -> str:
    """Whether a flagged cell's runs fit their training ``items``."""
    runs = row.get("train_runs") or []
    unfit = [t for t in runs if t < UNFIT]
    peaks = row.get("train_max_runs") or []
    # the best training accuracy over the whole run of each run under UNFIT at its epoch:
    # runs that fit their training set at another epoch did not fail to optimise
    unfit_peaks = (
        [p for t, p in zip(runs, peaks, strict=True) if t < UNFIT]
        if len(peaks) == len(runs)
        else []
    )
    later = bool(unfit_peaks) and min(unfit_peaks) >= UNFIT
    if unfit and len(unfit) < len(runs):
        fit = [t for t in runs if t >= UNFIT]
        if later:
            return (
                f"{len(unfit)} of {len(runs)} runs fit under {UNFIT:.0f}% of their training "
                f"{items} at the epoch picked but {_reach(min(unfit_peaks))} at another epoch "
                f"(not an optimisation failure), the others {sum(fit) / len(fit):.0f}%"
            )
        return (
            f"{len(unfit)} of {len(runs)} runs fit under {UNFIT:.0f}% of their training "
            f"{items} (an optimisation failure on those seeds), the others "
            f"{sum(fit) / len(fit):.0f}%"
        )
    if train < UNFIT and later:
        return (
            f"fits only {train:.0f}% of its training {items} at the epochs picked, "
            f"{_reach(min(unfit_peaks))} at another epoch of every run"
        )
    if train < UNFIT:
        where = (
            "even in the setting chosen on validation"
            if "tuned on validation" in row.get("note", "")
            else "in this setting"
        )
        return f"fits only {train:.0f}% of its training {items}: it does not train {where}"
    if row.get("suite") == "tu" and row.get("metric") == "test_acc":
        return (
            f"fits its training graphs ({train:.0f}%); the published figure picks its epoch on "
            "the test folds (compare the paper's-protocol row)"
        )
    return f"fits its training {items} ({train:.0f}%) but generalises worse than published"


def _metric(row: Mapping[str, Any]) -> str:
    """The name of the metric a row compares (``accuracy``, ``ROC-AUC``, ``Hits@50`` …)."""
    return row.get("metric_label") or {"test_acc": "accuracy"}.get(
        row.get("metric", "test_acc"), row.get("metric", "test_acc")
    )


def _metrics(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metrics ``rows`` compare, in order of appearance; with more than one, the tables
    get a ``metric`` column."""
    return list(dict.fromkeys(_metric(r) for r in rows))


def _flag(row: Mapping[str, Any], tolerance: float) -> str:
    if row["diff"] is None:
        return ""
    return "" if abs(row["diff"]) <= tolerance else "!"


def reproduce_table(title: str, rows: Sequence[Mapping[str, Any]], tolerance: float) -> Table:
    """Rich table: dataset, model, depth, (the metric, when rows compare several), ours
    (mean ± std, in %), published, difference."""
    mixed = len(_metrics(rows)) > 1
    table = Table(title=title, title_justify="left")
    for name, justify in [
        ("dataset", "left"),
        ("model", "left"),
        ("depth", "right"),
        *([("metric", "left")] if mixed else []),
        ("ours (%)", "right"),
        ("published", "right"),
        ("diff", "right"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        diff = _num(row["diff"], sign=True)
        if _flag(row, tolerance):
            diff = f"[bold red]{diff}[/]"
        table.add_row(
            row["dataset"],
            row["model"],
            str(row["depth"]),
            *([_metric(row)] if mixed else []),
            _ours(row),
            _num(row["published"], _digits(row["published"])),
            diff,
        )
    return table


def _stored_runs(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Training time of every stored run behind ``rows``, each run once (rows may share
    runs: a suite's AUC and AP rows read the same runs)."""
    runs: dict[str, float] = {}
    for r in rows:
        runs.update(r.get("run_times") or {})
    return runs


def _markdown(
    suite: str, description: str, rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]
) -> str:
    tol = meta.get("tolerance", 3.0)
    runs = _stored_runs(rows)
    metrics = _metrics(rows)
    mixed = len(metrics) > 1
    what = (
        f"Test {', '.join(metrics)} (each row's `metric`) in %"
        if mixed
        else "Test accuracy in % (test AUC / AP for link prediction, test mIoU for segmentation)"
    )
    lines = [
        f"# Reproduction: {suite}",
        "",
        description + ".",
        "",
        f"Command: `{meta.get('command', '')}`  ",
        f"Measured on: {meta.get('host', '')}; {meta.get('versions', '')}  ",
        f"Wall time of this invocation: {meta.get('wall_s', 0):.0f} s; runs stored in "
        f"`{meta.get('store', '')}` (sweep `reproduce-{suite}`); training time summed over "
        f"the {len(runs)} stored runs: {sum(runs.values()) / 60:.0f} min.",
        "",
        f"{what}, mean ± population std over "
        "seeds (or splits, or the folds of one cross-validation); `runs`: how many (of "
        "those planned) the mean is over; `diff` = ours − published; `!` marks a difference "
        f"over {tol:g} points; `train`: the mean training accuracy of the same runs (%).",
        "",
        "| dataset | model | depth | "
        + ("metric | " if mixed else "")
        + "runs | ours | published | diff | train | source / note |",
        "|---|---|---:|" + ("---|" if mixed else "") + "---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        why = explain(row, tol)
        note = row["source"] + "".join(f"; {n}" for n in (row["note"], why) if n)
        flag = _flag(row, tol)
        published = _num(row["published"], _digits(row["published"]))
        metric = f"{_metric(row)} | " if mixed else ""
        train = _num(row.get("train_mean"), 0) if row["ours_mean"] is not None else "–"
        lines.append(
            f"| {row['dataset']} | {row['model']} | {row['depth']} | {metric}{_runs(row)} | "
            f"{_ours(row, runs=False)} | {published} | {_num(row['diff'], sign=True)}{flag} | "
            f"{train} | {note} |"
        )
    notes = meta.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_reproduce_report(
    out_dir: str | Path,
    suite: str,
    description: str,
    rows: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any],
) -> list[Path]:
    """Write ``reproduce-<suite>.md`` (the table) and, when a model was run at several depths,
    one accuracy-vs-depth plot per dataset (``reproduce-<suite>-<dataset>.png``) with the
    published figures dashed. Files are written atomically; returns their paths."""
    out = Path(out_dir)
    paths = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        ds_rows = [r for r in rows if r["dataset"] == dataset and r["ours_mean"] is not None]
        models = {r["model"] for r in ds_rows}
        if all(len({r["depth"] for r in ds_rows if r["model"] == m}) < 2 for m in models):
            continue  # no model at two depths: nothing to draw against depth
        plot_rows = [
            {
                "model": r["model"],
                "depth": r["depth"],
                "test_acc_mean": r["ours_mean"] / 100,
                "test_acc_std": r["ours_std"] / 100,
                "published": None if r["published"] is None else r["published"] / 100,
            }
            for r in ds_rows
        ]
        name = f"reproduce-{suite}-{dataset}.png"
        paths.append(
            plot_accuracy_vs_depth(
                plot_rows,
                out / name,
                title=f"{dataset}: ours (solid) vs published (dashed)",
            )
        )
    md = _markdown(suite, description, rows, meta)
    images = "".join(f"\n![{p.stem}]({p.name})\n" for p in paths)
    with atomic_path(out / f"reproduce-{suite}.md") as tmp:
        tmp.write_text(md + images)
    return [out / f"reproduce-{suite}.md", *paths]
