r"""Cluster-GCN mini-batches: the graph cut into parts, a batch the subgraph a few parts induce.

`"Cluster-GCN: An Efficient Algorithm for Training Deep and Large Graph Convolutional
Networks" <https://arxiv.org/abs/1905.07953>`_ (Chiang et al., KDD 2019). The nodes are
partitioned once (:func:`metis_partition`, few edges cut, as the paper; or
:func:`random_partition`, the ogbn-proteins recipe of DeeperGCN / RevGNN, Li et al. 2020 /
2021, where it is redrawn every epoch); each epoch shuffles the parts and takes them
``parts_per_batch`` at a time ("stochastic multiple partitions"), and a batch is the subgraph
*induced* by the union :math:`S` of the group's nodes,

.. math::
    G[S] = (S,\ \{(u, v) \in E : u \in S,\ v \in S\}),

edges between two parts of the group included. Plain torch: PyG's ``ClusterData`` /
``ClusterLoader`` need torch-sparse (and METIS through it), which are not installable
everywhere; METIS comes from `pymetis <https://github.com/inducer/pymetis>`_ here, imported
only when :func:`metis_partition` is called.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from fathom.errors import ConfigError, DataError
from fathom.loaders.csr import expand_segments, induced_subgraph, to_csr
from fathom.loaders.shard import resolve_shard, shard

__all__ = ["PartitionLoader", "batch_data", "metis_partition", "random_partition"]


def batch_data(data: Data, n_id: Tensor, edge_index: Tensor, e_id: Tensor) -> Data:
    """The batch ``Data`` of nodes ``n_id`` and edges ``e_id`` of ``data``, PyG's format.

    Node attributes (``x``, ``y``, masks, ...) are sliced by ``n_id``, edge attributes by
    ``e_id`` (PyG's ``is_node_attr`` / ``is_edge_attr`` decide), other attributes copied;
    ``edge_index`` is the batch's (local ids); ``n_id`` (global node ids) and ``e_id``
    (global edge ids) are attached, as PyG's loaders do.

    Shapes:
        - **n_id:** :math:`(n)`; **edge_index:** :math:`(2, m)` ids in :math:`[0, n)`;
          **e_id:** :math:`(m)`
    """
    out = Data()
    for key, value in data:
        if key in ("edge_index", "num_nodes", "n_id", "e_id"):
            continue
        if isinstance(value, Tensor) and value.dim() > 0 and data.is_node_attr(key):
            out[key] = value[n_id]
        elif isinstance(value, Tensor) and value.dim() > 0 and data.is_edge_attr(key):
            out[key] = value[e_id]
        else:
            out[key] = value
    out.edge_index = edge_index
    out.num_nodes = n_id.numel()
    out.n_id = n_id
    out.e_id = e_id
    return out


# --------------------------------------------------------------------------------------------
# Partitions
# --------------------------------------------------------------------------------------------


def random_partition(
    num_nodes: int, num_parts: int, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Nodes split uniformly at random into ``num_parts`` parts of equal size :math:`\pm 1`.

    The ogbn-proteins recipe of DeeperGCN (Li et al. 2020) and RevGNN (`"Training Graph
    Neural Networks with 1000 Layers" <https://arxiv.org/abs/2106.07476>`_, Li et al.,
    ICML 2021): node ``perm[i]`` goes to part ``i mod num_parts`` for a uniform random
    permutation ``perm``.

    Args:
        num_nodes: :math:`N`.
        num_parts: :math:`1 \le` ``num_parts`` :math:`\le N`.
        generator: the random stream (its device is the output's); the global one if
            :obj:`None`.

    Returns:
        The part id of every node, int64 in ``[0, num_parts)``. Shape :math:`(N)`.
    """
    if not 1 <= num_parts <= max(num_nodes, 1):
        raise ConfigError(
            f"num_parts must be between 1 and the number of nodes ({num_nodes}), got {num_parts}"
        )
    device = generator.device if generator is not None else torch.device("cpu")
    perm = torch.randperm(num_nodes, generator=generator, device=device)
    part = torch.empty(num_nodes, dtype=torch.long, device=device)
    part[perm] = torch.arange(num_nodes, device=device) % num_parts
    return part


def metis_partition(
    edge_index: Tensor,
    num_nodes: int,
    num_parts: int,
    *,
    seed: int = 0,
    recursive: bool = False,
) -> Tensor:
    r"""METIS k-way partition (Karypis & Kumar 1998) of the graph, as Cluster-GCN.

    METIS runs on the symmetrised adjacency without self loops or repeated edges
    (:math:`A + A^\top`, binarised, zero diagonal), as PyG's ``ClusterData``; it minimises
    the number of edges cut while keeping the parts balanced. Deterministic for a ``seed``
    (METIS's ``seed`` option).

    Args:
        edge_index: the graph, any direction.
        num_nodes: :math:`N`.
        num_parts: :math:`2 \le` ``num_parts`` :math:`\le N`.
        seed: METIS's random seed.
        recursive: multilevel recursive bisection instead of k-way (PyG's ``ClusterData``
            default: k-way).

    Shapes:
        - **edge_index:** :math:`(2, E)` int64
        - **output:** :math:`(N)` int64 part ids, on ``edge_index.device``.
    """
    if not 2 <= num_parts <= num_nodes:
        raise ConfigError(
            f"num_parts must be between 2 and the number of nodes ({num_nodes}) for METIS, "
            f"got {num_parts}"
        )
    try:
        import pymetis
    except ImportError:
        raise ConfigError(
            "metis_partition needs pymetis, which is not installed: pip install pymetis"
        ) from None

    ei = edge_index.detach().to("cpu", torch.long)
    if ei.dim() != 2 or ei.size(0) != 2:
        raise DataError(f"edge_index: expected a [2, num_edges] tensor, got {tuple(ei.shape)}")
    if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= num_nodes):
        raise DataError(f"edge_index: node ids must lie in [0, {num_nodes})")
    # each undirected edge once (lo < hi), deduplicated, then both directions: the same
    # sorted adjacency as deduplicating A + A^T, with half the entries in the unique's sort
    lo, hi = torch.minimum(ei[0], ei[1]), torch.maximum(ei[0], ei[1])
    keep = lo != hi
    pairs = torch.unique(lo[keep] * num_nodes + hi[keep])
    del lo, hi, keep
    lo, hi = pairs // num_nodes, pairs % num_nodes
    del pairs
    key = torch.sort(torch.cat([lo * num_nodes + hi, hi * num_nodes + lo])).values
    del lo, hi  # key is sorted: grouped by row
    row, col = key // num_nodes, key % num_nodes
    xadj = torch.zeros(num_nodes + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(row, minlength=num_nodes), 0, out=xadj[1:])
    dtype = pymetis.zero_copy_dtype()
    xadj_np, adjncy_np = xadj.numpy().astype(dtype), col.numpy().astype(dtype)
    options = pymetis.Options(seed=int(seed))
    if hasattr(pymetis, "CSRAdjacency"):  # pymetis >= 2025.2; xadj/adjncy deprecated there
        graph = {"adjacency": pymetis.CSRAdjacency(adj_starts=xadj_np, adjacent=adjncy_np)}
    else:  # pragma: no cover - older pymetis
        graph = {"xadj": xadj_np, "adjncy": adjncy_np}
    _, membership = pymetis.part_graph(num_parts, **graph, recursive=recursive, options=options)
    part = torch.as_tensor(np.asarray(membership, dtype=np.int64))
    return part.to(edge_index.device)


# --------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------


class PartitionLoader:
    r"""Cluster-GCN mini-batches: induced subgraphs of ``parts_per_batch`` shuffled parts.

    Each epoch (each ``iter``) shuffles the parts with a seeded ``torch.Generator`` and
    groups them ``parts_per_batch`` at a time (the last group may be smaller); the batch of
    group :math:`\{P_1, \dots, P_q\}` is :math:`G[S]`, :math:`S = P_1 \cup \dots \cup P_q`,
    every edge with both ends in :math:`S` included (Chiang et al. 2019, Sec. 3.2). An epoch
    covers every node exactly once.

    A batch is a PyG ``Data``: node attributes (``x``, ``y``, ``train_mask`` / ``val_mask`` /
    ``test_mask``, ...) sliced, edge attributes sliced, ``edge_index`` relabelled, ``n_id``
    (global node ids, ascending) and ``e_id`` (global edge ids, ascending), so a node task
    trains on ``batch.train_mask`` of the batch as on a whole graph. On ``data``'s device.

    Args:
        data: the graph (``edge_index`` and ``num_nodes`` at least).
        part: the part id of every node (:func:`metis_partition`, :func:`random_partition`,
            any labelling; empty part ids are skipped). Shape :math:`(N)`.
        num_parts: instead of ``part``: a fresh :func:`random_partition` into ``num_parts``
            parts every epoch (the ogbn-proteins recipe of DeeperGCN / RevGNN).
        parts_per_batch: :math:`q`, parts per batch.
        shuffle: shuffle the parts every epoch (else the part order, ``part`` only).
        seed: seed of the loader's generator (part order, random partitions).
        rank, world_size: this process's share of a multi-process run
            (:mod:`fathom.loaders.shard`): every rank draws the same partition and order,
            and keeps every ``world_size``-th group of parts from position ``rank``, padded
            to :math:`\lceil G / W \rceil` groups (:math:`G = \lceil P / q \rceil`).
            ``None``: the process group's (one process without one).

    ``len(loader)`` is the number of batches per epoch, :math:`\lceil P / q \rceil` (one
    process), :math:`\lceil \lceil P / q \rceil / W \rceil` on each of :math:`W` ranks.
    """

    def __init__(
        self,
        data: Data,
        part: Tensor | None = None,
        *,
        num_parts: int | None = None,
        parts_per_batch: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if data.edge_index is None:
            raise ConfigError("PartitionLoader needs data.edge_index")
        self.rank, self.world_size = resolve_shard(rank, world_size)
        if (part is None) == (num_parts is None):
            raise ConfigError("PartitionLoader takes exactly one of part and num_parts")
        if parts_per_batch < 1:
            raise ConfigError(f"parts_per_batch must be at least 1, got {parts_per_batch}")
        self.data = data
        self.num_nodes = N = int(data.num_nodes)
        self.device = data.edge_index.device
        self.parts_per_batch = int(parts_per_batch)
        self.shuffle = bool(shuffle)
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self._csr = to_csr(data.edge_index, N)

        self._fixed: tuple[Tensor, Tensor] | None = None
        if part is not None:
            part = torch.as_tensor(part, device=self.device)
            if part.shape != (N,) or part.is_floating_point():
                raise ConfigError(
                    f"part must be an integer tensor of shape ({N},), got "
                    f"{part.dtype} {tuple(part.shape)}"
                )
            if N and int(part.min()) < 0:
                raise ConfigError("part must hold non-negative part ids")
            self._fixed = self._group_nodes(part)
            self.num_parts = self._fixed[1].numel() - 1
        else:
            assert num_parts is not None
            if not 1 <= num_parts <= max(N, 1):
                raise ConfigError(
                    f"num_parts must be between 1 and the number of nodes ({N}), got {num_parts}"
                )
            self.num_parts = int(num_parts)

    @staticmethod
    def _group_nodes(part: Tensor) -> tuple[Tensor, Tensor]:
        """Nodes sorted by part (ascending within a part) and the pointer of each non-empty
        part into them: ``(nodes [N], partptr [P + 1])``."""
        nodes = torch.argsort(part, stable=True)
        sizes = torch.bincount(part)
        sizes = sizes[sizes > 0]
        partptr = torch.zeros(sizes.numel() + 1, dtype=torch.long, device=part.device)
        torch.cumsum(sizes, 0, out=partptr[1:])
        return nodes, partptr

    def __len__(self) -> int:
        return math.ceil(math.ceil(self.num_parts / self.parts_per_batch) / self.world_size)

    def __iter__(self) -> Iterator[Data]:
        if self._fixed is None:
            part = random_partition(self.num_nodes, self.num_parts, generator=self.generator)
            nodes, partptr = self._group_nodes(part)
        else:
            nodes, partptr = self._fixed
        num_parts = partptr.numel() - 1
        if self.shuffle:
            order = torch.randperm(num_parts, generator=self.generator, device=self.device)
        else:
            order = torch.arange(num_parts, device=self.device)
        groups = order.split(self.parts_per_batch)
        if self.world_size > 1:
            groups = tuple(shard(groups, self.rank, self.world_size))
        for group in groups:
            starts = partptr[group]
            pos, _, _ = expand_segments(starts, partptr[group + 1] - starts)
            n_id = torch.sort(nodes[pos]).values
            edge_index, e_id = induced_subgraph(self._csr, n_id)
            yield batch_data(self.data, n_id, edge_index, e_id)
