"""Tests of fathom.models.build and fathom.models.deep_gnn."""

from __future__ import annotations

import itertools
import re

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv
from torch_geometric.nn.models import GCN

from fathom.config import ModelConfig
from fathom.errors import ConfigError
from fathom.models.build import ARCHS, ENCODERS, HEADS, build_model
from fathom.models.deep_gnn import DeepGNN, drop_nodes
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


@pytest.mark.parametrize("skip", ["res", "res+", "initial"])
def test_residual_bypassed_only_where_widths_differ(skip: str) -> None:
    model = build_model(ModelConfig(depth=4, hidden=8, skip=skip), IN, OUT)
    # res / res+ read x_{l-1} (raw width only in block 1); initial reads x_0 in every block
    expected = [False] * 3 if skip == "initial" else [False, True, True]
    assert [b.skip.active for b in model.blocks] == expected
    model = build_model(ModelConfig(depth=4, hidden=IN, skip=skip), IN, OUT)
    assert [b.skip.active for b in model.blocks] == [True, True, True]
    model = build_model(ModelConfig(depth=4, hidden=8, skip=skip, encoder="linear"), IN, OUT)
    assert [b.skip.active for b in model.blocks] == [True, True, True]


def test_skips_get_layer_and_history_widths() -> None:
    model = build_model(ModelConfig(depth=4, hidden=8, skip="res"), IN, OUT)
    assert [b.skip.layer for b in model.blocks] == [1, 2, 3]
    assert [b.skip.history_widths for b in model.blocks] == [(IN,), (IN, 8), (IN, 8, 8)]
    model = build_model(ModelConfig(depth=2, hidden=8, skip="initial", alpha=0.3), IN, OUT)
    assert model.blocks[0].skip.alpha == 0.3


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
    assert ENCODERS.names() == ["linear", "none"]
    assert HEADS.names() == ["conv", "linear", "none"]  # none: a block stack without a head
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


def _res(layer: int, channels: int = 2) -> Residual:
    return Residual(channels, layer=layer, history_widths=[channels] * layer)


X = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
EI = torch.tensor([[0, 1], [1, 0]])


def test_deep_gnn_residual_identity_stack_doubles_per_block() -> None:
    model = DeepGNN([_identity_block(_res(layer)) for layer in (1, 2, 3)], IdentityConv())
    assert model.num_layers == 4
    assert torch.equal(model(X, EI), 8 * X)


def test_deep_gnn_noskip_identity_stack_is_identity() -> None:
    blocks = [_identity_block(NoSkip(2, layer=i, history_widths=[2] * i)) for i in (1, 2, 3)]
    model = DeepGNN(blocks, IdentityConv())
    assert torch.equal(model(X, EI), X)


def test_deep_gnn_encoder_and_plain_head() -> None:
    model = DeepGNN(
        [_identity_block(_res(1))],
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
        def forward(self, h: Tensor, history: list[Tensor]) -> Tensor:
            seen.append(len(history))
            return h + history[0]

    model = DeepGNN([_identity_block(Record()) for _ in range(3)], IdentityConv())
    # x1 = 2x, x2 = x1 + x = 3x, x3 = 4x.
    assert torch.equal(model(X, EI), 4 * X)
    assert seen == [1, 2, 3]


# --------------------------------------------------------------------------- model features


class Recorder(nn.Module):
    """Wraps a module, records the arguments of every call, then delegates."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls: list[tuple[Tensor, ...]] = []

    def forward(self, *args: Tensor) -> Tensor:
        self.calls.append(args)
        return self.inner(*args)


def _head_in_width(model: DeepGNN) -> int:
    return model.head.in_channels if model.head_is_conv else model.head.in_features


@pytest.mark.parametrize("jk", ["cat", "max", "lstm"])
@pytest.mark.parametrize("head", ["conv", "linear"])
def test_jumping_knowledge_head_width_and_output(jk: str, head: str) -> None:
    depth, hidden = 4, 8
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(depth=depth, hidden=hidden, skip="jk", jk=jk, head=head), IN, OUT
    )
    num_blocks = depth - 1 if head == "conv" else depth
    assert len(model.blocks) == num_blocks
    assert model.jk is not None and model.jk.mode == jk
    assert _head_in_width(model) == (hidden * num_blocks if jk == "cat" else hidden)
    x, edge_index = _graph()
    out = model(x, edge_index)
    assert out.shape == (N, OUT) and torch.isfinite(out).all()
    out.sum().backward()
    model.eval()
    assert model(x, edge_index).shape == (N, OUT)


def test_jumping_knowledge_reads_every_block() -> None:
    model = build_model(
        ModelConfig(depth=4, hidden=8, skip="jk", jk="cat", head="linear", dropout=0.0), IN, OUT
    )
    model.jk = Recorder(model.jk)
    model.eval()
    x, edge_index = _graph()
    model(x, edge_index)
    (xs,) = model.jk.calls[0]
    assert len(xs) == 4 and all(t.shape == (N, 8) for t in xs)


def test_jumping_knowledge_needs_a_hidden_block() -> None:
    with pytest.raises(ConfigError, match="'jk' needs at least one hidden block"):
        build_model(ModelConfig(depth=1, skip="jk"), IN, OUT)
    # With a linear head, depth 1 is one block.
    model = build_model(ModelConfig(depth=1, skip="jk", head="linear", hidden=8), IN, OUT)
    assert len(model.blocks) == 1 and model.head.in_features == 8


@pytest.mark.parametrize("encoder", ["none", "linear"])
def test_dense_skip_shapes(encoder: str) -> None:
    hidden = 8
    torch.manual_seed(0)
    model = build_model(ModelConfig(depth=4, hidden=hidden, skip="dense", encoder=encoder), IN, OUT)
    x0 = IN if encoder == "none" else hidden
    # block l concatenates x_0 … x_{l-1} and h, then projects back to the hidden width
    expected = [x0 + hidden * layer for layer in (1, 2, 3)]
    assert [b.skip.lin.in_features for b in model.blocks] == expected
    assert all(b.skip.lin.out_features == hidden for b in model.blocks)
    assert all(b.skip.active for b in model.blocks)
    x, edge_index = _graph()
    out = model(x, edge_index)
    assert out.shape == (N, OUT) and torch.isfinite(out).all()


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # shared parameters counted once


@pytest.mark.parametrize("conv", ["gcn", "sage", "gat"])
def test_share_weights_with_encoder_shares_one_conv(conv: str) -> None:
    def build(depth: int) -> DeepGNN:
        cfg = ModelConfig(
            conv=conv,
            depth=depth,
            hidden=8,
            heads=2,
            encoder="linear",
            head="linear",
            share_weights=True,
        )
        return build_model(cfg, IN, OUT)

    model = build(4)
    first = model.blocks[0].conv
    assert all(b.conv is first for b in model.blocks)
    one_conv = _num_params(first)
    dense = (IN * 8 + 8) + (8 * OUT + OUT)
    assert _num_params(model) == dense + one_conv
    assert _num_params(build(2)) == _num_params(build(7)) == dense + one_conv
    unshared = build_model(
        ModelConfig(conv=conv, depth=4, hidden=8, heads=2, encoder="linear", head="linear"),
        IN,
        OUT,
    )
    assert _num_params(unshared) == dense + 4 * one_conv
    x, edge_index = _graph()
    model(x, edge_index).sum().backward()
    assert next(first.parameters()).grad is not None


def test_share_weights_without_encoder_shares_blocks_after_the_first() -> None:
    model = build_model(ModelConfig(depth=6, hidden=8, share_weights=True), IN, OUT)
    convs = [b.conv for b in model.blocks]
    assert convs[0].lin.weight.shape == (8, IN)  # the input conv has its own width
    assert all(c is convs[1] for c in convs[2:]) and convs[1] is not convs[0]
    assert model.head is not convs[1]  # the conv head maps to the classes
    assert _num_params(model) == _num_params(
        build_model(ModelConfig(depth=3, hidden=8, share_weights=True), IN, OUT)
    )
    # Norms and skips stay per block.
    model = build_model(ModelConfig(depth=4, hidden=8, norm="batch", share_weights=True), IN, OUT)
    assert len({id(b.norm) for b in model.blocks}) == 3


def test_share_weights_off_by_default() -> None:
    model = build_model(ModelConfig(depth=4, hidden=8, encoder="linear"), IN, OUT)
    assert len({id(b.conv) for b in model.blocks}) == 3


@pytest.mark.parametrize("conv", ["gcn2", "gcn2-star"])
def test_share_weights_rejected_for_gcn2(conv: str) -> None:
    cfg = ModelConfig(
        conv=conv, depth=4, hidden=8, encoder="linear", head="linear", share_weights=True
    )
    with pytest.raises(ConfigError, match=r"share_weights cannot be used with model\.conv"):
        build_model(cfg, IN, OUT)


def _recording_model(**kw) -> DeepGNN:
    torch.manual_seed(0)
    model = build_model(ModelConfig(depth=3, hidden=8, dropout=0.0, **kw), IN, OUT)
    model.blocks[0].conv = Recorder(model.blocks[0].conv)
    model.head = Recorder(model.head)
    return model


def _edge_set(edge_index: Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.t().tolist()))


def test_drop_edge_resamples_in_training_only() -> None:
    p, n = 0.3, 200
    model = _recording_model(drop_edge=p)
    x, edge_index = _graph(n)
    num_edges = edge_index.size(1)  # 800 directed edges
    model(x, edge_index)
    model(x, edge_index)
    seen = [call[-1] for call in model.blocks[0].conv.calls]
    # within one forward the head sees the same thinned graph as the blocks
    head_seen = [call[-1] for call in model.head.calls]
    assert len(head_seen) == 2 and all(h is b for h, b in zip(head_seen, seen, strict=True))
    assert not torch.equal(seen[0], seen[1])  # a fresh draw every forward
    std = (num_edges * p * (1 - p)) ** 0.5
    full = _edge_set(edge_index)
    for ei in seen:
        assert abs(ei.size(1) - (1 - p) * num_edges) < 5 * std
        assert _edge_set(ei) <= full
    model.eval()
    model(x, edge_index)
    assert model.blocks[0].conv.calls[-1][-1] is edge_index
    assert model.head.calls[-1][-1] is edge_index


def test_no_drop_edge_keeps_the_graph_in_training() -> None:
    model = _recording_model()
    x, edge_index = _graph()
    model(x, edge_index)
    assert model.blocks[0].conv.calls[0][-1] is edge_index


def test_drop_nodes_zeroes_whole_rows_and_rescales() -> None:
    torch.manual_seed(0)
    p = 0.25
    x = torch.rand(1000, 6) + 0.5  # no zero entries
    out = drop_nodes(x, p)
    dropped = (out == 0).all(dim=1)
    kept = (out != 0).all(dim=1)
    assert bool((dropped | kept).all())  # rows are dropped whole
    torch.testing.assert_close(out[kept], x[kept] / (1 - p))
    assert abs(dropped.float().mean().item() - p) < 0.06


def test_drop_node_in_training_only() -> None:
    p = 0.4
    model = _recording_model(drop_node=p)
    x, edge_index = _graph(300)
    x = x.abs() + 0.1
    model(x, edge_index)
    seen = model.blocks[0].conv.calls[0][0]
    dropped = (seen == 0).all(dim=1)
    kept = ~dropped
    assert 0 < int(dropped.sum()) < 300
    torch.testing.assert_close(seen[kept], x[kept] / (1 - p))
    model.eval()
    model(x, edge_index)
    assert model.blocks[0].conv.calls[-1][0] is x


def test_input_dropout_without_encoder_is_the_first_blocks_dropout() -> None:
    model = build_model(ModelConfig(depth=4, hidden=8, dropout=0.5, input_dropout=0.1), IN, OUT)
    assert [b.dropout.p for b in model.blocks] == [0.1, 0.5, 0.5]
    assert model.dropout.p == 0.5  # the head's input
    # None: the same as dropout
    model = build_model(ModelConfig(depth=4, hidden=8, dropout=0.3), IN, OUT)
    assert [b.dropout.p for b in model.blocks] == [0.3, 0.3, 0.3]
    assert model.input_dropout.p == 0.3
    # depth 1: the conv head reads the raw input
    model = build_model(ModelConfig(depth=1, dropout=0.5, input_dropout=0.1), IN, OUT)
    assert model.dropout.p == 0.1


def test_input_dropout_with_encoder_is_applied_to_the_raw_input() -> None:
    cfg = ModelConfig(depth=3, hidden=8, dropout=0.0, input_dropout=0.5, encoder="linear")
    model = build_model(cfg, IN, OUT)
    assert model.input_dropout.p == 0.5
    assert all(b.dropout.p == 0.0 for b in model.blocks) and model.dropout.p == 0.0
    model.encoder = Recorder(model.encoder)
    x = torch.ones(100, IN)
    _, edge_index = _graph(100)
    torch.manual_seed(0)
    model(x, edge_index)
    (seen,) = model.encoder.calls[0]
    assert set(seen.unique().tolist()) == {0.0, 2.0}
    model.eval()
    model(x, edge_index)
    assert model.encoder.calls[-1][0] is x


def test_unknown_arch_lists_the_choices() -> None:
    msg = f"unknown arch 'gcnii'; choose one of: {', '.join(ARCHS.names())}"
    with pytest.raises(ConfigError, match=re.escape(msg)):
        build_model(ModelConfig(arch="gcnii"), IN, OUT)
    assert isinstance(build_model(ModelConfig(arch="DEEP", hidden=8), IN, OUT), DeepGNN)


# --------------------------------------------------------------------------- DropEdge's options


def test_dropedge_gcn_options_reach_every_gcn_layer() -> None:
    from fathom.nn.propagation import DropEdgeGCNConv

    cfg = ModelConfig(depth=4, hidden=8, root_weight=True, adj_norm="rw")
    model = build_model(cfg, 5, 3)
    assert isinstance(model, DeepGNN)
    convs = [b.conv for b in model.blocks] + [model.head]
    assert all(isinstance(c, DropEdgeGCNConv) for c in convs)
    assert all(c.lin_root is not None and c.adj_norm == "rw" for c in convs)
    assert model(torch.randn(6, 5), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape == (6, 3)
    # the defaults build the cached GCN as always
    plain = build_model(ModelConfig(depth=4, hidden=8), 5, 3)
    assert all(type(b.conv).__name__ == "CachedGCNConv" for b in plain.blocks)


def test_skip_every_0_is_one_residual_around_all_hidden_blocks() -> None:
    for depth in (4, 8, 16):
        model = build_model(ModelConfig(depth=depth, hidden=8, skip="res", skip_every=0), 5, 3)
        kinds = [(type(b.skip).__name__, getattr(b.skip, "distance", None)) for b in model.blocks]
        # block 1 is the input layer, blocks 2 .. depth - 1 the hidden ones: one group
        assert kinds == [("NoSkip", None)] * (depth - 2) + [("Residual", depth - 2)]
    # depth 3, one hidden block: as skip_every 1 (a shortcut around it)
    model = build_model(ModelConfig(depth=3, hidden=8, skip="res", skip_every=0), 5, 3)
    same = build_model(ModelConfig(depth=3, hidden=8, skip="res", skip_every=1), 5, 3)
    assert [type(b.skip) for b in model.blocks] == [type(b.skip) for b in same.blocks]
    # depth 2: no hidden block, no shortcut
    model = build_model(ModelConfig(depth=2, hidden=8, skip="res", skip_every=0), 5, 3)
    assert [type(b.skip).__name__ for b in model.blocks] == ["NoSkip"]
    # with a linear encoder every block is hidden: the group starts at x_0
    enc = build_model(
        ModelConfig(depth=4, hidden=8, skip="res", skip_every=0, encoder="linear", head="linear"),
        5,
        3,
    )
    kinds = [(type(b.skip).__name__, getattr(b.skip, "distance", None)) for b in enc.blocks]
    assert kinds == [("NoSkip", None)] * 3 + [("Residual", 4)]


def test_skip_every_puts_a_residual_at_the_end_of_each_group() -> None:
    model = build_model(ModelConfig(depth=8, hidden=8, skip="res", skip_every=3), 5, 3)
    kinds = [(type(b.skip).__name__, getattr(b.skip, "distance", None)) for b in model.blocks]
    # block 1 is the input layer; groups of 3 after it: blocks 2-4, 5-7
    assert kinds == [("NoSkip", None)] * 3 + [("Residual", 3)] + [("NoSkip", None)] * 2 + [
        ("Residual", 3)
    ]
    # with a linear encoder the groups start at its output, x_0
    enc = build_model(
        ModelConfig(depth=4, hidden=8, skip="res+", skip_every=2, encoder="linear", head="linear"),
        5,
        3,
    )
    assert [type(b.skip).__name__ for b in enc.blocks] == [
        "NoSkip",
        "PreActResidual",
        "NoSkip",
        "PreActResidual",
    ]
    x, ei = torch.randn(6, 5), torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    enc.eval()
    with torch.no_grad():
        full = enc(x, ei)
        # x_4 = h_4 + x_2: the shortcut reads two blocks back, so every state is kept
        assert not enc._history_is_local()
        states = enc.node_states(x, ei)
        h4 = enc.blocks[3].conv(enc.blocks[3].act(enc.blocks[3].norm(states[3])), ei)
        torch.testing.assert_close(states[4], h4 + states[2])
        torch.testing.assert_close(full, enc.head(states[4]))


def test_head_norm_normalises_the_output_layer() -> None:
    model = build_model(ModelConfig(depth=3, hidden=8, norm="batch", head_norm=True), 5, 3)
    assert isinstance(model.head_norm, nn.BatchNorm1d) and model.head_norm.num_features == 3
    model.train()
    out = model(torch.randn(10, 5), torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]))
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    assert build_model(ModelConfig(depth=3, hidden=8, norm="batch"), 5, 3).head_norm is None


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"model.conv": "gat", "model.root_weight": True}, "applies to model.conv gcn"),
        ({"model.conv": "sage", "model.adj_norm": "rw"}, "applies to model.conv gcn"),
        (
            {"model.arch": "sgc", "model.adj_norm": "rw"},
            "model.arch 'deep' (a block stack of model.conv) or 'incep'",
        ),
        ({"model.skip_every": 2}, "applies to model.skip res, res+"),
        ({"model.skip": "res", "model.skip_every": -1}, "must be >= 0"),
        ({"model.head_norm": True}, "model.head_norm"),
        ({"model.adj_norm": "laplacian"}, "choose one of: first-order, rw, sym, sym+i"),
    ],
)
def test_dropedge_options_refused_where_they_do_not_apply(
    overrides: dict[str, object], fragment: str
) -> None:
    from fathom.config import ExperimentConfig, apply_overrides

    with pytest.raises(ConfigError) as info:
        apply_overrides(ExperimentConfig(), overrides)
    assert fragment in str(info.value)


def test_incep_takes_the_gcn_options() -> None:
    from fathom.config import ExperimentConfig, apply_overrides
    from fathom.models.inception import IncepGCN

    cfg = apply_overrides(
        ExperimentConfig(),
        {
            "model.arch": "incep",
            "model.depth": 4,
            "model.root_weight": True,
            "model.adj_norm": "rw",
            "model.norm": "batch",
            "model.head_norm": True,
        },
    )
    model = build_model(cfg.model, 5, 3)
    assert isinstance(model, IncepGCN)
    assert model.output_conv.lin_root is not None and model.output_conv.adj_norm == "rw"
    assert isinstance(model.output_norm, nn.BatchNorm1d)
