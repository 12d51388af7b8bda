r"""Plots of diagnostics: receptive-field growth, per-layer metrics, sensitivity by hop distance.

Matplotlib with the Agg backend (no display needed); every file is written atomically with
:func:`~fathom.files.atomic_path`, so a PNG is either complete or absent. Inputs may
hold NaN, ``inf`` or zeros: non-finite points are skipped, and on a logarithmic axis
non-positive values are dropped (sensitivity, receptive field) or clipped (layer metrics),
as each function documents. Each function returns the path it wrote.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from fathom.diagnostics.metrics import series_label
from fathom.diagnostics.structure import StructureReport
from fathom.files import atomic_path

__all__ = ["plot_layer_metric", "plot_receptive_field", "plot_sensitivity_by_hop"]

_FIGSIZE = (6.4, 4.2)
_DPI = 120
_TINY = 1e-300  # floor of the zero clip when nothing positive is smaller


def plot_receptive_field(
    reports: Mapping[str, StructureReport | dict[str, Any]],
    path: str | Path,
    *,
    log_y: bool = True,
    title: str | None = None,
) -> Path:
    r"""Fraction of the graph within :math:`k` hops against :math:`k`, one line per graph.

    Each line is :math:`\mathrm{mean}_v |N_k(v)| / n` (the report's
    ``receptive_field["fraction"]``; see :func:`~fathom.diagnostics.structure.structure_report`),
    with a band from the 10th to the 90th percentile of :math:`|N_k(v)| / n` over BFS sources.
    Exponential growth (a small world: over-squashing risk, Alon and Yahav, ICLR 2021) is a
    straight rising line on the default log scale; a lattice bends over. A dashed line marks
    fraction 1 (the whole graph). Non-finite points are skipped, and on a log axis so are
    zeros (e.g. the 10th percentile on a graph with isolated nodes).

    Args:
        reports: graph name -> :class:`~fathom.diagnostics.structure.StructureReport` or its
            :meth:`~fathom.diagnostics.structure.StructureReport.to_dict`.
        path: PNG file to write (atomically).
        log_y: logarithmic y-axis. (default: :obj:`True`)
        title: figure title; a default names the statistic.

    Shapes:
        - **input:** each report's ``receptive_field`` lists have length :math:`K`
    """
    fig, ax = plt.subplots(figsize=_FIGSIZE, dpi=_DPI)
    drawn = 0
    for name, report in reports.items():
        rep = report.to_dict() if isinstance(report, StructureReport) else report
        n = float(rep.get("num_nodes") or math.nan)
        rf = rep.get("receptive_field") or {}
        hops = list(rf.get("hops") or [])
        frac = list(rf.get("fraction") or [])
        pts = _finite(hops, frac, positive=log_y)
        if not pts:
            continue
        (line,) = ax.plot(
            [x for x, _ in pts], [v for _, v in pts], marker="o", markersize=3, label=str(name)
        )
        drawn += 1
        lo, hi = list(rf.get("q10") or []), list(rf.get("q90") or [])
        if len(lo) == len(hops) == len(hi) and n > 0:
            band = [
                (x, a / n, b / n)
                for x, a, b in zip(hops, lo, hi, strict=True)
                if _ok(x) and _ok(a) and _ok(b) and (not log_y or (a > 0 and b > 0))
            ]
            if band:
                ax.fill_between(
                    [x for x, _, _ in band],
                    [a for _, a, _ in band],
                    [b for _, _, b in band],
                    color=line.get_color(),
                    alpha=0.18,
                    linewidth=0,
                )
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="whole graph")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("hops k")
    ax.set_ylabel("mean |N_k(v)| / n" + (" (log scale)" if log_y else ""))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(
        ax,
        title or "Receptive field: fraction of the graph within k hops\n(band: 10th–90th pct.)",
        drawn,
    )
    return _save(fig, path)


def plot_layer_metric(
    series: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    metric: str = "dirichlet_energy",
    title: str | None = None,
    fits: Mapping[str, float] | None = None,
    log_y: bool | None = None,
    dashed: Collection[str] = (),
    colors: Mapping[str, str] | None = None,
) -> Path:
    r"""A per-layer diagnostic against layer index :math:`\ell` (0 = input), one line per model.

    Energies (a ``metric`` whose name contains ``energy``, e.g. the Dirichlet energy of
    `"A Note on Over-Smoothing for Graph Neural Networks" <https://arxiv.org/abs/2006.13318>`_,
    Cai and Wang 2020) decay exponentially with depth under over-smoothing, so they are drawn on
    a log y-axis. Zeros cannot be drawn there: they are clipped to the smallest positive value
    shown divided by 10 (at least ``1e-300``), marked with an open triangle, and the axis label
    says so. Non-finite points are
    skipped. If ``fits`` gives a fitted per-layer decay rate :math:`r` for a model
    (:math:`E_\ell \propto e^{-r\ell}`, see :func:`fathom.diagnostics.diagnose.energy_decay_rate`),
    the legend reads ``"GCN (rate 0.62/layer)"``.

    Args:
        series: model name -> metric value per layer (index 0 = input features).
        path: PNG file to write (atomically).
        metric: metric name, for the axis label and the default scale.
            (default: :obj:`"dirichlet_energy"`)
        title: figure title; a default names the metric.
        fits: model name -> fitted per-layer decay rate (non-finite rates are left out).
        log_y: force a log (:obj:`True`) or linear (:obj:`False`) y-axis; by default log for
            energies and for values spanning more than two decades. A log axis falls back to
            linear when a value is negative or none is positive.
        dashed: series drawn with dashed lines (e.g. the untrained models).
        colors: series name -> matplotlib colour (e.g. one colour per model, untrained and
            trained alike).

    Shapes:
        - **input:** each series has length :math:`L + 1` (one value per layer and the input)
    """
    clean = {name: _finite(range(len(vals)), vals) for name, vals in series.items()}
    values = [v for pts in clean.values() for _, v in pts]
    positive = [v for v in values if v > 0]
    if log_y is None:
        spread = len(positive) >= 2 and max(positive) / min(positive) > 100
        log_y = "energy" in metric.lower() or spread
    log_y = bool(log_y) and bool(positive) and all(v >= 0 for v in values)
    floor = max(min(positive) / 10, _TINY) if log_y else 0.0
    clipped = log_y and any(v == 0 for v in values)

    fig, ax = plt.subplots(figsize=_FIGSIZE, dpi=_DPI)
    drawn = 0
    for name, pts in clean.items():
        if not pts:
            continue
        ys = [max(v, floor) if log_y else v for _, v in pts]
        label = str(name)
        rate = None if fits is None else fits.get(name)
        if rate is not None and _ok(rate):
            label += f" (rate {float(rate):.3g}/layer)"
        style: dict[str, Any] = {"linestyle": "--" if name in dashed else "-"}
        if colors and name in colors:
            style["color"] = colors[name]
        (line,) = ax.plot(
            [x for x, _ in pts],
            ys,
            marker="o" if len(pts) <= 40 else None,
            markersize=3,
            label=label,
            **style,
        )
        zeros = [x for x, v in pts if log_y and v == 0]
        if zeros:  # clipped points: open downward triangles on the floor
            ax.scatter(
                zeros,
                [floor] * len(zeros),
                marker="v",
                s=36,
                facecolors="none",
                edgecolors=line.get_color(),
                zorder=3,
            )
        drawn += 1
    ylabel = series_label(metric)
    if log_y:
        ax.set_yscale("log")
        ylabel += " (log scale"
        ylabel += f"; zeros drawn at {floor:.1e})" if clipped else ")"
    ax.set_ylabel(ylabel)
    ax.set_xlabel("layer index (0 = input)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(ax, title or f"{series_label(metric)} by layer", drawn)
    return _save(fig, path)


def plot_sensitivity_by_hop(
    series: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    r"""Normalised Jacobian sensitivity against hop distance :math:`r`, one line per model.

    Entry :math:`r` of a series is the sensitivity of a node's output to the inputs of nodes at
    distance :math:`r`, e.g. the mean of :math:`\| \partial h_v^{(L)} / \partial x_u \|` over
    pairs with :math:`d(u, v) = r`, normalised (Topping et al., `"Understanding over-squashing
    and bottlenecks on graphs via curvature" <https://arxiv.org/abs/2111.14522>`_, ICLR 2022).
    Over-squashing shows as a fast decay in :math:`r`. Log y-axis; zeros, negative and
    non-finite values are dropped (a model with none left is not drawn).

    Args:
        series: model name -> sensitivity at hop distance ``r = 0, 1, ...``.
        path: PNG file to write (atomically).
        title: figure title; a default names the quantity.

    Shapes:
        - **input:** each series has length :math:`R + 1` (distances :math:`0..R`)
    """
    fig, ax = plt.subplots(figsize=_FIGSIZE, dpi=_DPI)
    drawn = 0
    for name, vals in series.items():
        pts = _finite(range(len(vals)), vals, positive=True)
        if not pts:
            continue
        ax.plot(
            [x for x, _ in pts],
            [v for _, v in pts],
            marker="o" if len(pts) <= 40 else None,
            markersize=3,
            label=str(name),
        )
        drawn += 1
    if drawn:
        ax.set_yscale("log")
    ax.set_xlabel("hop distance r")
    ax.set_ylabel("normalised sensitivity" + (" (log scale)" if drawn else ""))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(ax, title or "Jacobian sensitivity by hop distance", drawn)
    return _save(fig, path)


# ----------------------------------------------------------------------------------- helpers


def _ok(value: Any) -> bool:
    """A finite real number (bools, None and non-numbers are not)."""
    if value is None or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _finite(
    xs: Sequence[Any] | range, ys: Sequence[Any], *, positive: bool = False
) -> list[tuple[float, float]]:
    """(x, y) pairs with finite x and y (and y > 0 when ``positive``)."""
    return [
        (float(x), float(y))
        for x, y in zip(xs, ys, strict=False)
        if _ok(x) and _ok(y) and (not positive or float(y) > 0)
    ]


def _finish(ax: Any, title: str, drawn: int) -> None:
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if ax.get_yscale() == "log":
        ax.grid(True, which="minor", alpha=0.08)
    if drawn == 0:
        ax.text(0.5, 0.5, "no finite data", transform=ax.transAxes, ha="center", va="center")
    if ax.get_legend_handles_labels()[0]:
        if drawn > 5:  # many lines: the legend goes below the axes, not over the data
            ax.legend(fontsize="x-small", ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
        else:
            ax.legend(fontsize="small")


def _save(fig: Any, path: str | Path) -> Path:
    try:
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)
