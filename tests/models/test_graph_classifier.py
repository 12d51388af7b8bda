"""Tests of fathom.models.graph_classifier: readouts, batching invariance, the builder
(``build_model`` with the ``graph`` section's head)."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from fathom.config import ModelConfig
from fathom.errors import ConfigError
from fathom.models.build import build_deep_gnn, build_model
from fathom.models.graph_classifier import GraphClassifier, GraphReadout
from fathom.tasks.graph import GraphTaskConfig


def _random_graph(n: int, p: float, features: int, gen: torch.Generator) -> Data:
    upper = torch.rand(n, n, generator=gen).triu(1) < p
    src, dst = upper.nonzero().t()
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)
    x = torch.randn(n, features, generator=gen)
    return Data(x=x, edge_index=edge_index, y=torch.tensor([0]))


def _graphs(count: int = 5, features: int = 4) -> list[Data]:
    gen = torch.Generator().manual_seed(0)
    return [_random_graph(5 + 2 * i, 0.4, features, gen) for i in range(count)]


def _model(readout: str, **graph: object) -> GraphClassifier:
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(conv="gin", depth=3, hidden=8, norm="batch", dropout=0.5, skip="res"),
        in_channels=4,
        out_channels=3,
        head=GraphTaskConfig(readout=readout, **graph).head(),  # type: ignore[arg-type]
    )
    # Non-trivial running statistics, so eval-mode BatchNorm is not the identity.
    batch = Batch.from_data_list(_graphs())
    model.train()
    with torch.no_grad():
        model(batch.x, batch.edge_index, batch.batch)
    return model.eval()


def _out(model: GraphClassifier, graphs: list[Data]) -> torch.Tensor:
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        return model(batch.x, batch.edge_index, batch.batch)


def _permute_nodes(g: Data, perm: torch.Tensor) -> Data:
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    return Data(x=g.x[perm], edge_index=inverse[g.edge_index], y=g.y)


CASES = [
    ("sum", {}),
    ("mean", {}),
    ("max", {}),
    ("attention", {}),
    ("sum", {"readout_layers": "all"}),
    ("attention", {"readout_layers": "all"}),
    ("sum", {"pool": "topk", "pool_ratio": 0.5}),
    ("mean", {"pool": "sag", "pool_ratio": 0.6, "pool_every": 2}),
]


@pytest.mark.parametrize(("readout", "graph"), CASES)
def test_outputs_do_not_depend_on_graph_order_node_order_or_batching(
    readout: str, graph: dict[str, object]
) -> None:
    model = _model(readout, **graph)
    if graph.get("pool") == "sag":
        # SAGPool scores nodes by tanh of an unnormalised 1-channel GraphConv; tanh rounds to
        # exactly 1.0 in float32 above ~9, and tied scores keep order-dependent nodes. Small
        # scoring weights keep the scores distinct (the invariance holds up to such ties).
        with torch.no_grad():
            for pool in model.pools or []:
                for p in pool.gnn.parameters():
                    p.mul_(0.05)
    graphs = _graphs()
    out = _out(model, graphs)
    assert out.shape == (5, 3)
    order = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(_out(model, [graphs[i] for i in order]), out[order])
    gen = torch.Generator().manual_seed(1)
    shuffled = [_permute_nodes(g, torch.randperm(g.num_nodes, generator=gen)) for g in graphs]
    # Random float features: no tied pooling scores, so TopK / SAG keep the same nodes.
    torch.testing.assert_close(_out(model, shuffled), out, atol=1e-5, rtol=1e-5)
    alone = torch.cat([_out(model, [g]) for g in graphs])
    torch.testing.assert_close(alone, out, atol=1e-5, rtol=1e-5)


def test_readouts_match_closed_forms() -> None:
    x = torch.tensor([[1.0, -2.0], [3.0, 4.0], [5.0, 0.0]])
    batch = torch.tensor([0, 0, 1])
    expected = {
        "sum": [[4.0, 2.0], [5.0, 0.0]],
        "mean": [[2.0, 1.0], [5.0, 0.0]],
        "max": [[3.0, 4.0], [5.0, 0.0]],
    }
    for kind, want in expected.items():
        torch.testing.assert_close(GraphReadout(kind, 2)(x, batch, 2), torch.tensor(want))
    att = GraphReadout("attention", 2)
    # Softmax weights sum to one per graph: a one-node graph reads out its node exactly.
    torch.testing.assert_close(att(x, batch, 2)[1], x[2])
    # A graph with no nodes (e.g. the last graph of an explicit num_graphs) reads out zeros.
    assert GraphReadout("sum", 2)(x, batch, 3)[2].tolist() == [0.0, 0.0]


def test_all_layers_readout_is_the_concatenation_of_every_state() -> None:
    model = _model("sum", readout_layers="all")
    g = _graphs(1)[0]
    with torch.no_grad():
        states = model.gnn.node_states(g.x, g.edge_index)
        rep = model.graph_representation(g.x, g.edge_index, None)
    assert len(states) == 4  # input + 3 blocks
    torch.testing.assert_close(rep[0], torch.cat([s.sum(0) for s in states]))
    assert model.classifier.in_features == 4 + 3 * 8


def test_node_states_leave_forward_unchanged() -> None:
    torch.manual_seed(0)
    gnn = build_deep_gnn(ModelConfig(conv="gcn", depth=3, hidden=8, skip="jk"), 4, 3).eval()
    g = _graphs(1)[0]
    states = gnn.node_states(g.x, g.edge_index)
    assert [s.shape[1] for s in states] == [4, 8, 8]
    head_in = gnn.jk(states[1:])
    torch.testing.assert_close(gnn(g.x, g.edge_index), gnn.head(head_in, g.edge_index))


def test_jk_skip_is_read_out_with_last() -> None:
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(conv="gcn", depth=3, hidden=8, skip="jk", jk="cat"),
        4,
        2,
        head=GraphTaskConfig().head(),
    ).eval()
    assert model.classifier.in_features == 24
    g = _graphs(1)[0]
    assert model(g.x, g.edge_index).shape == (1, 2)


def test_pooling_levels_are_summed() -> None:
    model = _model("sum", pool="topk", pool_every=2)  # 3 blocks: pool after 2, read out 3
    assert model.pools is not None and len(model.pools) == 1 and len(model.readouts) == 2
    model = _model("sum", pool="topk", pool_every=1)
    assert model.pools is not None and len(model.pools) == 3 and len(model.readouts) == 3


def test_training_mode_runs_and_backpropagates_with_drop_edge() -> None:
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(conv="gin", depth=2, hidden=8, norm="batch", drop_edge=0.3),
        4,
        3,
        head=GraphTaskConfig(readout="attention", pool="sag").head(),
    )
    batch = Batch.from_data_list(_graphs())
    out = model(batch.x, batch.edge_index, batch.batch)
    out.sum().backward()
    assert all(p.grad is not None for p in model.classifier.parameters())


@pytest.mark.parametrize(
    ("model_cfg", "graph_cfg", "words"),
    [
        (ModelConfig(arch="sgc"), GraphTaskConfig(), ["model.arch", "'sgc'"]),
        (ModelConfig(depth=2), GraphTaskConfig(pool="topk", readout_layers="all"), ["all"]),
        (ModelConfig(depth=2, skip="jk"), GraphTaskConfig(pool="topk"), ["jk"]),
        (ModelConfig(depth=2), GraphTaskConfig(pool="sag", pool_every=3), ["pool_every", "3"]),
    ],
)
def test_builder_rejects_configs_it_cannot_build(
    model_cfg: ModelConfig, graph_cfg: GraphTaskConfig, words: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        build_model(model_cfg, 4, 2, head=graph_cfg.head())
    assert all(w in str(info.value) for w in words) and "\n" not in str(info.value)


def test_builder_is_seeded() -> None:
    a = _model("attention")
    b = _model("attention")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
