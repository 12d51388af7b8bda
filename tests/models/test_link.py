"""Tests of fathom.models.link: the edge decoders, LinkModel, and the ``link`` head of
``build_model``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fathom.config import ModelConfig
from fathom.errors import ConfigError
from fathom.models.build import build_model
from fathom.models.link import (
    DECODERS,
    DotDecoder,
    HadamardDecoder,
    LinkModel,
    MLPDecoder,
    build_decoder,
)
from fathom.tasks.link import LinkTaskConfig


def test_decoders_score_pairs() -> None:
    z = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    pairs = torch.tensor([[0, 1], [1, 2]])
    assert DotDecoder()(z, pairs).tolist() == [1.0, 1.0]
    assert torch.equal(DotDecoder().dense(z), z @ z.t())
    hadamard = HadamardDecoder(2)
    dense = hadamard.dense(z)
    assert torch.allclose(dense[pairs[0], pairs[1]], hadamard(z, pairs))
    assert torch.allclose(dense, dense.t())
    assert MLPDecoder(2)(z, pairs).shape == (2,)
    assert isinstance(build_decoder("mlp", 4), MLPDecoder)
    assert DECODERS.names() == ["dot", "hadamard", "mlp"]
    with pytest.raises(ConfigError, match="dot, hadamard, mlp") as info:
        build_decoder("cosine", 4)
    assert "link.decoder" in str(info.value) and "\n" not in str(info.value)


def _indexed(decoder: nn.Module, z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """The decoders' scores written with ``z[index]`` (what they computed before gathering
    rows by ``index_select``)."""
    if isinstance(decoder, DotDecoder):
        return (z[pairs[0]] * z[pairs[1]]).sum(dim=-1)
    if isinstance(decoder, HadamardDecoder):
        return decoder.lin(z[pairs[0]] * z[pairs[1]]).squeeze(-1)
    return decoder.mlp(torch.cat([z[pairs[0]], z[pairs[1]]], dim=-1)).squeeze(-1)


@pytest.mark.parametrize("name", ["dot", "hadamard", "mlp"])
def test_decoders_gather_rows_bit_for_bit_as_indexing(name: str) -> None:
    g = torch.Generator().manual_seed(0)
    decoder = build_decoder(name, 16)
    z = torch.randn(300, 16, generator=g, requires_grad=True)
    pairs = torch.randint(0, 300, (2, 5000), generator=g)  # repeated rows: gradients add up
    out, want = decoder(z, pairs), _indexed(decoder, z, pairs)
    assert torch.equal(out, want)
    (grad,) = torch.autograd.grad(out.square().sum(), z)
    (want_grad,) = torch.autograd.grad(want.square().sum(), z)
    assert torch.equal(grad, want_grad)


class _Features(nn.Module):
    """A node encoder that ignores the graph: a linear map of the features."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def test_link_model_encodes_then_decodes() -> None:
    encoder = _Features()
    model = LinkModel(encoder, DotDecoder())
    x = torch.randn(4, 3)
    edge_index = torch.tensor([[0, 1], [1, 0]])
    pairs = torch.tensor([[0, 2], [1, 3]])
    z = encoder(x, edge_index)
    torch.testing.assert_close(model.encode(x, edge_index), z)
    torch.testing.assert_close(model(x, edge_index, pairs), (z[pairs[0]] * z[pairs[1]]).sum(-1))
    assert model.feature_decoder is None


@pytest.mark.parametrize("decoder", ["dot", "hadamard", "mlp"])
def test_link_head_builds_encoder_decoder_and_feature_decoder(decoder: str) -> None:
    cfg = ModelConfig(conv="gcn", depth=2, hidden=8)
    section = LinkTaskConfig(decoder=decoder, embedding_dim=4)
    model = build_model(cfg, 6, section.embedding_dim, head=section.head())
    assert isinstance(model, LinkModel)
    assert isinstance(model.decoder, type(build_decoder(decoder, 4)))
    assert model.feature_decoder is None
    x = torch.randn(5, 6)
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    z = model.encode(x, edge_index)
    assert z.shape == (5, 4)
    assert model(x, edge_index, torch.tensor([[0, 1], [2, 4]])).shape == (2,)
    with_features = build_model(cfg, 6, 4, head=section.head(reconstruct_features=True))
    assert isinstance(with_features.feature_decoder, nn.Linear)
    features = with_features.feature_decoder
    assert (features.in_features, features.out_features) == (4, 6)


def test_link_head_refuses_an_unknown_decoder() -> None:
    head = LinkTaskConfig(decoder="cosine").head()
    with pytest.raises(ConfigError, match="cosine"):
        build_model(ModelConfig(), 6, 4, head=head)
