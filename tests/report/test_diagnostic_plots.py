"""Diagnostic plots: PNGs written atomically, scales and labels right, NaN/inf/0 survived."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.figure
import numpy as np
import pytest

import fathom.report.diagnostic_plots as plots
from fathom.data.synthetic import make_synthetic
from fathom.diagnostics.structure import StructureReport, structure_report
from fathom.report.diagnostic_plots import (
    plot_layer_metric,
    plot_receptive_field,
    plot_sensitivity_by_hop,
)

PNG = b"\x89PNG\r\n\x1a\n"
NAN, INF = math.nan, math.inf


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each plot drew: title, labels, y scale, legend entries and line data."""
    seen: list[dict[str, Any]] = []
    save = plots._save

    def spy(fig: Any, path: Any) -> Path:
        ax = fig.axes[0]
        legend = ax.get_legend()
        seen.append(
            {
                "title": ax.get_title(),
                "ylabel": ax.get_ylabel(),
                "yscale": ax.get_yscale(),
                "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
                "lines": {
                    line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
                    for line in ax.get_lines()
                },
                "bands": len(ax.collections),
                "texts": [t.get_text() for t in ax.texts],
            }
        )
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    return seen


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == PNG
    strays = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert strays == [], strays


@pytest.fixture(scope="module")
def reports() -> dict[str, StructureReport]:
    ws = make_synthetic("watts-strogatz", num_nodes=100, k=4, p=0.3, seed=0)
    grid = make_synthetic("grid", height=10, width=10)
    return {
        "watts-strogatz": structure_report(ws.edge_index, 100, max_hops=6),
        "grid": structure_report(grid.edge_index, 100, max_hops=6),
    }


# ------------------------------------------------------------------------- receptive field


def test_receptive_field_plot(
    tmp_path: Path, reports: dict[str, StructureReport], figures: list[dict[str, Any]]
) -> None:
    mixed = {"watts-strogatz": reports["watts-strogatz"], "grid": reports["grid"].to_dict()}
    out = plot_receptive_field(mixed, tmp_path / "rf.png")
    assert out == tmp_path / "rf.png"
    assert_png(out)
    (fig,) = figures
    assert fig["yscale"] == "log"
    assert fig["legend"] == ["watts-strogatz", "grid", "whole graph"]
    assert fig["bands"] == 2  # one q10-q90 band per graph
    xs, ys = fig["lines"]["grid"]
    assert xs == [1, 2, 3, 4, 5, 6]
    assert ys == pytest.approx(reports["grid"].receptive_field["fraction"])
    assert fig["lines"]["whole graph"][1] == [1.0, 1.0]
    plot_receptive_field(mixed, tmp_path / "linear.png", log_y=False)
    assert figures[1]["yscale"] == "linear"


def test_receptive_field_plot_skips_nan_inf_and_zeros_on_log_axis(
    tmp_path: Path, figures: list[dict[str, Any]]
) -> None:
    bad = {
        "num_nodes": 10,
        "receptive_field": {
            "hops": [1, 2, 3, 4, 5],
            "fraction": [0.0, 0.2, NAN, INF, 0.9],
            "q10": [0.0, 0.0, 1.0, 2.0, 8.0],
            "q90": [1.0, NAN, 3.0, 4.0, 9.0],
        },
    }
    empty = {"num_nodes": 0, "receptive_field": {}}
    out = plot_receptive_field({"bad": bad, "empty": empty}, tmp_path / "rf.png")
    assert_png(out)
    xs, ys = figures[0]["lines"]["bad"]
    assert (xs, ys) == ([2, 5], [0.2, 0.9])
    assert "empty" not in figures[0]["lines"]
    plot_receptive_field({"bad": bad}, tmp_path / "rf_lin.png", log_y=False)
    assert figures[1]["lines"]["bad"] == ([1, 2, 5], [0.0, 0.2, 0.9])


# ---------------------------------------------------------------------------- layer metric


def test_layer_metric_energy_is_log_scaled_with_zeros_clipped_and_fits_in_legend(
    tmp_path: Path, figures: list[dict[str, Any]]
) -> None:
    series = {
        "GCN": [1.0, 0.5, 0.25, 0.0, NAN, 1e-3],
        "GCNII": [1.0, 0.9, INF, 0.8],
    }
    out = plot_layer_metric(
        series, tmp_path / "energy.png", fits={"GCN": 0.62, "GCNII": NAN}, title="Cora"
    )
    assert_png(out)
    (fig,) = figures
    assert fig["yscale"] == "log"
    assert fig["title"] == "Cora"
    assert fig["legend"] == ["GCN (rate 0.62/layer)", "GCNII"]
    assert "zeros drawn at 1.0e-04" in fig["ylabel"]  # smallest positive 1e-3, / 10
    assert fig["bands"] == 1  # the clipped zero is marked
    xs, ys = fig["lines"]["GCN (rate 0.62/layer)"]
    assert xs == [0, 1, 2, 3, 5]  # the NaN at layer 4 is skipped
    assert ys == pytest.approx([1.0, 0.5, 0.25, 1e-4, 1e-3])
    assert fig["lines"]["GCNII"] == ([0, 1, 3], [1.0, 0.9, 0.8])


def test_layer_metric_scale_choice(tmp_path: Path, figures: list[dict[str, Any]]) -> None:
    # a bounded metric with negatives: linear, no clipping
    plot_layer_metric({"m": [0.5, -0.2, 0.1]}, tmp_path / "a.png", metric="mad_gap")
    # a non-energy spanning many decades: log
    plot_layer_metric({"m": [1.0, 1e-4, 1e-8]}, tmp_path / "b.png", metric="norm")
    # log requested for an energy that is all zero: nothing to put on a log axis -> linear
    plot_layer_metric({"m": [0.0, 0.0]}, tmp_path / "c.png")
    plot_layer_metric({"m": [1.0, 2.0]}, tmp_path / "d.png", metric="mad", log_y=True)
    assert [f["yscale"] for f in figures] == ["linear", "log", "linear", "log"]
    assert figures[0]["lines"]["m"] == ([0, 1, 2], [0.5, -0.2, 0.1])
    assert figures[0]["ylabel"] == "MADGap (remote minus neighbour MAD)"  # the metric's label
    assert "zeros" not in figures[1]["ylabel"]
    assert figures[2]["lines"]["m"][1] == [0.0, 0.0]


def test_layer_metric_without_finite_data_still_writes_a_figure(
    tmp_path: Path, figures: list[dict[str, Any]]
) -> None:
    out = plot_layer_metric({"a": [NAN, INF], "b": []}, tmp_path / "none.png")
    assert_png(out)
    assert figures[0]["texts"] == ["no finite data"]
    assert_png(plot_layer_metric({}, tmp_path / "empty.png"))


# ------------------------------------------------------------------------------ sensitivity


def test_sensitivity_plot_drops_zeros_and_non_finite(
    tmp_path: Path, figures: list[dict[str, Any]]
) -> None:
    series = {
        "GCN": np.array([1.0, 0.1, 0.0, 1e-5, NAN]),
        "GIN": [1.0, -INF, 0.3],
        "dead": [0.0, 0.0],
    }
    out = plot_sensitivity_by_hop(series, tmp_path / "sens.png")
    assert_png(out)
    (fig,) = figures
    assert fig["yscale"] == "log"
    assert fig["lines"]["GCN"] == ([0, 1, 3], [1.0, 0.1, 1e-5])
    assert fig["lines"]["GIN"] == ([0, 2], [1.0, 0.3])
    assert fig["legend"] == ["GCN", "GIN"]
    assert_png(plot_sensitivity_by_hop({"dead": [0.0]}, tmp_path / "dead.png"))
    assert figures[1]["yscale"] == "linear" and figures[1]["texts"] == ["no finite data"]


# -------------------------------------------------------------------------------- atomicity


def test_a_failed_save_leaves_neither_file_nor_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: Any, *args: Any, **kwargs: Any) -> None:
        Path(args[0]).write_bytes(b"half")  # a partial write, then a crash
        raise RuntimeError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_sensitivity_by_hop({"GCN": [1.0, 0.5]}, tmp_path / "s.png")
    assert list(tmp_path.iterdir()) == []


def test_plots_create_folders_and_leave_only_the_png(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "e.png"
    plot_layer_metric({"GCN": [1.0, 0.1]}, target)
    assert_png(target)
    assert [p.name for p in target.parent.iterdir()] == ["e.png"]
