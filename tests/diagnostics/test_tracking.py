"""Per-layer metrics tracked through training: LayerDiagnostics and layer_series."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch_geometric.nn.models import GCN

from fathom.data.synthetic import make_synthetic
from fathom.diagnostics.metrics import TRAINING_METRICS
from fathom.diagnostics.tracking import LayerDiagnostics, layer_series
from fathom.errors import ConfigError


@pytest.fixture(scope="module")
def graph():
    return make_synthetic("csbm", num_nodes=50, feature_dim=6, num_classes=2, seed=0)


def test_layer_diagnostics_measures_at_epoch_one_every_k_and_the_trained_model(graph) -> None:
    torch.manual_seed(0)
    model = GCN(graph.num_features, 8, num_layers=3, out_channels=2).train()
    tracker = LayerDiagnostics(model, graph, every=3)
    assert tracker.metrics == TRAINING_METRICS
    for epoch in range(1, 8):
        tracker({"epoch": float(epoch), "loss": 1.0})
    assert [r["epoch"] for r in tracker.records] == [1, 3, 6]
    result = SimpleNamespace(best_epoch=6, diagnostics=None)
    tracker.finish(result)
    assert result.diagnostics is tracker.records
    final = tracker.records[-1]
    assert final["epoch"] == 6 and final["final"] is True
    assert [r["layer"] for r in final["layers"]] == [0, 1, 2, 3]
    assert set(final["layers"][1]) == {"layer", "name", "channels", *TRAINING_METRICS}
    assert model.training  # probing restores the mode


def test_layer_diagnostics_validates_its_arguments(graph) -> None:
    model = GCN(graph.num_features, 8, num_layers=2)
    with pytest.raises(ValueError, match="every must be >= 1"):
        LayerDiagnostics(model, graph, every=0)
    with pytest.raises(ConfigError, match="unknown metric 'energy'"):
        LayerDiagnostics(model, graph, every=1, metrics="energy")
    assert LayerDiagnostics(model, graph, every=1, metrics="mad,norm").metrics == ("mad", "norm")


def test_layer_series_takes_the_last_final_entry() -> None:
    layers = [
        {"layer": 0, "name": "input", "channels": 4, "mad": 0.5, "norm": 2.0},
        {"layer": 1, "name": "convs.0", "channels": 8, "mad": 0.25},
    ]
    records = [
        {"epoch": 1, "layers": [{"layer": 0, "name": "input", "channels": 4, "mad": 9.0}]},
        {"epoch": 2, "layers": layers, "final": True},
    ]
    series = layer_series(records)
    assert series["mad"] == [0.5, 0.25]
    assert series["norm"][0] == 2.0 and series["norm"][1] != series["norm"][1]  # NaN
    assert layer_series(records[:1]) == {}


def test_layer_diagnostics_records_every_k_epochs_without_changing_training() -> None:
    from fathom.config import ExperimentConfig, ModelConfig, TrainConfig, apply_overrides, with_seed
    from fathom.experiments.run import train_one

    data = make_synthetic("csbm", num_nodes=80, feature_dim=8, num_classes=2, seed=0)
    cfg = with_seed(
        ExperimentConfig(
            model=ModelConfig(depth=3, hidden=8, dropout=0.5, drop_edge=0.2),
            train=TrainConfig(epochs=9, patience=0),
        ),
        0,
    )
    plain = train_one(cfg, data)
    tracked = train_one(apply_overrides(cfg, {"train.diagnose_every": 4}), data)
    assert [r["loss"] for r in tracked.history] == [r["loss"] for r in plain.history]
    assert tracked.metrics == plain.metrics
    assert [d["epoch"] for d in tracked.diagnostics] == [1, 4, 8, tracked.best_epoch]
    assert tracked.diagnostics[-1]["final"] is True
    layers = tracked.diagnostics[-1]["layers"]
    assert [r["layer"] for r in layers] == [0, 1, 2, 3]
    assert {"dirichlet_energy", "mad", "effective_rank", "numerical_rank"} <= set(layers[1])
    assert "diagnostics" in tracked.to_dict() and "diagnostics" not in plain.to_dict()
    series = layer_series(tracked.diagnostics)
    assert series["dirichlet_energy"] == [r["dirichlet_energy"] for r in layers]
    assert layer_series(plain.diagnostics) == {}


def test_sweep_stores_final_layer_series_that_reports_plot(tmp_path) -> None:
    from fathom.config import ExperimentConfig, ModelConfig, TrainConfig, apply_overrides
    from fathom.experiments.store import RunStore
    from fathom.experiments.sweep import run_configs

    cfg = ExperimentConfig(model=ModelConfig(depth=3, hidden=8), train=TrainConfig(epochs=3))
    cfg = apply_overrides(cfg, {"data.synthetic.num_nodes": 60, "train.diagnose_every": 2})
    run_configs("diag", [cfg], tmp_path / "runs.db")
    with RunStore(tmp_path / "runs.db") as store:
        (record,) = store.runs()
    assert len(record["diagnostics"]["dirichlet_energy"]) == 4  # input + 3 layers
    assert record["diagnostics"]["effective_rank"][0] > 0
