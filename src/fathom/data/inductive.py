r"""Inductive views of a node-classification graph: what training, selection and test may see.

In the inductive protocol of GraphSAGE (`"Inductive Representation Learning on Large Graphs"
<https://arxiv.org/abs/1706.02216>`_, Hamilton et al., NeurIPS 2017) the nodes a model is
evaluated on are unseen during training: not only their labels but their features and every
edge touching them. From one graph with disjoint ``train_mask`` / ``val_mask`` / ``test_mask``
:func:`inductive_views` builds three graphs

.. math::
    G_{train} = G[V_{train}], \qquad G_{val} = G[V_{train} \cup V_{val}], \qquad
    G_{test} = G,

where :math:`G[S]` is the subgraph induced by the node set :math:`S` (the nodes in :math:`S`
and the edges with *both* endpoints in :math:`S`). Nodes in no mask (e.g. Cora's unlabelled
nodes) are therefore only in :math:`G_{test}`. With a disjoint union of graphs whose masks
select whole graphs (``csbm-graphs``, PPI) :math:`G_{train}` is exactly the training graphs.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import subgraph

from fathom.errors import DataError

__all__ = ["InductiveViews", "induced_view", "inductive_views"]

_MASKS = ("train_mask", "val_mask", "test_mask")
_EDGE_ATTRS = ("edge_attr", "edge_weight")


@dataclass(frozen=True)
class InductiveViews:
    """The three graphs of inductive node classification (see the module docstring).

    Args:
        train (Data): the subgraph induced by the training nodes. ``x``, ``y`` and
            ``edge_index`` hold only training nodes (relabelled ``0..n_train-1`` in original
            order) and the edges among them; ``train_mask`` is all true, ``val_mask`` and
            ``test_mask`` all false; ``node_index`` maps each node to its original index.
        val (Data): the subgraph induced by the training and validation nodes, laid out the
            same way; ``train_mask`` / ``val_mask`` mark its training / validation nodes and
            ``test_mask`` is all false.
        full (Data): the input graph itself (test nodes are scored here).
    """

    train: Data
    val: Data
    full: Data


def induced_view(data: Data, keep: Tensor) -> Data:
    r"""The subgraph of ``data`` induced by the nodes in ``keep``, relabelled.

    Keeps node ``i`` iff ``keep[i]``; an edge survives iff both endpoints are kept (PyG's
    :func:`~torch_geometric.utils.subgraph` with ``relabel_nodes=True``), so nothing of a
    dropped node (features, label, mask entries, edges) is in the result. Kept nodes are
    numbered ``0..n-1`` in their original order; ``node_index`` holds their original indices.
    ``edge_attr`` / ``edge_weight``, if present, are restricted with the edges.

    Args:
        data (Data): graph with ``x``, ``edge_index``, ``y`` and the three split masks.
        keep (Tensor): boolean node mask.

    Shapes:
        - **input:** keep :math:`(N)`
        - **output:** a ``Data`` with :math:`n = \sum_i keep_i` nodes: ``x`` :math:`(n, F)`,
          ``y``, masks and ``node_index`` :math:`(n)`, ``edge_index`` :math:`(2, E')`
    """
    num_nodes = data.num_nodes
    edge_index, _, edge_mask = subgraph(
        keep, data.edge_index, relabel_nodes=True, num_nodes=num_nodes, return_edge_mask=True
    )
    view = Data(
        x=data.x[keep],
        edge_index=edge_index,
        y=data.y[keep],
        node_index=keep.nonzero().flatten(),
        **{name: data[name][keep] for name in _MASKS},
    )
    for name in _EDGE_ATTRS:
        if name in data and data[name] is not None:
            view[name] = data[name][edge_mask]
    return view


def inductive_views(data: Data) -> InductiveViews:
    """Training, validation and test graphs of ``data`` (see :class:`InductiveViews`).

    Raises:
        DataError: a split mask is missing, not a boolean vector over the nodes, the training
            mask is empty, or two masks share a node (a node in both train and val would leak
            the validation graph into training).
    """
    masks = [_mask(data, name) for name in _MASKS]
    train, val, _ = masks
    if not bool(train.any()):
        raise DataError("train_mask selects no node; inductive training needs training nodes")
    for a, b in combinations(range(3), 2):
        both = masks[a] & masks[b]
        if bool(both.any()):
            raise DataError(
                f"{_MASKS[a]} and {_MASKS[b]} share {int(both.sum())} node(s) (first: "
                f"{int(both.nonzero()[0])}); inductive splits must be disjoint"
            )
    return InductiveViews(
        train=induced_view(data, train), val=induced_view(data, train | val), full=data
    )


def _mask(data: Data, name: str) -> Tensor:
    mask = getattr(data, name, None)
    if mask is None:
        raise DataError(f"{name} is missing; inductive node classification needs all three masks")
    if mask.dtype != torch.bool or mask.shape != (data.num_nodes,):
        raise DataError(
            f"{name} must be a bool tensor of shape ({data.num_nodes},), got "
            f"{mask.dtype} {tuple(mask.shape)}"
        )
    return mask
