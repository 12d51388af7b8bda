"""Early stopping on a monitored metric, keeping the best checkpoint. (Per-layer diagnostics
during training: :class:`fathom.diagnostics.tracking.LayerDiagnostics`.)"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["EarlyStopping", "lower_is_better"]


def lower_is_better(metric: str) -> bool:
    """Whether a lower ``metric`` is better: losses (``loss``, ``*_loss``)."""
    return metric == "loss" or metric.endswith("_loss")


class EarlyStopping:
    """Tracks the best epoch by ``monitor`` and keeps a copy of the model's weights there.

    Any metric an objective reports may be monitored: a loss (``loss``, the training loss of
    self-supervised objectives, or a name ending in ``_loss``) is better lower; anything else
    (``val_acc``, ``val_auc``, ``val_miou``, ``train_acc`` …) is better higher, ties broken
    by lower ``val_loss``. With ``min_delta``
    an epoch is better only by more than ``min_delta`` (no tie-break); with ``baseline`` the
    first epoch must beat it too (Keras' ``EarlyStopping`` arguments). :meth:`step`
    (= :meth:`update`, then :meth:`should_stop`) returns True when ``patience`` epochs
    passed without improvement (``patience=0`` never stops).
    """

    def __init__(
        self,
        monitor: str = "val_acc",
        patience: int = 100,
        *,
        min_delta: float = 0.0,
        baseline: float | None = None,
    ) -> None:
        if not monitor or not isinstance(monitor, str):
            raise ValueError(f"monitor must name a metric, got {monitor!r}")
        self.monitor, self.patience = monitor, patience
        self.min_delta, self.baseline = min_delta, baseline
        self.best_epoch = 0
        self.best_metrics: dict[str, float] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def _better(self, m: dict[str, float]) -> bool:
        key, delta = self.monitor, self.min_delta
        lower = lower_is_better(key)
        if self.best_metrics is None:
            if self.baseline is None:
                return True
            return m[key] < self.baseline - delta if lower else m[key] > self.baseline + delta
        b = self.best_metrics
        if lower:
            return m[key] < b[key] - delta
        if delta:
            return m[key] > b[key] + delta
        return m[key] > b[key] or (
            m[key] == b[key] and m.get("val_loss", 0.0) < b.get("val_loss", 0.0)
        )

    def step(self, epoch: int, metrics: dict[str, float], model: nn.Module) -> bool:
        """Record ``metrics`` of ``epoch``; return True when training should stop."""
        self.update(epoch, metrics, model)
        return self.should_stop(epoch)

    def update(self, epoch: int, metrics: dict[str, float], model: nn.Module) -> None:
        """Keep ``model``'s weights if ``metrics`` (all finite) beat the best so far."""
        if self.monitor not in metrics:
            raise ValueError(
                f"monitor {self.monitor!r} is not among the metrics: {', '.join(metrics)}"
            )
        if all(math.isfinite(v) for v in metrics.values()) and self._better(metrics):
            self.best_epoch, self.best_metrics = epoch, dict(metrics)
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def should_stop(self, epoch: int) -> bool:
        """Whether ``patience`` epochs have passed since the best one (never for 0)."""
        return self.patience > 0 and epoch - self.best_epoch >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the best weights seen into ``model`` (no-op if none were recorded)."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
