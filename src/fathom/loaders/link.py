"""Mini-batches for link prediction: supervision edges and the subgraph around them.

Two ways, each over the *training* graph of a link split (held-out edges are not in it, so
they can never pass messages, whatever is sampled):

* ``neighbor``: PyG's ``LinkNeighborLoader`` protocol on fathom's plain-torch sampler
  (:func:`~fathom.loaders.neighbor.link_neighbor_loader`): ``batch_size`` supervision edges
  plus random negative pairs, and the sampled neighbourhood of all their endpoints;
* ``cluster`` / ``random-partition``: Cluster-GCN batches (:class:`PartitionLinkLoader`):
  the subgraph induced by a group of parts, supervised on the training edges with both
  ends in it, against as many random pairs of its nodes times the negative ratio.

Every batch carries PyG's link-level fields: ``edge_label_index`` (``[2, P + Q]``, local
ids, positives first) and ``edge_label`` (``1.`` for the ``P`` positives, ``0.`` for the
``Q`` negatives). Negatives are drawn from torch's global generator, as PyG's are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data

from fathom.errors import ConfigError, DataError
from fathom.loaders.build import LOADERS, build_loader, parse_fanouts

__all__ = ["LINK_LOADERS", "PartitionLinkLoader", "build_link_loader"]

LINK_LOADERS = ("full", "neighbor", "cluster", "random-partition")
"""The ``train.loader`` values that can batch a link-prediction task."""


class PartitionLinkLoader:
    """Cluster-GCN batches of a link task: each partition batch, supervised on its edges.

    Wraps a node-level partition loader (:class:`~fathom.loaders.partition.PartitionLoader`,
    batches with ``n_id``); each batch gets the supervision edges with both endpoints in it
    (relabelled to local ids) and ``ceil(neg_ratio * P)`` random pairs of its nodes as
    negatives. A batch without a supervision edge is skipped (it has nothing to learn from).

    Args:
        loader: the partition batches (each with ``n_id``, global node ids).
        edge_label_index: the supervision edges ``[2, E]`` in global ids.
        num_nodes: the number of nodes of the whole graph.
        neg_ratio: negative pairs per positive.
    """

    def __init__(
        self,
        loader: Iterable[Data],
        edge_label_index: Tensor,
        num_nodes: int,
        neg_ratio: float = 1.0,
    ) -> None:
        if edge_label_index.dim() != 2 or edge_label_index.size(0) != 2:
            raise DataError(
                f"edge_label_index: expected shape [2, E], got {tuple(edge_label_index.shape)}"
            )
        if neg_ratio < 0:
            raise ConfigError(f"neg_ratio must be >= 0, got {neg_ratio}")
        self.loader = loader
        self.edge_label_index = edge_label_index
        self.neg_ratio = float(neg_ratio)
        self._map = torch.full(
            (int(num_nodes),), -1, dtype=torch.long, device=edge_label_index.device
        )

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Data]:
        for batch in self.loader:
            n_id = batch.n_id.to(self._map.device)
            self._map[n_id] = torch.arange(n_id.numel(), device=n_id.device)
            local = self._map[self.edge_label_index]
            self._map[n_id] = -1
            pos = local[:, (local >= 0).all(dim=0)]
            if pos.size(1) == 0:
                continue
            num_neg = math.ceil(self.neg_ratio * pos.size(1))
            neg = torch.randint(0, n_id.numel(), (2, num_neg), device=pos.device)
            batch.edge_label_index = torch.cat([pos, neg], dim=1).to(batch.edge_index.device)
            batch.edge_label = torch.cat([torch.ones(pos.size(1)), torch.zeros(num_neg)]).to(
                batch.edge_index.device
            )
            yield batch


def build_link_loader(
    name: str,
    data: Data,
    edge_label_index: Tensor,
    *,
    seed: int,
    neg_ratio: float,
    options: Mapping[str, Any],
) -> Iterable[Data] | None:
    """The link-prediction loader ``name`` over the training graph ``data``, supervised on
    ``edge_label_index`` with ``neg_ratio`` negatives per positive; it reads its options
    (``LOADERS[name].options``) from ``options`` (e.g. the ``train`` section). ``None`` for
    ``full``.

    Raises:
        ConfigError: ``name`` is not one of :data:`LINK_LOADERS`.
    """
    if name not in LINK_LOADERS:
        raise ConfigError(
            f"train.loader must be {', '.join(LINK_LOADERS)} for link prediction, got {name!r}"
        )
    if name == "full":
        return None
    if name == "neighbor":
        from fathom.loaders.neighbor import link_neighbor_loader

        opts = {k: options[k] for k in LOADERS.get(name).options}
        return link_neighbor_loader(
            data,
            parse_fanouts(opts["fanouts"]),
            edge_label_index=edge_label_index,
            neg_sampling_ratio=neg_ratio,
            batch_size=opts["batch_size"],
            shuffle=True,
            seed=seed,
            num_workers=opts["num_workers"],
        )
    parts = build_loader(name, data, seed=seed, options=options)
    assert parts is not None
    return PartitionLinkLoader(parts, edge_label_index, int(data.num_nodes), neg_ratio)
