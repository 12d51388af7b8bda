"""Tests of fathom.tasks.spec: the task registry, every task's config check and plan of fits,
and a new task added as one TaskSpec, run through ``train_one`` / ``run_experiment``."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

import fathom.tasks.spec as spec_mod
from fathom.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    SyntheticConfig,
    TrainConfig,
    config_from_dict,
)
from fathom.data.synthetic import make_synthetic
from fathom.errors import ConfigError
from fathom.experiments.run import describe_data, run_experiment, train_one
from fathom.models.build import build_model
from fathom.registry import Registry
from fathom.seeding import seed_everything
from fathom.tasks import TASKS, FitPlan, TaskSpec, get_task
from fathom.tasks.graph import GraphTaskConfig
from fathom.tasks.link import LinkTaskConfig
from fathom.tasks.neighbors_match import DATASET, NeighborsMatchConfig
from fathom.tasks.segmentation import PointsConfig
from fathom.train.loop import full_batch, to_device

BUILTIN = ["autoencoder", "graph", "link", "neighbors-match", "node", "segmentation"]
"""Every task ``fathom.tasks`` registers, sorted (a new task adds its tiny config below)."""

SMALL_GRAPH = DataConfig(
    name="csbm",
    synthetic=SyntheticConfig(num_nodes=40, num_classes=2, feature_dim=6, avg_degree=6.0),
)
FULL_BATCH = TrainConfig(epochs=2, lr=0.01, weight_decay=0.0, patience=0)
TRAIN = replace(FULL_BATCH, batch_size=4)  # for the tasks that batch their own items


def _tiny(task: str) -> ExperimentConfig:
    """A valid config of ``task`` whose data builds and trains in well under a second."""
    model = ModelConfig(depth=2, hidden=8, dropout=0.0)
    if task == "graph":
        return ExperimentConfig(
            task="graph",
            data=DataConfig(
                name="motifs",
                synthetic=SyntheticConfig(
                    num_graphs=18, num_classes=3, feature_dim=4, num_nodes=18 * 10
                ),
            ),
            model=replace(model, conv="gin"),
            train=TRAIN,
            graph=GraphTaskConfig(folds=3),
        ).validate()
    if task in ("link", "autoencoder"):
        return ExperimentConfig(
            task=task,
            data=SMALL_GRAPH,
            model=replace(model, arch="gae"),
            train=FULL_BATCH,
            link=LinkTaskConfig(val_fraction=0.1, test_fraction=0.1, embedding_dim=4),
        ).validate()
    if task == "segmentation":
        return ExperimentConfig(
            task="segmentation",
            data=DataConfig(name="scenes"),
            model=replace(model, conv="edge", skip="res"),
            train=TRAIN,
            points=PointsConfig(num_points=32, num_scenes=4, k=4, fusion_channels=8),
        ).validate()
    if task == "neighbors-match":
        return ExperimentConfig(
            task="neighbors-match",
            data=DataConfig(name=DATASET),
            model=replace(model, depth=3),
            train=TRAIN,
            neighbors_match=NeighborsMatchConfig(radius=2, num_examples=16, eval_every=1),
        ).validate()
    assert task == "node", f"no tiny config for task {task!r}"
    return ExperimentConfig(task=task, data=SMALL_GRAPH, model=model, train=FULL_BATCH).validate()


def test_the_builtin_tasks_are_registered() -> None:
    assert TASKS.names() == BUILTIN
    for name in BUILTIN:
        spec = get_task(name)
        assert isinstance(spec, TaskSpec) and spec.name == name
        assert spec.description and "\n" not in spec.description


def test_an_unknown_task_is_a_one_line_config_error_listing_the_tasks() -> None:
    with pytest.raises(ConfigError) as info:
        get_task("regression")
    message = str(info.value)
    assert "'regression'" in message and ", ".join(BUILTIN) in message
    assert "\n" not in message
    with pytest.raises(ConfigError) as info:
        ExperimentConfig(task="regression").validate()
    message = str(info.value)
    assert "task" in message and "'regression'" in message and ", ".join(BUILTIN) in message
    assert "\n" not in message


@pytest.mark.parametrize("task", BUILTIN)
def test_every_task_checks_its_configs(task: str) -> None:
    cfg = _tiny(task)
    spec = get_task(task)
    spec.check(cfg)  # a valid config passes the task's own check
    # a monitor the task does not report is refused, naming the key and the task
    bad = next(m for m in ("val_miou", "val_auc") if m not in spec.monitors)
    with pytest.raises(ConfigError) as info:
        replace(cfg, train=replace(cfg.train, monitor=bad)).validate()
    assert "train.monitor" in str(info.value) and repr(task) in str(info.value)
    assert "\n" not in str(info.value)
    # every task refuses an unknown conv through the registries it checks against
    with pytest.raises(ConfigError, match=r"model\.conv"):
        replace(cfg, model=replace(cfg.model, conv="nope")).validate()


@pytest.mark.parametrize("task", BUILTIN)
def test_every_task_plans_fits_that_build_and_train(task: str) -> None:
    cfg = _tiny(task)
    spec = get_task(task)
    data = spec.load(cfg)
    described = describe_data(data, task)
    assert described and spec.size(cfg, described)
    plans = list(spec.plan(cfg, data))
    assert len(plans) == spec.fits_per_seed(cfg) >= 1
    for plan in plans:
        assert isinstance(plan, FitPlan)
        assert plan.in_channels >= 1 and plan.out_channels >= 1
        seed_everything(plan.seed)
        model = build_model(cfg.model, plan.in_channels, plan.out_channels, head=plan.head)
        batch, weight = next(iter(getattr(plan.objective, "batches", full_batch)(plan.data)))
        loss = plan.objective.loss(model, to_device(batch, torch.device("cpu")))
        assert loss.dim() == 0 and math.isfinite(loss.item()) and weight > 0
    # the plan is a function of the config and the data
    again = list(spec.plan(cfg, data))
    assert [p.seed for p in again] == [p.seed for p in plans]


# --------------------------------------------------------------------------- a new task


class NodeRegression:
    """MSE of one output per node against ``data.target`` on the training nodes."""

    default_monitor = "val_loss"

    def loss(self, model: nn.Module, data: Data) -> Tensor:
        out = model(data.x, data.edge_index).squeeze(-1)
        return F.mse_loss(out[data.train_mask], data.target[data.train_mask])

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Data) -> dict[str, float]:
        was_training = model.training
        model.eval()
        out = model(data.x, data.edge_index).squeeze(-1)
        model.train(was_training)
        return {
            f"{split}_loss": F.mse_loss(out[data[mask]], data.target[data[mask]]).item()
            for split, mask in (("train", "train_mask"), ("val", "val_mask"), ("test", "test_mask"))
        }


class RegressionTask(TaskSpec):
    """A sixth task, defined here alone: regress each node's feature sum."""

    name = "regression"
    description = "node regression (test task)"
    monitors = ("val_loss",)

    def load(self, cfg: ExperimentConfig) -> Data:
        data = make_synthetic("csbm", num_nodes=50, num_classes=2, feature_dim=5, seed=cfg.seed)
        data.target = data.x.sum(dim=1)
        return data

    def describe(self, data: Data) -> dict[str, Any]:
        return {"num_nodes": data.num_nodes, "num_edges": data.num_edges}

    def plan(self, cfg: ExperimentConfig, data: Data) -> Iterator[FitPlan]:
        yield FitPlan(
            seed=cfg.seed,
            data=data,
            in_channels=data.num_features,
            out_channels=1,
            objective=NodeRegression(),
            diagnose=data,
        )


@pytest.fixture
def with_regression(monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry[TaskSpec]]:
    """A test registry: the built-in tasks plus :class:`RegressionTask`, in place of
    ``TASKS`` for the duration of the test (the global registry is not touched)."""
    registry: Registry[TaskSpec] = Registry("task")
    for name in TASKS:
        registry.add(name, TASKS.get(name))
    registry.add("regression", RegressionTask())
    monkeypatch.setattr(spec_mod, "TASKS", registry)
    yield registry
    assert TASKS.names() == BUILTIN  # the global registry is as it was


def test_a_new_task_runs_through_the_pipeline(with_regression: Registry[TaskSpec]) -> None:
    cfg = ExperimentConfig(
        task="regression",
        model=ModelConfig(depth=2, hidden=8, dropout=0.0),
        train=TrainConfig(epochs=20, lr=0.05, weight_decay=0.0, patience=0),
        seed=3,
    ).validate()
    with pytest.raises(ConfigError, match=r"train\.monitor"):
        replace(cfg, train=replace(cfg.train, monitor="val_acc")).validate()
    data = get_task("regression").load(cfg)
    records: list[dict[str, float]] = []
    a = train_one(cfg, data, [records.append])
    b = train_one(cfg, data)
    assert a.status == "done" and a.epochs == 20 and len(records) == 20
    assert set(a.metrics) == {"train_loss", "val_loss", "test_loss"}
    assert a.metrics == b.metrics  # seeded by the plan
    best = min(a.history, key=lambda r: r["val_loss"])  # monitor auto -> val_loss
    assert a.best_epoch == int(best["epoch"])
    assert a.history[-1]["train_loss"] < a.history[0]["train_loss"]
    # per-layer diagnostics work for a task that marks a graph to probe
    tracked = train_one(replace(cfg, train=replace(cfg.train, diagnose_every=10)), data)
    assert [d["epoch"] for d in tracked.diagnostics][:3] == [1, 10, 20]
    result = run_experiment(replace(cfg, seeds=2))
    assert result.dataset == {"num_nodes": 50, "num_edges": data.num_edges}
    assert [r["seed"] for r in result.runs] == [3, 4]
    assert result.aggregate["n"] == 2 and "val_loss_mean" in result.aggregate


def test_the_new_task_is_gone_after_the_test() -> None:
    assert "regression" not in TASKS
    with pytest.raises(ConfigError, match="regression"):
        get_task("regression")


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        # segmentation checks the registered names the other tasks check (not its convs)
        (
            {"task": "segmentation", "data": {"name": "scenes"}, "model": {"norm": "bogus"}},
            ["model.norm", "'bogus'"],
        ),
        (
            {"task": "segmentation", "data": {"name": "scenes", "rewire": "x"}},
            ["data.rewire", "'x'"],
        ),
        # a pre-activation block has no post-norm form
        ({"model": {"post_norm": True, "skip": "res+"}}, ["model.post_norm", "'res+'"]),
        # DGI is a model of its own, not a link encoder
        ({"task": "link", "model": {"arch": "dgi"}}, ["model.arch", "'link'"]),
        # layer-wise training needs a stack to grow, and graph readouts of a fixed depth
        ({"model": {"arch": "sgc"}, "train": {"layerwise": 2}}, ["train.layerwise", "'sgc'"]),
        (
            {
                "task": "graph",
                "data": {"name": "motifs"},
                "train": {"layerwise": 2},
                "graph": {"readout_layers": "all"},
            },
            ["train.layerwise", "readout_layers"],
        ),
        (
            {"task": "segmentation", "data": {"name": "scenes"}, "train": {"layerwise": 2}},
            ["train.layerwise", "'segmentation'"],
        ),
    ],
)
def test_task_rules_refuse_in_one_line(raw: dict[str, Any], words: list[str]) -> None:
    base = {"model": {"conv": "edge", "skip": "res"}} if raw.get("task") == "segmentation" else {}
    merged = {**base, **raw, "model": {**base.get("model", {}), **raw.get("model", {})}}
    with pytest.raises(ConfigError) as err:
        config_from_dict(merged)
    message = str(err.value)
    assert len(message.splitlines()) == 1
    for word in words:
        assert word in message, message
