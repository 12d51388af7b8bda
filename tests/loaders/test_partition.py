"""Cluster-GCN partitions and the PartitionLoader (fathom.loaders.partition)."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from fathom.errors import ConfigError, DataError
from fathom.loaders.partition import PartitionLoader, metis_partition, random_partition


def _geometric_graph(n: int = 300, radius: float = 0.1, seed: int = 0) -> Tensor:
    """A random geometric graph in the unit square (both directions of every edge)."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(n, 2, generator=g)
    adj = torch.cdist(pos, pos) < radius
    adj.fill_diagonal_(False)
    return adj.nonzero().t().contiguous()


def _two_cliques(k: int = 10) -> Tensor:
    """Two cliques of ``k`` nodes (0..k-1 and k..2k-1) joined by the edge (k-1, k)."""
    block = torch.ones(k, k, dtype=torch.bool)
    adj = torch.block_diag(block, block)
    adj[k - 1, k] = adj[k, k - 1] = True
    adj.fill_diagonal_(False)
    return adj.nonzero().t().contiguous()


def _cut(edge_index: Tensor, part: Tensor) -> int:
    return int((part[edge_index[0]] != part[edge_index[1]]).sum())


def _data(edge_index: Tensor, n: int, seed: int = 0) -> Data:
    g = torch.Generator().manual_seed(seed)
    return Data(
        x=torch.randn(n, 4, generator=g),
        y=torch.randint(0, 3, (n,), generator=g),
        edge_index=edge_index,
        edge_attr=torch.randn(edge_index.size(1), 2, generator=g),
        train_mask=torch.rand(n, generator=g) < 0.5,
        num_nodes=n,
    )


def _naive_induced(edge_index: Tensor, n_id: Tensor) -> Tensor:
    inside = torch.isin(edge_index[0], n_id) & torch.isin(edge_index[1], n_id)
    return inside.nonzero().view(-1)


def _check_batch(data: Data, batch: Data) -> None:
    """``batch`` is the subgraph of ``data`` induced by ``batch.n_id``, attributes sliced."""
    n_id, e_id = batch.n_id, batch.e_id
    assert torch.equal(n_id, torch.unique(n_id))  # ascending, no repeats
    assert torch.equal(e_id, _naive_induced(data.edge_index, n_id))
    assert torch.equal(n_id[batch.edge_index], data.edge_index[:, e_id])
    assert batch.num_nodes == n_id.numel()
    for key in ("x", "y", "train_mask"):
        assert torch.equal(batch[key], data[key][n_id])
    assert torch.equal(batch.edge_attr, data.edge_attr[e_id])


# ---------------------------------------------------------------------------- partitions


def test_random_partition_balanced_and_seeded() -> None:
    part = random_partition(103, 10, generator=torch.Generator().manual_seed(0))
    assert part.shape == (103,) and part.dtype == torch.long
    sizes = torch.bincount(part, minlength=10)
    assert sizes.numel() == 10 and int(sizes.sum()) == 103
    assert int(sizes.max() - sizes.min()) <= 1
    again = random_partition(103, 10, generator=torch.Generator().manual_seed(0))
    other = random_partition(103, 10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(part, again) and not torch.equal(part, other)


@pytest.mark.parametrize("num_parts", [0, 11])
def test_random_partition_bad_num_parts(num_parts: int) -> None:
    with pytest.raises(ConfigError, match="num_parts"):
        random_partition(10, num_parts)


def test_metis_finds_two_communities() -> None:
    part = metis_partition(_two_cliques(10), 20, 2, seed=0)
    assert part.shape == (20,) and part.dtype == torch.long
    assert part[:10].unique().numel() == 1 and part[10:].unique().numel() == 1
    assert part[0] != part[10]


def test_metis_cuts_fewer_edges_than_random() -> None:
    edge_index = _geometric_graph()
    metis = metis_partition(edge_index, 300, 8, seed=0)
    rand = random_partition(300, 8, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(metis, minlength=8).min() > 0  # every node in one of 8 parts
    assert _cut(edge_index, metis) < 0.5 * _cut(edge_index, rand)


def test_metis_seeded_and_tolerant() -> None:
    # directed edges, a self loop, a repeated edge and an isolated node (19)
    edge_index = _two_cliques(8)
    extra = torch.tensor([[3, 3, 0], [3, 4, 1]])
    edge_index = torch.cat([edge_index[:, edge_index[0] < edge_index[1]], extra], 1)
    a = metis_partition(edge_index, 17, 2, seed=3)
    assert torch.equal(a, metis_partition(edge_index, 17, 2, seed=3))
    assert a.shape == (17,) and set(a.tolist()) == {0, 1}
    assert a[:8].unique().numel() == 1 and a[8:16].unique().numel() == 1


@pytest.mark.parametrize("num_parts", [1, 21])
def test_metis_bad_num_parts(num_parts: int) -> None:
    with pytest.raises(ConfigError, match="num_parts") as info:
        metis_partition(_two_cliques(10), 20, num_parts)
    assert "\n" not in str(info.value)


def test_metis_without_pymetis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymetis", None)
    with pytest.raises(ConfigError, match="pip install pymetis"):
        metis_partition(_two_cliques(10), 20, 2)


# ---------------------------------------------------------------------------- the loader


def test_loader_epoch_covers_every_node_once_with_induced_batches() -> None:
    edge_index = _geometric_graph()
    data = _data(edge_index, 300)
    part = metis_partition(edge_index, 300, 10, seed=0)
    loader = PartitionLoader(data, part, parts_per_batch=3, seed=0)
    assert len(loader) == 4
    batches = list(loader)
    assert len(batches) == 4
    seen = torch.cat([b.n_id for b in batches])
    assert torch.equal(seen.sort().values, torch.arange(300))
    for batch in batches:
        _check_batch(data, batch)
    # the last group holds one part, the others three
    assert [part[b.n_id].unique().numel() for b in batches] == [3, 3, 3, 1]


def test_parts_per_batch_keeps_between_part_edges() -> None:
    edge_index = _geometric_graph()
    data = _data(edge_index, 300)
    part = metis_partition(edge_index, 300, 10, seed=0)
    between = 0
    for batch in PartitionLoader(data, part, parts_per_batch=2, seed=1):
        p = part[batch.n_id]
        between += int((p[batch.edge_index[0]] != p[batch.edge_index[1]]).sum())
    assert between > 0
    one = sum(b.e_id.numel() for b in PartitionLoader(data, part, seed=1))
    assert one == edge_index.size(1) - _cut(edge_index, part)


def test_loader_is_seeded() -> None:
    edge_index = _geometric_graph(100, 0.2)
    data = _data(edge_index, 100)
    part = random_partition(100, 7, generator=torch.Generator().manual_seed(0))

    def epochs(seed: int) -> list[list[Tensor]]:
        loader = PartitionLoader(data, part, parts_per_batch=2, seed=seed)
        return [[b.n_id for b in loader] for _ in range(2)]

    a, b, c = epochs(0), epochs(0), epochs(5)
    same = lambda u, v: all(torch.equal(s, t) for s, t in zip(u, v, strict=True))  # noqa: E731
    assert same(a[0], b[0]) and same(a[1], b[1])
    assert not same(a[0], a[1])  # a new order every epoch
    assert not same(a[0], c[0])
    unshuffled = [b.n_id for b in PartitionLoader(data, part, shuffle=False)]
    assert all(torch.equal(n, (part == i).nonzero().view(-1)) for i, n in enumerate(unshuffled))


def test_random_repartition_every_epoch() -> None:
    edge_index = _geometric_graph(100, 0.2)
    data = _data(edge_index, 100)
    loader = PartitionLoader(data, num_parts=4, seed=0)
    assert len(loader) == 4
    first = [b.n_id for b in loader]
    second = [b.n_id for b in loader]
    for epoch in (first, second):
        assert torch.equal(torch.cat(epoch).sort().values, torch.arange(100))
        assert sorted(n.numel() for n in epoch) == [25, 25, 25, 25]
    assert {tuple(n.tolist()) for n in first} != {tuple(n.tolist()) for n in second}


def test_batches_feed_a_node_classification_loss() -> None:
    from fathom.tasks.node import NodeClassification

    edge_index = _geometric_graph(100, 0.2)
    data = _data(edge_index, 100)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
            agg = torch.zeros_like(x).index_add_(0, edge_index[1], x[edge_index[0]])
            return self.lin(x + agg)

    task, model = NodeClassification(), Model()
    for batch in PartitionLoader(data, num_parts=3, seed=0):
        loss = task.loss(model, batch)
        assert loss.isfinite()
        loss.backward()


def test_empty_part_ids_are_skipped() -> None:
    data = _data(_two_cliques(5), 10)
    part = torch.tensor([0, 0, 0, 0, 0, 4, 4, 4, 4, 4])  # parts 1..3 empty
    loader = PartitionLoader(data, part)
    assert len(loader) == 2 and all(b.num_nodes == 5 for b in loader)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({}, "num_parts"),
        ({"part": torch.zeros(10, dtype=torch.long), "num_parts": 2}, "num_parts"),
        ({"part": torch.zeros(9, dtype=torch.long)}, "part"),
        ({"part": torch.zeros(10)}, "part"),
        ({"part": torch.full((10,), -1)}, "part"),
        ({"num_parts": 11}, "num_parts"),
        ({"num_parts": 2, "parts_per_batch": 0}, "parts_per_batch"),
    ],
)
def test_loader_bad_options(kwargs: dict, option: str) -> None:
    data = _data(_two_cliques(5), 10)
    with pytest.raises(ConfigError, match=option) as info:
        PartitionLoader(data, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.gpu
def test_loader_on_cuda() -> None:
    edge_index = _geometric_graph()
    data = _data(edge_index, 300)
    part = metis_partition(edge_index, 300, 6, seed=0)
    cuda = data.to("cuda")
    for loader in (
        PartitionLoader(cuda, part.cuda(), parts_per_batch=2),
        PartitionLoader(cuda, num_parts=6, parts_per_batch=2),
    ):
        batches = list(loader)
        assert all(b.x.is_cuda and b.edge_index.is_cuda and b.n_id.is_cuda for b in batches)
        seen = torch.cat([b.n_id for b in batches]).cpu()
        assert torch.equal(seen.sort().values, torch.arange(300))
        for batch in batches:
            _check_batch(data, batch.to("cpu"))
    assert metis_partition(edge_index.cuda(), 300, 6, seed=0).is_cuda


def test_metis_edge_cases() -> None:
    part = metis_partition(torch.zeros(2, 0, dtype=torch.long), 6, 3)  # no edge
    assert part.shape == (6,) and set(part.tolist()) <= {0, 1, 2}
    with pytest.raises(DataError, match="edge_index"):
        metis_partition(torch.tensor([[0], [9]]), 6, 3)
