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
    model_config,
    run_neighbors_match,
    train_neighbors_match,
)
from fathom.models.build import Head, build_model

# r = 2 is easy: a larger step and full batches solve it in a few hundred steps
FAST = dict(eval_every=20, max_epochs=500, lr=1e-2, batch_size=128)


@pytest.mark.parametrize("conv", MODELS)
def test_forward_backward_every_conv(conv: str) -> None:
    torch.manual_seed(0)
    data = tree_neighbors_match(2, num_examples=10, seed=0)
    net = build_model(model_config(conv, 2), 5, 5, head=Head.of("root"))
    assert len(net.gnn.blocks) == 3  # r + 1
    norms = [b.norm for b in net.gnn.blocks if isinstance(b.norm, torch.nn.LayerNorm)]
    assert len(norms) == (3 if ARCH_FLAGS[conv]["layer_norm"] else 0)
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
        model_config("gat", 2, hidden=30)
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


class _OfficialNet(torch.nn.Module):
    """The official model (tech-srl/bottleneck ``models/graph_model.py``), as fathom had it
    before NeighborsMatch moved onto the zoo: the reference the zoo model must equal."""

    def __init__(self, conv: str, radius: int, hidden: int = 32) -> None:
        super().__init__()
        from torch_geometric.nn import GATConv, GatedGraphConv, GCNConv, GINConv

        def make() -> torch.nn.Module:
            if conv == "gcn":
                return GCNConv(hidden, hidden)
            if conv == "gin":
                nn = torch.nn
                return GINConv(
                    nn.Sequential(
                        nn.Linear(hidden, hidden),
                        nn.BatchNorm1d(hidden),
                        nn.ReLU(),
                        nn.Linear(hidden, hidden),
                        nn.BatchNorm1d(hidden),
                        nn.ReLU(),
                    )
                )
            if conv == "gat":
                return GATConv(hidden, hidden // 4, heads=4)
            return GatedGraphConv(out_channels=hidden, num_layers=1)

        flags = ARCH_FLAGS[conv]
        self.flags = flags
        symbols = 2**radius + 1
        self.key_embedding = torch.nn.Embedding(symbols, hidden)
        self.value_embedding = torch.nn.Embedding(symbols, hidden)
        self.layers = torch.nn.ModuleList(make() for _ in range(radius + 1))
        self.norms = torch.nn.ModuleList(
            torch.nn.LayerNorm(hidden) for _ in range(radius + 1 if flags["layer_norm"] else 0)
        )
        self.out = torch.nn.Linear(hidden, symbols, bias=False)

    def forward(self, x, edge_index, root_index):  # type: ignore[no-untyped-def]
        h = self.key_embedding(x[:, 0]) + self.value_embedding(x[:, 1])
        for i, layer in enumerate(self.layers):
            new = layer(h, edge_index)
            if self.flags["activation"]:
                new = torch.relu(new)
            h = h + new if self.flags["residual"] else new
            if self.flags["layer_norm"]:
                h = self.norms[i](h)
        return self.out(h[root_index])


@pytest.mark.parametrize("conv", MODELS)
def test_zoo_model_is_the_official_model(conv: str) -> None:
    # same seed -> same parameters in the same order, and the same logits and gradients
    torch.manual_seed(3)
    official = _OfficialNet(conv, 2)
    torch.manual_seed(3)
    zoo = build_model(model_config(conv, 2), 5, 5, head=Head.of("root"))

    def params(model: torch.nn.Module) -> list[torch.Tensor]:
        # LayerNorms (ones and zeros, no random draw) sit between the convs in the zoo's
        # blocks and after them in the official model: compare them apart
        norms = {
            id(p)
            for m in model.modules()
            if isinstance(m, torch.nn.LayerNorm)
            for p in m.parameters()
        }
        return [p for p in model.parameters() if id(p) not in norms] + [
            p for p in model.parameters() if id(p) in norms
        ]

    ours, theirs = params(zoo), params(official)
    assert [tuple(p.shape) for p in ours] == [tuple(p.shape) for p in theirs]
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    data = tree_neighbors_match(2, num_examples=12, seed=1)
    batch = data.batch(torch.arange(12))
    a = zoo(batch.x, batch.edge_index, batch.root_index)
    b = official(batch.x, batch.edge_index, batch.root_index)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    a.sum().backward()
    b.sum().backward()
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6)
