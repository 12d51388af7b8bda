"""One run trained where an executor sends it: from its stored config to the record the store
keeps, without touching the store.

Both executors train a run through :func:`train_record`: the local process pool inside
:func:`~fathom.experiments.sweep.execute_run`, which claims and finishes the run in the store
itself, and a Ray task on a cluster node, which returns the :class:`RunOutcome` to the driver,
the store's only writer (:mod:`fathom.experiments.ray_executor`). So a run's metrics are the
same whichever executor ran it, and a failure is recorded the same way.
"""

from __future__ import annotations

import platform
import resource
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from fathom.config import ExperimentConfig, config_from_dict, config_to_dict
from fathom.errors import FathomError

__all__ = ["RunOutcome", "failed_outcome", "run_versions", "train_record"]

_DATA_CACHE: dict[str, Any] = {}


def _dataset_for(cfg: Any) -> Any:
    """The data of ``cfg`` (built once per process per data config, seed and what the task
    loads: :meth:`~fathom.tasks.spec.TaskSpec.data_key`)."""
    from fathom.experiments.run import build_task_data
    from fathom.tasks import get_task

    key = repr((config_to_dict(cfg.data), cfg.seed, get_task(cfg.task).data_key(cfg)))
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = build_task_data(cfg)
    return _DATA_CACHE[key]


def run_versions(cfg: ExperimentConfig | None = None) -> dict[str, str]:
    """Package versions and where the run executed: device, GPU name, precision, threads."""
    from importlib.metadata import PackageNotFoundError, version

    import torch_geometric

    from fathom.devices import describe_device, resolve_device

    try:
        fathom_version = version("fathom-gnn")
    except PackageNotFoundError:  # a source tree that was never installed
        fathom_version = "unknown"
    return {
        "fathom": fathom_version,
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "python": platform.python_version(),
        "threads": str(torch.get_num_threads()),
        **(
            {
                **{k: str(v) for k, v in describe_device(resolve_device(cfg.device)).items()},
                "precision": cfg.train.precision,
            }
            if cfg is not None
            else {}
        ),
    }


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux: the process's peak so far (a worker's, across its runs)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class RunOutcome:
    """What a finished run stores: the keyword arguments of
    :meth:`~fathom.experiments.store.RunStore.finish` (status ``done`` / ``diverged`` /
    ``failed``, metrics, per-epoch history, per-layer diagnostics, timings, error or message,
    and provenance in ``versions``: package versions, device, threads, and the executor and
    host that ran it)."""

    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: dict[str, list[float]] = field(default_factory=dict)
    time_s: float | None = None
    peak_mem_mb: float | None = None
    error: str | None = None
    message: str = ""
    versions: dict[str, str] = field(default_factory=dict)

    def finish_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :meth:`~fathom.experiments.store.RunStore.finish`."""
        return asdict(self)


def failed_outcome(
    error: str, *, time_s: float | None = None, provenance: Mapping[str, str] | None = None
) -> RunOutcome:
    """A ``failed`` outcome with a one-line ``error`` (no metrics), for a run that could not
    be trained: its exception, or an executor that lost it for good."""
    return RunOutcome(
        status="failed",
        error=" ".join(error.split()) or "failed",
        time_s=time_s,
        versions={**run_versions(None), **(provenance or {})},
    )


def train_record(
    config: Mapping[str, Any],
    *,
    device: str | None = None,
    provenance: Mapping[str, str] | None = None,
    on_epoch: Callable[[int], None] | None = None,
) -> RunOutcome:
    """Train the single-seed run ``config`` (a resolved config as stored) in this process.

    Args:
        config: the run's config, as :func:`~fathom.config.config_to_dict` gives it.
        device: overrides the config's device (``auto``, ``cpu``, ``cuda:N`` …): a device is
            where a run executes, not part of what it is (nor of its key).
        provenance: added to the outcome's ``versions`` (e.g. ``executor``, ``hostname``).
        on_epoch: called with each epoch's number as it ends (progress only: it cannot
            change or stop the training).

    Returns:
        The outcome to store. Bad input (a :class:`FathomError`) and unexpected exceptions
        give a ``failed`` outcome with a one-line error; an interrupt propagates.
    """
    from fathom.experiments.run import train_one

    where = {"hostname": socket.gethostname(), **(provenance or {})}
    start = time.perf_counter()
    cfg = None
    try:
        cfg = config_from_dict(dict(config))
        if device is not None:
            cfg = replace(cfg, device=device)
        # an epoch callback returning None never asks to stop
        report = [] if on_epoch is None else [lambda record: on_epoch(int(record["epoch"]))]
        fitted = train_one(cfg, _dataset_for(cfg), report)
    except Exception as exc:  # recorded, not raised: one bad run must not stop a sweep
        message = " ".join(str(exc).split()) or type(exc).__name__
        if not isinstance(exc, FathomError):
            message = f"{type(exc).__name__}: {message}"
        return RunOutcome(
            status="failed",
            error=message,
            time_s=time.perf_counter() - start,
            peak_mem_mb=_peak_rss_mb(),
            versions={**run_versions(None if isinstance(exc, FathomError) else cfg), **where},
        )
    from fathom.diagnostics.tracking import layer_series

    return RunOutcome(
        status=fitted.status,
        metrics={**fitted.metrics, "best_epoch": fitted.best_epoch, "epochs": fitted.epochs},
        history=fitted.history,
        diagnostics=layer_series(fitted.diagnostics),
        time_s=fitted.time_s,
        peak_mem_mb=_peak_rss_mb(),
        message=fitted.message,
        versions={**run_versions(cfg), **where},
    )
