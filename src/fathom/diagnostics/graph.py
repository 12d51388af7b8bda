"""Validation of graph inputs and the simple adjacency matrix the diagnostics share.

Every diagnostic that takes ``edge_index`` checks it here, with the same one-line
:class:`~fathom.errors.DataError` s, and builds its scipy adjacency here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from fathom.errors import DataError

__all__ = ["adjacency", "check_edge_index", "check_index", "check_num_nodes", "is_integer_tensor"]

_SHOW = 5


def check_num_nodes(num_nodes: Any, *, minimum: int = 0) -> int:
    """``num_nodes`` as an int (a bool, a non-integer or a value below ``minimum`` is refused)."""
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)):
        raise DataError(f"num_nodes must be an int >= {minimum}, got {num_nodes!r}")
    if num_nodes < minimum:
        raise DataError(f"num_nodes must be an int >= {minimum}, got {num_nodes}")
    return int(num_nodes)


def is_integer_tensor(t: Tensor) -> bool:
    return not (t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool)


def check_index(name: str, index: Tensor, num_nodes: int) -> np.ndarray:
    """An integer tensor of node indices as int64 numpy, every entry in ``[0, num_nodes)``."""
    if not is_integer_tensor(index):
        raise DataError(f"{name} must have an integer dtype, got {index.dtype}")
    arr = index.detach().to("cpu", torch.long).numpy()
    bad = (arr < 0) | (arr >= num_nodes)
    if bad.any():
        values = arr.T[bad.T] if arr.ndim == 2 else arr[bad]
        raise DataError(
            f"{name} has {int(bad.sum())} entries out of range [0, {num_nodes}): first "
            f"offending values {values[:_SHOW].tolist()}"
        )
    return arr


def check_edge_index(edge_index: Any, num_nodes: int, name: str = "edge_index") -> np.ndarray:
    """``edge_index`` (a ``[2, E]`` integer tensor, indices in range) as int64 numpy."""
    if not isinstance(edge_index, Tensor):
        raise DataError(f"{name} must be a torch.Tensor, got {type(edge_index).__name__}")
    if not is_integer_tensor(edge_index):
        raise DataError(f"{name} must have an integer dtype, got {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise DataError(f"{name} must have shape [2, num_edges], got {tuple(edge_index.shape)}")
    return check_index(name, edge_index, num_nodes)


def adjacency(ei: np.ndarray, num_nodes: int, *, directed: bool = False) -> sp.csr_matrix:
    """0/1 float64 CSR adjacency without self-loops or duplicate entries; row ``i`` lists the
    nodes with an edge into ``i`` (symmetrised unless ``directed``).

    Shapes:
        ei: ``[2, E]`` int64 -> ``[N, N]``.
    """
    row, col = ei[1], ei[0]
    keep = row != col
    row, col = row[keep], col[keep]
    if not directed:
        row, col = np.concatenate([row, col]), np.concatenate([col, row])
    adj = sp.csr_matrix(
        (np.ones(row.size, dtype=np.float64), (row, col)), shape=(num_nodes, num_nodes)
    )
    adj.sum_duplicates()
    adj.data[:] = 1.0
    return adj
