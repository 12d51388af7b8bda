"""The ``fathom`` command: results, JSON, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fathom.cli import main

SMALL = ["--dataset", "csbm", "data.synthetic.num_nodes=120", "--epochs", "5", "--hidden", "8"]


def test_train_writes_json_with_config_runs_and_aggregate(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert main(["train", *SMALL, "--seeds", "2", "--depth", "3", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["config"]["model"]["depth"] == 3
    assert result["config"]["data"]["synthetic"]["num_nodes"] == 120
    assert [r["seed"] for r in result["runs"]] == [0, 1]
    agg = result["aggregate"]
    assert agg["n"] == 2
    accs = [r["test_acc"] for r in result["runs"]]
    assert agg["test_acc_mean"] == pytest.approx(np.mean(accs))
    assert agg["test_acc_std"] == pytest.approx(np.std(accs))
    for key in ("val_acc_mean", "train_acc_mean", "epochs_mean", "time_s_mean"):
        assert key in agg
    assert "history" not in result["runs"][0]


def test_train_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["train", *SMALL, "--seed", "3", "--json", str(a), "--history"]) == 0
    assert main(["train", *SMALL, "--seed", "3", "--json", str(b), "--history"]) == 0
    ra, rb = json.loads(a.read_text())["runs"][0], json.loads(b.read_text())["runs"][0]
    for key in ("train_acc", "val_acc", "test_acc", "test_loss", "best_epoch"):
        assert ra[key] == rb[key]
    assert [h["loss"] for h in ra["history"]] == [h["loss"] for h in rb["history"]]


def test_yaml_config_then_flags_then_dotted_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  depth: 4\n  hidden: 16\ntrain:\n  lr: 0.05\n")
    assert (
        main(["train", "--config", str(cfg), "--depth", "6", "model.norm=batch", "--print-config"])
        == 0
    )
    text = capsys.readouterr().out
    assert "depth: 6" in text and "hidden: 16" in text and "norm: batch" in text
    assert "lr: 0.05" in text


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--depth", "-3"], ["model.depth", "--depth", "-3"]),
        (["--depth", "0"], ["model.depth"]),
        (["--dropout", "1.0"], ["model.dropout", "--dropout"]),
        (["--conv", "nope"], ["model.conv", "nope", "gcn"]),
        (["--skip", "nope"], ["model.skip", "res"]),
        (["--norm", "nope"], ["model.norm", "batch"]),
        (["--lr", "0"], ["train.lr"]),
        (["model.bogus=1"], ["model.bogus"]),
        (["nokey"], ["nokey"]),
        (["--dataset", "no-such-graph"], ["no-such-graph", "cora"]),
        (["--config", "missing.yaml"], ["missing.yaml"]),
        (["--depth", "abc"], ["--depth", "abc"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], words: list[str], one_line_error: Callable[..., str], tmp_path: Path
) -> None:
    out = tmp_path / "never.json"
    try:
        rc = main(["train", *argv, "--json", str(out)])
    except SystemExit as exc:  # argparse rejects ill-typed flags itself
        rc = exc.code
    assert rc == 2
    one_line_error(*words)
    assert not out.exists()


def _write_npz(path: Path, **overrides: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "edge_index": np.array([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]]),
        "x": rng.normal(size=(4, 3)).astype(np.float32),
        "y": np.array([0, 0, 1, 1]),
        "train_mask": np.array([1, 0, 1, 0], dtype=bool),
        "val_mask": np.array([0, 1, 0, 0], dtype=bool),
        "test_mask": np.array([0, 0, 0, 1], dtype=bool),
    }
    arrays.update(overrides)
    np.savez(path, **arrays)
    return path


def test_train_on_users_npz(tmp_path: Path) -> None:
    path = _write_npz(tmp_path / "g.npz")
    out = tmp_path / "r.json"
    assert main(["train", "--dataset", str(path), "--epochs", "3", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["dataset"]["num_nodes"] == 4


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        (
            {"x": np.array([[0.0, 1, 2], [np.nan, 0, 0], [0, 0, 0], [1, 1, 1]], dtype=np.float32)},
            ["x", "NaN"],
        ),
        ({"edge_index": np.array([[0, 1, 9], [1, 0, 2]])}, ["edge_index", "9"]),
        ({"y": np.array([0, 1])}, ["y"]),
        ({"val_mask": np.array([1, 0, 1, 0], dtype=bool)}, ["overlap"]),
    ],
)
def test_malformed_npz_is_one_line_exit_2(
    arrays: dict[str, np.ndarray],
    words: list[str],
    tmp_path: Path,
    one_line_error: Callable[..., str],
) -> None:
    path = _write_npz(tmp_path / "bad.npz", **arrays)
    assert main(["train", "--dataset", str(path), "--epochs", "2"]) == 2
    one_line_error(*words)


def test_missing_graph_file_exit_2(tmp_path: Path, one_line_error: Callable[..., str]) -> None:
    assert main(["train", "--dataset", str(tmp_path / "absent.npz")]) == 2
    one_line_error("absent.npz")


def test_console_script_error_has_no_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fathom.cli", "train", "--depth", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "fathom train: error: model.depth (--depth) must be >= 1, got -1"
    ]


def test_demo_prints_table_and_writes_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    js = tmp_path / "demo.json"
    assert (
        main(
            [
                "demo",
                "--out",
                str(out),
                "--depths",
                "1,3",
                "--seeds",
                "1",
                "--epochs",
                "3",
                "--json",
                str(js),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "GCN" in text and "depth 3" in text
    png = out / "accuracy_vs_depth.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads(js.read_text())["rows"]
    assert {(r["model"], r["depth"]) for r in rows} == {
        ("GCN", 1),
        ("GCN", 3),
        ("ResGCN (residual)", 1),
        ("ResGCN (residual)", 3),
    }
    assert json.loads((out / "results.json").read_text())["rows"] == rows


def test_demo_rejects_bad_depths(one_line_error: Callable[..., str], tmp_path: Path) -> None:
    assert main(["demo", "--depths", "2,x", "--out", str(tmp_path)]) == 2
    one_line_error("--depths")


def test_datasets_lists_every_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FATHOM_DATA", raising=False)
    out = tmp_path / "d.json"
    (tmp_path / "empty").mkdir()
    assert main(["datasets", "--data-dir", str(tmp_path / "empty"), "--json", str(out)]) == 0
    listed = json.loads(out.read_text())
    names = {d["name"] for d in listed["datasets"]}
    assert {"cora", "citeseer", "pubmed", "chameleon", "actor", "amazon-photo"} <= names
    assert all(d["availability"] == "missing" for d in listed["datasets"])
    assert "csbm" in listed["generators"]
    graphs = {d["name"]: d for d in listed["graph_datasets"]}
    assert set(graphs) == {"mutag", "proteins", "enzymes", "imdb-binary"}
    assert (graphs["mutag"]["graphs"], graphs["mutag"]["availability"]) == (188, "missing")
    assert listed["graph_generators"] == ["motifs"]
    out_text = capsys.readouterr().out
    assert "cora" in out_text and "graph classification (--task graph)" in out_text
