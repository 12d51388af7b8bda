r"""Dynamic dilated k-nearest-neighbour graphs in plain torch (no pyg-lib / torch-cluster).

DeepGCN (Li et al., "DeepGCNs: Can GCNs Go as Deep as CNNs?", ICCV 2019) rebuilds the graph of
a point cloud at every layer from that layer's features: each point's :math:`k \cdot d`
nearest neighbours in feature space, of which every :math:`d`-th is kept (dilation
:math:`d`), or, in training with stochastic dilation, :math:`k` of them drawn at random.

Neighbours are ranked by squared Euclidean distance with ties broken by the lower point
index, so the result is exactly that of sorting every distance (the brute-force reference)
whatever the block size. Distances are computed for ``block_size`` query points at a time
against the points of their own cloud, so memory is :math:`O(\text{block} \cdot N)`, never
:math:`O(N^2)`. As in the DeepGCN reference code the point itself (distance 0) counts as its
first neighbour unless ``loop=False``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fathom.errors import DataError

__all__ = ["dilated_knn_graph", "knn_indices"]

# Above k = candidates / _SORT_ABOVE ranking whole distance rows beats topk plus the tie repair
# on CPU (measured with a stable sort: 1024 candidates, k = 432: 65 ms vs 82 ms; 512, k = 432:
# 15 ms vs 34 ms; while for k = 16 topk is 4x faster).
_SORT_ABOVE = 4


def _order_bits(values: Tensor) -> Tensor:
    """int32 whose signed order is the order of the float32 ``values`` (``-0.0 == +0.0``)."""
    bits = (values + 0.0).view(torch.int32)  # + 0.0: -0.0 becomes +0.0, equal to it as floats
    # an order-preserving map of float32 to int32: flip the magnitude bits of negatives
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


def _ranked_by_key(dist: Tensor, k: int) -> Tensor:
    """The columns of the ``k`` smallest entries of each row of a float32 ``dist``, ordered
    by (distance, column): the same as a stable sort, from one ``topk`` over int64 keys
    ``(distance bits, column)``, which are unique, so no tie is left to the sort (measured,
    1 thread, 512 x 512, k = 432: 9 ms against 14 ms for the stable sort)."""
    columns = torch.arange(dist.size(1), device=dist.device)
    key = (_order_bits(dist).to(torch.int64) << 32) | columns  # [B, N], unique per row
    return key.topk(k, dim=1, largest=False).indices


def _rank_rows(dist: Tensor, k: int) -> Tensor:
    """The ``k`` smallest columns of every row by (distance, column), ranking whole rows."""
    if dist.dtype == torch.float32:
        return _ranked_by_key(dist, k)
    return dist.sort(dim=1, stable=True).indices[:, :k]


def _order_selected(vals: Tensor, cols: Tensor) -> Tensor:
    """``cols`` ``[B, k]`` reordered by (value, column): nearest first, ties by lower index."""
    if vals.dtype == torch.float32:
        # unique int64 keys (distance bits, column): one small sort, the column in the low half
        key = (_order_bits(vals).to(torch.int64) << 32) | cols
        return key.sort(dim=1).values & 0xFFFFFFFF
    by_index = cols.argsort(dim=1)  # sort by index, then stably by distance
    cols, vals = cols.gather(1, by_index), vals.gather(1, by_index)
    return cols.gather(1, vals.argsort(dim=1, stable=True))


# torch's CPU topk takes a partial sort while 64 * k <= the row length, nth_element beyond, which
# is 1.5-2x slower; there ranking the candidates of the k groups of _GROUP columns with the
# smallest minima is faster (1 thread, 1024 x 4096 block, k = 64: 104 ms against 181 ms).
_PARTIAL_SORT_RATIO = 64
_GROUP = 4
# ... but only while k is a small share of the groups: the groups' own topk then leaves the
# partial-sort regime too, and by k = groups / 6 one topk of the whole row is as fast (1 thread,
# 1024 x 4096 block, min of 5: k = 128: 55 ms against 79 ms; k = 192: 76 vs 76; k = 432, the
# k * d of DeepGCN's dilation 27: 155 ms against 87 ms).
_GROUPS_PER_K = 6
_LAST_KEY = torch.iinfo(torch.int64).max


def _ranked_in_groups(dist: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` smallest columns of every row of ``dist`` by (distance, column), ranking only
    the ``k`` groups of ``_GROUP`` consecutive columns with the smallest minima, plus the rows
    (second value) whose ``k``-th and ``(k+1)``-th group minima are equal, left to the caller.

    Exact elsewhere: every group not taken has a minimum above the ``k``-th smallest group
    minimum ``T``; the ``k`` groups taken hold at least ``k`` entries ``<= T``, so every entry
    up to the ``k``-th smallest (ties included) lies in them.
    """
    n = dist.size(1)
    whole = n // _GROUP * _GROUP
    minima = dist[:, :whole].unflatten(1, (whole // _GROUP, _GROUP)).amin(2)  # [B, n / g]
    if whole < n:
        minima = torch.cat([minima, dist[:, whole:].amin(1, keepdim=True)], 1)
    group_vals, groups = minima.topk(k + 1, dim=1, largest=False)
    cut = (group_vals[:, k] == group_vals[:, k - 1]).nonzero().view(-1)
    cols = (groups[:, :k, None] * _GROUP + torch.arange(_GROUP, device=dist.device)).flatten(1)
    beyond = cols >= n  # the short last group's missing columns
    cols = cols.clamp_(max=n - 1)
    key = (_order_bits(dist.gather(1, cols)).to(torch.int64) << 32) | cols  # [B, k * g]
    if whole < n:
        key[beyond] = _LAST_KEY
    return key.topk(k, dim=1, largest=False).values & 0xFFFFFFFF, cut


def _smallest(dist: Tensor, k: int) -> Tensor:
    """The columns of the ``k`` smallest entries of each row of ``dist`` ``[B, N]``, ordered
    by (distance, column): exactly a stable sort's first ``k``.

    For ``64 (k + 1) <= N``: one float ``topk`` of ``k + 1``. Where the ``(k+1)``-th distance
    exceeds the ``k``-th, the first ``k`` are the unique set of the ``k`` smallest, only their
    order among equal distances is topk's, fixed by one sort of the selection of the rows
    that have equal distances in it;
    rows where the two are equal (ties across the cut, e.g. integer coordinates) are ranked
    whole. This replaces a pass over the block counting the entries within the k-th distance
    (about as costly as the topk itself). For ``N / 64 < k + 1`` and ``k <= N / 24``
    (float32): the candidates of the ``k`` nearest groups of columns
    (:func:`_ranked_in_groups`); above ``N / 4``, whole rows are ranked.
    """
    n = dist.size(1)
    if _SORT_ABOVE * k > n:
        # k is a large share of the candidates (dilated layers): rank whole rows at once
        return _rank_rows(dist, k)
    groups = -(-n // _GROUP)
    if (
        _PARTIAL_SORT_RATIO * (k + 1) > n
        and groups >= _GROUPS_PER_K * k
        and dist.dtype == torch.float32
    ):
        cols, cut = _ranked_in_groups(dist, k)
    else:
        vals, cols = dist.topk(k + 1, dim=1, largest=False)  # [B, k + 1], ascending
        cut = (vals[:, k] == vals[:, k - 1]).nonzero().view(-1)  # rows tied across the cut
        vals, cols = vals[:, :k], cols[:, :k].contiguous()
        # topk's order is already (distance, column) on rows without equal distances; only
        # rows with a tie inside the selection need their order fixed
        tied = (vals[:, 1:] == vals[:, :-1]).any(1).nonzero().view(-1)
        if tied.numel():
            cols[tied] = _order_selected(vals[tied], cols[tied])
    if cut.numel():
        cols[cut] = _rank_rows(dist[cut], k)
    return cols


def knn_indices(
    x: Tensor, y: Tensor, k: int, *, y_offset: int = 0, exclude: Tensor | None = None
) -> Tensor:
    r"""The ``k`` nearest rows of ``y`` for every row of ``x``, nearest first, ties broken by
    the lower index; returned as indices into ``y`` plus ``y_offset``.

    Args:
        x: query points ``[B, F]``.
        y: candidate points ``[N, F]``.
        k: neighbours per query (``k <= N``, after ``exclude``).
        y_offset: added to the returned indices.
        exclude: ``[B]`` index into ``y`` of a candidate each query must not pick (itself),
            or ``None``.

    Shapes:
        x: ``[B, F]``, y: ``[N, F]`` -> ``[B, k]``.
    """
    # ||x - y||^2 = ||x||^2 - 2 x.y + ||y||^2  # [B, N]
    dist = torch.addmm((y * y).sum(1).unsqueeze(0), x, y.t(), alpha=-2.0)
    dist += (x * x).sum(1, keepdim=True)
    if exclude is not None:
        dist[torch.arange(x.size(0), device=x.device), exclude] = float("inf")
    return _smallest(dist, k) + y_offset


def dilated_knn_graph(
    x: Tensor,
    k: int,
    batch: Tensor | None = None,
    *,
    dilation: int = 1,
    stochastic: bool = False,
    loop: bool = True,
    block_size: int = 1024,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""The dilated k-NN graph of ``x`` (per cloud of ``batch``), PyG's ``edge_index`` layout.

    For every point :math:`i` its :math:`k d` nearest points :math:`j_1, …, j_{kd}` (nearest
    first) are found; the kept neighbours are :math:`j_1, j_{1+d}, …, j_{1+(k-1)d}`
    (dilation), or with ``stochastic=True`` :math:`k` of the :math:`kd` drawn uniformly
    without replacement (DeepGCN's stochastic dilation; use it in training only).

    Args:
        x: point features ``[N, F]`` (coordinates at the first layer).
        k: neighbours per point.
        batch: cloud of each point ``[N]``, sorted (PyG's convention); ``None``: one cloud.
        dilation: :math:`d \ge 1`.
        stochastic: draw ``k`` of the ``k * d`` candidates at random instead of every d-th.
        loop: count the point itself as a neighbour (DeepGCN's ``dense_knn_matrix`` does).
        block_size: query points per distance block (memory ``block_size * cloud size``).
        generator: random source of stochastic dilation.

    Returns:
        ``edge_index`` ``[2, N * k]``: row 0 the neighbour (source), row 1 the point
        (target), points in order and each point's neighbours nearest first.

    Raises:
        DataError: ``k * dilation`` exceeds the candidates of a cloud (its size, minus one
            without ``loop``), bad ``k`` / ``dilation`` / ``block_size``, non-finite
            features, or an unsorted ``batch``.
    """
    if k < 1 or dilation < 1 or block_size < 1:
        raise DataError(
            f"knn needs k >= 1, dilation >= 1 and block_size >= 1, got k={k}, "
            f"dilation={dilation}, block_size={block_size}"
        )
    if x.dim() != 2:
        raise DataError(f"knn needs features of shape [N, F], got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise DataError("knn features contain NaN or Inf")
    n = x.size(0)
    if batch is None:
        bounds = [(0, n)]
    else:
        if batch.shape != (n,) or (n > 1 and bool((batch[1:] < batch[:-1]).any())):
            raise DataError("knn batch must be a sorted vector with one entry per point")
        counts = torch.bincount(batch)
        ends = counts.cumsum(0).tolist()
        bounds = [(e - c, e) for c, e in zip(counts.tolist(), ends, strict=True) if c > 0]
    kd = k * dilation
    out = []
    for cloud, (start, end) in enumerate(bounds):
        size = end - start
        available = size if loop else size - 1
        if kd > available:
            raise DataError(
                f"knn: k * dilation = {k} * {dilation} = {kd} exceeds the {available} "
                f"candidate neighbours of cloud {cloud} ({size} points"
                f"{'' if loop else ', the point itself excluded'})"
            )
        y = x[start:end]
        for lo in range(0, size, block_size):
            hi = min(lo + block_size, size)
            exclude = None if loop else torch.arange(lo, hi, device=x.device)
            out.append(knn_indices(y[lo:hi], y, kd, y_offset=start, exclude=exclude))
    nbrs = torch.cat(out)  # [N, k * d]
    if stochastic:
        pick = torch.rand(n, kd, generator=generator, device=x.device).argsort(dim=1)[:, :k]
        nbrs = nbrs.gather(1, pick.sort(dim=1).values)
    else:
        nbrs = nbrs[:, ::dilation]
    target = torch.arange(n, device=x.device).repeat_interleave(k)
    return torch.stack([nbrs.reshape(-1), target])
