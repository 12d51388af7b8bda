r"""Tree-NeighborsMatch: the over-squashing benchmark of Alon & Yahav (ICLR 2021).

`"On the Bottleneck of Graph Neural Networks and its Practical Implications"
<https://arxiv.org/abs/2006.05205>`_, Section 4.1; generator after the official code
(``tech-srl/bottleneck``: ``tasks/tree_dataset.py`` and ``tasks/dictionary_lookup.py``).

Every example is a complete binary tree of depth ``r`` (the *radius*) with
:math:`n = 2^{r+1} - 1` nodes and :math:`L = 2^r` leaves. Nodes are numbered in DFS pre-order
(root ``0``; a node's left child is the next id, as in the official ``add_child_edges``), so the
leaves, taken left to right, are ``leaf_index``. Node features are two integers (key, value):

- leaf ``j`` (``j = 0 … L-1``, left to right) holds key ``j + 1`` and value ``perm[j]``, where
  ``perm`` is a permutation of ``1 … L``;
- the root holds the query key ``k`` in ``1 … L`` and value ``0``;
- every other node holds ``(0, 0)``.

The target is the value of the leaf whose key is the root's: ``y = perm[k - 1]`` (in
``1 … L``; class ``0`` never occurs, as in the official code, whose output layer has ``L + 1``
logits). Edges point from each child to its parent (toward the root), plus one self-loop per
node (the official ``add_remaining_self_loops``); there are no parent-to-child edges, so
information only flows up and the root needs ``r`` hops to see the leaves.

Examples (official ``get_combinations``): ``P`` permutations, each paired with every one of the
``L`` query keys, so ``P * L`` examples. ``P = min(1000, L!)`` distinct permutations for
``r <= 3`` and ``P = min(1000, L!, 32000 // L)`` permutations drawn independently for
``r >= 4``, giving 96 / 8000 / 16000 / 32000 / 32000 / 32000 / 32000 examples for r = 2 … 8.

All trees have the same shape, so the dataset is stored compactly (:class:`NeighborsMatchData`:
one ``[N, n, 2]`` feature tensor and one tree's ``edge_index``) and a batch is the disjoint
union built by offsetting that ``edge_index`` (:meth:`NeighborsMatchData.batch`), which is much
faster than collating ``N`` :class:`~torch_geometric.data.Data` objects. Randomness comes from
a local :class:`numpy.random.Generator` seeded with ``seed``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from fathom.errors import ConfigError

__all__ = [
    "MAX_RADIUS",
    "MIN_RADIUS",
    "NeighborsMatchBatch",
    "NeighborsMatchData",
    "batched_edge_index",
    "default_num_examples",
    "tree_edges",
    "tree_neighbors_match",
]

MIN_RADIUS = 2
MAX_RADIUS = 8

_NUM_PERMUTATIONS = 1000  # official ``num_permutations``
_MAX_EXAMPLES = 32000  # official ``max_examples`` (applied for r > 3)


def _check_radius(radius: object) -> int:
    if isinstance(radius, bool) or not isinstance(radius, int | np.integer):
        raise ConfigError(f"radius must be an int in {MIN_RADIUS}..{MAX_RADIUS}, got {radius!r}")
    if not MIN_RADIUS <= int(radius) <= MAX_RADIUS:
        raise ConfigError(f"radius must be in {MIN_RADIUS}..{MAX_RADIUS}, got {radius}")
    return int(radius)


def tree_edges(radius: int, *, self_loops: bool = True) -> tuple[Tensor, Tensor]:
    """Edges of the complete binary tree of depth ``radius``, child -> parent.

    Node ids are DFS pre-order as in the official ``add_child_edges`` (root ``0``). Edges are
    listed in the official order, followed by one self-loop per node when ``self_loops``.

    Returns:
        (edge_index, leaf_index): int64 ``[2, E]`` with ``E = 2 (n - 1) (+ n)`` and the ``L``
        leaf ids, left to right.

    Shapes:
        - **output:** edge_index :math:`(2, E)`, leaf_index :math:`(2^r)`
    """
    radius = _check_radius(radius)
    max_node = 2 ** (radius + 1) - 2
    edges: list[tuple[int, int]] = []
    leaves: list[int] = []
    stack = [(0, max_node)]
    while stack:
        cur, last = stack.pop()
        if cur == last:
            leaves.append(cur)
            continue
        left = cur + 1
        right = cur + 1 + (last - cur) // 2
        edges.append((left, cur))
        edges.append((right, cur))
        stack.append((right, last))
        stack.append((left, right - 1))
    edge_index = torch.tensor(edges, dtype=torch.long).t().contiguous()
    if self_loops:
        loop = torch.arange(max_node + 1, dtype=torch.long).repeat(2, 1)
        edge_index = torch.cat([edge_index, loop], dim=1)
    return edge_index, torch.tensor(leaves, dtype=torch.long)


def default_num_examples(radius: int) -> int:
    """The official number of examples at ``radius``: ``P * 2**radius`` (see module docstring)."""
    radius = _check_radius(radius)
    leaves = 2**radius
    perms = min(_NUM_PERMUTATIONS, math.factorial(leaves))
    if radius > 3:
        perms = min(perms, _MAX_EXAMPLES // leaves)
    return perms * leaves


def batched_edge_index(edge_index: Tensor, num_nodes: int, batch_size: int) -> Tensor:
    """Disjoint union of ``batch_size`` copies of one tree's ``edge_index``.

    Copy ``b`` is offset by ``b * num_nodes``; the first ``B * E`` columns are the union of the
    first ``B`` copies, so one tensor built for the largest batch serves every smaller batch.

    Shapes:
        - **input:** edge_index :math:`(2, E)`
        - **output:** :math:`(2, B E)`
    """
    num_edges = edge_index.size(1)
    offset = torch.arange(batch_size, device=edge_index.device) * num_nodes
    return edge_index.repeat(1, batch_size) + offset.repeat_interleave(num_edges)


@dataclass(frozen=True)
class NeighborsMatchBatch:
    """A batch of trees as one disjoint-union graph.

    Attributes:
        x: int64 ``[B * n, 2]`` (key, value) per node.
        edge_index: int64 ``[2, B * E]``.
        root_index: int64 ``[B]``, the root of each tree (``b * n``).
        y: int64 ``[B]`` targets in ``1 … L``.
    """

    x: Tensor
    edge_index: Tensor
    root_index: Tensor
    y: Tensor

    @property
    def num_graphs(self) -> int:
        """Number of trees ``B``."""
        return int(self.y.numel())

    @property
    def batch(self) -> Tensor:
        """int64 ``[B * n]``: the tree of each node (built on demand; the model needs none)."""
        b = self.num_graphs
        return torch.arange(b, device=self.x.device).repeat_interleave(self.x.size(0) // b)


@dataclass(frozen=True)
class NeighborsMatchData:
    """Tree-NeighborsMatch examples stored compactly (every tree has the same shape).

    Attributes:
        radius: tree depth ``r``.
        x: int64 ``[N, n, 2]`` (key, value) per node of each example.
        y: int64 ``[N]`` targets in ``1 … L``.
        edge_index: int64 ``[2, E]`` of one tree (child -> parent, plus self-loops).
        leaf_index: int64 ``[L]`` leaf ids, left to right.
    """

    radius: int
    x: Tensor
    y: Tensor
    edge_index: Tensor
    leaf_index: Tensor

    root: int = 0

    @property
    def num_nodes(self) -> int:
        """Nodes per tree, ``2**(r+1) - 1``."""
        return int(self.x.size(1))

    @property
    def num_leaves(self) -> int:
        """Leaves per tree, ``L = 2**r`` (also the number of keys and of values)."""
        return int(self.leaf_index.numel())

    @property
    def num_classes(self) -> int:
        """Output size of the official model, ``L + 1`` (labels are ``1 … L``)."""
        return self.num_leaves + 1

    def __len__(self) -> int:
        return int(self.y.numel())

    def __getitem__(self, i: int) -> Data:
        """Example ``i`` as a :class:`~torch_geometric.data.Data` (``x``, ``edge_index``, ``y``,
        ``root`` and the official ``root_mask``)."""
        root_mask = torch.zeros(self.num_nodes, dtype=torch.bool)
        root_mask[self.root] = True
        return Data(
            x=self.x[i].clone(),
            edge_index=self.edge_index.clone(),
            y=self.y[i : i + 1].clone(),
            root=torch.tensor([self.root]),
            root_mask=root_mask,
        )

    def to_data_list(self) -> list[Data]:
        """Every example as a :class:`~torch_geometric.data.Data` (slow for large radii)."""
        return [self[i] for i in range(len(self))]

    def to(self, device: str | torch.device) -> NeighborsMatchData:
        """A copy with the tensors on ``device``."""
        return NeighborsMatchData(
            radius=self.radius,
            x=self.x.to(device),
            y=self.y.to(device),
            edge_index=self.edge_index.to(device),
            leaf_index=self.leaf_index.to(device),
            root=self.root,
        )

    def batch(self, index: Tensor, edge_index: Tensor | None = None) -> NeighborsMatchBatch:
        """The examples ``index`` as one disjoint-union graph.

        Args:
            index: int64 ``[B]`` example ids (on the data's device).
            edge_index: optional :func:`batched_edge_index` built for at least ``B`` trees
                (reused across batches for speed); built here when omitted.

        Shapes:
            - **input:** index :math:`(B)`
            - **output:** x :math:`(B n, 2)`, edge_index :math:`(2, B E)`, root_index and y
              :math:`(B)`
        """
        b = int(index.numel())
        n = self.num_nodes
        num_edges = self.edge_index.size(1)
        if edge_index is None:
            edge_index = batched_edge_index(self.edge_index, n, b)
        else:
            edge_index = edge_index[:, : b * num_edges]
        return NeighborsMatchBatch(
            x=self.x[index].reshape(b * n, 2),
            edge_index=edge_index,
            root_index=torch.arange(b, device=self.x.device) * n + self.root,
            y=self.y[index],
        )


def _permutations(radius: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` permutations of ``1 … L`` (distinct for r <= 3, independent for r > 3)."""
    leaves = 2**radius
    if radius <= 3:
        every = np.array(list(itertools.permutations(range(1, leaves + 1))), dtype=np.int64)
        pick = rng.choice(len(every), size=count, replace=False)
        return every[pick]
    base = np.tile(np.arange(1, leaves + 1, dtype=np.int64), (count, 1))
    return rng.permuted(base, axis=1)


def tree_neighbors_match(
    radius: int,
    *,
    num_examples: int | None = None,
    seed: int = 0,
    self_loops: bool = True,
) -> NeighborsMatchData:
    """Generate the Tree-NeighborsMatch dataset of Alon & Yahav (2021) at ``radius``.

    Args:
        radius: tree depth ``r`` in 2..8 (``r + 1`` GNN layers are needed to solve it).
        num_examples: number of examples; :obj:`None` gives the official count
            (:func:`default_num_examples`: 96, 8000, 16000, then 32000 for r >= 5). Otherwise
            ``ceil(num_examples / L)`` permutations are drawn, each paired with all ``L`` keys,
            and a random ``num_examples`` of those are kept.
        seed: seed of the local NumPy generator.
        self_loops: add one self-loop per node (official: yes).

    Returns:
        A :class:`NeighborsMatchData`; ``data[i]`` is example ``i`` as a
        :class:`~torch_geometric.data.Data`, :meth:`~NeighborsMatchData.batch` a batch.

    Raises:
        ConfigError: ``radius`` outside 2..8, or ``num_examples`` < 1 or above the number of
            distinct examples (``L! * L``, only reachable for r <= 3).

    Shapes:
        - **output:** x :math:`(N, 2^{r+1} - 1, 2)`, y :math:`(N)`
    """
    radius = _check_radius(radius)
    leaves = 2**radius
    if num_examples is None:
        total = default_num_examples(radius)
    else:
        if isinstance(num_examples, bool) or not isinstance(num_examples, int):
            raise ConfigError(f"num_examples must be an int or None, got {num_examples!r}")
        limit = math.factorial(leaves) * leaves if radius <= 3 else None
        if num_examples < 1 or (limit is not None and num_examples > limit):
            bound = f"1..{limit}" if limit is not None else ">= 1"
            raise ConfigError(
                f"num_examples must be {bound} at radius {radius}, got {num_examples}"
            )
        total = num_examples
    rng = np.random.default_rng(seed)
    num_perms = -(-total // leaves)
    perms = _permutations(radius, num_perms, rng)  # [P, L] values 1..L
    # every permutation with every query key 1..L (official order: permutation-major)
    perm_id = np.repeat(np.arange(num_perms), leaves)
    key = np.tile(np.arange(1, leaves + 1, dtype=np.int64), num_perms)
    if perm_id.size > total:
        keep = np.sort(rng.choice(perm_id.size, size=total, replace=False))
        perm_id, key = perm_id[keep], key[keep]

    edge_index, leaf_index = tree_edges(radius, self_loops=self_loops)
    n = 2 ** (radius + 1) - 1
    x = np.zeros((total, n, 2), dtype=np.int64)
    x[:, 0, 0] = key
    leaf = leaf_index.numpy()
    x[:, leaf, 0] = np.arange(1, leaves + 1, dtype=np.int64)
    x[:, leaf, 1] = perms[perm_id]
    y = perms[perm_id, key - 1]
    return NeighborsMatchData(
        radius=radius,
        x=torch.from_numpy(x),
        y=torch.from_numpy(np.ascontiguousarray(y)),
        edge_index=edge_index,
        leaf_index=leaf_index,
    )
