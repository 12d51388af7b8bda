"""``fathom train --task …`` and ``--inductive``: each task end to end through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fathom.cli import main
from fathom.tasks import TASKS

SMALL = ["--dataset", "csbm", "data.synthetic.num_nodes=120", "--epochs", "5", "--hidden", "8"]


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


def test_inductive_only_for_node_task(one_line_error: Callable[..., str]) -> None:
    assert main(["train", *SMALL, "--task", "link", "--inductive"]) == 2
    one_line_error("data.inductive (--inductive)", "task 'node' only")


def test_unknown_task_is_one_line(one_line_error: Callable[..., str]) -> None:
    assert main(["train", *SMALL, "--task", "tracking"]) == 2
    one_line_error("task (--task)", "tracking", *TASKS.names())


def test_diagnose_refuses_other_tasks(one_line_error: Callable[..., str]) -> None:
    assert main(["diagnose", *SMALL[:2], "--task", "graph"]) == 2
    one_line_error("transductive node-classification")


def test_graph_dataset_without_graph_task_says_so(one_line_error: Callable[..., str]) -> None:
    assert main(["train", "--dataset", "motifs", "--epochs", "1"]) == 2
    one_line_error("graph-classification dataset", "--task graph")


def test_node_dataset_with_graph_task_lists_graph_datasets(
    one_line_error: Callable[..., str],
) -> None:
    assert main(["train", "--task", "graph", "--dataset", "csbm", "--epochs", "1"]) == 2
    one_line_error("for task 'graph'", "mutag", "motifs")


GRAPH = [
    "--task", "graph", "--dataset", "motifs", "data.synthetic.num_nodes=1200",
    "--conv", "gin", "--depth", "2", "--hidden", "16", "--epochs", "4", "--folds", "3",
    "--norm", "batch", "--dropout", "0",
]  # fmt: skip


def test_graph_task_cross_validates_with_one_run_per_fold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.json"
    assert main(["train", *GRAPH, "--readout", "mean", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["config"]["graph"]["readout"] == "mean"
    assert result["dataset"]["num_graphs"] == 48  # 1200 nodes, one graph per 25
    assert [(r["seed"], r["fold"]) for r in result["runs"]] == [(0, 0), (0, 1), (0, 2)]
    agg = result["aggregate"]
    accs = [r["test_acc"] for r in result["runs"]]
    assert agg["n"] == 3
    assert agg["test_acc_mean"] == pytest.approx(sum(accs) / 3)
    cv = result["cross_validation"][0]
    assert cv["test_acc"] == pytest.approx(agg["test_acc_mean"])
    assert {"test_acc_fold_std", "test_acc_paper", "test_acc_paper_std"} <= set(cv)
    text = capsys.readouterr().out
    assert "(graph)" in text and "3-fold test accuracy" in text


def test_graph_task_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["train", *GRAPH, "--pool", "topk", "--json", str(a)]) == 0
    assert main(["train", *GRAPH, "--pool", "topk", "--json", str(b)]) == 0
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    assert [r["test_acc"] for r in ra["runs"]] == [r["test_acc"] for r in rb["runs"]]
    assert [r["val_loss"] for r in ra["runs"]] == [r["val_loss"] for r in rb["runs"]]


LINK = ["--dataset", "csbm", "data.synthetic.num_nodes=150", "--epochs", "5"]


@pytest.mark.parametrize(
    ("task", "extra"),
    [
        ("link", ["--decoder", "mlp", "--hidden", "16"]),
        ("link", ["--model", "gae", "--hidden", "16"]),
        ("autoencoder", ["--model", "vgae", "--hidden", "16"]),
        ("autoencoder", ["--corrupt-edges", "0.2", "--corrupt-features", "0.1", "--depth", "3"]),
    ],
)
def test_link_tasks_report_auc_ap_hits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str, extra: list[str]
) -> None:
    out = tmp_path / "out.json"
    args = ["train", "--task", task, *LINK, *extra, "--seeds", "2", "--json", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    runs, agg = result["runs"], result["aggregate"]
    assert [r["seed"] for r in runs] == [0, 1]
    for key in ("test_auc", "test_ap", "test_hits", "val_auc"):
        assert all(0.0 <= r[key] <= 1.0 for r in runs)
        assert agg[f"{key}_mean"] == pytest.approx(sum(r[key] for r in runs) / 2)
    assert "test auc" in capsys.readouterr().out


def test_link_seeds_draw_their_own_edge_split(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert main(["train", "--task", "link", *LINK, "--seeds", "2", "--json", str(out)]) == 0
    a, b = json.loads(out.read_text())["runs"]
    assert (a["test_auc"], a["test_ap"]) != (b["test_auc"], b["test_ap"])


def test_link_task_rejects_accuracy_monitor(one_line_error: Callable[..., str]) -> None:
    assert main(["train", "--task", "link", *LINK, "--monitor", "val_acc"]) == 2
    one_line_error("train.monitor (--monitor)", "for task 'link'")


def test_checkpoint_is_for_node_models(tmp_path: Path, one_line_error: Callable[..., str]) -> None:
    ckpt = tmp_path / "m.pt"
    assert main(["train", "--task", "link", *LINK, "--checkpoint", str(ckpt)]) == 2
    one_line_error("--checkpoint", "task 'link'")
    assert not ckpt.exists()


def test_graph_sweep_stores_cross_validation_means_and_reports(tmp_path: Path) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        "name: tasks\n"
        "base:\n"
        "  task: graph\n"
        "  data: {name: motifs, synthetic: {num_nodes: 600}}\n"
        "  model: {conv: gin, hidden: 8, dropout: 0.0}\n"
        "  train: {epochs: 3, patience: 0}\n"
        "  graph: {folds: 2}\n"
        "grid:\n"
        "  model.depth: [1, 2]\n"
        "  seed: range(2)\n"
    )
    db = tmp_path / "runs.db"
    assert main(["sweep", str(spec), "--store", str(db)]) == 0
    out = tmp_path / "runs.json"
    assert main(["export", str(db), "--format", "json", "--out", str(out)]) == 0
    records = json.loads(out.read_text())
    assert len(records) == 4 and {r["status"] for r in records} == {"done"}
    for r in records:  # one stored run = one whole cross-validation: fold means
        assert {"test_acc", "test_acc_fold_std", "test_acc_paper"} <= set(r["metrics"])
    report = tmp_path / "report"
    summary = tmp_path / "summary.json"
    assert main(["report", str(db), "--out", str(report), "--json", str(summary)]) == 0
    md = (report / "report.md").read_text()
    assert "test acc (%)" in md and "depth 2" in md


@pytest.mark.parametrize(
    "args",
    [
        [*GRAPH, "--diagnose-every", "2"],
        ["--task", "link", *LINK, "--depth", "3", "--diagnose-every", "2"],
        ["--task", "autoencoder", *LINK, "--model", "gae", "--diagnose-every", "2"],
    ],
)
def test_per_layer_diagnostics_in_every_task(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "out.json"
    assert main(["train", *args, "--json", str(out)]) == 0
    run = json.loads(out.read_text())["runs"][0]
    records = run["diagnostics"]
    assert [r["epoch"] for r in records if not r.get("final")][:2] == [1, 2]
    final = records[-1]
    assert final["final"] is True
    energies = [layer["dirichlet_energy"] for layer in final["layers"]]
    assert len(energies) >= 3 and all(e >= 0 for e in energies)


def test_diagnostics_do_not_change_graph_results(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["train", *GRAPH, "--json", str(a)]) == 0
    assert main(["train", *GRAPH, "--diagnose-every", "1", "--json", str(b)]) == 0
    ra, rb = json.loads(a.read_text())["runs"], json.loads(b.read_text())["runs"]
    assert [r["test_loss"] for r in ra] == [r["test_loss"] for r in rb]


SEGMENT = [
    "--task",
    "segmentation",
    "--dataset",
    "scenes",
    "--conv",
    "edge",
    "--skip",
    "res",
    "--depth",
    "3",
    "--hidden",
    "8",
    "--k",
    "4",
    "--epochs",
    "2",
    "points.num_points=64",
    "points.num_scenes=4",
    "points.fusion_channels=16",
]


def test_segmentation_end_to_end_reports_miou_oa_and_per_class_iou(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "seg.json"
    assert main(["train", *SEGMENT, "--memory", "checkpoint", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    agg = result["aggregate"]
    assert 0.0 <= agg["test_miou_mean"] <= agg["test_oa_mean"] + 1.0
    assert 0.0 <= agg["test_oa_mean"] <= 1.0
    assert result["dataset"]["points_per_cloud"] == 64
    assert (result["dataset"]["train"], result["dataset"]["val"]) == (4, 1)
    printed = capsys.readouterr().out
    assert "test miou" in printed and "test IoU per class" in printed
    # checkpointing changes memory, not numbers
    plain = tmp_path / "plain.json"
    assert main(["train", *SEGMENT, "--json", str(plain)]) == 0
    same = json.loads(plain.read_text())["aggregate"]
    assert same["test_miou_mean"] == agg["test_miou_mean"]


def test_segmentation_bad_input_is_one_line(
    tmp_path: Path, one_line_error: Callable[..., str]
) -> None:
    assert main(["train", *SEGMENT, "--dataset", "s3dis", "--data-dir", str(tmp_path)]) == 2
    one_line_error("S3DIS")
    assert main(["train", *SEGMENT, "--conv", "gcn"]) == 2
    one_line_error("for task 'segmentation'", "edge")
    assert main(["train", *SEGMENT, "--k", "40"]) == 2  # 40 * dilation 2 > 64 points
    one_line_error("points.k (--k)", "largest dilation")
    assert list(tmp_path.iterdir()) == []  # the data dir is never written
