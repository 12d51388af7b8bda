"""Plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from fathom.diagnostics.metrics import series_label
from fathom.files import atomic_path
from fathom.report.aggregate import Group, Series

__all__ = [
    "MAX_LINES",
    "choose_yscale",
    "plot_accuracy_vs_depth",
    "plot_layer_series",
    "plot_training_curves",
    "pretty_series_name",
]


def plot_accuracy_vs_depth(
    rows: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    title: str = "Test accuracy vs depth",
    chance: float | None = None,
) -> Path:
    """One line per model: mean test accuracy (%) against depth, with a ±1 std band.

    Args:
        rows: dicts with ``model``, ``depth``, ``test_acc_mean``, ``test_acc_std`` (fractions),
            and optionally ``published`` (fraction or None), drawn dashed in the model's colour.
        path: PNG file to write (atomically).
        title: figure title.
        chance: accuracy of guessing the majority class (fraction), drawn as a dashed line.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for model in dict.fromkeys(r["model"] for r in rows):
        pts = sorted((r for r in rows if r["model"] == model), key=lambda r: r["depth"])
        depths = [r["depth"] for r in pts]
        mean = [100 * r["test_acc_mean"] for r in pts]
        std = [100 * r.get("test_acc_std", 0.0) for r in pts]
        (line,) = ax.plot(depths, mean, marker="o", label=model)
        ax.fill_between(
            depths,
            [m - s for m, s in zip(mean, std, strict=True)],
            [m + s for m, s in zip(mean, std, strict=True)],
            color=line.get_color(),
            alpha=0.2,
            linewidth=0,
        )
        published = [(r["depth"], 100 * r["published"]) for r in pts if r.get("published")]
        if published:
            ax.plot(
                [d for d, _ in published],
                [v for _, v in published],
                linestyle="--",
                marker="x",
                color=line.get_color(),
                alpha=0.8,
            )
    if chance is not None:
        ax.axhline(100 * chance, color="grey", linestyle="--", linewidth=1, label="majority class")
    depths_all = sorted({r["depth"] for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths_all, [str(d) for d in depths_all])
    ax.set_xlabel("depth (message-passing layers, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", ncol=2 if len(ax.get_legend_handles_labels()[0]) > 5 else 1)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


# --------------------------------------------------------------------------- aggregated groups

MAX_LINES = 10
"""At most this many groups are drawn in one plot (the best by mean test accuracy)."""


def pretty_series_name(name: str) -> str:
    """Axis label of a per-layer series: ``dirichlet_energy`` -> ``Dirichlet energy`` (the
    metric's label, :func:`fathom.diagnostics.metrics.series_label`); other names
    de-underscored."""
    return series_label(name)


def choose_yscale(values: Sequence[float], decades: float = 2.0) -> str:
    """``"log"`` when the positive finite values span more than ``decades`` decades (and none
    is <= 0), ``"symlog"`` when they do but some values are <= 0, else ``"linear"``."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    positive = [v for v in finite if v > 0]
    if len(positive) < 2 or max(positive) / min(positive) <= 10**decades:
        return "linear"
    return "log" if len(positive) == len(finite) else "symlog"


def _apply_yscale(ax: Any, scale: str, values: Sequence[float]) -> str:
    """Set the y scale; return the suffix for the axis label."""
    if scale == "log":
        ax.set_yscale("log")
        return " (log scale)"
    if scale == "symlog":
        smallest = min(v for v in values if v > 0 and math.isfinite(v))
        ax.set_yscale("symlog", linthresh=smallest)
        return f" (symmetric log scale, linear below {smallest:.1e})"
    return ""


def _top_groups(groups: Sequence[Group], k: int = MAX_LINES) -> tuple[list[Group], str]:
    """The ``k`` best groups by mean test accuracy (in their original order), and a note for
    the title when some were left out."""
    if len(groups) <= k:
        return list(groups), ""
    best = sorted(
        range(len(groups)),
        key=lambda i: (
            -(groups[i].mean("test_acc") if groups[i].mean("test_acc") is not None else -math.inf)
        ),
    )[:k]
    keep = sorted(best)
    return [groups[i] for i in keep], f" (best {k} of {len(groups)} by test accuracy)"


def _band(ax: Any, series: Series, color: Any, scale: str, scale_by: float = 1.0) -> None:
    """A ±1 std band; on a log axis it runs from ``mean / (1 + std / mean)`` to
    ``mean + std`` (symmetric in log space), so it never dips to zero."""
    mean = [scale_by * m for m in series.mean]
    std = [scale_by * s for s in series.std]
    hi = [m + s for m, s in zip(mean, std, strict=True)]
    if scale == "log":
        lo = [m * m / (m + s) if m > 0 else m for m, s in zip(mean, std, strict=True)]
    else:
        lo = [m - s for m, s in zip(mean, std, strict=True)]
    ax.fill_between(series.x, lo, hi, color=color, alpha=0.18, linewidth=0)


_LEGEND_ROW_IN = 0.24  # height of one legend row (inches, small font)


def _legend_rows(n: int) -> tuple[int, int]:
    ncol = 1 if n <= 2 else 2 if n <= 6 else 3
    return ncol, math.ceil(n / ncol)


def _figure_height(base: float, n_labels: int) -> float:
    return base + 0.15 + _LEGEND_ROW_IN * _legend_rows(n_labels)[1]


def _legend_below(fig: Any, handles: list[Any], labels: list[str]) -> None:
    """A legend under the axes (never over the data), then a tight layout above it."""
    ncol, rows = _legend_rows(len(labels))
    if labels:
        fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False, fontsize="small")
    bottom = (0.15 + _LEGEND_ROW_IN * rows) / fig.get_figheight() if labels else 0
    fig.tight_layout(rect=(0, bottom, 1, 1))


def plot_training_curves(groups: Sequence[Group], path: str | Path, *, title: str) -> Path:
    """Mean training loss and validation accuracy (%) against epoch, one line per group with
    a ±1 std band over seeds (each epoch averages the seeds still training).

    More than :data:`MAX_LINES` groups: the best ones by test accuracy, as the title says.
    """
    chosen, note = _top_groups(groups)
    height = _figure_height(4.6, len(chosen))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, height), dpi=110)
    loss_key = "train_loss" if any("train_loss" in g.curves for g in chosen) else "loss"
    all_loss = [v for g in chosen if loss_key in g.curves for v in g.curves[loss_key].mean]
    loss_scale = choose_yscale(all_loss)
    handles, labels = [], []
    for g in chosen:
        color = None
        line = None
        if loss_key in g.curves and len(g.curves[loss_key]):
            s = g.curves[loss_key]
            (line,) = ax_loss.plot(s.x, s.mean, linewidth=1.4)
            color = line.get_color()
            _band(ax_loss, s, color, loss_scale)
        if "val_acc" in g.curves and len(g.curves["val_acc"]):
            s = g.curves["val_acc"]
            (acc_line,) = ax_acc.plot(s.x, [100 * m for m in s.mean], color=color, linewidth=1.4)
            color = acc_line.get_color()
            _band(ax_acc, s, color, "linear", scale_by=100)
            line = line or acc_line
        if line is not None:
            handles.append(line)
            labels.append(f"{g.full_label} (n={g.n})")
    suffix = _apply_yscale(ax_loss, loss_scale, all_loss) if all_loss else ""
    loss_name = "training loss" if loss_key == "train_loss" else "training loss (train mode)"
    ax_loss.set_ylabel(f"{loss_name}, cross-entropy (nats){suffix}")
    ax_loss.set_title("training loss")
    ax_acc.set_ylabel("validation accuracy (%)")
    ax_acc.set_ylim(0, 100)
    ax_acc.set_title("validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"{title}{note}\nmean ± std over seeds still training at each epoch")
    _legend_below(fig, handles, labels)
    return _save(fig, path)


def plot_layer_series(groups: Sequence[Group], name: str, path: str | Path, *, title: str) -> Path:
    """The per-layer diagnostic ``name`` (mean over seeds, ±1 std band) against layer index,
    one line per group; log y-scale when its positive values span more than two decades."""
    chosen, note = _top_groups([g for g in groups if name in g.diagnostics])
    values = [v for g in chosen for v in g.diagnostics[name].mean]
    scale = choose_yscale(values)
    fig, ax = plt.subplots(figsize=(7.2, _figure_height(4.4, len(chosen))), dpi=110)
    handles, labels = [], []
    for g in chosen:
        s = g.diagnostics[name]
        (line,) = ax.plot(s.x, s.mean, marker="o" if len(s) <= 20 else None, markersize=3)
        _band(ax, s, line.get_color(), scale)
        handles.append(line)
        labels.append(f"{g.full_label} (n={g.n})")
    suffix = _apply_yscale(ax, scale, values) if values else ""
    ax.set_xlabel("layer index (0 = first stored layer)")
    ax.set_ylabel(f"{pretty_series_name(name)}{suffix}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if scale != "linear":
        ax.grid(True, which="minor", alpha=0.08)
    ax.set_title(f"{title}{note}")
    _legend_below(fig, handles, labels)
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return Path(path)
