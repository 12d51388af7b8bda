"""DeepGCN's point convs: exact values on a hand-built cloud, the fast EdgeConv against the
direct formulation and PyG's EdgeConv, statistics over edges, both aggregation paths."""

from __future__ import annotations

import copy

import pytest
import torch
import torch_geometric.nn as pyg_nn
from torch import nn
from torch_geometric.utils import scatter

from fathom.errors import ConfigError
from fathom.nn.knn import dilated_knn_graph
from fathom.nn.point_convs import (
    POINT_CONVS,
    EdgeConv,
    GINConv,
    GraphSAGE,
    MRConv,
    build_point_conv,
    neighbours_per_point,
)

# three points on a line at 0, 1, 3; k = 2 with the point itself first:
# 0 -> [0, 1], 1 -> [1, 0], 2 -> [2, 1]
LINE = torch.tensor([[0.0], [1.0], [3.0]])


def _line_graph() -> torch.Tensor:
    edge_index = dilated_knn_graph(LINE, 2)
    assert edge_index.tolist() == [[0, 1, 1, 0, 2, 1], [0, 0, 1, 1, 2, 2]]
    return edge_index


def _set(lin: nn.Linear, weight: list[list[float]], bias: list[float]) -> None:
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(weight))
        lin.bias.copy_(torch.tensor(bias))


def _cloud(seed: int = 0, n: int = 40, c: int = 5, k: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g)
    batch = torch.arange(2).repeat_interleave(n // 2)
    return x, dilated_knn_graph(x, k, batch)


def _direct_edge_conv(conv: EdgeConv, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """max_j norm(act(W [x_i, x_j - x_i] + b)), one (2C -> out) product per edge."""
    x_i, x_j = x[edge_index[1]], x[edge_index[0]]
    h = conv.norm(conv.act(conv.lin(torch.cat([x_i, x_j - x_i], dim=1))))
    return scatter(h, edge_index[1], dim=0, dim_size=x.size(0), reduce="max")


def test_neighbours_per_point_recognises_the_knn_layout_only() -> None:
    _, edge_index = _cloud()
    assert neighbours_per_point(edge_index, 40) == 6
    perm = torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(0))
    assert neighbours_per_point(edge_index[:, perm], 40) is None
    assert neighbours_per_point(edge_index[:, :-1], 40) is None  # 239 edges: not k per point
    assert neighbours_per_point(torch.tensor([[0, 1], [1, 0]]), 2) is None  # targets out of order


def test_edge_conv_exact_values() -> None:
    conv = EdgeConv(1, 1, norm=None, act=None)
    _set(conv.lin, [[1.0, 2.0]], [0.5])  # h = x_i + 2 (x_j - x_i) + 0.5 = 2 x_j - x_i + 0.5
    out = conv(LINE, _line_graph())
    # 0: max(0, 2) + .5; 1: max(1, -1) + .5; 2: max(3, -1) + .5
    assert out.view(-1).tolist() == [2.5, 1.5, 3.5]


def test_mr_conv_exact_values() -> None:
    conv = MRConv(1, 1, norm=None, act=None)
    _set(conv.nn.lin, [[1.0, 10.0]], [0.0])  # x_i + 10 max_j (x_j - x_i)
    out = conv(LINE, _line_graph())
    # 0: 0 + 10 * max(0, 1); 1: 1 + 10 * max(0, -1); 2: 3 + 10 * max(0, -2)
    assert out.view(-1).tolist() == [10.0, 1.0, 3.0]


def test_mr_conv_equals_max_of_differences() -> None:
    x, edge_index = _cloud(1)
    conv = MRConv(5, 7, norm=None, act="relu")
    diff = scatter(x[edge_index[0]] - x[edge_index[1]], edge_index[1], 0, reduce="max")
    expected = torch.relu(conv.nn.lin(torch.cat([x, diff], dim=1)))
    assert torch.equal(conv(x, edge_index), expected)


def test_graph_sage_exact_values() -> None:
    conv = GraphSAGE(1, 1, norm=None, act=None)
    _set(conv.nn1.lin, [[2.0]], [0.0])  # m_i = max_j 2 x_j
    _set(conv.nn2.lin, [[1.0, 1.0]], [0.0])  # x_i + m_i
    out = conv(LINE, _line_graph())
    assert out.view(-1).tolist() == [0.0 + 2.0, 1.0 + 2.0, 3.0 + 6.0]


def test_gin_conv_exact_values_with_self_loops_in_the_sum() -> None:
    conv = GINConv(1, 1, norm=None, act=None)
    _set(conv.nn.lin, [[1.0]], [0.0])
    edge_index = _line_graph()
    # (1 + 0) x_i + sum_j x_j, the point itself among its neighbours
    assert conv(LINE, edge_index).view(-1).tolist() == [0 + 1, 1 + 1, 3 + 4]
    with torch.no_grad():
        conv.eps.fill_(0.5)
    assert conv(LINE, edge_index).view(-1).tolist() == [0 + 1, 1.5 + 1, 4.5 + 4]


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_fast_edge_conv_equals_the_direct_formulation(norm: str) -> None:
    x, edge_index = _cloud(2)
    x.requires_grad_(True)
    fast = EdgeConv(5, 8, norm=norm, act="relu")
    direct = copy.deepcopy(fast)
    out_fast, out_direct = fast(x, edge_index), _direct_edge_conv(direct, x, edge_index)
    torch.testing.assert_close(out_fast, out_direct, rtol=1e-5, atol=1e-6)
    weights = torch.randn(out_fast.shape, generator=torch.Generator().manual_seed(3))
    grads_fast = torch.autograd.grad((out_fast * weights).sum(), [x, *fast.parameters()])
    grads_direct = torch.autograd.grad((out_direct * weights).sum(), [x, *direct.parameters()])
    for a, b in zip(grads_fast, grads_direct, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    if norm == "batch":  # the same running statistics: both normalise over the edges
        torch.testing.assert_close(fast.norm.running_mean, direct.norm.running_mean)
        torch.testing.assert_close(fast.norm.running_var, direct.norm.running_var)


def test_fast_edge_conv_equals_pyg_edge_conv() -> None:
    x, edge_index = _cloud(4)
    conv = EdgeConv(5, 8, norm="none", act="relu")
    pyg = pyg_nn.EdgeConv(nn.Sequential(nn.Linear(10, 8), nn.ReLU()), aggr="max")
    pyg.nn[0].load_state_dict(conv.lin.state_dict())  # after PyG's own reset_parameters
    torch.testing.assert_close(conv(x, edge_index), pyg(x, edge_index), rtol=1e-5, atol=1e-6)


def test_edge_conv_batch_norm_statistics_are_over_edges() -> None:
    x, edge_index = _cloud(5)
    conv = EdgeConv(5, 4, norm="batch", act="relu")
    with torch.no_grad():
        x_i, x_j = x[edge_index[1]], x[edge_index[0]]
        edges = torch.relu(conv.lin(torch.cat([x_i, x_j - x_i], dim=1)))  # [240, 4]
        conv(x, edge_index)
    # running mean after one step with momentum 0.1, from 0
    torch.testing.assert_close(conv.norm.running_mean, 0.1 * edges.mean(0))


@pytest.mark.parametrize("name", ["edge", "mr", "sage", "gin"])
def test_scatter_path_equals_reshape_path(name: str) -> None:
    x, edge_index = _cloud(6)
    conv = build_point_conv(name, 5, 7, norm="batch", act="relu")
    perm = torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(1))
    contiguous = conv(x, edge_index)
    shuffled = conv(x, edge_index[:, perm])  # not the k-NN layout: aggregated by scatter
    assert neighbours_per_point(edge_index[:, perm], x.size(0)) is None
    torch.testing.assert_close(contiguous, shuffled, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["edge", "mr", "sage", "gin"])
def test_shapes_gradients_and_reference_init(name: str) -> None:
    x, edge_index = _cloud(7)
    x.requires_grad_(True)
    conv = build_point_conv(name, 5, 3, norm="batch", act="relu")
    out = conv(x, edge_index)
    assert out.shape == (40, 3)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for module in conv.modules():  # BasicConv.reset_parameters: zero biases
        if isinstance(module, nn.Linear):
            assert torch.equal(module.bias, torch.zeros_like(module.bias))


def test_activation_comes_before_the_norm_as_in_the_reference() -> None:
    x, edge_index = _cloud(8)
    conv = GINConv(5, 6, norm="batch", act="relu")
    out = conv(x, edge_index)  # BatchNorm of relu outputs: every column has mean 0, some < 0
    torch.testing.assert_close(out.mean(0), torch.zeros(6), atol=1e-5, rtol=0)
    assert (out < 0).any()


@pytest.mark.parametrize("name", ["edge", "mr", "sage", "gin"])
def test_norm_act_order_normalises_before_the_activation(name: str) -> None:
    x, edge_index = _cloud(9)
    torch.manual_seed(0)
    reference = build_point_conv(name, 5, 6, norm="batch", act="relu")
    torch.manual_seed(0)
    swapped = build_point_conv(name, 5, 6, norm="batch", act="relu", order="norm-act")
    assert swapped.state_dict().keys() == reference.state_dict().keys()
    same = swapped.state_dict()
    for key, value in reference.state_dict().items():
        assert torch.equal(value, same[key]), key  # same parameters: only the order differs
    out = swapped(x, edge_index)
    assert (out >= 0).all()  # ReLU last
    assert not torch.allclose(out, reference(x, edge_index))
    if name == "edge":  # relu(BN(W [x_i, x_j - x_i] + b)) over edges, then the max
        x_i, x_j = x[edge_index[1]], x[edge_index[0]]
        fresh = copy.deepcopy(reference)  # BN statistics not yet moved
        h = torch.relu(fresh.norm(fresh.lin(torch.cat([x_i, x_j - x_i], dim=1))))
        direct = scatter(h, edge_index[1], dim=0, dim_size=x.size(0), reduce="max")
        torch.testing.assert_close(out, direct, rtol=1e-5, atol=1e-5)


def test_unknown_order_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="act-norm, norm-act"):
        build_point_conv("edge", 3, 4, norm="batch", act="relu", order="relu-bn")


def test_registry_and_unknown_name() -> None:
    assert POINT_CONVS.names() == ["edge", "gin", "mr", "sage"]
    with pytest.raises(ConfigError, match="edge, gin, mr, sage"):
        build_point_conv("gcn", 3, 4, norm=None, act="relu")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_neighbour_max_has_torchs_amax_gradient_bit_for_bit(dtype: torch.dtype) -> None:
    from fathom.nn.point_convs import _NeighbourMax

    g = torch.Generator().manual_seed(3)
    # after a ReLU most maxima of a channel tie at 0; some rows tie at a positive value too
    values = torch.randn(50, 6, 8, generator=g, dtype=dtype).relu()
    values[:10, 1] = values[:10, 0]
    values[:10, 0] = values[:10].amax(1)
    values[:10, 1] = values[:10, 0]  # two equal maxima per channel in the first 10 rows
    grad = torch.randn(50, 8, generator=g, dtype=dtype)
    ours, theirs = values.clone().requires_grad_(), values.clone().requires_grad_()
    out = _NeighbourMax.apply(ours)
    assert torch.equal(out, theirs.amax(1))
    out.backward(grad)
    theirs.amax(1).backward(grad)
    assert torch.equal(ours.grad, theirs.grad)
    assert ours.grad.view(-1).abs().ne(0).sum() > 0 and (ours.grad[:10, :2] != 0).any()


@pytest.mark.parametrize("name", ["edge", "mr", "sage", "gin"])
def test_convs_gradients_are_those_of_plain_indexing_and_amax(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gathers (index_select) and the neighbour max (_NeighbourMax) change no bit of the
    forward or of any gradient against ``x[index]`` and ``amax``."""
    import fathom.nn.point_convs as point_convs

    x, edge_index = _cloud(8)
    conv = build_point_conv(name, 5, 3, norm="batch", act="relu")
    plain = copy.deepcopy(conv)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = conv(x1, edge_index)
    out.square().sum().backward()
    monkeypatch.setattr(point_convs, "gather_rows", lambda t, index: t[index])
    monkeypatch.setattr(point_convs._NeighbourMax, "apply", lambda values: values.amax(1))
    ref = plain(x2, edge_index)
    ref.square().sum().backward()
    assert torch.equal(out, ref)
    assert torch.equal(x1.grad, x2.grad)
    for a, b in zip(conv.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)
