"""Tests of fathom.experiments.run and fathom.seeding."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from fathom.config import DataConfig, ExperimentConfig, ModelConfig, SyntheticConfig, TrainConfig
from fathom.data.synthetic import csbm
from fathom.experiments.run import aggregate, run_experiment, train_one
from fathom.seeding import seed_everything

VOLATILE = ("time_s", "wall_s")  # wall-clock timings are the only non-reproducible fields

CFG = ExperimentConfig(
    data=DataConfig(
        name="csbm",
        synthetic=SyntheticConfig(num_nodes=60, num_classes=3, feature_dim=8, avg_degree=6.0),
    ),
    model=ModelConfig(depth=2, hidden=8, dropout=0.5),
    train=TrainConfig(epochs=6, lr=0.05, patience=0),
    seed=0,
    seeds=2,
)


@pytest.fixture(scope="module")
def graph() -> Data:
    return csbm(num_nodes=60, num_classes=3, feature_dim=8, avg_degree=6.0, seed=0)


def _stable(runs: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in runs]


# --------------------------------------------------------------------------- seeding


def test_seed_everything_resets_all_generators() -> None:
    def draw() -> tuple:
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    seed_everything(5)
    a = draw()
    seed_everything(5)
    assert draw() == a
    seed_everything(6)
    assert draw() != a
    seed_everything(2**32 + 5)  # numpy needs seeds < 2**32
    assert draw()[1] == a[1]


# --------------------------------------------------------------------------- runs


def test_run_experiment_is_deterministic(graph: Data) -> None:
    first = run_experiment(CFG, graph)
    second = run_experiment(CFG, graph)
    assert [r["seed"] for r in first.runs] == [0, 1]
    assert _stable(first.runs) == _stable(second.runs)  # bitwise: floats compared with ==
    for run in first.runs:
        assert run["status"] == "done" and len(run["history"]) == 6
    # Seeds vary initialisation and dropout.
    assert first.runs[0]["history"] != first.runs[1]["history"]


def test_different_seed_differs(graph: Data) -> None:
    a = run_experiment(CFG, graph)
    b = run_experiment(replace(CFG, seed=1), graph)
    assert [r["seed"] for r in b.runs] == [1, 2]
    # Seed 1 is the second run of `a` and the first of `b`: identical.
    assert _stable(a.runs)[1] == _stable(b.runs)[0]
    assert _stable(a.runs)[0]["history"] != _stable(b.runs)[0]["history"]


def test_train_one_matches_run(graph: Data) -> None:
    result = run_experiment(replace(CFG, seeds=1), graph)
    fitted = train_one(replace(CFG, seeds=1), graph)
    assert fitted.history == result.runs[0]["history"]
    assert fitted.metrics["test_acc"] == result.runs[0]["test_acc"]


def test_run_experiment_builds_the_dataset_from_the_config() -> None:
    cfg = replace(CFG, seeds=1)
    calls: list[tuple[int, dict]] = []
    result = run_experiment(cfg, on_run_end=lambda seed, run: calls.append((seed, run)))
    assert result.dataset == {
        "name": "csbm",
        "num_nodes": 60,
        "num_edges": result.dataset["num_edges"],
        "num_features": 8,
        "num_classes": 3,
        "train": 36,
        "val": 12,
        "test": 12,
    }
    assert result.dataset["num_edges"] > 0
    assert len(calls) == 1 and calls[0][0] == 0 and calls[0][1] is result.runs[0]
    # The same graph passed explicitly gives the same numbers.
    explicit = run_experiment(
        cfg, csbm(num_nodes=60, num_classes=3, feature_dim=8, avg_degree=6.0, seed=0)
    )
    assert _stable(explicit.runs) == _stable(result.runs)


def test_epoch_callbacks_and_result_dict(graph: Data) -> None:
    records: list[dict] = []
    result = run_experiment(CFG, graph, callbacks=[records.append])
    assert len(records) == 12  # 2 seeds x 6 epochs
    d = result.to_dict()
    assert d["config"]["model"]["hidden"] == 8
    assert d["aggregate"]["n"] == 2 and d["aggregate"]["n_diverged"] == 0
    assert set(d["versions"]) == {
        "python",
        "torch",
        "torch_geometric",
        "device",  # where the run executed (not part of the run's key)
        "threads",
        "precision",
    }
    assert d["versions"]["device"] in ("cpu", "cuda:0") and d["versions"]["precision"] == "32"
    assert all("history" in r for r in d["runs"])
    assert all("history" not in r for r in result.to_dict(history=False)["runs"])
    assert "history" in result.runs[0]  # to_dict(history=False) does not mutate the runs
    json.dumps(d)  # serialisable
    run = result.runs[0]
    for key in (
        "seed",
        "status",
        "message",
        "best_epoch",
        "epochs",
        "time_s",
        "wall_s",
        "train_acc",
        "val_acc",
        "test_acc",
        "history",
    ):
        assert key in run


# --------------------------------------------------------------------------- aggregate


def _run(status: str = "done", **metrics: float) -> dict:
    return {"status": status, **metrics}


def test_aggregate_exact_mean_and_population_std() -> None:
    values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]  # mean 5, population std 2
    runs = [_run(test_acc=v, val_acc=v / 10, epochs=10 * v) for v in values]
    agg = aggregate(runs)
    assert agg["n"] == 8 and agg["n_diverged"] == 0
    assert agg["test_acc_mean"] == 5.0 and agg["test_acc_std"] == 2.0
    assert math.isclose(agg["val_acc_mean"], 0.5) and math.isclose(agg["val_acc_std"], 0.2)
    assert agg["epochs_mean"] == 50.0 and agg["epochs_std"] == 20.0
    assert "train_acc_mean" not in agg  # no run has it


def test_aggregate_single_run_and_diverged() -> None:
    runs = [
        _run(test_acc=0.25, epochs=3),
        _run("diverged", epochs=0),  # diverged at epoch 1: no metrics
        _run("diverged", test_acc=0.75, epochs=5),
    ]
    agg = aggregate(runs)
    assert agg["n"] == 3 and agg["n_diverged"] == 2
    assert agg["test_acc_mean"] == 0.5 and agg["test_acc_std"] == 0.25
    assert agg["epochs_mean"] == pytest.approx(8 / 3)
    assert aggregate([_run(val_loss=1.5)]) == {
        "n": 1,
        "n_diverged": 0,
        "val_loss_mean": 1.5,
        "val_loss_std": 0.0,
    }


def test_aggregate_skips_none_values_and_empty() -> None:
    agg = aggregate([_run(test_acc=None), _run(test_acc=1.0)])
    assert agg["test_acc_mean"] == 1.0 and agg["test_acc_std"] == 0.0
    assert aggregate([]) == {"n": 0, "n_diverged": 0}


def test_result_aggregate_property(graph: Data) -> None:
    result = run_experiment(CFG, graph)
    agg = result.aggregate
    accs = [r["test_acc"] for r in result.runs]
    assert agg["test_acc_mean"] == sum(accs) / 2
    assert agg["test_acc_std"] == pytest.approx(abs(accs[0] - accs[1]) / 2)
