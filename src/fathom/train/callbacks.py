"""Early stopping on a validation metric, keeping the best checkpoint."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """Tracks the best epoch by ``monitor`` and keeps a copy of the model's weights there.

    ``val_acc``: higher is better, ties broken by lower ``val_loss``; ``val_loss``: lower is
    better. :meth:`step` returns True when ``patience`` epochs passed without improvement
    (``patience=0`` never stops).
    """

    def __init__(self, monitor: str = "val_acc", patience: int = 100) -> None:
        if monitor not in ("val_acc", "val_loss"):
            raise ValueError(f"monitor must be val_acc or val_loss, got {monitor!r}")
        self.monitor, self.patience = monitor, patience
        self.best_epoch = 0
        self.best_metrics: dict[str, float] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def _better(self, m: dict[str, float]) -> bool:
        if self.best_metrics is None:
            return True
        b = self.best_metrics
        if self.monitor == "val_loss":
            return m["val_loss"] < b["val_loss"]
        return m["val_acc"] > b["val_acc"] or (
            m["val_acc"] == b["val_acc"] and m["val_loss"] < b["val_loss"]
        )

    def step(self, epoch: int, metrics: dict[str, float], model: nn.Module) -> bool:
        """Record ``metrics`` of ``epoch``; return True when training should stop."""
        if all(math.isfinite(v) for v in metrics.values()) and self._better(metrics):
            self.best_epoch, self.best_metrics = epoch, dict(metrics)
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return self.patience > 0 and epoch - self.best_epoch >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the best weights seen into ``model`` (no-op if none were recorded)."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
