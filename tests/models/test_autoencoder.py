"""Tests of fathom.models.autoencoder: GAE / VGAE encoders and the KL term."""

from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.utils import to_dense_adj

from fathom.config import ModelConfig
from fathom.models.autoencoder import GAEEncoder, VGAEEncoder, gaussian_kl
from fathom.models.build import build_model

EDGE_INDEX = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])  # path 0-1-2-3


def _a_hat() -> torch.Tensor:
    a = to_dense_adj(EDGE_INDEX, max_num_nodes=4)[0] + torch.eye(4)
    d = a.sum(1).rsqrt()
    return d[:, None] * a * d[None, :]


def test_gae_encoder_is_two_gcn_layers_without_bias() -> None:
    torch.manual_seed(0)
    enc = GAEEncoder(3, 5, 2)
    x = torch.randn(4, 3)
    w0, w1 = enc.conv1.lin.weight.t(), enc.conv2.lin.weight.t()
    a = _a_hat()
    expected = a @ torch.relu(a @ x @ w0) @ w1
    assert torch.allclose(enc(x, EDGE_INDEX), expected, atol=1e-6)
    assert enc.conv1.bias is None and enc.conv2.bias is None


def test_vgae_returns_mu_in_eval_and_a_sample_in_training() -> None:
    torch.manual_seed(0)
    enc = VGAEEncoder(3, 5, 2)
    x = torch.randn(4, 3)
    enc.eval()
    z1, z2 = enc(x, EDGE_INDEX), enc(x, EDGE_INDEX)
    assert torch.equal(z1, z2) and torch.equal(z1, enc.mu)
    a = _a_hat()
    h = torch.relu(a @ x @ enc.conv1.lin.weight.t())
    assert torch.allclose(enc.logstd, a @ h @ enc.conv_logstd.lin.weight.t(), atol=1e-6)
    enc.train()
    torch.manual_seed(1)
    z = enc(x, EDGE_INDEX)
    torch.manual_seed(1)
    eps = torch.randn(4, 2)
    assert torch.allclose(z, enc.mu + eps * enc.logstd.exp(), atol=1e-6)
    assert not torch.allclose(z, enc.mu)


def test_gaussian_kl_closed_forms() -> None:
    zeros = torch.zeros(3, 4)
    assert gaussian_kl(zeros, zeros).item() == 0.0
    # mu = 1, sigma = 1: each dimension contributes mu^2 / 2
    assert gaussian_kl(torch.ones(3, 4), zeros).item() == pytest.approx(2.0)
    # mu = 0, log sigma = 1: (sigma^2 - 1 - 2 log sigma) / 2 per dimension
    expected = 4 * (math.e**2 - 1 - 2) / 2
    assert gaussian_kl(zeros, torch.ones(3, 4)).item() == pytest.approx(expected)


def test_vgae_kl_term_is_finite_and_differentiable() -> None:
    torch.manual_seed(0)
    enc = VGAEEncoder(3, 5, 2)
    with pytest.raises(RuntimeError, match="forward pass first"):
        enc.kl_loss()
    enc(torch.randn(4, 3) * 100, EDGE_INDEX)
    kl = enc.kl_loss()
    assert math.isfinite(kl.item()) and kl.item() >= 0
    kl.backward()
    assert enc.conv_logstd.lin.weight.grad is not None


@pytest.mark.parametrize(("arch", "cls"), [("gae", GAEEncoder), ("vgae", VGAEEncoder)])
def test_builders_are_registered(arch: str, cls: type) -> None:
    model = build_model(ModelConfig(arch=arch, hidden=32, dropout=0.0), 7, 16)
    assert type(model) is cls
    assert model.conv1.out_channels == 32 and model.conv2.out_channels == 16
    model.eval()
    assert model(torch.randn(4, 7), EDGE_INDEX).shape == (4, 16)
