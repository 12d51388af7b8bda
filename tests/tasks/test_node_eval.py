"""``train.eval_mode`` of node classification: layer-wise and sampled evaluation give a run the
same metrics as one forward pass (end to end through ``fathom train``), and the modes a task
or model cannot do are refused in one line at config time."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from fathom import config as config_module
from fathom.cli import main
from fathom.config import ExperimentConfig, TrainConfig, apply_overrides, config_hash
from fathom.errors import ConfigError
from fathom.tasks.node import NodeTask
from fathom.train.inference import NodeEvaluation

SMALL = [
    "--dataset",
    "csbm",
    "data.synthetic.num_nodes=300",
    "--epochs",
    "12",
    "--hidden",
    "16",
    "--seed",
    "1",
]


def _run(tmp_path: Path, name: str, *argv: str) -> dict[str, Any]:
    out = tmp_path / f"{name}.json"
    assert main(["train", *SMALL, *argv, "--history", "--json", str(out)]) == 0
    return json.loads(out.read_text())["runs"][0]


def _assert_same_run(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Identical training (the same losses, selected epoch, accuracies) and evaluation
    losses equal to float tolerance."""
    assert a["best_epoch"] == b["best_epoch"]
    for key in ("train_acc", "val_acc", "test_acc"):
        assert a[key] == b[key], key
    for key in ("train_loss", "val_loss", "test_loss"):
        assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    for ha, hb in zip(a["history"], b["history"], strict=True):
        assert ha["val_acc"] == hb["val_acc"]
        assert ha["val_loss"] == pytest.approx(hb["val_loss"], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(
    "model",
    [
        ["--depth", "3", "--conv", "sage", "--loader", "neighbor", "--fanouts", "5,3,2"],
        ["--depth", "4", "--skip", "res", "--norm", "batch", "--loader", "cluster"],
    ],
    ids=["sage-neighbor", "resgcn-cluster"],
)
def test_layerwise_and_sampled_give_the_full_metrics(tmp_path: Path, model: list[str]) -> None:
    full = _run(tmp_path, "full", *model)
    layerwise = _run(
        tmp_path, "layerwise", *model, "--eval-mode", "layerwise", "--eval-chunk", "64"
    )
    sampled = _run(tmp_path, "sampled", *model, "--eval-mode", "sampled", "--eval-chunk", "64")
    assert full["epochs"] == 12 and 0.4 < full["test_acc"] <= 1.0
    _assert_same_run(layerwise, full)
    _assert_same_run(sampled, full)


def test_multi_label_objective_takes_the_evaluation() -> None:
    from fathom.tasks.node import MultiLabelNodeClassification

    evaluation = NodeEvaluation("layerwise", 16)
    objective = MultiLabelNodeClassification(evaluation=evaluation)
    assert objective.evaluation is evaluation


def test_the_objective_gets_the_configured_evaluation() -> None:
    from fathom.data.synthetic import make_synthetic

    cfg = apply_overrides(
        ExperimentConfig(),
        {"train.eval_mode": "sampled", "train.eval_chunk": 7, "train.eval_fanouts": "4,2"},
    )
    data = make_synthetic("csbm", num_nodes=40, seed=0)
    objective = NodeTask().objective(replace(cfg, seed=5), data)
    assert objective.evaluation == NodeEvaluation("sampled", 7, (4, 2), 5)
    assert NodeTask().objective(ExperimentConfig(), data).evaluation is None


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"train.eval_mode": "chunks"}, ["train.eval_mode (--eval-mode)", "full, layerwise"]),
        ({"train.eval_mode": "layerwise", "train.eval_chunk": 0}, ["train.eval_chunk", ">= 1"]),
        ({"train.eval_chunk": 100}, ["train.eval_chunk", "not 'full'"]),
        ({"train.eval_mode": "layerwise", "train.eval_fanouts": "5"}, ["not 'layerwise'"]),
        ({"train.eval_mode": "sampled", "train.eval_fanouts": "0"}, ["train.eval_fanouts"]),
        (
            {"task": "graph", "data.name": "motifs", "train.eval_mode": "layerwise"},
            ["train.eval_mode", "must be full for task 'graph'"],
        ),
        (
            {"task": "link", "train.eval_mode": "sampled"},
            ["must be full for task 'link'"],
        ),
        ({"data.inductive": True, "train.eval_mode": "layerwise"}, ["data.inductive"]),
        ({"model.arch": "dgi", "train.eval_mode": "layerwise"}, ["'dgi'"]),
        (
            {"model.norm": "pair", "train.eval_mode": "sampled"},
            ["model.norm 'pair'", "statistics"],
        ),
    ],
)
def test_refused_in_one_line(overrides: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(ExperimentConfig(), overrides)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_accepted_combinations() -> None:
    for overrides in (
        {"train.eval_mode": "layerwise", "model.norm": "pair", "model.skip": "dense"},
        {"train.eval_mode": "layerwise", "model.arch": "appnp", "train.loader": "neighbor"},
        {"train.eval_mode": "sampled", "train.eval_fanouts": "10,5", "model.conv": "gat"},
        {"train.eval_mode": "layerwise", "model.memory": "reversible", "model.encoder": "linear"},
    ):
        cfg = apply_overrides(ExperimentConfig(), overrides)
        assert cfg.train.eval_mode == overrides["train.eval_mode"]


def test_run_keys_do_not_change_at_the_defaults() -> None:
    defaults = TrainConfig()
    for name in ("eval_mode", "eval_chunk", "eval_fanouts"):
        assert config_module._UNKEYED_AT_DEFAULT[("train", name)] == getattr(defaults, name)
    base = ExperimentConfig()
    layerwise = apply_overrides(base, {"train.eval_mode": "layerwise"})
    assert config_hash(layerwise) != config_hash(base)
    assert config_hash(apply_overrides(base, {"train.eval_mode": "full"})) == config_hash(base)


def test_sampled_evaluation_reads_only_the_split_nodes() -> None:
    from torch_geometric.data import Data

    from fathom.config import ModelConfig
    from fathom.models.build import build_model

    torch.manual_seed(0)
    n = 30
    x = torch.randn(n, 4)
    edge_index = torch.randint(0, n, (2, 90))
    mask = torch.zeros(n, dtype=torch.bool)
    data = Data(x=x, edge_index=edge_index, train_mask=mask.clone(), val_mask=mask.clone())
    data.train_mask[:3] = True
    data.val_mask[10:12] = True
    model = build_model(ModelConfig(conv="sage", depth=2, hidden=8), 4, 2).eval()
    out = NodeEvaluation("sampled", 2).outputs(model, data)
    with torch.no_grad():
        full = model(x, edge_index)
    split = data.train_mask | data.val_mask
    torch.testing.assert_close(out[split], full[split], rtol=1e-5, atol=1e-5)
    assert not out[~split].any()
