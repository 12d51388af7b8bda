"""Tests of fathom.experiments.neighbors_match (the Tree-NeighborsMatch runner; its report is
tested in tests/report/test_neighbors_match.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fathom.data.neighbors_match import tree_neighbors_match
from fathom.errors import ConfigError
from fathom.experiments.neighbors_match import (
    ARCH_FLAGS,
    MODELS,
    OFFICIAL_SETTINGS,
    PUBLISHED,
    NeighborsMatchNet,
    run_neighbors_match,
    train_neighbors_match,
)

# r = 2 is easy: a larger step and full batches solve it in a few hundred steps
FAST = dict(eval_every=20, max_epochs=500, lr=1e-2, batch_size=128)


@pytest.mark.parametrize("conv", MODELS)
def test_forward_backward_every_conv(conv: str) -> None:
    torch.manual_seed(0)
    data = tree_neighbors_match(2, num_examples=10, seed=0)
    net = NeighborsMatchNet(conv, 2)
    assert len(net.layers) == 3  # r + 1
    assert len(net.norms) == (3 if ARCH_FLAGS[conv]["layer_norm"] else 0)
    batch = data.batch(torch.arange(10))
    out = net(batch.x, batch.edge_index, batch.root_index)
    assert out.shape == (10, 5)  # L + 1 logits
    torch.nn.functional.cross_entropy(out, batch.y).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name


def test_short_training_solves_radius_2() -> None:
    res = train_neighbors_match("gcn", 2, seed=0, **FAST)
    assert res["train_acc"] >= 0.9
    assert res["stop_reason"] == "solved"
    assert res["model"] == "gcn" and res["radius"] == 2 and res["depth"] == 3
    assert res["num_examples"] == 96 and res["num_train"] == 76
    assert res["epochs"] <= 500 and res["time_s"] > 0


def test_one_layer_cannot_reach_the_leaves() -> None:
    # one layer: the root sees only its (empty) children, so it can only guess the value
    res = train_neighbors_match("gcn", 2, seed=0, num_layers=1, **FAST)
    assert res["depth"] == 1
    assert res["train_acc"] < 0.45


def test_same_seed_same_numbers() -> None:
    kw = dict(eval_every=5, max_epochs=10, num_examples=60, batch_size=16)
    a = train_neighbors_match("gin", 3, seed=4, **kw)
    b = train_neighbors_match("gin", 3, seed=4, **kw)
    a.pop("time_s"), b.pop("time_s")
    assert a == b
    assert a["epochs"] == 10 and a["batch_size"] == 16


def test_official_settings() -> None:
    assert OFFICIAL_SETTINGS[("gcn", 2)] == {"batch_size": 64, "eval_every": 1000, "accum_grad": 1}
    assert OFFICIAL_SETTINGS[("gat", 3)]["batch_size"] == 64
    assert OFFICIAL_SETTINGS[("gin", 5)] == {"batch_size": 1024, "eval_every": 100, "accum_grad": 1}
    assert OFFICIAL_SETTINGS[("gcn", 7)]["batch_size"] == 2048
    assert OFFICIAL_SETTINGS[("ggnn", 8)] == {"batch_size": 512, "eval_every": 100, "accum_grad": 4}
    assert ARCH_FLAGS["ggnn"] == {"layer_norm": False, "activation": False, "residual": False}
    assert ARCH_FLAGS["gat"]["activation"] is False
    assert PUBLISHED[("gcn", 4)] == 0.70 and ("gin", 7) not in PUBLISHED


def test_accum_grad_and_time_limit() -> None:
    res = train_neighbors_match(
        "gat", 2, eval_every=2, max_epochs=100, batch_size=16, accum_grad=2, time_limit_s=1e-3
    )
    assert res["stop_reason"] == "time_limit" and res["epochs"] == 2
    assert res["accum_grad"] == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(model="mlp", radius=2), "unknown model 'mlp'"),
        (dict(model="gcn", radius=9), "radius"),
        (dict(model="gcn", radius=1), "radius"),
        (dict(model="gcn", radius=2, batch_size=0), "batch_size"),
        (dict(model="gcn", radius=2, max_epochs=-1), "max_epochs"),
        (dict(model="gcn", radius=2, max_epochs=999), "max_epochs"),
        (dict(model="gcn", radius=2, time_limit_s=0), "time_limit_s"),
    ],
)
def test_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        train_neighbors_match(**kwargs)


def test_bad_net_and_run_arguments() -> None:
    with pytest.raises(ConfigError, match="divisible by 4"):
        NeighborsMatchNet("gat", 2, hidden=30)
    with pytest.raises(ConfigError, match="unknown model"):
        run_neighbors_match(["gcn", "sage"], [2])
    with pytest.raises(ConfigError, match="radius"):
        run_neighbors_match(["gcn"], [2, 10])


def test_run_writes_its_rows_after_each_run(tmp_path: Path) -> None:
    messages: list[str] = []
    json_path = tmp_path / "partial.json"
    rows = run_neighbors_match(
        ["gcn", "ggnn"],
        [2, 3],
        seeds=[0],
        json_path=json_path,
        progress=messages.append,
        num_examples=40,
        max_epochs=2,
        eval_every=1,
        batch_size=32,
    )
    assert [(r["model"], r["radius"]) for r in rows] == [
        ("gcn", 2),
        ("gcn", 3),
        ("ggnn", 2),
        ("ggnn", 3),
    ]
    assert all(r["published"] == 1.0 and r["num_examples"] == 40 for r in rows)
    assert any(m.startswith("done gcn r=3") for m in messages)
    assert any("train acc" in m and "epoch 1:" in m for m in messages)
    saved = json.loads(json_path.read_text())
    assert len(saved["rows"]) == 4
    assert saved["task"] == "tree-neighbors-match" and "Figure 3" in saved["paper"]
    assert {"model": "gin", "radius": 6, "train_acc": 0.2} in saved["published"]
