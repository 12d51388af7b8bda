"""Run a sweep: expand a spec into single-seed runs and execute what the store lacks.

The store is the only state: every run is registered as ``pending`` by its config hash, a
worker ``claim``\\ s it (``running``), trains it, and ``finish``\\ es it (``done`` / ``diverged``
/ ``failed``) in one transaction. Killing the sweep at any moment leaves runs that were in
flight as ``running`` with a dead pid; the next invocation returns them to ``pending``
(:meth:`RunStore.recover_stale`) and runs them again, so every run ends up stored exactly
once. Workers are spawned processes with a fixed torch thread count, and die with the parent
(``PR_SET_PDEATHSIG``) so that a killed sweep leaves no orphan writing to the store.

With a :class:`~fathom.experiments.ray_executor.RayExecutor` the runs are Ray tasks on a
cluster instead: this process alone claims them and stores the record each task returns.
Either way a run is trained by :func:`~fathom.experiments.worker.train_record`.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from fathom.config import ExperimentConfig, config_hash, config_to_dict
from fathom.devices import flush_denormals
from fathom.errors import FathomError
from fathom.experiments.ray_executor import RayExecutor, require_ray
from fathom.experiments.spec import SweepSpec, expand, load_spec
from fathom.experiments.store import STATUSES, RunStore, warn_malformed
from fathom.experiments.worker import train_record

__all__ = [
    "EXECUTORS",
    "EpochProgress",
    "Executor",
    "ProgressCallback",
    "StartCallback",
    "SweepSummary",
    "anything_to_run",
    "execute_run",
    "run_configs",
    "sweep",
]

EXECUTORS = ("local", "ray")
"""Where a sweep's runs can execute: ``local`` worker processes, or ``ray`` tasks."""

Executor = Literal["local", "ray"] | RayExecutor
"""``"local"`` (the default: worker processes on this machine), ``"ray"`` (a local Ray
instance with defaults) or a configured :class:`~fathom.experiments.ray_executor.RayExecutor`
(a cluster's address, resources per run)."""

ProgressCallback = Callable[[int, int, dict[str, Any]], None]
"""Called as ``(finished, to_run, record)`` after each run: ``finished`` of the ``to_run``
runs this call executes have ended, ``record`` the run's stored record."""

StartCallback = Callable[[int], None]
"""Called once with the number of runs left to run (those the store does not hold as
finished), after the store has been read and before the first starts: the total that
:data:`ProgressCallback` counts up to, known before any run ends."""

EpochProgress = Callable[[str, int, int], None]
"""Called as ``(run_key, epoch, epochs)`` when an epoch of a run in flight ends (``epochs``: the
run's ``train.epochs``, which early stopping may cut short): progress within long runs."""

EPOCH_REPORT_EVERY_S = 0.5
"""The shortest time between two epochs a worker process reports (its first epoch always)."""


@dataclass
class SweepSummary:
    """What a sweep invocation found and did."""

    sweep: str
    store: str
    total: int
    already_done: int
    ran: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    """Status -> how many of this invocation's ``total`` runs the store holds with it at
    the end (not the sweep name's other runs, e.g. another cell of a reproduce suite)."""
    interrupted: bool = False
    wall_s: float = 0.0
    threads: int = 1
    workers: int = 1
    malformed: list[str] = field(default_factory=list)
    executor: str = "local"
    """``local`` or ``ray``; with ``ray``, ``workers`` is how many runs the cluster could
    train at once when the sweep started and ``threads`` each run's CPUs."""

    def line(self) -> str:
        """One line: what the store holds for this invocation's runs now."""
        held = ", ".join(f"{n} {s}" for s, n in self.counts.items() if n)
        verb = "interrupted" if self.interrupted else "finished"
        skipped = (
            f"; skipped {len(self.malformed)} malformed stored run(s), left as they are"
            if self.malformed
            else ""
        )
        return (
            f"sweep {self.sweep!r} {verb}: ran {self.ran} runs in {self.wall_s:.0f} s; "
            f"store {self.store} holds {held or 'nothing'} of {self.total}{skipped}"
        )


# --------------------------------------------------------------------------- one run


def execute_run(
    store_path: str,
    run_key: str,
    retry_failed: bool = False,
    device: str | None = None,
    on_epoch: EpochProgress | None = None,
) -> dict[str, Any] | None:
    """Claim, train and finish one run in this process; ``None`` if it was not claimable.

    ``device`` (``auto``, ``cpu``, ``cuda:N`` …) overrides the device stored with the run: a
    device is where a run executes, not part of what it is (nor of its key). ``on_epoch``
    hears of every epoch as it ends (:data:`EpochProgress`).

    Bad input (a :class:`FathomError`) and unexpected exceptions mark the run ``failed``
    with a one-line message (:func:`~fathom.experiments.worker.train_record`); an interrupt
    returns it to ``pending``.
    """
    with RunStore(store_path) as store:
        if not store.claim(
            run_key, retry_failed=retry_failed, pid=os.getpid(), host=socket.gethostname()
        ):
            return None
        record = store.get(run_key)
        if record is None:  # its row is malformed (reported by get): not runnable
            store.release(run_key)
            return None
        report = None
        if on_epoch is not None:
            epochs = _epochs_of(record["config"])

            def report(epoch: int) -> None:
                on_epoch(run_key, epoch, epochs)

        try:
            outcome = train_record(
                record["config"], device=device, provenance={"executor": "local"}, on_epoch=report
            )
        except KeyboardInterrupt:
            store.release(run_key)
            raise
        store.finish(run_key, **outcome.finish_kwargs())
        return store.get(run_key)


def _epochs_of(config: dict[str, Any]) -> int:
    """A stored config's epoch budget (0 when it has none: progress only)."""
    epochs = config.get("train", {}).get("epochs", 0)
    return epochs if isinstance(epochs, int) else 0


# --------------------------------------------------------------------------- workers

_EPOCH_QUEUE: Any = None
"""In a pool worker: where it reports its runs' epochs to the parent (``None``: nowhere)."""
_LAST_REPORT: dict[str, float] = {}


def _queue_epoch(run_key: str, epoch: int, epochs: int) -> None:
    """Put an epoch on :data:`_EPOCH_QUEUE`: a run's first, then one per
    :data:`EPOCH_REPORT_EVERY_S` at most (a fast run's epochs do not flood the parent)."""
    now = time.monotonic()
    last = _LAST_REPORT.get(run_key)
    if last is not None and now - last < EPOCH_REPORT_EVERY_S:
        return
    _LAST_REPORT[run_key] = now
    _EPOCH_QUEUE.put((run_key, epoch, epochs))


def _pool_run(
    store: str, run_key: str, retry_failed: bool, device: str | None
) -> dict[str, Any] | None:
    """:func:`execute_run` in a pool worker, reporting epochs when the parent listens."""
    on_epoch = _queue_epoch if _EPOCH_QUEUE is not None else None
    return execute_run(store, run_key, retry_failed, device, on_epoch)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no orphans after a kill -9).

    A spawned worker gets here only after importing torch (seconds): if ``parent`` died in
    the meantime the death signal will never come, so exit now rather than run the calls
    still queued in the pipe as an orphan writing to the store.
    """
    if sys.platform.startswith("linux"):
        try:
            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        except OSError:
            pass
    if os.getppid() != parent:
        os._exit(1)


def _init_worker(threads: int, parent: int, epoch_queue: Any = None) -> None:
    global _EPOCH_QUEUE
    _die_with_parent(parent)
    _EPOCH_QUEUE = epoch_queue
    if epoch_queue is not None:
        epoch_queue.cancel_join_thread()  # exiting never waits on reports nobody reads
    # the parent owns Ctrl-C: it stops dispatching and reclaims in-flight runs
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    flush_denormals()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def sweep(
    spec: SweepSpec | str | Path,
    store: str | Path,
    *,
    workers: int = 1,
    retry_failed: bool = False,
    threads: int | None = None,
    on_run_end: ProgressCallback | None = None,
    device: str | None = None,
    on_epoch: EpochProgress | None = None,
    max_runs: int | None = None,
    executor: Executor = "local",
    on_start: StartCallback | None = None,
) -> SweepSummary:
    """Run every run of ``spec`` that ``store`` does not hold as finished.

    Args:
        spec: a :class:`SweepSpec` or the path of a sweep YAML file.
        store: SQLite results store (created if missing).
        workers: parallel worker processes (1: run in this process).
        retry_failed: also re-run runs stored as ``failed``.
        threads: torch threads per run (default: CPU cores // workers, at least 1).
        on_run_end: called as ``(finished, to_run, record)`` after each run.
        on_start: called once with ``to_run`` before the first run starts
            (:data:`StartCallback`).
        on_epoch: called as ``(run_key, epoch, epochs)`` as an epoch of a run in flight ends
            (:data:`EpochProgress`; from another thread with ``workers > 1``, where a
            worker reports its first epoch of each run, then one per
            :data:`EPOCH_REPORT_EVERY_S` at most). Local executor only: Ray tasks report
            their runs when they end.
        device: where the runs execute, whatever device they were stored with (``None``:
            each run's own ``device``).
        max_runs: the most runs the spec may expand to (``--max-runs``; ``None``: the
            spec's own limit), counted before any run is built.
        executor: where the runs execute: ``"local"`` (``workers`` processes on this
            machine), ``"ray"`` or a :class:`~fathom.experiments.ray_executor.RayExecutor`
            (Ray tasks; ``workers`` and ``threads`` must be left at their defaults, a run's
            threads are its CPUs). Either way this process alone writes the store.

    Returns:
        A :class:`SweepSummary`; ``interrupted`` is True after Ctrl-C / SIGTERM, when
        in-flight runs were returned to ``pending``.
    """
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec) if max_runs is None else load_spec(spec, max_runs=max_runs)
    return run_configs(
        spec.name,
        expand(spec, max_runs=max_runs),
        store,
        workers=workers,
        retry_failed=retry_failed,
        threads=threads,
        on_run_end=on_run_end,
        device=device,
        executor=executor,
        on_epoch=on_epoch,
        on_start=on_start,
    )


def run_configs(
    name: str,
    configs: Sequence[ExperimentConfig],
    store: str | Path,
    *,
    workers: int = 1,
    retry_failed: bool = False,
    threads: int | None = None,
    on_run_end: ProgressCallback | None = None,
    device: str | None = None,
    on_epoch: EpochProgress | None = None,
    executor: Executor = "local",
    on_start: StartCallback | None = None,
) -> SweepSummary:
    """Register single-seed ``configs`` under the sweep ``name`` and run those ``store`` does
    not hold as finished (the engine behind :func:`sweep` and ``fathom reproduce``).

    Arguments as for :func:`sweep`.

    A stored run whose row is malformed (JSON that does not parse, a wrong type: edited by
    hand or another program) is reported by run key (one line on stderr each), left exactly
    as it is and not run; its key is listed in ``SweepSummary.malformed``. Nothing is written
    before the store has been opened for writing and read through.

    With a Ray executor, Ray is started (or joined) after the store has been read and before
    its first write, and only when some run is left to do; it is stopped (or left) before
    this returns.

    Raises:
        StoreError: the store cannot be opened for writing (missing folder, read-only, not a
            fathom store), before anything is run or written.
        FathomError: an invalid argument; with Ray, Ray missing, a cluster that cannot be
            reached or a run that fits on no node (one line, before the store is written).
    """
    if workers < 1:
        raise FathomError(f"--workers must be >= 1, got {workers}")
    if threads is not None and threads < 1:
        raise FathomError(f"--threads must be >= 1, got {threads}")
    ray_executor = _ray_executor(executor, workers, threads)
    try:
        return _run_keyed(
            name,
            [(config_hash(c), config_to_dict(c)) for c in configs],
            store,
            workers=workers,
            retry_failed=retry_failed,
            threads=threads,
            on_run_end=on_run_end,
            device=device,
            ray_executor=ray_executor,
            on_epoch=on_epoch,
            on_start=on_start,
        )
    finally:
        if ray_executor is not None:
            ray_executor.stop()


def _left_to_run(st: RunStore, keyed: Sequence[tuple[str, Any]], retry_failed: bool) -> bool:
    """Whether some run of ``keyed`` is not stored as finished (a cheap read: statuses)."""
    stored = st.statuses()
    final = ("done", "diverged") if retry_failed else ("done", "diverged", "failed")
    return any(stored.get(key) not in final for key, _ in keyed)


def anything_to_run(
    store: str | Path, configs: Sequence[ExperimentConfig], *, retry_failed: bool = False
) -> bool:
    """Whether :func:`run_configs` would run some of ``configs``: one is not stored in
    ``store`` as finished (``failed`` counts as unfinished with ``retry_failed``). Lets a
    caller start an executor (Ray) before any progress display, and only when needed."""
    with RunStore(store) as st:
        st.on_malformed = None
        return _left_to_run(st, [(config_hash(c), None) for c in configs], retry_failed)


def _ray_executor(executor: Executor, workers: int, threads: int | None) -> RayExecutor | None:
    """The Ray executor ``executor`` names (``None`` for the local one), checked before any
    work: Ray installed, no local-executor option given."""
    if isinstance(executor, str) and executor == "local":
        return None
    if isinstance(executor, str) and executor == "ray":
        executor = RayExecutor()
    if not isinstance(executor, RayExecutor):
        raise FathomError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers != 1:
        raise FathomError(
            "--workers applies to --executor local; with --executor ray the cluster's CPUs "
            "decide how many runs train at once (--cpus-per-run each)"
        )
    if threads is not None:
        raise FathomError(
            "--threads applies to --executor local; with --executor ray each run trains "
            "with as many threads as its --cpus-per-run"
        )
    require_ray()
    return executor


def _run_keyed(
    name: str,
    keyed: list[tuple[str, dict[str, Any]]],
    store: str | Path,
    *,
    workers: int,
    retry_failed: bool,
    threads: int | None,
    on_run_end: ProgressCallback | None,
    device: str | None,
    ray_executor: RayExecutor | None,
    on_epoch: EpochProgress | None = None,
    on_start: StartCallback | None = None,
) -> SweepSummary:
    """:func:`run_configs` on ``(run_key, config)`` pairs, with its arguments checked."""
    if ray_executor is not None:
        threads = ray_executor.cpus_per_run
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    start = time.perf_counter()
    wanted_keys = {key for key, _ in keyed}
    with RunStore(store) as st:
        # read the whole store before the first write: a malformed row of this sweep is
        # reported and left alone (never claimed, re-registered or "recovered")
        st.on_malformed = None
        malformed = {k: v for k, v in st.malformed_rows().items() if k in wanted_keys}
        for key, problem in malformed.items():
            warn_malformed(key, problem)
        keyed = [(key, cfg) for key, cfg in keyed if key not in malformed]
        if ray_executor is not None:
            # Ray takes seconds to start: only when a run is left, and before the first
            # write, so that a cluster that cannot be reached leaves the store as it was
            if not ray_executor.connected and _left_to_run(st, keyed, retry_failed):
                ray_executor.start()
            if ray_executor.connected:
                workers = ray_executor.slots()
        st.recover_stale(host=socket.gethostname(), exclude=malformed)
        st.register(name, keyed)
        wanted = {"pending", "failed"} if retry_failed else {"pending"}
        status = {r["run_key"]: r["status"] for r in st.runs(sweep=name)}
    todo = [key for key, _ in keyed if status.get(key) in wanted]
    summary = SweepSummary(
        name,
        str(store),
        total=len(keyed) + len(malformed),
        already_done=len(keyed) - len(todo),
        threads=threads,
        workers=workers,
        malformed=list(malformed),
        executor="local" if ray_executor is None else "ray",
    )

    def finished(record: dict[str, Any] | None) -> None:
        if record is not None:
            summary.ran += 1
            if on_run_end is not None:
                on_run_end(summary.ran, len(todo), record)

    if on_start is not None:
        on_start(len(todo))
    # signal handlers can only be set from the main thread (sweep() may run in another)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if main_thread else None
    current: str | None = None  # the run this process is executing (workers == 1)
    try:
        if ray_executor is not None:
            if todo:
                if not ray_executor.connected:
                    ray_executor.start()
                ray_executor.run(
                    str(store), todo, retry_failed=retry_failed, device=device, finished=finished
                )
        elif workers == 1:
            torch_threads = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                for key in todo:
                    current = key
                    finished(execute_run(str(store), key, retry_failed, device, on_epoch))
                current = None
            finally:
                torch.set_num_threads(torch_threads)
        else:
            _run_pool(str(store), todo, workers, threads, retry_failed, finished, device, on_epoch)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        with RunStore(store) as st:
            # runs whose worker is gone (interrupted, killed) go back to pending
            st.recover_stale(host=socket.gethostname(), exclude=malformed)
            # and so does the run this process claimed and did not finish (an interrupt
            # outside training, e.g. in finish's transaction, skips execute_run's release)
            record = st.get(current) if current is not None else None
            if (
                record is not None
                and record["status"] == "running"
                and record["pid"] == os.getpid()
                and record["host"] == socket.gethostname()
            ):
                st.release(current)
            # this invocation's runs only: a sweep name may gather several invocations'
            # grids (the reproduce suites' cells), and "holds N of total" counts these
            held = st.statuses()
            summary.counts = dict.fromkeys(STATUSES, 0)
            for key in [key for key, _ in keyed] + list(malformed):
                if key in held:
                    summary.counts[held[key]] += 1
        summary.wall_s = time.perf_counter() - start
    return summary


class _EpochListener:
    """The parent's end of the workers' epoch reports: a queue and a daemon thread that
    passes each report to ``on_epoch`` until :meth:`stop`."""

    def __init__(self, ctx: Any, on_epoch: EpochProgress) -> None:
        self.queue = ctx.Queue()
        self.on_epoch = on_epoch
        self.thread = threading.Thread(target=self._listen, name="fathom-epochs", daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        broken = False
        while (item := self.queue.get()) is not None:
            if broken:
                continue  # keep draining, so that no worker waits on a full pipe
            try:
                self.on_epoch(*item)
            except Exception:  # progress only: a failing display never stops the runs
                broken = True

    def stop(self) -> None:
        """Stop listening (reports still queued are dropped; never waits on a worker)."""
        self.queue.put(None)
        self.thread.join(timeout=5)
        self.queue.cancel_join_thread()
        self.queue.close()


def _run_pool(
    store: str,
    todo: list[str],
    workers: int,
    threads: int,
    retry_failed: bool,
    finished: Callable[[dict[str, Any] | None], None],
    device: str | None = None,
    on_epoch: EpochProgress | None = None,
) -> None:
    ctx = multiprocessing.get_context("spawn")
    epochs = None if on_epoch is None else _EpochListener(ctx, on_epoch)
    pool = cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(threads, os.getpid(), None if epochs is None else epochs.queue),
    )
    try:
        # workers are spawned by submit() and inherit this thread's signal mask across exec:
        # with SIGINT blocked meanwhile, a Ctrl-C while they import torch does not print
        # their tracebacks (the parent handles it; it is delivered here once unblocked)
        unix = hasattr(signal, "pthread_sigmask")
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if unix else None
        try:
            futures = [pool.submit(_pool_run, store, key, retry_failed, device) for key in todo]
        finally:
            if mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for future in cf.as_completed(futures):
            try:
                finished(future.result())
            except cf.process.BrokenProcessPool:
                raise FathomError(
                    "a sweep worker died (killed or out of memory); its run was returned to "
                    "pending: run the same command again to resume"
                ) from None
    except BaseException:
        # stop now: kill the workers rather than let them finish queued runs
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        if epochs is not None:
            epochs.stop()
    pool.shutdown(wait=True)
