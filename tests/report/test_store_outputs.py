"""The report and the export read a results store and never write onto it (or any input)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from fathom.errors import FathomError
from fathom.experiments.export import export_store
from fathom.experiments.store import RunStore
from fathom.report.build import build_report
from fathom.report.from_store import report_store


def _store(path: Path, records: list[dict[str, Any]]) -> Path:
    with RunStore(path) as st:
        st.register("depth", [(r["run_key"], r["config"]) for r in records])
        for r in records:
            if r["status"] in ("done", "diverged", "failed"):
                st.claim(r["run_key"])
                st.finish(
                    r["run_key"],
                    status=r["status"],
                    metrics=r["metrics"],
                    history=r["history"],
                    diagnostics=r["diagnostics"],
                    error=r["error"],
                )
    return path


@pytest.fixture
def db(tmp_path: Path, make_record: Any) -> Path:
    recs = [
        make_record(skip, depth, seed)
        for skip in ("none", "res")
        for depth in (2, 4)
        for seed in (0, 1)
    ]
    return _store(tmp_path / "runs.db", recs)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "out",
    [
        "runs.db",
        "runs.db-wal",
        "runs.db-shm",
        "runs.db-journal",
        "sym.db",
        "hard.db",
        "sub/../runs.db",
    ],
)
def test_export_never_writes_onto_the_store(db: Path, out: str) -> None:
    folder = db.parent
    (folder / "sym.db").symlink_to(db)
    os.link(db, folder / "hard.db")
    (folder / "sub").mkdir()
    before = _tree(folder)
    for fmt in ("json", "csv"):
        with pytest.raises(FathomError, match="would destroy the stored runs") as info:
            export_store(db, folder / out, fmt=fmt)
        assert "\n" not in str(info.value)
    assert _tree(folder) == before


def test_export_writes_atomically_and_reads_only(db: Path) -> None:
    before = db.read_bytes()
    text = export_store(db, db.parent / "runs.json")
    assert json.loads((db.parent / "runs.json").read_text()) == json.loads(text)
    assert len(json.loads(text)) == 8
    export_store(db, db.parent / "runs.csv", fmt="csv", history=False)
    assert (db.parent / "runs.csv").read_text().count("\n") == 9
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["runs.csv", "runs.db", "runs.json"]
    with pytest.raises(FathomError, match="export format"):
        export_store(db, fmt="xml")


def test_export_refuses_a_folder_before_reading(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    # the store does not even exist: the output is checked first
    with pytest.raises(FathomError, match="--out"):
        export_store(tmp_path / "missing.db", tmp_path / "out")
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize("out", [".", "runs.db", "sym.db", "runs.db/report"])
def test_report_never_writes_onto_the_store(tmp_path: Path, make_record: Any, out: str) -> None:
    # a store named like a report file, in the report folder
    db = _store(tmp_path / "report.html", [make_record("none", 2, 0)])
    out = out.replace("runs.db", "report.html")
    (tmp_path / "sym.db").symlink_to(db)
    before = _tree(tmp_path)
    with pytest.raises(FathomError, match="--out") as info:
        report_store(db, tmp_path / out)
    assert "\n" not in str(info.value)
    assert _tree(tmp_path) == before


def test_report_beside_the_store_is_fine(db: Path) -> None:
    before = db.read_bytes()
    files = report_store(db, db.parent)
    assert files.html.exists() and db.read_bytes() == before


def test_build_report_checks_the_folder_before_any_work(tmp_path: Path, make_record: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub"):
        with pytest.raises(FathomError, match="--out"):
            build_report([make_record()], out, title="t")
    assert blocker.read_text() == "x" and sorted(os.listdir(tmp_path)) == ["file"]


def test_malformed_rows_are_skipped_by_report_and_export(db: Path) -> None:
    from fathom.experiments.store import MalformedRunWarning

    conn = sqlite3.connect(db)
    key = conn.execute("SELECT run_key FROM runs ORDER BY id").fetchone()[0]
    conn.execute("UPDATE runs SET history = '[{' WHERE run_key = ?", (key,))
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.warns(MalformedRunWarning) as caught:
        assert len(json.loads(export_store(db))) == 7
        files = report_store(db, db.parent / "report")
    assert files.summary["total"] == 7
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2, messages
    assert all(
        m.startswith(f"skipping stored run {key}: column history is not valid JSON")
        for m in messages
    )
    assert db.read_bytes() == before
