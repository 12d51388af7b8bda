"""Trimming a neighbour-sampled batch to what its seeds read (fathom.nn.trim): the seeds'
outputs, gradients and every random draw are those of the untrimmed forward pass."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch_geometric.data import Data

from fathom.config import ModelConfig
from fathom.loaders import neighbor_loader
from fathom.loaders.csr import to_csr
from fathom.loaders.neighbor import sample_neighbors
from fathom.models.build import build_model
from fathom.nn.dropouts import Dropout
from fathom.nn.trim import HopGraph, trim_kwargs

N, F_IN, C = 300, 12, 4


def _graph(seed: int = 0) -> Data:
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, N, (2, 2400), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    x = torch.randn(N, F_IN, generator=g)
    y = torch.randint(0, C, (N,), generator=g)
    return Data(x=x, edge_index=ei, y=y, num_nodes=N)


def _batch(data: Data, fanouts: list[int], seeds: int = 16) -> Data:
    loader = neighbor_loader(data, fanouts, batch_size=seeds, shuffle=True, seed=3)
    return next(iter(loader))


def _model(**overrides: object) -> torch.nn.Module:
    cfg = ModelConfig(**{"conv": "sage", "depth": 3, "hidden": 16, "dropout": 0.5, **overrides})
    torch.manual_seed(0)
    return build_model(cfg, F_IN, C)


def _both(model: torch.nn.Module, batch: Data, seed: int = 7) -> tuple[Tensor, Tensor, int]:
    """(untrimmed seed rows, trimmed output, seeds), each pass from the same RNG state."""
    kwargs = trim_kwargs(model, batch)
    assert kwargs, "the model and batch should be trimmable"
    torch.manual_seed(seed)
    full = model(batch.x, batch.edge_index)
    after_full = torch.rand(3)
    torch.manual_seed(seed)
    trimmed = model(batch.x, batch.edge_index, **kwargs)
    after_trimmed = torch.rand(3)
    assert torch.equal(after_full, after_trimmed), "trimming changed the random stream"
    return full[: batch.batch_size], trimmed, batch.batch_size


MODELS = {
    "sage": {},
    "sage-res-layernorm-encoder": {"skip": "res", "norm": "layer", "encoder": "linear"},
    "sage-jk-linear-head": {"skip": "jk", "head": "linear", "encoder": "linear"},
    "sage-dense-nodenorm": {"skip": "dense", "norm": "node"},
    "sage-dropedge-dropnode": {"drop_edge": 0.3, "drop_node": 0.1},
    "sage-pre-activation": {"skip": "res+", "norm": "layer", "encoder": "linear"},
}


@pytest.mark.parametrize("name", MODELS)
def test_trimmed_training_pass_equals_the_untrimmed_seed_rows(name: str) -> None:
    model = _model(**MODELS[name])
    model.train()
    batch = _batch(_graph(), [5, 4, 3])
    full, trimmed, seeds = _both(model, batch)
    assert trimmed.shape == (seeds, C)
    torch.testing.assert_close(trimmed, full, rtol=1e-5, atol=1e-6)


def test_trimmed_gradients_equal_the_untrimmed_ones() -> None:
    model = _model(skip="res", norm="layer", encoder="linear")
    model.train()
    batch = _batch(_graph(1), [6, 3, 2])
    grads = []
    for trim in ({}, trim_kwargs(model, batch)):
        model.zero_grad()
        torch.manual_seed(11)
        out = model(batch.x, batch.edge_index, **trim)[: batch.batch_size]
        torch.nn.functional.cross_entropy(out, batch.y[: batch.batch_size]).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_fewer_or_more_hops_than_layers_and_eval_mode() -> None:
    data = _graph(2)
    for overrides in ({"depth": 2}, {"depth": 2, "conv": "gat", "heads": 2}):
        model = _model(**overrides)
        model.eval()
        for fanouts in ([4], [4, 3], [4, 3, 2, 2]):
            batch = _batch(data, fanouts)
            full, trimmed, _ = _both(model, batch)
            torch.testing.assert_close(trimmed, full, rtol=1e-5, atol=1e-6)


def test_attention_dropout_is_trimmed_in_evaluation_only() -> None:
    model = _model(conv="gat", heads=2)
    assert "drops attention per edge" in (model.trim_support() or "")
    model.eval()
    assert model.trim_support() is None


def test_models_that_read_other_rows_are_not_trimmed() -> None:
    batch = _batch(_graph(), [5, 4, 3])
    for overrides, reason in (
        ({"conv": "gcn"}, "GCNConv"),
        ({"norm": "batch"}, "BatchNorm1d"),
        ({"norm": "pair"}, "statistics over nodes"),
        ({"memory": "checkpoint"}, "checkpoint"),
    ):
        model = _model(**overrides)
        assert reason in (model.trim_support() or "")
        assert trim_kwargs(model, batch) == {}
        with pytest.raises(ValueError, match="trimmed forward pass"):
            model(
                batch.x,
                batch.edge_index,
                num_sampled_nodes_per_hop=[1],
                num_sampled_edges_per_hop=[0],
            )
    # a full-graph batch has no per-hop counts: nothing to trim
    assert trim_kwargs(_model(), _graph()) == {}


def test_hop_graph_layers_and_bad_counts() -> None:
    ei = torch.tensor([[1, 2, 3, 4, 5], [0, 0, 1, 2, 3]])
    graph = HopGraph(ei, [1, 2, 2, 1], [2, 2, 1], num_layers=2)
    first, second = graph.layer(1), graph.layer(2)
    assert (first.num_in, first.num_out, first.edge_index.size(1)) == (5, 3, 4)
    assert (second.num_in, second.num_out, second.edge_index.size(1)) == (3, 1, 2)
    assert graph.num_rows == 6
    thinned = graph.thinned(torch.tensor([True, False, True, True, False]))
    assert thinned.num_sampled_edges == [1, 2, 0]
    with pytest.raises(ValueError, match="add up to 4"):
        HopGraph(ei, [1, 2, 2, 1], [2, 2], num_layers=2)


def test_dropout_rows_draws_the_whole_mask() -> None:
    drop = Dropout(0.5)
    x = torch.randn(40, 8)
    torch.manual_seed(0)
    whole = drop(x)
    torch.manual_seed(0)
    lead = drop(x[:25], rows=40)
    assert torch.equal(lead, whole[:25])
    with pytest.raises(ValueError, match="at least 25 rows"):
        drop(x[:25], rows=10)


def test_sampled_evaluation_trims_and_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    from fathom.train import inference

    model = _model()
    data = _graph(4)
    nodes = torch.arange(50)
    trimmed = inference.sampled_inference(
        model, data.x, data.edge_index, nodes=nodes, fanouts=[4, 3]
    )
    monkeypatch.setattr(inference, "trim_kwargs", lambda *_: {})
    full = inference.sampled_inference(model, data.x, data.edge_index, nodes=nodes, fanouts=[4, 3])
    torch.testing.assert_close(trimmed, full, rtol=1e-5, atol=1e-6)


def test_sampler_counts_match_the_batch() -> None:
    data = _graph()
    sub = sample_neighbors(to_csr(data.edge_index, N), torch.arange(8), [3, 2])
    batch = _batch(data, [3, 2], seeds=8)
    assert sum(sub.num_sampled_edges) == sub.edge_index.size(1)
    assert sum(batch.num_sampled_edges) == batch.edge_index.size(1)
    assert sum(batch.num_sampled_nodes) == batch.num_nodes


def test_node_classification_loss_trims_a_sampled_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The training loss of a neighbour-sampled batch (what `fathom train` computes) is the
    untrimmed one, and the model is called trimmed."""
    from fathom.tasks import node

    data = _graph(5)
    data.train_mask = torch.ones(N, dtype=torch.bool)
    batch = _batch(data, [5, 4, 3])
    model = _model(skip="res", norm="layer")
    model.train()
    objective = node.NodeClassification()
    calls: list[dict[str, object]] = []
    forward = type(model).forward

    def spy(self: torch.nn.Module, *args: object, **kwargs: object) -> Tensor:
        calls.append(kwargs)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", spy)
    torch.manual_seed(2)
    trimmed = objective.loss(model, batch)
    monkeypatch.setattr(node, "trim_kwargs", lambda *_: {})
    torch.manual_seed(2)
    full = objective.loss(model, batch)
    assert "num_sampled_nodes_per_hop" in calls[0] and calls[1] == {}
    torch.testing.assert_close(trimmed, full, rtol=1e-6, atol=1e-7)
