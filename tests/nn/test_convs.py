"""Tests of fathom.nn.convs."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.nn import (
    GATConv,
    GatedGraphConv,
    GATv2Conv,
    GCN2Conv,
    GCNConv,
    GENConv,
    GINConv,
    SAGEConv,
    TransformerConv,
)

import fathom.nn.adjacency as adjacency
import fathom.nn.convs as convs
from fathom.errors import ConfigError
from fathom.nn.convs import AGGREGATIONS, CONVS, build_conv, check_aggr

# Star-ish graph 0-1, 1-2, 1-3 stored in both directions.
EDGE_INDEX = torch.tensor([[0, 1, 1, 2, 1, 3], [1, 0, 2, 1, 3, 1]])
NUM_NODES = 4


ALL_NAMES = [
    "cheb",
    "gat",
    "gated",
    "gatv2",
    "gcn",
    "gcn2",
    "gcn2-star",
    "gcn2-star-code",
    "gen",
    "gin",
    "gin0",
    "mlp",
    "sage",
    "transformer",
]


def test_names() -> None:
    assert CONVS.names() == ALL_NAMES


def test_gcn_matches_closed_form() -> None:
    conv = build_conv("gcn", 3, 2)
    assert isinstance(conv, GCNConv)
    W = torch.tensor([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]])  # [in, out]
    b = torch.tensor([0.25, -0.5])
    with torch.no_grad():
        conv.lin.weight.copy_(W.t())
        conv.bias.copy_(b)
    X = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0], [3.0, 1.0, 0.0], [-2.0, 0.5, 1.0]])

    A = torch.zeros(NUM_NODES, NUM_NODES)
    A[EDGE_INDEX[0], EDGE_INDEX[1]] = 1.0
    A_hat = A + torch.eye(NUM_NODES)
    deg = A_hat.sum(1)
    assert deg.tolist() == [2.0, 4.0, 2.0, 2.0]
    D_inv_sqrt = torch.diag(deg.pow(-0.5))
    expected = D_inv_sqrt @ A_hat @ D_inv_sqrt @ X @ W + b

    out = conv(X, EDGE_INDEX)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    # Spot check one row by hand: node 0 sees itself (1/2) and node 1 (1/sqrt(8)).
    row0 = (X[0] / 2 + X[1] / 8**0.5) @ W + b
    torch.testing.assert_close(out[0], row0, rtol=1e-6, atol=1e-6)


def test_gcn_final_is_the_same_operator() -> None:
    conv = build_conv("gcn", 3, 5, final=True)
    assert isinstance(conv, GCNConv)
    assert conv(torch.randn(NUM_NODES, 3), EDGE_INDEX).shape == (NUM_NODES, 5)


def test_gat_hidden_concatenates_heads() -> None:
    conv = build_conv("gat", 5, 8, heads=2, attn_dropout=0.3)
    assert type(conv) is GATConv
    assert (conv.heads, conv.out_channels, conv.concat, conv.dropout) == (2, 4, True, 0.3)
    out = conv(torch.randn(NUM_NODES, 5), EDGE_INDEX)
    assert out.shape == (NUM_NODES, 8)


@pytest.mark.parametrize(("hidden", "heads"), [(8, 3), (6, 4), (3, 8)])
def test_gat_hidden_must_divide_heads(hidden: int, heads: int) -> None:
    with pytest.raises(ConfigError) as info:
        build_conv("gat", 5, hidden, heads=heads)
    msg = str(info.value)
    assert msg == (f"model.hidden ({hidden}) must be divisible by model.heads ({heads}) for gat")


def test_gat_final_averages_heads() -> None:
    torch.manual_seed(0)
    final = build_conv("gat", 5, 3, final=True, heads=8, out_heads=4)
    assert (final.heads, final.out_channels, final.concat) == (4, 3, False)
    # final's heads (8 hidden heads) must not matter; 3 is not divisible by 8 and still builds.
    concat = GATConv(5, 3, heads=4, concat=True)
    with torch.no_grad():
        concat.lin.weight.copy_(final.lin.weight)
        concat.att_src.copy_(final.att_src)
        concat.att_dst.copy_(final.att_dst)
        concat.bias.zero_()
        final.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    final.eval()
    concat.eval()
    x = torch.randn(NUM_NODES, 5)
    out = final(x, EDGE_INDEX)
    assert out.shape == (NUM_NODES, 3)
    per_head = concat(x, EDGE_INDEX).view(NUM_NODES, 4, 3)
    torch.testing.assert_close(out, per_head.mean(1) + final.bias, rtol=1e-5, atol=1e-6)


def test_options_are_ignored_by_gcn() -> None:
    conv = build_conv("gcn", 3, 2, heads=7, out_heads=2, attn_dropout=0.1)
    assert isinstance(conv, GCNConv)


def test_gcn_root_weight_and_adj_norm_give_dropedges_layer() -> None:
    from fathom.nn.propagation import DropEdgeGCNConv

    plain = build_conv("gcn", 3, 2, root_weight=False, adj_norm="sym")
    assert type(plain) is convs.CachedGCNConv  # the defaults build what they always built
    looped = build_conv("gcn", 3, 2, final=True, root_weight=True)
    assert isinstance(looped, DropEdgeGCNConv) and looped.lin_root is not None
    assert looped.adj_norm == "sym"
    walk = build_conv("gcn", 3, 2, adj_norm="rw")
    assert isinstance(walk, DropEdgeGCNConv) and walk.lin_root is None
    out = walk(torch.randn(NUM_NODES, 3), EDGE_INDEX)
    assert out.shape == (NUM_NODES, 2)
    # other convs ignore the GCN options
    assert isinstance(build_conv("sage", 3, 2, root_weight=True, adj_norm="rw"), SAGEConv)


def test_unknown_conv() -> None:
    with pytest.raises(ConfigError) as info:
        build_conv("graphormer", 3, 2)
    assert str(info.value) == f"unknown conv 'graphormer'; choose one of: {', '.join(ALL_NAMES)}"


def test_cached_gcn_matches_pyg_and_tracks_graph_changes() -> None:
    torch.manual_seed(0)
    ref = GCNConv(3, 4)
    cached = build_conv("gcn", 3, 4)
    cached.load_state_dict(ref.state_dict())
    x = torch.randn(NUM_NODES, 3, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    out = cached(x, EDGE_INDEX)
    expected = ref(x_ref, EDGE_INDEX)
    torch.testing.assert_close(out, expected)
    out.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(cached.lin.weight.grad, ref.lin.weight.grad)

    # another graph object (e.g. a DropEdge sample) must not reuse the cached adjacency
    fewer = EDGE_INDEX[:, :2].clone()
    torch.testing.assert_close(cached(x, fewer), ref(x, fewer))
    # nor may an in-place edit of the same tensor
    edited = EDGE_INDEX.clone()
    cached(x, edited)
    edited[1, 0] = 3
    torch.testing.assert_close(cached(x, edited), ref(x, edited))


# --------------------------------------------------------------------------- every conv

# 6-cycle plus the chord 0-3, both directions.
CYCLE = torch.tensor(
    [[0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 0, 0, 3], [1, 0, 2, 1, 3, 2, 4, 3, 5, 4, 0, 5, 3, 0]]
)
ALL_OPTIONS: dict[str, Any] = {
    "layer": 3,
    "aggr": None,
    "heads": 2,
    "out_heads": 2,
    "attn_dropout": 0.1,
    "alpha": 0.2,
    "theta": 0.5,
    "cheb_k": 3,
    "msg_norm": True,
}
GCNII = ("gcn2", "gcn2-star", "gcn2-star-code")
CAN_BE_FINAL = [n for n in ALL_NAMES if n not in GCNII]


def _run(conv: nn.Module, x: Tensor, edge_index: Tensor) -> Tensor:
    if getattr(conv, "needs_x0", False):
        return conv(x, x, edge_index)
    return conv(x, edge_index)


def _forward_backward(conv: nn.Module, in_channels: int, out_channels: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(6, in_channels, requires_grad=True)
    out = _run(conv, x, CYCLE)
    assert out.shape == (6, out_channels)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    grads = [p.grad for p in conv.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_hidden_conv_forward_backward(name: str) -> None:
    # gcn2 and gated need in <= out (gcn2: equal), so hidden layers here keep the width
    in_channels = 8 if name in GCNII else 5
    conv = build_conv(name, in_channels, 8, **ALL_OPTIONS)
    _forward_backward(conv, in_channels, 8)


@pytest.mark.parametrize("name", CAN_BE_FINAL)
def test_final_conv_forward_backward(name: str) -> None:
    in_channels = 3 if name == "gated" else 8
    conv = build_conv(name, in_channels, 3, final=True, **ALL_OPTIONS)
    _forward_backward(conv, in_channels, 3)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_factory_accepts_every_option(name: str) -> None:
    conv = CONVS.get(name)(8, 8, final=False, unknown_option=1, **ALL_OPTIONS)
    assert isinstance(conv, nn.Module)


def test_only_gcnii_needs_x0() -> None:
    needs = {n for n in ALL_NAMES if getattr(build_conv(n, 8, 8), "needs_x0", False)}
    assert needs == set(GCNII)


def test_aggregations_document_every_conv() -> None:
    assert sorted(AGGREGATIONS) == ALL_NAMES


# --------------------------------------------------------------------------- gcn cache


def test_gcn_layers_share_one_cached_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    adjacency.clear_cache()
    built: list[Tensor] = []
    returned: list[Tensor] = []
    build, lookup = adjacency.normalized_adjacency, convs.gcn_adjacency

    def counting_build(*args: Any, **kwargs: Any) -> Tensor:
        built.append(build(*args, **kwargs))
        return built[-1]

    def recording_lookup(*args: Any, **kwargs: Any) -> Tensor:
        returned.append(lookup(*args, **kwargs))
        return returned[-1]

    monkeypatch.setattr(adjacency, "normalized_adjacency", counting_build)
    monkeypatch.setattr(convs, "gcn_adjacency", recording_lookup)
    first, second = build_conv("gcn", 5, 8), build_conv("gcn", 8, 8)
    gcnii = build_conv("gcn2", 8, 8)
    x = torch.randn(6, 5)
    h = second(first(x, CYCLE), CYCLE)
    gcnii(h, h, CYCLE)
    assert len(built) == 1 and len(returned) == 3
    assert returned[0] is returned[1] is returned[2] is built[0]
    assert adjacency.gcn_adjacency(CYCLE, 6) is built[0]
    # another edge_index object (a DropEdge sample) gets its own matrix
    first(x, CYCLE.clone())
    assert len(built) == 2 and returned[-1] is not built[0]


@pytest.mark.parametrize("shared", [True, False])
def test_gcn2_matches_pyg(shared: bool) -> None:
    torch.manual_seed(0)
    name = "gcn2" if shared else "gcn2-star"
    conv = build_conv(name, 8, 8, layer=3, alpha=0.2, theta=0.7)
    ref = GCN2Conv(8, alpha=0.2, theta=0.7, layer=3, shared_weights=shared, normalize=True)
    assert isinstance(conv, GCN2Conv) and (conv.weight2 is None) == shared
    ref.load_state_dict(conv.state_dict())
    assert conv.beta == ref.beta == pytest.approx(torch.log(torch.tensor(0.7 / 3 + 1)).item())
    x = torch.randn(6, 8, requires_grad=True)
    x0 = torch.randn(6, 8, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    x0_ref = x0.detach().clone().requires_grad_(True)
    out, expected = conv(x, x0, CYCLE), ref(x_ref, x0_ref, CYCLE)
    torch.testing.assert_close(out, expected)
    out.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(x0.grad, x0_ref.grad)
    torch.testing.assert_close(conv.weight1.grad, ref.weight1.grad)
    assert conv.normalize  # restored after the cached call


@pytest.mark.parametrize("name", ["gcn2", "gcn2-star", "gcn2-star-code"])
@pytest.mark.parametrize(("in_channels", "out_channels", "final"), [(5, 8, False), (8, 8, True)])
def test_gcn2_needs_linear_encoder_and_head(
    name: str, in_channels: int, out_channels: int, final: bool
) -> None:
    with pytest.raises(ConfigError) as info:
        build_conv(name, in_channels, out_channels, final=final)
    got = "a final layer" if final else "5 -> 8 channels"
    assert str(info.value) == (
        f"model.conv (--conv) {name} needs in_channels == out_channels and cannot be the "
        f"final layer, got {got}; use model.encoder=linear and model.head=linear"
    )


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("name", "cls"), [("gat", GATConv), ("gatv2", GATv2Conv), ("transformer", TransformerConv)]
)
def test_attention_head_semantics(name: str, cls: type[nn.Module]) -> None:
    hidden = build_conv(name, 5, 8, heads=4, attn_dropout=0.2)
    assert type(hidden) is cls
    assert (hidden.heads, hidden.out_channels, hidden.concat) == (4, 2, True)
    assert hidden.dropout == 0.2
    final = build_conv(name, 8, 3, final=True, heads=4, out_heads=2)
    assert (final.heads, final.out_channels, final.concat) == (2, 3, False)
    with pytest.raises(ConfigError, match=rf"divisible by model.heads \(3\) for {name}$"):
        build_conv(name, 5, 8, heads=3)


def test_gin_mlp_and_eps() -> None:
    conv = build_conv("gin", 5, 8)
    assert isinstance(conv, GINConv) and isinstance(conv.eps, nn.Parameter)
    layers = list(conv.nn)
    assert [type(m) for m in layers] == [nn.Linear, nn.ReLU, nn.Linear]
    assert (layers[0].in_features, layers[0].out_features) == (5, 8)
    assert (layers[2].in_features, layers[2].out_features) == (8, 8)


def test_cheb_order() -> None:
    conv = build_conv("cheb", 5, 8, cheb_k=4)
    assert len(conv.lins) == 4


def test_gen_options() -> None:
    softmax = build_conv("gen", 5, 8)
    assert isinstance(softmax, GENConv) and not hasattr(softmax, "msg_norm")
    assert isinstance(softmax.aggr_module.t, nn.Parameter)  # learn_t
    power = build_conv("gen", 5, 8, aggr="powermean", msg_norm=True)
    assert isinstance(power.aggr_module.p, nn.Parameter)  # learn_p
    assert power.msg_norm.scale.requires_grad  # learn_msg_scale


def test_gated_is_one_gru_step() -> None:
    conv = build_conv("gated", 5, 8)
    assert isinstance(conv, GatedGraphConv) and conv.num_layers == 1


@pytest.mark.parametrize("final", [False, True])
def test_gated_rejects_narrowing(final: bool) -> None:
    with pytest.raises(ConfigError) as info:
        build_conv("gated", 8, 3, final=final)
    assert str(info.value) == (
        "model.conv (--conv) gated needs in_channels <= out_channels (it zero-pads its input), "
        "got 8 > 3; use model.encoder=linear and model.head=linear"
    )


def test_mlp_ignores_the_graph() -> None:
    conv = build_conv("mlp", 5, 3)
    x = torch.randn(6, 5)
    expected = x @ conv.weight.t() + conv.bias
    torch.testing.assert_close(conv(x, CYCLE), expected)
    torch.testing.assert_close(conv(x, EDGE_INDEX[:, :0]), expected)


# --------------------------------------------------------------------------- aggregation


@pytest.mark.parametrize(
    ("conv", "aggr"),
    [(c, a) for c, allowed in AGGREGATIONS.items() for a in allowed]
    + [("unknown-conv", "anything"), ("SAGE", "max")],
)
def test_check_aggr_accepts(conv: str, aggr: str) -> None:
    check_aggr(conv, aggr)


@pytest.mark.parametrize(
    ("conv", "aggr", "message"),
    [
        ("gcn", "mean", "'mean' is not allowed: gcn has a fixed aggregation (sum)"),
        ("gat", "max", "'max' is not allowed: gat has a fixed aggregation (sum)"),
        ("gcn2-star", "min", "'min' is not allowed: gcn2-star has a fixed aggregation (sum)"),
        ("mlp", "sum", "'sum' is not allowed: mlp has a fixed aggregation (none)"),
        (
            "sage",
            "softmax",
            "'softmax' is not allowed for sage; choose one of: mean, max, sum, min",
        ),
        ("gin", "lstm", "'lstm' is not allowed for gin; choose one of: sum, mean, max, min"),
        (
            "gen",
            "median",
            "'median' is not allowed for gen; choose one of: "
            "softmax, powermean, sum, mean, max, min",
        ),
    ],
)
def test_check_aggr_rejects(conv: str, aggr: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_aggr(conv, aggr)
    assert str(info.value) == f"model.aggr (--aggr) {message}"
    # and the factory checks it too
    with pytest.raises(ConfigError) as info:
        build_conv(conv, 8, 8, aggr=aggr)
    assert str(info.value) == f"model.aggr (--aggr) {message}"


@pytest.mark.parametrize(
    ("name", "cls"), [("sage", SAGEConv), ("gin", GINConv), ("gated", GatedGraphConv)]
)
@pytest.mark.parametrize("aggr", ["sum", "mean", "max", "min"])
def test_aggr_reaches_the_layer(name: str, cls: type[nn.Module], aggr: str) -> None:
    conv = build_conv(name, 5, 8, aggr=aggr)
    assert isinstance(conv, cls) and conv.aggr == aggr
    _forward_backward(conv, 5, 8)


def test_default_aggregations() -> None:
    assert build_conv("sage", 5, 8).aggr == "mean"
    assert build_conv("gin", 5, 8).aggr in ("add", "sum")
    assert build_conv("gated", 5, 8).aggr == "sum"
    assert build_conv("gen", 5, 8).aggr == "softmax"


def _identity_sage(aggr: str) -> nn.Module:
    # out_i = aggr_{j -> i} x_j + x_i
    conv = build_conv("sage", 2, 2, aggr=aggr)
    with torch.no_grad():
        conv.lin_l.weight.copy_(torch.eye(2))
        conv.lin_l.bias.zero_()
        conv.lin_r.weight.copy_(torch.eye(2))
    return conv


# Star: centre 0, leaves 1, 2, 3, both directions.
STAR = torch.tensor([[1, 0, 2, 0, 3, 0], [0, 1, 0, 2, 0, 3]])
STAR_X = torch.tensor([[2.0, -3.0], [1.0, -2.0], [3.0, 5.0], [-1.0, 4.0]])


def test_sage_max_on_a_star_is_exact() -> None:
    out = _identity_sage("max")(STAR_X, STAR)
    # centre: max of the leaves (3, 5) + itself; each leaf: the centre + itself
    expected = torch.tensor([[5.0, 2.0], [3.0, -5.0], [5.0, 2.0], [1.0, 1.0]])
    assert torch.equal(out, expected)


def test_sage_mean_and_max_differ() -> None:
    mean = _identity_sage("mean")(STAR_X, STAR)
    maxed = _identity_sage("max")(STAR_X, STAR)
    # leaves have one neighbour, so only the centre differs: mean of leaves (1, 7/3)
    torch.testing.assert_close(mean[0], torch.tensor([3.0, 7.0 / 3.0 - 3.0]))
    assert torch.equal(mean[1:], maxed[1:])
    assert not torch.equal(mean[0], maxed[0])


@pytest.mark.parametrize("name", ["gcn2", "gcn2-star"])
def test_gcn2_fast_path_is_bit_identical_to_pyg_propagate(name: str) -> None:
    """Without hooks the conv skips PyG's ``propagate``; with one it runs it: same bits,
    forward and backward."""
    torch.manual_seed(0)
    conv = build_conv(name, 8, 8, layer=3, alpha=0.2, theta=0.7)
    edge_index = torch.randint(0, 40, (2, 200))
    x = torch.randn(40, 8)
    x0 = torch.randn(40, 8)
    results = []
    for hooked in (False, True):
        handle = conv.register_propagate_forward_hook(lambda *args: None) if hooked else None
        assert conv._hooked() == hooked
        xs = [t.clone().requires_grad_(True) for t in (x, x0)]
        conv.zero_grad()
        out = conv(xs[0], xs[1], edge_index)
        out.square().sum().backward()
        results.append([out.detach(), xs[0].grad, xs[1].grad, conv.weight1.grad.clone()])
        if handle is not None:
            handle.remove()
    for fast, slow in zip(*results, strict=True):
        assert torch.equal(fast, slow)


@pytest.mark.parametrize(
    ("channels", "msg_norm", "bipartite"),
    [((6, 6), False, False), ((5, 7), True, False), ((6, 6), False, True)],
)
def test_gen_softmax_runs_by_blocks_with_gen_convs_results(
    channels: tuple[int, int], msg_norm: bool, bipartite: bool
) -> None:
    """build_conv("gen") is a BlockedGENConv with the blocked softmax aggregation: the same
    parameters in the same order as PyG's GENConv, the same forward bits, gradients up to
    rounding (also with MsgNorm, different widths and a bipartite pair)."""
    from torch_geometric.nn.aggr import SoftmaxAggregation

    from fathom.nn.aggregations import BlockedSoftmaxAggregation

    torch.manual_seed(0)
    conv = build_conv("gen", *channels, msg_norm=msg_norm)
    assert isinstance(conv, convs.BlockedGENConv)
    assert isinstance(conv.aggr_module, BlockedSoftmaxAggregation)
    torch.manual_seed(0)
    ref = GENConv(
        *channels,
        aggr="softmax",
        learn_t=True,
        learn_p=True,
        msg_norm=msg_norm,
        learn_msg_scale=msg_norm,
    )
    assert type(ref.aggr_module) is SoftmaxAggregation
    assert [n for n, _ in conv.named_parameters()] == [n for n, _ in ref.named_parameters()]
    ref.load_state_dict(conv.state_dict())
    conv.eval(), ref.eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(40, channels[0], generator=gen)
    edge_index = torch.randint(0, 40, (2, 300), generator=gen)
    args: list[Any] = [x, edge_index]
    if bipartite:
        edge_index[1] %= 15
        args = [(x, x[:15]), edge_index, None, (40, 15)]
    out = conv(*args)
    expected = ref(*args)
    assert torch.equal(out, expected)
    out.square().sum().backward()
    expected.square().sum().backward()
    for (name, p), q in zip(conv.named_parameters(), ref.parameters(), strict=True):
        assert p.grad is not None and q.grad is not None, name
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize(
    ("options", "bipartite"),
    [
        ({}, False),
        ({}, True),
        ({"aggr": "sum"}, False),
        ({"aggr": "sum"}, True),
        ({"project": True, "normalize": True}, False),
        ({"project": True, "normalize": True}, True),
        ({"root_weight": False, "flow": "target_to_source"}, False),
    ],
)
def test_blocked_sage_is_sage_bit_for_bit(options: dict[str, Any], bipartite: bool) -> None:
    """BlockedSAGEConv gives SAGEConv's bits, forward and every gradient, on a graph and on
    a bipartite (sources, targets) pair with ``size``."""
    torch.manual_seed(0)
    conv = convs.BlockedSAGEConv(6, 5, **options)
    torch.manual_seed(0)
    ref = SAGEConv(6, 5, **options)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(50, 6, generator=gen)
    edge_index = torch.randint(0, 50, (2, 400), generator=gen)
    size = None
    if bipartite:
        edge_index[1] %= 20
        size = (50, 20)
    args = [(x, x[:20]) if bipartite else x, edge_index]
    if size is not None:
        args.append(size)
    out, expected = conv(*args), ref(*args)
    assert torch.equal(out, expected)
    out.square().sum().backward()
    expected.square().sum().backward()
    for (name, p), q in zip(conv.named_parameters(), ref.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), name


def test_blocked_sage_falls_back_for_max_and_hooks() -> None:
    conv = convs.BlockedSAGEConv(4, 3, aggr="max")
    x, edge_index = torch.randn(10, 4), torch.randint(0, 10, (2, 30))
    ref = SAGEConv(4, 3, aggr="max")
    ref.load_state_dict(conv.state_dict())
    assert torch.equal(conv(x, edge_index), ref(x, edge_index))
    seen: list[int] = []
    mean = convs.BlockedSAGEConv(4, 3)
    mean.register_propagate_forward_hook(lambda module, inputs, output: seen.append(1))
    mean(x, edge_index)
    assert seen == [1]
    assert isinstance(build_conv("sage", 4, 3), convs.BlockedSAGEConv)


@pytest.mark.parametrize(("aggr", "bipartite"), [("sum", False), ("sum", True), ("mean", False)])
def test_blocked_gin_is_gin_bit_for_bit(aggr: str, bipartite: bool) -> None:
    """build_conv("gin") / ("gin0") give GINConv's bits, forward and every gradient."""
    for name in ("gin", "gin0"):
        torch.manual_seed(0)
        conv = build_conv(name, 6, 5, aggr=aggr)
        assert isinstance(conv, convs.BlockedGINConv)
        ref = GINConv(conv.nn, train_eps=conv.eps.requires_grad, aggr=aggr)
        ref.eps = conv.eps  # the same parameter: compare one graph with another
        gen = torch.Generator().manual_seed(3)
        x = torch.randn(50, 6, generator=gen)
        edge_index = torch.randint(0, 50, (2, 400), generator=gen)
        if bipartite:
            edge_index[1] %= 20
        args = [(x, x[:20]) if bipartite else x, edge_index]
        out = conv(*args)
        grads = torch.autograd.grad(out.square().sum(), list(conv.parameters()))
        expected = ref(*args)
        expected_grads = torch.autograd.grad(expected.square().sum(), list(ref.parameters()))
        assert torch.equal(out, expected), name
        for g, e in zip(grads, expected_grads, strict=True):
            assert torch.equal(g, e), name
