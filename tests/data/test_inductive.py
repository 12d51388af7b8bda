"""Tests of fathom.data.inductive."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor
from torch_geometric.data import Data

from fathom.data.inductive import induced_view, inductive_views
from fathom.data.synthetic import make_synthetic
from fathom.errors import DataError


def _both(pairs: list[tuple[int, int]]) -> Tensor:
    """Undirected edge list, both directions, sorted by (source, target)."""
    edges = sorted({(a, b) for a, b in pairs} | {(b, a) for a, b in pairs})
    return torch.tensor(edges).t()


def _mask(n: int, idx: list[int]) -> Tensor:
    m = torch.zeros(n, dtype=torch.bool)
    m[idx] = True
    return m


# Seven nodes: train {0, 2, 3}, val {1, 5}, test {4}, node 6 unlabelled (in no mask).
#   0 - 1 - 2 - 3 - 4,   0 - 2,   3 - 5,   5 - 6
EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 2), (3, 5), (5, 6)]
TRAIN, VAL, TEST = [0, 2, 3], [1, 5], [4]


def _data() -> Data:
    n = 7
    return Data(
        x=torch.arange(n * 2, dtype=torch.float32).view(n, 2),
        edge_index=_both(EDGES),
        y=torch.tensor([0, 1, 0, 1, 0, 1, 0]),
        train_mask=_mask(n, TRAIN),
        val_mask=_mask(n, VAL),
        test_mask=_mask(n, TEST),
    )


def _edges(view: Data) -> set[tuple[int, int]]:
    return set(map(tuple, view.edge_index.t().tolist()))


def test_train_view_exact() -> None:
    data = _data()
    train = inductive_views(data).train
    assert train.num_nodes == 3
    assert train.node_index.tolist() == [0, 2, 3]
    assert torch.equal(train.x, data.x[[0, 2, 3]])
    assert train.y.tolist() == [0, 0, 1]
    # Induced edges among {0, 2, 3}: 0-2 and 2-3, relabelled 0->0, 2->1, 3->2.
    assert _edges(train) == {(0, 1), (1, 0), (1, 2), (2, 1)}
    assert train.train_mask.tolist() == [True] * 3
    assert train.val_mask.tolist() == [False] * 3
    assert train.test_mask.tolist() == [False] * 3


def test_val_view_exact() -> None:
    data = _data()
    val = inductive_views(data).val
    assert val.node_index.tolist() == [0, 1, 2, 3, 5]
    assert torch.equal(val.x, data.x[[0, 1, 2, 3, 5]])
    # Edges among {0, 1, 2, 3, 5}: all but 3-4 and 5-6; original 5 is now 4.
    expected = {(0, 1), (1, 2), (2, 3), (0, 2), (3, 4)}
    assert _edges(val) == {e for a, b in expected for e in ((a, b), (b, a))}
    assert val.train_mask.tolist() == [True, False, True, True, False]
    assert val.val_mask.tolist() == [False, True, False, False, True]
    assert not bool(val.test_mask.any())


def test_full_view_is_the_input() -> None:
    data = _data()
    assert inductive_views(data).full is data


def test_train_view_has_nothing_of_val_or_test_nodes() -> None:
    data = make_synthetic("csbm", num_nodes=200, num_classes=3, feature_dim=8, seed=3)
    views = inductive_views(data)
    held_out = data.val_mask | data.test_mask
    train = views.train
    # Every view node maps back to a training node, and its features / label are that node's.
    assert bool(data.train_mask[train.node_index].all())
    assert train.num_nodes == int(data.train_mask.sum())
    assert torch.equal(train.x, data.x[train.node_index])
    assert torch.equal(train.y, data.y[train.node_index])
    # No training-view edge touches a val/test node (in original ids) ...
    original = train.node_index[train.edge_index]
    assert not bool(held_out[original].any())
    # ... and it keeps every edge among training nodes.
    src, dst = data.edge_index
    among_train = data.train_mask[src] & data.train_mask[dst]
    assert train.edge_index.size(1) == int(among_train.sum())
    assert set(map(tuple, original.t().tolist())) == set(
        map(tuple, data.edge_index[:, among_train].t().tolist())
    )
    # The validation view holds no test node.
    val = views.val
    assert not bool(data.test_mask[val.node_index].any())
    assert not bool(data.test_mask[val.node_index[val.edge_index]].any())


def test_unlabelled_nodes_only_in_full_graph() -> None:
    views = inductive_views(_data())
    assert 6 not in views.train.node_index.tolist()
    assert 6 not in views.val.node_index.tolist()


def test_edge_attributes_follow_edges() -> None:
    data = _data()
    # weight of edge (a, b) = 10 a + b, so survivors are recognisable
    data.edge_weight = (10 * data.edge_index[0] + data.edge_index[1]).float()
    train = induced_view(data, data.train_mask)
    original = train.node_index[train.edge_index]
    assert torch.equal(train.edge_weight, (10 * original[0] + original[1]).float())


def test_multi_graph_train_view_is_the_training_graphs() -> None:
    data = make_synthetic(
        "csbm-graphs", num_nodes=200, num_graphs=10, num_classes=3, feature_dim=8, avg_degree=4.0
    )
    train = inductive_views(data).train
    train_graphs = set(data.graph_id[data.train_mask].tolist())
    assert set(data.graph_id[train.node_index].tolist()) == train_graphs
    # whole graphs: every node and every edge of the training graphs is kept
    assert train.num_nodes == sum(int((data.graph_id == g).sum()) for g in train_graphs)
    src = data.edge_index[0]
    assert train.edge_index.size(1) == int(data.train_mask[src].sum())


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda d: delattr(d, "val_mask"), "val_mask is missing"),
        (lambda d: setattr(d, "train_mask", d.train_mask.long()), "train_mask must be a bool"),
        (lambda d: setattr(d, "test_mask", torch.ones(3, dtype=torch.bool)), r"shape \(7,\)"),
        (lambda d: setattr(d, "train_mask", torch.zeros(7, dtype=torch.bool)), "selects no node"),
        (lambda d: setattr(d, "val_mask", d.val_mask | _mask(7, [2])), "train_mask and val_mask"),
        (lambda d: setattr(d, "test_mask", _mask(7, [4, 5])), "val_mask and test_mask share 1"),
    ],
)
def test_invalid_masks(edit, words: str) -> None:
    data = _data()
    edit(data)
    with pytest.raises(DataError, match=words) as info:
        inductive_views(data)
    assert "\n" not in str(info.value)


@pytest.mark.dataset
def test_real_cora_views(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from fathom.data.datasets import load_dataset

    if not os.environ.get("FATHOM_DATA"):
        pytest.skip("FATHOM_DATA not set: real-dataset tests need the shared datasets")
    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path))
    data = load_dataset("cora")
    views = inductive_views(data)
    assert views.train.num_nodes == 140
    assert views.val.num_nodes == 640
    original = views.train.node_index[views.train.edge_index]
    assert not bool((data.val_mask | data.test_mask)[original].any())
    among_train = data.train_mask[data.edge_index[0]] & data.train_mask[data.edge_index[1]]
    assert views.train.edge_index.size(1) == int(among_train.sum())
