"""Tests of fathom.models.inception.IncepGCN."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch_geometric.nn import GCNConv

from fathom.models.inception import IncepGCN

IN, HIDDEN, OUT, N = 6, 8, 3, 30


def _graph(n: int = N) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, IN, generator=g)
    i = torch.arange(n)
    ring = torch.stack([i, (i + 1) % n])
    edge_index = torch.cat([ring, ring.flip(0)], dim=1)
    return x, edge_index


def test_depth_2_is_a_two_layer_gcn() -> None:
    torch.manual_seed(0)
    model = IncepGCN(IN, HIDDEN, OUT, depth=2, dropout=0.5).eval()
    assert len(model.branches) == 0
    assert model.input_conv.lin.weight.shape == (HIDDEN, IN)
    assert model.output_conv.lin.weight.shape == (OUT, HIDDEN)
    x, edge_index = _graph()
    # same weights in PyG's GCNConv (message passing, no cache) give the same logits
    conv1, conv2 = GCNConv(IN, HIDDEN), GCNConv(HIDDEN, OUT)
    conv1.load_state_dict(model.input_conv.state_dict())
    conv2.load_state_dict(model.output_conv.state_dict())
    expected = conv2(conv1(x, edge_index).relu(), edge_index)
    torch.testing.assert_close(model(x, edge_index), expected, atol=1e-5, rtol=1e-5)


def test_depth_5_branches_and_shapes() -> None:
    model = IncepGCN(IN, HIDDEN, OUT, depth=5)
    # branches of 1, 2 and 3 layers: quadratic in depth
    assert [len(b) for b in model.branches] == [1, 2, 3]
    for branch in model.branches:
        for conv in branch:
            assert conv.lin.weight.shape == (HIDDEN, HIDDEN)
    assert model.output_conv.lin.weight.shape == (OUT, 4 * HIDDEN)
    assert sum(1 for m in model.modules() if isinstance(m, GCNConv)) == 1 + 6 + 1


@pytest.mark.parametrize("depth", [2, 5])
def test_forward_backward_finite(depth: int) -> None:
    torch.manual_seed(0)
    model = IncepGCN(IN, HIDDEN, OUT, depth=depth, dropout=0.5)
    x, edge_index = _graph()
    out = model(x, edge_index)
    assert out.shape == (N, OUT)
    out.square().mean().backward()
    for p in model.parameters():
        assert p.grad is not None and p.grad.isfinite().all()
    before = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()
    # weights are redrawn (biases start at zero and stay zero)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    model = IncepGCN(IN, HIDDEN, OUT, depth=4, dropout=0.5)
    x, edge_index = _graph()
    model.eval()
    assert torch.equal(model(x, edge_index), model(x, edge_index))
    model.train()
    assert not torch.equal(model(x, edge_index), model(x, edge_index))


def test_depth_below_2_raises() -> None:
    with pytest.raises(ValueError, match="depth must be >= 2"):
        IncepGCN(IN, HIDDEN, OUT, depth=1)


def test_defaults_are_plain_gcn_layers_and_options_reach_every_layer() -> None:
    from fathom.nn.convs import CachedGCNConv
    from fathom.nn.propagation import DropEdgeGCNConv

    plain = IncepGCN(4, 6, 3, depth=4)
    convs = [plain.input_conv, *(c for b in plain.branches for c in b), plain.output_conv]
    assert all(type(c) is CachedGCNConv for c in convs)
    assert all(isinstance(n, torch.nn.Identity) for n in [plain.input_norm, plain.output_norm])
    dropedge = IncepGCN(4, 6, 3, depth=4, root_weight=True, adj_norm="sym+i", norm="batch")
    convs = [dropedge.input_conv, *(c for b in dropedge.branches for c in b), dropedge.output_conv]
    assert all(isinstance(c, DropEdgeGCNConv) and c.lin_root is not None for c in convs)
    assert all(c.adj_norm == "sym+i" for c in convs)
    norms = [dropedge.input_norm, *(n for ns in dropedge.branch_norms for n in ns)]
    assert len(norms) == 1 + 1 + 2 and all(isinstance(n, torch.nn.BatchNorm1d) for n in norms)
    assert isinstance(dropedge.output_norm, torch.nn.Identity)  # head_norm off
    x = torch.randn(5, 4)
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    assert dropedge(x, ei).shape == (5, 3)
    dropedge.reset_parameters()


def test_drop_edge_thins_the_graph_of_every_layer_in_training_only() -> None:
    """DropEdge (``model.drop_edge``): one sample per forward pass, shared by every GCN
    layer, resampled every call in training mode; eval mode sees the whole graph."""
    from fathom.config import ModelConfig
    from fathom.models.build import build_model

    torch.manual_seed(0)
    model = build_model(
        ModelConfig(arch="incep", depth=4, hidden=HIDDEN, dropout=0.0, drop_edge=0.5), IN, OUT
    )
    assert isinstance(model, IncepGCN) and model.drop_edge == 0.5
    seen: list[int] = []
    convs = [m for m in model.modules() if isinstance(m, GCNConv)]
    for conv in convs:
        conv.register_forward_pre_hook(lambda _m, args: seen.append(args[1].size(1)))
    x, edge_index = _graph()
    model.train()
    model(x, edge_index)
    first = seen[:]
    assert len(set(first)) == 1 and 0 < first[0] < edge_index.size(1)  # one sample, thinned
    seen.clear()
    model(x, edge_index)
    model.eval()
    model(x, edge_index)
    assert seen[len(convs) :] == [edge_index.size(1)] * len(convs)  # eval: the whole graph
    without = build_model(ModelConfig(arch="incep", depth=4, hidden=HIDDEN), IN, OUT)
    assert without.drop_edge == 0.0


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"model.arch": "appnp", "model.drop_edge": 0.3}, "applies to model.arch deep or incep"),
        ({"model.arch": "incep", "model.drop_node": 0.3}, "applies to model.arch deep, not"),
    ],
)
def test_drop_options_refused_where_they_are_not_read(
    overrides: dict[str, object], fragment: str
) -> None:
    from fathom.config import ExperimentConfig, apply_overrides
    from fathom.errors import ConfigError

    with pytest.raises(ConfigError, match=fragment):
        apply_overrides(ExperimentConfig(), overrides)
