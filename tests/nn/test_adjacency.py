"""Tests of fathom.nn.adjacency: the cached normalised adjacency and its sparse product."""

from __future__ import annotations

import gc

import torch

from fathom.nn import adjacency
from fathom.nn.adjacency import gcn_adjacency, normalized_adjacency, propagate, transposed

# a path 0-1-2 plus an isolated node 3, both directions
EDGES = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])


def test_normalized_adjacency_matches_the_formula() -> None:
    adj = normalized_adjacency(EDGES, 4).to_dense()
    a = torch.zeros(4, 4)
    a[EDGES[1], EDGES[0]] = 1.0
    a_hat = a + torch.eye(4)
    d = a_hat.sum(1).rsqrt()
    assert torch.allclose(adj, d[:, None] * a_hat * d[None, :])


def test_cache_returns_the_same_matrix_for_the_same_tensor_only() -> None:
    adjacency.clear_cache()
    a = gcn_adjacency(EDGES, 4)
    assert gcn_adjacency(EDGES, 4) is a
    copy = EDGES.clone()
    assert gcn_adjacency(copy, 4) is not a
    assert torch.equal(gcn_adjacency(copy, 4).to_dense(), a.to_dense())


def test_in_place_edit_invalidates_the_entry() -> None:
    edges = EDGES.clone()
    a = gcn_adjacency(edges, 4)
    edges[0, 0] = 3  # edge 3 -> 1 instead of 0 -> 1
    b = gcn_adjacency(edges, 4)
    assert b is not a and not torch.equal(a.to_dense(), b.to_dense())


def test_entry_dropped_when_the_graph_dies() -> None:
    adjacency.clear_cache()
    edges = EDGES.clone()
    gcn_adjacency(edges, 4)
    assert len(adjacency._CACHE) == 1
    del edges
    gc.collect()
    assert len(adjacency._CACHE) == 0


def test_transposed_is_the_matrix_itself_when_symmetric() -> None:
    adj = gcn_adjacency(EDGES, 4)
    assert transposed(adj) is adj


def test_transposed_of_a_directed_graph() -> None:
    directed = torch.tensor([[0, 0, 1], [1, 2, 2]])
    adj = normalized_adjacency(directed, 3)
    assert torch.equal(transposed(adj).to_dense(), adj.to_dense().t())


def test_propagate_forward_and_backward_equal_dense_products() -> None:
    torch.manual_seed(0)
    directed = torch.tensor([[0, 0, 1, 3], [1, 2, 2, 0]])
    adj = normalized_adjacency(directed, 4)
    dense = adj.to_dense()
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(4, 3)
    (propagate(adj, x) * w).sum().backward()
    grad = x.grad.clone()
    x.grad = None
    (dense @ x * w).sum().backward()
    assert torch.allclose(propagate(adj, x), dense @ x)
    assert torch.allclose(grad, x.grad)


def test_propagate_without_grad_needs_no_transpose() -> None:
    adj = normalized_adjacency(EDGES, 4)
    with torch.no_grad():
        out = propagate(adj, torch.ones(4, 2, requires_grad=True))
    assert not out.requires_grad
    assert id(adj) not in adjacency._TRANSPOSED


def test_transpose_cache_does_not_keep_matrices_alive() -> None:
    adjacency.clear_cache()
    adj = normalized_adjacency(EDGES, 4)  # symmetric: its transpose is itself
    transposed(adj)
    assert len(adjacency._TRANSPOSED) == 1
    del adj
    gc.collect()
    assert len(adjacency._TRANSPOSED) == 0
