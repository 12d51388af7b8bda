"""Tests of fathom.diagnostics.curvature (balanced Forman curvature, Topping et al. 2022)."""

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

from fathom.diagnostics.curvature import (
    _adjacency_sets,
    _edge_curvature,
    balanced_forman_curvature,
    bottleneck_edges,
)
from fathom.errors import DataError

REAL_DATA = os.environ.get("FATHOM_DATA") or None
needs_real_data = pytest.mark.skipif(
    REAL_DATA is None, reason="FATHOM_DATA is not set: real-dataset tests need the shared datasets"
)


def undirected(pairs: list[tuple[int, int]]) -> Tensor:
    """Both directions of every pair, pairs first then their reverses."""
    e = torch.tensor(pairs, dtype=torch.long).T
    return torch.cat([e, e.flip(0)], dim=1)


def clique(n: int) -> Tensor:
    return undirected(list(itertools.combinations(range(n), 2)))


def curvature_of(edge_index: Tensor, num_nodes: int | None = None) -> dict[tuple[int, int], float]:
    """``{(u, v): Ric}`` for ``u < v`` from :func:`balanced_forman_curvature`, in float64."""
    values = balanced_forman_curvature(edge_index, num_nodes)
    out: dict[tuple[int, int], float] = {}
    for (u, v), c in zip(edge_index.T.tolist(), values.tolist(), strict=True):
        out[(min(u, v), max(u, v))] = c
    return out


def literal_ric(adj: list[set[int]], i: int, j: int) -> float:
    """Definition 1 transcribed literally (set-builder form), as an independent oracle."""
    s = adj
    di, dj = len(s[i]), len(s[j])
    if min(di, dj) == 1:
        return 0.0
    tri = s[i] & s[j]

    def four_cycle_nodes(a: int, b: int) -> dict[int, int]:
        # {k in S1(a) \ S1(b), k != b : exists w in (S1(k) ∩ S1(b)) \ (S1(a) ∪ {a})}
        counts = {}
        for k in s[a] - s[b]:
            if k == b:
                continue
            ws = (s[k] & s[b]) - (s[a] | {a})
            if ws:
                counts[k] = len(ws)
        return counts

    sq_i, sq_j = four_cycle_nodes(i, j), four_cycle_nodes(j, i)
    gamma = max([*sq_i.values(), *sq_j.values()], default=0)
    ric = 2 / di + 2 / dj - 2 + 2 * len(tri) / max(di, dj) + len(tri) / min(di, dj)
    if gamma:
        ric += (len(sq_i) + len(sq_j)) / (gamma * max(di, dj))
    return ric


def random_graph(n: int, p: float, seed: int) -> Tensor:
    rng = np.random.default_rng(seed)
    pairs = [(u, v) for u, v in itertools.combinations(range(n), 2) if rng.random() < p]
    return undirected(pairs)


# --------------------------------------------------------------------------------------------
# closed forms


@pytest.mark.parametrize("n", [3, 4, 5, 7])
def test_clique_edges_have_n_over_n_minus_1(n: int) -> None:
    # d = n-1, |triangles| = n-2, no 4-cycles: 4/(n-1) - 2 + 3(n-2)/(n-1) = n/(n-1).
    values = balanced_forman_curvature(clique(n))
    assert values.shape == (n * (n - 1),)
    assert values.dtype == torch.float32
    assert values.tolist() == pytest.approx([n / (n - 1)] * (n * (n - 1)))


def test_k4_is_four_thirds() -> None:
    curv = curvature_of(clique(4))
    assert len(curv) == 6
    assert list(curv.values()) == pytest.approx([4 / 3] * 6)


def test_four_cycle_edges_are_one() -> None:
    # 2/2 + 2/2 - 2 + (|#sq^i| + |#sq^j|) / (gamma_max max(d)) = 0 + (1 + 1) / (1 * 2) = 1.
    c4 = undirected([(0, 1), (1, 2), (2, 3), (3, 0)])
    assert balanced_forman_curvature(c4).tolist() == pytest.approx([1.0] * 8)


@pytest.mark.parametrize("n", [5, 6, 9])
def test_longer_cycles_are_flat(n: int) -> None:
    # No triangle and no 4-cycle: 2/2 + 2/2 - 2 = 0.
    cycle = undirected([(i, (i + 1) % n) for i in range(n)])
    assert balanced_forman_curvature(cycle).tolist() == pytest.approx([0.0] * (2 * n))


def test_binary_tree() -> None:
    # Complete binary tree on 15 nodes (heap order): root degree 2, internal degree 3, leaves 1.
    pairs = [(p, c) for c in range(1, 15) for p in [(c - 1) // 2]]
    curv = curvature_of(undirected(pairs))
    assert curv[(0, 1)] == pytest.approx(2 / 2 + 2 / 3 - 2)  # -1/3 (root edge)
    assert curv[(0, 2)] == pytest.approx(-1 / 3)
    for edge in [(1, 3), (1, 4), (2, 5), (2, 6)]:
        assert curv[edge] == pytest.approx(-2 / 3)  # internal, degrees 3 and 3
    for leaf in range(7, 15):
        assert curv[((leaf - 1) // 2, leaf)] == 0.0  # a leaf edge


def test_leaf_edge_is_zero_even_next_to_triangles() -> None:
    # The formula would give 2/3 + 2 - 2 = 2/3 for the pendant edge (2, 3); Def. 1 says 0.
    curv = curvature_of(undirected([(0, 1), (1, 2), (0, 2), (2, 3)]))
    assert curv[(2, 3)] == 0.0
    # (0, 1): d 2, 2, one triangle {2}: 1 + 1 - 2 + 2/2 + 1/2 = 3/2.
    assert curv[(0, 1)] == pytest.approx(1.5)
    # (0, 2): d 2, 3, one triangle {1}; S1(0)\S1(2)\{2} is empty, S1(2)\S1(0)\{0} = {3} and
    # S1(3) ∩ {} = {}, so no 4-cycle: 2/2 + 2/3 - 2 + 2/3 + 1/2 = 5/6.
    assert curv[(0, 2)] == pytest.approx(5 / 6)


def test_hand_computed_irregular_graph() -> None:
    # Edges: 0-1 0-2 0-3 0-6 1-4 1-5 1-6 2-4 2-5 2-6 3-4.
    # S1(0)={1,2,3,6} S1(1)={0,4,5,6} S1(2)={0,4,5,6} S1(3)={0,4} S1(4)={1,2,3}
    # S1(5)={1,2} S1(6)={0,1,2}.
    #
    # Ric(0,1): d=4,4. Triangles S1(0)∩S1(1) = {6} -> 1.
    #   #sq^0: k in S1(0)\S1(1)\{1} = {2,3}; exclusion set S1(0)∪{0} = {0,1,2,3,6}.
    #     k=2: S1(2)∩S1(1) = {0,4,5,6} -> minus exclusion {4,5}: 2 (6 is a diagonal, 0 is i)
    #     k=3: S1(3)∩S1(1) = {0,4} -> {4}: 1
    #   #sq^1: w in S1(1)\S1(0)\{0} = {4,5}; exclusion S1(1)∪{1} = {0,1,4,5,6}.
    #     w=4: S1(4)∩S1(0) = {1,2,3} -> {2,3}: 2;  w=5: S1(5)∩S1(0) = {1,2} -> {2}: 1
    #   gamma_max = 2, squares 2 + 2 = 4: 4/(2*4) = 1/2.
    #   Ric = 2/4 + 2/4 - 2 + 2*1/4 + 1/4 + 1/2 = 1/4.
    # Ric(0,3): d=4,2. No triangle.
    #   #sq^0: k in {1,2,6}: k=1: S1(1)∩S1(3) = {0,4} -> {4}: 1; k=2: {0,4} -> {4}: 1;
    #     k=6: S1(6)∩S1(3) = {0} -> {}: not a 4-cycle node.
    #   #sq^3: w in S1(3)\S1(0)\{0} = {4}: S1(4)∩S1(0) = {1,2,3} minus {0,3,4} -> {1,2}: 2.
    #   gamma_max = 2, squares 2 + 1 = 3: 3/(2*4) = 3/8.
    #   Ric = 2/4 + 2/2 - 2 + 3/8 = -1/8.
    # Ric(1,5): d=4,2. No triangle.
    #   #sq^1: k in S1(1)\S1(5)\{5} = {0,4,6}; exclusion {0,1,4,5,6}:
    #     k=0: S1(0)∩S1(5) = {1,2} -> {2}: 1; k=4: {1,2} -> {2}: 1; k=6: {1,2} -> {2}: 1.
    #   #sq^5: w in S1(5)\S1(1)\{1} = {2}: S1(2)∩S1(1) = {0,4,5,6} minus {1,2,5} -> {0,4,6}: 3.
    #   gamma_max = 3, squares 3 + 1 = 4: 4/(3*4) = 1/3.
    #   Ric = 2/4 + 2/2 - 2 + 1/3 = -1/6.
    pairs = [(0, 1), (0, 2), (0, 3), (0, 6), (1, 4), (1, 5), (1, 6), (2, 4), (2, 5), (2, 6), (3, 4)]
    curv = curvature_of(undirected(pairs))
    assert curv[(0, 1)] == pytest.approx(0.25)
    assert curv[(0, 3)] == pytest.approx(-0.125)
    assert curv[(1, 5)] == pytest.approx(-1 / 6)
    # 1 and 2 are twins (both S1 = {0,4,5,6}), so their edges mirror each other.
    assert curv[(0, 2)] == pytest.approx(0.25)
    assert curv[(2, 5)] == pytest.approx(-1 / 6)


@pytest.mark.parametrize("seed", range(6))
def test_matches_literal_definition_on_random_graphs(seed: int) -> None:
    n = 14
    ei = random_graph(n, p=[0.2, 0.35, 0.5][seed % 3], seed=seed)
    adj = _adjacency_sets(ei.numpy(), n)
    curv = curvature_of(ei, n)
    assert curv  # not empty
    for (u, v), c in curv.items():
        expected = literal_ric(adj, u, v)
        assert c == pytest.approx(expected, abs=1e-6)  # float32 output
        assert _edge_curvature(adj, u, v) == pytest.approx(expected, abs=1e-12)
        assert _edge_curvature(adj, v, u) == pytest.approx(expected, abs=1e-12)  # symmetric


# --------------------------------------------------------------------------------------------
# input handling


def test_columns_keep_order_and_handle_direction_duplicates_and_self_loops() -> None:
    # One direction only, a duplicate, a self-loop and a reverse edge: the graph is the
    # 4-cycle 0-1-2-3 (curvature 1 everywhere) plus the loop, which gets NaN.
    ei = torch.tensor([[0, 1, 2, 3, 1, 2, 0], [1, 2, 3, 0, 2, 2, 3]])
    values = balanced_forman_curvature(ei).tolist()
    assert values[:5] == pytest.approx([1.0] * 5)
    assert math.isnan(values[5])
    assert values[6] == pytest.approx(1.0)


def test_isolated_nodes_and_int32_indices() -> None:
    ei = undirected([(0, 1), (1, 2), (2, 0)]).to(torch.int32)
    assert balanced_forman_curvature(ei, num_nodes=10).tolist() == pytest.approx([1.5] * 6)


def test_empty_graph() -> None:
    empty = torch.zeros(2, 0, dtype=torch.long)
    assert balanced_forman_curvature(empty, num_nodes=3).shape == (0,)
    assert bottleneck_edges(empty, num_nodes=3) == []


@pytest.mark.parametrize(
    ("edge_index", "num_nodes", "needle"),
    [
        (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), None, "integer dtype"),
        (torch.tensor([[True], [False]]), None, "integer dtype"),
        (torch.tensor([0, 1]), None, "shape [2, num_edges]"),
        (torch.zeros(3, 2, dtype=torch.long), None, "shape [2, num_edges]"),
        (torch.tensor([[0, -1], [1, 0]]), None, "out of range [0, 2): first offending values [-1]"),
        (torch.tensor([[0, 5], [1, 0]]), 3, "out of range [0, 3): first offending values [5]"),
        (np.array([[0, 1], [1, 0]]), None, "must be a torch.Tensor"),
        (torch.tensor([[0, 1], [1, 0]]), -1, "num_nodes must be an int >= 0"),
    ],
)
def test_bad_input_raises_data_error(edge_index, num_nodes, needle: str) -> None:
    for fn in (balanced_forman_curvature, bottleneck_edges):
        with pytest.raises(DataError) as info:
            fn(edge_index, num_nodes)
        message = str(info.value)
        assert needle in message
        assert "\n" not in message


# --------------------------------------------------------------------------------------------
# bottleneck_edges


def test_bottleneck_edges_of_two_triangles_joined_by_a_bridge() -> None:
    # Triangles {0,1,2} and {3,4,5}, bridge 2-3. Bridge: d 3, 3, no triangle, and neither
    # 0, 1 nor 4, 5 are adjacent across it: 2/3 + 2/3 - 2 = -2/3. Edges (0,2), (1,2), (3,4),
    # (3,5): 5/6 (see test_leaf_edge_is_zero_even_next_to_triangles). (0,1), (4,5): 3/2.
    pairs = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]
    ei = undirected(pairs)
    assert bottleneck_edges(ei, k=1) == [(2, 3, pytest.approx(-2 / 3))]
    top = bottleneck_edges(ei, k=4)
    assert [(u, v) for u, v, _ in top] == [(2, 3), (0, 2), (1, 2), (3, 4)]  # ties by (u, v)
    assert [c for _, _, c in top] == pytest.approx([-2 / 3, 5 / 6, 5 / 6, 5 / 6])
    everything = bottleneck_edges(ei, k=100)
    assert len(everything) == 7
    assert everything[-2:] == [(0, 1, pytest.approx(1.5)), (4, 5, pytest.approx(1.5))]
    assert bottleneck_edges(ei, k=0) == []
    assert all(isinstance(c, float) for _, _, c in everything)


def test_bottleneck_edges_rejects_bad_k() -> None:
    with pytest.raises(DataError, match="k must be an int >= 0"):
        bottleneck_edges(clique(3), k=-1)


# --------------------------------------------------------------------------------------------
# real data


@needs_real_data
@pytest.mark.dataset
def test_real_cora_curvature_is_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fathom.data.datasets import load_dataset

    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cache"))
    assert REAL_DATA is not None
    data = load_dataset("cora", data_dir=REAL_DATA, download=False)
    start = time.perf_counter()
    values = balanced_forman_curvature(data.edge_index, data.num_nodes)
    elapsed = time.perf_counter() - start
    assert values.shape == (10556,)
    assert torch.isfinite(values).all()
    assert float(values.min()) == pytest.approx(-1.8123543, abs=1e-6)
    assert elapsed < 10.0
