"""Tests of fathom.nn.adjacency: the cached normalised adjacency and its sparse product."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import torch

from fathom.nn import adjacency
from fathom.nn.adjacency import (
    gcn_adjacency,
    normalized_adjacency,
    propagate,
    propagate_initial,
    transposed,
)
from pinned_numerics import assert_pinned, run_pinned

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


def _random_graph(num_nodes: int, num_edges: int, seed: int, symmetric: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_nodes, (num_edges,), generator=g)
    dst = torch.randint(0, num_nodes, (num_edges,), generator=g)
    edges = torch.stack([src, dst])
    return torch.cat([edges, edges.flip(0)], 1) if symmetric else edges


def test_propagate_is_bit_identical_to_torch_sparse_mm() -> None:
    """The int32 kernel form must not change a bit, forward (``adj @ x``) or backward
    (``adj.T @ grad``), over sizes, widths, dtypes and directed graphs."""
    for num_nodes, num_edges, width, dtype, symmetric in [
        (50, 200, 1, torch.float32, True),
        (300, 1500, 16, torch.float32, True),
        (300, 1500, 64, torch.float32, False),
        (2000, 20000, 7, torch.float32, False),
        (2000, 5000, 256, torch.float32, True),
        (500, 4000, 33, torch.float64, False),
    ]:
        edges = _random_graph(num_nodes, num_edges, seed=num_nodes + width, symmetric=symmetric)
        adj = normalized_adjacency(edges, num_nodes, dtype=dtype)
        g = torch.Generator().manual_seed(width)
        x = torch.randn(num_nodes, width, generator=g, dtype=dtype, requires_grad=True)
        grad = torch.randn(num_nodes, width, generator=g, dtype=dtype)
        with torch.no_grad():
            assert torch.equal(propagate(adj, x), torch.sparse.mm(adj, x))
        out = propagate(adj, x)
        assert torch.equal(out, torch.sparse.mm(adj, x.detach()))
        (dx,) = torch.autograd.grad(out, x, grad)
        adj_t = adj.t().to_sparse_csr()
        assert torch.equal(dx, torch.sparse.mm(adj_t, grad))


def test_spmm_matches_torch_sparse_mm_and_ignores_what_out_held() -> None:
    """``_spmm`` writes the product into an uninitialised matrix through ``addmm(beta=0)``:
    the bits of ``torch.sparse.mm``, whatever the output memory held before (NaN here: torch's
    ``addmm`` contract ignores ``input`` at ``beta`` 0, and MKL must not read it)."""
    for num_nodes, width, dtype in [
        (300, 16, torch.float32),
        (2000, 7, torch.float32),
        (500, 33, torch.float64),
        (40, 0, torch.float32),
    ]:
        edges = _random_graph(num_nodes, 4 * num_nodes, seed=width, symmetric=False)
        adj = adjacency._kernel_form(normalized_adjacency(edges, num_nodes, dtype=dtype))
        x = torch.randn(num_nodes, width, generator=torch.Generator().manual_seed(3), dtype=dtype)
        ref = torch.sparse.mm(adj, x)
        assert torch.equal(adjacency._spmm(adj, x), ref)
        poisoned = torch.full_like(ref, float("nan"))
        assert torch.equal(torch.addmm(poisoned, adj, x, beta=0.0, out=poisoned), ref)
        # a transposed (non-contiguous) dense operand takes the same path
        xt = x.t().contiguous().t()
        assert torch.equal(adjacency._spmm(adj, xt), torch.sparse.mm(adj, xt))


def test_spmm_writes_a_block_of_rows_in_place() -> None:
    """With ``out`` (a block of rows of a larger matrix, as layer-wise inference passes) the
    product lands there, the same bits, and the rows around it are untouched; a column
    slice (not row-major) is filled through ``torch.sparse.mm`` and a copy."""
    edges = _random_graph(200, 800, seed=5, symmetric=False)
    adj = adjacency._kernel_form(normalized_adjacency(edges, 200))
    x = torch.randn(200, 12, generator=torch.Generator().manual_seed(1))
    ref = torch.sparse.mm(adj, x)
    big = torch.full((260, 12), 7.0)
    returned = adjacency._spmm(adj, x, out=big[30:230])
    assert returned.data_ptr() == big[30:230].data_ptr()
    assert torch.equal(big[30:230], ref)
    assert bool((big[:30] == 7.0).all()) and bool((big[230:] == 7.0).all())
    wide = torch.full((200, 20), 7.0)
    adjacency._spmm(adj, x, out=wide[:, 4:16])
    assert torch.equal(wide[:, 4:16], ref)
    assert bool((wide[:, :4] == 7.0).all()) and bool((wide[:, 16:] == 7.0).all())


def test_spmm_leaves_tracked_inputs_to_torch() -> None:
    """``out=`` is not differentiable: a dense operand that needs a gradient goes through
    ``torch.sparse.mm`` and keeps its graph."""
    adj = adjacency._kernel_form(normalized_adjacency(_random_graph(50, 200, 0, True), 50))
    x = torch.randn(50, 4, requires_grad=True)
    out = adjacency._spmm(adj, x)
    assert out.grad_fn is not None
    with torch.no_grad():
        assert adjacency._spmm(adj, x).grad_fn is None


def test_kernel_form_is_int32_cached_and_shares_values() -> None:
    adjacency.clear_cache()
    adj = normalized_adjacency(_random_graph(100, 400, seed=1, symmetric=True), 100)
    k = adjacency._kernel_form(adj)
    assert k.crow_indices().dtype == torch.int32 and k.col_indices().dtype == torch.int32
    assert k.values().data_ptr() == adj.values().data_ptr()
    assert adjacency._kernel_form(adj) is k
    assert adjacency._kernel_form(k) is k  # already int32: unchanged


def test_backward_reuses_the_cached_transpose() -> None:
    adjacency.clear_cache()
    directed = _random_graph(100, 400, seed=2, symmetric=False)
    adj = normalized_adjacency(directed, 100)
    x = torch.randn(100, 8, requires_grad=True)
    propagate(adj, x).sum().backward()
    adj_t = transposed(adj)
    kernels = dict(adjacency._KERNEL)
    propagate(adj, x).sum().backward()
    assert transposed(adj) is adj_t
    assert adjacency._KERNEL.keys() == kernels.keys()
    assert all(adjacency._KERNEL[k][1] is kernels[k][1] for k in kernels)


def test_kernel_cache_does_not_keep_matrices_alive() -> None:
    adjacency.clear_cache()
    adj = normalized_adjacency(EDGES, 4)
    with torch.no_grad():
        propagate(adj, torch.ones(4, 2))
    assert len(adjacency._KERNEL) == 1
    del adj
    gc.collect()
    assert len(adjacency._KERNEL) == 0


def _unfused(adj: torch.Tensor, x: torch.Tensor, x_0: torch.Tensor, alpha: float) -> torch.Tensor:
    return propagate(adj, x).mul_(1 - alpha).add_(alpha * x_0)


def _check_propagate_initial_against_the_unfused_expression(exact: bool) -> None:
    """Forward and both gradients, over sizes, widths, dtypes, alphas and directed graphs, and
    with ``x`` being ``x_0`` itself (a first layer: both gradients reach one tensor)."""

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        if exact:
            return torch.equal(a, b)
        # rounding apart: MKL's default kernels may fuse the scaling (ulps of the terms'
        # scale, so absolute: a sum near zero has a large relative error either way)
        scale = float(b.detach().abs().max())
        return torch.allclose(a, b, rtol=0.0, atol=8 * torch.finfo(a.dtype).eps * scale)

    for num_nodes, num_edges, width, dtype, symmetric, alpha in [
        (50, 200, 1, torch.float32, True, 0.1),
        (300, 1500, 16, torch.float32, True, 0.5),
        (300, 1500, 64, torch.float32, False, 0.1),
        (2000, 20000, 7, torch.float32, False, 0.2),
        (2708, 10556, 64, torch.float32, True, 0.1),
        (500, 4000, 33, torch.float64, False, 0.15),
    ]:
        edges = _random_graph(num_nodes, num_edges, seed=num_nodes + width, symmetric=symmetric)
        adj = normalized_adjacency(edges, num_nodes, dtype=dtype)
        g = torch.Generator().manual_seed(width)
        x = torch.randn(num_nodes, width, generator=g, dtype=dtype, requires_grad=True)
        x_0 = torch.randn(num_nodes, width, generator=g, dtype=dtype, requires_grad=True)
        grad = torch.randn(num_nodes, width, generator=g, dtype=dtype)
        with torch.no_grad():
            assert same(propagate_initial(adj, x, x_0, alpha), _unfused(adj, x, x_0, alpha))
        for first_layer in (False, True):
            inputs = (x_0,) if first_layer else (x, x_0)
            a = x_0 if first_layer else x
            ours = torch.autograd.grad(propagate_initial(adj, a, x_0, alpha), inputs, grad)
            ref_out = _unfused(adj, a, x_0, alpha)
            assert same(propagate_initial(adj, a, x_0, alpha), ref_out)
            ref = torch.autograd.grad(ref_out, inputs, grad)
            for mine, theirs in zip(ours, ref, strict=True):
                assert same(mine, theirs), (num_nodes, width, dtype, first_layer)


def test_propagate_initial_is_bit_identical_to_the_unfused_expression() -> None:
    """With MKL's reproducible kernels (``MKL_CBWR=COMPATIBLE``, read when MKL loads: a pinned
    child process), the fused product is the unfused expression bit for bit on any CPU."""
    run_pinned(Path(__file__).resolve(), "--bit-identical", timeout=300)


def test_propagate_initial_matches_the_unfused_expression_to_rounding() -> None:
    """With MKL's default kernels (this process): equal on some CPUs; on others (a Sapphire
    Rapids Xeon) MKL rounds the scaled sum differently, by about one float32 ulp."""
    _check_propagate_initial_against_the_unfused_expression(exact=False)


def test_propagate_initial_with_a_constant_x_0() -> None:
    edges = _random_graph(100, 400, seed=1, symmetric=True)
    adj = normalized_adjacency(edges, 100)
    x = torch.randn(100, 8, requires_grad=True)
    x_0 = torch.randn(100, 8)  # no gradient wanted
    (dx,) = torch.autograd.grad(propagate_initial(adj, x, x_0, 0.1).sum(), x)
    (ref,) = torch.autograd.grad(_unfused(adj, x, x_0, 0.1).sum(), x)
    assert torch.equal(dx, ref)


if __name__ == "__main__" and "--bit-identical" in sys.argv:  # the child process above
    assert_pinned()
    _check_propagate_initial_against_the_unfused_expression(exact=True)
