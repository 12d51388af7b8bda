r"""Structural report of a graph: receptive-field growth, distances, clustering, homophily.

The report answers two questions a deep-GNN researcher asks before stacking layers:

1. **How fast does the receptive field grow with hops?** A message-passing network with
   :math:`k` layers squeezes the features of the :math:`k`-hop ball :math:`N_k(v)` into one
   fixed-size vector at :math:`v`. When :math:`|N_k(v)|` grows exponentially with :math:`k`
   (small-world graphs: citation networks, random graphs) the ball covers most of the graph
   within a few hops and long-range information is *over-squashed*; on a lattice it grows only
   polynomially (:math:`2k(k+1)` in 2-D). See `"On the Bottleneck of Graph Neural Networks and
   its Practical Implications" <https://arxiv.org/abs/2006.05205>`_ (Alon and Yahav, ICLR 2021)
   and `"Understanding over-squashing and bottlenecks on graphs via curvature"
   <https://arxiv.org/abs/2111.14522>`_ (Topping et al., ICLR 2022).
2. **How homophilous is the graph?** Repeated neighbour averaging helps when neighbours share
   labels and hurts when they do not (`"Beyond Homophily in Graph Neural Networks"
   <https://arxiv.org/abs/2006.11468>`_, Zhu et al., NeurIPS 2020).

Every statistic is computed on the **simple undirected** graph behind ``edge_index``: edges are
symmetrised, self-loops are dropped and duplicate edges count once. Breadth-first searches use
:func:`scipy.sparse.csgraph.breadth_first_order` (BFS in C, one per source); when the graph has
more than ``max_sources`` nodes they start from a uniform sample of ``max_sources`` nodes drawn
with a local :class:`numpy.random.Generator` seeded with ``seed``, so results are reproducible.
Triangles come from the sparse product :math:`(A A) \circ A`.

Measured on a busy 2-core machine: Cora (2,708 nodes) 0.34 s with the default 1,024 sampled
sources and 0.6 s with all 2,708; PubMed (19,717 nodes, 1,024 sampled sources) 1.6 s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import breadth_first_order, connected_components
from torch import Tensor
from torch_geometric.utils import homophily as pyg_homophily

from fathom.diagnostics.graph import adjacency, check_edge_index, check_index, check_num_nodes
from fathom.errors import DataError

__all__ = [
    "StructureReport",
    "clustering_coefficient",
    "receptive_field_growth",
    "structure_report",
]

_LEVEL_LOOP = 64  # BFS levels found by binary search before switching to pointer doubling
_SWEEPS = 2  # extra BFS sweeps that tighten the sampled diameter lower bound
_EFFECTIVE_Q = 0.9  # quantile of the effective diameter (Leskovec et al.)


@dataclass
class StructureReport:
    r"""Structural statistics of a graph (see :func:`structure_report`).

    All statistics refer to the simple undirected graph behind ``edge_index`` (symmetrised,
    no self-loops, no duplicate edges).

    Args:
        num_nodes (int): number of nodes :math:`n` (isolated nodes included).
        num_edges (int): number of undirected edges :math:`m`.
        num_components (int): number of connected components (an isolated node is one).
        largest_component (int): nodes in the largest connected component (LCC).
        degree (dict): ``mean`` (:math:`2m/n`), ``median`` and ``max`` node degree.
        receptive_field (dict): for ``hops`` :math:`k = 1..K`, statistics over the BFS sources
            :math:`v` of :math:`|N_k(v)| = |\{u \ne v : d(u, v) \le k\}|` (the node itself is
            *not* counted): ``mean``, ``median``, ``q10``, ``q90`` (linearly interpolated
            quantiles) and ``fraction`` :math:`= \mathrm{mean}_v |N_k(v)| / n`, the share of
            the graph a :math:`k`-layer network sees on average.
        diameter (int, optional): largest hop distance inside the LCC; exact when every LCC
            node was a BFS source, otherwise a lower bound (the largest eccentricity among the
            sampled sources, improved by double-sweep BFS from the farthest node found).
            :obj:`None` only for an empty graph.
        diameter_exact (bool): whether ``diameter`` is exact.
        effective_diameter (float): the interpolated 90th percentile of the hop distances
            between distinct connected pairs in the LCC (Leskovec et al., KDD 2005): with
            :math:`g(d)` the fraction of pairs at distance :math:`\le d` (:math:`g(0) = 0`) and
            :math:`D` the least integer with :math:`g(D) \ge 0.9`,
            :math:`D - 1 + (0.9 - g(D-1)) / (g(D) - g(D-1))`. NaN when the LCC has one node.
        average_shortest_path (float): mean hop distance :math:`L` between distinct pairs in
            the LCC (over sampled sources when sampling). NaN when the LCC has one node.
        clustering (float): average local clustering coefficient :math:`C` (Watts–Strogatz);
            nodes of degree < 2 count as 0 (the networkx convention).
        transitivity (float): global clustering :math:`3 \times \text{triangles} /
            \text{connected triples}`; 0 when there are no connected triples.
        small_world (dict): ``sigma`` :math:`= (C / C_{rand}) / (L / L_{rand})` with the
            analytic Erdős–Rényi approximations :math:`C_{rand} = \bar k / n` and
            :math:`L_{rand} = \ln n / \ln \bar k` (:math:`\bar k` = mean degree of the whole
            graph), as in Humphries and Gurney, PLoS ONE 2008; also ``C_rand`` and ``L_rand``.
            :math:`\sigma \gg 1` marks a small world. Entries are NaN where undefined
            (:math:`\bar k \le 1`, no edges).
        homophily (dict, optional): with labels, ``edge`` (fraction of edges joining
            same-class nodes), ``node`` (mean over nodes of the same-class fraction of their
            neighbours) and ``class_insensitive`` (Lim et al., NeurIPS 2021), computed by
            :func:`torch_geometric.utils.homophily` on the simple symmetrised graph;
            :obj:`None` without labels.
        sources (int): number of BFS sources used for the receptive field and distances.
    """

    num_nodes: int
    num_edges: int
    num_components: int
    largest_component: int
    degree: dict[str, float]
    receptive_field: dict[str, list[float]]
    diameter: int | None
    diameter_exact: bool
    effective_diameter: float
    average_shortest_path: float
    clustering: float
    transitivity: float
    small_world: dict[str, float]
    homophily: dict[str, float] | None
    sources: int

    def to_dict(self) -> dict[str, Any]:
        """The report as plain ints, floats (NaN where undefined), lists and dicts."""
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines."""
        n = self.num_nodes
        deg = self.degree
        lines = [
            f"graph: {n} nodes, {self.num_edges} undirected edges, {self.num_components} "
            f"component(s), largest {self.largest_component} ({_pct(self.largest_component / n)})"
            f"; degree mean {deg['mean']:.2f}, median {deg['median']:g}, max {deg['max']:g}",
        ]
        rf = self.receptive_field
        growth = "  ".join(
            f"k={k}: {_pct(f)}" for k, f in zip(rf["hops"], rf["fraction"], strict=True)
        )
        lines.append(f"receptive field, mean |N_k|/n over {self.sources} sources: {growth}")
        which = "exact" if self.diameter_exact else "lower bound"
        lines.append(
            f"distances in the largest component: diameter {self.diameter} ({which}), "
            f"effective diameter {self.effective_diameter:.2f}, "
            f"average shortest path {self.average_shortest_path:.2f}"
        )
        sw = self.small_world
        lines.append(
            f"clustering: average {self.clustering:.4f}, transitivity {self.transitivity:.4f}; "
            f"small-world sigma {sw['sigma']:.2f} (C_rand {sw['C_rand']:.2e}, "
            f"L_rand {sw['L_rand']:.2f})"
        )
        if self.homophily is not None:
            h = self.homophily
            lines.append(
                f"homophily: edge {h['edge']:.3f}, node {h['node']:.3f}, "
                f"class-insensitive {h['class_insensitive']:.3f}"
            )
        return "\n".join(lines)


def receptive_field_growth(
    edge_index: Tensor, num_nodes: int, max_hops: int = 8, sources: Tensor | None = None
) -> Tensor:
    r"""Receptive-field sizes :math:`|N_k(v)|` for :math:`k = 1..K`.

    .. math::
        |N_k(v)| = |\{u \ne v : d(u, v) \le k\}|,

    the number of *other* nodes within :math:`k` hops of :math:`v` in the simple undirected
    graph (the node itself is excluded, so an isolated node has 0 at every :math:`k`). A
    :math:`k`-layer message-passing network at :math:`v` depends on exactly
    :math:`N_k(v) \cup \{v\}` (Alon and Yahav, ICLR 2021). Closed forms: ring of :math:`n`
    nodes :math:`\min(2k, n-1)`; interior node of a 2-D grid :math:`2k(k+1)`; complete graph
    :math:`n-1`.

    Args:
        edge_index (Tensor): integer edge list; symmetrised, self-loops and duplicates ignored.
        num_nodes (int): number of nodes :math:`N \ge 1`.
        max_hops (int, optional): largest hop count :math:`K \ge 1`. (default: :obj:`8`)
        sources (Tensor, optional): nodes :math:`v` to measure; all nodes when :obj:`None`.

    Returns:
        Tensor: int64 counts; row :math:`i`, column :math:`k - 1` is
        :math:`|N_k(\mathrm{sources}_i)|`.

    Shapes:
        - **input:** edge_index :math:`(2, E)`, sources :math:`(S)`
        - **output:** :math:`(S, K)` (:math:`S = N` without ``sources``)

    Raises:
        DataError: malformed ``edge_index``, ``num_nodes``, ``max_hops`` or ``sources``.
    """
    n = check_num_nodes(num_nodes, minimum=1)
    adj = _adjacency(edge_index, n)
    hops = _check_positive_int("max_hops", max_hops)
    src = np.arange(n) if sources is None else _check_sources(sources, n)
    counts = np.zeros((src.size, hops), dtype=np.int64)
    pos = np.empty(n, dtype=np.int64)
    for i, v in enumerate(src.tolist()):
        sizes, _ = _level_sizes(adj, v, pos)
        counts[i] = _ball_sizes(sizes, hops)
    return torch.from_numpy(counts)


def clustering_coefficient(edge_index: Tensor, num_nodes: int) -> Tensor:
    r"""Local clustering coefficient of every node (Watts and Strogatz, Nature 1998).

    .. math::
        c_v = \frac{2 T_v}{d_v (d_v - 1)}, \qquad
        T_v = \tfrac12 \big[(A A) \circ A\big] \mathbf 1 \,\big|_v,

    where :math:`T_v` is the number of triangles through :math:`v` and :math:`d_v` its degree
    in the simple undirected graph; :math:`c_v = 0` when :math:`d_v < 2` (networkx convention).

    Args:
        edge_index (Tensor): integer edge list; symmetrised, self-loops and duplicates ignored.
        num_nodes (int): number of nodes :math:`N \ge 1`.

    Returns:
        Tensor: float64 coefficients in :math:`[0, 1]`.

    Shapes:
        - **input:** edge_index :math:`(2, E)`
        - **output:** :math:`(N)`

    Raises:
        DataError: malformed ``edge_index`` or ``num_nodes``.
    """
    adj = _adjacency(edge_index, check_num_nodes(num_nodes, minimum=1))
    coeff, _, _ = _clustering(adj)
    return torch.from_numpy(coeff)


def structure_report(
    edge_index: Tensor,
    num_nodes: int,
    y: Tensor | None = None,
    *,
    max_hops: int = 8,
    max_sources: int = 1024,
    seed: int = 0,
) -> StructureReport:
    r"""Receptive-field growth, distances, clustering, small-worldness and homophily of a graph.

    See :class:`StructureReport` for every field and its formula. BFS runs from every node when
    :math:`N \le` ``max_sources`` (then the LCC diameter is exact), otherwise from
    ``max_sources`` nodes sampled uniformly without replacement (seeded; at least one of them
    is forced into the LCC). Distance statistics (diameter, effective diameter, average
    shortest path) use the sources inside the largest connected component; the receptive field
    uses all sources. Cost: :math:`O(S (N + E))` for :math:`S` sources, plus the sparse
    product :math:`A A` for triangles.

    Args:
        edge_index (Tensor): integer edge list; symmetrised, self-loops and duplicates ignored.
        num_nodes (int): number of nodes :math:`N \ge 1`.
        y (Tensor, optional): non-negative integer node labels for homophily.
            (default: :obj:`None`)
        max_hops (int, optional): largest hop count :math:`K` of the receptive field.
            (default: :obj:`8`)
        max_sources (int, optional): most BFS sources. (default: :obj:`1024`)
        seed (int, optional): seed of the source sample. (default: :obj:`0`)

    Shapes:
        - **input:** edge_index :math:`(2, E)`, y :math:`(N)`

    Raises:
        DataError: malformed ``edge_index``, ``num_nodes``, ``y`` or option (one line).
    """
    n = check_num_nodes(num_nodes, minimum=1)
    adj = _adjacency(edge_index, n)
    hops = _check_positive_int("max_hops", max_hops)
    budget = _check_positive_int("max_sources", max_sources)
    labels = None if y is None else _check_labels(y, n)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise DataError(f"seed must be an int, got {seed!r}")

    # components
    num_comp, comp = connected_components(adj, directed=False)
    comp_sizes = np.bincount(comp, minlength=num_comp)
    lcc = int(np.argmax(comp_sizes))
    lcc_size = int(comp_sizes[lcc])
    in_lcc = comp == lcc
    lcc_nodes = np.flatnonzero(in_lcc)

    # sources
    if n <= budget:
        src = np.arange(n)
    else:
        rng = np.random.default_rng(seed)
        src = np.sort(rng.choice(n, size=budget, replace=False))
        if not in_lcc[src].any():
            src[0] = rng.choice(lcc_nodes)
            src = np.sort(src)
    exact = bool(in_lcc[src].sum() == lcc_size)

    # one BFS per source: ball sizes, LCC distance histogram, eccentricities
    counts = np.zeros((src.size, hops), dtype=np.int64)
    hist = np.zeros(1, dtype=np.int64)  # hist[d] = ordered LCC pairs at distance d
    pos = np.empty(n, dtype=np.int64)
    diameter, far_node = 0, -1
    for i, v in enumerate(src.tolist()):
        sizes, far = _level_sizes(adj, v, pos)
        counts[i] = _ball_sizes(sizes, hops)
        if in_lcc[v]:
            hist = _add(hist, sizes)
            if sizes.size - 1 > diameter or far_node < 0:
                diameter, far_node = sizes.size - 1, far
    if not exact:  # double sweep: BFS from the farthest node found, then from its farthest
        for _ in range(_SWEEPS):
            sizes, far_node = _level_sizes(adj, far_node, pos)
            diameter = max(diameter, sizes.size - 1)

    hist[0] = 0  # distance 0 is each source to itself
    pairs = int(hist.sum())
    if pairs:
        avg_path = float((np.arange(hist.size) * hist).sum() / pairs)
        eff_diam = _effective_diameter(hist, _EFFECTIVE_Q)
    else:
        avg_path = eff_diam = math.nan

    # degrees, clustering
    deg = np.asarray(adj.sum(axis=1)).ravel().astype(np.int64)
    coeff, triangles2, wedges2 = _clustering(adj)
    clustering = float(coeff.mean())
    transitivity = float(triangles2 / wedges2) if wedges2 else 0.0
    k_mean = float(deg.mean())

    # small world (analytic Erdős–Rényi baselines)
    c_rand = k_mean / n if k_mean > 0 else math.nan
    l_rand = math.log(n) / math.log(k_mean) if k_mean > 1 else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = float(np.float64(clustering) / c_rand / (np.float64(avg_path) / l_rand))

    homophily = None
    if labels is not None:
        coo = adj.tocoo()
        ei = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
        homophily = {
            "edge": _homophily(ei, labels, "edge"),
            "node": _homophily(ei, labels, "node"),
            "class_insensitive": _homophily(ei, labels, "edge_insensitive"),
        }

    rf = counts.astype(np.float64)
    return StructureReport(
        num_nodes=n,
        num_edges=int(adj.nnz // 2),
        num_components=int(num_comp),
        largest_component=lcc_size,
        degree={
            "mean": k_mean,
            "median": float(np.median(deg)),
            "max": int(deg.max()),
        },
        receptive_field={
            "hops": list(range(1, hops + 1)),
            "mean": _floats(rf.mean(axis=0)),
            "median": _floats(np.median(rf, axis=0)),
            "q10": _floats(np.quantile(rf, 0.1, axis=0)),
            "q90": _floats(np.quantile(rf, 0.9, axis=0)),
            "fraction": _floats(rf.mean(axis=0) / n),
        },
        diameter=int(diameter),
        diameter_exact=exact,
        effective_diameter=eff_diam,
        average_shortest_path=avg_path,
        clustering=clustering,
        transitivity=transitivity,
        small_world={"sigma": sigma, "C_rand": float(c_rand), "L_rand": float(l_rand)},
        homophily=homophily,
        sources=int(src.size),
    )


# ----------------------------------------------------------------------------------- helpers


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _adjacency(edge_index: Any, n: int) -> sp.csr_matrix:
    """Simple undirected adjacency (0/1, symmetric, zero diagonal) as CSR."""
    return adjacency(check_edge_index(edge_index, n), n)


def _check_sources(sources: Any, n: int) -> np.ndarray:
    if not isinstance(sources, Tensor):
        raise DataError(f"sources must be a torch.Tensor, got {type(sources).__name__}")
    if sources.dim() != 1:
        raise DataError(f"sources must have shape [S], got {list(sources.shape)}")
    return check_index("sources", sources, n)


def _check_labels(y: Any, n: int) -> Tensor:
    if not isinstance(y, Tensor):
        raise DataError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() != 1 or y.size(0) != n:
        raise DataError(f"y must have shape [{n}] (one label per node), got {list(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise DataError(f"y must have an integer dtype, got {y.dtype}")
    if n and int(y.min()) < 0:
        raise DataError(f"y must be non-negative class indices, got min {int(y.min())}")
    return y.detach().cpu().long()


def _level_sizes(adj: sp.csr_matrix, source: int, pos: np.ndarray) -> tuple[np.ndarray, int]:
    """BFS from ``source``: (number of nodes at each distance 0..ecc, a farthest node).

    ``pos`` is an (N,) int64 scratch buffer. Level boundaries come from the BFS order: the
    position of each node's parent is non-decreasing along the order, so level ``l + 1`` starts
    at the first node whose parent lies at or beyond the start of level ``l``.
    """
    order, pred = breadth_first_order(adj, source, directed=True, return_predecessors=True)
    m = order.size
    if m == 1:
        return np.ones(1, dtype=np.int64), source
    pos[order] = np.arange(m)
    par = pos[pred[order[1:]]]  # par[j - 1] = position of the parent of order[j]
    bounds = [0, 1]  # bounds[l] = position where level l starts
    while bounds[-1] < m and len(bounds) <= _LEVEL_LOOP:
        bounds.append(int(np.searchsorted(par, bounds[-1], side="left")) + 1)
    if bounds[-1] < m:  # a long, thin graph: pointer doubling, O(m log ecc)
        anc = np.concatenate([[0], par])
        depth = np.ones(m, dtype=np.int64)
        depth[0] = 0
        while anc.any():
            depth += depth[anc]
            anc = anc[anc]
        return np.bincount(depth), int(order[-1])
    return np.diff(np.asarray(bounds, dtype=np.int64)), int(order[-1])


def _ball_sizes(sizes: np.ndarray, hops: int) -> np.ndarray:
    """|{u != v : d(u, v) <= k}| for k = 1..hops from the level sizes of one BFS."""
    ball = np.cumsum(sizes[1 : hops + 1])
    if ball.size < hops:
        ball = np.concatenate([ball, np.full(hops - ball.size, ball[-1] if ball.size else 0)])
    return ball


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if b.size > a.size:
        a, b = b, a
    out = a.copy()
    out[: b.size] += b
    return out


def _effective_diameter(hist: np.ndarray, q: float) -> float:
    """Interpolated q-quantile of the distance distribution ``hist`` (hist[0] = 0)."""
    g = np.cumsum(hist) / hist.sum()  # g[d] = fraction of pairs at distance <= d, g[0] = 0
    d = int(np.searchsorted(g, q - 1e-12))  # least d with g[d] >= q (tolerant to rounding)
    return float(d - 1 + (q - g[d - 1]) / (g[d] - g[d - 1]))


def _clustering(adj: sp.csr_matrix) -> tuple[np.ndarray, int, int]:
    """Per-node clustering, 2 x triangles through each node summed, and sum of d(d - 1)."""
    deg = np.asarray(adj.sum(axis=1)).ravel().astype(np.int64)
    a64 = adj.astype(np.int64)
    closed = np.asarray((a64 @ a64).multiply(a64).sum(axis=1)).ravel()  # 2 T_v
    wedges = deg * (deg - 1)  # 2 x connected triples centred at v
    coeff = np.zeros(adj.shape[0], dtype=np.float64)
    ok = wedges > 0
    coeff[ok] = closed[ok] / wedges[ok]
    return coeff, int(closed.sum()), int(wedges.sum())


def _homophily(edge_index: Tensor, y: Tensor, method: str) -> float:
    if edge_index.size(1) == 0:
        return math.nan
    return float(pyg_homophily(edge_index, y, method=method))


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in values]


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.3g}%"
