"""The training loop: full-batch steps, mini-batch tasks, learning-rate decay, monitors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fathom.config import TrainConfig
from fathom.train.loop import fit, resolve_monitor


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
    """The same problem trained in mini-batches of 8 by the task itself."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def train_epoch(
        self, model: nn.Module, data: object, optimizer: torch.optim.Optimizer
    ) -> float:
        losses = []
        for i in range(0, 32, 8):
            optimizer.zero_grad()
            loss = F.mse_loss(model(self.x[i : i + 8]), self.y[i : i + 8])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            self.steps += 1
        return sum(losses) / len(losses)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(3, 1)


def test_minibatch_task_takes_its_own_steps() -> None:
    task = _MiniBatch()
    result = fit(_model(), task, None, TrainConfig(epochs=5, lr=0.05, weight_decay=0.0))
    assert task.steps == 20  # 4 batches x 5 epochs, no extra full-batch step
    assert result.epochs == 5
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]


def test_minibatch_nan_loss_diverges() -> None:
    class _Bad(_MiniBatch):
        def train_epoch(self, model, data, optimizer):  # type: ignore[no-untyped-def]
            return math.nan

    result = fit(_model(), _Bad(), None, TrainConfig(epochs=3))
    assert result.status == "diverged"
    assert "epoch 1" in result.message


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
