"""Over-smoothing metrics: pure functions of node representations (and the graph).

Each function takes one layer's node representations ``x`` ``[num_nodes, channels]`` (and,
where the metric needs them, the graph or the labels) and returns a Python float, so it can
be called on any tensor, inside a hook (:mod:`fathom.diagnostics.probes`) or after training.
They run under ``torch.no_grad`` on a detached copy and never build autograd graphs.

Over-smoothing is the convergence of node representations, with depth, to a single vector
(or to the graph's dominant, degree-scaled constant subspace); Rusch, Bronstein and Mishra
(arXiv 2303.10993, 2023) *define* it as the exponential decay of a node-similarity measure
such as the Dirichlet energy. Zhang, Deidda, Higham and Tudisco (ICLR 2026, arXiv
2502.04591) show that energies only flag it in very deep networks while the rank of the
representation drops in step with accuracy, so report both.

The values depend on how ``x`` is scaled, so state which features were measured (input
features raw or row-normalised, which layer's output): the Dirichlet energy of Cora's raw
bag-of-words features is about 118, of the row-normalised features fathom trains on about
0.48. Scaling all of ``x`` by ``c`` scales :func:`dirichlet_energy` by ``c²``;
:func:`normalized_dirichlet_energy`, :func:`numerical_rank` and :func:`effective_rank` do
not change under a global scale, but do under a per-row one (row normalisation);
:func:`mad` / :func:`mad_gap` (cosine distances) change under neither, but do under
centring or standardising columns. :func:`fathom.diagnostics.diagnose.diagnose_model`
records what it measured in its ``features`` entry.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fathom.diagnostics.graph import adjacency, check_edge_index
from fathom.errors import DataError

__all__ = [
    "class_separation",
    "dirichlet_energy",
    "dominant_subspace_distance",
    "effective_rank",
    "mad",
    "mad_gap",
    "mean_row_norm",
    "normalized_dirichlet_energy",
    "numerical_rank",
    "singular_values",
]


def _as_matrix(x: Tensor) -> Tensor:
    if not isinstance(x, Tensor):
        raise DataError(f"node representations must be a tensor, got {type(x).__name__}")
    if x.dim() == 1:
        x = x.unsqueeze(1)
    if x.dim() != 2:
        raise DataError(
            f"node representations must have shape [num_nodes, channels], got {tuple(x.shape)}"
        )
    x = x.detach()
    if not x.is_floating_point():
        x = x.float()
    return x


def _check_edges(edge_index: Tensor, num_nodes: int) -> Tensor:
    check_edge_index(edge_index, num_nodes)
    return edge_index


@torch.no_grad()
def dirichlet_energy(
    x: Tensor,
    edge_index: Tensor,
    *,
    normalization: str | None = None,
) -> float:
    r"""Dirichlet energy of node representations, averaged over nodes.

    .. math::
        E(X) = \frac{1}{N} \sum_{i} \sum_{j \in \mathcal{N}(i)} \lVert x_i - x_j \rVert_2^2

    (Rusch, Bronstein, Mishra, "A Survey on Oversmoothing in Graph Neural Networks", 2023, eq. 3),
    summed over the directed entries of ``edge_index`` (an undirected graph lists each edge both
    ways, as PyG does). It is 0 exactly when ``x`` is constant on every connected component.

    The value depends on the scaling of ``x`` (quadratically on a global scale; row
    normalisation changes it too): on Cora, about 118 for the raw bag-of-words features
    (``fathom.load_dataset("cora").x``) and about 0.48 for the row-normalised features that
    training and ``fathom diagnose`` use. Compare energies only between features scaled the
    same way, and say which (see :func:`normalized_dirichlet_energy` for a scale-free one).

    With ``normalization="sym"`` the degree-scaled energy of Cai & Wang ("A Note on
    Over-Smoothing for Graph Neural Networks", 2020) is used instead,
    :math:`\frac{1}{N}\sum_i\sum_{j\in\mathcal{N}(i)} \lVert x_i/\sqrt{1+d_i} -
    x_j/\sqrt{1+d_j}\rVert^2` (``d`` counts the entries of ``edge_index`` per node, self-loops
    excluded), whose zero set is the dominant subspace of GCN's propagation matrix.

    Shapes:
        x: ``[N, C]``, edge_index: ``[2, E]`` -> float.
    """
    x = _as_matrix(x)
    n = x.size(0)
    src, dst = _check_edges(edge_index, n).to(x.device)
    if normalization == "sym":
        not_loop = src != dst
        deg = torch.zeros(n, dtype=x.dtype, device=x.device)
        deg.index_add_(0, src[not_loop], torch.ones_like(src[not_loop], dtype=x.dtype))
        x = x * (1.0 + deg).rsqrt().unsqueeze(1)
    elif normalization is not None:
        raise DataError(
            f"unknown Dirichlet energy normalization {normalization!r}; choose None or 'sym'"
        )
    if n == 0 or src.numel() == 0:
        return 0.0
    return float((x[src] - x[dst]).pow(2).sum() / n)


@torch.no_grad()
def normalized_dirichlet_energy(x: Tensor, edge_index: Tensor) -> float:
    r"""Scale-free Dirichlet energy: the Rayleigh quotient of GCN's normalised Laplacian
    :math:`\tilde\Delta = I - \tilde D^{-1/2}(A + I)\tilde D^{-1/2}`,

    .. math::
        \frac{\operatorname{tr}(X^\top \tilde\Delta X)}{\lVert X\rVert_F^2}
        = \frac{\tfrac12 \sum_{(i,j)} \lVert x_i/\sqrt{1+d_i} - x_j/\sqrt{1+d_j}
        \rVert^2}{\sum_i \lVert x_i\rVert^2} \in [0, 2)

    (Cai & Wang, 2020; the "normalised" energy of Di Giovanni et al., ICLR 2023). Unlike
    :func:`dirichlet_energy` it does not fall when the whole representation merely shrinks
    (weights with small norm): it measures the *shape* of ``x``, and is 0 exactly on the
    dominant subspace. ``edge_index`` lists each undirected edge both ways. 0 for ``x = 0``.
    Free of a *global* scale only: row normalisation of the input features changes it.

    Shapes:
        x: ``[N, C]``, edge_index: ``[2, E]`` -> float.
    """
    x = _as_matrix(x)
    total = float(x.pow(2).sum(dtype=torch.float64))
    if total <= 0:
        return 0.0
    return dirichlet_energy(x, edge_index, normalization="sym") * x.size(0) / (2.0 * total)


@torch.no_grad()
def mad(x: Tensor, pairs: Tensor | None = None) -> float:
    r"""Mean Average Distance (MAD) of node representations.

    Chen, Lin, Li, Li, Zhou, Sun, "Measuring and Relieving the Over-smoothing Problem for Graph
    Neural Networks from the Topological View" (AAAI 2020), eq. 1-4: with cosine distances
    :math:`D_{ij} = 1 - \frac{x_i \cdot x_j}{\lVert x_i\rVert \lVert x_j\rVert}` restricted to
    the target pairs,

    .. math::
        \bar D_i = \frac{\sum_j D_{ij}}{\sum_j \mathbb 1[D_{ij} > 0]}, \qquad
        \mathrm{MAD} = \frac{\sum_i \bar D_i}{\sum_i \mathbb 1[\bar D_i > 0]}.

    ``pairs`` ``[2, P]`` lists the target pairs ``(i, j)`` (e.g. ``edge_index`` for the MAD of
    neighbours); the formula above is applied exactly. ``pairs=None`` means every ordered pair
    ``i != j`` and is computed in closed form in O(N C) from the sum of the unit rows,
    :math:`\sum_{i\ne j}\cos_{ij} = \lVert\sum_i \hat x_i\rVert^2 - \sum_i \lVert\hat x_i\rVert^2`,
    as the plain mean of :math:`D_{ij}` over ``i != j``; it equals the paper's value when no two
    distinct nodes point in exactly the same direction, and is 0 when all rows are identical.
    A zero row has cosine 0 with everything (distance 1), as in ``F.cosine_similarity``.
    Cosine distances do not change when rows are rescaled (raw and row-normalised features
    give the same MAD), but do when columns are centred or standardised.

    Shapes:
        x: ``[N, C]``, pairs: ``[2, P]`` -> float in [0, 2].
    """
    x = _as_matrix(x)
    n = x.size(0)
    if pairs is not None:
        return _mad_on_pairs(x, _check_edges(pairs, n).to(x.device))
    if n < 2:
        return 0.0
    unit = torch.nn.functional.normalize(x, dim=1)
    s = unit.sum(0, dtype=torch.float64)
    cos_sum = float(s.dot(s)) - float(unit.pow(2).sum(dtype=torch.float64))
    return max(0.0, 1.0 - cos_sum / (n * (n - 1)))


def _mad_on_pairs(x: Tensor, pairs: Tensor, *, unit: bool = False) -> float:
    """Chen et al.'s MAD of ``x`` over ``pairs`` (no checks; only the paired rows are
    normalised, or none when ``unit`` says the rows already are)."""
    src, dst = pairs
    if src.numel() == 0:
        return 0.0
    n = x.size(0)
    a, b = x.index_select(0, src), x.index_select(0, dst)
    if not unit:
        a = torch.nn.functional.normalize(a, dim=1)
        b = torch.nn.functional.normalize(b, dim=1)
    dist = (1.0 - (a * b).sum(1)).clamp_min_(0.0)
    dist = torch.where(dist > 1e-6, dist, 0.0)  # float32 cosines: below 1e-6 counts as 0
    total = torch.zeros(n, dtype=dist.dtype, device=dist.device).index_add_(0, src, dist)
    count = torch.zeros(n, dtype=dist.dtype, device=dist.device).index_add_(
        0, src, (dist > 0).to(dist.dtype)
    )
    per_node = total / count.clamp_min(1)
    nonzero = int((per_node > 0).sum())
    return float(per_node.sum() / nonzero) if nonzero else 0.0


@torch.no_grad()
def mad_gap(x: Tensor, neighbor_pairs: Tensor, remote_pairs: Tensor) -> float:
    r"""MADGap (Chen et al., AAAI 2020, eq. 5): :math:`\mathrm{MAD}^{rmt} - \mathrm{MAD}^{neb}`.

    ``neighbor_pairs`` are node pairs a few hops apart (the paper: at most 3) and
    ``remote_pairs`` pairs far apart (the paper: at least 8 hops); see
    :func:`fathom.diagnostics.probes.hop_pairs`. A large positive gap means remote nodes stay
    distinguishable from neighbours; it shrinks towards 0 as representations over-smooth.

    Shapes:
        x: ``[N, C]``, neighbor_pairs: ``[2, P]``, remote_pairs: ``[2, Q]`` -> float.
    """
    return mad(x, remote_pairs) - mad(x, neighbor_pairs)


@torch.no_grad()
def singular_values(x: Tensor) -> Tensor:
    """Singular values of ``x`` (descending, float64), through the ``C x C`` Gram matrix when
    ``N > C`` (one GEMM in ``x``'s precision and a float64 eigensolve instead of an ``N x C``
    SVD; singular values below ~1e-3 of the largest are then not resolved in float32).

    Shapes:
        x: ``[N, C]`` -> ``[min(N, C)]``.
    """
    x = _as_matrix(x)
    n, c = x.shape
    if n == 0 or c == 0:
        return torch.zeros(0, dtype=torch.float64)
    gram = (x.T @ x if n >= c else x @ x.T).double()
    eig = torch.linalg.eigvalsh(gram).clamp_min(0.0)
    return eig.flip(0).sqrt()


@torch.no_grad()
def numerical_rank(x: Tensor) -> float:
    r"""Numerical (stable) rank :math:`\lVert X\rVert_F^2 / \lVert X\rVert_2^2 = \sum_k
    \sigma_k^2 / \sigma_1^2`, the rank measure Zhang et al. (ICLR 2026) prove collapses to 1
    under over-smoothing. 0 for an all-zero ``x``.

    Shapes:
        x: ``[N, C]`` -> float in [0, min(N, C)].
    """
    s = singular_values(x)
    if s.numel() == 0 or float(s[0]) <= 0:
        return 0.0
    return float(s.pow(2).sum() / s[0].pow(2))


@torch.no_grad()
def effective_rank(x: Tensor) -> float:
    r"""Effective rank (Roy & Vetterli, EUSIPCO 2007): :math:`\exp(-\sum_k p_k \log p_k)` with
    :math:`p_k = \sigma_k / \sum_j \sigma_j`. Equals ``r`` for ``r`` equal non-zero singular
    values, 1 for a rank-one ``x``; 0 for an all-zero ``x``.

    Shapes:
        x: ``[N, C]`` -> float in [0, min(N, C)].
    """
    s = singular_values(x)
    total = float(s.sum()) if s.numel() else 0.0
    if total <= 0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def mean_row_norm(x: Tensor) -> float:
    r"""Mean L2 norm of the node representations, :math:`\frac1N \sum_i \lVert x_i\rVert_2`:
    it grows without bound when a deep network's representations explode and falls to 0 when
    they vanish, which the scale-free metrics (MAD, ranks, normalised energy) do not show.
    0 for no nodes.

    Shapes:
        x: ``[N, C]`` -> float.
    """
    x = _as_matrix(x)
    if x.size(0) == 0:
        return 0.0
    return float(torch.linalg.vector_norm(x, dim=1).mean())


def _components_and_weights(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """Component id of every node, and the entries of the normalised ``D~^{1/2} 1_c`` vectors."""
    import numpy as np
    from scipy.sparse.csgraph import connected_components

    adj = adjacency(check_edge_index(edge_index, num_nodes), num_nodes)
    _, labels = connected_components(adj, directed=False)
    deg = np.asarray(adj.sum(1)).ravel() + 1.0
    norms = np.zeros(int(labels.max()) + 1 if num_nodes else 0)
    np.add.at(norms, labels, deg)
    weight = np.sqrt(deg) / np.sqrt(norms[labels])
    return torch.from_numpy(labels.astype(np.int64)), torch.from_numpy(weight)


@torch.no_grad()
def dominant_subspace_distance(
    x: Tensor,
    edge_index: Tensor | None = None,
    *,
    basis: tuple[Tensor, Tensor] | None = None,
) -> float:
    r"""Relative distance of ``x`` to the dominant subspace
    :math:`\mathcal M = \{\sum_c \tilde D^{1/2}\mathbb 1_c\, w_c^\top\}` that GCN propagation
    converges to (Oono & Suzuki, "Graph Neural Networks Exponentially Lose Expressive Power for
    Node Classification", ICLR 2020):

    .. math::
        d_{\mathcal M}(X) / \lVert X\rVert_F = \lVert (I - P)X\rVert_F / \lVert X\rVert_F,
        \qquad P = \sum_c u_c u_c^\top,\ u_c = \tilde D^{1/2}\mathbb 1_c / \lVert\cdot\rVert.

    1 means orthogonal to :math:`\mathcal M`, 0 means fully collapsed onto it (0 for an
    all-zero ``x``). ``basis`` — ``(component id, weight)`` from a previous call's graph, see
    :func:`fathom.diagnostics.probes.ProbeGraph` — skips recomputing the components.

    Shapes:
        x: ``[N, C]``, edge_index: ``[2, E]`` -> float in [0, 1].
    """
    x = _as_matrix(x)
    n = x.size(0)
    if basis is None:
        if edge_index is None:
            raise DataError("dominant_subspace_distance needs edge_index (or a precomputed basis)")
        basis = _components_and_weights(edge_index, n)
    comp, weight = (t.to(x.device) for t in basis)
    weight = weight.to(x.dtype).unsqueeze(1)
    total = float(x.pow(2).sum(dtype=torch.float64))
    if total <= 0:
        return 0.0
    coeff = torch.zeros(int(comp.max()) + 1, x.size(1), dtype=x.dtype, device=x.device)
    coeff.index_add_(0, comp, x * weight)
    # The residual is formed explicitly (not as total - projection) so that distances near 0,
    # the over-smoothed regime, keep their relative precision.
    residual = float((x - weight * coeff[comp]).pow(2).sum(dtype=torch.float64))
    return math.sqrt(residual / total)


@torch.no_grad()
def class_separation(x: Tensor, y: Tensor, *, per_class: bool = False) -> float | list[float]:
    r"""Ratio of between-class to within-class distance of node representations.

    With class centroids :math:`\mu_c` and ``C`` classes present,

    .. math::
        \mathrm{sep} = \frac{\frac{1}{C(C-1)}\sum_{c\ne c'} \lVert\mu_c - \mu_{c'}\rVert}
        {\frac{1}{C}\sum_c \operatorname{mean}_{i: y_i=c} \lVert x_i - \mu_c\rVert},

    a centroid form (O(N C)) of the group distance ratio of Zhou et al., "Towards Deeper
    Graph Neural Networks with Differentiable Group Normalization" (NeurIPS 2020), which
    averages all pairwise distances instead. It falls towards 0 as classes merge.
    ``per_class=True`` returns, for each class (ascending label), the mean distance from its
    centroid to the other centroids over its own within-class distance. Nodes with a negative
    label are ignored. ``inf`` when the classes are separated but each is a single point; 0
    when everything is one point.

    Shapes:
        x: ``[N, C]``, y: ``[N]`` -> float (or list of floats).
    """
    x = _as_matrix(x).double()
    if not isinstance(y, Tensor) or y.dim() != 1 or y.size(0) != x.size(0):
        raise DataError(
            f"labels must be a 1-D tensor with one entry per node ({x.size(0)}), got "
            f"{tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__}"
        )
    keep = y >= 0
    x, y = x[keep], y[keep].long().to(x.device)
    classes, y = torch.unique(y, return_inverse=True)
    k = classes.numel()
    if k < 2:
        raise DataError(f"class_separation needs at least 2 classes, got {k}")
    counts = torch.bincount(y, minlength=k).to(x.dtype)
    centroids = torch.zeros(k, x.size(1), dtype=x.dtype, device=x.device).index_add_(0, y, x)
    centroids = centroids / counts.unsqueeze(1)
    within_each = (
        torch.zeros(k, dtype=x.dtype, device=x.device).index_add_(
            0, y, (x - centroids[y]).norm(dim=1)
        )
        / counts
    )
    between = torch.cdist(centroids, centroids)
    between_each = between.sum(1) / (k - 1)

    def ratio(b: float, w: float) -> float:
        if w > 0:
            return b / w
        return math.inf if b > 0 else 0.0

    if per_class:
        return [ratio(float(b), float(w)) for b, w in zip(between_each, within_each, strict=True)]
    return ratio(float(between_each.mean()), float(within_each.mean()))
