"""Tests of fathom.train.loop.fit and fathom.train.optim."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from fathom.config import ModelConfig, TrainConfig
from fathom.data.synthetic import csbm
from fathom.models.build import build_model
from fathom.tasks.node import NodeClassification
from fathom.train.loop import FitResult, fit, resolve_monitor
from fathom.train.optim import build_optimizer

METRIC_KEYS = {"train_acc", "val_acc", "test_acc", "train_loss", "val_loss", "test_loss"}


@pytest.fixture(scope="module")
def graph() -> Data:
    # Two classes, homophilous, moderately separated features: a GCN learns it in a few epochs.
    return csbm(
        num_nodes=200,
        num_classes=2,
        feature_dim=8,
        avg_degree=8.0,
        homophily=0.9,
        separation=1.5,
        seed=0,
    )


def _metrics(val_acc: float, val_loss: float) -> dict[str, float]:
    return {
        "train_acc": 0.5,
        "train_loss": 1.0,
        "val_acc": val_acc,
        "val_loss": val_loss,
        "test_acc": val_acc / 2,
        "test_loss": val_loss * 2,
    }


class ScriptedTask:
    """Loss ``sum(w**2)`` (finite, NaN on epoch ``nan_at``); evaluate returns scripted metrics."""

    def __init__(self, script: list[dict[str, float]], nan_at: int | None = None) -> None:
        self.script, self.nan_at, self.calls = script, nan_at, 0

    def loss(self, model: nn.Module, data: Data) -> Tensor:
        self.calls += 1
        loss = sum((p**2).sum() for p in model.parameters())
        return loss * math.nan if self.calls == self.nan_at else loss

    def evaluate(self, model: nn.Module, data: Data) -> dict[str, float]:
        return dict(self.script[self.calls - 1])


def _snapshots(model: nn.Module) -> tuple[list[dict[str, Tensor]], object]:
    snaps: list[dict[str, Tensor]] = []

    def callback(record: dict[str, float]) -> None:
        snaps.append({k: v.detach().clone() for k, v in model.state_dict().items()})

    return snaps, callback


# --------------------------------------------------------------------------- learning


def test_fit_learns_a_separable_graph(graph: Data) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=16), graph.num_features, 2)
    result = fit(model, NodeClassification(), graph, TrainConfig(epochs=40, lr=0.05, patience=0))
    assert isinstance(result, FitResult)
    assert result.status == "done" and result.message == ""
    assert result.epochs == 40
    assert result.metrics["test_acc"] >= 0.9  # chance is 0.5
    assert result.metrics["train_acc"] >= 0.9
    assert result.history[-1]["loss"] < 0.5 * result.history[0]["loss"]
    # The best epoch's weights are restored: evaluating again reproduces its metrics exactly.
    assert NodeClassification().evaluate(model, graph) == result.metrics
    best = result.history[result.best_epoch - 1]
    assert result.metrics == {k: v for k, v in best.items() if k not in ("epoch", "loss")}
    # The best epoch is the one with the highest val_acc (ties: lowest val_loss; then earliest).
    key = [(-r["val_acc"], r["val_loss"], r["epoch"]) for r in result.history]
    assert result.best_epoch == int(min(key)[2])


def test_history_records(graph: Data) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=8), graph.num_features, 2)
    seen: list[dict[str, float]] = []
    result = fit(
        model,
        NodeClassification(),
        graph,
        TrainConfig(epochs=5, patience=0),
        callbacks=[seen.append],
    )
    assert len(result.history) == 5
    assert [r["epoch"] for r in result.history] == [1.0, 2.0, 3.0, 4.0, 5.0]
    for record in result.history:
        assert set(record) == {"epoch", "loss"} | METRIC_KEYS
        assert all(isinstance(v, float) and math.isfinite(v) for v in record.values())
        assert 0.0 <= record["train_acc"] <= 1.0
    assert seen == result.history
    assert set(result.metrics) == METRIC_KEYS
    d = result.to_dict()
    assert d["status"] == "done" and d["epochs"] == 5 and d["history"] is result.history
    assert d["best_epoch"] == result.best_epoch and d["test_acc"] == result.metrics["test_acc"]
    assert result.time_s >= 0.0


def test_fit_leaves_model_in_train_mode_and_training_uses_train_mode(graph: Data) -> None:
    modes: list[bool] = []

    class Spy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(graph.num_features, 2)

        def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
            modes.append(self.training)
            return self.lin(x)

    fit(Spy(), NodeClassification(), graph, TrainConfig(epochs=2, patience=0))
    assert modes == [True, False, True, False]  # loss in train mode, evaluate in eval mode


# --------------------------------------------------------------------------- scripted runs


def test_early_stopping_in_fit() -> None:
    script = [_metrics(0.5, 1.0), _metrics(0.8, 0.5)] + [_metrics(0.7, 0.1)] * 20
    model = nn.Linear(2, 2)
    snaps, cb = _snapshots(model)
    result = fit(
        model, ScriptedTask(script), Data(), TrainConfig(epochs=20, patience=3), callbacks=[cb]
    )
    assert result.status == "done"
    assert result.best_epoch == 2
    assert result.epochs == 5 and len(result.history) == 5
    assert result.metrics == _metrics(0.8, 0.5)
    for k, v in model.state_dict().items():
        assert torch.equal(v, snaps[1][k])


def test_epochs_limit_without_patience() -> None:
    script = [_metrics(0.1 * i, 1.0) for i in range(7)]
    result = fit(nn.Linear(2, 2), ScriptedTask(script), Data(), TrainConfig(epochs=7, patience=0))
    assert result.epochs == 7 and result.best_epoch == 7


def test_monitor_val_loss_in_fit() -> None:
    script = [_metrics(0.9, 1.0), _metrics(0.1, 0.2), _metrics(0.9, 0.3)]
    cfg = TrainConfig(epochs=3, patience=0, monitor="val_loss")
    result = fit(nn.Linear(2, 2), ScriptedTask(script), Data(), cfg)
    assert result.best_epoch == 2


def test_diverged_at_epoch_k_keeps_best_checkpoint() -> None:
    script = [_metrics(0.5, 1.0), _metrics(0.8, 0.5), _metrics(0.6, 0.4), _metrics(1.0, 0.0)]
    model = nn.Linear(2, 2)
    snaps, cb = _snapshots(model)
    result = fit(
        model,
        ScriptedTask(script, nan_at=4),
        Data(),
        TrainConfig(epochs=10, patience=0),
        callbacks=[cb],
    )
    assert result.status == "diverged"
    assert result.message.startswith("diverged at epoch 4 ")
    assert result.message == "diverged at epoch 4 (training loss nan)"
    assert result.epochs == 3 and len(result.history) == 3
    assert result.best_epoch == 2
    assert result.metrics == _metrics(0.8, 0.5)
    for k, v in model.state_dict().items():
        assert torch.equal(v, snaps[1][k])
    assert result.to_dict()["status"] == "diverged"


def test_diverged_at_epoch_one_has_no_metrics() -> None:
    model = nn.Linear(2, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = fit(model, ScriptedTask([], nan_at=1), Data(), TrainConfig(epochs=5))
    assert result.status == "diverged"
    assert result.message == "diverged at epoch 1 (training loss nan)"
    assert result.metrics == {} and result.history == []
    assert result.best_epoch == 0 and result.epochs == 0
    for k, v in model.state_dict().items():  # no optimiser step was taken
        assert torch.equal(v, before[k])


def test_non_finite_validation_metrics_diverge() -> None:
    script = [_metrics(math.nan, math.nan)] * 3
    result = fit(nn.Linear(2, 2), ScriptedTask(script), Data(), TrainConfig(epochs=3, patience=0))
    assert result.status == "diverged"
    assert result.message == "diverged at epoch 3 (non-finite validation metrics)"
    assert result.metrics == {} and result.epochs == 3


def test_model_whose_output_becomes_nan(graph: Data) -> None:
    class NaNAt(nn.Module):
        """A GCN whose training forward returns NaN from its 3rd call on."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = build_model(ModelConfig(hidden=8, dropout=0.0), graph.num_features, 2)
            self.train_calls = 0

        def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
            out = self.inner(x, edge_index)
            if self.training:
                self.train_calls += 1
                if self.train_calls >= 3:
                    return out * math.nan
            return out

    torch.manual_seed(0)
    model = NaNAt()
    result = fit(model, NodeClassification(), graph, TrainConfig(epochs=10, lr=0.05, patience=0))
    assert result.status == "diverged"
    assert result.message.startswith("diverged at epoch 3 ")
    assert len(result.history) == 2
    best = result.history[result.best_epoch - 1]
    assert result.metrics == {k: v for k, v in best.items() if k not in ("epoch", "loss")}
    assert NodeClassification().evaluate(model, graph) == result.metrics


# --------------------------------------------------------------------------- optimiser


def test_build_optimizer() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    opt = build_optimizer(model, TrainConfig(lr=0.02, weight_decay=1e-3))
    assert type(opt) is torch.optim.Adam
    assert len(opt.param_groups) == 1
    group = opt.param_groups[0]
    assert group["lr"] == 0.02 and group["weight_decay"] == 1e-3
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]


def test_weight_decay_is_l2_on_the_gradient() -> None:
    # Adam's first step moves each weight by lr * sign(grad) (up to eps), where
    # grad = dL/dw + weight_decay * w; with a zero loss gradient only the decay remains.
    w = nn.Parameter(torch.tensor([2.0, -3.0]))
    model = nn.Module()
    model.w = w
    opt = build_optimizer(model, TrainConfig(lr=0.1, weight_decay=0.5))
    (w * 0).sum().backward()
    opt.step()
    torch.testing.assert_close(w.detach(), torch.tensor([1.9, -2.9]))


# ------------------------------------------------------------------ mini-batch tasks, LR decay


class _Regression:
    """A task on a fixed linear problem; ``val_acc`` rises as the loss falls."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(32, 3, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5]])

    def loss(self, model: nn.Module, data: object) -> Tensor:
        return F.mse_loss(model(self.x), self.y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: object) -> dict[str, float]:
        loss = F.mse_loss(model(self.x), self.y).item()
        return {"val_loss": loss, "val_acc": 1.0 / (1.0 + loss)}


class _MiniBatch(_Regression):
    """The same problem trained in mini-batches of 8 samples, yielded by the task itself."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0
        self.losses: list[float] = []

    def batches(self, data: object) -> Iterator[tuple[tuple[Tensor, Tensor], float]]:
        for i in range(0, 32, 8):
            yield (self.x[i : i + 8], self.y[i : i + 8]), 8.0

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:  # type: ignore[override]
        x, y = batch
        loss = F.mse_loss(model(x), y)
        self.steps += 1
        self.losses.append(loss.item())
        return loss


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(3, 1)


def test_minibatch_task_takes_its_own_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[int] = []
    original = torch.optim.Adam.step

    def spy(self: torch.optim.Adam, *args: object, **kwargs: object) -> object:
        steps.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    task = _MiniBatch()
    result = fit(_model(), task, None, TrainConfig(epochs=5, lr=0.05, weight_decay=0.0))
    assert task.steps == len(steps) == 20  # 4 batches x 5 epochs, no extra full-batch step
    assert result.epochs == 5
    # an epoch's loss is the weighted mean of its batches' losses (equal weights here)
    for epoch, record in enumerate(result.history):
        batch_losses = task.losses[4 * epoch : 4 * epoch + 4]
        assert record["loss"] == pytest.approx(sum(batch_losses) / 4, rel=1e-12)
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]


def test_minibatch_nan_loss_diverges() -> None:
    class _Bad(_MiniBatch):
        def loss(self, model, batch):  # type: ignore[no-untyped-def]
            return super().loss(model, batch) * math.nan

    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    result = fit(model, _Bad(), None, TrainConfig(epochs=3))
    assert result.status == "diverged"
    assert "epoch 1" in result.message
    # no step is taken on a non-finite batch loss
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))


def test_step_lr_decay(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = TrainConfig(epochs=6, lr=0.1, weight_decay=0.0, lr_decay_every=2, lr_decay=0.5)
    lrs: list[float] = []
    original = torch.optim.Adam.step

    def spy(self: torch.optim.Adam, *args: object, **kwargs: object) -> object:
        lrs.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    fit(_model(), _Regression(), None, cfg)
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_resolve_monitor() -> None:
    class _Link:
        default_monitor = "val_auc"

    assert resolve_monitor("auto", _Link()) == "val_auc"
    assert resolve_monitor("auto", object()) == "val_acc"
    assert resolve_monitor("val_loss", _Link()) == "val_loss"


def test_final_metrics_are_computed_once_from_the_restored_best_model() -> None:
    class _Probed(_Regression):
        def __init__(self) -> None:
            super().__init__()
            self.probed: list[Tensor] = []

        def final_metrics(self, model: nn.Module, data: object) -> dict[str, float]:
            self.probed.append(model.weight.detach().clone())
            return {"test_acc": 0.25}

    task = _Probed()
    model = _model()
    snaps, callback = _snapshots(model)
    result = fit(model, task, None, TrainConfig(epochs=4, lr=0.05, weight_decay=0.0), [callback])
    assert result.metrics == {"test_acc": 0.25}  # not the best epoch's record
    assert len(task.probed) == 1
    assert torch.equal(task.probed[0], snaps[result.best_epoch - 1]["weight"])
    # a run without a finite epoch is not probed
    bad = _Probed()
    bad.loss = lambda model, data: torch.tensor(math.nan)  # type: ignore[method-assign]
    result = fit(_model(), bad, None, TrainConfig(epochs=2))
    assert result.status == "diverged" and result.metrics == {} and bad.probed == []


@pytest.mark.parametrize("precision", ["32", "bf16"])
def test_cpu_training_is_float32_whatever_the_precision(precision: str) -> None:
    a = fit(_model(), _Regression(), None, TrainConfig(epochs=3, precision=precision))
    b = fit(_model(), _Regression(), None, TrainConfig(epochs=3))
    assert a.history == b.history  # bf16 autocast is for CUDA only
