"""Per-layer metrics tracked through training, and the per-layer series a results store keeps.

:class:`LayerDiagnostics` is an epoch callback: every ``every`` epochs (and at epoch 1) it
probes the model once (:func:`~fathom.diagnostics.probes.probe_layers`: evaluation mode, no
grad, no random numbers drawn, so training is unchanged); :func:`layer_series` turns its
records into ``{metric: [value per layer]}`` of the trained model, what ``fathom report``
plots per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn
from torch_geometric.data import Data

from fathom.diagnostics.metrics import TRAINING_METRICS, resolve_metrics
from fathom.diagnostics.probes import probe_layers

__all__ = ["LayerDiagnostics", "layer_series"]


class LayerDiagnostics:
    """Epoch callback measuring per-layer over-smoothing metrics every ``every`` epochs.

    Each measurement is one evaluation-mode, no-grad forward pass under a
    :class:`~fathom.diagnostics.probes.LayerProbe` (no dropout, no DropEdge, no random
    numbers drawn, so training is unchanged); it is appended to :attr:`records` as
    ``{"epoch": e, "layers": [...]}`` (also at epoch 1); :meth:`measure` with ``final=True``
    adds the trained model's. Records go into the run's result (``diagnostics``); the results
    store keeps the final one per layer (:func:`layer_series`).

    Args:
        model: the model being trained, called as ``model(data.x, data.edge_index)``.
        data: the graph to probe on.
        every: measure every this many epochs (>= 1).
        metrics: metric names (:data:`~fathom.diagnostics.metrics.METRICS`), a
            comma-separated string or ``"all"``; default
            :data:`~fathom.diagnostics.metrics.TRAINING_METRICS`.
    """

    def __init__(
        self,
        model: nn.Module,
        data: Data,
        every: int,
        metrics: str | Sequence[str] = TRAINING_METRICS,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.model, self.data, self.every = model, data, every
        self.metrics = resolve_metrics(metrics)
        self.records: list[dict[str, Any]] = []

    def __call__(self, record: dict[str, float]) -> None:
        """The epoch callback: measure at epoch 1 and every ``every`` epochs."""
        epoch = int(record["epoch"])
        if epoch == 1 or epoch % self.every == 0:
            self.measure(epoch)

    def finish(self, result: Any) -> None:
        """Measure the trained (best, restored) model and hand every record to ``result``
        (a training result with ``best_epoch`` and a ``diagnostics`` attribute) as its
        ``diagnostics``."""
        self.measure(result.best_epoch, final=True)
        result.diagnostics = self.records

    def measure(self, epoch: int, *, final: bool = False) -> None:
        """Probe the model now; ``final`` marks the measurement of the trained (restored)
        model."""
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
