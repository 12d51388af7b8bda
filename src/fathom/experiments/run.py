"""Run one :class:`~fathom.config.ExperimentConfig` over its seeds and aggregate the results."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch_geometric.data import Data

from fathom.config import ExperimentConfig, config_to_dict, with_seed
from fathom.errors import ConfigError
from fathom.models.build import build_model
from fathom.models.deep_gnn import DeepGNN
from fathom.seeding import seed_everything
from fathom.tasks.node import NodeClassification
from fathom.train.callbacks import LayerDiagnostics
from fathom.train.layerwise import fit_layerwise
from fathom.train.loop import EpochCallback, FitResult, fit

__all__ = ["ExperimentResult", "aggregate", "initial_model", "run_experiment", "train_one"]

AGGREGATED = (
    "train_acc",
    "val_acc",
    "test_acc",
    "train_loss",
    "val_loss",
    "test_loss",
    "epochs",
    "time_s",
)


@dataclass
class ExperimentResult:
    """Per-seed results of one config and their aggregate (mean, std over seeds)."""

    config: ExperimentConfig
    runs: list[dict[str, Any]] = field(default_factory=list)
    dataset: dict[str, Any] = field(default_factory=dict)

    @property
    def aggregate(self) -> dict[str, float | int]:
        return aggregate(self.runs)

    def to_dict(self, history: bool = True) -> dict[str, Any]:
        runs = (
            self.runs
            if history
            else [{k: v for k, v in r.items() if k != "history"} for r in self.runs]
        )
        return {
            "config": config_to_dict(self.config),
            "dataset": self.dataset,
            "aggregate": self.aggregate,
            "runs": runs,
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "torch_geometric": _pyg_version(),
            },
        }


def _pyg_version() -> str:
    import torch_geometric

    return torch_geometric.__version__


def aggregate(runs: list[dict[str, Any]]) -> dict[str, float | int]:
    """``<metric>_mean`` / ``<metric>_std`` (population std) over runs that have the metric,
    plus ``n`` (runs), ``n_diverged``."""
    out: dict[str, float | int] = {
        "n": len(runs),
        "n_diverged": sum(r["status"] == "diverged" for r in runs),
    }
    for key in AGGREGATED:
        values = [float(r[key]) for r in runs if r.get(key) is not None]
        if values:
            out[f"{key}_mean"] = statistics.fmean(values)
            out[f"{key}_std"] = statistics.pstdev(values)
    return out


def initial_model(cfg: ExperimentConfig, data: Data) -> nn.Module:
    """The freshly initialised model :func:`train_one` starts from for ``cfg`` (same seed, same
    weights), e.g. to diagnose it before training."""
    seed_everything(cfg.seed)
    return build_model(cfg.model, data.num_features, int(data.y.max()) + 1)


def train_one(
    cfg: ExperimentConfig,
    data: Data,
    callbacks: list[EpochCallback] | None = None,
    *,
    on_model: Callable[[nn.Module], None] | None = None,
) -> FitResult:
    """Seed, build the model for ``data`` and fit it: one run of one seed.

    DGI is pre-trained self-supervised and evaluated with a linear probe; with
    ``train.layerwise`` the blocks are trained greedily; otherwise the whole model is
    trained end to end. ``train.diagnose_every=k`` measures per-layer over-smoothing metrics
    every ``k`` epochs and of the final (best) model
    (:class:`~fathom.train.callbacks.LayerDiagnostics`) into the result's ``diagnostics``;
    ``on_model(model)`` receives the trained model.
    """
    model = initial_model(cfg, data)
    callbacks = list(callbacks or [])
    tracker = None
    if cfg.train.diagnose_every:
        if cfg.model.arch == "dgi":
            raise ConfigError(
                "train.diagnose_every is not available for model.arch 'dgi' (no layer stack)"
            )
        tracker = LayerDiagnostics(model, data, cfg.train.diagnose_every)
        callbacks.append(tracker)
    fitted = _fit(cfg, model, data, callbacks)
    if tracker is not None:
        tracker.measure(fitted.best_epoch, final=True)
        fitted.diagnostics = tracker.records
    if on_model is not None:
        on_model(model)
    return fitted


def _fit(
    cfg: ExperimentConfig, model: nn.Module, data: Data, callbacks: list[EpochCallback]
) -> FitResult:
    t = cfg.train
    if cfg.model.arch == "dgi":
        from fathom.models.dgi import fit_dgi

        return fit_dgi(
            model,  # type: ignore[arg-type]
            data,
            epochs=t.epochs,
            lr=t.lr,
            weight_decay=t.weight_decay,
            patience=t.patience,
            callbacks=callbacks,
        )
    task = NodeClassification(label_smoothing=t.label_smoothing)
    if t.layerwise:
        if not isinstance(model, DeepGNN):
            raise ConfigError(
                f"train.layerwise needs model.arch 'deep' (blocks to grow), got {cfg.model.arch!r}"
            )
        return fit_layerwise(model, task, data, t, callbacks)
    return fit(model, task, data, t, callbacks)


def run_experiment(
    cfg: ExperimentConfig,
    data: Data | None = None,
    on_run_end: Callable[[int, dict[str, Any]], None] | None = None,
    callbacks: list[EpochCallback] | None = None,
    *,
    on_model: Callable[[int, nn.Module], None] | None = None,
) -> ExperimentResult:
    """Train ``cfg.seeds`` models (seeds ``cfg.seed …``) on the same graph.

    The graph (and its split) is built once with ``cfg.seed``; seeds vary the model's
    initialisation and dropout. ``on_run_end(seed, run)`` is called after each seed and
    ``on_model(seed, model)`` with each trained model.
    """
    if data is None:
        from fathom.data.build import build_dataset

        data = build_dataset(cfg.data, seed=cfg.seed)
    result = ExperimentResult(cfg, dataset=_describe(data))
    for seed in range(cfg.seed, cfg.seed + cfg.seeds):
        t0 = time.perf_counter()
        fitted = train_one(
            with_seed(cfg, seed),
            data,
            callbacks,
            on_model=None if on_model is None else (lambda m, s=seed: on_model(s, m)),
        )
        run = {"seed": seed, **fitted.to_dict(), "wall_s": time.perf_counter() - t0}
        result.runs.append(run)
        if on_run_end is not None:
            on_run_end(seed, run)
    return result


def _describe(data: Data) -> dict[str, Any]:
    return {
        "name": getattr(data, "name", None),
        "num_nodes": data.num_nodes,
        "num_edges": data.num_edges,
        "num_features": data.num_features,
        "num_classes": int(data.y.max()) + 1,
        "train": int(data.train_mask.sum()),
        "val": int(data.val_mask.sum()),
        "test": int(data.test_mask.sum()),
    }
