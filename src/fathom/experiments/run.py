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
from fathom.train.loop import EpochCallback, FitResult, Task, fit

__all__ = [
    "ExperimentResult",
    "aggregate",
    "build_task_data",
    "describe_data",
    "initial_model",
    "run_experiment",
    "train_one",
]

AGGREGATED = (
    "train_acc",
    "val_acc",
    "test_acc",
    "train_auc",
    "val_auc",
    "test_auc",
    "train_ap",
    "val_ap",
    "test_ap",
    "val_hits",
    "test_hits",
    "train_oa",
    "val_oa",
    "test_oa",
    "train_miou",
    "val_miou",
    "test_miou",
    "test_macc",
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
    """One record per trained model: per seed, or per (seed, fold) for graph classification."""
    dataset: dict[str, Any] = field(default_factory=dict)
    cross_validation: list[dict[str, Any]] = field(default_factory=list)
    """Graph classification: per seed, the fold mean and std of the test accuracy, and the
    GIN paper's protocol figure (``test_acc_paper``: the epoch with the best mean test-fold
    accuracy, an optimistic estimate kept only to compare with papers that report it)."""

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
            **({"cross_validation": self.cross_validation} if self.cross_validation else {}),
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


def build_task_data(cfg: ExperimentConfig) -> Any:
    """The data ``cfg.task`` trains on: a list of graphs for graph classification, else one
    graph (built with ``cfg.seed``)."""
    if cfg.task == "graph":
        from fathom.data.graph_datasets import load_graph_dataset

        return load_graph_dataset(cfg.data, seed=cfg.seed)
    if cfg.task == "segmentation":
        from fathom.data.pointclouds import build_point_clouds

        p = cfg.points
        return build_point_clouds(
            cfg.data.name,
            data_dir=cfg.data.data_dir,
            num_points=p.num_points,
            num_scenes=p.num_scenes,
            test_area=p.test_area,
            seed=cfg.seed,
        )
    from fathom.data.build import build_dataset

    return build_dataset(cfg.data, seed=cfg.seed)


def initial_model(cfg: ExperimentConfig, data: Data) -> nn.Module:
    """The freshly initialised model :func:`train_one` starts from for ``cfg`` (same seed, same
    weights), e.g. to diagnose it before training (node classification)."""
    if cfg.task != "node":
        raise ConfigError(f"initial_model is for task 'node', got task {cfg.task!r}")
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

    Other tasks: ``graph`` cross-validates (:func:`fathom.tasks.graph.cross_validate`; the
    result's metrics are fold means, ``folds`` the per-fold results), ``link`` and
    ``autoencoder`` split the edges with ``cfg.seed`` and train on the rest
    (:func:`fathom.tasks.link.run_link`, :func:`fathom.tasks.autoencoder.run_autoencoder`).
    """
    if cfg.task != "node":
        return _train_other_task(cfg, data, list(callbacks or []), on_model)
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
        tracker.finish(fitted)
    if on_model is not None:
        on_model(model)
    return fitted


def _train_other_task(
    cfg: ExperimentConfig,
    data: Any,
    callbacks: list[EpochCallback],
    on_model: Callable[[nn.Module], None] | None,
) -> FitResult:
    if cfg.train.layerwise:
        raise ConfigError(f"train.layerwise is for task 'node', not {cfg.task!r}")
    if on_model is not None:
        raise ConfigError(f"saving the trained model is for task 'node', not {cfg.task!r}")
    if cfg.task == "graph":
        from fathom.tasks.graph import cross_validate

        return cross_validate(cfg, data, callbacks)
    if cfg.task == "link":
        from fathom.tasks.link import run_link

        return run_link(cfg, data, callbacks)
    if cfg.task == "segmentation":
        from fathom.tasks.segmentation import run_segmentation

        return run_segmentation(cfg, data, callbacks)
    from fathom.tasks.autoencoder import run_autoencoder

    return run_autoencoder(cfg, data, callbacks)


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
    task: Task
    if cfg.data.inductive:
        from fathom.tasks.node import InductiveNodeClassification

        task = InductiveNodeClassification(label_smoothing=t.label_smoothing)
    else:
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
    """Train ``cfg.seeds`` models (seeds ``cfg.seed …``) on the same data.

    The graph (and its node split) is built once with ``cfg.seed``; seeds vary the model's
    initialisation and dropout, and for link tasks the edge split. Graph classification runs
    the whole cross-validation per seed and records one run per (seed, fold), so the
    aggregate's ``test_acc_mean`` / ``test_acc_std`` are over folds (the usual report).
    ``on_run_end(seed, run)`` is called after each seed and ``on_model(seed, model)`` with
    each trained model (node classification).
    """
    if data is None:
        data = build_task_data(cfg)
    result = ExperimentResult(cfg, dataset=describe_data(data))
    for seed in range(cfg.seed, cfg.seed + cfg.seeds):
        t0 = time.perf_counter()
        fitted = train_one(
            with_seed(cfg, seed),
            data,
            callbacks,
            on_model=None if on_model is None else (lambda m, s=seed: on_model(s, m)),
        )
        wall = time.perf_counter() - t0
        if fitted.folds:
            runs = [{"seed": seed, **fold} for fold in fitted.folds]
            if fitted.diagnostics:  # measured on fold 0's model
                runs[0]["diagnostics"] = fitted.diagnostics
            result.runs.extend(runs)
            result.cross_validation.append(
                {"seed": seed, **{k: v for k, v in fitted.metrics.items() if k.startswith("test")}}
            )
            run = runs[-1]
        else:
            run = {"seed": seed, **fitted.to_dict(), "wall_s": wall}
            result.runs.append(run)
        if on_run_end is not None:
            on_run_end(seed, run)
    return result


def describe_data(data: Any) -> dict[str, Any]:
    """Size of what a run trains on: one graph's nodes, edges, classes and split sizes, or a
    graph-classification dataset's summary."""
    from fathom.data.pointclouds import PointCloudSplits

    if isinstance(data, PointCloudSplits):
        return {
            "name": data.name,
            "num_classes": data.num_classes,
            "num_features": data.in_channels,
            "class_names": list(data.class_names),
            **{split: len(getattr(data, split)) for split in ("train", "val", "test")},
            "points_per_cloud": int(data.train[0].num_nodes) if data.train else 0,
        }
    if not isinstance(data, Data):
        from fathom.data.graph_datasets import describe_graph_dataset

        return describe_graph_dataset(data)
    return {
        "name": getattr(data, "name", None),
        "num_nodes": data.num_nodes,
        "num_edges": data.num_edges,
        "num_features": data.num_features,
        "num_classes": int(data.y.max()) + 1,
        **{
            split: int(data[f"{split}_mask"].sum())
            for split in ("train", "val", "test")
            if f"{split}_mask" in data
        },
    }
