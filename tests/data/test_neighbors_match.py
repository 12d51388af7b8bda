"""Tests of fathom.data.neighbors_match (Tree-NeighborsMatch, Alon & Yahav 2021)."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from fathom.data.neighbors_match import (
    NeighborsMatchData,
    batched_edge_index,
    default_num_examples,
    tree_edges,
    tree_neighbors_match,
)
from fathom.data.splits import stratified_split_indices
from fathom.errors import ConfigError


@pytest.mark.parametrize("radius", [2, 3, 4, 5])
def test_tree_shape(radius: int) -> None:
    n = 2 ** (radius + 1) - 1
    leaves = 2**radius
    edge_index, leaf_index = tree_edges(radius, self_loops=False)
    assert edge_index.shape == (2, n - 1)
    child, parent = edge_index
    # every non-root node has exactly one parent, which has a smaller (pre-order) id
    assert sorted(child.tolist()) == list(range(1, n))
    assert bool((parent < child).all())
    # every internal node has exactly two children; leaves have none
    out_deg = torch.bincount(parent, minlength=n)
    assert set(out_deg[leaf_index].tolist()) == {0}
    internal = torch.ones(n, dtype=torch.bool)
    internal[leaf_index] = False
    assert set(out_deg[internal].tolist()) == {2}
    assert leaf_index.numel() == leaves
    # every leaf is r hops from the root
    depth = torch.zeros(n, dtype=torch.long)
    for c, p in sorted(zip(child.tolist(), parent.tolist(), strict=True)):
        depth[c] = depth[p] + 1
    assert set(depth[leaf_index].tolist()) == {radius}
    # self loops are appended, one per node
    with_loops, _ = tree_edges(radius)
    assert with_loops.shape == (2, n - 1 + n)
    assert torch.equal(with_loops[:, : n - 1], edge_index)
    assert torch.equal(with_loops[0, n - 1 :], torch.arange(n))


def test_official_node_order_r2() -> None:
    edge_index, leaf_index = tree_edges(2, self_loops=False)
    # tech-srl/bottleneck add_child_edges: DFS pre-order, left child = parent + 1
    assert edge_index.tolist() == [[1, 4, 2, 3, 5, 6], [0, 0, 1, 1, 4, 4]]
    assert leaf_index.tolist() == [2, 3, 5, 6]


@pytest.mark.parametrize("radius", [2, 3, 4])
def test_examples_match_root_key(radius: int) -> None:
    data = tree_neighbors_match(radius, num_examples=200 if radius > 2 else None, seed=3)
    leaves = 2**radius
    n = 2 ** (radius + 1) - 1
    assert data.x.shape == (len(data), n, 2) and data.x.dtype == torch.long
    leaf = data.leaf_index
    keys, values = data.x[:, leaf, 0], data.x[:, leaf, 1]
    # leaf keys are 1..L left to right; values a permutation of 1..L
    assert bool((keys == torch.arange(1, leaves + 1)).all())
    assert bool((values.sort(dim=1).values == torch.arange(1, leaves + 1)).all())
    root_key = data.x[:, 0, 0]
    assert bool((data.x[:, 0, 1] == 0).all())
    assert bool(((root_key >= 1) & (root_key <= leaves)).all())
    # exactly one leaf holds the root's key, and y is that leaf's value
    match = keys == root_key[:, None]
    assert bool((match.sum(dim=1) == 1).all())
    assert torch.equal(data.y, values[match])
    # every non-leaf, non-root node is empty
    other = torch.ones(n, dtype=torch.bool)
    other[leaf] = False
    other[0] = False
    assert bool((data.x[:, other] == 0).all())
    assert data.num_classes == leaves + 1


def test_official_sizes() -> None:
    assert [default_num_examples(r) for r in range(2, 9)] == [
        96,
        8000,
        16000,
        32000,
        32000,
        32000,
        32000,
    ]
    data = tree_neighbors_match(2)
    assert len(data) == 96
    # r = 2: all 24 permutations, each with all 4 keys: every (perm, key) pair exactly once
    pairs = {(tuple(x[data.leaf_index, 1].tolist()), int(x[0, 0])) for x in data.x}
    assert len(pairs) == 96


def test_deterministic_and_seeded() -> None:
    a = tree_neighbors_match(4, num_examples=300, seed=5)
    b = tree_neighbors_match(4, num_examples=300, seed=5)
    c = tree_neighbors_match(4, num_examples=300, seed=6)
    assert len(a) == 300
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)


def test_data_and_batch_views() -> None:
    data = tree_neighbors_match(3, num_examples=40, seed=0)
    item = data[7]
    assert isinstance(item, Data)
    assert item.num_nodes == 15 and int(item.y) == int(data.y[7])
    assert int(item.root_mask.nonzero()) == 0
    index = torch.tensor([7, 0, 12])
    batch = data.batch(index)
    ref = Batch.from_data_list([data[i] for i in index.tolist()])
    assert torch.equal(batch.x, ref.x)
    assert torch.equal(batch.edge_index, ref.edge_index)
    assert torch.equal(batch.y, ref.y)
    assert torch.equal(batch.batch, ref.batch)
    assert torch.equal(batch.root_index, ref.ptr[:-1])
    # a shared edge tensor built for more trees serves smaller batches
    big = batched_edge_index(data.edge_index, data.num_nodes, 8)
    assert torch.equal(data.batch(index, big).edge_index, ref.edge_index)
    assert len(data.to_data_list()) == 40
    assert isinstance(data.to("cpu"), NeighborsMatchData)


def test_stratified_split() -> None:
    data = tree_neighbors_match(3, num_examples=1000, seed=1)
    train, test = stratified_split_indices(data.y, train_fraction=0.8, seed=1)
    assert train.numel() == 800 and test.numel() == 200
    assert set(train.tolist()).isdisjoint(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(1000))
    full = torch.bincount(data.y, minlength=9).double()
    part = torch.bincount(data.y[test], minlength=9).double()
    assert bool(((part - full * 0.2).abs() <= 1).all())
    again, _ = stratified_split_indices(data.y, train_fraction=0.8, seed=1)
    assert torch.equal(train, again)


@pytest.mark.parametrize("radius", [1, 9, 2.0, True, "3"])
def test_bad_radius(radius: object) -> None:
    with pytest.raises(ConfigError, match="radius"):
        tree_neighbors_match(radius)  # type: ignore[arg-type]


def test_bad_num_examples() -> None:
    with pytest.raises(ConfigError, match="num_examples"):
        tree_neighbors_match(2, num_examples=97)
    with pytest.raises(ConfigError, match="num_examples"):
        tree_neighbors_match(4, num_examples=0)
    with pytest.raises(ConfigError, match="train_fraction"):
        stratified_split_indices(torch.zeros(4, dtype=torch.long), train_fraction=1.0)
