"""Check a PyG ``Data`` object for node classification and report its structural statistics.

:func:`validate_graph` raises a :class:`~fathom.errors.DataError` with a one-line message for
anything that would make training silently wrong (bad dtypes or shapes, out-of-range indices,
non-finite features, bad labels or masks). Properties that are legitimate but worth knowing
(self-loops, duplicate edges, isolated nodes, directedness) are only *reported* in a
:class:`GraphReport`. Every check is vectorised, so 100K edges take milliseconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from fathom.errors import DataError

__all__ = ["GraphReport", "validate_graph"]

_MASKS = ("train_mask", "val_mask", "test_mask")
_SHOW = 5  # offending values quoted in an error message


@dataclass(frozen=True)
class GraphReport:
    """Statistics of a validated graph.

    Args:
        num_nodes (int): number of nodes :math:`N`.
        num_edges (int): number of columns of ``edge_index`` (directed entries, so an undirected
            edge stored in both directions counts twice, as in PyG's ``Data.num_edges``).
        num_features (int): node feature dimension :math:`F`.
        num_classes (int, optional): ``y.max() + 1`` (2 for multi-label 0/1 tasks), or
            :obj:`None` without labels.
        self_loops (int): entries with ``edge_index[0] == edge_index[1]``.
        duplicate_edges (int): entries repeating an earlier ``(source, target)`` pair.
        isolated_nodes (int): nodes with no edge to another node (a node whose only edges are
            self-loops counts as isolated, as in PyG's ``contains_isolated_nodes``).
        is_undirected (bool): whether every ``(i, j)`` has a matching ``(j, i)``.
        num_train (int, optional): nodes in ``train_mask``, or :obj:`None` without the mask.
        num_val (int, optional): nodes in ``val_mask``, or :obj:`None` without the mask.
        num_test (int, optional): nodes in ``test_mask``, or :obj:`None` without the mask.
    """

    num_nodes: int
    num_edges: int
    num_features: int
    num_classes: int | None
    self_loops: int
    duplicate_edges: int
    isolated_nodes: int
    is_undirected: bool
    num_train: int | None = None
    num_val: int | None = None
    num_test: int | None = None

    def summary(self) -> str:
        """One line, e.g. ``"100 nodes, 400 edges (undirected), 16 features, 2 classes; ..."``."""
        direction = "undirected" if self.is_undirected else "directed"
        classes = "no labels" if self.num_classes is None else f"{self.num_classes} classes"
        split = "/".join("-" if n is None else str(n) for n in self._split())
        return (
            f"{self.num_nodes} nodes, {self.num_edges} edges ({direction}), "
            f"{self.num_features} features, {classes}; {self.self_loops} self-loops, "
            f"{self.duplicate_edges} duplicate edges, {self.isolated_nodes} isolated nodes; "
            f"train/val/test {split}"
        )

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain ``dict`` (JSON-serialisable)."""
        return asdict(self)

    def _split(self) -> tuple[int | None, int | None, int | None]:
        return self.num_train, self.num_val, self.num_test


def validate_graph(
    data: Data, *, require_labels: bool = True, require_masks: bool = True
) -> GraphReport:
    r"""Validate a node-classification graph and return its :class:`GraphReport`.

    Errors (:class:`~fathom.errors.DataError`, one line naming the field and offending values):
    missing ``x`` or ``edge_index``; ``x`` not a floating ``[N, F]`` tensor or containing
    NaN/Inf; an explicit ``num_nodes`` that differs from ``x.size(0)``; ``edge_index`` not an
    integer ``[2, E]`` tensor or with indices outside ``[0, N)``; ``y`` not an integer ``[N]``
    tensor, with negative entries or with a label ``>= N`` (more classes than nodes: it
    would size the classifier head) (or, multi-label, an integer ``[N, T]`` of 0/1); ``x``
    with zero columns; masks not boolean ``[N]``, empty, or overlapping.
    Optional attributes that are present (``y`` without ``require_labels``, masks without
    ``require_masks``) are still checked.

    Args:
        data (torch_geometric.data.Data): the graph.
        require_labels (bool, optional): whether ``data.y`` must be present.
            (default: :obj:`True`)
        require_masks (bool, optional): whether ``train_mask``, ``val_mask`` and ``test_mask``
            must be present. (default: :obj:`True`)

    Shapes:
        - **x:** :math:`(N, F)` floating point
        - **edge_index:** :math:`(2, E)` integer
        - **y:** :math:`(N)` integer, non-negative; or :math:`(N, T)` 0/1 (multi-label)
        - **train_mask, val_mask, test_mask:** :math:`(N)` bool
    """
    x = _required(data, "x")
    edge_index = _required(data, "edge_index")

    if x.dim() != 2:
        raise DataError(f"x must be 2-D [num_nodes, num_features], got shape {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise DataError(f"x must have a floating-point dtype, got {x.dtype}")
    num_nodes = x.size(0)
    if x.size(1) == 0:
        raise DataError(
            f"x has zero feature columns (shape {tuple(x.shape)}); give at least one feature "
            "per node (a constant column, or e.g. one-hot degrees, if the graph has none)"
        )
    # Only an explicitly stored num_nodes can disagree; otherwise PyG infers it from x.
    if "num_nodes" in data and data.num_nodes != num_nodes:
        raise DataError(
            f"num_nodes is {data.num_nodes} but x has {num_nodes} rows (x.shape = {tuple(x.shape)})"
        )
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        rows = bad.any(dim=1).nonzero().flatten()
        raise DataError(
            f"x has {int(bad.sum())} non-finite values (NaN/Inf) in {rows.numel()} rows: "
            f"first rows {_first(rows)}"
        )

    if (
        edge_index.dtype.is_floating_point
        or edge_index.dtype.is_complex
        or (edge_index.dtype == torch.bool)
    ):
        raise DataError(f"edge_index must have an integer dtype, got {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise DataError(f"edge_index must have shape [2, num_edges], got {tuple(edge_index.shape)}")
    ei = edge_index.detach().to("cpu", torch.long)
    out = (ei < 0) | (ei >= num_nodes)
    if bool(out.any()):
        # Column-major order so offending values are listed edge by edge.
        values = ei.t()[out.t()]
        raise DataError(
            f"edge_index has {int(out.sum())} entries out of range [0, {num_nodes}): first "
            f"offending values {_first(values)}"
        )

    y = getattr(data, "y", None)
    if y is None and require_labels:
        raise DataError("data.y is missing (pass require_labels=False for unlabelled graphs)")
    num_classes = None if y is None else _check_y(y, num_nodes)

    masks = {}
    for name in _MASKS:
        mask = getattr(data, name, None)
        if mask is None:
            if require_masks:
                raise DataError(f"data.{name} is missing (pass require_masks=False to skip)")
            continue
        masks[name] = _check_mask(name, mask, num_nodes)
    present = list(masks)
    for i, a in enumerate(present):
        for b in present[i + 1 :]:
            both = (masks[a] & masks[b]).nonzero().flatten()
            if both.numel() > 0:
                raise DataError(
                    f"{a} and {b} overlap on {both.numel()} nodes: first {_first(both)}"
                )

    row, col = ei[0], ei[1]
    # Encode (row, col) as one int64 so set operations are sorts of a flat array. NumPy's sort
    # is used because torch's parallel CPU sort is orders of magnitude slower on small hosts.
    n = max(num_nodes, 1)
    keys = _sorted_unique((row * n + col).numpy())
    reversed_keys = _sorted_unique((col * n + row).numpy())
    # Like PyG's contains_isolated_nodes, a node whose only edges are self-loops is isolated.
    loop = row == col
    degree = torch.bincount(ei[:, ~loop].flatten(), minlength=num_nodes)
    counts = {name: int(m.sum()) for name, m in masks.items()}
    return GraphReport(
        num_nodes=num_nodes,
        num_edges=ei.size(1),
        num_features=x.size(1),
        num_classes=num_classes,
        self_loops=int(loop.sum()),
        duplicate_edges=ei.size(1) - keys.size,
        isolated_nodes=int((degree == 0).sum()),
        is_undirected=bool(np.array_equal(keys, reversed_keys)),
        num_train=counts.get("train_mask"),
        num_val=counts.get("val_mask"),
        num_test=counts.get("test_mask"),
    )


def _required(data: Data, name: str) -> Tensor:
    value = getattr(data, name, None)
    if value is None:
        raise DataError(f"data.{name} is missing")
    if not isinstance(value, Tensor):
        raise DataError(f"data.{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def _check_y(y: Tensor, num_nodes: int) -> int:
    if not isinstance(y, Tensor):
        raise DataError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() == 2 and y.size(0) == num_nodes:  # multi-label: one 0/1 column per task
        if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
            raise DataError(f"y must have an integer dtype, got {y.dtype}")
        bad = ((y != 0) & (y != 1)).nonzero()
        if bad.numel() > 0:
            raise DataError(
                f"multi-label y [num_nodes, tasks] must hold 0/1, got {int(y[tuple(bad[0])])} "
                f"at node {int(bad[0, 0])}, task {int(bad[0, 1])}"
            )
        return 2
    if y.dim() != 1 or y.size(0) != num_nodes:
        raise DataError(
            f"y must have shape [num_nodes] = [{num_nodes}] (or [num_nodes, tasks] of 0/1 for "
            f"multi-label), got {tuple(y.shape)}"
        )
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise DataError(f"y must have an integer dtype, got {y.dtype}")
    negative = (y < 0).nonzero().flatten()
    if negative.numel() > 0:
        raise DataError(
            f"y has {negative.numel()} negative labels: first at nodes {_first(negative)} "
            f"with values {_first(y[negative])}"
        )
    if y.numel() == 0:
        return 0
    top = int(y.max())
    if top >= num_nodes:
        # Checked before anything sizes a classifier head by max(y) + 1.
        at = int((y == top).nonzero()[0, 0])
        raise DataError(
            f"y has label {top} (at node {at}), so {top + 1} classes, on a graph of only "
            f"{num_nodes} nodes; labels must be 0..C-1 with C at most the number of nodes"
        )
    return top + 1


def _check_mask(name: str, mask: Tensor, num_nodes: int) -> Tensor:
    if not isinstance(mask, Tensor):
        raise DataError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise DataError(f"{name} must have dtype torch.bool, got {mask.dtype}")
    if mask.dim() != 1 or mask.size(0) != num_nodes:
        raise DataError(
            f"{name} must have shape [num_nodes] = [{num_nodes}], got {tuple(mask.shape)}"
        )
    if not bool(mask.any()):
        raise DataError(f"{name} is empty (selects 0 of {num_nodes} nodes)")
    return mask.detach().cpu()


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    keys = np.sort(keys)
    keep = np.ones(keys.size, dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    return keys[keep]


def _first(values: Tensor) -> list[int]:
    return values[:_SHOW].tolist()
