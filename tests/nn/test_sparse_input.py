"""The first layer's XW through a CSR copy of sparse (bag-of-words) features."""

from __future__ import annotations

import gc

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv

from fathom.models.autoencoder import GAEEncoder
from fathom.nn.sparse_input import SPARSE_INPUT_MAX_DENSITY, SparseInput, SparseInputGCNConv


def _bag_of_words(num_nodes: int, dim: int, density: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(num_nodes, dim, generator=g) < density).float()
    return x / x.sum(dim=1, keepdim=True).clamp(min=1)


def _ring(num_nodes: int) -> torch.Tensor:
    src = torch.arange(num_nodes)
    dst = (src + 1) % num_nodes
    return torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])


def test_csr_copy_only_for_sparse_features() -> None:
    cache = SparseInput()
    sparse_x = _bag_of_words(50, 300, 0.01)
    csr = cache.of(sparse_x)
    assert csr is not None and csr.layout == torch.sparse_csr
    assert torch.equal(csr.to_dense(), sparse_x)
    assert cache.of(sparse_x) is csr  # kept while the input is unchanged
    assert cache.of(_bag_of_words(50, 300, 0.5)) is None  # dense: the dense product
    assert cache.of(torch.zeros(300)) is None  # not 2-D
    assert cache.of(sparse_x.to_sparse()) is None  # not strided
    assert cache.of(sparse_x.clone().requires_grad_()) is None  # learned features: dense


def test_density_threshold() -> None:
    x = torch.zeros(10, 100)
    x.view(-1)[: int(SPARSE_INPUT_MAX_DENSITY * x.numel())] = 1.0
    assert SparseInput().of(x) is not None
    x.view(-1)[int(SPARSE_INPUT_MAX_DENSITY * x.numel())] = 1.0
    assert SparseInput().of(x) is None


def test_in_place_change_makes_a_new_copy_and_no_reference_is_kept() -> None:
    cache = SparseInput()
    x = _bag_of_words(40, 200, 0.01)
    first = cache.of(x)
    x[:2, :3] = 1.0
    second = cache.of(x)
    assert second is not first and torch.equal(second.to_dense(), x)
    source = cache._source
    del x, first, second
    gc.collect()
    assert source is not None and source[0]() is None


def test_linear_matches_the_dense_product_and_its_gradients() -> None:
    torch.manual_seed(0)
    x = _bag_of_words(60, 400, 0.01)
    weight = torch.randn(16, 400, requires_grad=True)
    bias = torch.randn(16, requires_grad=True)
    out = SparseInput().linear(x, weight, bias)
    ref = F.linear(x, weight, bias)
    assert torch.allclose(out, ref, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(out.square().sum(), (weight, bias))
    ref_grads = torch.autograd.grad(ref.square().sum(), (weight, bias))
    for a, b in zip(grads, ref_grads, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def _pair(**kwargs: object) -> tuple[SparseInputGCNConv, GCNConv]:
    torch.manual_seed(3)
    conv = SparseInputGCNConv(300, 8, **kwargs)
    torch.manual_seed(3)
    ref = GCNConv(300, 8, **kwargs)
    return conv, ref


@pytest.mark.parametrize("kwargs", [{}, {"bias": False}, {"cached": True}, {"improved": True}])
def test_conv_is_gcnconv_up_to_rounding_on_sparse_features(kwargs: dict) -> None:
    conv, ref = _pair(**kwargs)
    for a, b in zip(conv.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # same parameters, same initialisation
    x, edge_index = _bag_of_words(50, 300, 0.01), _ring(50)
    for _ in range(2):  # the second call reuses the CSR copy (and the cached norm)
        out, want = conv(x, edge_index), ref(x, edge_index)
        assert torch.allclose(out, want, rtol=1e-5, atol=1e-6)
    assert conv._sparse_input.csr is not None
    grads = torch.autograd.grad(conv(x, edge_index).sum(), list(conv.parameters()))
    ref_grads = torch.autograd.grad(ref(x, edge_index).sum(), list(ref.parameters()))
    for a, b in zip(grads, ref_grads, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_conv_is_gcnconv_bit_for_bit_on_dense_features() -> None:
    conv, ref = _pair()
    x, edge_index = torch.randn(50, 300), _ring(50)
    assert torch.equal(conv(x, edge_index), ref(x, edge_index))
    assert conv._sparse_input.csr is None


def test_gae_encoder_on_bag_of_words_matches_gcnconv_layers() -> None:
    x, edge_index = _bag_of_words(60, 300, 0.01), _ring(60)
    torch.manual_seed(5)
    encoder = GAEEncoder(300, 16, 8)
    assert isinstance(encoder.conv1, SparseInputGCNConv)
    ref = GAEEncoder(300, 16, 8)
    ref.conv1 = GCNConv(300, 16, bias=False)
    ref.load_state_dict(encoder.state_dict())
    assert torch.allclose(encoder(x, edge_index), ref(x, edge_index), rtol=1e-5, atol=1e-6)
