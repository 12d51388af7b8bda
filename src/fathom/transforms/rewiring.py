"""Graph rewiring against over-squashing: SDRF (curvature) and FoSR (spectral gap).

Both are :class:`~torch_geometric.transforms.BaseTransform` s that return a shallow copy of the
input ``Data`` with a new ``edge_index``: undirected (both directions stored), coalesced
(sorted, no duplicates) and without self-loops, whatever the input was. The edge-level
attributes ``edge_attr``, ``edge_weight`` and ``edge_type`` are dropped because the edge set
changed; every other attribute is shared with the input, which is never mutated. Both are
deterministic given ``seed`` (a local ``numpy.random.Generator``; the global RNGs are never
touched).

* :class:`SDRF` -- Stochastic Discrete Ricci Flow, Topping et al., "Understanding
  over-squashing and bottlenecks on graphs via curvature", ICLR 2022, Algorithm 1: add edges
  around the most negatively curved edge (balanced Forman curvature,
  :mod:`fathom.diagnostics.curvature`) and remove the most positively curved one.
* :class:`FoSR` -- First-order Spectral Rewiring, Karhadkar, Banerjee, Montúfar, "FoSR:
  First-order spectral rewiring for addressing oversquashing in GNNs", ICLR 2023, Algorithm 1:
  add the edge that most increases the spectral gap to first order.

:func:`spectral_gap` measures what FoSR optimises, and :data:`REWIRINGS` /
:func:`build_rewiring` resolve a config name (``"none"``, ``"sdrf"``, ``"fosr"``).
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import eigsh
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from fathom.diagnostics.curvature import (
    _adjacency_sets,
    _check_edge_index,
    _edge_curvature,
    _ric,
    _square_counts,
    _undirected_edges,
)
from fathom.errors import ConfigError
from fathom.registry import Registry

__all__ = [
    "REWIRINGS",
    "SDRF",
    "FoSR",
    "NoRewiring",
    "build_rewiring",
    "spectral_gap",
]

#: Edge-level attributes dropped by the rewiring transforms (they no longer match the edges).
DROPPED_EDGE_ATTRS = ("edge_attr", "edge_weight", "edge_type")

_DENSE_MAX_NODES = 1024  # spectral_gap uses a dense eigensolver up to this many nodes


# --------------------------------------------------------------------------------------------
# shared helpers


def _with_edges(data: Data, edge_index: Tensor) -> Data:
    """A shallow copy of ``data`` with ``edge_index`` replaced and edge attributes dropped."""
    out = copy.copy(data)
    out.edge_index = edge_index.to(data.edge_index.device)
    for key in DROPPED_EDGE_ATTRS:
        if key in out:
            del out[key]
    return out


def _edge_index_from_sets(adj: list[set[int]]) -> Tensor:
    """Coalesced ``[2, 2M]`` edge_index (row-major sorted) of a graph given by neighbour sets."""
    deg = np.fromiter((len(s) for s in adj), dtype=np.int64, count=len(adj))
    src = np.repeat(np.arange(len(adj), dtype=np.int64), deg)
    dst = np.fromiter((v for s in adj for v in sorted(s)), dtype=np.int64, count=int(deg.sum()))
    return torch.from_numpy(np.stack([src, dst]))


def _simple_undirected(ei: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges ``(u, v)``, ``u < v``, sorted, of the symmetrised simple graph."""
    lo, hi = np.minimum(ei[0], ei[1]), np.maximum(ei[0], ei[1])
    keep = lo != hi
    keys = np.unique(lo[keep] * num_nodes + hi[keep])
    return keys // num_nodes, keys % num_nodes


def _edge_index_from_pairs(u: np.ndarray, v: np.ndarray, num_nodes: int) -> Tensor:
    """Coalesced ``[2, 2M]`` edge_index holding both directions of the pairs ``(u, v)``."""
    src = np.concatenate([u, v]).astype(np.int64)
    dst = np.concatenate([v, u]).astype(np.int64)
    order = np.argsort(src * max(num_nodes, 1) + dst, kind="stable")
    return torch.from_numpy(np.stack([src[order], dst[order]]))


def _check_int(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_float(name: str, value: Any, minimum: float | None = None) -> float:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    if not ok or math.isnan(value) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ConfigError(f"{name} must be a number{bound}, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------------
# spectral gap


def spectral_gap(edge_index: Tensor, num_nodes: int | None = None) -> float:
    """Spectral gap :math:`\\lambda_2` of the symmetric normalised Laplacian.

    .. math::

        L = I - D^{-1/2} A D^{-1/2}, \\qquad 0 = \\lambda_1 \\le \\lambda_2 \\le \\dots \\le 2,

    of the symmetrised simple graph (self-loops and duplicates ignored). An isolated node gets
    :math:`L_{vv} = 0` (Chung's convention, as ``networkx.normalized_laplacian_matrix``), so
    it contributes an eigenvalue 0: the gap is 0 exactly when the graph is disconnected.
    Cheeger: :math:`\\lambda_2 / 2 \\le h_G \\le \\sqrt{2\\lambda_2}`; a small gap means a
    bottleneck, and FoSR (Karhadkar et al., ICLR 2023) adds edges to increase it. Dense
    ``numpy.linalg.eigvalsh`` up to 1024 nodes, ``scipy.sparse.linalg.eigsh`` (the two largest
    eigenvalues of :math:`I - L`) above.

    Args:
        edge_index (Tensor): integer COO edge indices.
        num_nodes (int, optional): number of nodes; ``edge_index.max() + 1`` when None.

    Returns:
        float: :math:`\\lambda_2` (0.0 for fewer than 2 nodes).

    Shapes:
        edge_index: ``[2, E]`` -> scalar.
    """
    ei, n = _check_edge_index(edge_index, num_nodes)
    if n < 2:
        return 0.0
    u, v = _simple_undirected(ei, n)
    ones = np.ones(2 * u.size)
    adj = sp.csr_matrix((ones, (np.concatenate([u, v]), np.concatenate([v, u]))), shape=(n, n))
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.zeros(n)
    inv_sqrt[deg > 0] = deg[deg > 0] ** -0.5
    # M = I - L = D^-1/2 A D^-1/2 + diag(isolated); lambda_2(L) = 1 - (second largest of M).
    d_half = sp.diags(inv_sqrt)
    m = (d_half @ adj @ d_half + sp.diags((deg == 0).astype(np.float64))).tocsr()
    if n <= _DENSE_MAX_NODES:
        mu = np.linalg.eigvalsh(m.toarray())  # ascending
        mu2 = mu[-2]
    else:
        v0 = np.random.default_rng(0).uniform(0.5, 1.5, n)
        mu = eigsh(m, k=2, which="LA", v0=v0, return_eigenvectors=False)
        mu2 = np.sort(mu)[0]
    return max(0.0, float(1.0 - mu2))


# --------------------------------------------------------------------------------------------
# SDRF


def _extreme_edge(curv: dict[tuple[int, int], float], largest: bool) -> tuple[int, int]:
    """The edge of minimal (or maximal) curvature; ties go to the smallest ``(u, v)``."""
    target = max(curv.values()) if largest else min(curv.values())
    return min(e for e, c in curv.items() if c == target)


def _candidate_improvements(
    adj: list[set[int]], i: int, j: int, ric_ij: float
) -> tuple[list[tuple[int, int]], np.ndarray]:
    """SDRF candidates around edge ``i ~ j`` and the curvature gain each would bring.

    Candidates are the non-edges ``(k, l)``, ``k`` in ``S1(i) ∪ {i}``, ``l`` in
    ``S1(j) ∪ {j}``, ``k != l``, each unordered pair once, in lexicographic order of
    ``(k, l)`` over the sorted balls; the gain is ``Ric'(i, j) - Ric(i, j)`` with ``Ric'``
    the curvature after adding ``(k, l)``. A candidate with ``k = i`` or ``l = j`` changes a
    degree and a triangle, so it is recomputed with the edge added; any other one leaves
    degrees, triangles and the sets ``S1(i) \\ S1(j)``, ``S1(j) \\ S1(i)`` alone and only adds
    one 4-cycle ``i ~ k ~ l ~ j`` when ``k ∈ S1(i) \\ S1(j)`` and ``l ∈ S1(j) \\ S1(i)``
    (raising both ``c_i[k]`` and ``c_j[l]`` by 1), so its gain is computed in O(1).
    """
    ni, nj = adj[i], adj[j]
    _, _, c_i, c_j = _square_counts(adj, i, j)
    di, dj, triangles = len(ni), len(nj), len(ni & nj)
    squares = sum(1 for c in c_i.values() if c) + sum(1 for c in c_j.values() if c)
    gamma = max(max(c_i.values(), default=0), max(c_j.values(), default=0))
    ball_j = sorted(nj | {j})
    candidates: list[tuple[int, int]] = []
    gains: list[float] = []
    seen: set[tuple[int, int]] = set()
    for k in sorted(ni | {i}):
        nk = adj[k]
        for w in ball_j:
            if k == w or w in nk:
                continue
            key = (k, w) if k < w else (w, k)
            if key in seen:
                continue
            seen.add(key)
            if k == i or w == j:
                nk.add(w)
                adj[w].add(k)
                new = _edge_curvature(adj, i, j)
                nk.discard(w)
                adj[w].discard(k)
            elif k in c_i and w in c_j:
                new_squares = squares + (c_i[k] == 0) + (c_j[w] == 0)
                new_gamma = max(gamma, c_i[k] + 1, c_j[w] + 1)
                new = _ric(di, dj, triangles, new_squares, new_gamma)
            else:
                new = ric_ij
            candidates.append(key)
            gains.append(new - ric_ij)
    return candidates, np.asarray(gains, dtype=np.float64)


def _affected_edges(adj: list[set[int]], a: int, b: int) -> set[tuple[int, int]]:
    """Edges whose curvature can change when the pair ``(a, b)`` is added or removed.

    ``Ric(u, v)`` reads the degrees and neighbour sets of ``u`` and ``v`` and the adjacency
    between ``S1(u)`` and ``S1(v)``; so the edges at ``a`` or ``b``, and the edges ``u ~ v``
    with ``u ∈ S1(a)``, ``v ∈ S1(b)`` (``adj`` is the graph after the change).
    """
    out: set[tuple[int, int]] = set()
    for x in (a, b):
        for y in adj[x]:
            out.add((x, y) if x < y else (y, x))
    nb = adj[b]
    for x in adj[a]:
        for y in adj[x] & nb:
            out.add((x, y) if x < y else (y, x))
    return out


def _refresh(curv: dict[tuple[int, int], float], adj: list[set[int]], a: int, b: int) -> None:
    for u, v in _affected_edges(adj, a, b):
        curv[(u, v)] = _edge_curvature(adj, u, v)


def _sdrf(
    adj: list[set[int]],
    loops: int,
    tau: float,
    removal_bound: float,
    rng: np.random.Generator,
) -> tuple[int, int]:
    """Run SDRF in place on the neighbour sets; returns ``(edges added, edges removed)``."""
    curv = {(u, v): _edge_curvature(adj, u, v) for u, v in _undirected_edges(adj)}
    added = removed = 0
    for _ in range(loops):
        if not curv:
            break
        i, j = _extreme_edge(curv, largest=False)
        # As in the official code, the removal candidate is chosen from the curvatures at
        # the start of the iteration, i.e. before this iteration's addition.
        a, b = _extreme_edge(curv, largest=True)
        ric_ab = curv[(a, b)]
        candidates, gains = _candidate_improvements(adj, i, j, curv[(i, j)])
        if candidates:
            logits = tau * gains
            p = np.exp(logits - logits.max())
            p /= p.sum()
            k, w = candidates[int(rng.choice(len(candidates), p=p))]
            adj[k].add(w)
            adj[w].add(k)
            _refresh(curv, adj, k, w)
            added += 1
        if ric_ab > removal_bound:
            adj[a].discard(b)
            adj[b].discard(a)
            del curv[(a, b)]
            _refresh(curv, adj, a, b)
            removed += 1
        elif not candidates:
            break
    return added, removed


class SDRF(BaseTransform):
    """Stochastic Discrete Ricci Flow rewiring (Topping et al., ICLR 2022, Algorithm 1).

    Each of ``loops`` iterations, with :math:`\\mathrm{Ric}` the balanced Forman curvature
    (:func:`~fathom.diagnostics.curvature.balanced_forman_curvature`):

    1. take the edge :math:`(i, j)` of minimal :math:`\\mathrm{Ric}` (ties: smallest
       :math:`(i, j)`);
    2. for every candidate non-edge :math:`(k, l)`, :math:`k \\in S_1(i) \\cup \\{i\\}`,
       :math:`l \\in S_1(j) \\cup \\{j\\}`, :math:`k \\ne l`, compute the improvement
       :math:`x_{kl} = \\mathrm{Ric}_{+kl}(i,j) - \\mathrm{Ric}(i,j)` and add one candidate
       sampled with probability :math:`\\mathrm{softmax}(\\tau x)_{kl}`;
    3. if the most positively curved edge has :math:`\\mathrm{Ric} > C^+` (``removal_bound``),
       remove it.

    Stops early when there is no candidate and nothing to remove. Curvatures are computed
    once and then updated locally: adding or removing :math:`(a, b)` can only change the
    edges at :math:`a` or :math:`b` and the edges between :math:`S_1(a)` and :math:`S_1(b)`.

    Like the official code (``jctops/understanding-oversquashing``,
    ``gdl/src/gdl/curvature/numba.py::sdrf``): a candidate is sampled even when no
    improvement is positive (there is no "skip" rule), and the edge to remove is the most
    curved one at the start of the iteration (before the addition, so the new edge is never
    removed at once). Unlike it: the curvature is Definition 1 of the paper (see
    :mod:`fathom.diagnostics.curvature`); the graph is always treated as undirected (the
    official default ``is_undirected=False`` builds a directed adjacency); the ball of ``j``
    is :math:`S_1(j) \\cup \\{j\\}` (the official numba/cuda code appends ``i`` instead -- a typo
    the FoSR authors' copy fixes); each unordered candidate pair is counted once; and the
    extreme edges are taken over edges only (the official ``argmin`` runs over the dense
    matrix whose non-edges hold 0).

    Args:
        loops (int): number of iterations (each adds at most one edge, removes at most one).
        tau (float): softmax inverse temperature :math:`\\tau \\ge 0` (0: uniform sampling).
        removal_bound (float): :math:`C^+`; ``math.inf`` disables removal.
        seed (int): seed of the local ``numpy.random.Generator``.

    Shapes:
        data.edge_index: ``[2, E]`` -> ``[2, E']`` (undirected, coalesced, no self-loops).
    """

    def __init__(
        self, loops: int = 10, tau: float = 1.0, removal_bound: float = 0.5, seed: int = 0
    ) -> None:
        self.loops = _check_int("loops", loops)
        self.tau = _check_float("tau", tau, minimum=0.0)
        self.removal_bound = _check_float("removal_bound", removal_bound)
        self.seed = _check_int("seed", seed)

    def forward(self, data: Data) -> Data:
        ei, n = _check_edge_index(data.edge_index, data.num_nodes)
        adj = _adjacency_sets(ei, n)
        _sdrf(adj, self.loops, self.tau, self.removal_bound, np.random.default_rng(self.seed))
        return _with_edges(data, _edge_index_from_sets(adj))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(loops={self.loops}, tau={self.tau}, "
            f"removal_bound={self.removal_bound}, seed={self.seed})"
        )


# --------------------------------------------------------------------------------------------
# FoSR


class _EdgeKeys:
    """Membership of undirected pairs in a growing edge set (sorted keys ``u * n + v``)."""

    def __init__(self, u: np.ndarray, v: np.ndarray, num_nodes: int) -> None:
        self.n = num_nodes
        self.keys = np.sort(u.astype(np.int64) * num_nodes + v)

    def contains(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        key = np.minimum(a, b).astype(np.int64) * self.n + np.maximum(a, b)
        if self.keys.size == 0:
            return np.zeros(key.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self.keys, key), self.keys.size - 1)
        return self.keys[pos] == key

    def add(self, a: int, b: int) -> None:
        key = min(a, b) * self.n + max(a, b)
        self.keys = np.insert(self.keys, np.searchsorted(self.keys, key), key)


def _best_pair(
    y: np.ndarray, rows: np.ndarray, cols: np.ndarray, edges: _EdgeKeys
) -> tuple[float, int, int] | None:
    """Minimal ``y[r] * y[c]`` over non-edge pairs ``r != c`` of ``rows x cols``.

    Ties go to the smallest ``(min, max)`` pair; None if every pair is an edge or a loop.
    """
    r, c = np.meshgrid(rows, cols, indexing="ij")
    r, c = r.ravel(), c.ravel()
    valid = (r != c) & ~edges.contains(r, c)
    if not valid.any():
        return None
    r, c = r[valid], c[valid]
    lo, hi = np.minimum(r, c), np.maximum(r, c)
    prod = y[r] * y[c]
    t = np.lexsort((hi, lo, prod))[0]
    return float(prod[t]), int(lo[t]), int(hi[t])


def _min_product_non_edge(y: np.ndarray, edges: _EdgeKeys, start: int = 64) -> tuple[int, int]:
    """The non-edge ``(u, v)``, ``u < v``, minimising ``y[u] * y[v]``, without an n x n matrix.

    A negative product pairs a positive with a negative entry, so the search starts with the
    ``K`` largest positive and the ``K`` most negative entries and grows ``K`` until the best
    non-edge found beats the bound ``min(P_0 N_K, P_K N_0)`` on every pair outside the
    ``K x K`` block (``P``/``N`` sorted by magnitude). If every cross-sign pair is an edge,
    the same search runs over the entries of smallest ``|y|`` (non-negative products).
    Returns ``(-1, -1)`` for a complete graph.
    """
    n = y.size
    pos = np.flatnonzero(y > 0)
    neg = np.flatnonzero(y < 0)
    pos = pos[np.argsort(-y[pos], kind="stable")]
    neg = neg[np.argsort(y[neg], kind="stable")]
    k = start
    while pos.size and neg.size:
        best = _best_pair(y, pos[:k], neg[:k], edges)
        bound = min(
            y[pos[0]] * y[neg[k]] if k < neg.size else math.inf,
            y[pos[k]] * y[neg[0]] if k < pos.size else math.inf,
        )
        if best is not None and best[0] <= bound:
            return best[1], best[2]
        if k >= pos.size and k >= neg.size:
            break  # every cross-sign pair is an edge
        k *= 4
    order = np.argsort(np.abs(y), kind="stable")
    mag = np.abs(y[order])
    k = start
    while True:
        best = _best_pair(y, order[:k], order[:k], edges)
        bound = mag[0] * mag[k] if k < n else math.inf
        if best is not None and best[0] <= bound:
            return best[1], best[2]
        if k >= n:
            return -1, -1
        k *= 4


class _PowerIteration:
    """Power iteration on :math:`I + D^{-1/2} A D^{-1/2}` orthogonal to :math:`\\sqrt{d}`."""

    def __init__(self, u: np.ndarray, v: np.ndarray, num_nodes: int) -> None:
        ones = np.ones(2 * u.size)
        rows, cols = np.concatenate([u, v]), np.concatenate([v, u])
        self.adj = sp.csr_matrix((ones, (rows, cols)), shape=(num_nodes, num_nodes))
        self.deg = np.asarray(self.adj.sum(axis=1)).ravel()
        self.added_u: list[int] = []
        self.added_v: list[int] = []

    def add_edge(self, a: int, b: int) -> None:
        self.added_u.append(a)
        self.added_v.append(b)
        self.deg[a] += 1
        self.deg[b] += 1

    def step(self, x: np.ndarray) -> np.ndarray:
        sqrt_d = np.sqrt(self.deg)
        total = self.deg.sum()
        if total > 0:
            x = x - (x @ sqrt_d) * sqrt_d / total
        inv_sqrt = np.divide(1.0, sqrt_d, out=np.zeros_like(sqrt_d), where=sqrt_d > 0)
        z = x * inv_sqrt
        az = self.adj @ z
        if self.added_u:
            au, av = np.asarray(self.added_u), np.asarray(self.added_v)
            np.add.at(az, au, z[av])
            np.add.at(az, av, z[au])
        y = x + az * inv_sqrt
        norm = np.linalg.norm(y)
        return y / norm if norm > 0 else y


def _fosr(
    u: np.ndarray,
    v: np.ndarray,
    num_nodes: int,
    iterations: int,
    initial_power_iters: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """FoSR on the undirected pairs ``(u, v)``; returns the pairs with the added edges."""
    power = _PowerIteration(u, v, num_nodes)
    edges = _EdgeKeys(u, v, num_nodes)
    x = 2.0 * rng.random(num_nodes) - 1.0
    for _ in range(initial_power_iters):
        x = power.step(x)
    for _ in range(iterations):
        a, b = _min_product_non_edge(x / np.sqrt(power.deg + 1.0), edges)
        if a < 0:
            break  # complete graph
        edges.add(a, b)
        power.add_edge(a, b)
        x = power.step(x)
    new_u = np.concatenate([u, np.asarray(power.added_u, dtype=np.int64)])
    new_v = np.concatenate([v, np.asarray(power.added_v, dtype=np.int64)])
    return new_u, new_v


class FoSR(BaseTransform):
    """First-order Spectral Rewiring (Karhadkar, Banerjee, Montúfar, ICLR 2023, Algorithm 1).

    Keeps an approximation :math:`x` of the second eigenvector of the normalised adjacency
    :math:`\\hat A = D^{-1/2} A D^{-1/2}` by power iteration on :math:`I + \\hat A` with the
    top eigenvector :math:`\\sqrt{d}` projected out,

    .. math::

        x \\leftarrow x - \\frac{\\langle x, \\sqrt{d}\\rangle}{\\sum_v d_v}\\sqrt{d}, \\qquad
        x \\leftarrow \\frac{(I + \\hat A)x}{\\|(I + \\hat A)x\\|}

    (``initial_power_iters`` steps from a uniform :math:`[-1, 1]` start), then ``iterations``
    times adds the non-edge

    .. math::

        (u, v) = \\arg\\min_{u \\ne v,\\ u \\not\\sim v}
            \\frac{x_u x_v}{\\sqrt{(1 + d_u)(1 + d_v)}}

    -- the first-order increase of the spectral gap -- updates the degrees and takes one power
    step on the new graph. No :math:`n \\times n` matrix is formed: the minimal product pairs
    the largest positive with the most negative entries of :math:`y = x / \\sqrt{1 + d}`, so
    only the top ``K`` of each sign are searched, ``K`` growing until the best non-edge is
    provably optimal.

    Follows the official code (``kedar2/FoSR``, ``edge_rewire``), including its use of plain
    degrees in the power iteration and :math:`1 + d` in the score. Differences: the graph is
    symmetrised and de-duplicated first; an isolated node gets :math:`D^{-1/2}_{vv} = 0` (the
    official code divides by zero); and the ``edge_type`` marking added edges is not kept.

    Args:
        iterations (int): number of edges to add (fewer only for a complete graph).
        initial_power_iters (int): power-iteration steps before the first addition.
        seed (int): seed of the local ``numpy.random.Generator`` drawing the start vector.

    Shapes:
        data.edge_index: ``[2, E]`` -> ``[2, E']`` (undirected, coalesced, no self-loops).
    """

    def __init__(self, iterations: int = 50, initial_power_iters: int = 5, seed: int = 0) -> None:
        self.iterations = _check_int("iterations", iterations)
        self.initial_power_iters = _check_int("initial_power_iters", initial_power_iters)
        self.seed = _check_int("seed", seed)

    def forward(self, data: Data) -> Data:
        ei, n = _check_edge_index(data.edge_index, data.num_nodes)
        u, v = _simple_undirected(ei, n)
        rng = np.random.default_rng(self.seed)
        u, v = _fosr(u, v, n, self.iterations, self.initial_power_iters, rng)
        return _with_edges(data, _edge_index_from_pairs(u, v, n))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(iterations={self.iterations}, "
            f"initial_power_iters={self.initial_power_iters}, seed={self.seed})"
        )


class NoRewiring(BaseTransform):
    """The identity transform (``data.rewire = "none"``): returns the graph unchanged."""

    def forward(self, data: Data) -> Data:
        return data


# --------------------------------------------------------------------------------------------
# registry

RewiringFactory = Callable[..., BaseTransform]

#: Rewiring name -> factory taking ``iterations``, ``seed`` and the method's own options.
REWIRINGS: Registry[RewiringFactory] = Registry("rewiring")


@REWIRINGS.register("none")
def _build_none(iterations: int, seed: int) -> BaseTransform:
    return NoRewiring()


@REWIRINGS.register("sdrf")
def _build_sdrf(
    iterations: int, seed: int, tau: float = 1.0, removal_bound: float = 0.5
) -> BaseTransform:
    return SDRF(loops=iterations, tau=tau, removal_bound=removal_bound, seed=seed)


@REWIRINGS.register("fosr")
def _build_fosr(iterations: int, seed: int, initial_power_iters: int = 5) -> BaseTransform:
    return FoSR(iterations=iterations, initial_power_iters=initial_power_iters, seed=seed)


def build_rewiring(name: str, *, iterations: int, seed: int, **kwargs: Any) -> BaseTransform:
    """The rewiring transform registered as ``name`` in :data:`REWIRINGS`.

    ``iterations`` becomes ``SDRF.loops`` / ``FoSR.iterations`` (ignored by ``"none"``), and
    ``kwargs`` are the method's other options (SDRF: ``tau``, ``removal_bound``; FoSR:
    ``initial_power_iters``).

    Raises:
        ConfigError: unknown name (the message lists the choices), an option the method does
            not take, or an invalid value.
    """
    factory = REWIRINGS.get(name)
    options = [p for p in inspect.signature(factory).parameters if p not in ("iterations", "seed")]
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        takes = ", ".join(options) if options else "no options"
        raise ConfigError(
            f"rewiring {name!r} got unknown option(s) {', '.join(unknown)}; it takes: {takes}"
        )
    return factory(iterations=iterations, seed=seed, **kwargs)
