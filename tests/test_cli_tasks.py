"""``fathom train --task …`` and ``--inductive``: each task end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fathom.cli import main

SMALL = ["--dataset", "csbm", "data.synthetic.num_nodes=120", "--epochs", "5", "--hidden", "8"]


def _one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err
    return err


def test_inductive_node_classification(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.json"
    assert main(["train", *SMALL, "--inductive", "--seeds", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["config"]["data"]["inductive"] is True
    assert [r["seed"] for r in result["runs"]] == [0, 1]
    assert 0.0 <= result["aggregate"]["test_acc_mean"] <= 1.0
    assert "(node inductive)" in capsys.readouterr().out


def test_inductive_differs_from_transductive(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["train", *SMALL, "--json", str(a), "--history"]) == 0
    assert main(["train", *SMALL, "--inductive", "--json", str(b), "--history"]) == 0
    la = [h["loss"] for h in json.loads(a.read_text())["runs"][0]["history"]]
    lb = [h["loss"] for h in json.loads(b.read_text())["runs"][0]["history"]]
    assert la != lb  # the csbm graph connects train to test nodes: the inputs differ


def test_inductive_only_for_node_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *SMALL, "--task", "link", "--inductive"]) == 2
    _one_line_error(capsys, "data.inductive (--inductive)", "task 'node' only")


def test_unknown_task_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *SMALL, "--task", "segmentation"]) == 2
    _one_line_error(capsys, "task (--task)", "node, graph, link, autoencoder")


def test_diagnose_refuses_other_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagnose", *SMALL[:2], "--task", "graph"]) == 2
    _one_line_error(capsys, "transductive node-classification")
