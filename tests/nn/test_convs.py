"""Tests of fathom.nn.convs."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GATConv, GCNConv

from fathom.errors import ConfigError
from fathom.nn.convs import CONVS, build_conv

# Star-ish graph 0-1, 1-2, 1-3 stored in both directions.
EDGE_INDEX = torch.tensor([[0, 1, 1, 2, 1, 3], [1, 0, 2, 1, 3, 1]])
NUM_NODES = 4


def test_names() -> None:
    assert CONVS.names() == ["gat", "gcn"]


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


def test_unknown_conv() -> None:
    with pytest.raises(ConfigError, match="unknown conv 'sage'; choose one of: gat, gcn"):
        build_conv("sage", 3, 2)


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
