"""Tests of fathom.experiments.sweep: resumable sweeps that survive kills and interrupts.

The crash tests run ``python -m fathom.cli sweep`` as a subprocess, kill it (SIGKILL,
SIGINT, SIGTERM; the parent or a worker) while it runs, resume it, and compare the final
store with an uninterrupted run of the same spec: each run exactly once, all done, the same
metrics bit for bit, an intact SQLite file, and no worker outliving its parent.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fathom.cli import main
from fathom.experiments.store import STATUSES, RunStore
from fathom.experiments.sweep import SweepSummary, sweep

# 3 depths x 2 skips x 2 seeds = 12 runs of ~0.1-0.3 s each: quick, yet long enough to be
# killed mid-flight
SPEC = """\
name: tiny
base:
  data:
    name: csbm
    synthetic: {num_nodes: 150, feature_dim: 8}
  model: {hidden: 8}
  train: {epochs: 25, patience: 0}
grid:
  model.depth: [2, 4, 8]
  model.skip: [none, res]
  seed: range(2)
"""
N_RUNS = 12
TAG_VAR = "FATHOM_TEST_SWEEP_TAG"
WAIT_S = 120.0  # generous: two cores shared with other test processes


def _write_spec(folder: Path, text: str = SPEC) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


# --------------------------------------------------------------------------- store helpers


def _counts(db: Path) -> dict[str, int]:
    """Status counts read through a read-only connection ({} while there is no store yet)."""
    if not db.exists():
        return {}
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return {}
    try:
        return dict(conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
    except sqlite3.Error:  # not initialised yet, or busy
        return {}
    finally:
        conn.close()


def _rows(db: Path) -> dict[str, dict[str, Any]]:
    with RunStore(db, create=False) as st:
        return {r["run_key"]: r for r in st.runs()}


def _check_integrity(db: Path) -> None:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows, keys = conn.execute("SELECT COUNT(*), COUNT(DISTINCT run_key) FROM runs").fetchone()
        assert rows == keys
        (members,) = conn.execute("SELECT COUNT(*) FROM sweep_runs").fetchone()
        assert members == rows
    finally:
        conn.close()


def _outcome(record: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on how a run was scheduled, interrupted or resumed."""
    return {
        "status": record["status"],
        "config": record["config"],
        "metrics": record["metrics"],
        "history": [
            {k: v for k, v in h.items() if k not in ("time_s", "epoch_s")}
            for h in record["history"]
        ],
        "error": record["error"],
    }


def _assert_matches_reference(db: Path, reference: dict[str, dict[str, Any]]) -> None:
    """Every run of the spec exactly once, all done, with the reference's exact results."""
    _check_integrity(db)
    rows = _rows(db)
    assert sorted(rows) == sorted(reference)
    assert len(rows) == N_RUNS
    assert {r["status"] for r in rows.values()} == {"done"}
    for key, record in rows.items():
        assert _outcome(record) == _outcome(reference[key]), key  # exact equality
        assert record["sweeps"] == ["tiny"]


@dataclass
class Reference:
    spec: Path
    db: Path
    summary: SweepSummary
    calls: list[tuple[int, int, dict[str, Any]]]
    rows: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The spec swept once, uninterrupted, in this process (one thread, as the CLI runs)."""
    folder = tmp_path_factory.mktemp("reference")
    spec, db = _write_spec(folder), folder / "runs.db"
    calls: list[tuple[int, int, dict[str, Any]]] = []
    summary = sweep(spec, db, threads=1, on_run_end=lambda *a: calls.append(a))
    return Reference(spec, db, summary, calls, _rows(db))


# --------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def _tagged(tag: str) -> dict[int, str]:
    """Live (not zombie) processes started with ``TAG_VAR=tag`` in their environment, and
    their command lines: a sweep's parent, its workers and its resource tracker."""
    out = {}
    needle = f"{TAG_VAR}={tag}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        stat = _proc_stat(pid)
        if stat is not None and stat[0] not in ("Z", "X"):
            out[pid] = cmdline
    return out


def _workers(proc: subprocess.Popen[bytes], tag: str) -> list[int]:
    """The sweep's worker processes: spawned children of ``proc``."""
    return [
        pid
        for pid, cmdline in _tagged(tag).items()
        if "spawn_main" in cmdline and (_proc_stat(pid) or ["", ""])[1] == str(proc.pid)
    ]


def _assert_no_survivors(tag: str, timeout: float = WAIT_S) -> None:
    """No process of a killed sweep keeps running (workers die with their parent; one that
    was still importing torch exits as soon as it finds its parent gone)."""
    deadline = time.monotonic() + timeout
    while (left := _tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes outlived the sweep: {left}"


@dataclass
class Sweep:
    proc: subprocess.Popen[bytes]
    tag: str
    err: Path

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


def _launch(spec: Path, db: Path, *extra: str, workers: int = 1) -> Sweep:
    """``fathom sweep`` in its own session (its own process group), output to files: a
    killed sweep's orphans could otherwise hold a pipe open."""
    tag = uuid.uuid4().hex
    n = len(list(db.parent.glob("launch*.err")))
    err = db.parent / f"launch{n}.err"
    argv = [sys.executable, "-m", "fathom.cli", "sweep", str(spec), "--store", str(db)]
    argv += ["--threads", "1", "--workers", str(workers), *extra]
    with open(err, "wb") as ferr, open(db.parent / f"launch{n}.out", "wb") as fout:
        proc = subprocess.Popen(
            argv,
            stdout=fout,
            stderr=ferr,
            env={**os.environ, TAG_VAR: tag},
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
    return Sweep(proc, tag, err)


def _default_sigint() -> None:
    # a shell starts background jobs with SIGINT ignored, and an ignored signal stays ignored
    # across exec (Python then installs no Ctrl-C handler): give the sweep a terminal's
    # default, as when a user runs it in the foreground
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def launched() -> Iterator[list[Sweep]]:
    """Sweeps started by a test; any still running at the end are killed (group and all)."""
    sweeps: list[Sweep] = []
    yield sweeps
    for s in sweeps:
        if s.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(s.proc.pid, signal.SIGKILL)
            s.proc.wait()
        for pid in _tagged(s.tag):  # orphans of a failed test, by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _wait_until(s: Sweep, what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not ready():
        if s.proc.poll() is not None:
            pytest.fail(f"sweep exited ({s.proc.returncode}) before {what}:\n{s.stderr()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{s.stderr()}")
        time.sleep(0.02)


def _finish(s: Sweep, timeout: float = WAIT_S) -> int:
    try:
        return s.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"sweep did not finish in {timeout} s:\n{s.stderr()}")


def _sigkill(s: Sweep) -> None:
    os.kill(s.proc.pid, signal.SIGKILL)
    assert s.proc.wait(timeout=WAIT_S) == -signal.SIGKILL
    _assert_no_survivors(s.tag)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --------------------------------------------------------------------------- in process


def test_sweep_again_runs_nothing_and_never_duplicates(reference: Reference) -> None:
    s = reference.summary
    assert (s.total, s.already_done, s.ran, s.interrupted) == (N_RUNS, 0, N_RUNS, False)
    assert s.counts == {**dict.fromkeys(STATUSES, 0), "done": N_RUNS}
    assert s.line().startswith("sweep 'tiny' finished: ran 12 runs in ")
    assert s.line().endswith(f"store {reference.db} holds 12 done of 12")
    # on_run_end: once per run, counting up to the number of runs to do
    assert [(done, total) for done, total, _ in reference.calls] == [
        (i, N_RUNS) for i in range(1, N_RUNS + 1)
    ]
    assert sorted(r["run_key"] for _, _, r in reference.calls) == sorted(reference.rows)
    assert all(r["status"] == "done" for _, _, r in reference.calls)
    # the grid, each run once, all done after one attempt, in the spec's order
    configs = [r["config"] for r in reference.rows.values()]
    assert [(c["model"]["depth"], c["model"]["skip"], c["seed"]) for c in configs] == [
        (d, k, seed) for d in (2, 4, 8) for k in ("none", "res") for seed in (0, 1)
    ]
    for record in reference.rows.values():
        assert record["attempts"] == 1 and record["error"] is None
        assert 0.0 <= record["metrics"]["test_acc"] <= 1.0
        assert record["metrics"]["epochs"] == 25
        assert record["versions"]["threads"] == "1"
    _check_integrity(reference.db)

    calls: list[Any] = []
    again = sweep(reference.spec, reference.db, threads=1, on_run_end=lambda *a: calls.append(a))
    assert (again.total, again.already_done, again.ran, calls) == (N_RUNS, N_RUNS, 0, [])
    assert again.counts["done"] == N_RUNS
    assert _rows(reference.db) == reference.rows  # nothing rewritten
    with RunStore(reference.db, create=False) as st:
        assert st.sweeps() == ["tiny"]


@pytest.mark.parametrize("workers", [1, 2])
def test_epochs_of_runs_in_flight_are_reported_and_change_nothing(
    tmp_path: Path, reference: Reference, workers: int
) -> None:
    """on_epoch hears (run_key, epoch, epochs) as epochs end: every epoch in this process, a
    worker's first and then one per EPOCH_REPORT_EVERY_S; the runs' results are the
    reference's, bit for bit."""
    spec = _write_spec(tmp_path, SPEC.replace("[2, 4, 8]", "[8]").replace("range(2)", "[0]"))
    db = tmp_path / "runs.db"
    heard: list[tuple[str, int, int]] = []
    summary = sweep(spec, db, threads=1, workers=workers, on_epoch=lambda *a: heard.append(a))
    assert summary.ran == 2
    rows = _rows(db)
    for key, record in rows.items():
        assert _outcome(record) == _outcome(reference.rows[key])
        epochs = [e for k, e, _ in heard if k == key]
        assert {n for k, _, n in heard if k == key} == {25}
        if workers == 1:
            assert epochs == list(range(1, 26))
        else:  # throttled: the first epoch, then increasing epochs up to the last
            assert epochs[0] == 1 and epochs == sorted(set(epochs)) and epochs[-1] <= 25
    assert {k for k, _, _ in heard} == set(rows)


def test_summary_counts_this_invocations_runs_not_the_whole_sweep(tmp_path: Path) -> None:
    """Two invocations under one sweep name (as the reproduce suites run cell after cell): the
    second one's summary counts its own runs, not the name's others; on_start hears each
    invocation's runs left to run before the first one ends (0 when the store holds all)."""
    one = _write_spec(tmp_path / "a", SPEC.replace("[2, 4, 8]", "[2]").replace("range(2)", "[0]"))
    two = _write_spec(
        tmp_path / "b", SPEC.replace("[2, 4, 8]", "[4]").replace("[none, res]", "[none]")
    )
    db = tmp_path / "runs.db"
    heard: list[tuple[Any, ...]] = []

    def hear(tag: str) -> Any:
        return lambda *a: heard.append((tag, *a[:2]))

    first = sweep(one, db, threads=1, on_start=hear("start"), on_run_end=hear("end"))
    assert (first.total, first.counts["done"]) == (2, 2)
    assert heard == [("start", 2), ("end", 1, 2), ("end", 2, 2)]
    second = sweep(two, db, threads=1)
    assert (second.total, second.ran) == (2, 2)
    assert second.counts == {**dict.fromkeys(STATUSES, 0), "done": 2}
    assert second.line().endswith("holds 2 done of 2")
    with RunStore(db, create=False) as st:
        assert st.counts(sweep="tiny")["done"] == 4  # the name holds both invocations' runs
    heard.clear()
    assert sweep(one, db, threads=1, on_start=hear("start"), on_run_end=hear("end")).ran == 0
    assert heard == [("start", 0)]


def test_interrupt_outside_training_returns_the_run_to_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in finish's transaction (after training, outside execute_run's handler) must
    not leave the run ``running`` under the live sweep process: it goes back to pending."""
    spec = _write_spec(tmp_path, SPEC.replace("[2, 4, 8]", "[2]").replace("range(2)", "[0]"))
    db = tmp_path / "runs.db"

    def interrupted(self: RunStore, run_key: str, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(RunStore, "finish", interrupted)
        summary = sweep(spec, db, threads=1)
    assert summary.interrupted and summary.ran == 0
    assert summary.counts == {**dict.fromkeys(STATUSES, 0), "pending": 2}
    assert "interrupted: ran 0 runs" in summary.line() and "holds 2 pending of 2" in summary.line()
    rows = _rows(db)
    assert [r["attempts"] for r in rows.values()] == [1, 0]  # the first was claimed once
    assert all(r["pid"] is None and r["metrics"] == {} for r in rows.values())

    resumed = sweep(spec, db, threads=1)
    assert (resumed.ran, resumed.counts["done"], resumed.interrupted) == (2, 2, False)
    assert [r["attempts"] for r in _rows(db).values()] == [2, 1]


def test_sweep_runs_in_a_thread_other_than_the_main_one(tmp_path: Path) -> None:
    """sweep() installs its SIGTERM handler only where Python allows it (the main thread)."""
    spec = _write_spec(tmp_path, SPEC.replace("[2, 4, 8]", "[2]").replace("range(2)", "[0]"))
    out: list[Any] = []
    handler = signal.getsignal(signal.SIGTERM)

    def target() -> None:
        try:
            out.append(sweep(spec, tmp_path / "runs.db", threads=1))
        except BaseException as exc:  # reported below, in the test's thread
            out.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=WAIT_S)
    [summary] = out
    assert isinstance(summary, SweepSummary), summary
    assert (summary.ran, summary.counts["done"]) == (2, 2)
    assert signal.getsignal(signal.SIGTERM) is handler  # left alone


def test_failed_run_is_retried_only_on_request(tmp_path: Path) -> None:
    graph = tmp_path / "graph.npz"  # does not exist yet: the run fails at runtime
    spec = _write_spec(
        tmp_path,
        f"""\
        name: mixed
        base:
          model: {{hidden: 8}}
          train: {{epochs: 5, patience: 0}}
          data: {{synthetic: {{num_nodes: 100}}}}
        grid:
          data.name: [csbm, {graph}]
        """,
    )
    db = tmp_path / "runs.db"

    first = sweep(spec, db, threads=1)
    assert first.ran == 2 and not first.interrupted
    assert (first.counts["done"], first.counts["failed"]) == (1, 1)
    failed = _rows(db)
    [key] = [k for k, r in failed.items() if r["status"] == "failed"]
    record = failed[key]
    assert record["config"]["data"]["name"] == str(graph)
    assert record["error"] == f"graph file {graph} not found"  # one line, no traceback
    assert record["attempts"] == 1 and record["metrics"] == {} and record["ended_at"]

    again = sweep(spec, db, threads=1)  # skips done and failed runs alike
    assert (again.ran, again.already_done) == (0, 2)
    assert _rows(db) == failed

    # --retry-failed: the failed run runs again (and now succeeds), the done one does not
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    edges = rng.integers(0, 60, size=(2, 240))
    np.savez(graph, x=rng.normal(size=(60, 4)) + y[:, None], y=y, edge_index=edges)
    retried = sweep(spec, db, threads=1, retry_failed=True)
    assert (retried.ran, retried.already_done) == (1, 1)
    assert retried.counts == {**dict.fromkeys(STATUSES, 0), "done": 2}
    rows = _rows(db)
    assert len(rows) == 2
    assert rows[key]["status"] == "done" and rows[key]["attempts"] == 2
    assert rows[key]["error"] is None and "test_acc" in rows[key]["metrics"]
    [other] = [k for k in rows if k != key]
    assert rows[other] == failed[other]  # untouched


# --------------------------------------------------------------------------- kills


def _stale_running(db: Path) -> list[str]:
    with RunStore(db, create=False) as st:
        return [r["run_key"] for r in st.runs(status="running")]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_at_several_points_then_resume_matches_uninterrupted(
    tmp_path: Path,
    reference: Reference,
    launched: list[Sweep],
    capsys: pytest.CaptureFixture[str],
    workers: int,
) -> None:
    spec, db = _write_spec(tmp_path), tmp_path / "runs.db"
    delay = random.uniform(0.0, 0.3)
    print(f"random kill delay: {delay:.3f} s")
    in_flight: set[str] = set()

    def kill_when(what: str, ready: Callable[[], bool], pause: float = 0.0) -> None:
        s = _launch(spec, db, workers=workers)
        launched.append(s)
        _wait_until(s, what, ready)
        time.sleep(pause)
        _sigkill(s)
        _check_integrity(db)
        # runs in flight are left running under a dead pid, never recorded as done
        in_flight.update(_stale_running(db))

    if workers == 1:
        # mid-flight of a run, as soon as one is claimed (the first, unless polling is slow)
        kill_when("a run in flight", lambda: _counts(db).get("running", 0) >= 1)
    else:
        # while the workers are importing torch: they must exit, not run queued work as
        # orphans (nothing claimed, nothing stored)
        def starting() -> bool:
            return len(_workers(launched[-1].proc, launched[-1].tag)) == workers

        kill_when("the workers to start", starting)
        assert _counts(db).get("done", 0) == 0 and _counts(db).get("running", 0) == 0
    # some runs stored, then at a random moment (mid-run or mid-write)
    kill_when("3 runs", lambda: _counts(db).get("done", 0) >= 3, pause=delay)
    done_before = _counts(db).get("done", 0)
    assert 3 <= done_before < N_RUNS

    # the same command again completes the grid; run in this process (``fathom.cli.main``),
    # and with one worker, as spawning more costs seconds of imports: the runs the workers
    # stored before the kills are compared with the reference all the same
    capsys.readouterr()
    assert main(["sweep", str(spec), "--store", str(db), "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.fullmatch(
        rf"sweep 'tiny' finished: ran {N_RUNS - done_before} runs in \d+ s; "
        rf"store {re.escape(str(db))} holds 12 done of 12",
        _last_line(err),
    ), err
    _assert_matches_reference(db, reference.rows)
    rows = _rows(db)
    assert in_flight, "no kill caught a run in flight"
    for key in in_flight:  # re-run from scratch: a second attempt (or more)
        assert rows[key]["attempts"] >= 2
    assert sum(r["attempts"] for r in rows.values()) >= N_RUNS + len(in_flight)


@pytest.mark.slow
def test_sigkill_of_a_worker_stops_with_one_line_then_resumes(
    tmp_path: Path, reference: Reference, launched: list[Sweep]
) -> None:
    spec, db = _write_spec(tmp_path), tmp_path / "runs.db"
    s = _launch(spec, db, workers=2)
    launched.append(s)
    _wait_until(s, "a run stored", lambda: _counts(db).get("done", 0) >= 1)
    victims = _workers(s.proc, s.tag)
    assert victims
    os.kill(victims[0], signal.SIGKILL)

    assert _finish(s) == 2
    err = s.stderr()
    assert "Traceback" not in err
    last = _last_line(err)
    assert last.startswith("fathom sweep: error: a sweep worker died"), err
    assert "run the same command again" in last
    _assert_no_survivors(s.tag)
    _check_integrity(db)
    counts = _counts(db)
    assert counts.get("running", 0) == 0  # the dead worker's run went back to pending
    assert 1 <= counts.get("done", 0) < N_RUNS

    resumed = sweep(spec, db, threads=1)
    assert resumed.ran == N_RUNS - counts["done"] and not resumed.interrupted
    _assert_matches_reference(db, reference.rows)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "workers"),
    [
        # Ctrl-C reaches the whole foreground process group: parent and workers
        pytest.param(signal.SIGINT, 2, id="ctrl-c-group-2-workers"),
        pytest.param(signal.SIGTERM, 1, id="sigterm-parent-1-worker"),
    ],
)
def test_sigint_and_sigterm_stop_cleanly_with_a_summary(
    tmp_path: Path,
    reference: Reference,
    launched: list[Sweep],
    sig: signal.Signals,
    workers: int,
) -> None:
    spec, db = _write_spec(tmp_path), tmp_path / "runs.db"
    s = _launch(spec, db, workers=workers)
    launched.append(s)
    _wait_until(s, "2 runs stored", lambda: _counts(db).get("done", 0) >= 2)
    if sig == signal.SIGINT:
        os.killpg(s.proc.pid, sig)
    else:
        os.kill(s.proc.pid, sig)

    assert _finish(s) == 130
    err = s.stderr()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    match = re.fullmatch(
        rf"sweep 'tiny' interrupted: ran (\d+) runs in \d+ s; store {re.escape(str(db))} "
        r"holds (\d+) pending, (\d+) done of 12",
        _last_line(err),
    )
    assert match, err
    ran, pending, done = map(int, match.groups())
    assert done >= 2 and done + pending == N_RUNS
    # a run a worker stored just before the signal may not have been counted as ran
    assert done - workers <= ran <= done
    _assert_no_survivors(s.tag)
    _check_integrity(db)
    assert _counts(db) == {"done": done, "pending": pending}  # nothing left running

    resumed = sweep(spec, db, threads=1)
    assert resumed.ran == pending
    _assert_matches_reference(db, reference.rows)


def test_device_override_runs_a_run_stored_with_another_device(tmp_path: Path) -> None:
    # a device is where a run executes, not part of its key: a run registered for a GPU
    # this machine lacks runs on the CPU when the sweep says so, under the same key
    from dataclasses import replace

    from fathom.config import ExperimentConfig, config_hash, config_to_dict
    from fathom.experiments.sweep import run_configs

    cfg = ExperimentConfig(
        train=replace(ExperimentConfig().train, epochs=2),
        data=replace(
            ExperimentConfig().data,
            synthetic=replace(ExperimentConfig().data.synthetic, num_nodes=60, feature_dim=4),
        ),
    )
    on_gpu = replace(cfg, device="cuda:7")
    assert config_hash(on_gpu) == config_hash(cfg)
    store = tmp_path / "runs.db"
    with RunStore(store) as st:
        st.register("s", [(config_hash(on_gpu), config_to_dict(on_gpu))])
    summary = run_configs("s", [cfg], store, device="cpu")
    assert summary.ran == 1
    with RunStore(store) as st:
        (record,) = st.runs(sweep="s")
    assert record["status"] == "done", record["error"]
    assert record["versions"]["device"] == "cpu"
    assert record["versions"]["precision"] == "32"


# --------------------------------------------------------------------------- hostile stores


def _raw_rows(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT * FROM runs ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("status", ["pending", "running", "done"])
def test_a_malformed_row_is_reported_and_left_alone_never_duplicated(
    tmp_path: Path, status: str
) -> None:
    spec = _write_spec(
        tmp_path, SPEC.replace("[2, 4, 8]", "[2]").replace("range(2)", "[0]").replace("25", "3")
    )
    db = tmp_path / "runs.db"
    first = sweep(spec, db, threads=1)
    assert first.counts["done"] == 2
    key = _raw_rows(db)[0][1]
    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE runs SET status = ?, config = '{oops', pid = NULL WHERE run_key = ?",
        (status, key),
    )
    conn.commit()
    conn.close()
    before = _raw_rows(db)
    from fathom.experiments.store import MalformedRunWarning

    with pytest.warns(MalformedRunWarning) as caught:
        again = sweep(spec, db, threads=1)
    [message] = {str(w.message) for w in caught}
    assert message.startswith(f"skipping stored run {key}: column config is not valid JSON")
    assert again.malformed == [key] and again.ran == 0 and again.total == 2
    assert "skipped 1 malformed stored run(s)" in again.line()
    assert _raw_rows(db) == before  # the bad row untouched, nothing written around it


def test_a_read_only_store_is_refused_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fathom.errors import StoreError

    spec = _write_spec(tmp_path, SPEC.replace("[2, 4, 8]", "[2]").replace("range(2)", "[0]"))
    db = tmp_path / "runs.db"
    RunStore(db).close()
    before = db.read_bytes()
    real = os.access
    monkeypatch.setattr(
        "fathom.experiments.store.os.access",
        lambda p, mode, **kw: False if mode & os.W_OK else real(p, mode, **kw),
    )
    monkeypatch.setattr(
        "fathom.experiments.sweep.execute_run",
        lambda *a, **kw: pytest.fail("a run started"),
    )
    with pytest.raises(StoreError, match="read-only"):
        sweep(spec, db, threads=1)
    assert db.read_bytes() == before
