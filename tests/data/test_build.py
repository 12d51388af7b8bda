"""Tests of fathom.data.build: how a loaded graph is prepared (edge direction)."""

from __future__ import annotations

import torch
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv

from fathom.config import DataConfig
from fathom.data.build import prepare_graph


def _directed_path() -> Data:
    """0 -> 1 -> 2, one-hot features, labels and one node per mask (what validation requires)."""
    masks = torch.eye(3, dtype=torch.bool)
    return Data(
        x=torch.eye(3),
        edge_index=torch.tensor([[0, 1], [1, 2]]),
        y=torch.tensor([0, 1, 0]),
        train_mask=masks[0],
        val_mask=masks[1],
        test_mask=masks[2],
    )


def test_default_symmetrises() -> None:
    data = prepare_graph(_directed_path(), DataConfig())
    assert sorted(map(tuple, data.edge_index.t().tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]


def test_directed_graph_kept_as_given_or_reversed() -> None:
    kept = prepare_graph(_directed_path(), DataConfig(to_undirected=False))
    assert kept.edge_index.tolist() == [[0, 1], [1, 2]]
    rev = prepare_graph(_directed_path(), DataConfig(to_undirected=False, reverse_edges=True))
    assert rev.edge_index.tolist() == [[1, 2], [0, 1]]


def test_reversed_graph_aggregates_over_out_neighbours() -> None:
    """With reverse_edges a node hears the nodes its edges point to (node 0 hears node 1,
    node 2, with no out-edge, hears nothing): the product A·X with A[i, j] = 1 for i -> j."""
    rev = prepare_graph(_directed_path(), DataConfig(to_undirected=False, reverse_edges=True))
    conv = GCNConv(3, 3, bias=False, normalize=False)
    with torch.no_grad():
        conv.lin.weight.copy_(torch.eye(3))
    out = conv(rev.x, rev.edge_index)
    adjacency = torch.tensor([[0.0, 1, 0], [0, 0, 1], [0, 0, 0]])  # A[i, j] = 1 for i -> j
    assert torch.equal(out, adjacency @ rev.x)
