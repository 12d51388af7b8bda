"""Normalised adjacency matrices as sparse CSR, built once per graph and shared by all layers.

Deep models apply the same propagation matrix at every layer. PyG's gather/scatter message
passing re-normalises and re-materialises per-edge messages at each layer; a sparse-dense
product on a cached CSR matrix is several times faster on CPU and keeps no per-edge tensors
for the backward pass. :func:`gcn_adjacency` caches its result per ``edge_index`` *object*
(and its in-place version), so a 64-layer model pays the normalisation once, while a new
``edge_index`` (another graph, a DropEdge sample) gets its own matrix. The cache holds a
few entries and drops an entry when its ``edge_index`` is garbage-collected.
"""

from __future__ import annotations

import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.autograd.profiler as autograd_profiler
from torch import Tensor
from torch_geometric.nn.conv.gcn_conv import gcn_norm

__all__ = [
    "cached_per_graph",
    "clear_cache",
    "gcn_adjacency",
    "gcn_edge_weights",
    "normalized_adjacency",
    "propagate",
    "propagate_initial",
    "transposed",
]

_MAX_ENTRIES = 8
_CACHE: OrderedDict[tuple[Any, ...], tuple[weakref.ref[Tensor], Any]] = OrderedDict()


def normalized_adjacency(
    edge_index: Tensor,
    num_nodes: int,
    *,
    dtype: torch.dtype = torch.float32,
    add_self_loops: bool = True,
    improved: bool = False,
    flow: str = "source_to_target",
) -> Tensor:
    """:math:`\\hat D^{-1/2} (A + I) \\hat D^{-1/2}` (Kipf & Welling, ICLR 2017) as a
    ``[num_nodes, num_nodes]`` sparse CSR matrix whose row ``i`` holds node ``i``'s incoming
    edges (PyG's ``adj_t`` convention), so ``adj @ x`` aggregates messages source -> target.

    ``add_self_loops``, ``improved`` (self-loops of weight 2, :math:`A + 2I`) and ``flow``
    as in PyG's :class:`~torch_geometric.nn.GCNConv`; with ``flow="target_to_source"`` row
    ``i`` holds node ``i``'s outgoing edges (messages travel target -> source) and degrees
    are counted over sources. Uncached; see :func:`gcn_adjacency`.

    Shapes:
        edge_index: ``[2, num_edges]`` (source, target) -> ``[num_nodes, num_nodes]``.
    """
    if flow not in ("source_to_target", "target_to_source"):
        raise ValueError(f"flow must be 'source_to_target' or 'target_to_source', got {flow!r}")
    ei, w = gcn_norm(
        edge_index,
        None,
        num_nodes,
        improved=improved,
        add_self_loops=add_self_loops,
        flow=flow,
        dtype=dtype,
    )
    # rows are the aggregating nodes: targets (edge_index[1]) for source_to_target
    rows_cols = ei.flip(0) if flow == "source_to_target" else ei
    adj = torch.sparse_coo_tensor(
        rows_cols, w, (num_nodes, num_nodes), check_invariants=False
    ).coalesce()
    with warnings.catch_warnings():
        # torch flags CSR support as beta; the conversion and spmm used here are stable
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return adj.to_sparse_csr()


def gcn_adjacency(
    edge_index: Tensor,
    num_nodes: int,
    *,
    dtype: torch.dtype = torch.float32,
    add_self_loops: bool = True,
    improved: bool = False,
    flow: str = "source_to_target",
    device: torch.device | None = None,
) -> Tensor:
    """:func:`normalized_adjacency`, cached per ``edge_index`` object (see module docstring).

    Editing ``edge_index`` in place bumps its version and invalidates the entry.
    """
    device = device if device is not None else edge_index.device
    key = (num_nodes, dtype, add_self_loops, improved, flow, str(device))
    return cached_per_graph(
        edge_index,
        key,
        lambda: normalized_adjacency(
            edge_index,
            num_nodes,
            dtype=dtype,
            add_self_loops=add_self_loops,
            improved=improved,
            flow=flow,
        ).to(device),
    )


def gcn_edge_weights(
    edge_index: Tensor,
    num_nodes: int,
    *,
    dtype: torch.dtype = torch.float32,
    add_self_loops: bool = True,
    improved: bool = False,
    flow: str = "source_to_target",
) -> tuple[Tensor, Tensor]:
    """PyG's ``gcn_norm(edge_index, None, num_nodes, improved, add_self_loops, flow, dtype)``
    (the edges with their self-loops and each edge's symmetric-normalisation weight, as
    :class:`~torch_geometric.nn.GCNConv` propagates them), cached per ``edge_index`` object
    as :func:`gcn_adjacency` is: the same tensors, computed once per graph instead of at
    every layer call.

    Shapes:
        edge_index: ``[2, num_edges]`` -> ``([2, num_edges'], [num_edges'])``.
    """
    key = ("gcn_norm", num_nodes, dtype, add_self_loops, improved, flow)
    return cached_per_graph(
        edge_index,
        key,
        lambda: gcn_norm(edge_index, None, num_nodes, improved, add_self_loops, flow, dtype),
    )


def cached_per_graph(edge_index: Tensor, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """``build()``, cached under ``key`` per ``edge_index`` object and in-place version (the
    cache of this module's docstring: a few entries, each dropped when its ``edge_index``
    dies). ``key`` tells apart what is built from the same graph."""
    key = (id(edge_index), edge_index._version, *key)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is edge_index:
        _CACHE.move_to_end(key)
        return hit[1]
    value = build()
    # the weak reference tells a live entry from one whose tensor died and whose id was reused
    ref = weakref.ref(edge_index, lambda _ref, key=key, cache=_CACHE: cache.pop(key, None))
    _CACHE[key] = (ref, value)
    while len(_CACHE) > _MAX_ENTRIES:
        _CACHE.popitem(last=False)
    return value


# id(adj) -> (weak reference to adj, its transpose; None when adj is symmetric: holding adj
# itself here would keep it alive forever)
_TRANSPOSED: dict[int, tuple[weakref.ref[Tensor], Tensor | None]] = {}


def transposed(adj: Tensor) -> Tensor:
    """``adj.T`` as sparse CSR, computed once per matrix (``adj`` itself when symmetric, as
    the normalised adjacency of an undirected graph is)."""
    hit = _TRANSPOSED.get(id(adj))
    if hit is not None and hit[0]() is adj:
        return adj if hit[1] is None else hit[1]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        adj_t = adj.t().to_sparse_csr()
    symmetric = (
        torch.equal(adj_t.crow_indices(), adj.crow_indices())
        and torch.equal(adj_t.col_indices(), adj.col_indices())
        and torch.equal(adj_t.values(), adj.values())
    )
    key = id(adj)
    # the cache is bound as a default: the callback may run at interpreter exit
    ref = weakref.ref(adj, lambda _ref, key=key, cache=_TRANSPOSED: cache.pop(key, None))
    _TRANSPOSED[key] = (ref, None if symmetric else adj_t)
    return adj if symmetric else adj_t


# id(adj) -> (weak reference to adj, adj with int32 indices sharing its values; None when
# adj is not eligible, see :func:`_kernel_form`)
_KERNEL: dict[int, tuple[weakref.ref[Tensor], Tensor | None]] = {}
_INT32_MAX = 2**31 - 1


def _kernel_form(adj: Tensor) -> Tensor:
    """``adj`` with int32 ``crow_indices``/``col_indices`` (same values tensor), built once per
    matrix, for :func:`torch.sparse.mm` on CPU.

    torch's CPU CSR product (float32/float64) calls MKL's sparse BLAS; in torch's LP64 MKL
    builds (the pip wheels) it takes 32-bit indices, and torch converts int64 index arrays
    to int32 at *every* call (``prepare_indices_for_mkl``: an ``(N + 1 + nnz)``-element
    copy, 3.9 ms at N = 200K, nnz = 2.2M; 2-7 % of a propagation at widths 16-64). Handing
    it int32 indices skips that copy; MKL runs the same kernel on the same indices, so the
    product is bit-identical (tests/nn/test_adjacency.py checks with :func:`torch.equal`).
    Any other matrix (CUDA, another dtype, already int32, too large for int32) is returned
    unchanged. The copy shares ``adj``'s values; ``adj`` is constant (indices edited in
    place afterwards would not be seen).
    """
    hit = _KERNEL.get(id(adj))
    if hit is not None and hit[0]() is adj:
        return adj if hit[1] is None else hit[1]
    eligible = (
        adj.layout == torch.sparse_csr
        and adj.device.type == "cpu"
        and adj.dtype in (torch.float32, torch.float64)
        and adj.crow_indices().dtype == torch.int64
        and max(adj.size(0), adj.size(1), adj._nnz()) <= _INT32_MAX
    )
    kernel = None
    if eligible:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            kernel = torch.sparse_csr_tensor(
                adj.crow_indices().to(torch.int32),
                adj.col_indices().to(torch.int32),
                # values() is a view whose base is adj: detached, the copy does not keep adj alive
                adj.values().detach(),
                adj.shape,
                check_invariants=False,
            )
    key = id(adj)
    ref = weakref.ref(adj, lambda _ref, key=key, cache=_KERNEL: cache.pop(key, None))
    _KERNEL[key] = (ref, kernel)
    return adj if kernel is None else kernel


SPMM_LABEL = "fathom::spmm"
"""The profiler label of fathom's sparse-dense products that call MKL through
``torch.addmm`` directly (without ``torch.sparse.mm``'s own op, which would name them):
``benchmarks/epoch_profile.py`` counts the ops under it as SpMM, not GEMM."""


def _labelled() -> AbstractContextManager[Any]:
    """:data:`SPMM_LABEL` as a profiler range while a profiler runs; otherwise nothing (a
    ``record_function`` costs several microseconds even with no profiler)."""
    if autograd_profiler._is_profiler_enabled:
        return torch.profiler.record_function(SPMM_LABEL)
    return nullcontext()


def _spmm(adj: Tensor, x: Tensor, out: Tensor | None = None) -> Tensor:
    """``torch.sparse.mm(adj, x)`` for a sparse CSR ``adj`` and a dense 2-D ``x``, the same
    bits; on CPU without the two passes ``torch.sparse.mm`` adds around the product.

    ``torch.sparse.mm`` fills a zero matrix and calls ``addmm(zeros, adj, x, beta=0)``, which
    copies it into a new result before MKL writes the product there: two passes over an
    output-sized matrix that the product then overwrites (MKL does not read it at ``beta``
    0, nor does torch's ``addmm``, whose contract ignores ``input`` then), each touching a
    fresh allocation. Here ``addmm`` writes into an uninitialised ``out`` that is its own
    ``input``, so neither pass runs: the same MKL call on the same layouts (row-major ``out``).
    Measured alone, 1 thread: 0.19 -> 0.16 ms at 2708 x 64 (Cora's hidden layer), 31.4 ->
    9.0 ms at 19717 x 256 (PubMed's), 182 -> 156 ms at 200K x 64 (nnz 2.2M). Inputs that
    autograd would track (``out=`` is not differentiable), other layouts and other devices
    run ``torch.sparse.mm``.

    ``out``, when given, receives the product (a row-major ``[adj.size(0), x.size(1)]``
    tensor, e.g. a block of rows of a larger result: layer-wise inference writes each chunk
    of rows there instead of into a temporary that is then copied) and is returned.
    """
    if (
        adj.layout != torch.sparse_csr
        or x.device.type != "cpu"
        or x.dim() != 2
        or (torch.is_grad_enabled() and (adj.requires_grad or x.requires_grad))
        or (out is not None and (out.stride(1) != 1 or out.stride(0) != out.size(1)))
    ):
        product = torch.sparse.mm(adj, x)
        return product if out is None else out.copy_(product)
    if out is None:
        out = torch.empty((adj.size(0), x.size(1)), dtype=x.dtype, device=x.device)
    with _labelled():
        return torch.addmm(out, adj, x, beta=0.0, out=out)


class _SparseDenseMM(torch.autograd.Function):
    """``adj @ x`` whose backward multiplies by a cached ``adj.T``: torch's own backward
    rebuilds (and sorts) the transposed CSR matrix at every call, a quarter of a deep GCN's
    training step on CPU."""

    @staticmethod
    def forward(ctx: Any, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
        ctx.adj_t = adj_t
        return _spmm(adj, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, _spmm(ctx.adj_t, grad)


def propagate(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` for a sparse CSR ``adj`` from :func:`gcn_adjacency` (constant: no
    gradient flows to its values).

    Bit-identical to ``torch.sparse.mm(adj, x)`` (forward) and to ``torch.sparse.mm(adj.T,
    grad)`` (backward); on CPU it runs on an int32-indexed copy of the indices, cached per
    matrix (see :func:`_kernel_form`), and the backward on the cached :func:`transposed`.

    Shapes:
        adj: ``[num_nodes, num_nodes]``, x: ``[num_nodes, channels]`` -> same as ``x``.
    """
    if not (torch.is_grad_enabled() and x.requires_grad):
        return _spmm(_kernel_form(adj), x)
    return _SparseDenseMM.apply(_kernel_form(adj), _kernel_form(transposed(adj)), x)


def propagate_initial(adj: Tensor, x: Tensor, x_0: Tensor, alpha: float) -> Tensor:
    """``(1 - alpha) * (adj @ x) + alpha * x_0`` (GCNII's initial residual, APPNP's step) in
    one sparse product, for a sparse CSR ``adj`` from :func:`gcn_adjacency` (constant).

    The scaling and the sum run inside the product (``torch.addmm`` with ``alpha`` and
    ``beta``), where ``propagate(adj, x).mul_(1 - alpha).add_(alpha * x_0)`` takes three more
    passes over the nodes and as many autograd nodes (a 64-layer GCNII's conv chain on a
    Cora-sized graph: 0.80 of the unfused time in training, 0.70 in evaluation; its whole
    epoch 0.93, docs/results/deep_speed_gcnii64.md). Bit-identical to that expression on
    CPU, forward and backward, with MKL's reproducible kernels (``MKL_CBWR=COMPATIBLE``) and
    on CPUs whose default kernels scale and add in the same order (tests/nn/test_adjacency.py
    checks with :func:`torch.equal`); on others (a Sapphire Rapids Xeon) MKL's default
    kernels round the scaled sum differently, by about one float32 ulp:
    the gradients are ``alpha * grad`` for ``x_0`` and ``adj.T @ ((1 - alpha) * grad)`` for
    ``x``, returned in that order, the order in which autograd would have accumulated them.

    Shapes:
        adj: ``[num_nodes, num_nodes]``, x, x_0: ``[num_nodes, channels]`` -> same as ``x``.
    """
    if not (torch.is_grad_enabled() and (x.requires_grad or x_0.requires_grad)):
        with _labelled():
            return torch.addmm(x_0, _kernel_form(adj), x, beta=alpha, alpha=1.0 - alpha)
    return _InitialResidualMM.apply(x_0, x, _kernel_form(adj), _kernel_form(transposed(adj)), alpha)


def clear_cache() -> None:
    """Drop every cached matrix (tests; freeing memory after a large graph)."""
    _CACHE.clear()
    _TRANSPOSED.clear()
    _KERNEL.clear()


class _InitialResidualMM(torch.autograd.Function):
    """:func:`propagate_initial`'s product. ``x_0`` comes first so that its gradient is
    accumulated before ``x``'s, as autograd orders the unfused expression's (where ``x``
    is ``x_0`` itself, at a first layer, the sum is then the same bits)."""

    @staticmethod
    def forward(
        ctx: Any, x_0: Tensor, x: Tensor, adj: Tensor, adj_t: Tensor, alpha: float
    ) -> Tensor:
        ctx.adj_t, ctx.alpha = adj_t, alpha
        with _labelled():
            return torch.addmm(x_0, adj, x, beta=alpha, alpha=1.0 - alpha)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None, None]:
        grad_x_0 = grad * ctx.alpha if ctx.needs_input_grad[0] else None
        grad_x = None
        if ctx.needs_input_grad[1]:
            grad_x = _spmm(ctx.adj_t, grad * (1.0 - ctx.alpha))
        return grad_x_0, grad_x, None, None, None
