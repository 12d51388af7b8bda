"""A model-agnostic full-batch training loop: ``fit`` = epochs of ``loss -> step -> evaluate``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import Tensor, nn
from torch_geometric.data import Data

from fathom.config import TrainConfig
from fathom.train.callbacks import EarlyStopping
from fathom.train.optim import build_optimizer

__all__ = ["FitResult", "Task", "fit"]


class Task(Protocol):
    """What ``fit`` needs from a task."""

    def loss(self, model: nn.Module, data: Data) -> Tensor: ...

    def evaluate(self, model: nn.Module, data: Data) -> dict[str, float]: ...


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

    Each epoch: one optimiser step on ``task.loss``, then ``task.evaluate`` (eval mode);
    the record ``{epoch, loss, **metrics}`` is appended to the history and passed to each
    callback. A non-finite training loss stops the run as ``diverged at epoch N``; the
    best checkpoint before it (if any) is restored and its metrics reported.
    """
    optimizer = build_optimizer(model, cfg)
    stopper = EarlyStopping(cfg.monitor, cfg.patience)
    history: list[dict[str, float]] = []
    status, message, epoch = "done", "", 0
    start = time.perf_counter()
    model.train()
    for epoch in range(1, cfg.epochs + 1):
        optimizer.zero_grad(set_to_none=True)
        loss = task.loss(model, data)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            status, message = "diverged", f"diverged at epoch {epoch} (training loss {loss_value})"
            break
        loss.backward()
        optimizer.step()
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
