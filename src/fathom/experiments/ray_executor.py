"""Run a sweep's runs as Ray tasks, on one machine or a cluster, with the driver as the
results store's only writer.

The driver (the process running ``fathom sweep`` / ``fathom reproduce``) keeps the store on
its own disk and is the only process that writes it, so the store never has to be shared by
several machines (SQLite on a network file system is not safe for several writers):

* it claims a run (``running``, under its own pid and host) before it sends it, keeps at most
  about twice as many runs in flight as the cluster has slots for, and never sends a run the
  store holds as finished;
* a task trains the run from its config on whichever node Ray picks
  (:func:`~fathom.experiments.worker.train_record`, the same code the local executor runs)
  and returns its record: metrics, history, diagnostics and provenance (executor, node,
  host);
* the driver commits each record as it arrives, one transaction per run as with the local
  executor.

Faults: a task whose worker process or node dies is retried by Ray (``max_retries``, then
the run is stored as ``failed`` with the reason); a task lost any other way (its result lost
with the cluster, a cancellation) returns its run to ``pending``. Ctrl-C or SIGTERM of the
driver stops the tasks in flight (see :meth:`RayExecutor._stop_in_flight`) and returns their
runs to ``pending``; a killed driver leaves them ``running`` under its dead pid, and the next
sweep on the same host returns them to ``pending``
(:meth:`~fathom.experiments.store.RunStore.recover_stale`). Either way the
same command again completes the sweep, each run stored once.

Data travels by reference: a task receives the run's config (dataset name, generator
parameters), resolves the data on its node (``$FATHOM_DATA`` there, or ``data_dir``) and
keeps it for the next run of the same data in that worker process.

Ray is an optional extra (``pip install 'fathom-gnn[ray]'``); this module imports it only
when an executor starts.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fathom.errors import FathomError
from fathom.experiments.store import RunStore
from fathom.experiments.worker import RunOutcome, failed_outcome, train_record

__all__ = ["RAY_INSTALL", "RayExecutor", "require_ray"]

RAY_INSTALL = "pip install 'fathom-gnn[ray]'"
"""How to install the optional Ray extra (named in the error when Ray is missing)."""

_TASK_NAME = "fathom-run"
"""The name of every run's task (``ray::fathom-run-<key>`` in a worker's process title)."""

_POLL_S = 0.5  # how often the driver wakes while it waits for results (Ctrl-C stays prompt)


def require_ray() -> None:
    """Raise a one-line :class:`FathomError` saying how to install Ray if it is missing."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise FathomError(
            f"--executor ray needs Ray, which is not installed: {RAY_INSTALL}"
        ) from None


def _task(
    config: dict[str, Any],
    device: str | None,
    threads: int,
    data_dir: str | None,
    use_gpus: bool,
) -> RunOutcome:
    """What a Ray task runs on its node: one run, trained with ``threads`` torch threads
    (its CPUs), returning its record instead of writing any store."""
    import ray
    import torch

    from fathom.devices import flush_denormals

    torch.set_num_threads(threads)
    flush_denormals()
    if data_dir is not None:
        os.environ["FATHOM_DATA"] = data_dir
    if device is None and not use_gpus and config.get("device", "auto") == "auto":
        # a GPU this task did not reserve belongs to another task: auto means the CPU here
        device = "cpu"
    provenance = {"executor": "ray", "ray_node": ray.get_runtime_context().get_node_id()}
    return train_record(config, device=device, provenance=provenance)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@dataclass
class RayExecutor:
    """Where a sweep's runs execute: Ray tasks on a cluster (or a local Ray instance).

    Args:
        address: the cluster to join: ``HOST:PORT`` of its head, or ``auto`` (the cluster
            started with ``ray start`` on this machine, or ``$RAY_ADDRESS``); ``None``
            starts a local Ray instance for the sweep and stops it afterwards (or uses the
            one this process is already connected to).
        cpus_per_run: CPUs Ray reserves for each run, which trains with as many torch
            threads.
        gpus_per_run: GPUs reserved for each run (fractions share a GPU); with 0 a run of
            device ``auto`` trains on the CPU.
        max_retries: how many times Ray re-runs a task whose worker or node died before
            the run is stored as ``failed``.
        data_dir: the data root on every node (set as ``$FATHOM_DATA`` in the tasks);
            ``None``: each node's own ``$FATHOM_DATA`` and cache.
        num_cpus: CPUs of a local instance (``None``: all of this machine's); ignored when
            joining a cluster.

    Raises:
        FathomError: an invalid value (one line).
    """

    address: str | None = None
    cpus_per_run: int = 1
    gpus_per_run: float = 0.0
    max_retries: int = 3
    data_dir: str | None = None
    num_cpus: int | None = None
    _started: bool = field(default=False, init=False, repr=False)
    _connected: bool = field(default=False, init=False, repr=False)
    _head: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.address is not None and not str(self.address).strip():
            raise FathomError("--address must be HOST:PORT or auto, got an empty string")
        if not isinstance(self.cpus_per_run, int) or self.cpus_per_run < 1:
            raise FathomError(f"--cpus-per-run must be an integer >= 1, got {self.cpus_per_run}")
        if not math.isfinite(self.gpus_per_run) or self.gpus_per_run < 0:
            raise FathomError(f"--gpus-per-run must be >= 0, got {self.gpus_per_run}")
        if self.max_retries < 0:
            raise FathomError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise FathomError(f"num_cpus must be >= 1, got {self.num_cpus}")

    # ------------------------------------------------------------------ connection

    def check(self) -> None:
        """The cheap checks of :meth:`start`, without joining anything: Ray is installed and
        ``address`` names a cluster whose head accepts connections (a TCP connect, at most
        5 s). Lets a command refuse bad input in one line before any work.

        Raises:
            FathomError: Ray is missing, or no cluster answers at ``address`` (one line).
        """
        require_ray()
        if self.address is not None and self._head is None:
            self._head = _head_address(self.address)

    @property
    def connected(self) -> bool:
        """Whether :meth:`start` joined (or started) a cluster that :meth:`stop` has not left."""
        return self._connected

    def start(self) -> None:
        """Join the cluster (or start a local instance) and check that one run fits on some
        node; nothing is sent yet. Does nothing when already started.

        Raises:
            FathomError: Ray is missing, the cluster cannot be reached, or no node has
                ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs (one line each).
        """
        if self._connected:
            return
        require_ray()
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if ray.is_initialized():
            self._connected = True  # the caller's connection: used, and left open
        else:
            self.check()
            self._init(ray, self._head)
        try:
            self._check_fits(ray)
        except BaseException:
            self.stop()
            raise

    def _init(self, ray: Any, address: str | None) -> None:
        main = threading.current_thread() is threading.main_thread()
        sigterm = signal.getsignal(signal.SIGTERM) if main else None
        local = address is None
        # a local instance's services start in this process group: a terminal's Ctrl-C
        # reaches the whole group, and must stop the sweep, not kill Ray under it. Started
        # with SIGINT blocked, they inherit the block and leave Ctrl-C to the driver
        unix = local and main and hasattr(signal, "pthread_sigmask")
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if unix else None
        where = "a local Ray instance" if local else f"the Ray cluster at {self.address}"
        try:
            ray.init(
                address="local" if local else address,
                num_cpus=self.num_cpus if local else None,
                include_dashboard=False,
                log_to_driver=False,  # tasks report through their records, not stdout
                logging_level=logging.ERROR,
            )
        except Exception as exc:  # Ray's own: ConnectionError, RuntimeError, ValueError …
            with contextlib.suppress(Exception):
                ray.shutdown()  # whatever part of a local instance had started
            raise FathomError(f"cannot start or join {where}: {_one_line(exc)}") from None
        finally:
            if mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            if sigterm is not None:
                signal.signal(signal.SIGTERM, sigterm)  # ray.init replaces it
        self._started = True
        self._connected = True

    def _check_fits(self, ray: Any) -> None:
        need = {"CPU": float(self.cpus_per_run), "GPU": float(self.gpus_per_run)}
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        if any(all(n["Resources"].get(r, 0.0) >= v for r, v in need.items()) for n in nodes):
            return
        largest = max(
            ((n["Resources"].get("CPU", 0.0), n["Resources"].get("GPU", 0.0)) for n in nodes),
            default=(0.0, 0.0),
        )
        raise FathomError(
            f"no node of the Ray cluster can hold one run of {self.cpus_per_run} CPU(s) and "
            f"{self.gpus_per_run:g} GPU(s) (the largest has {largest[0]:g} CPUs, "
            f"{largest[1]:g} GPUs); lower --cpus-per-run / --gpus-per-run"
        )

    def stop(self) -> None:
        """Leave the cluster; a local instance this executor started is shut down."""
        if self._started:
            import ray

            with contextlib.suppress(Exception):
                ray.shutdown()
        self._started = self._connected = False

    def slots(self) -> int:
        """How many runs the cluster can train at once now (at least 1)."""
        import ray

        total = ray.cluster_resources()
        fits = [int(total.get("CPU", 0.0) // self.cpus_per_run)]
        if self.gpus_per_run > 0:
            fits.append(int(total.get("GPU", 0.0) // self.gpus_per_run))
        return max(1, min(fits))

    # ------------------------------------------------------------------ the driver

    def run(
        self,
        store: str,
        todo: list[str],
        *,
        retry_failed: bool,
        device: str | None,
        finished: Callable[[dict[str, Any] | None], None],
    ) -> None:
        """Send the runs ``todo`` (run keys of ``store``) as tasks and store their results
        as they arrive; returns when every run was stored or given back.

        ``finished`` is called with each stored record. An interrupt (Ctrl-C, or SIGTERM
        turned into one by the sweep) stops the tasks in flight and returns their runs
        to ``pending`` before it propagates.
        """
        if not self._connected:
            raise FathomError("the Ray executor is not started")
        import ray

        remote = ray.remote(_task)
        pending = list(reversed(todo))  # popped from the end: the spec's order
        in_flight: dict[Any, str] = {}  # task -> run key
        claimed: set[str] = set()  # claimed by this driver, not stored yet
        host, pid = socket.gethostname(), os.getpid()
        lost = 0
        with RunStore(store) as st:
            try:
                window, window_at = 2 * self.slots(), time.monotonic()
                while pending or in_flight:
                    if time.monotonic() - window_at > 5.0:  # nodes join and leave
                        window, window_at = 2 * self.slots(), time.monotonic()
                    while pending and len(in_flight) < window:
                        key = pending.pop()
                        claimed.add(key)
                        if not st.claim(key, retry_failed=retry_failed, pid=pid, host=host):
                            claimed.discard(key)  # finished or claimed elsewhere meanwhile
                            continue
                        record = st.get(key)
                        if record is None:  # its row is malformed (reported by get)
                            st.release(key)
                            claimed.discard(key)
                            continue
                        task = remote.options(
                            name=f"{_TASK_NAME}-{key[:12]}",
                            num_cpus=self.cpus_per_run,
                            num_gpus=self.gpus_per_run,
                            max_retries=self.max_retries,
                            retry_exceptions=False,
                            scheduling_strategy="SPREAD",
                        ).remote(
                            record["config"],
                            device,
                            self.cpus_per_run,
                            self.data_dir,
                            self.gpus_per_run > 0,
                        )
                        in_flight[task] = key
                    done, _ = ray.wait(list(in_flight), num_returns=1, timeout=_POLL_S)
                    for task in done:
                        key = in_flight.pop(task)
                        outcome = self._outcome(ray, task)
                        if outcome is None:  # lost: back to pending for the next sweep
                            st.release(key)
                            claimed.discard(key)
                            lost += 1
                            continue
                        st.finish(key, **outcome.finish_kwargs())
                        claimed.discard(key)
                        finished(st.get(key))
            except BaseException:
                self._stop_in_flight(ray, in_flight)
                _release_own(st, claimed, pid, host)
                raise
        if lost:
            import warnings

            warnings.warn(
                f"Ray lost {lost} run(s) (not a worker's or node's death: their results or "
                "the cluster); they were returned to pending: run the same command again",
                RuntimeWarning,
                stacklevel=2,
            )

    def _stop_in_flight(self, ray: Any, in_flight: dict[Any, str]) -> None:
        """Stop the tasks ``in_flight`` (an interrupt). A connection this executor opened is
        closed: the driver's job ends and Ray stops the job's tasks with it. Force-cancelling
        a running task instead (``ray.cancel(force=True)``) races, inside Ray's core worker,
        with the task's own completion and can abort the driver (``Check failed: it !=
        submissible_tasks_.end() Tried to complete task that was not pending``, ray 2.60;
        ray-project/ray#54846): seen in 1 of 4 interrupted sweeps on a loaded machine. On the
        caller's own connection, which must stay open, the tasks are cancelled."""
        if self._started:
            with contextlib.suppress(Exception):
                ray.shutdown()
            self._started = self._connected = False
            return
        for task in in_flight:
            with contextlib.suppress(Exception):
                ray.cancel(task, force=True)

    def _outcome(self, ray: Any, task: Any) -> RunOutcome | None:
        """A task's record; a ``failed`` one when its worker or node died more often than
        ``max_retries`` or it raised; ``None`` when it was lost (cancelled, its result lost)."""
        from ray import exceptions as rx

        try:
            return ray.get(task)
        except (rx.WorkerCrashedError, rx.NodeDiedError, rx.OutOfMemoryError) as exc:
            tries = self.max_retries + 1
            return failed_outcome(
                f"ray: {type(exc).__name__} after {tries} attempt(s): {_one_line(exc)}",
                provenance={"executor": "ray"},
            )
        except rx.RayTaskError as exc:  # raised in the task outside training (an import …)
            cause = getattr(exc, "cause", None) or exc
            return failed_outcome(
                f"ray task: {type(cause).__name__}: {_one_line(cause)}",
                provenance={"executor": "ray"},
            )
        except (rx.TaskUnschedulableError, rx.RuntimeEnvSetupError) as exc:
            return failed_outcome(f"ray: {_one_line(exc)}", provenance={"executor": "ray"})
        except rx.RayError:  # cancelled, result or owner lost: not the run's fault
            return None


def _head_address(address: str) -> str:
    """The ``HOST:PORT`` of the cluster ``address`` names (``auto``: ``$RAY_ADDRESS`` or the
    cluster ``ray start`` began on this machine), checked to accept connections: Ray's own
    client would wait for an unreachable head forever, logging every few seconds.

    Raises:
        FathomError: no cluster found, a malformed address, or a head that does not answer.
    """
    hint = "start one with `ray start --head`, or give its head's HOST:PORT"
    try:
        from ray._private.services import canonicalize_bootstrap_address

        resolved = canonicalize_bootstrap_address(address)
    except ImportError:  # Ray moved its helper: take the address as given
        resolved = None if address == "auto" else address
    except Exception as exc:  # ConnectionError: none found; ValueError: malformed
        raise FathomError(f"--address {address}: {_one_line(exc)}; {hint}") from None
    if resolved is None:
        raise FathomError(f"--address {address}: no running Ray cluster found; {hint}")
    host, _, port = resolved.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5.0):
            pass
    except (OSError, ValueError) as exc:
        raise FathomError(
            f"cannot reach the Ray cluster's head at {resolved} (--address {address}): "
            f"{_one_line(exc)}; {hint}"
        ) from None
    return resolved


def _release_own(st: RunStore, keys: set[str], pid: int, host: str) -> None:
    """Return to ``pending`` the runs of ``keys`` still ``running`` under this driver (a
    run another process claimed meanwhile is left alone)."""
    for key in sorted(keys):
        with contextlib.suppress(Exception):
            record = st.get(key)
            if (
                record is not None
                and record["status"] == "running"
                and record["pid"] == pid
                and record["host"] == host
            ):
                st.release(key)
