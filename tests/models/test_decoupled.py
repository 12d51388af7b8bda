"""Tests of fathom.models.decoupled: SGC, GfNN, APPNP, SIGN and the propagation cache."""

from __future__ import annotations

import gc

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.nn import conv as pyg_conv

from fathom.models import decoupled
from fathom.models.decoupled import (
    APPNP,
    SGC,
    SIGN,
    GfNN,
    clear_feature_cache,
    personalized_pagerank,
    propagated_features,
)
from fathom.nn.adjacency import gcn_adjacency

IN, HIDDEN, OUT, N = 6, 8, 3, 30


def _graph(n: int = N, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, IN, generator=g, dtype=dtype)
    i = torch.arange(n)
    ring = torch.stack([i, (i + 1) % n])
    chords = torch.stack([i[::3], (i[::3] + 7) % n])
    edge_index = torch.cat([ring, ring.flip(0), chords, chords.flip(0)], dim=1)
    return x, edge_index


def _dense_s(edge_index: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    return gcn_adjacency(edge_index, n, dtype=dtype).to_dense()


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_feature_cache()


@pytest.fixture
def count_propagate(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = decoupled.propagate

    def counting(adj: Tensor, x: Tensor) -> Tensor:
        calls[0] += 1
        return real(adj, x)

    monkeypatch.setattr(decoupled, "propagate", counting)
    return calls


MODELS = {
    "sgc": lambda: SGC(IN, OUT, K=2),
    "gfnn": lambda: GfNN(IN, HIDDEN, OUT, K=2, dropout=0.5),
    "appnp": lambda: APPNP(IN, HIDDEN, OUT, K=5, alpha=0.1, dropout=0.5),
    "sign": lambda: SIGN(IN, HIDDEN, OUT, K=2, dropout=0.5),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_shapes_backward_and_reset(name: str) -> None:
    torch.manual_seed(0)
    model: nn.Module = MODELS[name]()
    x, edge_index = _graph()
    out = model(x, edge_index)
    assert out.shape == (N, OUT)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters())
    before = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()  # type: ignore[operator]
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    model.eval()
    assert torch.equal(model(x, edge_index), model(x, edge_index))


def test_propagated_features_equal_dense_powers() -> None:
    x, edge_index = _graph(dtype=torch.float64)
    s = _dense_s(edge_index, N, torch.float64)
    hops = propagated_features(x, edge_index, 3)
    assert len(hops) == 4
    expected = x
    for h in hops:
        torch.testing.assert_close(h, expected, atol=1e-6, rtol=0)
        expected = s @ expected


def test_sgc_is_linear_on_dense_s_k_x() -> None:
    torch.manual_seed(0)
    x, edge_index = _graph(dtype=torch.float64)
    model = SGC(IN, OUT, K=3).double()
    s = _dense_s(edge_index, N, torch.float64)
    sk_x = torch.linalg.matrix_power(s, 3) @ x
    torch.testing.assert_close(model(x, edge_index), model.lin(sk_x), atol=1e-6, rtol=0)


def test_precompute_runs_once(count_propagate: list[int]) -> None:
    model = SGC(IN, OUT, K=2)
    x, edge_index = _graph()
    model(x, edge_index)
    assert count_propagate[0] == 2
    model(x, edge_index)
    model.eval()
    model(x, edge_index)
    assert count_propagate[0] == 2  # cache hits, in train and eval mode
    # another model on the same graph shares the hops; more hops extend the cached list
    GfNN(IN, HIDDEN, OUT, K=2)(x, edge_index)
    assert count_propagate[0] == 2
    SIGN(IN, HIDDEN, OUT, K=3)(x, edge_index)
    assert count_propagate[0] == 3


def test_cache_invalidated_by_in_place_edit(count_propagate: list[int]) -> None:
    x, edge_index = _graph()
    first = propagated_features(x, edge_index, 1)[1].clone()
    x.mul_(2.0)  # bumps x._version
    second = propagated_features(x, edge_index, 1)[1]
    assert count_propagate[0] == 2
    torch.testing.assert_close(second, 2.0 * first)


def test_cache_entry_dropped_with_its_tensor() -> None:
    x, edge_index = _graph()
    propagated_features(x, edge_index, 2)
    assert len(decoupled._CACHE) == 1
    del x
    gc.collect()
    assert len(decoupled._CACHE) == 0


def test_input_gradient_flows_through_propagation(count_propagate: list[int]) -> None:
    x, edge_index = _graph()
    x.requires_grad_(True)
    SGC(IN, OUT, K=2)(x, edge_index).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert len(decoupled._CACHE) == 0  # not cached: these hops carry autograd history


def test_appnp_matches_pyg() -> None:
    torch.manual_seed(0)
    x, edge_index = _graph(dtype=torch.float64)
    model = APPNP(IN, HIDDEN, OUT, K=10, alpha=0.1, dropout=0.5).double().eval()
    h = model.mlp(x)
    expected = pyg_conv.APPNP(K=10, alpha=0.1)(h, edge_index)
    torch.testing.assert_close(model(x, edge_index), expected, atol=1e-10, rtol=0)
    torch.testing.assert_close(
        personalized_pagerank(h, edge_index, 3, 0.2),
        pyg_conv.APPNP(K=3, alpha=0.2)(h, edge_index),
        atol=1e-10,
        rtol=0,
    )


def test_appnp_k0_is_the_mlp() -> None:
    x, edge_index = _graph()
    model = APPNP(IN, HIDDEN, OUT, K=0).eval()
    assert torch.equal(model(x, edge_index), model.mlp(x))


def test_sign_hops_and_layers() -> None:
    torch.manual_seed(0)
    x, edge_index = _graph(dtype=torch.float64)
    s = _dense_s(edge_index, N, torch.float64)
    hops = propagated_features(x, edge_index, 2)
    dense_hops = [x, s @ x, s @ s @ x]
    for got, want in zip(hops, dense_hops, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    model = SIGN(IN, HIDDEN, OUT, K=2).double().eval()
    assert len(model.lins) == 3
    assert model.lin.in_features == 3 * HIDDEN
    z = torch.cat([lin(h).relu() for lin, h in zip(model.lins, dense_hops, strict=True)], dim=-1)
    torch.testing.assert_close(model(x, edge_index), model.lin(z), atol=1e-6, rtol=0)


def test_k_must_be_non_negative() -> None:
    x, edge_index = _graph()
    with pytest.raises(ValueError, match="K must be >= 0"):
        propagated_features(x, edge_index, -1)
