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

from fathom import distributed
from fathom.config import ExperimentConfig, config_to_dict, with_seed
from fathom.devices import describe_device, flush_denormals, resolve_device
from fathom.diagnostics.tracking import LayerDiagnostics
from fathom.errors import ConfigError
from fathom.experiments.resume import RunResume
from fathom.models.build import build_model
from fathom.seeding import derive_seed, seed_everything
from fathom.tasks import TASKS, FitPlan, get_task
from fathom.train.distributed import DistributedObjective, fault_injection, wrap_model
from fathom.train.layerwise import fit_layerwise
from fathom.train.loop import EpochCallback, FitCheckpoint, FitResult, fit, to_device

__all__ = [
    "ExperimentResult",
    "aggregate",
    "build_task_data",
    "check_processes",
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
                **distributed.describe(),
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


def check_processes(cfg: ExperimentConfig, processes: int, *, resume: bool = False) -> None:
    """Whether ``cfg`` can train on ``processes`` processes (``--nproc``, torchrun) and,
    with ``resume``, be resumed (``--resume``); one-line ConfigError otherwise, before any
    data is loaded.

    Several processes need a task that trains data-parallel (``TaskSpec.distributed``: one
    fit per seed, its batches from a loader) with a loader that shards
    (``LoaderSpec.shards``), and no layer-wise training or per-layer diagnostics (their
    state lives outside ``fit``'s); each rank takes ``cuda:LOCAL_RANK``, so a device index
    is refused. Resuming needs the same of the task.
    """
    from fathom.loaders.build import LOADERS

    if processes < 1:
        raise ConfigError(f"--nproc must be >= 1, got {processes}")
    spec = get_task(cfg.task)
    able = [name for name in TASKS.names() if getattr(TASKS.get(name), "distributed", False)]
    what = "--resume" if processes == 1 else f"training on {processes} processes (--nproc)"
    if processes == 1 and not resume:
        return
    if not getattr(spec, "distributed", False):
        raise ConfigError(
            f"{what} is not available for task {cfg.task!r}; tasks that can: {', '.join(able)}"
        )
    if cfg.train.layerwise:
        raise ConfigError(f"{what} is not available with train.layerwise")
    if cfg.train.diagnose_every:
        raise ConfigError(f"{what} is not available with train.diagnose_every (--diagnose-every)")
    if processes > 1:
        loader = LOADERS.get(cfg.train.loader)
        if not loader.shards:
            sharding = ", ".join(n for n in LOADERS.names() if LOADERS.get(n).shards)
            raise ConfigError(
                f"{what} needs a loader that splits each epoch over the processes, got "
                f"train.loader (--loader) {cfg.train.loader!r}; loaders that can: {sharding}"
            )
        if cfg.device.startswith("cuda:"):
            raise ConfigError(
                f"device (--device) {cfg.device!r}: with several processes each rank uses "
                "cuda:LOCAL_RANK; give --device cuda (or auto)"
            )


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
    checkpoint: FitCheckpoint | None = None,
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
    a time limit); ``checkpoint`` saves and restores the fit's state between epochs
    (:class:`~fathom.train.loop.FitCheckpoint`; tasks with one fit per seed).

    In a process group of several ranks (``fathom train --nproc``, torchrun) the model is
    trained in :class:`~torch.nn.parallel.DistributedDataParallel` with a
    :class:`~fathom.train.distributed.DistributedObjective`; every rank builds the same
    initial weights from the seed, then draws its dropout masks from a stream of its own.
    ``on_model`` receives the unwrapped model.
    """
    spec = get_task(cfg.task)
    if on_model is not None and not spec.saves_models:
        raise ConfigError(f"saving the trained model is for task 'node', not {cfg.task!r}")
    device = resolve_device(cfg.device, cfg.train.precision)
    flush_denormals()
    trainer = fit_layerwise if cfg.train.layerwise else fit
    ranks = distributed.world_size()
    fault = fault_injection()
    results: list[FitResult] = []
    for plan in spec.plan(cfg, data):
        if plan_hook is not None:
            plan = plan_hook(plan)
        seed_everything(plan.seed)
        model = build_model(cfg.model, plan.in_channels, plan.out_channels, head=plan.head)
        model = model.to(device)
        trained, objective = model, plan.objective
        if ranks > 1:
            trained, objective = wrap_model(model, device), DistributedObjective(plan.objective)
            torch.manual_seed(derive_seed(plan.seed, "rank", distributed.rank()))
        fit_data = to_device(plan.data, device)
        tracker = None
        if cfg.train.diagnose_every and plan.diagnose is not None:
            probe_data = fit_data if plan.diagnose is plan.data else plan.diagnose
            tracker = LayerDiagnostics(
                plan.probe_module(model), to_device(probe_data, device), cfg.train.diagnose_every
            )
        fitted = trainer(
            trained,
            objective,
            fit_data,
            cfg.train,
            [*(callbacks or []), *([tracker] if tracker else []), *([fault] if fault else [])],
            **({"checkpoint": checkpoint} if checkpoint is not None else {}),
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
    resume: RunResume | None = None,
) -> ExperimentResult:
    """Train ``cfg.seeds`` models (seeds ``cfg.seed …``) on the same data.

    The graph (and its node split) is built once with ``cfg.seed``; seeds vary the model's
    initialisation and dropout, and for link tasks the edge split. Graph classification runs
    the whole cross-validation per seed and records one run per (seed, fold), so the
    aggregate's ``test_acc_mean`` / ``test_acc_std`` are over folds (the usual report).
    ``on_run_end(seed, run)`` is called after each seed and ``on_model(seed, model)`` with
    each trained model (node classification).

    ``data`` (default: built from ``cfg.data`` with ``cfg.seed``) may be a graph
    :func:`~fathom.data.build.build_dataset` returned, used as it is, or, for the node task,
    a user's own ``Data`` (``Data(x, edge_index, y)``, masks optional): it is validated,
    split (seeded stratified 60/20/20 when it has no masks) and preprocessed as a graph file
    would be (:func:`~fathom.data.build.prepare_user_graph`; the caller's object is not
    modified).

    With ``resume`` (:class:`~fathom.experiments.resume.RunResume`, ``--resume``), seeds it
    holds as done are taken from it as they are (their trained model rebuilt for
    ``on_model``), the seed in progress continues from its last saved epoch, and every seed
    that finishes is saved.
    """
    data = build_task_data(cfg) if data is None else _prepare_given(cfg, data)
    result = ExperimentResult(cfg, dataset=describe_data(data, cfg.task))
    for seed in range(cfg.seed, cfg.seed + cfg.seeds):
        saved = resume.completed(seed) if resume is not None else None
        if saved is not None:
            result.runs.append(saved["run"])
            if on_model is not None and saved["model"] is not None:
                model = initial_model(with_seed(cfg, seed), data)
                model.load_state_dict(saved["model"])
                on_model(seed, model)
            if on_run_end is not None:
                on_run_end(seed, saved["run"])
            continue
        t0 = time.perf_counter()
        kept: dict[str, nn.Module] = {}

        def model_hook(m: nn.Module, s: int = seed, kept: dict[str, nn.Module] = kept) -> None:
            kept["model"] = m
            if on_model is not None:
                on_model(s, m)

        fitted = train_one(
            with_seed(cfg, seed),
            data,
            callbacks,
            on_model=None if on_model is None else model_hook,
            checkpoint=None if resume is None else resume.checkpoint(seed),
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
        if resume is not None:
            model = kept.get("model")
            resume.complete(seed, run, None if model is None else model.state_dict())
        if on_run_end is not None:
            on_run_end(seed, run)
    return result


def _prepare_given(cfg: ExperimentConfig, data: Any) -> Any:
    """A node task's graph handed in by the caller: one ``build_dataset`` already prepared is
    used as it is (preparing twice would rewire twice); a user's own ``Data`` gets what a
    graph file gets (validation, the seeded split when it has no masks, ``cfg.data``'s
    feature preprocessing: :func:`fathom.data.build.prepare_user_graph`)."""
    from torch_geometric.data import Data

    if cfg.task != "node" or not isinstance(data, Data):
        return data
    from fathom.data.build import is_prepared, prepare_user_graph

    if is_prepared(data):
        return data
    return prepare_user_graph(data, cfg.data, seed=cfg.seed)


def describe_data(data: Any, task: str = "node") -> dict[str, Any]:
    """Size of what a run of ``task`` trains on (the task spec's ``describe``)."""
    return get_task(task).describe(data)
