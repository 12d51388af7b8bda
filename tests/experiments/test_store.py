"""Tests of fathom.experiments.store: the SQLite results store."""

from __future__ import annotations

import math
import multiprocessing
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fathom.errors import StoreError
from fathom.experiments.store import SCHEMA_VERSION, STATUSES, RunStore

RECORD_KEYS = [
    "run_key",
    "sweeps",
    "status",
    "config",
    "metrics",
    "history",
    "diagnostics",
    "time_s",
    "peak_mem_mb",
    "error",
    "message",
    "versions",
    "host",
    "pid",
    "attempts",
    "created_at",
    "started_at",
    "ended_at",
]


def _runs(n: int, prefix: str = "k") -> list[tuple[str, dict]]:
    return [(f"{prefix}{i:03d}", {"model": {"depth": i}, "seed": 0}) for i in range(n)]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def store(tmp_path: Path):
    with RunStore(tmp_path / "runs.db") as st:
        yield st


def _fork_ctx():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs the fork start method")
    return multiprocessing.get_context("fork")


# --------------------------------------------------------------------------- basics


def test_new_store_is_wal_with_schema_version_and_meta(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "runs.db"
    with RunStore(path) as st:
        assert st.counts() == dict.fromkeys(STATUSES, 0)
        assert st.sweeps() == [] and st.runs() == []
        meta = st.meta()
    assert meta["schema_version"] == str(SCHEMA_VERSION) and meta["created_at"]
    assert meta["fathom_version"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with RunStore(path, create=False) as st:  # reopening an existing store
        assert st.counts()["pending"] == 0


def test_register_twice_does_not_duplicate_and_tracks_membership(store: RunStore) -> None:
    assert store.register("a", _runs(5)) == 5
    assert store.register("a", _runs(5)) == 0
    assert store.register("b", _runs(7)[3:]) == 2  # k003, k004 exist; k005, k006 are new
    assert len(store.runs()) == 7
    assert [r["run_key"] for r in store.runs()] == [f"k{i:03d}" for i in range(7)]
    assert [r["run_key"] for r in store.runs(sweep="b")] == ["k003", "k004", "k005", "k006"]
    assert store.get("k003")["sweeps"] == ["a", "b"]
    assert store.get("k000")["sweeps"] == ["a"]
    assert store.get("k006")["sweeps"] == ["b"]
    assert store.sweeps() == ["a", "b"]
    assert store.counts(sweep="a")["pending"] == 5
    assert store.counts(sweep="b") == {**dict.fromkeys(STATUSES, 0), "pending": 4}
    assert store.counts(sweep="nope") == dict.fromkeys(STATUSES, 0)
    assert store.runs(sweep="nope") == []
    assert store.get("missing") is None


def test_record_format(store: RunStore) -> None:
    store.register("a", _runs(1))
    record = store.get("k000")
    assert list(record) == RECORD_KEYS
    assert record["status"] == "pending" and record["config"] == {"model": {"depth": 0}, "seed": 0}
    assert record["metrics"] == {} and record["history"] == [] and record["diagnostics"] == {}
    assert record["attempts"] == 0 and record["started_at"] is None and record["ended_at"] is None
    assert record["created_at"].endswith("+00:00")
    assert store.runs()[0] == record


def test_claim_finish_release_state_machine(store: RunStore) -> None:
    store.register("a", _runs(3))
    assert store.claim("k000", pid=os.getpid(), host="h1")
    assert not store.claim("k000")  # already running
    running = store.get("k000")
    assert running["status"] == "running" and running["attempts"] == 1
    assert running["pid"] == os.getpid() and running["host"] == "h1" and running["started_at"]
    store.finish(
        "k000",
        status="done",
        metrics={"test_acc": 0.8},
        history=[{"epoch": 0, "loss": 1.0}],
        diagnostics={"dirichlet": [1.0, 0.5]},
        time_s=1.5,
        peak_mem_mb=12.0,
        message="ok",
        versions={"fathom": "0.1.0"},
    )
    done = store.get("k000")
    assert done["status"] == "done" and done["metrics"] == {"test_acc": 0.8}
    assert done["history"] == [{"epoch": 0, "loss": 1.0}]
    assert done["diagnostics"] == {"dirichlet": [1.0, 0.5]}
    assert (done["time_s"], done["peak_mem_mb"], done["message"]) == (1.5, 12.0, "ok")
    assert done["versions"] == {"fathom": "0.1.0"} and done["ended_at"] >= done["started_at"]
    assert not store.claim("k000") and not store.claim("k000", retry_failed=True)

    # finishing a run that is not running raises (a stale worker cannot overwrite)
    with pytest.raises(StoreError, match="'k000' is done, not running"):
        store.finish("k000", status="failed", metrics={}, history=[], error="late")
    with pytest.raises(StoreError, match="'k001' is pending, not running"):
        store.finish("k001", status="done", metrics={}, history=[])
    assert store.get("k000")["metrics"] == {"test_acc": 0.8}

    # release: an interrupted run goes back to pending and can be claimed again
    assert store.claim("k001")
    store.release("k001")
    released = store.get("k001")
    assert released["status"] == "pending" and released["pid"] is None
    assert released["started_at"] is None
    store.release("k001")  # not running: left alone
    assert store.claim("k001") and store.get("k001")["attempts"] == 2
    assert store.counts() == {**dict.fromkeys(STATUSES, 0), "pending": 1, "running": 1, "done": 1}
    assert [r["run_key"] for r in store.runs(status=["running", "done"])] == ["k000", "k001"]
    assert [r["run_key"] for r in store.runs(sweep="a", status="pending")] == ["k002"]


def test_statuses_lists_every_run_even_a_malformed_one(store: RunStore) -> None:
    assert store.statuses() == {}
    store.register("s", _runs(3))
    assert store.claim("k001")
    store.conn.execute("UPDATE runs SET config = '{oops' WHERE run_key = 'k002'")
    assert store.statuses() == {"k000": "pending", "k001": "running", "k002": "pending"}


def test_retry_failed_semantics(store: RunStore) -> None:
    store.register("a", _runs(2))
    for key, status in [("k000", "failed"), ("k001", "diverged")]:
        assert store.claim(key)
        store.finish(key, status=status, metrics={"x": 1}, history=[], error="boom")
    assert not store.claim("k000")  # failed runs only on request
    assert store.claim("k000", retry_failed=True)
    retried = store.get("k000")
    assert retried["attempts"] == 2 and retried["error"] is None and retried["metrics"] == {}
    assert retried["ended_at"] is None
    assert not store.claim("k001", retry_failed=True)  # diverged is a result, not retried


def test_invalid_input(store: RunStore) -> None:
    store.register("a", _runs(1))
    store.claim("k000")
    with pytest.raises(ValueError, match="unknown run status 'bogus'"):
        store.finish("k000", status="bogus", metrics={}, history=[])
    with pytest.raises(ValueError, match="finish status must be one of done"):
        store.finish("k000", status="pending", metrics={}, history=[])
    with pytest.raises(ValueError, match="metrics cannot be stored as JSON"):
        store.finish("k000", status="done", metrics={"f": object()}, history=[])
    assert store.get("k000")["status"] == "running"  # nothing was written
    with pytest.raises(ValueError, match="unknown run status"):
        store.runs(status="finished")
    with pytest.raises(ValueError, match="unknown run status"):
        store.runs(status=["done", "nope"])
    for call in (
        lambda: store.claim("nope"),
        lambda: store.release("nope"),
        lambda: store.finish("nope", status="done", metrics={}, history=[]),
    ):
        with pytest.raises(StoreError, match="run 'nope' not found"):
            call()
    with pytest.raises(ValueError, match="sweep name"):
        store.register("", _runs(1))
    with pytest.raises(ValueError, match="run_key"):
        store.register("a", [("", {})])
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.get("k000")


def test_nan_and_inf_round_trip(store: RunStore) -> None:
    store.register("a", _runs(1))
    store.claim("k000")
    store.finish(
        "k000",
        status="diverged",
        metrics={"test_acc": float("nan"), "val_loss": float("inf")},
        history=[{"epoch": 0, "loss": float("nan")}],
        diagnostics={"dirichlet": [1.0, float("nan")]},
        time_s=float("nan"),
    )
    record = store.get("k000")
    assert math.isnan(record["metrics"]["test_acc"]) and record["metrics"]["val_loss"] == math.inf
    assert math.isnan(record["history"][0]["loss"])
    assert math.isnan(record["diagnostics"]["dirichlet"][1])
    assert record["time_s"] is None  # a NaN scalar column is stored as NULL (SQLite)


def test_recover_stale(store: RunStore) -> None:
    store.register("a", _runs(5))
    here = socket.gethostname()
    dead = _dead_pid()
    assert store.claim("k000", pid=dead, host=here)
    assert store.claim("k001", pid=os.getpid(), host=here)  # alive
    assert store.claim("k002", pid=dead, host="another-host")  # cannot tell: left alone
    assert store.claim("k003", pid=os.getpid(), host=here)
    assert store.claim("k004", pid=os.getpid(), host=here)
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE runs SET pid = NULL WHERE run_key = 'k003'")  # no pid: stale
    if sys.platform.startswith("linux"):
        # claimed long before this process started: its pid was reused by this process
        conn.execute(
            "UPDATE runs SET started_at = '2000-01-01T00:00:00+00:00' WHERE run_key = 'k004'"
        )
    conn.commit()
    conn.close()
    expected = ["k000", "k003", "k004"] if sys.platform.startswith("linux") else ["k000", "k003"]
    assert store.recover_stale(host=here) == expected
    assert [r["status"] for r in store.runs()][:4] == ["pending", "running", "running", "pending"]
    assert store.get("k000")["pid"] is None and store.get("k000")["attempts"] == 1
    assert store.recover_stale() == []  # default host: this one; nothing left to recover
    assert store.recover_stale(host="another-host") == ["k002"]


def test_in_flight_lists_live_claims_of_this_host_only(store: RunStore) -> None:
    store.register("a", _runs(5))
    here = socket.gethostname()
    assert store.claim("k000", pid=os.getpid(), host=here)
    assert store.claim("k001", pid=_dead_pid(), host=here)  # its process is gone
    assert store.claim("k002", pid=os.getpid(), host="another-host")  # cannot tell
    assert store.claim("k003", pid=os.getpid(), host=here)  # live, but not asked about
    assert store.claim("k004", pid=os.getpid(), host=here)
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE runs SET host = NULL WHERE run_key = 'k004'")  # counts as this host's
    conn.commit()
    conn.close()
    store.register("a", _runs(6))  # k005 pending
    asked = ["k000", "k001", "k002", "k004", "k005"]
    assert store.in_flight(asked) == {"k000": os.getpid(), "k004": os.getpid()}
    assert store.in_flight(["k002"], host="another-host") == {"k002": os.getpid()}
    assert store.in_flight([]) == {}
    # a read: the dead claim is not recovered by it
    assert store.get("k001")["status"] == "running"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_recover_stale_treats_a_zombie_as_dead(store: RunStore) -> None:
    store.register("a", _runs(1))
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait for it to exit, without reaping it
            state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                break
            time.sleep(0.01)
        store.claim("k000", pid=proc.pid)
        assert store.recover_stale() == ["k000"]
    finally:
        proc.wait()


# --------------------------------------------------------------------------- opening


def test_missing_store_with_create_false(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    with pytest.raises(StoreError, match="results store not found"):
        RunStore(path, create=False)
    assert not path.exists()


def test_schema_version_mismatch_leaves_the_file_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with RunStore(path) as st:
        st.register("a", _runs(2))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    for create in (True, False):
        with pytest.raises(StoreError) as info:
            RunStore(path, create=create)
        message = str(info.value)
        assert "\n" not in message and str(path) in message
        assert "schema version 99, this fathom reads 1" in message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.db"]


def test_rollback_journal_database_of_another_version_is_untouched(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (x)")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="schema version 2"):
        RunStore(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("create", [True, False])
def test_garbage_file_is_a_one_line_error_and_untouched(tmp_path: Path, create: bool) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(b"hello")
    with pytest.raises(StoreError) as info:
        RunStore(path, create=create)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"results store {path} is not a SQLite database")
    assert path.read_bytes() == b"hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.db"]


def test_other_sqlite_database_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE things (x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"not a fathom results store \(tables: things\)"):
        RunStore(path)
    assert path.read_bytes() == before


def test_directory_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is not a file"):
        RunStore(tmp_path)
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(StoreError, match="is empty"):
        RunStore(empty, create=False)
    assert empty.read_bytes() == b""
    with RunStore(empty) as st:  # an empty file is a new store when creating
        assert st.register("a", _runs(1)) == 1


def test_reading_a_store_does_not_modify_it(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with RunStore(path) as st:
        st.register("a", _runs(3))
    before = path.read_bytes()
    with RunStore(path, create=False) as st:
        assert len(st.runs()) == 3 and st.counts()["pending"] == 3 and st.sweeps() == ["a"]
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- processes


def _register_and_claim(path: str, keys: int, barrier, queue) -> None:
    with RunStore(path) as st:
        new = st.register("race", _runs(keys))
        barrier.wait()
        claimed = [key for key, _ in _runs(keys) if st.claim(key)]
    queue.put((new, claimed))


def test_concurrent_writers_claim_each_run_exactly_once(tmp_path: Path) -> None:
    ctx = _fork_ctx()
    path = str(tmp_path / "runs.db")
    RunStore(path).close()  # created up front; both workers also race on register
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_register_and_claim, args=(path, 40, barrier, queue)) for _ in "ab"]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    (new_a, claimed_a), (new_b, claimed_b) = results
    assert new_a + new_b == 40
    assert not set(claimed_a) & set(claimed_b)
    assert sorted(claimed_a + claimed_b) == [key for key, _ in _runs(40)]
    with RunStore(path) as st:
        records = st.runs()
        assert len(records) == 40 and st.counts()["running"] == 40
        assert all(r["attempts"] == 1 for r in records)


def _churn(path: str, worker: int) -> None:
    """Write forever: register batches, claim, finish (some failed), release some."""
    rng = random.Random(worker)
    with RunStore(path) as st:
        batch = 0
        while True:
            runs = _runs(10, prefix=f"w{worker}b{batch}-")
            st.register("churn", runs)
            for key, _ in runs:
                if not st.claim(key):
                    continue
                roll = rng.random()
                if roll < 0.2:
                    st.release(key)
                    continue
                st.finish(
                    key,
                    status="done" if roll < 0.9 else "failed",
                    metrics={"test_acc": roll, "nan": float("nan")},
                    history=[{"epoch": e, "loss": 1.0 / (e + 1)} for e in range(20)],
                    time_s=roll,
                    error=None if roll < 0.9 else "boom",
                )
            batch += 1


def _check_consistent(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with RunStore(path, create=False) as st:
        records = st.runs()
        for r in records:
            assert r["sweeps"] == ["churn"]
            if r["status"] in ("done", "failed"):
                assert r["metrics"]["test_acc"] == r["time_s"] and math.isnan(r["metrics"]["nan"])
                assert len(r["history"]) == 20 and r["ended_at"] and r["started_at"]
                assert (r["error"] == "boom") == (r["status"] == "failed")
            elif r["status"] == "running":
                assert r["metrics"] == {} and r["pid"] and r["started_at"] and not r["ended_at"]
            else:
                assert r["status"] == "pending"
                assert r["metrics"] == {} and r["history"] == [] and r["started_at"] is None
        counts = st.counts()
        assert sum(counts.values()) == len(records) == len(st.runs(sweep="churn"))
        return counts


def test_sigkill_mid_write_leaves_a_consistent_store(tmp_path: Path) -> None:
    ctx = _fork_ctx()
    path = tmp_path / "runs.db"
    RunStore(path).close()
    rng = random.Random(0)
    for round_ in range(3):
        proc = ctx.Process(target=_churn, args=(str(path), round_))
        proc.start()
        deadline = time.monotonic() + 30
        with RunStore(path, create=False) as st:
            while st.counts()["done"] < 5 * (round_ + 1) and time.monotonic() < deadline:
                time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.1))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=30)
        assert proc.exitcode == -signal.SIGKILL
        counts = _check_consistent(path)
        assert counts["done"] >= 5 * (round_ + 1)
        with RunStore(path) as st:  # the killed writer's run is re-runnable, not done
            stale = st.recover_stale()
            assert len(stale) == counts["running"]
            assert st.counts()["running"] == 0


# --------------------------------------------------------------------------- hostile stores


def _done_store(path: Path, n: int = 3) -> None:
    with RunStore(path) as st:
        st.register("a", _runs(n))
        for key, _ in _runs(n):
            st.claim(key)
            st.finish(key, status="done", metrics={"test_acc": 0.5}, history=[{"epoch": 1}])


def _corrupt(path: Path, key: str, column: str, value: object) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"UPDATE runs SET {column} = ? WHERE run_key = ?", (value, key))
    conn.commit()
    conn.close()


def test_a_reader_never_writes_and_never_creates(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    _done_store(path)
    before = path.read_bytes()
    with RunStore(path, create=False) as st:  # readers are read-only by default
        assert st.readonly and len(st.runs()) == 3
        with pytest.raises(StoreError, match="open read-only"):
            st.register("b", _runs(1, "x"))
        with pytest.raises(StoreError, match="open read-only"):
            st.claim("k000")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.db"]
    for create in (True, False):
        with pytest.raises(StoreError, match="not found"):
            RunStore(tmp_path / "none.db", create=create, readonly=True)
    assert not (tmp_path / "none.db").exists()
    with pytest.raises(StoreError, match="empty string"):
        RunStore("", create=False)


def test_a_writer_refuses_a_read_only_store_or_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as root, permission bits do not bind: make os.access answer as for another user
    path = tmp_path / "runs.db"
    _done_store(path)
    before = path.read_bytes()
    real = os.access
    for denied, words in ((path, "is read-only"), (tmp_path, "read-only folder")):

        def access(p, mode, denied=denied, **kw):
            if Path(p).absolute() == denied.absolute() and mode & os.W_OK:
                return False
            return real(p, mode, **kw)

        monkeypatch.setattr("fathom.experiments.store.os.access", access)
        with pytest.raises(StoreError, match=words) as info:
            RunStore(path)
        assert "\n" not in str(info.value)
        with RunStore(path, create=False) as st:  # reading still works
            assert [r["run_key"] for r in st.runs()] == ["k000", "k001", "k002"]
    monkeypatch.setattr("fathom.experiments.store.os.access", real)
    assert path.read_bytes() == before
    # a read-only file in a writable folder is read with mode=ro, which may leave SQLite's
    # empty WAL index files beside it (as the sqlite3 shell does); never the store's bytes
    assert (tmp_path / "runs.db-wal").stat().st_size == 0


_AS_NOBODY = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
_NOBODY_SCRIPT = """
import sys
from fathom.errors import StoreError
from fathom.experiments.store import RunStore
path = sys.argv[1]
with RunStore(path, create=False) as st:
    print(len(st.runs()), st.counts()["done"])
try:
    RunStore(path)
except StoreError as exc:
    print("refused:", exc)
"""


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(),
    reason="needs root and setpriv to run as another user",
)
@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_store_for_real_as_another_user(what: str) -> None:
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="fathom-ro-"))
    try:
        top.chmod(0o755)
        folder = top / "store"
        folder.mkdir()
        path = folder / "runs.db"
        _done_store(path)
        path.chmod(0o644)  # nobody may read it, not write it
        folder.chmod(0o755 if what == "folder" else 0o777)
        before = path.read_bytes()
        src = str(Path(__file__).resolve().parents[2] / "src")
        proc = subprocess.run(
            [*_AS_NOBODY, sys.executable, "-c", _NOBODY_SCRIPT, str(path)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": src, "HOME": str(top)},
            timeout=120,
        )
        if proc.returncode != 0 and "Permission denied" in proc.stderr:
            pytest.skip(f"the interpreter is not usable by nobody: {proc.stderr[-200:]}")
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0] == "3 3"
        assert lines[1].startswith("refused: results store") and "read-only" in lines[1]
        assert path.read_bytes() == before
        if what == "folder":
            assert sorted(p.name for p in folder.iterdir()) == ["runs.db"]
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("config", "{not json", "column config is not valid JSON"),
        ("metrics", "[1, 2]", "column metrics is a JSON list, not a dict"),
        ("history", '[1, "x"]', "history is not a list of objects"),
        ("diagnostics", "null", "column diagnostics is a JSON NoneType"),
        ("versions", b"\xff{", "column versions is bytes, not JSON text"),
        ("time_s", "fast", "column time_s is str, not a number"),
        ("config", "[" * 100_000, "column config is not valid JSON"),
    ],
)
def test_malformed_rows_are_reported_by_run_key_and_skipped(
    tmp_path: Path, column: str, value: object, words: str
) -> None:
    path = tmp_path / "runs.db"
    _done_store(path)
    _corrupt(path, "k001", column, value)
    before = path.read_bytes()
    seen: list[tuple[str, str]] = []
    with RunStore(path, create=False) as st:
        st.on_malformed = lambda key, problem: seen.append((key, problem))
        assert [r["run_key"] for r in st.runs()] == ["k000", "k002"]
        assert [r["run_key"] for r in st.runs(sweep="a", status="done")] == ["k000", "k002"]
        assert st.get("k001") is None and st.get("k000") is not None
        assert st.counts()["done"] == 3  # counted, not parsed
        assert list(st.malformed_rows()) == ["k001"]
    assert len(seen) == 1 and seen[0][0] == "k001" and words in seen[0][1], seen
    assert path.read_bytes() == before


def test_malformed_rows_warn_once_each_by_run_key(tmp_path: Path) -> None:
    from fathom.experiments.store import MalformedRunWarning

    path = tmp_path / "runs.db"
    _done_store(path)
    _corrupt(path, "k000", "config", "{")
    _corrupt(path, "k002", "metrics", '"x"')
    with pytest.warns(MalformedRunWarning) as caught, RunStore(path, create=False) as st:
        assert len(st.runs()) == 1
        assert len(st.runs()) == 1  # reported once per row, not per read
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert messages[0].startswith("skipping stored run k000: column config is not valid JSON")
    assert messages[1].startswith("skipping stored run k002: column metrics is a JSON str")


def test_malformed_row_is_never_written_around(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with RunStore(path) as st:
        st.register("a", _runs(2))
    _corrupt(path, "k000", "config", "{")
    with RunStore(path) as st:
        st.on_malformed = None
        assert st.register("b", _runs(2)) == 0  # the key is stored: no second copy
        assert st.recover_stale(exclude=["k000"]) == []
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT run_key, config FROM runs ORDER BY id").fetchall()
    conn.close()
    assert rows[0] == ("k000", "{") and len(rows) == 2


def test_another_layout_with_the_same_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (run_key TEXT, status TEXT)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    for create in (True, False):
        with pytest.raises(StoreError, match="not a fathom results store of schema") as info:
            RunStore(path, create=create)
        assert "\n" not in str(info.value)
    assert path.read_bytes() == before


def test_check_not_store_sees_through_links_and_journal_files(tmp_path: Path) -> None:
    from fathom.experiments.store import check_not_store

    path = tmp_path / "runs.db"
    _done_store(path)
    (tmp_path / "sym.db").symlink_to(path)
    os.link(path, tmp_path / "hard.db")
    (tmp_path / "sub").mkdir()
    for out in (
        path,
        tmp_path / "sub" / ".." / "runs.db",
        tmp_path / "sym.db",
        tmp_path / "hard.db",
        tmp_path / "runs.db-wal",
        tmp_path / "runs.db-journal",
    ):
        with pytest.raises(StoreError, match="would destroy the stored runs") as info:
            check_not_store(out, path, "--out")
        assert "\n" not in str(info.value)
    with pytest.raises(StoreError, match="--out"):
        check_not_store(path, tmp_path / "sym.db", "--out")  # the store given by a link
    check_not_store(tmp_path / "runs.json", path, "--out")
