"""Hostile results stores and outputs at the command line: ``runs``, ``export``, ``report``
and ``sweep`` refuse in one line (exit 2) and change nothing, or read a store they may not
write; a malformed row is reported by run key and skipped, never written around."""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
from pathlib import Path

import pytest

from fathom.experiments.store import RunStore
from hostile import assert_refused, snapshot

CONFIG = {
    "data": {"name": "csbm", "synthetic": {"num_nodes": 60}},
    "model": {"conv": "gcn", "depth": 2, "hidden": 8, "skip": "none", "norm": "none"},
    "train": {"epochs": 2},
    "task": "node",
    "seed": 0,
    "seeds": 1,
}

SPEC = """\
name: tiny
base:
  data: {name: csbm, synthetic: {num_nodes: 60, feature_dim: 4}}
  model: {hidden: 4}
  train: {epochs: 2, patience: 0}
grid:
  seed: [0, 1]
"""


def _store(path: Path, n: int = 3) -> Path:
    with RunStore(path) as st:
        keys = [(f"run{i}", {**CONFIG, "seed": i}) for i in range(n)]
        st.register("s", keys)
        for key, _ in keys:
            st.claim(key)
            st.finish(
                key,
                status="done",
                metrics={"test_acc": 0.5, "val_acc": 0.5, "train_acc": 0.6},
                history=[{"epoch": 1, "loss": 1.0, "val_acc": 0.5}],
            )
    return path


def _run(argv: list[str]) -> tuple[int, str, str]:
    from fathom.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return _store(tmp_path / "runs.db")


# ------------------------------------------------------------------ results lost (severe)


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize("out", ["runs.db", "./sub/../runs.db", "sym.db", "hard.db"])
def test_export_onto_the_store_is_refused(db: Path, out: str, fmt: str) -> None:
    folder = db.parent
    (folder / "sub").mkdir()
    (folder / "sym.db").symlink_to(db)
    os.link(db, folder / "hard.db")
    assert_refused(["export", str(db), "--format", fmt, "--out", str(folder / out)], [folder])


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_export_onto_the_stores_journal_is_refused(db: Path, suffix: str) -> None:
    out = db.with_name(db.name + suffix)
    assert_refused(["export", str(db), "--out", str(out)], [db.parent], "journal")


@pytest.mark.parametrize("flag", ["--out", "--json"])
def test_report_onto_the_store_is_refused(db: Path, flag: str) -> None:
    argv = ["report", str(db), flag, str(db)]
    if flag == "--json":
        argv += ["--out", str(db.parent / "rep")]
    assert_refused(argv, [db.parent])


def test_runs_json_onto_the_store_is_refused(db: Path) -> None:
    assert_refused(["runs", str(db), "--json", str(db)], [db.parent])


# ------------------------------------------------------------------ not a store


def test_a_missing_store_is_not_created(tmp_path: Path) -> None:
    for command in ("runs", "export", "report"):
        assert_refused([command, str(tmp_path / "none.db")], [tmp_path], "not found")


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("folder", "not a file"),
        ("text", "not a SQLite database"),
        ("empty", "is empty"),
        ("other", "not a fathom results store"),
        ("layout", "not a fathom results store of schema"),
        ("version", "schema version 7"),
    ],
)
@pytest.mark.parametrize("command", ["runs", "export", "report"])
def test_a_store_that_is_not_one_is_one_line(
    tmp_path: Path, kind: str, words: str, command: str
) -> None:
    path = tmp_path / "runs.db"
    if kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("run,acc\n1,0.5\n" * 100)
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        conn = sqlite3.connect(path)
        if kind == "other":
            conn.execute("CREATE TABLE things (x)")
        elif kind == "layout":
            conn.execute("CREATE TABLE runs (run_key TEXT)")
            conn.execute("PRAGMA user_version = 1")
        else:
            conn.execute("PRAGMA user_version = 7")
        conn.commit()
        conn.close()
    assert_refused([command, str(path)], [tmp_path], words)


# ------------------------------------------------------------------ read-only stores


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch):
    """Make the store module see every path as not writable (root ignores mode bits)."""
    real = os.access
    monkeypatch.setattr(
        "fathom.experiments.store.os.access",
        lambda p, mode, **kw: False if mode & os.W_OK else real(p, mode, **kw),
    )


def test_sweep_into_a_read_only_store_is_refused_before_any_run(
    db: Path, read_only: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = db.parent / "spec.yaml"
    spec.write_text(SPEC)
    monkeypatch.setattr(
        "fathom.experiments.sweep.execute_run", lambda *a, **kw: pytest.fail("a run started")
    )
    assert_refused(["sweep", str(spec), "--store", str(db)], [db.parent], "read-only")


def test_reading_commands_work_on_a_read_only_store(db: Path, read_only: None) -> None:
    before = snapshot(db)
    rc, out, err = _run(["runs", str(db)])
    assert rc == 0 and "3 done" in out, err
    rc, out, err = _run(["export", str(db)])
    assert rc == 0 and out.count('"run_key"') == 3, err
    assert snapshot(db) == before


# ------------------------------------------------------------------ malformed rows


def test_a_malformed_row_is_reported_by_key_and_skipped(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET metrics = '{\"test_acc\": ' WHERE run_key = 'run1'")
    conn.commit()
    conn.close()
    before = snapshot(db)
    rc, out, err = _run(["export", str(db)])
    assert rc == 0 and out.count('"run_key"') == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "skipping stored run run1" in lines[0], err
    assert "metrics is not valid JSON" in lines[0] and "Traceback" not in err
    rc, out, err = _run(["runs", str(db)])
    assert rc == 0 and "skipping stored run run1" in err
    assert snapshot(db) == before
