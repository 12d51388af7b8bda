"""Tests of fathom.models.build and fathom.models.deep_gnn."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv
from torch_geometric.nn.models import GCN

from fathom.config import ModelConfig
from fathom.errors import ConfigError
from fathom.models.build import ENCODERS, HEADS, build_model
from fathom.models.deep_gnn import DeepGNN
from fathom.nn.block import GNNBlock
from fathom.nn.skips import NoSkip, Residual

IN, OUT, N = 5, 3, 20


def _graph(n: int = N) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, IN, generator=g)
    i = torch.arange(n)
    ring = torch.stack([i, (i + 1) % n])
    chords = torch.stack([i, (i + 5) % n])
    edge_index = torch.cat([ring, ring.flip(0), chords, chords.flip(0)], dim=1)
    return x, edge_index


def _convs(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (GCNConv, GATConv))]


ENC_HEAD = ["none-conv", "none-linear", "linear-conv", "linear-linear"]
COMBOS = list(
    itertools.product([1, 2, 8], ["gcn", "gat"], ["none", "res"], ["none", "batch"], ENC_HEAD)
)


@pytest.mark.parametrize(("depth", "conv", "skip", "norm", "enc_head"), COMBOS)
def test_build_and_forward(depth: int, conv: str, skip: str, norm: str, enc_head: str) -> None:
    encoder, head = enc_head.split("-")
    cfg = ModelConfig(
        conv=conv,
        depth=depth,
        hidden=8,
        heads=2,
        skip=skip,
        norm=norm,
        encoder=encoder,
        head=head,
        dropout=0.2,
    )
    torch.manual_seed(0)
    model = build_model(cfg, IN, OUT)
    assert isinstance(model, DeepGNN)
    assert model.num_layers == depth
    convs = _convs(model)
    assert len(convs) == depth
    assert all(isinstance(c, {"gcn": GCNConv, "gat": GATConv}[conv]) for c in convs)
    assert (model.encoder is not None) == (encoder == "linear")
    assert model.head_is_conv == (head == "conv")
    x, edge_index = _graph()
    out = model(x, edge_index)  # training mode: dropout and batch statistics
    assert out.shape == (N, OUT)
    assert torch.isfinite(out).all()
    out.sum().backward()
    model.eval()
    out = model(x, edge_index)
    assert out.shape == (N, OUT)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("conv", "skip", "norm", "encoder", "head"),
    [
        ("gcn", "res", "batch", "none", "conv"),
        ("gcn", "none", "none", "linear", "linear"),
        ("gat", "none", "none", "linear", "conv"),
        ("gat", "res", "batch", "none", "linear"),
    ],
)
def test_depth_128(conv: str, skip: str, norm: str, encoder: str, head: str) -> None:
    cfg = ModelConfig(
        conv=conv, depth=128, hidden=4, heads=2, skip=skip, norm=norm, encoder=encoder, head=head
    )
    torch.manual_seed(0)
    model = build_model(cfg, IN, OUT)
    assert model.num_layers == 128
    assert len(_convs(model)) == 128
    x, edge_index = _graph()
    with torch.no_grad():
        assert model(x, edge_index).shape == (N, OUT)


def test_two_layer_gcn_is_kipf_welling() -> None:
    model = build_model(ModelConfig(depth=2, hidden=16), IN, OUT)
    convs = _convs(model)
    assert len(convs) == 2 and all(isinstance(c, GCNConv) for c in convs)
    assert model.encoder is None
    assert len(model.blocks) == 1 and model.head is convs[1]
    # Linear weights are stored [out, in]: in -> hidden, then hidden -> out.
    assert convs[0].lin.weight.shape == (16, IN)
    assert convs[1].lin.weight.shape == (OUT, 16)
    assert sum(p.numel() for p in model.parameters()) == (IN * 16 + 16) + (16 * OUT + OUT)


def test_two_layer_gcn_equals_pyg_gcn_in_eval() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(depth=2, hidden=16), IN, OUT)
    ref = GCN(IN, 16, num_layers=2, out_channels=OUT)
    with torch.no_grad():
        ref.convs[0].lin.weight.copy_(model.blocks[0].conv.lin.weight)
        ref.convs[0].bias.copy_(model.blocks[0].conv.bias)
        ref.convs[1].lin.weight.copy_(model.head.lin.weight)
        ref.convs[1].bias.copy_(torch.randn(OUT))
        model.head.bias.copy_(ref.convs[1].bias)
    model.eval()
    ref.eval()
    x, edge_index = _graph()
    torch.testing.assert_close(model(x, edge_index), ref(x, edge_index))


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_linear_encoder_and_head_have_depth_convs(depth: int) -> None:
    model = build_model(
        ModelConfig(depth=depth, hidden=8, encoder="linear", head="linear"), IN, OUT
    )
    assert len(model.blocks) == depth
    assert len(_convs(model)) == depth
    assert isinstance(model.encoder, nn.Linear) and model.encoder.weight.shape == (8, IN)
    assert isinstance(model.head, nn.Linear) and model.head.weight.shape == (OUT, 8)
    assert all(c.lin.weight.shape == (8, 8) for c in _convs(model))


def test_depth_one_conv_head_maps_input_to_output() -> None:
    model = build_model(ModelConfig(depth=1), IN, OUT)
    assert len(model.blocks) == 0
    assert model.head.lin.weight.shape == (OUT, IN)


def test_residual_bypassed_only_where_widths_differ() -> None:
    model = build_model(ModelConfig(depth=4, hidden=8, skip="res"), IN, OUT)
    assert [b.use_skip for b in model.blocks] == [False, True, True]
    model = build_model(ModelConfig(depth=4, hidden=IN, skip="res"), IN, OUT)
    assert [b.use_skip for b in model.blocks] == [True, True, True]
    model = build_model(ModelConfig(depth=4, hidden=8, skip="res", encoder="linear"), IN, OUT)
    assert [b.use_skip for b in model.blocks] == [True, True, True]


def test_parts_come_from_the_config() -> None:
    cfg = ModelConfig(
        depth=3, hidden=8, norm="batch", act="tanh", skip="res", dropout=0.3, encoder="linear"
    )
    model = build_model(cfg, IN, OUT)
    for block in model.blocks:
        assert isinstance(block.norm, nn.BatchNorm1d) and block.norm.num_features == 8
        assert isinstance(block.act, nn.Tanh)
        assert isinstance(block.skip, Residual)
        assert block.dropout.p == 0.3
    assert model.dropout.p == 0.3
    assert isinstance(model.encoder_act, nn.Tanh)


def test_blocks_do_not_share_modules() -> None:
    model = build_model(ModelConfig(depth=4, hidden=8, norm="batch"), IN, OUT)
    ids = [id(m) for b in model.blocks for m in (b.conv, b.norm, b.act, b.skip)]
    assert len(ids) == len(set(ids))


def test_gat_heads_must_divide_hidden() -> None:
    with pytest.raises(ConfigError, match=r"model.hidden \(10\) must be divisible by model.heads"):
        build_model(ModelConfig(conv="gat", depth=2, hidden=10, heads=4), IN, OUT)
    # A single layer has no hidden GAT layer, so any hidden width builds.
    build_model(ModelConfig(conv="gat", depth=1, hidden=10, heads=4), IN, OUT)


def test_gat_head_averages_out_heads() -> None:
    model = build_model(ModelConfig(conv="gat", depth=2, hidden=8, heads=2, out_heads=3), IN, OUT)
    assert (model.head.heads, model.head.concat, model.head.out_channels) == (3, False, OUT)
    assert (model.blocks[0].conv.heads, model.blocks[0].conv.out_channels) == (2, 4)


def test_names_are_case_insensitive() -> None:
    model = build_model(
        ModelConfig(conv="GCN", depth=2, hidden=8, encoder="Linear", head="LINEAR"), IN, OUT
    )
    assert isinstance(model.encoder, nn.Linear)
    assert isinstance(model.head, nn.Linear)


def test_unknown_encoder_and_head() -> None:
    assert ENCODERS.names() == ["linear", "none"] and HEADS.names() == ["conv", "linear"]
    with pytest.raises(ConfigError, match="unknown encoder 'mlp'"):
        build_model(ModelConfig(encoder="mlp"), IN, OUT)
    with pytest.raises(ConfigError, match="unknown head 'mlp'"):
        build_model(ModelConfig(head="mlp"), IN, OUT)


def test_eval_is_deterministic_and_train_uses_dropout() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(depth=3, hidden=8, dropout=0.5), IN, OUT)
    x, edge_index = _graph()
    a, b = model(x, edge_index), model(x, edge_index)
    assert not torch.equal(a, b)
    model.eval()
    assert torch.equal(model(x, edge_index), model(x, edge_index))


def test_reset_parameters() -> None:
    model = build_model(ModelConfig(depth=3, hidden=8, encoder="linear"), IN, OUT)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    model.reset_parameters()
    after = model.state_dict()
    assert not torch.equal(before["encoder.weight"], after["encoder.weight"])
    assert not torch.equal(before["blocks.0.conv.lin.weight"], after["blocks.0.conv.lin.weight"])
    assert not torch.equal(before["head.lin.weight"], after["head.lin.weight"])


# --------------------------------------------------------------------------- DeepGNN wiring


class IdentityConv(nn.Module):
    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return x


class Scale(nn.Module):
    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, x: Tensor) -> Tensor:
        return x * self.c


def _identity_block(skip: nn.Module) -> GNNBlock:
    return GNNBlock(IdentityConv(), nn.Identity(), nn.Identity(), skip)


X = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
EI = torch.tensor([[0, 1], [1, 0]])


def test_deep_gnn_residual_identity_stack_doubles_per_block() -> None:
    model = DeepGNN([_identity_block(Residual()) for _ in range(3)], IdentityConv())
    assert model.num_layers == 4
    assert torch.equal(model(X, EI), 8 * X)


def test_deep_gnn_noskip_identity_stack_is_identity() -> None:
    model = DeepGNN([_identity_block(NoSkip()) for _ in range(3)], IdentityConv())
    assert torch.equal(model(X, EI), X)


def test_deep_gnn_encoder_and_plain_head() -> None:
    model = DeepGNN(
        [_identity_block(Residual())],
        Scale(10.0),
        encoder=Scale(3.0),
        encoder_act=Scale(-1.0),
        head_is_conv=False,
    )
    assert model.num_layers == 1
    # encoder -> act: -3x; residual block: -6x; head: -60x.
    assert torch.equal(model(X, EI), -60 * X)


def test_deep_gnn_history_passed_to_skips() -> None:
    seen: list[int] = []

    class Record(nn.Module):
        needs_same_width = False

        def forward(self, h: Tensor, history: list[Tensor]) -> Tensor:
            seen.append(len(history))
            return h + history[0]

    model = DeepGNN([_identity_block(Record()) for _ in range(3)], IdentityConv())
    # x1 = 2x, x2 = x1 + x = 3x, x3 = 4x.
    assert torch.equal(model(X, EI), 4 * X)
    assert seen == [1, 2, 3]
