"""Tests of fathom.tasks.link: edge split (leakage), negatives, the objective, a link run
(``train_one``). The decoders and ``LinkModel`` are tested in tests/models/test_link.py."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from fathom.config import ExperimentConfig, ModelConfig, TrainConfig
from fathom.data.synthetic import make_synthetic
from fathom.errors import ConfigError, DataError
from fathom.experiments.run import train_one
from fathom.models.link import DotDecoder, LinkModel
from fathom.tasks import link
from fathom.tasks.link import (
    LinkPrediction,
    LinkTaskConfig,
    NonEdgeSampler,
    sample_non_edges,
    split_edges,
    undirected_edges,
)


def _graph(seed: int = 0, num_nodes: int = 80) -> Data:
    return make_synthetic(
        "csbm", num_nodes=num_nodes, num_classes=2, feature_dim=8, avg_degree=8.0, seed=seed
    )


def _pairs(t: Tensor) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in t.t()}


def _both(t: Tensor) -> set[tuple[int, int]]:
    return _pairs(t) | _pairs(t.flip(0))


def test_undirected_edges_counts_each_edge_once_and_drops_self_loops() -> None:
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 3], [1, 0, 2, 1, 3, 0]])
    assert undirected_edges(edge_index).tolist() == [[0, 0, 1], [1, 3, 2]]


def test_undirected_edges_equal_the_sorted_unique_pairs() -> None:
    """Keyed pairs give exactly ``unique(dim=1)`` of the canonical pairs (its order too), on
    random multigraphs with loops, duplicates and both orientations; and nothing from none."""
    generator = torch.Generator().manual_seed(0)
    for n, m in ((5, 30), (300, 2000), (10_000, 500)):
        edge_index = torch.randint(n, (2, m), generator=generator)
        edge_index = torch.cat([edge_index, edge_index[:, : m // 3].flip(0)], 1)
        row, col = edge_index
        keep = row != col
        pairs = torch.stack([torch.minimum(row, col), torch.maximum(row, col)])[:, keep]
        assert torch.equal(undirected_edges(edge_index), torch.unique(pairs, dim=1))
    assert undirected_edges(torch.tensor([[2, 4], [2, 4]])).shape == (2, 0)
    assert undirected_edges(torch.empty(2, 0, dtype=torch.long)).shape == (2, 0)


def test_split_has_no_leakage_and_covers_every_edge_once() -> None:
    data = _graph()
    split = split_edges(data, val_fraction=0.1, test_fraction=0.2, seed=3)
    full = _pairs(undirected_edges(data.edge_index))
    train, val, test = _pairs(split.train_pos), _pairs(split.val_pos), _pairs(split.test_pos)
    num_edges = len(full)
    assert len(val) == math.floor(0.1 * num_edges) and len(test) == math.floor(0.2 * num_edges)
    # every undirected edge in exactly one split
    assert train | val | test == full
    assert len(train) + len(val) + len(test) == num_edges
    # the message-passing graph holds both directions of the training edges and nothing else
    mp = _pairs(split.train_edge_index)
    assert mp == _both(split.train_pos)
    assert split.train_edge_index.size(1) == 2 * len(train)
    assert not mp & (_both(split.val_pos) | _both(split.test_pos))
    # negatives: as many as positives, canonical, no self loops, no duplicates, not edges of
    # the full graph in either direction, disjoint between the splits
    negs = [split.val_neg, split.test_neg, split.train_eval_neg]
    assert split.val_neg.size(1) == len(val) and split.test_neg.size(1) == len(test)
    for neg in negs:
        assert bool((neg[0] < neg[1]).all())
        assert len(_pairs(neg)) == neg.size(1)
        assert not _both(neg) & full
    assert not _pairs(split.val_neg) & _pairs(split.test_neg)
    assert not _pairs(split.train_eval_neg) & (_pairs(split.val_neg) | _pairs(split.test_neg))
    assert _pairs(split.train_eval_pos) <= train
    assert split.train_eval_pos.size(1) == split.train_eval_neg.size(1) == len(test)


def test_split_is_seeded_and_leaves_the_global_generator_alone() -> None:
    data = _graph()
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = split_edges(data, 0.1, 0.1, seed=7)
    assert torch.equal(torch.rand(1), expected)
    b = split_edges(data, 0.1, 0.1, seed=7)
    c = split_edges(data, 0.1, 0.1, seed=8)
    for name in ("train_edge_index", "val_pos", "val_neg", "test_pos", "test_neg"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.test_pos, c.test_pos)


def test_split_of_a_graph_without_edges_raises_a_one_line_data_error() -> None:
    data = Data(x=torch.ones(5, 2), edge_index=torch.empty(2, 0, dtype=torch.long))
    with pytest.raises(DataError, match="needs edges") as info:
        split_edges(data)
    assert "\n" not in str(info.value)


def test_fractions_leaving_no_training_edge_raise_a_config_error() -> None:
    triangle = Data(x=torch.ones(4, 1), edge_index=torch.tensor([[0, 1, 2], [1, 2, 0]]))
    # 3 edges: at least 1 for val and 1 for test leaves 1 to train
    assert split_edges(triangle, 0.1, 0.1).train_pos.size(1) == 1
    path = Data(x=torch.ones(3, 1), edge_index=torch.tensor([[0, 1], [1, 2]]))
    with pytest.raises(ConfigError, match="leave no training edge of 2") as info:
        split_edges(path, 0.1, 0.1)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"link\.test_fraction"):
        split_edges(triangle, 0.1, 1.0)


def test_sample_non_edges_draws_distinct_non_edges_from_the_global_seed() -> None:
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    torch.manual_seed(0)
    a = sample_non_edges(edge_index, 30, 100)
    torch.manual_seed(0)
    b = sample_non_edges(edge_index, 30, 100)
    assert torch.equal(a, b)
    assert a.shape == (2, 100) and bool((a[0] < a[1]).all())
    assert len(_pairs(a)) == 100
    assert not _pairs(a) & _both(edge_index)


def test_sample_non_edges_on_a_dense_graph_enumerates_the_few_left() -> None:
    # complete graph on 6 nodes minus {0,1}, {2,5}: exactly two non-edges remain
    full = torch.triu_indices(6, 6, 1)
    keep = ~(((full[0] == 0) & (full[1] == 1)) | ((full[0] == 2) & (full[1] == 5)))
    edges = full[:, keep]
    assert _pairs(sample_non_edges(edges, 6, 2)) == {(0, 1), (2, 5)}
    with pytest.raises(DataError, match="only 2 node pairs"):
        sample_non_edges(edges, 6, 3)
    excluded = sample_non_edges(edges, 6, 1, exclude=torch.tensor([[5], [2]]))
    assert _pairs(excluded) == {(0, 1)}


def test_a_sampler_draws_what_sample_non_edges_draws_step_after_step() -> None:
    # the sampler tests membership in its bitmap, sample_non_edges (one draw) by binary search
    graph = _graph(3)
    sampler = NonEdgeSampler(graph.edge_index, graph.num_nodes)
    assert sampler._bitmap is not None
    torch.manual_seed(7)
    reused = [sampler.sample(200) for _ in range(3)]
    torch.manual_seed(7)
    fresh = [sample_non_edges(graph.edge_index, graph.num_nodes, 200) for _ in range(3)]
    for a, b in zip(reused, fresh, strict=True):
        assert torch.equal(a, b)
        assert not _pairs(a) & _both(graph.edge_index)
    assert sampler.sample(0).shape == (2, 0)


@pytest.mark.parametrize("lookup", ["bitmap", "too large", "off"])
def test_the_samplers_membership_test_is_isin(lookup: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if lookup == "too large":  # a graph too large for the bitmap: binary search in the keys
        monkeypatch.setattr(link, "_BITMAP_MAX_BYTES", 0)
    graph = _graph(4)
    sampler = NonEdgeSampler(graph.edge_index, graph.num_nodes, bitmap=lookup != "off")
    assert (sampler._bitmap is not None) == (lookup == "bitmap")
    keys = torch.randint(graph.num_nodes**2, (5000,), generator=torch.Generator().manual_seed(0))
    keys = torch.cat([keys, sampler.forbidden, torch.tensor([0, graph.num_nodes**2 - 1])])
    assert torch.equal(sampler._allowed(keys), ~torch.isin(keys, sampler.forbidden))
    empty = NonEdgeSampler(torch.empty(2, 0, dtype=torch.long), 5)
    assert bool(empty._allowed(torch.arange(25)).all())


class FixedEmbedding(nn.Module):
    """Returns learnable embeddings; records the edge_index it was given and its mode."""

    def __init__(self, z: Tensor) -> None:
        super().__init__()
        self.z = nn.Parameter(z.clone())
        self.calls: list[tuple[Tensor, bool]] = []

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        self.calls.append((edge_index, self.training))
        return self.z


def test_task_loss_and_evaluate_use_only_the_training_graph() -> None:
    data = _graph()
    split = split_edges(data, 0.1, 0.1, seed=0)
    encoder = FixedEmbedding(torch.zeros(data.num_nodes, 4))
    model = LinkModel(encoder, DotDecoder())
    task = LinkPrediction(split, neg_ratio=2.0, hits_k=5)
    # all logits 0: BCE is log 2 whatever the labels
    assert task.loss(model, split.train_data(data)).item() == pytest.approx(math.log(2))
    metrics = task.evaluate(model, split.train_data(data))
    assert set(metrics) == {
        f"{s}_{m}" for s in ("train", "val", "test") for m in ("auc", "ap", "hits", "loss")
    }
    assert metrics["val_auc"] == 0.5 and metrics["test_loss"] == pytest.approx(math.log(2))
    assert metrics["val_hits"] == 0.0  # every positive ties the K-th negative
    assert [mode for _, mode in encoder.calls] == [True, False]
    assert all(torch.equal(ei, split.train_edge_index) for ei, _ in encoder.calls)
    assert model.training


def test_task_rejects_data_of_another_graph() -> None:
    split = split_edges(_graph(), 0.1, 0.1)
    model = LinkModel(FixedEmbedding(torch.zeros(80, 2)), DotDecoder())
    with pytest.raises(DataError, match="80"):
        LinkPrediction(split).loss(model, Data(x=torch.zeros(5, 2)))


def _cfg(**link: object) -> ExperimentConfig:
    return ExperimentConfig(
        model=ModelConfig(arch="gae", hidden=16, dropout=0.0),
        train=TrainConfig(epochs=30, lr=0.01, weight_decay=0.0, patience=0),
        task="link",
        link=replace(LinkTaskConfig(val_fraction=0.1, test_fraction=0.1), **link),
        seed=1,
    ).validate()


@pytest.mark.parametrize("decoder", ["dot", "hadamard", "mlp"])
def test_link_run_is_deterministic_and_learns(decoder: str) -> None:
    data = _graph(num_nodes=100)
    cfg = _cfg(decoder=decoder)
    a, b = train_one(cfg, data), train_one(cfg, data)
    assert a.status == "done" and a.epochs == 30
    assert a.metrics == b.metrics and a.best_epoch == b.best_epoch
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert a.history[-1]["loss"] < a.history[0]["loss"]
    assert all(isinstance(v, float) for v in a.metrics.values())
    other = train_one(replace(cfg, seed=2), data)
    assert other.metrics != a.metrics


@pytest.mark.parametrize(
    ("loader", "options"),
    [("neighbor", {"fanouts": "5,5", "batch_size": 64}), ("random-partition", {"num_parts": 4})],
)
def test_link_run_on_mini_batches_is_deterministic_and_learns(
    loader: str, options: dict[str, object]
) -> None:
    data = _graph(num_nodes=100)
    base = _cfg()
    cfg = replace(base, train=replace(base.train, loader=loader, **options)).validate()
    a, b = train_one(cfg, data), train_one(cfg, data)
    assert a.status == "done" and a.metrics == b.metrics
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert a.history[-1]["loss"] < a.history[0]["loss"]
    full = train_one(base, data)
    assert a.metrics != full.metrics  # the batches really changed the training
    # as good as full batch on this small graph (full batch: 0.56 here)
    assert a.metrics["val_auc"] > full.metrics["val_auc"] - 0.05


@pytest.mark.parametrize(
    ("task", "train", "message"),
    [
        ("link", {"loader": "saint"}, "must be full, neighbor, cluster, random-partition"),
        ("link", {"fanouts": "3,3"}, "applies to train.loader neighbor"),
        ("link", {"loader": "neighbor", "num_parts": 4}, "applies to train.loader"),
        ("autoencoder", {"loader": "neighbor"}, "must be full for task 'autoencoder'"),
    ],
)
def test_loaders_a_link_task_cannot_use_are_refused(
    task: str, train: dict[str, object], message: str
) -> None:
    base = _cfg()
    cfg = replace(base, task=task, train=replace(base.train, **train))
    with pytest.raises(ConfigError, match=message):
        cfg.validate()
