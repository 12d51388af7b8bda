"""Tests of fathom.data.synthetic."""

from __future__ import annotations

import time

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import homophily

from fathom.config import DataConfig, SyntheticConfig
from fathom.data.build import build_dataset
from fathom.data.synthetic import (
    GENERATORS,
    barbell,
    csbm,
    csbm_graphs,
    grid,
    make_synthetic,
    ring,
    tree,
    watts_strogatz,
)
from fathom.data.validate import validate_graph
from fathom.errors import ConfigError

SMALL = {
    "csbm": dict(num_nodes=120, num_classes=3, feature_dim=8, avg_degree=6.0),
    "csbm-graphs": dict(num_nodes=200, num_graphs=10, num_classes=3, feature_dim=8, avg_degree=4.0),
    "ring": dict(num_nodes=12),
    "grid": dict(height=4, width=5),
    "tree": dict(depth=3),
    "barbell": dict(clique_size=5, path_length=3),
    "watts-strogatz": dict(num_nodes=30, k=4, p=0.3),
}


def _edge_set(data: Data) -> set[tuple[int, int]]:
    return set(map(tuple, data.edge_index.t().tolist()))


def _undirected_set(pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    return {(a, b) for a, b in pairs} | {(b, a) for a, b in pairs}


def test_registry_names() -> None:
    assert GENERATORS.names() == sorted(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_generator_output_is_a_clean_undirected_graph(name: str) -> None:
    data = make_synthetic(name, seed=1, **SMALL[name])
    report = validate_graph(data)
    assert report.is_undirected
    assert report.self_loops == 0
    assert report.duplicate_edges == 0
    assert data.x.dtype == torch.float32
    assert data.y.dtype == torch.long
    assert data.edge_index.dtype == torch.long
    assert data.name == name
    # Entries are sorted by (source, target).
    key = data.edge_index[0] * data.num_nodes + data.edge_index[1]
    assert bool((key[1:] > key[:-1]).all())
    # Masks are the 0.6/0.2/0.2 stratified split and cover every node.
    total = data.train_mask.long() + data.val_mask.long() + data.test_mask.long()
    assert bool((total == 1).all())
    assert abs(int(data.train_mask.sum()) - 0.6 * data.num_nodes) <= report.num_classes


@pytest.mark.parametrize("name", sorted(SMALL))
def test_generator_determinism(name: str) -> None:
    a = make_synthetic(name, seed=5, **SMALL[name])
    b = make_synthetic(name, seed=5, **SMALL[name])
    c = make_synthetic(name, seed=6, **SMALL[name])
    for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a.x, c.x)
    assert not torch.equal(a.train_mask, c.train_mask)
    if name in ("csbm", "csbm-graphs", "watts-strogatz"):  # the others have a fixed structure
        assert not torch.equal(a.edge_index, c.edge_index)


# csbm-graphs splits 60 nodes into 10 graphs of 6, too small for avg_degree 10 (its own test
# below makes the uniform call with more nodes).
@pytest.mark.parametrize("name", sorted(set(SMALL) - {"csbm-graphs"}))
def test_uniform_cli_call(name: str) -> None:
    data = make_synthetic(name, num_nodes=60, num_classes=3, feature_dim=6, seed=2)
    assert 40 <= data.num_nodes <= 80
    assert data.x.shape == (data.num_nodes, 6)
    assert sorted(data.y.unique().tolist()) == [0, 1, 2]
    validate_graph(data)


# --- CSBM -----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [0.2, 0.8])
def test_csbm_homophily_degree_and_balance(target: float) -> None:
    data = csbm(2000, 4, homophily=target, avg_degree=10.0, seed=0)
    assert abs(homophily(data.edge_index, data.y, method="edge") - target) < 0.03
    assert abs(data.edge_index.size(1) / 2000 - 10.0) < 0.5
    assert torch.bincount(data.y).tolist() == [500, 500, 500, 500]


def test_csbm_unbalanced_remainder() -> None:
    data = csbm(10, 3, feature_dim=4, p_in=0.5, p_out=0.1)
    assert torch.bincount(data.y).tolist() == [4, 3, 3]


def test_csbm_explicit_probabilities() -> None:
    data = csbm(300, 3, p_in=0.05, p_out=0.0, seed=0)
    assert homophily(data.edge_index, data.y, method="edge") == 1.0
    # 3 blocks of 100: 3 * C(100, 2) * 0.05 = 742.5 expected edges (std ~27).
    assert abs(data.edge_index.size(1) / 2 - 742.5) < 100
    empty = csbm(300, 3, p_in=0.0, p_out=0.0)
    assert empty.edge_index.shape == (2, 0)
    full = csbm(6, 2, feature_dim=2, p_in=1.0, p_out=1.0)
    assert full.edge_index.size(1) == 6 * 5


def test_csbm_separation_sets_distance_between_class_means() -> None:
    data = csbm(3000, 3, feature_dim=8, separation=4.0, seed=0)
    means = torch.stack([data.x[data.y == c].mean(0) for c in range(3)])
    distances = torch.pdist(means)
    assert torch.allclose(distances, torch.full((3,), 4.0), atol=0.3)
    noise = data.x - means[data.y]
    assert abs(float(noise.std()) - 1.0) < 0.05


def test_csbm_scales_without_dense_matrix() -> None:
    start = time.perf_counter()
    data = csbm(50_000, 5, avg_degree=4.0, seed=0)
    assert time.perf_counter() - start < 10.0  # a dense 50K x 50K matrix would take far longer
    assert abs(data.edge_index.size(1) / 50_000 - 4.0) < 0.1


# --- CSBM graphs (multi-graph inductive) ------------------------------------------------------


def _graph_sets(data: Data) -> dict[str, set[int]]:
    return {s: set(data.graph_id[data[f"{s}_mask"]].tolist()) for s in ("train", "val", "test")}


def test_csbm_graphs_masks_select_whole_graphs() -> None:
    data = csbm_graphs(300, 3, num_graphs=10, avg_degree=4.0, seed=1)
    assert data.graph_id.tolist() == [g for g in range(10) for _ in range(30)]
    sets = _graph_sets(data)
    # 0.6 / 0.2 / 0.2 of the graphs, disjoint, covering all of them
    assert [len(sets[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    assert sets["train"] | sets["val"] | sets["test"] == set(range(10))
    for g in range(10):  # every graph is entirely in one split
        nodes = data.graph_id == g
        per_split = [int(data[f"{s}_mask"][nodes].sum()) for s in ("train", "val", "test")]
        assert sorted(per_split) == [0, 0, 30]
    # no edge joins two graphs, so none joins two splits
    src, dst = data.edge_index
    assert torch.equal(data.graph_id[src], data.graph_id[dst])
    split = data.train_mask.long() + 2 * data.val_mask.long() + 3 * data.test_mask.long()
    assert torch.equal(split[src], split[dst])


def test_csbm_graphs_sizes_and_classes() -> None:
    data = csbm_graphs(103, 3, num_graphs=10, feature_dim=4, avg_degree=3.0)
    assert data.num_nodes == 103
    assert torch.bincount(data.graph_id).tolist() == [11, 11, 11] + [10] * 7
    for g in range(10):  # each graph is a csbm with balanced, sorted classes
        y = data.y[data.graph_id == g]
        assert y.tolist() == sorted(y.tolist())
        assert set(y.tolist()) == {0, 1, 2}


def test_csbm_graphs_each_graph_is_a_csbm_with_shared_class_means() -> None:
    data = csbm_graphs(6000, 3, num_graphs=3, feature_dim=8, separation=4.0, seed=0)
    overall = torch.stack([data.x[data.y == c].mean(0) for c in range(3)])
    assert torch.allclose(torch.pdist(overall), torch.full((3,), 4.0), atol=0.3)
    for g in range(3):
        nodes = data.graph_id == g
        means = torch.stack([data.x[nodes & (data.y == c)].mean(0) for c in range(3)])
        # ~667 nodes per class: the mean's noise has std ~0.04 per coordinate
        assert (means - overall).norm(dim=1).max() < 0.35
        edges = data.edge_index[:, nodes[data.edge_index[0]]]
        assert abs(homophily(edges, data.y, method="edge") - 0.8) < 0.05
    # graphs differ (derived seeds), not copies of one another
    assert not torch.equal(data.x[data.graph_id == 0], data.x[data.graph_id == 1])


def test_csbm_graphs_determinism() -> None:
    a = csbm_graphs(200, 3, num_graphs=10, avg_degree=4.0, seed=4)
    b = csbm_graphs(200, 3, num_graphs=10, avg_degree=4.0, seed=4)
    c = csbm_graphs(200, 3, num_graphs=10, avg_degree=4.0, seed=5)
    for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask", "graph_id"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a.x, c.x)
    assert _graph_sets(a) != _graph_sets(c)


def test_csbm_graphs_uniform_call_and_validation() -> None:
    data = make_synthetic("csbm-graphs", num_nodes=600, num_classes=3, feature_dim=6, seed=2)
    assert data.num_nodes == 600
    assert data.x.shape == (600, 6)
    assert int(data.graph_id.max()) == 9  # default: 10 graphs
    report = validate_graph(data)
    assert (report.num_train, report.num_val, report.num_test) == (360, 120, 120)


def test_csbm_graphs_num_graphs_from_config() -> None:
    synthetic = SyntheticConfig(num_nodes=200, num_graphs=5, feature_dim=8, avg_degree=4.0)
    data = build_dataset(DataConfig(name="csbm-graphs", synthetic=synthetic), seed=0)
    assert int(data.graph_id.max()) == 4
    assert data.num_nodes == 200


# --- structural graphs ----------------------------------------------------------------------


def test_ring_exact() -> None:
    data = ring(7, 2)
    assert data.num_nodes == 7
    assert data.edge_index.size(1) == 14
    assert _edge_set(data) == _undirected_set([(i, (i + 1) % 7) for i in range(7)])
    assert data.y.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_ring_features_are_noisy_one_hot() -> None:
    clean = ring(6, 3, feature_dim=5, noise=0.0)
    expected = torch.zeros(6, 5)
    expected[torch.arange(6), torch.tensor([0, 0, 1, 1, 2, 2])] = 1.0
    assert torch.equal(clean.x, expected)
    noisy = ring(600, 3, feature_dim=5, noise=0.5)
    assert abs(float((noisy.x - torch.eye(5)[noisy.y]).std()) - 0.5) < 0.03


def test_grid_exact() -> None:
    data = grid(3, 4)
    assert data.num_nodes == 12
    assert data.edge_index.size(1) == 2 * (3 * 3 + 4 * 2)
    assert (0, 1) in _edge_set(data)
    assert (0, 4) in _edge_set(data)
    assert (3, 4) not in _edge_set(data)  # no wrap-around between rows


def test_grid_quadrant_labels() -> None:
    data = grid(4, 4)
    assert data.y.view(4, 4).tolist() == [
        [1, 1, 0, 0],
        [1, 1, 0, 0],
        [2, 2, 3, 3],
        [2, 2, 3, 3],
    ]


def test_grid_from_num_nodes() -> None:
    assert grid(num_nodes=50).num_nodes == 49


def test_tree_exact() -> None:
    data = tree(3, 2)
    assert data.num_nodes == 15
    assert data.edge_index.size(1) == 2 * 14
    assert _edge_set(data) == _undirected_set([((c - 1) // 2, c) for c in range(1, 15)])
    left = [1, 3, 4, 7, 8, 9, 10]
    right = [2, 5, 6, 11, 12, 13, 14]
    assert data.y[left].tolist() == [0] * 7
    assert data.y[right].tolist() == [1] * 7
    assert int(data.y[0]) == 0


def test_tree_ternary_subtree_labels() -> None:
    data = tree(2, 3, num_classes=3)
    assert data.num_nodes == 13
    assert data.edge_index.size(1) == 2 * 12
    # Root children 1, 2, 3; grandchildren 4-6 under 1, 7-9 under 2, 10-12 under 3.
    assert data.y.tolist() == [0, 0, 1, 2, 0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_tree_from_num_nodes() -> None:
    assert tree(num_nodes=20).num_nodes == 15  # |15 - 20| < |31 - 20|
    assert tree(num_nodes=26).num_nodes == 31


def test_barbell_exact() -> None:
    data = barbell(4, 2)
    assert data.num_nodes == 10
    assert data.edge_index.size(1) == 2 * (2 * 6 + 3)
    edges = _edge_set(data)
    assert {(3, 4), (4, 5), (5, 6)} <= edges  # the bridge 3 - 4 - 5 - 6
    assert (2, 4) not in edges
    assert data.y.tolist() == [0] * 5 + [1] * 5


def test_barbell_without_path_and_from_num_nodes() -> None:
    data = barbell(3)
    assert data.edge_index.size(1) == 2 * (2 * 3 + 1)
    assert (2, 3) in _edge_set(data)
    assert barbell(num_nodes=21, path_length=3).num_nodes == 21


def test_watts_strogatz_p0_is_ring_lattice() -> None:
    data = watts_strogatz(10, k=4, p=0.0)
    assert data.edge_index.size(1) == 10 * 4
    lattice = [(i, (i + j) % 10) for i in range(10) for j in (1, 2)]
    assert _edge_set(data) == _undirected_set(lattice)
    assert data.y.tolist() == [0] * 5 + [1] * 5


def test_watts_strogatz_rewiring_keeps_edge_count() -> None:
    data = watts_strogatz(200, k=6, p=0.5, seed=0)
    assert data.edge_index.size(1) == 200 * 6
    lattice = watts_strogatz(200, k=6, p=0.0)
    changed = len(_edge_set(data) - _edge_set(lattice)) / 2
    assert 0.4 * 600 < changed < 0.6 * 600


# --- make_synthetic and parameter validation ------------------------------------------------


def test_make_synthetic_unknown_name_lists_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown synthetic generator 'sbm'.*csbm.*ring"):
        make_synthetic("sbm")


def test_make_synthetic_unknown_parameter() -> None:
    with pytest.raises(ConfigError, match=r"unknown parameter.*colour.*'ring'"):
        make_synthetic("ring", num_nodes=10, colour=3)


def test_make_synthetic_missing_parameter() -> None:
    with pytest.raises(ConfigError, match=r"'ring' needs parameter.*num_nodes"):
        make_synthetic("ring")


@pytest.mark.parametrize(
    ("name", "kwargs", "words"),
    [
        ("csbm", dict(num_nodes=-5), "num_nodes must be >= 2, got -5"),
        ("csbm", dict(homophily=1.5), r"homophily must be in \[0.0, 1.0\], got 1.5"),
        ("csbm", dict(homophily=None), "needs homophily"),
        ("csbm", dict(p_in=0.1), "both p_in and p_out"),
        ("csbm", dict(p_in=0.1, p_out=-0.1), "p_out must be in"),
        ("csbm", dict(num_nodes=20, avg_degree=19.0), "p_in=.* must be <= 1"),
        ("csbm", dict(avg_degree=-1.0), "avg_degree must be in"),
        ("csbm", dict(separation=-1.0), "separation must be in"),
        ("csbm", dict(num_classes=1), "num_classes must be >= 2"),
        ("csbm", dict(feature_dim=2), "feature_dim must be >= num_classes = 3"),
        ("csbm", dict(seed=-1), "seed must be >= 0"),
        ("ring", dict(num_nodes=2), "num_nodes must be >= 3"),
        ("ring", dict(num_nodes=10, noise=-0.5), "noise must be in"),
        ("ring", dict(num_nodes=4, num_classes=5), "num_classes=5 exceeds num_nodes=4"),
        ("ring", dict(num_nodes=10.5), "num_nodes must be an int"),
        ("grid", dict(height=3), "grid needs height and width"),
        ("grid", dict(height=3, width=3, num_nodes=9), "not both"),
        ("grid", dict(height=0, width=3), "height must be >= 2"),
        ("tree", dict(), "tree needs depth"),
        ("tree", dict(depth=2, branching=1), "branching must be >= 2"),
        ("tree", dict(depth=1, num_classes=3), "num_classes=3 exceeds the 2 leaves"),
        ("barbell", dict(clique_size=1), "clique_size must be >= 2"),
        ("barbell", dict(clique_size=3, path_length=-1), "path_length must be >= 0"),
        ("watts-strogatz", dict(num_nodes=10, p=1.5), r"p must be in \[0.0, 1.0\]"),
        ("watts-strogatz", dict(num_nodes=10, k=3), "k must be even"),
        ("watts-strogatz", dict(num_nodes=4, k=4), r"num_nodes must be >= k \+ 1 = 5"),
        ("csbm-graphs", dict(num_graphs=2), "num_graphs must be >= 3, got 2"),
        ("csbm-graphs", dict(num_nodes=10, num_graphs=6), r"num_nodes must be >= 2 \* num_graphs"),
        ("csbm-graphs", dict(num_nodes=1000, num_graphs=400), "2 nodes per graph, fewer than"),
        ("csbm-graphs", dict(num_nodes=60), r"each graph has ~6 nodes: .*p_in=.* must be <= 1"),
        ("csbm-graphs", dict(feature_dim=2), "feature_dim must be >= num_classes = 3"),
        ("csbm-graphs", dict(homophily=1.5), r"homophily must be in \[0.0, 1.0\]"),
    ],
)
def test_invalid_parameters(name: str, kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        make_synthetic(name, **kwargs)
    assert "\n" not in str(info.value)
