"""The ``fathom presets / reproduce`` commands and ``fathom train --preset``, in process.

The real suites are only listed (``--dry-run``) or rejected; the one reproduction that trains
runs a tiny suite on a generated graph, put in place of the real ones with monkeypatch.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from fathom.cli import main
from fathom.config import ExperimentConfig, apply_overrides
from fathom.experiments import reproduce as rp
from fathom.experiments.reproduce import Cell, Published, Suite
from fathom.experiments.store import RunStore
from fathom.models.presets import list_presets, preset_source

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(argv: list[str]) -> int:
    """``main(argv)``'s status, or argparse's (which exits on a bad flag)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


# --------------------------------------------------------------------------- presets


def test_presets_lists_every_preset_with_its_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "presets.json"
    assert main(["presets", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["name"] for r in rows] == list_presets()
    for r in rows:
        assert set(r) == {"name", "dataset", "model", "depth", "source"}
        assert r["source"] and r["source"] == preset_source(r["name"])
    gcnii = next(r for r in rows if r["name"] == "gcnii-cora")
    assert (gcnii["dataset"], gcnii["model"], gcnii["depth"]) == ("cora", "gcn2", 64)
    appnp = next(r for r in rows if r["name"] == "appnp-cora")
    assert appnp["model"] == "appnp"  # a non-deep arch shows the arch
    printed = capsys.readouterr().out
    assert "gcnii-cora" in printed and "hetero-mlp" in printed


# --------------------------------------------------------------------------- reproduce


def test_reproduce_dry_run_lists_cells_and_creates_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "never.db"
    argv = ["reproduce", "planetoid", "--datasets", "cora", "--models", "gcn", "--seeds", "2"]
    assert main([*argv, "--store", str(db), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "reproduce planetoid: 1 cells, 2 runs",
        "  cora GCN depth 2: 2 runs, published 81.5",
    ]
    assert not db.exists()

    argv = ["reproduce", "depth", "--datasets", "cora", "--models", "resgcn,gcnii"]
    assert main([*argv, "--depths", "2,16", "--seeds", "1", "--store", str(db), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "reproduce depth: 4 cells, 4 runs",
        "  cora ResGCN depth 2: 1 runs, published –",
        "  cora ResGCN depth 16: 1 runs, published 72.2",
        "  cora GCNII depth 2: 1 runs, published 82.19",
        "  cora GCNII depth 16: 1 runs, published 84.69",
    ]
    assert not db.exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["reproduce", "nosuch"], ["'nosuch'", "planetoid, depth, heterophily"]),
        (["reproduce", "depth", "--models", "nosuch"], ["--models", "'nosuch'", "gcn-dropedge"]),
        (["reproduce", "planetoid", "--datasets", "cora,texas"], ["--datasets", "'texas'"]),
        (["reproduce", "heterophily", "--seeds", "11"], ["--seeds", "10"]),
        (["reproduce", "depth", "--depths", "2,x"], ["integers", "2,x"]),
        (["reproduce", "depth", "--seeds", "0"], ["--seeds", "0"]),
    ],
)
def test_reproduce_bad_input_is_one_line_exit_2(
    argv: list[str], words: list[str], tmp_path: Path, one_line_error: Callable[..., str]
) -> None:
    db = tmp_path / "never.db"
    assert _run([*argv, "--store", str(db)]) == 2
    one_line_error(*words)
    assert not db.exists()


# --------------------------------------------------------------------------- train --preset


def test_train_unknown_preset_is_one_line_exit_2(one_line_error: Callable[..., str]) -> None:
    assert _run(["train", "--preset", "nosuch"]) == 2
    one_line_error("'nosuch'", "gcn-cora", "gcnii-cora")


def test_train_preset_and_config_are_mutually_exclusive(
    tmp_path: Path, one_line_error: Callable[..., str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {depth: 2}\n")
    assert _run(["train", "--preset", "gcn-cora", "--config", str(cfg)]) == 2
    one_line_error("--preset", "--config")


def test_train_preset_print_config_applies_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    argv = ["train", "--preset", "gcnii-cora", "--depth", "8", "train.patience=5"]
    assert main([*argv, "--print-config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert (cfg["model"]["conv"], cfg["model"]["depth"], cfg["model"]["alpha"]) == ("gcn2", 8, 0.1)
    assert (cfg["train"]["patience"], cfg["train"]["monitor"]) == (5, "val_loss")


def test_train_preset_with_flag_overrides_runs_on_a_generated_graph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "train.json"
    argv = ["train", "--preset", "gcn-cora", "--dataset", "csbm", "--epochs", "2", "--seeds", "1"]
    assert main([*argv, "data.synthetic.num_nodes=150", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    cfg = result["config"]
    assert cfg["data"]["name"] == "csbm"  # the flag
    assert cfg["train"]["epochs"] == 2 and cfg["seeds"] == 1
    # the rest is the preset's
    assert (cfg["model"]["hidden"], cfg["model"]["depth"], cfg["model"]["dropout"]) == (16, 2, 0.5)
    assert (cfg["train"]["weight_decay"], cfg["train"]["patience"]) == (5e-4, 100)
    assert len(result["runs"]) == 1 and result["runs"][0]["status"] == "done"
    assert "Traceback" not in capsys.readouterr().err


# --------------------------------------------------------------------------- end to end


def _tiny_cell(key: str, dataset: str, depth: int | None, seeds: int) -> Cell:
    depth = depth or 1
    base = apply_overrides(
        ExperimentConfig(),
        {
            "data.name": "csbm",
            "data.synthetic.num_nodes": 60,
            "data.synthetic.feature_dim": 8,
            "model.hidden": 8,
            "model.depth": depth,
            "train.epochs": 3,
            "train.patience": 0,
        },
    )
    configs = tuple(apply_overrides(base, {"seed": s, "seeds": 1}) for s in range(seeds))
    return Cell("tiny", "GCN", key, dataset, depth, configs, Published(50.0, "made up"), "n.b.")


TINY = Suite(
    "tiny",
    "A tiny suite on a generated graph",
    {"gcn": "GCN"},
    ("csbm",),
    (1, 2),
    _tiny_cell,
    notes=("Tiny note.",),
)


@dataclass
class Reproduced:
    folder: Path
    db: Path
    report: Path
    data: dict[str, Any]
    out: str
    err: str
    status: int


def _reproduce(folder: Path, argv0: list[str]) -> Reproduced:
    db, report, js = folder / "r.db", folder / "report", folder / "rows.json"
    argv = ["reproduce", "tiny", "--seeds", "2", "--store", str(db), "--threads", "1"]
    argv += ["--report", str(report), "--json", str(js)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(rp.SUITES, "tiny", TINY)
        # what a shell would have run (sys.argv is pytest's otherwise)
        mp.setattr(sys, "argv", [*argv0])
        out, err = io.StringIO(), io.StringIO()
        mp.setattr(sys, "stdout", out)
        mp.setattr(sys, "stderr", err)
        status = main(argv)
    return Reproduced(
        folder, db, report, json.loads(js.read_text()), out.getvalue(), err.getvalue(), status
    )


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Reproduced, Reproduced]:
    """The tiny suite reproduced twice into the same store (the second run resumes)."""
    folder = tmp_path_factory.mktemp("reproduce")
    first = _reproduce(folder, ["fathom"])
    second = _reproduce(folder, ["fathom"])
    return first, second


def test_reproduce_trains_writes_rows_report_and_resumes(
    reproduced: tuple[Reproduced, Reproduced],
) -> None:
    first, second = reproduced
    assert first.status == 0 and second.status == 0
    assert "Traceback" not in first.err + second.err
    assert (first.data["runs_executed"], second.data["runs_executed"]) == (4, 0)
    assert "ran 4 runs" in first.err and "ran 0 runs" in second.err

    data = first.data
    assert data["suite"] == "tiny" and data["tolerance"] == rp.TOLERANCE
    assert data["store"] == str(first.db) and data["notes"] == ["Tiny note."]
    rows = data["rows"]
    assert [(r["model"], r["dataset"], r["depth"]) for r in rows] == [
        ("GCN", "csbm", 1),
        ("GCN", "csbm", 2),
    ]
    for row in rows:
        assert {"model", "dataset", "depth", "ours_mean", "ours_std", "published"} <= set(row)
        assert row["n"] == 2 and row["n_planned"] == 2 and row["published"] == 50.0
        assert 0.0 <= row["ours_mean"] <= 100.0 and row["ours_std"] >= 0.0
        assert row["diff"] == pytest.approx(row["ours_mean"] - 50.0)
    # the second invocation reads the same runs back
    assert second.data["rows"] == rows

    with RunStore(first.db) as st:
        assert st.counts(sweep="reproduce-tiny")["done"] == 4
        assert len(st.runs()) == 4

    md = first.report / "reproduce-tiny.md"
    png = first.report / "reproduce-tiny-csbm.png"
    assert sorted(p.name for p in first.report.iterdir()) == [png.name, md.name]
    assert png.read_bytes()[:8] == PNG_MAGIC
    text = md.read_text()
    assert text.startswith("# Reproduction: tiny\n")
    assert "| csbm | GCN | 1 |" in text and "| csbm | GCN | 2 |" in text
    assert "made up; n.b." in text and "- Tiny note." in text
    assert "A tiny suite on a generated graph" in first.out  # the console table


def test_verbose_reproduce_names_the_cell_and_epoch_of_the_run_in_flight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(rp.SUITES, "tiny", TINY)
    argv = ["-v", "reproduce", "tiny", "--depths", "2", "--seeds", "1"]
    assert main([*argv, "--store", str(tmp_path / "r.db"), "--threads", "1"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "elapsed" in line]
    # the run count is known from the start
    assert lines[0].startswith("reproduce tiny: 0/1 (0%) elapsed"), lines
    running = "reproduce tiny · running: csbm gcn depth 2 seed 0 epoch {}/3: 0/1 (0%) elapsed"
    for epoch in (1, 2, 3):
        assert lines[epoch].startswith(running.format(epoch)), lines
    assert lines[4].startswith("csbm gcn depth 2 seed 0: done test accuracy "), lines
    assert "%: 1/1 (100%) elapsed " in lines[4], lines


def test_reproduce_records_the_command_it_ran(
    reproduced: tuple[Reproduced, Reproduced],
) -> None:
    first, _ = reproduced
    command = first.data["command"]
    assert command.startswith("fathom reproduce tiny ") and "--seeds 2" in command
    assert f"`{command}`" in (first.report / "reproduce-tiny.md").read_text()


def test_reproduce_no_run_reports_the_store_without_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, out = tmp_path / "r.db", tmp_path / "rows.json"
    argv = ["reproduce", "planetoid", "--datasets", "cora", "--models", "gcn,sgc"]
    code = main([*argv, "--seeds", "2", "--no-run", "--store", str(store), "--json", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["model"], r["n"], r["n_planned"], r["ours_mean"]) for r in rows] == [
        ("GCN", 0, 2, None),
        ("SGC", 0, 2, None),
    ]
    assert rows[0]["published"] == 81.5
    with RunStore(store) as st:
        assert st.runs() == []  # nothing registered, nothing trained
    assert "not run" in capsys.readouterr().out


# --------------------------------------------------------------------------- --tune


def _tunable_tiny_cell(key: str, dataset: str, depth: int | None, seeds: int) -> Cell:
    cell = _tiny_cell(key, dataset, depth, seeds)
    return replace(cell, tunable=cell.depth == 2)  # depth 1: "published"


def _tiny_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The tiny suite with its depth-2 cell searched over a 4-point grid (lr × dropout, one
    seed): the store's and the JSON's paths."""
    from fathom.experiments import tuning

    (tmp_path / "tiny.yaml").write_text(
        "metric: val_acc\nseeds: 1\naxes:\n  - {key: train.lr, values: [0.05, 0.001]}\n"
        "  - {key: model.dropout, values: [0.0, 0.5]}\n"
    )
    monkeypatch.setattr(tuning, "SEARCH_DIR", tmp_path)
    monkeypatch.setitem(rp.SUITES, "tiny", replace(TINY, cell=_tunable_tiny_cell))
    return tmp_path / "r.db", tmp_path / "rows.json"


def test_reproduce_tune_searches_then_runs_the_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db, js = _tiny_search(tmp_path, monkeypatch)
    argv = ["reproduce", "tiny", "--seeds", "2", "--store", str(db), "--threads", "1", "--tune"]
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "csbm GCN depth 2: 2 runs after a 4-point validation search" in out
    assert "csbm GCN depth 1: 2 runs," in out
    assert not db.exists()

    assert main([*argv, "--json", str(js)]) == 0
    data = json.loads(js.read_text())
    assert data["runs_executed"] == 7
    assert "sweep 'reproduce-tiny-tune' finished: ran 4 runs" in capsys.readouterr().err
    rows = {r["depth"]: r for r in data["rows"]}
    assert rows[1]["n"] == 2 and "tuned" not in rows[1]["note"]
    assert rows[2]["n"] == 2 and "setting: tuned on validation (4-point grid" in rows[2]["note"]
    with RunStore(db) as st:
        # 4 grid runs (one of them is the tuned cell's seed 0) + 1 + depth 1's 2
        assert len(st.runs()) == 7
        grid = st.runs(sweep="reproduce-tiny-tune")
        assert len(grid) == 4
        best = max(grid, key=lambda r: r["metrics"]["val_acc"])  # ties: first in grid order
        for r in grid:
            if r["metrics"]["val_acc"] == best["metrics"]["val_acc"]:
                best = r
                break
        chosen = (best["config"]["train"]["lr"], best["config"]["model"]["dropout"])
    assert f"lr {chosen[0]}, dropout {chosen[1]}" in rows[2]["note"]
    # a second invocation trains nothing
    assert main([*argv, "--json", str(js)]) == 0
    assert json.loads(js.read_text())["runs_executed"] == 0


def test_reproduce_tune_waits_for_the_grid_runs_another_process_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two invocations of one search: the one that finds nothing left to claim in the grid
    waits for the other's grid runs, then chooses from the whole grid and runs the seeds."""
    import functools
    import subprocess

    from fathom.config import config_hash, config_to_dict
    from fathom.experiments import tuning

    db, js = _tiny_search(tmp_path, monkeypatch)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    claimed: list[str] = []
    real_run_suite = rp.run_suite

    def run_suite(cells: list[Cell], store: Path, *, name: str, **kw: Any) -> Any:
        if name.endswith("-tune"):  # the other invocation has claimed the first grid point
            cfg = cells[0].configs[0]
            key = config_hash(cfg)
            with RunStore(store) as st:
                st.register(name, [(key, config_to_dict(cfg))])
                assert st.claim(key, pid=other.pid)
            claimed.append(key)
        return real_run_suite(cells, store, name=name, **kw)

    def other_finishes(seconds: float) -> None:
        with RunStore(db) as st:
            assert st.get(claimed[0])["status"] == "running"  # the grid's others are done
            st.finish(
                claimed[0], status="done", metrics={"val_acc": 1.0, "test_acc": 0.5}, history=[]
            )

    monkeypatch.setattr(rp, "run_suite", run_suite)
    monkeypatch.setattr(
        tuning, "wait_for_grids", functools.partial(tuning.wait_for_grids, sleep=other_finishes)
    )
    argv = ["reproduce", "tiny", "--seeds", "2", "--store", str(db), "--threads", "1", "--tune"]
    try:
        assert main(["-v", *argv, "--json", str(js)]) == 0
    finally:
        other.kill()
        other.wait()
    err = capsys.readouterr().err
    assert f"waiting for 1 search run that another process (pid {other.pid}) is training" in err
    # the chosen setting's runs are named by their cell, as the others are
    assert "csbm gcn depth 2 seed 1: done test accuracy " in err
    data = json.loads(js.read_text())
    # 3 of the 4 grid points, the tuned cell's seed 1 (its seed 0 is the other's grid run,
    # chosen: val acc 1.0) and depth 1's 2 seeds
    assert data["runs_executed"] == 6
    rows = {r["depth"]: r for r in data["rows"]}
    assert rows[2]["n"] == 2 and "val_acc 100.0: lr 0.05, dropout 0.0" in rows[2]["note"]


def test_reproduce_tune_without_a_declared_search_is_one_line_exit_2(
    tmp_path: Path, one_line_error: Callable[..., str]
) -> None:
    db = tmp_path / "never.db"
    assert _run(["reproduce", "planetoid", "--tune", "--store", str(db)]) == 2
    one_line_error("--tune", "no validation search is declared for suite 'planetoid'", "depth")
    assert not db.exists()
