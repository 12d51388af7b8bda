"""A model-agnostic full-batch training loop: ``fit`` = epochs of ``loss -> step -> evaluate``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from fathom.config import TrainConfig
from fathom.train.callbacks import EarlyStopping
from fathom.train.optim import build_optimizer

__all__ = ["FitResult", "Task", "fit", "resolve_monitor"]


class Task(Protocol):
    """What ``fit`` needs from a task.

    ``loss`` is one full-batch training loss (``fit`` takes the optimiser step). A task that
    trains in mini-batches defines ``train_epoch(model, data, optimizer) -> float`` instead:
    it takes its own steps over one epoch and returns the mean training loss (``nan`` if any
    batch diverged). ``default_monitor`` (optional) names the validation metric that
    ``monitor: auto`` resolves to (``val_acc`` if absent).
    """

    def loss(self, model: nn.Module, data: Data) -> Tensor: ...

    def evaluate(self, model: nn.Module, data: Data) -> dict[str, float]: ...


def resolve_monitor(monitor: str, task: object) -> str:
    """``monitor``, or for ``auto`` the task's ``default_monitor`` (``val_acc`` if none)."""
    if monitor != "auto":
        return monitor
    return str(getattr(task, "default_monitor", "val_acc"))


@dataclass
class FitResult:
    """Outcome of one training run.

    ``metrics`` are those of the best epoch (by the monitored validation metric), whose
    weights are restored into the model; ``status`` is ``done`` or ``diverged``.
    """

    status: str
    metrics: dict[str, float]
    best_epoch: int
    epochs: int
    time_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    message: str = ""
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    """Per-layer metrics measured during training (``LayerDiagnostics``), if any."""
    folds: list[dict[str, Any]] = field(default_factory=list)
    """Per-fold results of a cross-validated run (graph classification); ``metrics`` then
    holds their means."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "best_epoch": self.best_epoch,
            "epochs": self.epochs,
            "time_s": self.time_s,
            **self.metrics,
            "history": self.history,
            **({"diagnostics": self.diagnostics} if self.diagnostics else {}),
            **({"folds": self.folds} if self.folds else {}),
        }


EpochCallback = Callable[[dict[str, float]], None]


def fit(
    model: nn.Module,
    task: Task,
    data: Data,
    cfg: TrainConfig,
    callbacks: Sequence[EpochCallback] = (),
) -> FitResult:
    """Train ``model`` on ``data`` for up to ``cfg.epochs`` epochs with early stopping.

    Each epoch: one optimiser step on ``task.loss`` (or the task's own mini-batch
    ``train_epoch``), then ``task.evaluate`` (eval mode); the record ``{epoch, loss,
    **metrics}`` is appended to the history and passed to each callback. With
    ``cfg.lr_decay_every`` the learning rate is multiplied by ``cfg.lr_decay`` every that many
    epochs. A non-finite training loss stops the run as ``diverged at epoch N``; the best
    checkpoint before it (if any) is restored and its metrics reported.
    """
    optimizer = build_optimizer(model, cfg)
    scheduler = (
        torch.optim.lr_scheduler.StepLR(optimizer, cfg.lr_decay_every, gamma=cfg.lr_decay)
        if cfg.lr_decay_every
        else None
    )
    stopper = EarlyStopping(resolve_monitor(cfg.monitor, task), cfg.patience)
    train_epoch = getattr(task, "train_epoch", None)
    history: list[dict[str, float]] = []
    status, message, epoch = "done", "", 0
    start = time.perf_counter()
    model.train()
    for epoch in range(1, cfg.epochs + 1):
        if train_epoch is not None:
            loss_value = float(train_epoch(model, data, optimizer))
        else:
            optimizer.zero_grad(set_to_none=True)
            loss = task.loss(model, data)
            loss_value = loss.item()
            if math.isfinite(loss_value):
                loss.backward()
                optimizer.step()
        if not math.isfinite(loss_value):
            status, message = "diverged", f"diverged at epoch {epoch} (training loss {loss_value})"
            break
        if scheduler is not None:
            scheduler.step()
        record = {"epoch": float(epoch), "loss": loss_value, **task.evaluate(model, data)}
        history.append(record)
        for callback in callbacks:
            callback(record)
        if stopper.step(epoch, record, model):
            break
    elapsed = time.perf_counter() - start
    stopper.restore(model)
    metrics = {k: v for k, v in (stopper.best_metrics or {}).items() if k not in ("epoch", "loss")}
    if stopper.best_metrics is None and status == "done":
        status, message = "diverged", f"diverged at epoch {epoch} (non-finite validation metrics)"
    return FitResult(
        status=status,
        metrics=metrics,
        best_epoch=stopper.best_epoch,
        epochs=len(history),
        time_s=elapsed,
        history=history,
        message=message,
    )
