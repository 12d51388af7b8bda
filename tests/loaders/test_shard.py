"""Sharding a loader's epochs over ranks (disjoint, covering, equal batch counts) and a
loader's random state (restored, the next epoch is the one an uninterrupted loader draws)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest
import torch
from torch_geometric.data import Data

from fathom.errors import ConfigError
from fathom.loaders.build import LOADERS, build_loader
from fathom.loaders.shard import (
    EpochDistributedSampler,
    load_loader_state,
    loader_state,
    resolve_shard,
    shard,
)

OPTIONS = {
    "fanouts": "3,2",
    "batch_size": 7,
    "num_workers": 0,
    "num_parts": 6,
    "parts_per_batch": 2,
    "walk_length": 2,
    "sample_coverage": 5,
}


def _graph(n: int = 60, seed: int = 0) -> Data:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (4 * n,), generator=g)
    dst = torch.randint(0, n, (4 * n,), generator=g)
    keep = src != dst
    edge_index = torch.stack([torch.cat([src[keep], dst[keep]]), torch.cat([dst[keep], src[keep]])])
    train = torch.zeros(n, dtype=torch.bool)
    train[torch.randperm(n, generator=g)[:29]] = True  # odd: the last shard is padded
    return Data(
        x=torch.randn(n, 4, generator=g),
        y=torch.randint(0, 3, (n,), generator=g),
        edge_index=edge_index,
        train_mask=train,
        num_nodes=n,
    )


def _signature(batches: Iterable[Data]) -> list[list[int]]:
    return [b.n_id.tolist() for b in batches]


def test_shard_pads_to_equal_disjoint_covering_shares() -> None:
    units = list(range(7))
    shares = [shard(units, r, 3) for r in range(3)]
    assert [len(s) for s in shares] == [3, 3, 3]
    assert sorted(u for s in shares for u in s) == sorted([*units, 0, 1])  # padded with the head
    assert shard(units, 0, 1) == units
    assert shard([0], 2, 4) == [0]  # fewer units than ranks: everyone repeats
    assert shard([], 1, 2) == []


def test_resolve_shard_defaults_to_one_process_and_checks_ranges() -> None:
    assert resolve_shard() == (0, 1)
    assert resolve_shard(1, 3) == (1, 3)
    with pytest.raises(ConfigError, match="rank must lie"):
        resolve_shard(3, 3)


def test_sharded_neighbor_loader_gives_each_rank_a_disjoint_share_of_the_seeds() -> None:
    data = _graph()
    world = 3
    loaders = [
        build_loader("neighbor", data, seed=5, options=OPTIONS, rank=r, world_size=world)
        for r in range(world)
    ]
    per_rank = math.ceil(29 / world)  # 10 seeds each, one padded
    for epoch in range(2):
        seeds = []
        counts = []
        for loader in loaders:
            batches = list(loader)
            counts.append(len(batches))
            seeds.append([s for b in batches for s in b.n_id[: b.batch_size].tolist()])
        assert counts == [math.ceil(per_rank / 7)] * world  # equal batch counts
        assert [len(s) for s in seeds] == [per_rank] * world
        union = [s for share in seeds for s in share]
        train = set(data.train_mask.nonzero().view(-1).tolist())
        assert set(union) == train and len(union) == len(train) + 1  # one seed padded
        if epoch == 0:
            first = seeds
    assert seeds != first  # a new permutation each epoch (seed + epoch)


def test_partition_loaders_shard_groups_of_parts() -> None:
    data = _graph()
    for name in ("random-partition", "cluster"):
        if name == "cluster":
            pytest.importorskip("pymetis")
        world = 2
        loaders = [
            build_loader(name, data, seed=1, options=OPTIONS, rank=r, world_size=world)
            for r in range(world)
        ]
        groups = math.ceil(6 / 2)  # 3 groups of 2 parts: rank 0 takes 2, rank 1 1 + 1 padded
        assert [len(loader) for loader in loaders] == [math.ceil(groups / world)] * world
        batches = [list(loader) for loader in loaders]
        assert [len(b) for b in batches] == [2, 2]
        nodes = [n for b in batches for batch in b for n in batch.n_id.tolist()]
        assert set(nodes) == set(range(data.num_nodes))  # the epoch covers every node
        single = build_loader(name, data, seed=1, options=OPTIONS)
        assert len(single) == groups


def test_saint_ranks_share_the_normalisation_and_draw_their_own_walks() -> None:
    data = _graph()
    single = build_loader("saint", data, seed=2, options=OPTIONS)
    ranks = [
        build_loader("saint", data, seed=2, options=OPTIONS, rank=r, world_size=2) for r in range(2)
    ]
    for loader in ranks:
        assert torch.equal(loader.node_norm, single.node_norm)
        assert len(loader) == math.ceil(len(single) / 2)
    a, b = (_signature(loader) for loader in ranks)
    assert len(a) == len(b) == len(ranks[0]) and a != b


def test_a_loader_that_does_not_shard_is_refused_with_several_processes() -> None:
    assert not LOADERS.get("full").shards
    with pytest.raises(ConfigError, match="'full' cannot be split over 2 processes"):
        build_loader("full", _graph(), seed=0, options=OPTIONS, rank=0, world_size=2)
    assert build_loader("full", _graph(), seed=0, options=OPTIONS) is None


@pytest.mark.parametrize("name", ["neighbor", "random-partition", "saint"])
@pytest.mark.parametrize("world", [1, 2])
def test_restoring_a_loader_state_replays_the_next_epoch(name: str, world: int) -> None:
    data = _graph()
    loader = build_loader(name, data, seed=3, options=OPTIONS, rank=world - 1, world_size=world)
    list(loader)  # epoch 1
    state = loader_state(loader)
    assert state and all(isinstance(v, (torch.Tensor, int)) for v in state.values())
    expected = _signature(loader)  # epoch 2
    fresh = build_loader(name, data, seed=3, options=OPTIONS, rank=world - 1, world_size=world)
    assert _signature(fresh) != expected  # a fresh loader starts at epoch 1
    fresh = build_loader(name, data, seed=3, options=OPTIONS, rank=world - 1, world_size=world)
    load_loader_state(fresh, state)
    assert _signature(fresh) == expected


def test_loader_state_of_full_batch_and_bad_states() -> None:
    assert loader_state(None) == {}
    load_loader_state(None, {})
    with pytest.raises(ConfigError, match="full batch"):
        load_loader_state(None, {"generator": torch.Generator().get_state()})
    loader = build_loader("random-partition", _graph(), seed=0, options=OPTIONS)
    with pytest.raises(ConfigError, match="distributed loader"):
        load_loader_state(loader, {"epoch": 3})


def test_epoch_sampler_advances_by_itself() -> None:
    sampler = EpochDistributedSampler(range(10), num_replicas=2, rank=0, shuffle=True, seed=0)
    first, second = list(sampler), list(sampler)
    assert sampler.epoch == 2 and first != second
    sampler.set_epoch(1)
    assert list(sampler) == second
