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

from fathom.config import ExperimentConfig, config_to_dict, with_seed
from fathom.devices import describe_device, resolve_device
from fathom.diagnostics.tracking import LayerDiagnostics
from fathom.errors import ConfigError
from fathom.models.build import build_model
from fathom.seeding import seed_everything
from fathom.tasks import FitPlan, get_task
from fathom.train.layerwise import fit_layerwise
from fathom.train.loop import EpochCallback, FitResult, fit, to_device

__all__ = [
    "ExperimentResult",
    "aggregate",
    "build_task_data",
    "describe_data",
    "initial_model",
    "run_experiment",
    "train_one",
]

AGGREGATED_EXTRA = ("epochs", "time_s")
"""Run fields aggregated besides the metrics (every ``train_*`` / ``val_*`` / ``test_*``)."""


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
                **describe_device(resolve_device(self.config.device)),
                "precision": self.config.train.precision,
            },
        }


def _pyg_version() -> str:
    import torch_geometric

    return torch_geometric.__version__


def aggregate(runs: list[dict[str, Any]]) -> dict[str, float | int]:
    """``<metric>_mean`` / ``<metric>_std`` (population std) over runs that have the metric,
    for every metric a task reports (``train_*``, ``val_*``, ``test_*``) and
    :data:`AGGREGATED_EXTRA`, plus ``n`` (runs), ``n_diverged``."""
    out: dict[str, float | int] = {
        "n": len(runs),
        "n_diverged": sum(r["status"] == "diverged" for r in runs),
    }
    keys = dict.fromkeys(
        key
        for r in runs
        for key, value in r.items()
        if key.startswith(("train_", "val_", "test_"))
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    )
    for key in [*keys, *AGGREGATED_EXTRA]:
        values = [float(r[key]) for r in runs if r.get(key) is not None]
        if values:
            out[f"{key}_mean"] = statistics.fmean(values)
            out[f"{key}_std"] = statistics.pstdev(values)
    return out


def build_task_data(cfg: ExperimentConfig) -> Any:
    """What ``cfg.task`` trains on (its spec's :meth:`~fathom.tasks.spec.TaskSpec.load`,
    built with ``cfg.seed``): one graph, a list of graphs, point clouds …"""
    return get_task(cfg.task).load(cfg)


def initial_model(cfg: ExperimentConfig, data: Any) -> nn.Module:
    """The freshly initialised model :func:`train_one` starts from for ``cfg`` (same seed, same
    weights), e.g. to diagnose it before training; for tasks whose models can be saved."""
    spec = get_task(cfg.task)
    if not spec.saves_models:
        raise ConfigError(
            f"initial_model needs a task whose models can be saved (node), got task {cfg.task!r}"
        )
    plan = next(iter(spec.plan(cfg, data)))
    seed_everything(plan.seed)
    return build_model(cfg.model, plan.in_channels, plan.out_channels, head=plan.head)


def train_one(
    cfg: ExperimentConfig,
    data: Any,
    callbacks: list[EpochCallback] | None = None,
    *,
    on_model: Callable[[nn.Module], None] | None = None,
    plan_hook: Callable[[FitPlan], FitPlan] | None = None,
) -> FitResult:
    """One seed of ``cfg`` on ``data``: every fit of the task's plan (one, or one per fold),
    each seeded, built by :func:`~fathom.models.build.build_model` with the task's head and
    trained by :func:`~fathom.train.loop.fit` (greedily with ``train.layerwise``:
    :func:`~fathom.train.layerwise.fit_layerwise`), on the device of ``cfg.device``; the
    task combines the fits into one result (cross-validation: fold means, ``folds``).

    ``train.diagnose_every=k`` measures per-layer over-smoothing metrics every ``k`` epochs
    and of the final (best) model of the fits the task marks
    (:class:`~fathom.diagnostics.tracking.LayerDiagnostics`) into the result's
    ``diagnostics``; ``on_model(model)`` receives the trained model (tasks whose models can
    be saved); ``plan_hook(plan)`` may adjust each fit's plan first (e.g. give its objective
    a time limit).
    """
    spec = get_task(cfg.task)
    if on_model is not None and not spec.saves_models:
        raise ConfigError(f"saving the trained model is for task 'node', not {cfg.task!r}")
    device = resolve_device(cfg.device, cfg.train.precision)
    trainer = fit_layerwise if cfg.train.layerwise else fit
    results: list[FitResult] = []
    for plan in spec.plan(cfg, data):
        if plan_hook is not None:
            plan = plan_hook(plan)
        seed_everything(plan.seed)
        model = build_model(cfg.model, plan.in_channels, plan.out_channels, head=plan.head)
        model = model.to(device)
        fit_data = to_device(plan.data, device)
        tracker = None
        if cfg.train.diagnose_every and plan.diagnose is not None:
            probe_data = fit_data if plan.diagnose is plan.data else plan.diagnose
            tracker = LayerDiagnostics(
                plan.probe_module(model), to_device(probe_data, device), cfg.train.diagnose_every
            )
        fitted = trainer(
            model,
            plan.objective,
            fit_data,
            cfg.train,
            [*(callbacks or []), *([tracker] if tracker else [])],
        )
        if tracker is not None:
            tracker.finish(fitted)
        if on_model is not None:
            on_model(model)
        results.append(fitted)
    return spec.combine(cfg, results)


def run_experiment(
    cfg: ExperimentConfig,
    data: Any = None,
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
    result = ExperimentResult(cfg, dataset=describe_data(data, cfg.task))
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


def describe_data(data: Any, task: str = "node") -> dict[str, Any]:
    """Size of what a run of ``task`` trains on (the task spec's ``describe``)."""
    return get_task(task).describe(data)
