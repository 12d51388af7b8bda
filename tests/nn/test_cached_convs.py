"""CachedGCNConv / CachedGCN2Conv honour every argument of PyG's GCNConv / GCN2Conv.

Each case builds the fathom conv and PyG's with the same arguments and weights and compares
outputs and input gradients on a *directed* graph (so ``flow`` and the degree side matter)
with a self-loop, with and without ``edge_weight``, and for ``cached=True`` a second call on
another graph (GCNConv then reuses the first call's normalisation).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.nn import GCN2Conv, GCNConv

from fathom.nn.adjacency import clear_cache, gcn_edge_weights
from fathom.nn.convs import CachedGCN2Conv, CachedGCNConv, GraphCachedGCNConv
from fathom.nn.layerwise import chunkable

# directed: 0 -> 1, 0 -> 2, 1 -> 2, 2 -> 3, 3 -> 0, 4 -> 2, and a self-loop on 1
DIRECTED = torch.tensor([[0, 0, 1, 2, 3, 4, 1], [1, 2, 2, 3, 0, 2, 1]])
OTHER = torch.tensor([[0, 1, 2, 3], [4, 4, 4, 4]])
WEIGHTS = torch.tensor([0.5, 2.0, 1.0, 0.25, 3.0, 1.5, 0.7])
NUM_NODES = 5


def _gcn_cases() -> list[dict[str, Any]]:
    cases = []
    for normalize, loops, improved, bias, flow, cached in itertools.product(
        (True, False),
        (None, True, False),
        (False, True),
        (True, False),
        ("source_to_target", "target_to_source"),
        (False, True),
    ):
        if loops and not normalize:
            continue  # refused by GCNConv itself (test_gcn_refuses_what_pyg_refuses)
        cases.append(
            {
                "normalize": normalize,
                "add_self_loops": loops,
                "improved": improved,
                "bias": bias,
                "flow": flow,
                "cached": cached,
            }
        )
    return cases


def _pair(cls: type[nn.Module], ref_cls: type[nn.Module], *args: Any, **kwargs: Any) -> tuple:
    torch.manual_seed(0)
    ours = cls(*args, **kwargs)
    ref = ref_cls(*args, **kwargs)
    ref.load_state_dict(ours.state_dict())
    if kwargs.get("bias", True) and hasattr(ours, "bias") and ours.bias is not None:
        with torch.no_grad():  # a non-zero bias, so that bias=False is visible
            ours.bias.uniform_(-1, 1)
            ref.bias.copy_(ours.bias)
    return ours, ref


def _compare(ours: nn.Module, ref: nn.Module, *inputs: Tensor, **kw: Any) -> None:
    """Outputs and gradients w.r.t. every floating input of ``ours(*inputs)`` and ``ref``."""
    a = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    b = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    out, expected = ours(*a, **kw), ref(*b, **kw)
    torch.testing.assert_close(out, expected)
    out.square().sum().backward()
    expected.square().sum().backward()
    for t, u in zip(a, b, strict=True):
        if t.is_floating_point():
            torch.testing.assert_close(t.grad, u.grad)


@pytest.mark.parametrize("kwargs", _gcn_cases(), ids=lambda k: "-".join(map(str, k.values())))
def test_cached_gcn_honours_every_argument(kwargs: dict[str, Any]) -> None:
    clear_cache()
    x = torch.randn(NUM_NODES, 3)
    ours, ref = _pair(CachedGCNConv, GCNConv, 3, 4, **kwargs)
    assert (ours.bias is None) == (not kwargs["bias"])
    _compare(ours, ref, x, DIRECTED)
    # the same conv again, now on another graph: with cached=True both reuse the first
    _compare(ours, ref, x, OTHER)
    fresh, fresh_ref = _pair(CachedGCNConv, GCNConv, 3, 4, **kwargs)
    _compare(fresh, fresh_ref, x, DIRECTED, WEIGHTS)


def _compare_bits(ours: nn.Module, ref: nn.Module, *inputs: Tensor) -> None:
    """:func:`_compare`, to the last bit."""
    a = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    b = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    out, expected = ours(*a), ref(*b)
    assert torch.equal(out, expected)
    grads = torch.autograd.grad(out.square().sum(), [a[0], *ours.parameters()])
    ref_grads = torch.autograd.grad(expected.square().sum(), [b[0], *ref.parameters()])
    for g, h in zip(grads, ref_grads, strict=True):
        assert torch.equal(g, h)


@pytest.mark.parametrize("kwargs", _gcn_cases(), ids=lambda k: "-".join(map(str, k.values())))
def test_graph_cached_gcn_is_gcnconv_bit_for_bit(kwargs: dict[str, Any]) -> None:
    clear_cache()
    x = torch.randn(NUM_NODES, 3)
    ours, ref = _pair(GraphCachedGCNConv, GCNConv, 3, 4, **kwargs)
    for _ in range(2):  # the second call on the same graph reads the cached weights
        _compare_bits(ours, ref, x, DIRECTED)
    _compare_bits(ours, ref, x, OTHER)  # another graph (with cached=True: both reuse the first)
    fresh, fresh_ref = _pair(GraphCachedGCNConv, GCNConv, 3, 4, **kwargs)
    _compare_bits(fresh, fresh_ref, x, DIRECTED, WEIGHTS)


def test_graph_cached_gcn_normalises_each_graph_once() -> None:
    clear_cache()
    edges = DIRECTED.clone()
    first = gcn_edge_weights(edges, NUM_NODES)
    assert gcn_edge_weights(edges, NUM_NODES) is first
    assert gcn_edge_weights(edges.clone(), NUM_NODES) is not first  # another graph object
    assert gcn_edge_weights(edges, NUM_NODES, improved=True) is not first
    edges[1, 0] = 3  # an in-place edit makes a new entry
    again = gcn_edge_weights(edges, NUM_NODES)
    assert again is not first and not torch.equal(again[0], first[0])


def test_cached_gcn_normalize_false_is_the_raw_adjacency() -> None:
    """The reported defect: normalize=False used to propagate with the normalised matrix."""
    conv = CachedGCNConv(2, 2, normalize=False, bias=False)
    with torch.no_grad():
        conv.lin.weight.copy_(torch.eye(2))
    x = torch.arange(NUM_NODES * 2, dtype=torch.float).view(NUM_NODES, 2)
    expected = torch.zeros_like(x).index_add_(0, DIRECTED[1], x[DIRECTED[0]])  # A^T x
    torch.testing.assert_close(conv(x, DIRECTED), expected)


def test_cached_gcn_target_to_source_runs_and_differs() -> None:
    """The reported defect: flow="target_to_source" used to raise."""
    x = torch.randn(NUM_NODES, 3)
    torch.manual_seed(0)
    forward = CachedGCNConv(3, 4)
    backward = CachedGCNConv(3, 4, flow="target_to_source")
    backward.load_state_dict(forward.state_dict())
    assert not torch.allclose(forward(x, DIRECTED), backward(x, DIRECTED))
    # target_to_source on a graph is source_to_target on the reversed graph
    torch.testing.assert_close(backward(x, DIRECTED), forward(x, DIRECTED.flip(0)))


def test_gcn_refuses_what_pyg_refuses() -> None:
    with pytest.raises(ValueError, match="self-loops"):
        CachedGCNConv(3, 4, normalize=False, add_self_loops=True)


def test_cached_true_is_cleared_by_reset_parameters() -> None:
    x = torch.randn(NUM_NODES, 3)
    conv = CachedGCNConv(3, 4, cached=True)
    first = conv(x, DIRECTED)
    torch.testing.assert_close(conv(x, OTHER), first)  # cached: the first graph's matrix
    state = {k: v.clone() for k, v in conv.state_dict().items()}
    conv.reset_parameters()
    conv.load_state_dict(state)
    torch.testing.assert_close(conv(x, DIRECTED), first)
    ref = GCNConv(3, 4)
    ref.load_state_dict(state)
    torch.testing.assert_close(conv(x, OTHER), ref(x, DIRECTED))  # cached again, the first


def _gcn2_cases() -> list[dict[str, Any]]:
    return [
        {
            "normalize": normalize,
            "add_self_loops": loops,
            "flow": flow,
            "cached": cached,
            "shared_weights": shared,
        }
        for normalize, loops, flow, cached, shared in itertools.product(
            (True, False),
            (True, False),
            ("source_to_target", "target_to_source"),
            (False, True),
            (True, False),
        )
    ]


@pytest.mark.parametrize("kwargs", _gcn2_cases(), ids=lambda k: "-".join(map(str, k.values())))
def test_cached_gcn2_honours_every_argument(kwargs: dict[str, Any]) -> None:
    clear_cache()
    x, x0 = torch.randn(NUM_NODES, 4), torch.randn(NUM_NODES, 4)
    ours, ref = _pair(CachedGCN2Conv, GCN2Conv, 4, alpha=0.2, theta=0.5, layer=2, **kwargs)
    _compare(ours, ref, x, x0, DIRECTED)
    _compare(ours, ref, x, x0, OTHER)
    assert ours.normalize == kwargs["normalize"] and ours.flow == kwargs["flow"]  # restored
    fresh, fresh_ref = _pair(CachedGCN2Conv, GCN2Conv, 4, alpha=0.2, theta=0.5, layer=2, **kwargs)
    _compare(fresh, fresh_ref, x, x0, DIRECTED, WEIGHTS)


def test_layerwise_inference_refuses_reversed_flow() -> None:
    assert chunkable(CachedGCNConv(3, 4)) is None
    assert "flow" in (chunkable(CachedGCNConv(3, 4, flow="target_to_source")) or "")
    assert "flow" in (chunkable(CachedGCN2Conv(4, alpha=0.1, flow="target_to_source")) or "")


def _authors_variant(
    x: Tensor, x_0: Tensor, adj: Tensor, weight: Tensor, lamda: float, alpha: float, layer: int
) -> Tensor:
    """chennnM/GCNII model.py's GraphConvolution.forward with variant=True, restated on a
    dense propagation matrix (its weight is ``[2 * channels, channels]``)."""
    import math

    theta = math.log(lamda / layer + 1)
    hi = adj @ x
    support = torch.cat([hi, x_0], 1)
    r = (1 - alpha) * hi + alpha * x_0
    return theta * (support @ weight) + (1 - theta) * r


def _dense_gcn(edge_index: Tensor, weight: Tensor | None = None) -> Tensor:
    """D^-1/2 (A + I) D^-1/2 with A[target, source] (PyG's flow), remaining self-loops."""
    a = torch.zeros(NUM_NODES, NUM_NODES)
    w = torch.ones(edge_index.size(1)) if weight is None else weight
    a.index_put_((edge_index[1], edge_index[0]), w, accumulate=True)
    diag = a.diagonal()
    diag[diag == 0] = 1.0
    d = a.sum(1).pow(-0.5)
    return d[:, None] * a * d[None, :]


@pytest.mark.parametrize("edge_weight", [None, WEIGHTS])
def test_authors_gcn2_star_is_the_authors_variant(edge_weight: Tensor | None) -> None:
    from fathom.nn.convs import AuthorsGCN2StarConv

    torch.manual_seed(0)
    conv = AuthorsGCN2StarConv(4, alpha=0.2, theta=1.5, layer=3)
    with torch.no_grad():
        conv.weight1.normal_()
        conv.weight2.normal_()
    x, x_0 = torch.randn(NUM_NODES, 4), torch.randn(NUM_NODES, 4)
    weight = torch.cat([conv.weight1, conv.weight2], 0).detach()
    expected = _authors_variant(x, x_0, _dense_gcn(DIRECTED, edge_weight), weight, 1.5, 0.2, 3)
    torch.testing.assert_close(conv(x, x_0, DIRECTED, edge_weight), expected)
    # it is not PyG's GCNII* (Eq. 6: the weights see (1 - alpha) P X and alpha X_0)
    star = CachedGCN2Conv(4, alpha=0.2, theta=1.5, layer=3, shared_weights=False)
    star.load_state_dict(conv.state_dict())
    assert not torch.allclose(star(x, x_0, DIRECTED, edge_weight), expected, atol=1e-3)
    with pytest.raises(ValueError, match="separate weights"):
        AuthorsGCN2StarConv(4, shared_weights=True)


def test_authors_gcn2_star_as_a_model_conv() -> None:
    from fathom.config import ModelConfig
    from fathom.models.build import build_model
    from fathom.nn.convs import AuthorsGCN2StarConv

    cfg = ModelConfig(
        conv="gcn2-star-code", depth=3, hidden=8, encoder="linear", head="linear", alpha=0.2
    )
    model = build_model(cfg, 6, 3)
    convs = [m for m in model.modules() if isinstance(m, AuthorsGCN2StarConv)]
    assert len(convs) == 3 and [c.beta for c in convs] == sorted(
        (c.beta for c in convs), reverse=True
    )
    out = model(torch.randn(NUM_NODES, 6), DIRECTED)
    out.sum().backward()
    assert out.shape == (NUM_NODES, 3) and all(c.weight2.grad is not None for c in convs)
