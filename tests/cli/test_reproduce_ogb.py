"""``fathom reproduce ogb``: without the data it stops in one line before any run; on tiny
files in OGB's exact layout (tests/ogb_fixtures.py) it trains, stores and reports ours beside
the published figure with each row's metric (accuracy, ROC-AUC, Hits@50)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from fathom.cli import main
from fathom.experiments import reproduce as rp
from fathom.experiments.store import RunStore
from ogb_fixtures import write_ogb_root


def _run(argv: list[str]) -> int:
    """``main(argv)``'s status, or argparse's (which exits on a bad flag)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private cache per test; no FATHOM_DATA or XDG_CACHE_HOME leaking in from outside."""
    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FATHOM_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


def _no_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a run started without the data")

    monkeypatch.setattr(rp, "run_suite", refuse)


def test_without_the_data_one_line_exit_2_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_line_error: Callable[..., str]
) -> None:
    _no_runs(monkeypatch)
    db = tmp_path / "never.db"
    assert _run(["reproduce", "ogb", "--store", str(db)]) == 2
    line = one_line_error(
        "'ogbn-arxiv' not found",
        f"cache {tmp_path / 'cache' / 'datasets' / 'ogbn_arxiv'}",
        "does not download OGB data",
        "ogbn_arxiv/raw/edge.csv.gz",
        "FATHOM_DATA",
    )
    assert line.startswith("fathom reproduce: error:")
    assert not db.exists()  # nothing registered either


def test_data_dir_is_searched_first_and_restored_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_line_error: Callable[..., str]
) -> None:
    _no_runs(monkeypatch)
    root = tmp_path / "data"
    write_ogb_root(root)
    shutil.rmtree(root / "ogbg_molhiv")  # one dataset missing: the command stops at it
    argv = ["reproduce", "ogb", "--data-dir", str(root), "--store", str(tmp_path / "r.db")]
    assert _run(argv) == 2
    one_line_error("'ogbg-molhiv' not found", f"FATHOM_DATA {root / 'ogbg_molhiv'} (no raw files)")
    assert "FATHOM_DATA" not in os.environ


def test_dry_run_and_no_run_need_no_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.db"
    assert main(["reproduce", "ogb", "--seeds", "1", "--store", str(db), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "reproduce ogb: 7 cells, 7 runs"
    assert "  ogbn-proteins DeeperGCN (DyResGEN-112) depth 112: 1 runs, published 85.8" in lines
    assert not db.exists()
    out = tmp_path / "rows.json"
    argv = ["reproduce", "ogb", "--models", "revgnn-proteins", "--seeds", "2", "--no-run"]
    assert main([*argv, "--store", str(db), "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["model"], row["n"], row["n_planned"], row["published"]) == (
        "RevGNN-Deep",
        0,
        2,
        87.06,
    )
    assert (row["metric"], row["metric_label"]) == ("test_auc", "ROC-AUC")


def test_reproduce_ogb_end_to_end_on_ogb_layout_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_ogb_root(tmp_path / "data")
    db, report, js = tmp_path / "r.db", tmp_path / "report", tmp_path / "rows.json"
    argv = ["reproduce", "ogb", "--models", "gcn-arxiv,gin-molhiv,gcn-collab", "--seeds", "2"]
    argv += ["--epochs", "2", "--data-dir", str(root), "--store", str(db), "--threads", "1"]
    assert main([*argv, "--report", str(report), "--json", str(js)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "ran 6 runs" in captured.err
    assert "FATHOM_DATA" not in os.environ

    rows = json.loads(js.read_text())["rows"]
    expected = [
        ("ogbn-arxiv", "GCN", 3, "test_acc", "accuracy", 71.74),
        ("ogbl-collab", "GCN", 3, "test_hits", "Hits@50", 44.75),
        ("ogbg-molhiv", "GIN", 5, "test_auc", "ROC-AUC", 75.58),
    ]
    assert [
        (r["dataset"], r["model"], r["depth"], r["metric"], r["metric_label"], r["published"])
        for r in rows
    ] == expected
    with RunStore(db) as st:
        stored = {r["run_key"]: r for r in st.runs(sweep="reproduce-ogb")}
    assert len(stored) == 6 and {r["status"] for r in stored.values()} == {"done"}
    for row in rows:
        assert row["n"] == row["n_planned"] == 2
        ours = [100 * stored[k]["metrics"][row["metric"]] for k in row["run_times"]]
        assert row["ours_mean"] == pytest.approx(sum(ours) / 2)
        assert row["diff"] == pytest.approx(row["ours_mean"] - row["published"])
        assert "epochs capped at 2" in row["note"] and "±" in row["note"]
    assert all(r["config"]["train"]["epochs"] == 2 for r in stored.values())

    # the console table and the report name each row's metric beside ours and published
    assert "Hits@50" in captured.out and "ROC-AUC" in captured.out
    text = (report / "reproduce-ogb.md").read_text()
    assert (
        "| dataset | model | depth | metric | runs | ours | published | diff | train | "
        "source / note |" in text
    )
    assert "Test accuracy, Hits@50, ROC-AUC (each row's `metric`) in %" in text
    for row in rows:
        cells = f"| {row['dataset']} | {row['model']} | {row['depth']} | {row['metric_label']} | "
        line = next(ln for ln in text.splitlines() if ln.startswith(cells))
        assert f"| {row['ours_mean']:.1f} ± {row['ours_std']:.1f} | " in line
        assert f"| {row['published']:.2f} | {row['diff']:+.1f}" in line
    assert "- Ten seeds per cell, as OGB's protocol" in text
