"""Tests of fathom.nn.propagation: DropEdge's propagation matrices and its GCN layer."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from fathom.errors import ConfigError
from fathom.nn.adjacency import gcn_adjacency
from fathom.nn.convs import CachedGCNConv
from fathom.nn.propagation import (
    ADJ_NORMS,
    DropEdgeGCNConv,
    propagation_edges,
    propagation_matrix,
)

# a path 0 - 1 - 2 (both directions) and node 3 isolated
PATH = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])


def _dense(edge_index: Tensor, n: int) -> Tensor:
    """``A[i, j] = 1`` for an edge ``j -> i`` (row i aggregates its in-edges)."""
    a = torch.zeros(n, n, dtype=torch.float64)
    a[edge_index[1], edge_index[0]] = 1.0
    return a


def _reference(kind: str, edge_index: Tensor, n: int) -> Tensor:
    """DropEdge's src/normalization.py formulas on the dense matrix (row sums as degrees)."""
    a, eye = _dense(edge_index, n), torch.eye(n, dtype=torch.float64)

    def inv(d: Tensor, p: float) -> Tensor:
        out = d.pow(p)
        out[d == 0] = 0.0
        return out

    if kind == "sym":  # AugNormAdj
        d = inv((a + eye).sum(1), -0.5)
        return d[:, None] * (a + eye) * d[None, :]
    if kind == "rw":  # AugRWalk
        return inv((a + eye).sum(1), -1.0)[:, None] * (a + eye)
    if kind == "first-order":  # FirstOrderGCN
        d = inv(a.sum(1), -0.5)
        return eye + d[:, None] * a * d[None, :]
    assert kind == "sym+i"  # BingGeNormAdj
    return eye + _reference("sym", edge_index, n)


def test_the_four_matrices_on_a_path_have_their_closed_forms() -> None:
    rw = propagation_matrix(PATH, 4, "rw").to_dense()
    third = 1.0 / 3.0
    assert torch.allclose(
        rw,
        torch.tensor(
            [
                [0.5, 0.5, 0.0, 0.0],
                [third, third, third, 0.0],
                [0.0, 0.5, 0.5, 0.0],
                [0.0, 0.0, 0.0, 1.0],  # an isolated node keeps its own features
            ]
        ),
    )
    first = propagation_matrix(PATH, 4, "first-order").to_dense()
    s = 2**-0.5
    assert torch.allclose(
        first,
        torch.tensor(
            [[1.0, s, 0.0, 0.0], [s, 1.0, s, 0.0], [0.0, s, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
        ),
    )
    sym = propagation_matrix(PATH, 4, "sym").to_dense()
    plus = propagation_matrix(PATH, 4, "sym+i").to_dense()
    assert torch.allclose(plus, sym + torch.eye(4))
    assert sym[0, 0].item() == pytest.approx(0.5) and sym[0, 1].item() == pytest.approx(6**-0.5)


@pytest.mark.parametrize("kind", ["sym", "rw", "first-order", "sym+i"])
def test_matrices_match_dropedge_formulas_on_an_asymmetric_sample(kind: str) -> None:
    # a DropEdge sample drops directed edges independently: the graph is no longer symmetric
    torch.manual_seed(0)
    n = 9
    full = torch.randint(0, n, (2, 40))
    full = full[:, full[0] != full[1]].unique(dim=1)  # no self-loops, no repeated edge
    sample = full[:, torch.rand(full.size(1)) < 0.6]
    got = propagation_matrix(sample, n, kind, dtype=torch.float64).to_dense()
    assert not torch.equal(_dense(sample, n), _dense(sample, n).t())  # asymmetric indeed
    assert torch.allclose(got, _reference(kind, sample, n))
    rows, cols, vals = propagation_edges(sample, n, kind, dtype=torch.float64)
    summed = torch.zeros(n, n, dtype=torch.float64).index_put_((rows, cols), vals, accumulate=True)
    assert torch.allclose(summed, got)


def test_rw_rows_sum_to_one() -> None:
    torch.manual_seed(1)
    edge_index = torch.randint(0, 20, (2, 60))
    rw = propagation_matrix(edge_index, 20, "rw").to_dense()
    assert torch.allclose(rw.sum(1), torch.ones(20))


def test_sym_is_the_gcn_adjacency_itself() -> None:
    edge_index = PATH.clone()
    assert propagation_matrix(edge_index, 4, "sym") is gcn_adjacency(edge_index, 4)


def test_matrices_are_cached_per_edge_index_object() -> None:
    edge_index = PATH.clone()
    first = propagation_matrix(edge_index, 4, "rw")
    assert propagation_matrix(edge_index, 4, "rw") is first
    assert propagation_matrix(edge_index, 4, "first-order") is not first
    assert propagation_matrix(PATH.clone(), 4, "rw") is not first  # another object
    edge_index[0, 0] = 3  # in place: its version changes, the entry is stale
    edited = propagation_matrix(edge_index, 4, "rw")
    assert edited is not first
    assert edited.to_dense()[1, 3] == pytest.approx(1 / 3) and edited.to_dense()[1, 0] == 0


def test_unknown_normalisation_lists_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        propagation_matrix(PATH, 4, "laplacian")
    assert "laplacian" in str(info.value)
    for name in ADJ_NORMS.names():
        assert name in str(info.value)
    with pytest.raises(ConfigError):
        DropEdgeGCNConv(3, 2, adj_norm="laplacian")


def test_default_layer_computes_what_the_cached_gcn_computes() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 5)
    ours, gcn = DropEdgeGCNConv(5, 3), CachedGCNConv(5, 3)
    with torch.no_grad():
        gcn.lin.weight.copy_(ours.lin.weight)
        gcn.bias.copy_(torch.randn(3))
        ours.bias.copy_(gcn.bias)
    assert torch.allclose(ours(x, PATH), gcn(x, PATH), atol=1e-6)
    assert [n for n, _ in ours.named_parameters()] == ["bias", "lin.weight"]


def test_root_weight_adds_exactly_the_self_feature_term() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 5)
    with_loop = DropEdgeGCNConv(5, 3, root_weight=True, adj_norm="rw")
    without = DropEdgeGCNConv(5, 3, adj_norm="rw")
    with torch.no_grad():
        without.lin.weight.copy_(with_loop.lin.weight)
        with_loop.bias.copy_(torch.randn(3))
        without.bias.copy_(with_loop.bias)
    assert with_loop.lin_root is not None
    w_self = with_loop.lin_root.weight  # [out, in]
    assert w_self.shape == (3, 5)
    diff = with_loop(x, PATH) - without(x, PATH)
    assert torch.allclose(diff, x @ w_self.t(), atol=1e-6)
    # the whole layer: P X W + X W_self + b, with P = D^-1 (A + I)
    p = _reference("rw", PATH, 4).float()
    expected = p @ (x @ with_loop.lin.weight.t()) + x @ w_self.t() + with_loop.bias
    assert torch.allclose(with_loop(x, PATH), expected, atol=1e-6)
    # an isolated node (3) sees only itself: its own features through both weights
    assert torch.allclose(
        with_loop(x, PATH)[3],
        x[3] @ (with_loop.lin.weight + w_self).t() + with_loop.bias,
        atol=1e-6,
    )


def test_gradients_reach_both_weights_and_reset_reinitialises() -> None:
    conv = DropEdgeGCNConv(5, 3, root_weight=True, adj_norm="first-order")
    conv(torch.randn(4, 5), PATH).square().sum().backward()
    for name, param in conv.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    before = conv.lin_root.weight.detach().clone() if conv.lin_root is not None else None
    torch.manual_seed(123)
    conv.reset_parameters()
    assert before is not None and conv.lin_root is not None
    assert not torch.equal(before, conv.lin_root.weight)
    assert torch.equal(conv.bias, torch.zeros(3))
    assert "root_weight=True" in repr(conv) and "first-order" in repr(conv)
