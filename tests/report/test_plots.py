"""Plots of aggregated groups: files written, scales chosen, too many lines trimmed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import fathom.report.plots as plots
from fathom.report.aggregate import group_runs
from fathom.report.plots import (
    choose_yscale,
    plot_accuracy_vs_depth,
    plot_layer_series,
    plot_training_curves,
    pretty_series_name,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each plot drew: title, axis labels and scales, legend entries."""
    seen: list[dict[str, Any]] = []
    save = plots._save

    def spy(fig: Any, path: Any) -> Path:
        seen.append(
            {
                "suptitle": fig._suptitle.get_text() if fig._suptitle else "",
                "titles": [ax.get_title() for ax in fig.axes],
                "xlabels": [ax.get_xlabel() for ax in fig.axes],
                "ylabels": [ax.get_ylabel() for ax in fig.axes],
                "yscales": [ax.get_yscale() for ax in fig.axes],
                "legend": [t.get_text() for lg in fig.legends for t in lg.get_texts()],
            }
        )
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    return seen


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        ([1.0, 2.0, 50.0], "linear"),  # < 2 decades
        ([1.0, 100.0], "linear"),  # exactly 2 decades
        ([1e-6, 1e-3, 1.0], "log"),
        ([0.0, 1e-6, 1.0], "symlog"),  # spans decades but has a zero
        ([-1.0, 0.5, 1.0], "linear"),
        ([5.0], "linear"),
        ([float("nan"), 1e-9, 1.0], "log"),
    ],
)
def test_choose_yscale(values: list[float], scale: str) -> None:
    assert choose_yscale(values) == scale


def test_training_curves_png(
    records: list[dict[str, Any]], tmp_path: Path, figures: list[dict[str, Any]]
) -> None:
    path = plot_training_curves(group_runs(records), tmp_path / "c.png", title="sweep")
    assert path.read_bytes()[:8] == PNG
    (fig,) = figures
    assert fig["suptitle"].startswith("sweep")
    assert "best" not in fig["suptitle"]
    assert fig["xlabels"] == ["epoch", "epoch"]
    assert "training loss" in fig["ylabels"][0]
    assert fig["ylabels"][1] == "validation accuracy (%)"
    assert fig["legend"][0] == "skip=none, depth=2 (n=3)"
    assert len(fig["legend"]) == 6
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left nothing behind


def test_training_curves_show_the_best_ten(
    make_record: Any, tmp_path: Path, figures: list[dict[str, Any]]
) -> None:
    runs = [make_record("none", d, 0, test_acc=d / 100, epochs=2) for d in range(1, 13)]
    plot_training_curves(group_runs(runs), tmp_path / "c.png", title="many")
    (fig,) = figures
    assert "best 10 of 12 by test accuracy" in fig["suptitle"]
    assert len(fig["legend"]) == 10
    assert "depth=1 " not in " ".join(fig["legend"]) + " "  # the two worst are left out
    assert "depth=2 (n=1)" not in fig["legend"]


def test_layer_series_uses_log_scale_when_values_span_decades(
    records: list[dict[str, Any]], tmp_path: Path, figures: list[dict[str, Any]]
) -> None:
    groups = group_runs(records)
    energy = plot_layer_series(groups, "dirichlet_energy", tmp_path / "e.png", title="energy")
    rank = plot_layer_series(groups, "effective_rank", tmp_path / "r.png", title="rank")
    assert energy.read_bytes()[:8] == PNG and rank.read_bytes()[:8] == PNG
    e, r = figures
    assert e["yscales"] == ["log"] and "log scale" in e["ylabels"][0]
    assert e["ylabels"][0].startswith("Dirichlet energy")
    assert r["yscales"] == ["linear"] and r["ylabels"][0].startswith("effective rank")
    assert e["xlabels"][0].startswith("layer index")
    # only the groups that have the series get a line
    assert e["legend"] == ["skip=none, depth=8 (n=3)", "skip=res, depth=8 (n=3)"]
    assert e["titles"] == ["energy"]


def test_layer_series_with_zeros_uses_symlog(
    make_record: Any, tmp_path: Path, figures: list[dict[str, Any]]
) -> None:
    runs = [make_record("none", 4, 0, diagnostics={"dirichlet_energy": [1.0, 1e-5, 0.0]})]
    plot_layer_series(group_runs(runs), "dirichlet_energy", tmp_path / "e.png", title="t")
    assert figures[0]["yscales"] == ["symlog"]


def test_series_labels_come_from_the_metric_registry() -> None:
    from fathom.diagnostics.metrics import metric_records

    for record in metric_records():
        assert pretty_series_name(record.name) == record.label
    # no label of its own for a name no metric produces: de-underscored
    for name in ("grad_norm", "feature_norm", "cosine_similarity", "train_acc"):
        assert pretty_series_name(name) == name.replace("_", " ")


def test_accuracy_vs_depth_keeps_its_signature(tmp_path: Path) -> None:
    rows = [
        {"model": m, "depth": d, "test_acc_mean": 0.5, "test_acc_std": 0.1}
        for m in ("GCN", "ResGCN")
        for d in (2, 4)
    ]
    path = plot_accuracy_vs_depth(rows, tmp_path / "a.png", title="t", chance=0.3)
    assert path == tmp_path / "a.png"
    assert path.read_bytes()[:8] == PNG
