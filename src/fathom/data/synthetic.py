r"""Seeded synthetic graphs for node classification and depth studies.

Every generator returns a :class:`torch_geometric.data.Data` with

- ``x``: float32 node features :math:`(N, F)`,
- ``edge_index``: an undirected graph stored in both directions, sorted by (source, target),
  with no self-loops and no duplicate entries,
- ``y``: int64 labels :math:`(N)` in ``[0, num_classes)``,
- ``train_mask`` / ``val_mask`` / ``test_mask``: a 0.6 / 0.2 / 0.2
  :func:`~fathom.data.splits.stratified_split` drawn with the same ``seed`` (``csbm-graphs``
  splits whole graphs 0.6 / 0.2 / 0.2 instead, for inductive training),
- ``name``: the generator's registry name.

All randomness comes from a local :class:`numpy.random.Generator` (and the split's local
:class:`torch.Generator`) seeded with ``seed``, so the same arguments give identical tensors.

The structural generators (``ring``, ``grid``, ``tree``, ``barbell``, ``watts-strogatz``)
share one feature model: with class count :math:`C \le F`,

.. math::
    \mathbf{x}_i = \mathbf{e}_{y_i} + \sigma \, \boldsymbol{\varepsilon}_i,
    \qquad \boldsymbol{\varepsilon}_i \sim \mathcal{N}(\mathbf{0}, \mathbf{I}_F),

where :math:`\mathbf{e}_c` is the one-hot vector of class :math:`c` padded to :math:`F`
dimensions and :math:`\sigma` is ``noise``. With ``noise=1`` a single node's features are only
weakly informative, so a model must aggregate over the graph.

Use :func:`make_synthetic` (or :data:`GENERATORS`) to build one by name; every generator
accepts ``num_nodes``, ``num_classes``, ``feature_dim`` and ``seed`` so callers can treat them
uniformly (for ``grid``, ``tree`` and ``barbell`` the node count is approximate).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from fathom.data.splits import stratified_split
from fathom.errors import ConfigError
from fathom.registry import Registry

__all__ = [
    "GENERATORS",
    "barbell",
    "csbm",
    "csbm_graphs",
    "grid",
    "make_synthetic",
    "ring",
    "tree",
    "watts_strogatz",
]

GENERATORS: Registry[Callable[..., Data]] = Registry("synthetic generator")


def make_synthetic(name: str, **kwargs: Any) -> Data:
    """Build the synthetic graph registered as ``name`` (see :data:`GENERATORS`).

    Args:
        name (str): one of ``"barbell"``, ``"csbm"``, ``"csbm-graphs"``, ``"grid"``,
            ``"ring"``, ``"tree"``, ``"watts-strogatz"``.
        **kwargs: the generator's parameters (all generators accept ``num_nodes``,
            ``num_classes``, ``feature_dim`` and ``seed``).

    Raises:
        ConfigError: unknown name (the message lists the choices), unknown or missing
            parameter, or an invalid parameter value.
    """
    fn = GENERATORS.get(name)
    params = inspect.signature(fn).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(unknown)} for synthetic generator {name!r}; "
            f"valid: {', '.join(params)}"
        )
    missing = [p for p, v in params.items() if v.default is inspect.Parameter.empty]
    missing = [p for p in missing if p not in kwargs]
    if missing:
        raise ConfigError(f"synthetic generator {name!r} needs parameter(s) {', '.join(missing)}")
    return fn(**kwargs)


@GENERATORS.register("csbm")
def csbm(
    num_nodes: int = 1000,
    num_classes: int = 3,
    *,
    feature_dim: int = 32,
    avg_degree: float = 10.0,
    homophily: float | None = 0.8,
    p_in: float | None = None,
    p_out: float | None = None,
    separation: float = 1.0,
    seed: int = 0,
) -> Data:
    r"""Contextual stochastic block model (CSBM).

    From `"Contextual Stochastic Block Models" <https://arxiv.org/abs/1807.09596>`_
    (Deshpande et al., NeurIPS 2018), in the Gaussian-mixture form of `"Graph Convolution for
    Semi-Supervised Classification: Improved Linear Separability and Out-of-Distribution
    Generalization" <https://arxiv.org/abs/2102.06966>`_ (Baranwal et al., ICML 2021).

    **Classes.** Balanced: class :math:`c` has :math:`m_c = \lfloor N/C \rfloor` or
    :math:`\lceil N/C \rceil` nodes, and nodes are numbered class by class (``y`` is sorted).

    **Edges.** Each unordered pair of distinct nodes is an edge independently, with probability
    :math:`p_{in}` inside a class and :math:`p_{out}` across classes. Give either
    ``(p_in, p_out)`` (which take precedence) or ``(avg_degree, homophily)``. With
    :math:`P_{in} = \sum_c \binom{m_c}{2}` intra-class pairs,
    :math:`P_{out} = \binom{N}{2} - P_{in}` inter-class pairs, target expected edge count
    :math:`M = dN/2` (so the expected mean degree is :math:`d`) and target edge homophily
    :math:`h` (expected fraction of edges joining same-class nodes),

    .. math::
        p_{in} = \frac{h\,M}{P_{in}}, \qquad p_{out} = \frac{(1 - h)\,M}{P_{out}}.

    For balanced classes this is :math:`p_{in} \approx hdC/N` and
    :math:`p_{out} \approx (1-h)dC/((C-1)N)`; :math:`h \approx 1/C` gives an Erdős–Rényi graph.
    Sampling draws a binomial number of edges per block pair and then that many distinct pairs
    uniformly, so memory is :math:`O(N + E)` (no dense :math:`N \times N` matrix).

    **Features.** :math:`\mathbf{x}_i = \boldsymbol{\mu}_{y_i} + \boldsymbol{\varepsilon}_i`,
    :math:`\boldsymbol{\varepsilon}_i \sim \mathcal{N}(\mathbf{0}, \mathbf{I}_F)`, with class
    means :math:`\boldsymbol{\mu}_c = \frac{s}{\sqrt 2} \mathbf{u}_c` for random orthonormal
    directions :math:`\mathbf{u}_c`. Every pair of class means is therefore exactly
    :math:`s` = ``separation`` apart, measured in units of the noise standard deviation (for two
    classes the Bayes error from features alone is :math:`\Phi(-s/2)`).

    Args:
        num_nodes (int, optional): number of nodes :math:`N`. (default: :obj:`1000`)
        num_classes (int, optional): number of classes :math:`C \ge 2`. (default: :obj:`3`)
        feature_dim (int, optional): feature dimension :math:`F \ge C`. (default: :obj:`32`)
        avg_degree (float, optional): expected mean degree :math:`d`. (default: :obj:`10.0`)
        homophily (float, optional): expected edge homophily :math:`h \in [0, 1]`.
            (default: :obj:`0.8`)
        p_in (float, optional): intra-class edge probability; needs ``p_out``.
            (default: :obj:`None`)
        p_out (float, optional): inter-class edge probability; needs ``p_in``.
            (default: :obj:`None`)
        separation (float, optional): distance :math:`s \ge 0` between class means.
            (default: :obj:`1.0`)
        seed (int, optional): random seed. (default: :obj:`0`)
    """
    _check_int("num_nodes", num_nodes, 2)
    _check_classes(num_classes, num_nodes)
    _check_int("feature_dim", feature_dim, num_classes, "num_classes")
    _check_number("separation", separation, low=0.0)
    _check_seed(seed)
    sizes = np.full(num_classes, num_nodes // num_classes, dtype=np.int64)
    sizes[: num_nodes % num_classes] += 1
    pairs_in = int((sizes * (sizes - 1) // 2).sum())
    pairs_out = num_nodes * (num_nodes - 1) // 2 - pairs_in

    if p_in is not None or p_out is not None:
        if p_in is None or p_out is None:
            raise ConfigError(
                f"csbm needs both p_in and p_out or neither, got p_in={p_in}, p_out={p_out}"
            )
        _check_number("p_in", p_in, low=0.0, high=1.0)
        _check_number("p_out", p_out, low=0.0, high=1.0)
    else:
        if homophily is None:
            raise ConfigError("csbm needs homophily (with avg_degree) or p_in and p_out")
        _check_number("homophily", homophily, low=0.0, high=1.0)
        _check_number("avg_degree", avg_degree, low=0.0)
        expected_edges = avg_degree * num_nodes / 2
        p_in = homophily * expected_edges / pairs_in if pairs_in else 0.0
        p_out = (1 - homophily) * expected_edges / pairs_out
        if p_in > 1 or p_out > 1:
            raise ConfigError(
                f"avg_degree={avg_degree} with homophily={homophily} on {num_nodes} nodes needs "
                f"p_in={p_in:.3g}, p_out={p_out:.3g}; edge probabilities must be <= 1"
            )

    rng = np.random.default_rng(seed)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    src, dst = [], []
    for a in range(num_classes):
        for b in range(a, num_classes):
            if a == b:
                pool = int(sizes[a] * (sizes[a] - 1) // 2)
                k = rng.binomial(pool, p_in) if pool else 0
                idx = rng.choice(pool, size=k, replace=False) if k else np.empty(0, np.int64)
                # Index k of the strictly lower triangle is row i = max{i : i(i-1)/2 <= k},
                # column k - i(i-1)/2; the float estimate is corrected in exact integers.
                i = np.floor((1 + np.sqrt(1 + 8 * idx.astype(np.float64))) / 2).astype(np.int64)
                i -= i * (i - 1) // 2 > idx
                i += (i + 1) * i // 2 <= idx
                j = idx - i * (i - 1) // 2
                src.append(starts[a] + i)
                dst.append(starts[a] + j)
            else:
                pool = int(sizes[a] * sizes[b])
                k = rng.binomial(pool, p_out)
                idx = rng.choice(pool, size=k, replace=False) if k else np.empty(0, np.int64)
                src.append(starts[a] + idx // sizes[b])
                dst.append(starts[b] + idx % sizes[b])
    edge_index = _undirected(np.concatenate(src), np.concatenate(dst), num_nodes)

    y = np.repeat(np.arange(num_classes), sizes)
    # Orthonormal directions (QR of a Gaussian matrix) make every pair of means exactly
    # `separation` apart: ||s/sqrt(2) (u_a - u_b)|| = s.
    q, _ = np.linalg.qr(rng.standard_normal((feature_dim, num_classes)))
    means = (separation / math.sqrt(2)) * q.T
    x = means[y] + rng.standard_normal((num_nodes, feature_dim))
    return _finish("csbm", x, edge_index, y, seed)


@GENERATORS.register("csbm-graphs")
def csbm_graphs(
    num_nodes: int = 1000,
    num_classes: int = 3,
    *,
    num_graphs: int = 10,
    feature_dim: int = 32,
    avg_degree: float = 10.0,
    homophily: float = 0.8,
    separation: float = 1.0,
    seed: int = 0,
) -> Data:
    r"""Disjoint union of ``num_graphs`` CSBM graphs, split into train / val / test *graphs*.

    The multi-graph inductive protocol of PPI (`"Inductive Representation Learning on Large
    Graphs" <https://arxiv.org/abs/1706.02216>`_, Hamilton et al., NeurIPS 2017: 20 / 2 / 2
    train / val / test graphs): a model is trained on some graphs and tested on graphs it has
    never seen. Use it with inductive node classification (``data.inductive``), whose
    training view then holds exactly the training graphs.

    **Graphs.** Graph :math:`g` has :math:`n_g = \lfloor N/G \rfloor` or
    :math:`\lceil N/G \rceil` nodes (so the union has exactly :math:`N`), and is a
    :func:`csbm` graph with ``num_classes``, ``avg_degree`` and ``homophily`` (per graph)
    drawn with its own seed derived from ``seed``. Graph :math:`g` occupies the contiguous node
    range after graphs :math:`0..g-1`; no edge joins two graphs. ``graph_id`` :math:`(N)`
    holds each node's graph. Within a graph ``y`` is sorted, as in :func:`csbm`.

    **Features.** The class means are shared by every graph (otherwise a class would mean
    something different in each graph and nothing could transfer):
    :math:`\mathbf{x}_i = \boldsymbol{\mu}_{y_i} + \boldsymbol{\varepsilon}_i` with
    :math:`\boldsymbol{\mu}_c = \frac{s}{\sqrt 2} \mathbf{u}_c` for one set of random
    orthonormal :math:`\mathbf{u}_c`, so class means are ``separation`` apart as in
    :func:`csbm`; the noise :math:`\boldsymbol{\varepsilon}_i` is each graph's own.

    **Split.** Whole graphs: a seeded random
    :math:`\lfloor 0.6G + \tfrac12 \rfloor` graphs are train and
    :math:`\lfloor 0.2G + \tfrac12 \rfloor` val, the rest test (each split gets at least one
    graph: the :func:`~fathom.data.splits.stratified_split` rule over graphs). A node's mask
    is its graph's, so every graph lies entirely in one split.

    Args:
        num_nodes (int, optional): total number of nodes :math:`N`. (default: :obj:`1000`)
        num_classes (int, optional): number of classes :math:`C \ge 2`. (default: :obj:`3`)
        num_graphs (int, optional): number of graphs :math:`G \ge 3`. (default: :obj:`10`)
        feature_dim (int, optional): feature dimension :math:`F \ge C`. (default: :obj:`32`)
        avg_degree (float, optional): expected mean degree within each graph.
            (default: :obj:`10.0`)
        homophily (float, optional): expected edge homophily :math:`h \in [0, 1]`.
            (default: :obj:`0.8`)
        separation (float, optional): distance :math:`s \ge 0` between class means.
            (default: :obj:`1.0`)
        seed (int, optional): random seed. (default: :obj:`0`)

    Raises:
        ConfigError: an invalid value, or graphs too small for ``num_classes`` or for
            ``avg_degree`` (the message gives the nodes per graph).
    """
    _check_int("num_graphs", num_graphs, 3)
    _check_int("num_nodes", num_nodes, 2 * num_graphs, "2 * num_graphs")
    _check_int("num_classes", num_classes, 2)
    per_graph = num_nodes // num_graphs
    if num_classes > per_graph:
        raise ConfigError(
            f"csbm-graphs: num_nodes={num_nodes} over num_graphs={num_graphs} gives {per_graph} "
            f"nodes per graph, fewer than num_classes={num_classes}"
        )
    _check_int("feature_dim", feature_dim, num_classes, "num_classes")
    _check_number("separation", separation, low=0.0)
    _check_seed(seed)
    sizes = np.full(num_graphs, per_graph, dtype=np.int64)
    sizes[: num_nodes % num_graphs] += 1
    # One stream for the shared class means and the per-graph seeds, independent of the
    # streams csbm draws from for each graph's edges and noise.
    rng = np.random.default_rng([seed, 2])
    q, _ = np.linalg.qr(rng.standard_normal((feature_dim, num_classes)))
    means = (separation / math.sqrt(2)) * q.T
    graph_seeds = rng.integers(0, 2**62, size=num_graphs)

    xs, ys, edges = [], [], []
    offset = 0
    for g in range(num_graphs):
        try:
            # separation=0 leaves only the noise; the shared means are added below.
            part = csbm(
                int(sizes[g]),
                num_classes,
                feature_dim=feature_dim,
                avg_degree=avg_degree,
                homophily=homophily,
                separation=0.0,
                seed=int(graph_seeds[g]),
            )
        except ConfigError as exc:
            raise ConfigError(f"csbm-graphs: each graph has ~{per_graph} nodes: {exc}") from None
        xs.append(part.x.numpy() + means[part.y.numpy()])
        ys.append(part.y)
        edges.append(part.edge_index + offset)
        offset += int(sizes[g])

    graph_id = torch.repeat_interleave(torch.arange(num_graphs), torch.from_numpy(sizes))
    train, val, test = stratified_split(torch.zeros(num_graphs, dtype=torch.long), seed=seed)
    data = Data(
        x=torch.from_numpy(np.concatenate(xs).astype(np.float32)),
        # Graphs occupy increasing node ranges, so concatenating keeps (source, target) order.
        edge_index=torch.cat(edges, dim=1),
        y=torch.cat(ys),
        train_mask=train[graph_id],
        val_mask=val[graph_id],
        test_mask=test[graph_id],
        graph_id=graph_id,
    )
    data.name = "csbm-graphs"
    return data


@GENERATORS.register("ring")
def ring(
    num_nodes: int,
    num_classes: int = 2,
    *,
    feature_dim: int = 16,
    noise: float = 1.0,
    seed: int = 0,
) -> Data:
    r"""Cycle graph: node :math:`i` is joined to :math:`(i + 1) \bmod N`.

    :math:`N` undirected edges, i.e. :math:`2N` ``edge_index`` entries. Labels are contiguous
    arcs of the ring: :math:`y_i = \lfloor iC/N \rfloor`, so same-class nodes are close and the
    graph diameter :math:`\lfloor N/2 \rfloor` controls how far information must travel.
    Features follow the module's noisy one-hot model.

    Args:
        num_nodes (int): number of nodes :math:`N \ge 3`.
        num_classes (int, optional): number of arcs :math:`C`. (default: :obj:`2`)
        feature_dim (int, optional): feature dimension :math:`F \ge C`. (default: :obj:`16`)
        noise (float, optional): feature noise standard deviation :math:`\sigma`.
            (default: :obj:`1.0`)
        seed (int, optional): random seed. (default: :obj:`0`)
    """
    _check_int("num_nodes", num_nodes, 3)
    _check_structural(num_nodes, num_classes, feature_dim, noise, seed)
    i = np.arange(num_nodes)
    edge_index = _undirected(i, (i + 1) % num_nodes, num_nodes)
    y = i * num_classes // num_nodes
    return _structural("ring", edge_index, y, num_classes, feature_dim, noise, seed)


@GENERATORS.register("grid")
def grid(
    height: int | None = None,
    width: int | None = None,
    *,
    num_nodes: int | None = None,
    num_classes: int = 4,
    feature_dim: int = 16,
    noise: float = 1.0,
    seed: int = 0,
) -> Data:
    r"""2-D square lattice of ``height`` × ``width`` nodes (4-neighbourhood, no wrap-around).

    Node :math:`(r, c)` has index :math:`r W + c`. There are :math:`H(W-1) + W(H-1)` undirected
    edges, i.e. :math:`2(H(W-1) + W(H-1))` entries. Labels are angular sectors around the grid
    centre: with angle :math:`\theta_i \in [0, 2\pi)` of node :math:`i` measured
    counter-clockwise from the right (rows grow downwards),
    :math:`y_i = \lfloor \theta_i C / 2\pi \rfloor`. For ``num_classes=4`` these are the four
    quadrants (0 top-right, 1 top-left, 2 bottom-left, 3 bottom-right), exactly balanced for
    even :math:`H, W`; all classes meet at the centre. A node exactly at the centre (odd
    :math:`H, W`) has class 0. Features follow the module's noisy one-hot model.

    Args:
        height (int, optional): rows :math:`H \ge 2`; give with ``width``, or give
            ``num_nodes``. (default: :obj:`None`)
        width (int, optional): columns :math:`W \ge 2`. (default: :obj:`None`)
        num_nodes (int, optional): approximate node count; builds a square grid of side
            :math:`\mathrm{round}(\sqrt{N})`. (default: :obj:`None`)
        num_classes (int, optional): number of sectors :math:`C`. (default: :obj:`4`)
        feature_dim (int, optional): feature dimension :math:`F \ge C`. (default: :obj:`16`)
        noise (float, optional): feature noise standard deviation :math:`\sigma`.
            (default: :obj:`1.0`)
        seed (int, optional): random seed. (default: :obj:`0`)
    """
    if num_nodes is not None:
        if height is not None or width is not None:
            raise ConfigError(
                f"grid takes height/width or num_nodes, not both (got height={height}, "
                f"width={width}, num_nodes={num_nodes})"
            )
        _check_int("num_nodes", num_nodes, 4)
        height = width = round(math.sqrt(num_nodes))
    elif height is None or width is None:
        raise ConfigError(f"grid needs height and width (or num_nodes), got {height}, {width}")
    _check_int("height", height, 2)
    _check_int("width", width, 2)
    n = height * width
    _check_structural(n, num_classes, feature_dim, noise, seed)

    idx = np.arange(n).reshape(height, width)
    src = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    dst = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    edge_index = _undirected(src, dst, n)

    r, c = np.divmod(np.arange(n), width)
    # Rows grow downwards, so negate the row offset to measure angles counter-clockwise.
    theta = np.arctan2(-(r - (height - 1) / 2), c - (width - 1) / 2) % (2 * np.pi)
    y = np.minimum((theta * num_classes / (2 * np.pi)).astype(np.int64), num_classes - 1)
    return _structural("grid", edge_index, y, num_classes, feature_dim, noise, seed)


@GENERATORS.register("tree")
def tree(
    depth: int | None = None,
    branching: int = 2,
    *,
    num_nodes: int | None = None,
    num_classes: int = 2,
    feature_dim: int = 16,
    noise: float = 1.0,
    seed: int = 0,
) -> Data:
    r"""Balanced tree of the given ``depth`` where every internal node has ``branching`` children.

    Nodes are numbered breadth-first (root 0, children of :math:`v` are
    :math:`vb + 1, \dots, vb + b`), giving :math:`N = (b^{D+1} - 1)/(b - 1)` nodes and
    :math:`N - 1` undirected edges (:math:`2(N-1)` entries). Labels: the :math:`b^D` leaves,
    left to right, are cut into :math:`C` contiguous blocks, and each node takes the block of
    its leftmost descendant leaf. When ``num_classes == branching`` (the default for binary
    trees) this is exactly *which subtree under the root* a node lies in; the root has class 0.
    Features follow the module's noisy one-hot model.

    Args:
        depth (int, optional): depth :math:`D \ge 1` (the root is depth 0); give it or
            ``num_nodes``. (default: :obj:`None`)
        branching (int, optional): children per internal node :math:`b \ge 2`.
            (default: :obj:`2`)
        num_nodes (int, optional): approximate node count; uses the depth whose tree size is
            closest to it. (default: :obj:`None`)
        num_classes (int, optional): number of leaf blocks :math:`C \le b^D`.
            (default: :obj:`2`)
        feature_dim (int, optional): feature dimension :math:`F \ge C`. (default: :obj:`16`)
        noise (float, optional): feature noise standard deviation :math:`\sigma`.
            (default: :obj:`1.0`)
        seed (int, optional): random seed. (default: :obj:`0`)
    """
    _check_int("branching", branching, 2)
    if num_nodes is not None:
        if depth is not None:
            raise ConfigError(
                f"tree takes depth or num_nodes, not both (got depth={depth}, "
                f"num_nodes={num_nodes})"
            )
        _check_int("num_nodes", num_nodes, 1 + branching)
        depth = 1
        while _tree_size(depth + 1, branching) <= num_nodes:
            depth += 1
        # `depth` is now the largest tree not above num_nodes; the next may be closer.
        if _tree_size(depth + 1, branching) - num_nodes < num_nodes - _tree_size(depth, branching):
            depth += 1
    elif depth is None:
        raise ConfigError("tree needs depth (or num_nodes)")
    _check_int("depth", depth, 1)
    n = _tree_size(depth, branching)
    leaves = branching**depth
    if isinstance(num_classes, int) and num_classes > leaves:
        raise ConfigError(
            f"num_classes={num_classes} exceeds the {leaves} leaves of a depth-{depth} tree"
        )
    _check_structural(n, num_classes, feature_dim, noise, seed)

    child = np.arange(1, n)
    edge_index = _undirected((child - 1) // branching, child, n)
    v = np.arange(n)
    # Level of node v is the largest l with (b^l - 1)/(b - 1) <= v.
    level_start = np.array([_tree_size(lv - 1, branching) for lv in range(depth + 1)])
    level = np.searchsorted(level_start, v, side="right") - 1
    leftmost_leaf = (v - level_start[level]) * branching ** (depth - level)
    y = leftmost_leaf * num_classes // leaves
    return _structural("tree", edge_index, y, num_classes, feature_dim, noise, seed)


@GENERATORS.register("barbell")
def barbell(
    clique_size: int | None = None,
    path_length: int = 0,
    *,
    num_nodes: int | None = None,
    num_classes: int = 2,
    feature_dim: int = 16,
    noise: float = 1.0,
    seed: int = 0,
) -> Data:
    r"""Two :math:`K`-cliques joined by a path of ``path_length`` extra nodes.

    Node order along the barbell's axis: left clique :math:`0..K-1`, path
    :math:`K..K+L-1`, right clique :math:`K+L..2K+L-1`; the bridge runs from node :math:`K-1`
    through the path to node :math:`K+L`. That is :math:`N = 2K + L` nodes and
    :math:`2\binom{K}{2} + L + 1` undirected edges, doubled in ``edge_index``. The bridge is
    the classic over-squashing bottleneck. Labels cut the axis order into :math:`C` contiguous
    blocks, :math:`y_i = \lfloor iC/N \rfloor`: with ``num_classes=2`` (default) a node's
    label is *which side* it is on (for odd :math:`L` the middle path node is class 0).
    Features follow the module's noisy one-hot model.

    Args:
        clique_size (int, optional): nodes per clique :math:`K \ge 2`; give it or ``num_nodes``.
            (default: :obj:`None`)
        path_length (int, optional): nodes on the path between the cliques :math:`L \ge 0`.
            (default: :obj:`0`)
        num_nodes (int, optional): approximate node count; uses
            :math:`K = \lfloor (N - L)/2 \rfloor`. (default: :obj:`None`)
        num_classes (int, optional): number of blocks :math:`C`. (default: :obj:`2`)
        feature_dim (int, optional): feature dimension :math:`F \ge C`. (default: :obj:`16`)
        noise (float, optional): feature noise standard deviation :math:`\sigma`.
            (default: :obj:`1.0`)
        seed (int, optional): random seed. (default: :obj:`0`)
    """
    _check_int("path_length", path_length, 0)
    if num_nodes is not None:
        if clique_size is not None:
            raise ConfigError(
                f"barbell takes clique_size or num_nodes, not both (got "
                f"clique_size={clique_size}, num_nodes={num_nodes})"
            )
        _check_int("num_nodes", num_nodes, 4 + path_length, "4 + path_length")
        clique_size = (num_nodes - path_length) // 2
    elif clique_size is None:
        raise ConfigError("barbell needs clique_size (or num_nodes)")
    _check_int("clique_size", clique_size, 2)
    k, length = clique_size, path_length
    n = 2 * k + length
    _check_structural(n, num_classes, feature_dim, noise, seed)

    a, b = np.triu_indices(k, 1)
    chain = np.arange(k - 1, k + length + 1)  # last left-clique node .. first right-clique node
    src = np.concatenate([a, a + k + length, chain[:-1]])
    dst = np.concatenate([b, b + k + length, chain[1:]])
    edge_index = _undirected(src, dst, n)
    y = np.arange(n) * num_classes // n
    return _structural("barbell", edge_index, y, num_classes, feature_dim, noise, seed)


@GENERATORS.register("watts-strogatz")
def watts_strogatz(
    num_nodes: int,
    num_classes: int = 2,
    *,
    k: int = 4,
    p: float = 0.1,
    feature_dim: int = 16,
    noise: float = 1.0,
    seed: int = 0,
) -> Data:
    r"""Watts–Strogatz small-world graph.

    From `"Collective dynamics of 'small-world' networks"
    <https://doi.org/10.1038/30918>`_ (Watts and Strogatz, Nature 1998). Start from the ring
    lattice joining each node to its :math:`k` nearest neighbours (:math:`k/2` on each side);
    then, for each lattice edge :math:`(u, u + j)`, :math:`j = 1..k/2`, with probability
    :math:`p` replace its far end by a uniformly random node that is neither :math:`u` nor
    already a neighbour of :math:`u`. The edge count stays :math:`Nk/2` (:math:`Nk` entries);
    ``p=0`` is the ring lattice and ``p=1`` is close to a random graph. Labels are contiguous
    arcs of the underlying ring, :math:`y_i = \lfloor iC/N \rfloor`, so rewired shortcuts
    connect distant classes. Features follow the module's noisy one-hot model.

    Args:
        num_nodes (int): number of nodes :math:`N > k`.
        num_classes (int, optional): number of arcs :math:`C`. (default: :obj:`2`)
        k (int, optional): lattice degree, even and :math:`\ge 2`. (default: :obj:`4`)
        p (float, optional): rewiring probability in :math:`[0, 1]`. (default: :obj:`0.1`)
        feature_dim (int, optional): feature dimension :math:`F \ge C`. (default: :obj:`16`)
        noise (float, optional): feature noise standard deviation :math:`\sigma`.
            (default: :obj:`1.0`)
        seed (int, optional): random seed. (default: :obj:`0`)
    """
    _check_int("k", k, 2)
    if k % 2:
        raise ConfigError(f"k must be even (k/2 neighbours on each side), got {k}")
    _check_int("num_nodes", num_nodes, k + 1, "k + 1")
    _check_number("p", p, low=0.0, high=1.0)
    _check_structural(num_nodes, num_classes, feature_dim, noise, seed)

    rng = np.random.default_rng(seed)
    n = num_nodes
    u = np.tile(np.arange(n), k // 2)
    v = (u + np.repeat(np.arange(1, k // 2 + 1), n)) % n
    rewire = np.flatnonzero(rng.random(u.size) < p)
    if rewire.size:
        # Sequential on purpose: each rewiring changes which targets are still free.
        keys = set((np.minimum(u, v) * n + np.maximum(u, v)).tolist())
        degree = np.bincount(np.concatenate([u, v]), minlength=n)
        for e in rewire.tolist():
            a, old = int(u[e]), int(v[e])
            if degree[a] >= n - 1:  # already joined to everyone: nowhere to rewire to
                continue
            while True:
                w = int(rng.integers(n))
                if w != a and min(a, w) * n + max(a, w) not in keys:
                    break
            keys.discard(min(a, old) * n + max(a, old))
            keys.add(min(a, w) * n + max(a, w))
            degree[old] -= 1
            degree[w] += 1
            v[e] = w
    edge_index = _undirected(u, v, n)
    y = np.arange(n) * num_classes // n
    return _structural("watts-strogatz", edge_index, y, num_classes, feature_dim, noise, seed)


def _tree_size(depth: int, branching: int) -> int:
    return (branching ** (depth + 1) - 1) // (branching - 1)


def _undirected(src: np.ndarray, dst: np.ndarray, num_nodes: int) -> Tensor:
    """Both directions of each (src, dst) pair, sorted by (source, target)."""
    row = np.concatenate([src, dst]).astype(np.int64)
    col = np.concatenate([dst, src]).astype(np.int64)
    order = np.argsort(row * num_nodes + col, kind="stable")
    return torch.from_numpy(np.stack([row[order], col[order]]))


def _structural(
    name: str,
    edge_index: Tensor,
    y: np.ndarray,
    num_classes: int,
    feature_dim: int,
    noise: float,
    seed: int,
) -> Data:
    # Offset the seed so structural randomness (WS rewiring) and feature noise are independent.
    rng = np.random.default_rng([seed, 1])
    x = noise * rng.standard_normal((y.size, feature_dim))
    x[np.arange(y.size), y] += 1.0
    return _finish(name, x, edge_index, y, seed)


def _finish(name: str, x: np.ndarray, edge_index: Tensor, y: np.ndarray, seed: int) -> Data:
    y_t = torch.from_numpy(np.asarray(y, dtype=np.int64))
    train, val, test = stratified_split(y_t, seed=seed)
    data = Data(
        x=torch.from_numpy(np.asarray(x, dtype=np.float32)),
        edge_index=edge_index,
        y=y_t,
        train_mask=train,
        val_mask=val,
        test_mask=test,
    )
    data.name = name
    return data


def _check_int(name: str, value: Any, low: int, low_name: str | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an int, got {value!r}")
    if value < low:
        bound = f"{low_name} = {low}" if low_name else str(low)
        raise ConfigError(f"{name} must be >= {bound}, got {value}")


def _check_number(
    name: str, value: Any, *, low: float | None = None, high: float | None = None
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ConfigError(f"{name} must be in [{lo}, {hi}], got {value}")


def _check_seed(seed: Any) -> None:
    _check_int("seed", seed, 0)


def _check_classes(num_classes: Any, num_nodes: int) -> None:
    _check_int("num_classes", num_classes, 2)
    if num_classes > num_nodes:
        raise ConfigError(f"num_classes={num_classes} exceeds num_nodes={num_nodes}")


def _check_structural(
    num_nodes: int, num_classes: int, feature_dim: int, noise: float, seed: int
) -> None:
    _check_classes(num_classes, num_nodes)
    _check_int("feature_dim", feature_dim, num_classes, "num_classes")
    _check_number("noise", noise, low=0.0)
    _check_seed(seed)
