"""Grouping runs by config without seed, and mean / std / curves / diagnostics over seeds."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from fathom.report.aggregate import (
    filter_sweep,
    flatten_config,
    group_runs,
    run_summary,
    short_key,
    status_counts,
    varying_keys,
)


def test_flatten_config_drops_seed_and_dots_nested_keys() -> None:
    config = {"model": {"depth": 4, "skip": "res"}, "data": {"s": {"n": 3}}, "seed": 7}
    flat = flatten_config(config)
    assert flat == {"model.depth": 4, "model.skip": "res", "data.s.n": 3}


def test_varying_keys_ignores_seed_and_keeps_config_order(records: list[dict[str, Any]]) -> None:
    done = [r for r in records if r["status"] == "done"]
    assert varying_keys(done) == ["model.depth", "model.skip"]
    assert varying_keys(done[:3]) == []  # three seeds of one config


def test_varying_keys_counts_a_missing_key(make_record: Any) -> None:
    a, b = make_record("none", 2, 0), make_record("none", 2, 0)
    b["config"]["model"]["extra"] = 1
    assert varying_keys([a, b]) == ["model.extra"]


def test_groups_per_config_with_label_without_depth(records: list[dict[str, Any]]) -> None:
    groups = group_runs(records)
    assert len(groups) == 6  # failed / pending / running runs are not aggregated
    assert [(g.key["model.skip"], g.key["model.depth"]) for g in groups] == [
        ("none", 2),
        ("none", 4),
        ("none", 8),
        ("res", 2),
        ("res", 4),
        ("res", 8),
    ]
    assert [g.label for g in groups] == ["skip=none"] * 3 + ["skip=res"] * 3
    assert groups[0].full_label == "skip=none, depth=2"
    assert all(g.n == 3 and g.seeds == [0, 1, 2] and g.n_diverged == 0 for g in groups)
    assert groups[0].config["model.conv"] == "gcn"
    assert "seed" not in groups[0].config


def test_exact_mean_and_population_std(records: list[dict[str, Any]]) -> None:
    g = group_runs(records)[2]  # skip=none, depth=8: test acc 0.60, 0.61, 0.62
    accs = [0.6, 0.61, 0.62]
    assert g.mean("test_acc") == pytest.approx(np.mean(accs))
    assert g.std("test_acc") == pytest.approx(np.std(accs))  # population std (ddof=0)
    assert g.std("test_acc") == pytest.approx(math.sqrt(2 / 3) / 100)
    assert g.mean("val_acc") == pytest.approx(np.mean(accs) - 0.05)
    assert g.mean("train_acc") == pytest.approx(np.mean(accs) + 0.1)
    assert g.mean("epochs") == pytest.approx(4.0)  # 5, 4, 3 epochs
    assert g.std("epochs") == pytest.approx(np.std([5, 4, 3]))
    assert g.mean("time_s") == pytest.approx(2.0)  # 1, 2, 3 s
    assert g.mean("peak_mem_mb") == pytest.approx(110.0)
    assert g.stats["test_acc"].n == 3


def test_missing_and_non_finite_metrics_are_skipped(make_record: Any) -> None:
    runs = [make_record("none", 2, s) for s in range(3)]
    runs[1]["metrics"]["test_acc"] = float("nan")
    del runs[2]["metrics"]["val_acc"]
    runs[2]["peak_mem_mb"] = None
    (g,) = group_runs(runs)
    assert g.stats["test_acc"].n == 2
    assert g.mean("test_acc") == pytest.approx((0.9 + 0.92) / 2)
    assert g.stats["val_acc"].n == 2
    assert g.stats["peak_mem_mb"].n == 2
    assert g.std("time_s") == pytest.approx(np.std([1, 2, 3]))


def test_single_seed_has_zero_std_and_no_varying_key_label(make_record: Any) -> None:
    (g,) = group_runs([make_record("res", 4, 0)])
    assert g.key == {}
    assert g.label == "gcn"  # named after the conv when nothing varies
    assert g.std("test_acc") == 0.0
    assert g.n == 1


def test_diverged_runs_are_aggregated_and_counted(make_record: Any) -> None:
    runs = [make_record("none", 8, 0), make_record("none", 8, 1, status="diverged")]
    (g,) = group_runs(runs)
    assert g.n == 2
    assert g.n_diverged == 1
    assert g.to_dict()["n_diverged"] == 1


def test_curves_align_by_epoch_over_the_seeds_still_training(make_record: Any) -> None:
    runs = [make_record("none", 2, s, epochs=e) for s, e in ((0, 5), (1, 3), (2, 1))]
    (g,) = group_runs(runs)
    val = g.curves["val_acc"]
    assert val.x == [1, 2, 3, 4, 5]
    assert val.n == [3, 2, 2, 1, 1]
    # seed s at epoch e: 0.4 + 0.05 e + 0.01 s
    assert val.mean[0] == pytest.approx(0.45 + 0.01)  # seeds 0, 1, 2
    assert val.std[0] == pytest.approx(np.std([0.45, 0.46, 0.47]))
    assert val.mean[1] == pytest.approx(0.5 + 0.005)  # seeds 0, 1
    assert val.mean[4] == pytest.approx(0.65)  # seed 0 only
    assert val.std[4] == 0.0
    loss = g.curves["train_loss"]
    assert loss.mean[2] == pytest.approx(np.mean([1 / 3, 1 / 3 + 0.1]))


def test_non_finite_curve_points_are_dropped(make_record: Any) -> None:
    runs = [make_record("none", 2, 0, epochs=3), make_record("none", 2, 1, epochs=3)]
    runs[1]["history"][2]["train_loss"] = float("inf")
    (g,) = group_runs(runs)
    assert g.curves["train_loss"].n == [2, 2, 1]


def test_layer_diagnostics_are_averaged_by_layer_index(make_record: Any) -> None:
    runs = [
        make_record("res", 4, 0, diagnostics={"dirichlet_energy": [1.0, 0.1, 0.01]}),
        make_record("res", 4, 1, diagnostics={"dirichlet_energy": [3.0, 0.3]}),
        make_record("res", 4, 2),  # no diagnostics
    ]
    (g,) = group_runs(runs)
    d = g.diagnostics["dirichlet_energy"]
    assert d.x == [0, 1, 2]
    assert d.mean == pytest.approx([2.0, 0.2, 0.01])
    assert d.std == pytest.approx([1.0, 0.1, 0.0])
    assert d.n == [2, 2, 1]


def test_status_summary_and_provenance(records: list[dict[str, Any]]) -> None:
    assert status_counts(records) == {"done": 18, "failed": 1, "running": 1, "pending": 1}
    s = run_summary(records)
    assert s["total"] == 21
    assert s["n_failed"] == 1
    (failed,) = s["failed"]
    assert failed["error"].startswith("CUDA out of memory")
    assert "depth=16" in failed["config"] and "skip=res" in failed["config"]
    assert s["versions"] == {"fathom": ["0.1.0"], "torch": ["2.4.0"], "torch_geometric": ["2.6.1"]}
    assert s["hosts"] == ["node-a", "node-b"]
    assert s["first_started"] == "2024-05-01T10:00:00+00:00"


def test_filter_sweep(make_record: Any) -> None:
    a, b = make_record("none", 2, 0), make_record("res", 2, 0)
    b["sweeps"] = ["other"]
    assert [r["run_key"] for r in filter_sweep([a, b], "depth")] == [a["run_key"]]
    assert len(filter_sweep([a, b], None)) == 2


def test_short_key_keeps_full_name_when_ambiguous() -> None:
    keys = ["model.dropout", "data.dropout", "model.skip"]
    assert short_key("model.skip", keys) == "skip"
    assert short_key("model.dropout", keys) == "model.dropout"


def test_other_varying_keys_and_numeric_order(make_record: Any) -> None:
    runs = [
        make_record("res", 16, 0, norm="pair"),
        make_record("res", 2, 0, norm="pair"),
        make_record("res", 16, 0, norm="batch"),
        make_record("res", 2, 0, norm="batch"),
    ]
    groups = group_runs(runs)
    assert [g.full_label for g in groups] == [
        "norm=pair, depth=2",
        "norm=pair, depth=16",  # numbers sort numerically, names keep first appearance
        "norm=batch, depth=2",
        "norm=batch, depth=16",
    ]


def test_one_cross_validated_run_reports_its_spread_over_folds(make_record: Any) -> None:
    one = make_record("none", 2, 0)
    one["config"]["task"] = "graph"
    one["metrics"].update(test_acc=0.7, test_acc_fold_std=0.05)
    (group,) = group_runs([one])
    assert group.mean("test_acc") == pytest.approx(0.7)
    assert group.std("test_acc") == pytest.approx(0.05)  # over folds, not over one seed
    two = make_record("none", 2, 1)
    two["config"]["task"] = "graph"
    two["metrics"].update(test_acc=0.8, test_acc_fold_std=0.02)
    (group,) = group_runs([one, two])
    assert group.std("test_acc") == pytest.approx(0.05)  # over seeds: pstdev(0.7, 0.8)
