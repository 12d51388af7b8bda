"""Tests of link-level mini-batches: fathom's sampler behind PyG's ``LinkLoader`` and
Cluster-GCN batches supervised on their own edges."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import LinkLoader
from torch_geometric.sampler import EdgeSamplerInput
from torch_geometric.utils import k_hop_subgraph

from fathom.data.synthetic import make_synthetic
from fathom.errors import ConfigError, DataError
from fathom.loaders.link import PartitionLinkLoader, build_link_loader
from fathom.loaders.neighbor import NeighborSampler, link_neighbor_loader
from fathom.loaders.partition import PartitionLoader
from fathom.tasks.link import split_edges


def _pairs(t: Tensor) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in t.t()}


def _split(num_nodes: int = 120, seed: int = 0):
    data = make_synthetic(
        "csbm", num_nodes=num_nodes, num_classes=2, feature_dim=6, avg_degree=6.0, seed=seed
    )
    split = split_edges(data, 0.1, 0.1, seed=seed)
    return data, split, split.train_data(data)


def test_link_batches_hold_their_edges_and_never_a_held_out_one() -> None:
    _, split, train = _split()
    held_out = _pairs(split.val_pos) | _pairs(split.test_pos)
    held_out |= {(j, i) for i, j in held_out}
    train_edges = _pairs(train.edge_index)
    loader = link_neighbor_loader(
        train,
        [4, 3],
        edge_label_index=split.train_pos,
        neg_sampling_ratio=2.0,
        batch_size=16,
        shuffle=True,
        seed=3,
    )
    assert isinstance(loader, LinkLoader)
    seen: list[tuple[int, int]] = []
    for batch in loader:
        k = int(batch.edge_label.sum())
        assert batch.edge_label.tolist() == [1.0] * k + [0.0] * (batch.edge_label.numel() - k)
        assert batch.edge_label.numel() == k + 2 * k  # two negatives per positive
        glob = batch.n_id[batch.edge_label_index]
        seen += [tuple(p) for p in glob[:, :k].t().tolist()]
        # every message-passing edge of the batch is a training edge, none held out
        edges = _pairs(batch.n_id[batch.edge_index])
        assert edges <= train_edges and not edges & held_out
        assert torch.equal(batch.x, train.x[batch.n_id])
    # one epoch supervises every training edge exactly once
    assert sorted(seen) == sorted(_pairs(split.train_pos))


def test_full_fanout_gives_the_exact_k_hop_neighbourhood_of_the_endpoints() -> None:
    _, split, train = _split(num_nodes=60)
    sampler = NeighborSampler(train, [-1, -1])
    pos = split.train_pos[:, :5]
    out = sampler.sample_from_edges(EdgeSamplerInput(None, pos[0], pos[1]))
    seeds = torch.cat([pos[0], pos[1]]).unique()
    subset, *_ = k_hop_subgraph(seeds, 2, train.edge_index, num_nodes=train.num_nodes)
    assert set(out.node.tolist()) == set(subset.tolist())
    _, edge_label_index, _, _ = out.metadata
    assert torch.equal(out.node[edge_label_index], pos)


def test_link_batches_repeat_under_a_seed() -> None:
    _, split, train = _split()

    def epoch(seed: int) -> list[Tensor]:
        torch.manual_seed(0)  # PyG's negatives come from the global generator
        loader = link_neighbor_loader(
            train,
            [3, 2],
            edge_label_index=split.train_pos,
            neg_sampling_ratio=1.0,
            batch_size=32,
            shuffle=True,
            seed=seed,
        )
        return [torch.cat([b.n_id, b.n_id[b.edge_label_index].view(-1)]) for b in loader]

    a, b, c = epoch(1), epoch(1), epoch(2)
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(not torch.equal(x, y) for x, y in zip(a, c, strict=False))


def test_sampler_refuses_temporal_and_heterogeneous_link_inputs() -> None:
    _, split, train = _split(num_nodes=40)
    sampler = NeighborSampler(train, [2])
    pos = split.train_pos[:, :3]
    with pytest.raises(ConfigError, match="temporal"):
        sampler.sample_from_edges(EdgeSamplerInput(None, pos[0], pos[1], time=torch.zeros(3)))
    with pytest.raises(ConfigError, match="heterogeneous"):
        sampler.sample_from_edges(
            EdgeSamplerInput(None, pos[0], pos[1], input_type=("a", "to", "a"))
        )


def test_partition_link_batches_supervise_exactly_the_edges_inside_them() -> None:
    _, split, train = _split()
    part = torch.arange(train.num_nodes) % 6
    loader = PartitionLinkLoader(
        PartitionLoader(train, part, parts_per_batch=2, seed=0),
        split.train_pos,
        train.num_nodes,
        neg_ratio=1.5,
    )
    seen: list[tuple[int, int]] = []
    for batch in loader:
        k = int(batch.edge_label.sum())
        assert batch.edge_label.numel() == k + -(-3 * k // 2)
        glob = batch.n_id[batch.edge_label_index]
        inside = set(batch.n_id.tolist())
        assert set(glob.view(-1).tolist()) <= inside
        seen += [tuple(p) for p in glob[:, :k].t().tolist()]
    # each epoch pairs the 6 parts up once: an edge is seen iff both ends share a batch;
    # the batches cover all nodes once, so no edge is seen twice
    assert len(seen) == len(set(seen)) and set(seen) <= _pairs(split.train_pos)
    assert seen  # 3 batches of 2 parts: the edges inside them are supervised


def test_partition_link_loader_checks_its_inputs() -> None:
    _, split, train = _split(num_nodes=30)
    parts = PartitionLoader(train, num_parts=3)
    with pytest.raises(DataError, match=r"\[2, E\]"):
        PartitionLinkLoader(parts, split.train_pos[0], train.num_nodes)
    with pytest.raises(ConfigError, match="neg_ratio"):
        PartitionLinkLoader(parts, split.train_pos, train.num_nodes, neg_ratio=-1)


@pytest.mark.parametrize("name", ["neighbor", "cluster", "random-partition"])
def test_build_link_loader_reads_the_train_options(name: str) -> None:
    _, split, train = _split()
    options = {
        "fanouts": "3,2",
        "batch_size": 50,
        "num_workers": 0,
        "num_parts": 4,
        "parts_per_batch": 2,
    }
    loader = build_link_loader(name, train, split.train_pos, seed=0, neg_ratio=1.0, options=options)
    batches = list(loader)
    assert batches and all("edge_label_index" in b for b in batches)
    if name == "neighbor":
        assert len(batches) == -(-split.train_pos.size(1) // 50)
    assert (
        build_link_loader("full", train, split.train_pos, seed=0, neg_ratio=1.0, options=options)
        is None
    )
    with pytest.raises(ConfigError, match="link prediction"):
        build_link_loader("saint", train, split.train_pos, seed=0, neg_ratio=1.0, options=options)


def test_data_without_edges_is_refused_by_the_sampler() -> None:
    with pytest.raises(DataError):
        NeighborSampler(Data(x=torch.zeros(3, 1), num_nodes=3), [2])
