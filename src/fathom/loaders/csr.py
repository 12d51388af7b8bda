"""Compressed sparse rows of a graph, grouped by target node, in plain torch.

PyG's samplers keep the graph as ``adj_t`` (CSC of ``edge_index``): row ``i`` lists the
sources ``j`` of the edges ``j -> i``, because message passing flows source -> target and a
node's output depends on its *in*-neighbours. :func:`to_csr` builds that layout with a
stable sort, a bincount and a cumsum (no pyg-lib / torch-sparse), on ``edge_index``'s device,
and keeps the permutation back to the original edge ids so edge features can be gathered.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from fathom.errors import DataError

__all__ = ["CSR", "expand_segments", "induced_subgraph", "to_csr"]


@dataclass(frozen=True)
class CSR:
    """A graph's edges grouped by target node (PyG's ``adj_t`` convention).

    The in-edges of node ``i`` sit at positions ``rowptr[i]:rowptr[i + 1]``; ``col`` holds
    their source nodes and ``perm`` their original edge ids (``None``: positions *are* the
    edge ids).

    Shapes:
        rowptr: ``[num_nodes + 1]`` (int64), col: ``[num_edges]`` (int64),
        perm: ``[num_edges]`` (int64) or ``None``.
    """

    rowptr: Tensor
    col: Tensor
    num_nodes: int
    perm: Tensor | None = None

    @property
    def num_edges(self) -> int:
        """The number of edges."""
        return self.col.numel()

    @property
    def device(self) -> torch.device:
        """The device the tensors live on."""
        return self.col.device

    def degree(self) -> Tensor:
        """In-degree of every node, ``[num_nodes]`` (int64)."""
        return self.rowptr[1:] - self.rowptr[:-1]

    def edge_ids(self, positions: Tensor) -> Tensor:
        """Original edge ids of the CSR ``positions``."""
        return positions if self.perm is None else self.perm.index_select(0, positions)

    def to(self, device: torch.device | str) -> CSR:
        """A copy on ``device`` (``self`` when it already lives there)."""
        device = torch.device(device)
        if device == self.device:
            return self
        perm = None if self.perm is None else self.perm.to(device)
        return CSR(self.rowptr.to(device), self.col.to(device), self.num_nodes, perm)


def _check_edge_index(edge_index: Tensor, num_nodes: int) -> None:
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        shape = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index)
        raise DataError(f"edge_index: expected a [2, num_edges] tensor, got {shape}")
    if edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool:
        raise DataError(f"edge_index: expected an integer tensor, got {edge_index.dtype}")
    if num_nodes < 0:
        raise DataError(f"num_nodes: expected >= 0, got {num_nodes}")
    if edge_index.numel() > 0:
        lo, hi = int(edge_index.min()), int(edge_index.max())
        if lo < 0 or hi >= num_nodes:
            raise DataError(f"edge_index: node ids must lie in [0, {num_nodes}), got [{lo}, {hi}]")


def to_csr(edge_index: Tensor, num_nodes: int) -> CSR:
    """Group ``edge_index``'s edges by target: row ``i`` holds the sources ``j`` of ``j -> i``.

    The sort is stable, so within a row the edges keep their original order (ascending edge
    id). Runs on ``edge_index``'s device.

    Args:
        edge_index: ``(source, target)`` pairs.
        num_nodes: The number of nodes (isolated nodes get empty rows).

    Shapes:
        edge_index: ``[2, num_edges]`` -> ``CSR`` with ``rowptr [num_nodes + 1]``,
        ``col [num_edges]``, ``perm [num_edges]``.

    Raises:
        DataError: ``edge_index`` is not an integer ``[2, E]`` tensor or has ids outside
            ``[0, num_nodes)``.
    """
    _check_edge_index(edge_index, num_nodes)
    edge_index = edge_index.long()
    src, dst = edge_index[0], edge_index[1]
    perm = torch.sort(dst, stable=True).indices
    counts = torch.bincount(dst, minlength=num_nodes)
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=edge_index.device)
    rowptr[1:] = torch.cumsum(counts, dim=0)
    return CSR(rowptr=rowptr, col=src[perm], num_nodes=num_nodes, perm=perm)


def expand_segments(starts: Tensor, counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Flatten the segments ``[starts[s], starts[s] + counts[s])`` into one index vector.

    The vectorised form of ``cat([arange(a, a + c) for a, c in zip(starts, counts)])``.

    Shapes:
        starts, counts: ``[S]`` -> positions, segment, rank: ``[counts.sum()]`` (the flat
        index, the segment it belongs to and its offset inside that segment).
    """
    total = int(counts.sum())
    device = counts.device
    segment = torch.repeat_interleave(
        torch.arange(counts.numel(), device=device), counts, output_size=total
    )
    offsets = torch.cumsum(counts, dim=0) - counts
    # index_select, not ``t[segment]``: several times faster for 1-D gathers on the CPU.
    rank = torch.arange(total, device=device) - offsets.index_select(0, segment)
    return starts.index_select(0, segment) + rank, segment, rank


def induced_subgraph(
    graph: CSR | Tensor, nodes: Tensor, *, num_nodes: int | None = None
) -> tuple[Tensor, Tensor]:
    """The edges among ``nodes``, relabelled to positions in ``nodes``.

    Args:
        graph: A :class:`CSR` or an ``edge_index``.
        nodes: Distinct node ids; local id ``k`` is ``nodes[k]``.
        num_nodes: The graph's number of nodes, for an ``edge_index`` (default: inferred
            from ``edge_index`` and ``nodes``).

    Shapes:
        nodes: ``[n]`` -> edge_index_local: ``[2, m]`` (source, target), edge_ids: ``[m]``,
        in ascending original edge id (the same order for both kinds of ``graph``).

    Raises:
        DataError: ``nodes`` repeats a node or lies outside the graph.
    """
    if isinstance(graph, CSR):
        device, n = graph.device, graph.num_nodes
    else:
        device = graph.device
        if num_nodes is None:
            hi = [int(graph.max()) + 1] if graph.numel() else []
            hi += [int(nodes.max()) + 1] if nodes.numel() else []
            num_nodes = max(hi, default=0)
        _check_edge_index(graph, num_nodes)
        n = num_nodes
    nodes = nodes.to(device=device, dtype=torch.long).view(-1)
    if nodes.numel() and (int(nodes.min()) < 0 or int(nodes.max()) >= n):
        raise DataError(f"nodes: ids must lie in [0, {n}), got [{nodes.min()}, {nodes.max()}]")
    local = torch.full((n,), -1, dtype=torch.long, device=device)
    arange = torch.arange(nodes.numel(), device=device)
    local[nodes] = arange
    if not bool((local[nodes] == arange).all()):
        raise DataError("nodes: expected distinct node ids, got repeats")

    if isinstance(graph, CSR):
        # Only the in-edges of ``nodes`` can qualify: O(their degree), not O(num_edges).
        starts = graph.rowptr[nodes]
        pos, seg, _ = expand_segments(starts, graph.rowptr[nodes + 1] - starts)
        src = local[graph.col[pos]]
        keep = src >= 0
        edge_ids = graph.edge_ids(pos[keep])
        row, col = src[keep], seg[keep]
        order = torch.argsort(edge_ids)
        return torch.stack([row[order], col[order]]), edge_ids[order]

    ei = graph.long()
    row, col = local[ei[0]], local[ei[1]]
    keep = (row >= 0) & (col >= 0)
    edge_ids = keep.nonzero().view(-1)
    return torch.stack([row[keep], col[keep]]), edge_ids
