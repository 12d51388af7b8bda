"""Tests of fathom.transforms.rewiring (SDRF, FoSR, spectral gap, registry)."""

from __future__ import annotations

import itertools
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor
from torch_geometric.data import Data

from fathom.diagnostics.curvature import (
    _adjacency_sets,
    _edge_curvature,
    _undirected_edges,
    balanced_forman_curvature,
    bottleneck_edges,
)
from fathom.errors import ConfigError, DataError
from fathom.transforms.rewiring import (
    REWIRINGS,
    SDRF,
    FoSR,
    NoRewiring,
    _candidate_improvements,
    _EdgeKeys,
    _min_product_non_edge,
    _refresh,
    build_rewiring,
    spectral_gap,
)

REAL_DATA = os.environ.get("FATHOM_DATA") or None
needs_real_data = pytest.mark.skipif(
    REAL_DATA is None, reason="FATHOM_DATA is not set: real-dataset tests need the shared datasets"
)


def undirected(pairs: list[tuple[int, int]]) -> Tensor:
    e = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).T
    return torch.cat([e, e.flip(0)], dim=1)


def pair_set(edge_index: Tensor) -> set[tuple[int, int]]:
    return {(min(u, v), max(u, v)) for u, v in edge_index.T.tolist()}


def two_k4_and_a_bridge() -> tuple[Tensor, int]:
    """Cliques {0,1,2,3} and {4,5,6,7} joined by the bridge 3-4 (curvature -1)."""
    k4 = list(itertools.combinations(range(4), 2))
    return undirected([*k4, *[(a + 4, b + 4) for a, b in k4], (3, 4)]), 8


def barbell(m: int = 5, path: int = 2) -> tuple[Tensor, int]:
    """Cliques {0..m-1} and {m..2m-1} joined by the path m-1, 2m, ..., 2m+path-1, m."""
    left = list(itertools.combinations(range(m), 2))
    right = [(a + m, b + m) for a, b in left]
    chain = [m - 1, *range(2 * m, 2 * m + path), m]
    return undirected(left + right + list(itertools.pairwise(chain))), 2 * m + path


def random_graph(n: int, p: float, seed: int) -> Tensor:
    rng = np.random.default_rng(seed)
    return undirected([e for e in itertools.combinations(range(n), 2) if rng.random() < p])


def graph_data(edge_index: Tensor, n: int) -> Data:
    m = edge_index.size(1)
    return Data(
        x=torch.arange(n, dtype=torch.float32).view(n, 1),
        edge_index=edge_index,
        edge_attr=torch.ones(m, 2),
        edge_weight=torch.ones(m),
        y=torch.arange(n) % 2,
        num_nodes=n,
    )


def assert_simple_undirected(edge_index: Tensor, n: int) -> None:
    """Both directions of every edge, no self-loop, no duplicate, sorted (coalesced)."""
    assert edge_index.dtype == torch.long
    src, dst = edge_index.tolist()
    pairs = list(zip(src, dst, strict=True))
    assert all(u != v for u, v in pairs)
    assert len(set(pairs)) == len(pairs)
    assert set(pairs) == {(v, u) for u, v in pairs}
    assert pairs == sorted(pairs)
    assert all(0 <= u < n for u in src + dst)


# --------------------------------------------------------------------------------------------
# spectral gap


def test_spectral_gap_closed_forms() -> None:
    # K_n: L has eigenvalues 0 and n/(n-1); C_n: 1 - cos(2 pi k / n); P_n: 1 - cos(pi k/(n-1)).
    assert spectral_gap(undirected(list(itertools.combinations(range(4), 2)))) == pytest.approx(
        4 / 3
    )
    assert spectral_gap(undirected([(0, 1), (1, 2), (2, 3), (3, 0)])) == pytest.approx(1.0)
    assert spectral_gap(undirected([(i, i + 1) for i in range(9)])) == pytest.approx(
        1 - math.cos(math.pi / 9)
    )


def test_spectral_gap_sparse_path_matches_closed_form() -> None:
    n = 1200  # above the dense threshold: eigsh
    cycle = undirected([(i, (i + 1) % n) for i in range(n)])
    assert spectral_gap(cycle) == pytest.approx(1 - math.cos(2 * math.pi / n), rel=1e-6)


def test_spectral_gap_is_zero_when_disconnected_and_ignores_loops_and_direction() -> None:
    triangles = undirected([(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)])
    assert spectral_gap(triangles) == pytest.approx(0.0, abs=1e-12)
    c4 = undirected([(0, 1), (1, 2), (2, 3), (3, 0)])
    assert spectral_gap(c4, num_nodes=5) == pytest.approx(0.0, abs=1e-12)  # isolated node 4
    messy = torch.tensor([[0, 1, 2, 3, 0, 2], [1, 2, 3, 0, 1, 2]])  # one direction, dup, loop
    assert spectral_gap(messy) == pytest.approx(1.0)
    assert spectral_gap(torch.zeros(2, 0, dtype=torch.long), num_nodes=1) == 0.0
    with pytest.raises(DataError):
        spectral_gap(torch.tensor([[0, 3]]))


# --------------------------------------------------------------------------------------------
# SDRF internals


def test_sdrf_improvements_around_a_bridge() -> None:
    # Bridge (3,4) of two K4s: d 4, 4, Ric = 2/4 + 2/4 - 2 = -1.
    # Adding (k, w), k in {0,1,2}, w in {5,6,7} makes one 4-cycle through k and w with no
    # diagonal: squares 1 + 1, gamma_max 1, +2/(1*4) -> Ric -1/2, gain 1/2.
    # Adding (3, w), w in {5,6,7}: d_3 = 5 and one triangle {w}; S1(3)\S1(4)\{4} = {0,1,2}
    # has no neighbour in S1(4)\S1(3)\{3} = {5,6,7}\{w}: no 4-cycle.
    # Ric = 2/5 + 2/4 - 2 + 2*1/5 + 1/4 = -0.45, gain 0.55; (k, 4) likewise.
    ei, n = two_k4_and_a_bridge()
    adj = _adjacency_sets(ei.numpy(), n)
    assert _edge_curvature(adj, 3, 4) == pytest.approx(-1.0)
    candidates, gains = _candidate_improvements(adj, 3, 4, -1.0)
    expected = {(k, w): 0.5 for k in (0, 1, 2) for w in (5, 6, 7)}
    expected |= {(k, 4): 0.55 for k in (0, 1, 2)} | {(3, w): 0.55 for w in (5, 6, 7)}
    assert candidates == sorted(expected)
    assert gains.tolist() == pytest.approx([expected[c] for c in candidates])


@pytest.mark.parametrize("seed", range(5))
def test_sdrf_improvements_match_recomputation(seed: int) -> None:
    # The O(1) gain of a candidate away from i and j must equal adding it and recomputing.
    n = 16
    ei = random_graph(n, p=0.25, seed=seed)
    adj = _adjacency_sets(ei.numpy(), n)
    checked = 0
    for i, j in _undirected_edges(adj)[::3]:
        ric = _edge_curvature(adj, i, j)
        candidates, gains = _candidate_improvements(adj, i, j, ric)
        balls = ({*adj[i], i}, {*adj[j], j})
        assert len(set(candidates)) == len(candidates)
        for (k, w), gain in zip(candidates, gains.tolist(), strict=True):
            assert k < w and w not in adj[k]
            assert (k in balls[0] and w in balls[1]) or (w in balls[0] and k in balls[1])
            adj[k].add(w)
            adj[w].add(k)
            assert gain == pytest.approx(_edge_curvature(adj, i, j) - ric, abs=1e-12)
            adj[k].discard(w)
            adj[w].discard(k)
            checked += 1
    assert checked > 20


@pytest.mark.parametrize("seed", range(4))
def test_local_curvature_refresh_matches_full_recomputation(seed: int) -> None:
    n = 15
    rng = np.random.default_rng(seed)
    adj = _adjacency_sets(random_graph(n, p=0.3, seed=seed).numpy(), n)
    curv = {e: _edge_curvature(adj, *e) for e in _undirected_edges(adj)}
    for _ in range(25):
        a, b = (int(t) for t in rng.choice(n, size=2, replace=False))
        a, b = min(a, b), max(a, b)
        if b in adj[a]:
            adj[a].discard(b)
            adj[b].discard(a)
            del curv[(a, b)]
        else:
            adj[a].add(b)
            adj[b].add(a)
        _refresh(curv, adj, a, b)
        full = {e: _edge_curvature(adj, *e) for e in _undirected_edges(adj)}
        assert curv.keys() == full.keys()
        for e, c in full.items():
            assert curv[e] == c


# --------------------------------------------------------------------------------------------
# SDRF transform


def test_sdrf_one_greedy_step_on_the_bridge() -> None:
    # With tau = 1000 the 0.55-gain candidates win (odds e^50 against each 0.5 one). The most
    # curved edge at the start is inside a K4 away from the bridge: d 3, 3 and two triangles,
    # 2/3 + 2/3 - 2 + 2*2/3 + 2/3 = 4/3 > 0.5, ties -> (0, 1), which is removed.
    ei, n = two_k4_and_a_bridge()
    greedy = {(0, 4), (1, 4), (2, 4), (3, 5), (3, 6), (3, 7)}
    for seed in range(5):
        out = SDRF(loops=1, tau=1000.0, seed=seed)(graph_data(ei, n))
        added = pair_set(out.edge_index) - pair_set(ei)
        removed = pair_set(ei) - pair_set(out.edge_index)
        assert removed == {(0, 1)}
        assert len(added) == 1 and added <= greedy
        assert bottleneck_edges(out.edge_index, n, k=1)[0][2] == pytest.approx(-0.45)


def test_sdrf_raises_the_minimum_curvature() -> None:
    ei, n = two_k4_and_a_bridge()
    before = balanced_forman_curvature(ei, n)
    assert float(before.min()) == pytest.approx(-1.0)
    for seed in range(3):
        out = SDRF(loops=5, tau=1.0, seed=seed)(graph_data(ei, n))
        after = balanced_forman_curvature(out.edge_index, n)
        assert float(after.min()) > -1.0 + 0.2
        assert spectral_gap(out.edge_index, n) > spectral_gap(ei, n)


def test_sdrf_is_deterministic_simple_and_does_not_mutate_input() -> None:
    ei, n = barbell(5, 3)
    data = graph_data(ei, n)
    snapshot = {k: v.clone() for k, v in data.items() if isinstance(v, Tensor)}
    a = SDRF(loops=8, seed=3)(data)
    b = SDRF(loops=8, seed=3)(data)
    direct = SDRF(loops=8, seed=3).forward(data)
    assert torch.equal(a.edge_index, b.edge_index)
    assert torch.equal(a.edge_index, direct.edge_index)
    assert not torch.equal(a.edge_index, ei)
    assert_simple_undirected(a.edge_index, n)
    # Input untouched; edge attributes dropped from the output; the rest shared.
    assert set(snapshot) <= set(data.keys())
    for key, value in snapshot.items():
        assert torch.equal(data[key], value)
    assert "edge_attr" not in a and "edge_weight" not in a
    assert a.x is data.x and a.y is data.y and a.num_nodes == n
    seeds = {tuple(SDRF(loops=8, seed=s)(data).edge_index.flatten().tolist()) for s in range(6)}
    assert len(seeds) > 1  # the seed matters


def test_rewiring_leaves_the_global_rngs_alone() -> None:
    ei, n = barbell(4, 2)
    data = graph_data(ei, n)
    torch.manual_seed(0)
    np.random.seed(0)
    expected_torch, expected_numpy = torch.rand(3), np.random.random(3)
    torch.manual_seed(0)
    np.random.seed(0)
    SDRF(loops=5, seed=1)(data)
    FoSR(iterations=5, seed=1)(data)
    assert torch.equal(torch.rand(3), expected_torch)
    assert np.array_equal(np.random.random(3), expected_numpy)


def test_sdrf_stops_without_candidates_or_removals() -> None:
    k4 = undirected(list(itertools.combinations(range(4), 2)))
    out = SDRF(loops=5, removal_bound=math.inf)(graph_data(k4, 4))
    assert pair_set(out.edge_index) == pair_set(k4)
    # With removal, the complete graph K4 loses its most curved edges one per loop
    # (all 4/3, ties by (u, v)), and nothing can be added around an edge of a clique.
    out = SDRF(loops=1)(graph_data(k4, 4))
    assert pair_set(k4) - pair_set(out.edge_index) == {(0, 1)}
    assert SDRF(loops=0)(graph_data(k4, 4)).edge_index.size(1) == 12


def test_sdrf_symmetrises_messy_input() -> None:
    # One direction, a duplicate and a self-loop: a 5-cycle with loop at 0.
    ei = torch.tensor([[0, 1, 2, 3, 4, 0, 0], [1, 2, 3, 4, 0, 1, 0]])
    out = SDRF(loops=0)(Data(edge_index=ei, num_nodes=5))
    assert_simple_undirected(out.edge_index, 5)
    assert pair_set(out.edge_index) == {(0, 1), (1, 2), (2, 3), (3, 4), (0, 4)}


# --------------------------------------------------------------------------------------------
# FoSR


def official_fosr(edge_index: Tensor, n: int, iterations: int, power: int, seed: int) -> list:
    """The official algorithm (kedar2/FoSR ``edge_rewire``) with a dense n x n matrix."""
    a = np.zeros((n, n))
    for u, v in edge_index.T.tolist():
        if u != v:
            a[u, v] = a[v, u] = 1.0
    x = 2 * np.random.default_rng(seed).random(n) - 1

    def step(x: np.ndarray) -> np.ndarray:
        d = a.sum(1)
        x = x - x.dot(d**0.5) * (d**0.5) / d.sum()
        y = x + a @ (x / d**0.5) / d**0.5
        return y / np.linalg.norm(y)

    for _ in range(power):
        x = step(x)
    added = []
    for _ in range(iterations):
        y = x / (a.sum(1) + 1) ** 0.5
        products = np.outer(y, y)
        products[a > 0] = np.inf
        np.fill_diagonal(products, np.inf)
        u, v = divmod(int(np.argmin(products)), n)
        added.append((min(u, v), max(u, v)))
        a[u, v] = a[v, u] = 1.0
        x = step(x)
    return added


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fosr_matches_the_official_dense_algorithm(seed: int) -> None:
    graphs = [barbell(5, 2), barbell(4, 4), (random_graph(30, 0.2, seed + 10), 30)]
    for ei, n in graphs:
        # The official code divides by zero on isolated nodes; these graphs have none.
        assert torch.bincount(ei[0], minlength=n).min() > 0
        out = FoSR(iterations=6, initial_power_iters=5, seed=seed)(graph_data(ei, n))
        added = sorted(pair_set(out.edge_index) - pair_set(ei))
        assert added == sorted(official_fosr(ei, n, 6, 5, seed))
        assert out.edge_index.size(1) == ei.size(1) + 12


def test_fosr_increases_the_spectral_gap_of_a_barbell() -> None:
    ei, n = barbell(5, 2)
    gap = spectral_gap(ei, n)
    gaps = [gap]
    for iterations in (1, 3, 6):
        out = FoSR(iterations=iterations, seed=0)(graph_data(ei, n))
        gaps.append(spectral_gap(out.edge_index, n))
        added = pair_set(out.edge_index) - pair_set(ei)
        assert len(added) == iterations and pair_set(ei) <= pair_set(out.edge_index)
        # Every added edge joins the two halves (left clique + first path node vs the rest).
        left = set(range(5)) | {10}
        assert all((u in left) != (v in left) for u, v in added)
    assert gaps == sorted(gaps) and gaps[1] > 3 * gap


def test_fosr_is_deterministic_simple_and_does_not_mutate_input() -> None:
    ei, n = barbell(6, 3)
    data = graph_data(ei, n)
    before = data.edge_index.clone()
    a = FoSR(iterations=7, seed=5)(data)
    b = FoSR(iterations=7, seed=5)(data)
    assert torch.equal(a.edge_index, b.edge_index)
    assert torch.equal(data.edge_index, before) and "edge_attr" in data
    assert "edge_attr" not in a and "edge_weight" not in a and a.x is data.x
    assert_simple_undirected(a.edge_index, n)
    assert a.edge_index.size(1) == ei.size(1) + 14


def test_fosr_complete_graph_and_isolated_nodes() -> None:
    k4 = undirected(list(itertools.combinations(range(4), 2)))
    out = FoSR(iterations=3)(Data(edge_index=k4, num_nodes=4))
    assert pair_set(out.edge_index) == pair_set(k4)  # nothing to add: stops
    # Two triangles and an isolated node: FoSR connects the pieces without dividing by 0.
    ei = undirected([(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)])
    out = FoSR(iterations=3, seed=0)(Data(edge_index=ei, num_nodes=7))
    assert_simple_undirected(out.edge_index, 7)
    assert len(pair_set(out.edge_index) - pair_set(ei)) == 3


def brute_min_pair(y: np.ndarray, edges: set[tuple[int, int]]) -> tuple[float, int, int]:
    return min(
        (y[u] * y[v], u, v)
        for u, v in itertools.combinations(range(y.size), 2)
        if (u, v) not in edges
    )


@pytest.mark.parametrize("case", range(8))
def test_min_product_search_is_exact(case: int) -> None:
    rng = np.random.default_rng(case)
    n = 60
    y = rng.normal(size=n)
    if case == 1:
        y = np.abs(y)  # one sign only: non-negative products
    if case == 2:
        y[:5] = 0.0
    edges = {e for e in itertools.combinations(range(n), 2) if rng.random() < 0.3}
    if case == 3:  # every cross-sign pair is an edge: the fallback search
        edges |= {(min(u, v), max(u, v)) for u in range(n) for v in range(n) if y[u] * y[v] < 0}
    if case >= 4:  # the extreme entries are all adjacent, forcing the block to grow
        top = np.argsort(y)
        extreme = [int(t) for t in (*top[: 3 * case], *top[-3 * case :])]
        edges |= {(min(u, v), max(u, v)) for u in extreme for v in extreme if u != v}
    u, v = np.array(sorted(edges)).T
    value, bu, bv = brute_min_pair(y, edges)
    got = _min_product_non_edge(y, _EdgeKeys(u, v, n), start=2)
    assert y[got[0]] * y[got[1]] == value
    assert got == (bu, bv)


def test_min_product_search_on_a_complete_graph() -> None:
    u, v = np.array(list(itertools.combinations(range(5), 2))).T
    assert _min_product_non_edge(np.array([1.0, -1, 2, -2, 0]), _EdgeKeys(u, v, 5)) == (-1, -1)


# --------------------------------------------------------------------------------------------
# registry


def test_registry_and_build_rewiring() -> None:
    assert REWIRINGS.names() == ["fosr", "none", "sdrf"]
    none = build_rewiring("none", iterations=7, seed=1)
    assert isinstance(none, NoRewiring) and repr(none) == "NoRewiring()"
    data = graph_data(*barbell(4, 2))
    assert none(data).edge_index is data.edge_index
    sdrf = build_rewiring("SDRF", iterations=7, seed=1, tau=2.0)
    assert isinstance(sdrf, SDRF)
    assert repr(sdrf) == "SDRF(loops=7, tau=2.0, removal_bound=0.5, seed=1)"
    fosr = build_rewiring("fosr", iterations=9, seed=2, initial_power_iters=3)
    assert repr(fosr) == "FoSR(iterations=9, initial_power_iters=3, seed=2)"
    assert repr(SDRF()) == "SDRF(loops=10, tau=1.0, removal_bound=0.5, seed=0)"
    assert repr(FoSR()) == "FoSR(iterations=50, initial_power_iters=5, seed=0)"


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: build_rewiring("digl", iterations=1, seed=0), "choose one of: fosr, none, sdrf"),
        (lambda: build_rewiring("fosr", iterations=1, seed=0, tau=1.0), "unknown option(s) tau"),
        (lambda: build_rewiring("none", iterations=1, seed=0, tau=1.0), "no options"),
        (lambda: build_rewiring("sdrf", iterations=-1, seed=0), "loops must be an int >= 0"),
        (lambda: SDRF(tau=float("nan")), "tau must be a number >= 0.0"),
        (lambda: SDRF(tau=-1.0), "tau must be a number >= 0.0"),
        (lambda: SDRF(removal_bound="high"), "removal_bound must be a number"),
        (lambda: FoSR(iterations=2.5), "iterations must be an int >= 0"),
        (lambda: FoSR(seed=True), "seed must be an int >= 0"),
    ],
)
def test_bad_options_raise_config_error(call, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        call()
    assert needle in str(info.value)


def test_bad_graph_raises_data_error() -> None:
    bad = Data(edge_index=torch.tensor([[0, 9], [1, 0]]), num_nodes=3)
    for transform in (SDRF(loops=1), FoSR(iterations=1)):
        with pytest.raises(DataError, match="out of range"):
            transform(bad)


# --------------------------------------------------------------------------------------------
# real data


def _real(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Data:
    from fathom.data.datasets import load_dataset

    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cache"))
    assert REAL_DATA is not None
    return load_dataset(name, data_dir=REAL_DATA, download=False)


@needs_real_data
@pytest.mark.dataset
def test_real_cora_sdrf_50_loops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _real("cora", tmp_path, monkeypatch)
    start = time.perf_counter()
    out = SDRF(loops=50, seed=0)(data)
    elapsed = time.perf_counter() - start
    assert_simple_undirected(out.edge_index, data.num_nodes)
    before = bottleneck_edges(data.edge_index, data.num_nodes, k=20)
    after = bottleneck_edges(out.edge_index, data.num_nodes, k=20)
    assert np.mean([c for *_, c in after]) > np.mean([c for *_, c in before])
    assert elapsed < 20.0


@needs_real_data
@pytest.mark.dataset
def test_real_pubmed_fosr_50(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _real("pubmed", tmp_path, monkeypatch)
    start = time.perf_counter()
    out = FoSR(iterations=50, seed=0)(data)
    elapsed = time.perf_counter() - start
    assert len(pair_set(out.edge_index) - pair_set(data.edge_index)) == 50
    assert spectral_gap(out.edge_index, data.num_nodes) > spectral_gap(
        data.edge_index, data.num_nodes
    )
    assert elapsed < 20.0
