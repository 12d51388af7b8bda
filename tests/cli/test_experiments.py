"""The ``fathom sweep / runs / export / report`` commands, in process (``fathom.cli.main``).

Bad input (spec, store, flags) is one line on stderr with exit status 2 and leaves the store
byte-identical; the signal handling of ``fathom sweep`` is tested with subprocesses in
tests/experiments/test_sweep.py.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import sqlite3
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fathom.cli import main

# 2 depths x 2 seeds on a generated graph (done), plus one run on a graph file that does not
# exist (failed at runtime); the other points of the missing file are excluded
SPEC = """\
name: cli
base:
  data: {{synthetic: {{num_nodes: 100, feature_dim: 8}}}}
  model: {{hidden: 8}}
  train: {{epochs: 8, patience: 0}}
grid:
  data.name: [csbm, {missing}]
  model.depth: [1, 3]
  seed: range(2)
exclude:
  - {{data.name: {missing}, model.depth: 3}}
  - {{data.name: {missing}, seed: 1}}
"""


def _spec(folder: Path, text: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    if text is None:
        text = SPEC.format(missing=folder / "missing.npz")
    path.write_text(textwrap.dedent(text))
    return path


def _run(argv: list[str]) -> int:
    """``main(argv)``'s status, or argparse's (which exits on a bad flag)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _digest(folder: Path) -> dict[str, str]:
    """Every file of ``folder`` (recursively) -> sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@dataclass
class Stored:
    folder: Path
    spec: Path
    db: Path
    summary: dict[str, Any]
    err: str

    def copy(self, to: Path) -> Path:
        """A copy of the store (one file: every connection to it is closed)."""
        to.mkdir(parents=True, exist_ok=True)
        assert not Path(f"{self.db}-wal").exists()
        return Path(shutil.copy(self.db, to / "runs.db"))


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    """The spec swept once with ``fathom sweep``: 4 runs done, 1 failed."""
    folder = tmp_path_factory.mktemp("stored")
    spec, db, out = _spec(folder), folder / "runs.db", folder / "summary.json"
    argv = ["sweep", str(spec), "--store", str(db), "--threads", "1", "--json", str(out)]
    with pytest.MonkeyPatch.context() as mp:
        err = io.StringIO()
        mp.setattr("sys.stderr", err)
        assert main(argv) == 0
    return Stored(folder, spec, db, json.loads(out.read_text()), err.getvalue())


# --------------------------------------------------------------------------- sweep


def test_sweep_summary_then_rerun_skips_done_and_retries_failed_on_request(
    stored: Stored, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = stored.summary
    assert (s["sweep"], s["store"], s["total"], s["already_done"], s["ran"]) == (
        "cli",
        str(stored.db),
        5,
        0,
        5,
    )
    assert s["counts"] == {"pending": 0, "running": 0, "done": 4, "failed": 1, "diverged": 0}
    assert (s["interrupted"], s["threads"], s["workers"]) == (False, 1, 1)
    assert "Traceback" not in stored.err
    assert re.fullmatch(
        rf"sweep 'cli' finished: ran 5 runs in \d+ s; store {re.escape(str(stored.db))} "
        r"holds 4 done, 1 failed of 5",
        _last_line(stored.err),
    ), stored.err

    db = stored.copy(tmp_path)
    base = ["sweep", str(stored.spec), "--store", str(db), "--threads", "1"]

    def attempts() -> list[tuple[str, int]]:
        conn = sqlite3.connect(db)
        try:
            return conn.execute("SELECT status, attempts FROM runs ORDER BY id").fetchall()
        finally:
            conn.close()

    before = attempts()
    assert sorted(before) == [("done", 1)] * 4 + [("failed", 1)]
    assert main(base) == 0  # done and failed runs are skipped
    assert _last_line(capsys.readouterr().err).startswith("sweep 'cli' finished: ran 0 runs")
    assert attempts() == before
    assert main([*base, "--retry-failed"]) == 0  # the failed run only, and it fails again
    assert _last_line(capsys.readouterr().err).startswith("sweep 'cli' finished: ran 1 runs")
    assert attempts() == [(status, n + (status == "failed")) for status, n in before]


def test_verbose_sweep_shows_the_epoch_of_the_run_in_flight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Within a run, the progress line says which run trains and its last epoch (in a log,
    every 30 s; with --verbose, every epoch); once it ends, its result."""
    one = """\
    name: one
    base:
      data: {name: csbm, synthetic: {num_nodes: 100, feature_dim: 8}}
      model: {hidden: 8, depth: 3}
      train: {epochs: 8, patience: 0}
      seed: 1
    """
    spec = _spec(tmp_path, one)
    argv = ["-v", "sweep", str(spec), "--store", str(tmp_path / "runs.db"), "--threads", "1"]
    assert _run(argv) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "elapsed" in line]
    # the run count is known from the start
    assert lines[0].startswith("sweep one: 0/1 (0%) elapsed"), err
    in_flight = "sweep one · running: depth 3 skip none seed 1 epoch {}/8: 0/1 (0%) elapsed"
    for epoch, line in enumerate(lines[1:9], start=1):
        assert line.startswith(in_flight.format(epoch)), err
    assert re.match(r"depth 3 skip none seed 1: done test \S+%: 1/1 \(100%\)", lines[9]), err
    assert len(lines) == 10, err


def test_dry_run_lists_the_runs_writes_json_and_touches_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, db, out = _spec(tmp_path), tmp_path / "never.db", tmp_path / "plan.json"
    assert main(["sweep", str(spec), "--store", str(db), "--dry-run", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "sweep 'cli': 5 runs over axes data.name, model.depth, seed"
    assert len(lines) == 6
    assert [re.search(r"depth=(\d+) .* seed=(\d+)", line).groups() for line in lines[1:]] == [
        ("1", "0"),
        ("1", "1"),
        ("3", "0"),
        ("3", "1"),
        ("1", "0"),
    ]
    assert lines[-1].lstrip().startswith(str(tmp_path / "missing.npz"))
    plan = json.loads(out.read_text())
    assert plan["name"] == "cli" and plan["source"] == str(spec)
    assert plan["axes"] == ["data.name", "model.depth", "seed"]
    assert plan["points"] == 8 and len(plan["exclude"]) == 2
    assert len(plan["runs"]) == 5
    assert [(r["model"]["depth"], r["seed"], r["seeds"]) for r in plan["runs"]] == [
        (1, 0, 1),
        (1, 1, 1),
        (3, 0, 1),
        (3, 1, 1),
        (1, 0, 1),
    ]
    assert plan["runs"][0]["train"]["epochs"] == 8
    assert not db.exists()


# --------------------------------------------------------------------------- runs


def test_runs_lists_and_filters_by_status_and_sweep(
    stored: Stored, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _digest(stored.folder)
    assert main(["runs", str(stored.db)]) == 0
    out = capsys.readouterr().out
    assert "0 pending, 0 running, 4 done, 1 failed, 0 diverged" in out

    def listed(*flags: str) -> list[dict[str, Any]]:
        path = tmp_path / "runs.json"
        assert main(["runs", str(stored.db), *flags, "--json", str(path)]) == 0
        return json.loads(path.read_text())

    every = listed()
    assert len(every) == 5 and all("history" not in r for r in every)
    assert len({r["run_key"] for r in every}) == 5
    [failed] = listed("--status", "failed")
    assert failed["status"] == "failed" and failed["metrics"] == {}
    assert failed["error"] == f"graph file {stored.folder / 'missing.npz'} not found"
    done = listed("--status", "done")
    assert len(done) == 4 and all("test_acc" in r["metrics"] for r in done)
    assert listed("--status", "pending") == []
    assert [r["run_key"] for r in listed("--sweep", "cli")] == [r["run_key"] for r in every]
    assert listed("--sweep", "nope") == []
    assert _digest(stored.folder) == before  # reading leaves the store as it was


# --------------------------------------------------------------------------- export


def test_export_json_is_a_list_of_runs_with_key_status_config_metrics(
    stored: Stored, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(stored.db), "--format", "json"]) == 0
    text = capsys.readouterr().out
    runs = json.loads(text)
    assert isinstance(runs, list) and len(runs) == 5
    for run in runs:
        assert {"run_key", "status", "config", "metrics"} <= set(run)
        assert run["config"]["seeds"] == 1 and run["sweeps"] == ["cli"]
    done = [r for r in runs if r["status"] == "done"]
    assert len(done) == 4
    for run in done:
        assert 0.0 <= run["metrics"]["test_acc"] <= 1.0
        assert len(run["history"]) == 8
    [failed] = [r for r in runs if r["status"] == "failed"]
    assert failed["metrics"] == {} and "not found" in failed["error"]

    # default format, a file, filters, no history
    out = tmp_path / "sub" / "runs.json"
    assert main(["export", str(stored.db), "--out", str(out)]) == 0
    assert out.read_text() == text
    assert main(["export", str(stored.db), "--status", "done", "--no-history"]) == 0
    slim = json.loads(capsys.readouterr().out)
    assert [r["run_key"] for r in slim] == [r["run_key"] for r in done]
    assert all(r["history"] == [] for r in slim)
    assert main(["export", str(stored.db), "--sweep", "nope"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_export_csv_has_config_and_metric_columns(
    stored: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(stored.db), "--format", "csv"]) == 0
    text = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(text)))
    header = text.splitlines()[0].split(",")
    assert header[:2] == ["run_key", "status"]
    assert {"config.model.depth", "config.seed", "metrics.test_acc", "sweeps"} <= set(header)
    assert "history" not in header
    assert len(rows) == 5
    assert sorted(r["config.model.depth"] for r in rows) == ["1", "1", "1", "3", "3"]
    for row in rows:
        if row["status"] == "done":
            assert 0.0 <= float(row["metrics.test_acc"]) <= 1.0
        else:
            assert row["status"] == "failed" and row["metrics.test_acc"] == ""
            assert "not found" in row["error"]


# --------------------------------------------------------------------------- report


def test_report_writes_html_markdown_plot_and_json(
    stored: Stored, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _digest(stored.folder)
    out, summary = tmp_path / "report", tmp_path / "groups.json"
    assert main(["report", str(stored.db), "--out", str(out), "--json", str(summary)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "wrote" in captured.err and "report.html" in captured.err
    for name in ("report.html", "report.md", "accuracy_vs_depth.png", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "accuracy_vs_depth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<html" in (out / "report.html").read_text().lower()
    markdown = (out / "report.md").read_text()
    assert "accuracy_vs_depth.png" in markdown
    assert "Failed runs" in markdown and "not found" in markdown
    payload = json.loads(summary.read_text())
    assert set(payload) == {"summary", "groups"}
    groups = payload["groups"]
    assert sorted(g["key"]["model.depth"] for g in groups) == [1, 3]
    assert all(g["n"] == 2 and g["seeds"] == [0, 1] for g in groups)
    assert all(0.0 <= g["test_acc_mean"] <= 1.0 for g in groups)
    assert _digest(stored.folder) == before


def test_report_of_an_unknown_sweep_is_one_line(
    stored: Stored, tmp_path: Path, one_line_error: Callable[..., str]
) -> None:
    out = tmp_path / "report"
    assert main(["report", str(stored.db), "--sweep", "nope", "--out", str(out)]) == 2
    one_line_error("no finished runs")
    assert not out.exists()


# --------------------------------------------------------------------------- bad input


BAD_SPECS = {
    "unknown-grid-key": ("name: x\ngrid:\n  model.bogus: [1, 2]\n", ["model.bogus"]),
    "unknown-field": ("name: x\ngrids:\n  model.depth: [1]\n", ["unknown field 'grids'"]),
    "empty-axis": ("name: x\ngrid:\n  model.depth: []\n", ["model.depth", "must not be empty"]),
    "wrong-type": ("name: x\ngrid:\n  model.depth: [two]\n", ["model.depth", "'two'"]),
    "axis-not-a-list": ("name: x\ngrid:\n  model.depth: 3\n", ["model.depth", "list"]),
    "malformed-range": ("name: x\ngrid:\n  seed: range(1,)\n", ["malformed range"]),
    "empty-range": ("name: x\ngrid:\n  seed: range(0)\n", ["is empty"]),
    "unequal-zip": (
        "name: x\nzip:\n  - {model.depth: [1, 2], model.skip: [res]}\n",
        ["equal lengths"],
    ),
    "bad-name": ("name: a b\n", ["name"]),
    "not-yaml": ("name: x\ngrid: [\n", ["not valid YAML"]),
    "all-excluded": (
        "name: x\ngrid:\n  model.depth: [1, 2]\nexclude:\n  - {model.skip: none}\n",
        ["zero runs"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_invalid_spec_is_one_line_exit_2_and_leaves_the_store_untouched(
    case: str, stored: Stored, tmp_path: Path, one_line_error: Callable[..., str]
) -> None:
    text, words = BAD_SPECS[case]
    spec = _spec(tmp_path / "spec", text)
    db = stored.copy(tmp_path / "store")
    before = _digest(db.parent)
    assert _run(["sweep", str(spec), "--store", str(db)]) == 2
    err = one_line_error(*words)
    assert err.startswith("fathom sweep: error: sweep spec ")
    assert _digest(db.parent) == before
    # nor is a store created
    absent = tmp_path / "absent" / "runs.db"
    assert _run(["sweep", str(spec), "--store", str(absent)]) == 2
    one_line_error(*words)
    assert not absent.parent.exists()


def test_missing_spec_is_one_line_exit_2(
    stored: Stored, tmp_path: Path, one_line_error: Callable[..., str]
) -> None:
    db = stored.copy(tmp_path)
    before = _digest(tmp_path)
    assert _run(["sweep", str(tmp_path / "nope.yaml"), "--store", str(db)]) == 2
    one_line_error("sweep spec not found", "nope.yaml")
    assert _digest(tmp_path) == before


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 100)


def _future_version(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (run_key TEXT)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()


def _other_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE songs (title TEXT)")
    conn.execute("INSERT INTO songs VALUES ('a')")
    conn.commit()
    conn.close()


BAD_STORES: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "garbage": (_garbage, ["not a SQLite database"]),
    "schema-99": (_future_version, ["schema version 99", "this fathom reads 1"]),
    "other-sqlite": (_other_database, ["not a fathom results store", "songs"]),
    "directory": (lambda p: p.mkdir(), ["not a file"]),
}


@pytest.mark.parametrize("command", ["sweep", "runs", "export", "report"])
@pytest.mark.parametrize("case", list(BAD_STORES))
def test_invalid_store_is_one_line_exit_2_and_left_byte_identical(
    case: str, command: str, tmp_path: Path, one_line_error: Callable[..., str]
) -> None:
    spec = _spec(tmp_path / "spec")
    folder = tmp_path / "store"
    folder.mkdir()
    db = folder / "runs.db"
    make, words = BAD_STORES[case]
    make(db)
    before = _digest(folder)
    argv = {
        "sweep": ["sweep", str(spec), "--store", str(db), "--threads", "1"],
        "runs": ["runs", str(db)],
        "export": ["export", str(db), "--format", "json"],
        "report": ["report", str(db), "--out", str(tmp_path / "report")],
    }[command]
    assert _run(argv) == 2
    err = one_line_error(str(db), *words)
    assert err.startswith(f"fathom {command}: error: ")
    assert _digest(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == ["runs.db"]  # no -wal, -shm, journal
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("command", ["runs", "export", "report"])
def test_readers_of_a_missing_or_empty_store_fail_in_one_line_and_create_nothing(
    command: str, tmp_path: Path, one_line_error: Callable[..., str]
) -> None:
    missing = tmp_path / "missing" / "runs.db"
    out = ["--out", str(tmp_path / "report")] if command == "report" else []
    assert _run([command, str(missing), *out]) == 2
    one_line_error("results store not found", str(missing))
    assert not missing.parent.exists()

    empty = tmp_path / "empty.db"
    empty.touch()
    assert _run([command, str(empty), *out]) == 2
    one_line_error("is empty")
    assert empty.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["sweep", "{spec}", "--workers", "0"], ["--workers", "'0'"]),
        (["sweep", "{spec}", "--threads", "0"], ["--threads", "'0'"]),
        (["sweep", "{spec}", "--threads", "two"], ["--threads", "'two'"]),
        (["runs", "{db}", "--status", "finished"], ["--status", "'finished'"]),
        (["export", "{db}", "--status", "finished"], ["--status", "'finished'"]),
        (["export", "{db}", "--format", "xml"], ["--format", "'xml'"]),
    ],
)
def test_bad_flags_are_one_line_exit_2(
    argv: list[str],
    words: list[str],
    stored: Stored,
    tmp_path: Path,
    one_line_error: Callable[..., str],
) -> None:
    db = stored.copy(tmp_path)
    before = _digest(tmp_path)
    argv = [a.format(spec=stored.spec, db=db) for a in argv]
    assert _run([*argv, "--store", str(db)] if argv[0] == "sweep" else argv) == 2
    one_line_error(*words)
    assert _digest(tmp_path) == before
