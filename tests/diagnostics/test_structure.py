"""Tests of fathom.diagnostics.structure against closed forms on tiny graphs.

Receptive-field sizes, diameters, path lengths and clustering coefficients of paths, rings,
grids, stars and complete graphs are known exactly; homophily is checked by hand and against
PyG. The Cora test reads ``$FATHOM_DATA`` and is skipped, with a reason, when it is unset.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor
from torch_geometric.utils import homophily as pyg_homophily

from fathom.data.synthetic import make_synthetic
from fathom.diagnostics.structure import (
    StructureReport,
    clustering_coefficient,
    receptive_field_growth,
    structure_report,
)
from fathom.errors import DataError

REAL_DATA = os.environ.get("FATHOM_DATA") or None


# ----------------------------------------------------------------------------- graph builders


def _both(pairs: list[tuple[int, int]]) -> Tensor:
    """Edge list of undirected pairs, stored in both directions."""
    src = [a for a, b in pairs] + [b for a, b in pairs]
    dst = [b for a, b in pairs] + [a for a, b in pairs]
    return torch.tensor([src, dst], dtype=torch.long)


def path_graph(n: int) -> Tensor:
    return _both([(i, i + 1) for i in range(n - 1)])


def complete_graph(n: int) -> Tensor:
    return _both([(i, j) for i in range(n) for j in range(i + 1, n)])


def star_graph(n: int) -> Tensor:
    """Centre 0 joined to leaves 1..n-1."""
    return _both([(0, i) for i in range(1, n)])


def ring_graph(n: int) -> Tensor:
    return make_synthetic("ring", num_nodes=n).edge_index


def grid_graph(h: int, w: int) -> Tensor:
    return make_synthetic("grid", height=h, width=w).edge_index


# kite: triangles {0,1,2} and {0,1,3}, pendant 4 on node 3
KITE = _both([(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (3, 4)])
KITE_CLUSTERING = [2 / 3, 2 / 3, 1.0, 1 / 3, 0.0]  # 2 T_v / (d_v (d_v - 1))


# --------------------------------------------------------------------------- receptive field


@pytest.mark.parametrize("n", [7, 8])
def test_ring_receptive_field_is_min_2k_n_minus_1(n: int) -> None:
    counts = receptive_field_growth(ring_graph(n), n, max_hops=6)
    assert counts.shape == (n, 6) and counts.dtype == torch.int64
    expected = torch.tensor([min(2 * k, n - 1) for k in range(1, 7)]).expand(n, 6)
    assert torch.equal(counts, expected)


def test_path_receptive_field_counts_both_sides() -> None:
    n = 6
    counts = receptive_field_growth(path_graph(n), n, max_hops=7)
    expected = torch.tensor(
        [[min(v, k) + min(n - 1 - v, k) for k in range(1, 8)] for v in range(n)]
    )
    assert torch.equal(counts, expected)


def test_grid_receptive_field_is_the_manhattan_ball() -> None:
    h, w, hops = 5, 7, 11
    counts = receptive_field_growth(grid_graph(h, w), h * w, max_hops=hops)
    r, c = np.divmod(np.arange(h * w), w)
    manhattan = np.abs(r[:, None] - r[None, :]) + np.abs(c[:, None] - c[None, :])
    expected = np.stack([(manhattan <= k).sum(1) - 1 for k in range(1, hops + 1)], axis=1)
    assert np.array_equal(counts.numpy(), expected)
    assert counts[:, -1].eq(h * w - 1).all()  # diameter 10 < 11: everything reached


def test_grid_interior_node_has_2k_k_plus_1() -> None:
    centre = torch.tensor([5 * 11 + 5])  # middle of an 11x11 grid: the ball fits for k <= 5
    counts = receptive_field_growth(grid_graph(11, 11), 121, max_hops=5, sources=centre)
    assert counts.tolist() == [[2 * k * (k + 1) for k in range(1, 6)]]


def test_complete_and_star_receptive_fields() -> None:
    assert receptive_field_growth(complete_graph(5), 5, max_hops=3).eq(4).all()
    star = receptive_field_growth(star_graph(6), 6, max_hops=3)
    assert star[0].tolist() == [5, 5, 5]  # centre
    assert star[1:].tolist() == [[1, 5, 5]] * 5  # leaves: centre, then everyone


def test_sources_select_rows_and_isolated_nodes_reach_nothing() -> None:
    # path 0-1-2 and a separate edge 3-4, node 5 isolated
    ei = _both([(0, 1), (1, 2), (3, 4)])
    full = receptive_field_growth(ei, 6, max_hops=3)
    assert full.tolist() == [[1, 2, 2], [2, 2, 2], [1, 2, 2], [1, 1, 1], [1, 1, 1], [0, 0, 0]]
    rows = receptive_field_growth(ei, 6, max_hops=3, sources=torch.tensor([5, 0, 0]))
    assert torch.equal(rows, full[[5, 0, 0]])


def test_long_path_uses_pointer_doubling_correctly() -> None:
    # more BFS levels than the binary-search loop handles: exercises the doubling branch
    n = 150
    counts = receptive_field_growth(path_graph(n), n, max_hops=3, sources=torch.tensor([0, 75]))
    assert counts.tolist() == [[1, 2, 3], [2, 4, 6]]
    report = structure_report(path_graph(n), n, max_hops=2)
    assert report.diameter == n - 1
    assert report.average_shortest_path == pytest.approx((n + 1) / 3)


# --------------------------------------------------------------------------------- distances


@pytest.mark.parametrize(
    ("name", "edge_index", "n", "diameter"),
    [
        ("path", path_graph(9), 9, 8),
        ("ring-odd", ring_graph(9), 9, 4),
        ("ring-even", ring_graph(10), 10, 5),
        ("grid", grid_graph(4, 6), 24, 3 + 5),
        ("complete", complete_graph(6), 6, 1),
        ("star", star_graph(6), 6, 2),
    ],
)
def test_exact_diameter(name: str, edge_index: Tensor, n: int, diameter: int) -> None:
    report = structure_report(edge_index, n)
    assert report.diameter == diameter
    assert report.diameter_exact is True
    assert report.sources == n


def test_average_shortest_path_closed_forms() -> None:
    assert structure_report(path_graph(6), 6).average_shortest_path == pytest.approx(7 / 3)
    # odd ring n = 2m + 1: distances 1..m twice each -> (n + 1) / 4
    assert structure_report(ring_graph(9), 9).average_shortest_path == pytest.approx(10 / 4)
    assert structure_report(complete_graph(5), 5).average_shortest_path == 1.0
    # star: centre-leaf pairs at 1, leaf-leaf pairs at 2
    n = 6
    star = (2 * (n - 1) * 1 + (n - 1) * (n - 2) * 2) / (n * (n - 1))
    assert structure_report(star_graph(n), n).average_shortest_path == pytest.approx(star)
    h, w = 3, 5
    r, c = np.divmod(np.arange(h * w), w)
    manhattan = np.abs(r[:, None] - r[None, :]) + np.abs(c[:, None] - c[None, :])
    grid_mean = manhattan.sum() / (h * w * (h * w - 1))
    assert structure_report(grid_graph(h, w), h * w).average_shortest_path == pytest.approx(
        grid_mean
    )


def test_effective_diameter_interpolates_the_90th_percentile() -> None:
    # path of 5: ordered pairs at d = 1..4: 8, 6, 4, 2 -> g = .4, .7, .9, 1 -> D = 3 -> 2 + .2/.2
    assert structure_report(path_graph(5), 5).effective_diameter == pytest.approx(3.0)
    # ring of 6: per node 2, 2, 1 at d = 1, 2, 3 -> g = .4, .8, 1 -> 2 + .1/.2
    assert structure_report(ring_graph(6), 6).effective_diameter == pytest.approx(2.5)
    # complete graph: g(1) = 1 -> 0 + .9/1
    assert structure_report(complete_graph(5), 5).effective_diameter == pytest.approx(0.9)


def test_distances_are_measured_in_the_largest_component() -> None:
    # path of 4 (diameter 3) plus a triangle and an isolated node
    ei = _both([(0, 1), (1, 2), (2, 3), (4, 5), (5, 6), (4, 6)])
    report = structure_report(ei, 8)
    assert (report.num_components, report.largest_component) == (3, 4)
    assert report.diameter == 3 and report.diameter_exact
    assert report.average_shortest_path == pytest.approx(5 / 3)  # (n + 1) / 3 for n = 4
    assert report.num_edges == 6
    assert report.degree == {"mean": 12 / 8, "median": 2.0, "max": 2}


def test_sampled_sources_are_seeded_and_bound_the_diameter() -> None:
    ring = ring_graph(40)
    a = structure_report(ring, 40, max_sources=8, seed=3)
    b = structure_report(ring, 40, max_sources=8, seed=3)
    assert a.to_dict() == b.to_dict()
    assert a.sources == 8 and a.diameter_exact is False
    assert a.diameter == 20  # every ring node has eccentricity n/2
    assert a.receptive_field["mean"] == [2.0 * k for k in range(1, 9)]
    # a tree: the double sweep from the farthest node found recovers the exact diameter
    path = structure_report(path_graph(60), 60, max_sources=4, seed=1)
    assert path.diameter == 59 and path.diameter_exact is False
    # the sample differs between seeds (path: ball sizes depend on the position)
    other = structure_report(path_graph(60), 60, max_sources=4, seed=2)
    assert other.receptive_field["mean"] != path.receptive_field["mean"]


def test_sampling_keeps_a_source_in_the_largest_component() -> None:
    # a triangle plus 50 isolated nodes; one sampled source will usually miss the triangle
    ei = _both([(0, 1), (1, 2), (0, 2)])
    for seed in range(5):
        report = structure_report(ei, 53, max_sources=1, seed=seed)
        assert report.diameter == 1 and report.average_shortest_path == 1.0


# -------------------------------------------------------------------------------- clustering


def test_clustering_closed_forms() -> None:
    assert clustering_coefficient(complete_graph(3), 3).tolist() == [1.0, 1.0, 1.0]
    assert clustering_coefficient(complete_graph(6), 6).eq(1.0).all()
    star = clustering_coefficient(star_graph(5), 5)
    assert star.dtype == torch.float64 and star.shape == (5,) and star.eq(0).all()
    kite = clustering_coefficient(KITE, 5)
    assert kite.tolist() == pytest.approx(KITE_CLUSTERING)


def test_report_clustering_and_transitivity() -> None:
    kite = structure_report(KITE, 5)
    assert kite.clustering == pytest.approx(8 / 15)
    assert kite.transitivity == pytest.approx(6 / 10)  # 3 x 2 triangles / 10 triples
    star = structure_report(star_graph(5), 5)
    assert (star.clustering, star.transitivity) == (0.0, 0.0)
    grid = structure_report(grid_graph(4, 4), 16)
    assert (grid.clustering, grid.transitivity) == (0.0, 0.0)


def test_clustering_matches_networkx() -> None:
    nx = pytest.importorskip("networkx")
    data = make_synthetic("watts-strogatz", num_nodes=60, k=6, p=0.2, seed=4)
    g = nx.Graph()
    g.add_nodes_from(range(60))
    g.add_edges_from(data.edge_index.t().tolist())
    ours = clustering_coefficient(data.edge_index, 60).tolist()
    theirs = nx.clustering(g)
    assert ours == pytest.approx([theirs[i] for i in range(60)])
    report = structure_report(data.edge_index, 60)
    assert report.transitivity == pytest.approx(nx.transitivity(g))
    assert report.average_shortest_path == pytest.approx(nx.average_shortest_path_length(g))
    assert report.diameter == nx.diameter(g)


# ------------------------------------------------------------------------------- small world


def test_small_world_sigma_uses_the_analytic_random_baselines() -> None:
    sw = structure_report(complete_graph(5), 5).small_world
    # C = L = 1, k = 4, n = 5: C_rand = 4/5, L_rand = ln 5 / ln 4
    assert sw["C_rand"] == pytest.approx(0.8)
    assert sw["L_rand"] == pytest.approx(math.log(5) / math.log(4))
    assert sw["sigma"] == pytest.approx((1 / 0.8) / (1 / (math.log(5) / math.log(4))))
    assert structure_report(grid_graph(6, 6), 36).small_world["sigma"] == 0.0  # no triangles


def test_small_world_grows_its_receptive_field_much_faster_than_a_grid() -> None:
    ws = make_synthetic("watts-strogatz", num_nodes=400, k=4, p=0.3, seed=0)
    small = structure_report(ws.edge_index, 400, max_hops=4)
    lattice = structure_report(grid_graph(20, 20), 400, max_hops=4)
    # same size and nearly the same mean degree ...
    assert small.degree["mean"] == 4.0 and lattice.degree["mean"] == pytest.approx(3.8)
    assert small.receptive_field["mean"][0] == 4.0
    # ... but at k = 4 the small world reaches more than twice as many nodes
    assert small.receptive_field["fraction"][3] > 2 * lattice.receptive_field["fraction"][3]
    assert lattice.receptive_field["mean"][3] < 2 * 4 * 5  # the interior ball, cut by the border
    assert small.small_world["sigma"] > 1 > lattice.small_world["sigma"]
    assert small.diameter < lattice.diameter == 38


# ---------------------------------------------------------------------------------- homophily


def test_homophily_by_hand() -> None:
    # path 0-1-2-3 with labels 0, 0, 1, 1: 4 of 6 directed edges homophilous;
    # per node 1, 1/2, 1/2, 1
    h = structure_report(path_graph(4), 4, torch.tensor([0, 0, 1, 1])).homophily
    assert h is not None
    assert h["edge"] == pytest.approx(4 / 6)
    assert h["node"] == pytest.approx(0.75)


def test_homophily_matches_pyg_and_ignores_self_loops_and_duplicates() -> None:
    data = make_synthetic("csbm", num_nodes=120, num_classes=3, avg_degree=6, homophily=0.6)
    h = structure_report(data.edge_index, 120, data.y).homophily
    assert h is not None
    for key, method in [
        ("edge", "edge"),
        ("node", "node"),
        ("class_insensitive", "edge_insensitive"),
    ]:
        assert h[key] == pytest.approx(pyg_homophily(data.edge_index, data.y, method=method))
    # self-loops and repeated edges are ignored (PyG would count them)
    loops = torch.arange(120).repeat(2, 1)
    noisy = torch.cat([data.edge_index, loops, data.edge_index[:, :50]], dim=1)
    assert structure_report(noisy, 120, data.y).homophily == h
    assert pyg_homophily(noisy, data.y, method="edge") != pytest.approx(h["edge"])
    assert structure_report(data.edge_index, 120).homophily is None


# ---------------------------------------------------------------------------- input handling


def test_edges_are_symmetrised_and_deduplicated() -> None:
    one_way = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])  # path of 5, one direction only
    messy = torch.cat([one_way, one_way.flip(0), one_way, torch.tensor([[2], [2]])], dim=1)
    clean = structure_report(path_graph(5), 5).to_dict()
    assert structure_report(one_way, 5).to_dict() == clean
    assert structure_report(messy, 5).to_dict() == clean
    assert clean["num_edges"] == 4


def test_graph_without_edges_reports_nan_not_a_crash() -> None:
    empty = torch.empty(2, 0, dtype=torch.long)
    report = structure_report(empty, 3, torch.tensor([0, 1, 1]))
    assert (report.num_edges, report.num_components, report.largest_component) == (0, 3, 1)
    assert report.receptive_field["mean"] == [0.0] * 8
    assert report.diameter == 0 and report.clustering == 0.0
    assert math.isnan(report.average_shortest_path) and math.isnan(report.effective_diameter)
    assert math.isnan(report.small_world["sigma"])
    json.dumps(report.to_dict())
    assert report.summary()
    single = structure_report(empty, 1)
    assert single.receptive_field["fraction"] == [0.0] * 8


def test_to_dict_is_plain_json_and_summary_reads_well() -> None:
    report = structure_report(ring_graph(12), 12, torch.arange(12) // 6, max_hops=3)
    assert isinstance(report, StructureReport)
    d = report.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["receptive_field"] == {
        "hops": [1, 2, 3],
        "mean": [2.0, 4.0, 6.0],
        "median": [2.0, 4.0, 6.0],
        "q10": [2.0, 4.0, 6.0],
        "q90": [2.0, 4.0, 6.0],
        "fraction": [2 / 12, 4 / 12, 6 / 12],
    }
    text = report.summary()
    assert "12 nodes, 12 undirected edges" in text
    assert "diameter 6 (exact)" in text
    assert "homophily: edge 0.833" in text  # 20 of 24 directed edges inside an arc


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"edge_index": torch.tensor([[0, 1, 2]] * 3)}, "shape [2, num_edges]"),
        ({"edge_index": torch.tensor([0, 1])}, "shape [2, num_edges]"),
        ({"edge_index": [[0], [1]]}, "torch.Tensor"),
        ({"edge_index": torch.tensor([[0.0], [1.0]])}, "integer dtype"),
        (
            {"edge_index": torch.tensor([[0], [4]])},
            "out of range [0, 4): first offending values [4]",
        ),
        ({"edge_index": torch.tensor([[-1], [0]])}, "offending values [-1]"),
        ({"num_nodes": 0}, "num_nodes must be an int >= 1"),
        ({"num_nodes": 2.5}, "num_nodes must be an int"),
        ({"y": torch.tensor([0, 1, 0])}, "y must have shape [4]"),
        ({"y": torch.zeros(4, 1, dtype=torch.long)}, "y must have shape [4]"),
        ({"y": torch.tensor([0.0, 1.0, 0.0, 1.0])}, "integer dtype"),
        ({"y": torch.tensor([0, -1, 0, 1])}, "non-negative"),
        ({"max_hops": 0}, "max_hops must be an int >= 1"),
        ({"max_sources": 0}, "max_sources must be an int >= 1"),
    ],
)
def test_bad_input_raises_one_line_data_error(kwargs: dict, message: str) -> None:
    args = {"edge_index": path_graph(4), "num_nodes": 4, **kwargs}
    with pytest.raises(DataError) as info:
        structure_report(**args)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_sources_and_hops_raise() -> None:
    with pytest.raises(DataError, match=r"sources has 1 entries out of range \[0, 4\)"):
        receptive_field_growth(path_graph(4), 4, sources=torch.tensor([0, 9]))
    with pytest.raises(DataError, match=r"sources must have shape \[S\]"):
        receptive_field_growth(path_graph(4), 4, sources=torch.tensor([[0]]))
    with pytest.raises(DataError, match="max_hops"):
        receptive_field_growth(path_graph(4), 4, max_hops=-1)
    with pytest.raises(DataError, match="shape"):
        clustering_coefficient(torch.zeros(3, 2, dtype=torch.long), 4)


# ---------------------------------------------------------------------------------- real data


@pytest.mark.dataset
@pytest.mark.skipif(REAL_DATA is None, reason="FATHOM_DATA is not set: needs the shared datasets")
def test_cora_structure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fathom.config import DataConfig
    from fathom.data.build import build_dataset

    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path))
    data = build_dataset(DataConfig(name="cora"))
    report = structure_report(data.edge_index, data.num_nodes, data.y, max_hops=4)
    assert (report.num_nodes, report.num_edges) == (2708, 5278)
    assert (report.num_components, report.largest_component) == (78, 2485)
    assert report.degree["max"] == 168
    h = report.homophily
    assert h is not None
    assert h["edge"] == pytest.approx(pyg_homophily(data.edge_index, data.y, method="edge"))
    assert h["edge"] == pytest.approx(0.81, abs=0.005)
    # a small world: a grid of the same size reaches ~1.4 % of itself at k = 4
    assert report.receptive_field["fraction"][3] > 0.1
