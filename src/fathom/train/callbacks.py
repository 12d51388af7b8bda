"""Early stopping on a validation metric, keeping the best checkpoint."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch_geometric.data import Data

__all__ = ["EarlyStopping", "LayerDiagnostics", "layer_series"]


class EarlyStopping:
    """Tracks the best epoch by ``monitor`` and keeps a copy of the model's weights there.

    ``val_loss`` and ``loss`` (the training loss, for self-supervised objectives): lower is
    better; any other metric (``val_acc``, ``val_auc``, ``val_ap``, ``val_miou``,
    ``train_acc``): higher is better, ties broken by lower ``val_loss``. With ``min_delta``
    an epoch is better only by more than ``min_delta`` (no tie-break); with ``baseline`` the
    first epoch must beat it too (Keras' ``EarlyStopping`` arguments). :meth:`step`
    (= :meth:`update`, then :meth:`should_stop`) returns True when ``patience`` epochs
    passed without improvement (``patience=0`` never stops).
    """

    MONITORS = ("val_acc", "val_loss", "val_auc", "val_ap", "val_miou", "loss", "train_acc")
    LOWER_IS_BETTER = ("val_loss", "loss")

    def __init__(
        self,
        monitor: str = "val_acc",
        patience: int = 100,
        *,
        min_delta: float = 0.0,
        baseline: float | None = None,
    ) -> None:
        if monitor not in self.MONITORS:
            raise ValueError(f"monitor must be one of {self.MONITORS}, got {monitor!r}")
        self.monitor, self.patience = monitor, patience
        self.min_delta, self.baseline = min_delta, baseline
        self.best_epoch = 0
        self.best_metrics: dict[str, float] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def _better(self, m: dict[str, float]) -> bool:
        key, delta = self.monitor, self.min_delta
        lower = key in self.LOWER_IS_BETTER
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


class LayerDiagnostics:
    """Epoch callback measuring per-layer over-smoothing metrics every ``every`` epochs.

    Each measurement is one evaluation-mode, no-grad forward pass under a
    :class:`~fathom.diagnostics.probes.LayerProbe` (no dropout, no DropEdge, no random
    numbers drawn, so training is unchanged); it is appended to :attr:`records` as
    ``{"epoch": e, "layers": [...]}`` (also at epoch 1); :meth:`measure` with ``final=True``
    adds the trained model's. Records go into the run's result (``diagnostics``); the results
    store keeps the final one per layer (:func:`layer_series`).
    """

    def __init__(
        self,
        model: nn.Module,
        data: Data,
        every: int,
        metrics: str | tuple[str, ...] = (
            "dirichlet_energy",
            "mad",
            "effective_rank",
            "numerical_rank",
        ),
    ) -> None:
        from fathom.diagnostics.probes import resolve_metrics

        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.model, self.data, self.every = model, data, every
        self.metrics = resolve_metrics(metrics)
        self.records: list[dict[str, Any]] = []

    def __call__(self, record: dict[str, float]) -> None:
        epoch = int(record["epoch"])
        if epoch == 1 or epoch % self.every == 0:
            self.measure(epoch)

    def finish(self, result: Any) -> None:
        """Measure the trained (best, restored) model and hand every record to ``result``
        (a :class:`~fathom.train.loop.FitResult`) as its ``diagnostics``."""
        self.measure(result.best_epoch, final=True)
        result.diagnostics = self.records

    def measure(self, epoch: int, *, final: bool = False) -> None:
        """Probe the model now; ``final`` marks the measurement of the trained (restored)
        model."""
        from fathom.diagnostics.probes import probe_layers

        layers = probe_layers(self.model, self.data.x, self.data.edge_index, self.metrics)
        drop = ("forward", "sampled")
        entry: dict[str, Any] = {
            "epoch": epoch,
            "layers": [{k: v for k, v in r.items() if k not in drop} for r in layers],
        }
        if final:
            entry["final"] = True
        self.records.append(entry)


def layer_series(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    """``{metric: [value at layer 0, 1, …]}`` of the last ``final`` entry of ``records`` (from
    :class:`LayerDiagnostics`): the shape the results store keeps and ``fathom report``
    plots per layer; ``{}`` if there is none."""
    finals = [r for r in records if r.get("final")]
    if not finals:
        return {}
    layers = finals[-1]["layers"]
    names = [k for k in layers[0] if k not in ("layer", "name", "channels")] if layers else []
    return {name: [float(r.get(name, float("nan"))) for r in layers] for name in names}
