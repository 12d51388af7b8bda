"""Tests of fathom.nn.norms."""

from __future__ import annotations

import pytest
import torch
import torch_geometric.nn as pyg_nn
from torch import nn

from fathom.errors import ConfigError
from fathom.nn.norms import NORMS, NodeNorm, PairNorm, build_norm

ALL = [
    "batch",
    "batch-stats",
    "graph",
    "group",
    "layer",
    "mean",
    "node",
    "none",
    "pair",
    "pair-scs",
    "pair-si",
]

# hand-built features: 4 nodes, 3 channels, non-zero column means and unequal row norms
X = torch.tensor(
    [
        [1.0, 2.0, 3.0],
        [4.0, 0.0, -1.0],
        [0.0, 5.0, 2.0],
        [-2.0, 1.0, 7.0],
    ]
)


def test_names() -> None:
    assert NORMS.names() == ALL


@pytest.mark.parametrize("name", ALL)
def test_every_norm_builds_keeps_shape_and_ignores_unknown_options(name: str) -> None:
    norm = build_norm(name, 3, scale=2.0, groups=2, not_a_norm_option=True)
    assert isinstance(norm, nn.Module)
    out = norm(X)
    assert out.shape == X.shape
    assert torch.isfinite(out).all()


def test_fresh_module_each_call() -> None:
    assert build_norm("batch", 3) is not build_norm("batch", 3)


def test_unknown() -> None:
    msg = (
        "unknown norm 'instance'; choose one of: batch, batch-stats, graph, group, layer, "
        "mean, node, none, pair, pair-scs, pair-si"
    )
    with pytest.raises(ConfigError, match=msg):
        build_norm("instance", 4)


def test_none_is_identity() -> None:
    norm = build_norm("none", 4)
    assert type(norm) is nn.Identity
    x = torch.randn(3, 4)
    assert norm(x) is x


def test_batch() -> None:
    norm = build_norm("batch", 4)
    assert type(norm) is nn.BatchNorm1d
    assert norm.num_features == 4
    torch.manual_seed(0)
    x = torch.randn(10, 4) * 3 + 5
    out = norm(x)  # training mode: normalised over the nodes
    torch.testing.assert_close(out.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(0, unbiased=False), torch.ones(4), atol=1e-3, rtol=0)


def test_batch_stats_evaluates_with_the_batchs_statistics() -> None:
    """``batch-stats`` normalises over the nodes in evaluation as in training (no running
    averages), so a full-graph evaluation sees the trained model; ``batch`` does not."""
    torch.manual_seed(0)
    x = torch.randn(10, 4) * 3 + 5
    stats, running = build_norm("batch-stats", 4), build_norm("batch", 4)
    assert stats.running_mean is None
    trained = stats(x)
    running(x)
    stats.eval(), running.eval()
    assert torch.equal(stats(x), trained)
    assert not torch.allclose(running(x), trained, atol=1e-2)


def test_layer() -> None:
    norm = build_norm("layer", 4)
    assert type(norm) is nn.LayerNorm
    assert norm.normalized_shape == (4,)
    out = norm(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    torch.testing.assert_close(out.mean(1), torch.zeros(1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_pair_pn(scale: float) -> None:
    norm = build_norm("PAIR", 3, scale=scale)
    assert isinstance(norm, PairNorm) and norm.mode == "PN" and norm.scale == scale
    out = norm(X)
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    mean_sq_row_norm = out.pow(2).sum(1).mean()
    torch.testing.assert_close(mean_sq_row_norm, torch.tensor(scale**2), atol=0, rtol=1e-5)
    # the formula by hand: centre, divide by the root mean squared row norm
    xc = X - X.mean(0)
    torch.testing.assert_close(out, scale * xc / xc.pow(2).sum(1).mean().sqrt(), rtol=1e-5, atol=0)


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_pair_si_rows_have_norm_s_after_centering(scale: float) -> None:
    out = build_norm("pair-si", 3, scale=scale)(X)
    # the first centred row is short ([0.25, 0, 0.25]), so eps = 1e-5 shows at 3e-5 relative
    torch.testing.assert_close(out.norm(dim=1), torch.full((4,), scale), atol=0, rtol=1e-4)
    xc = X - X.mean(0)
    expected = scale * xc / (1e-5 + xc.norm(dim=1, keepdim=True))
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_pair_scs_scales_rows_then_centres(scale: float) -> None:
    out = build_norm("pair-scs", 3, scale=scale)(X)
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    scaled = scale * X / X.norm(dim=1, keepdim=True)  # rows of norm s before centring
    torch.testing.assert_close(scaled.norm(dim=1), torch.full((4,), scale), atol=0, rtol=1e-6)
    torch.testing.assert_close(out, scaled - scaled.mean(0), rtol=1e-5, atol=1e-5)
    # centring moves rows by the same vector, so pairwise differences are those of ``scaled``
    torch.testing.assert_close(out[0] - out[1], scaled[0] - scaled[1], rtol=1e-5, atol=1e-5)


def test_pair_on_a_smoothed_graph_stays_finite() -> None:
    # identical rows (complete over-smoothing) centre to zero: eps keeps PN finite
    x = torch.ones(5, 3)
    for mode in PairNorm.MODES:
        out = PairNorm(mode=mode)(x)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, torch.zeros(5, 3), atol=1e-5, rtol=0)


def test_pair_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="PN-XYZ"):
        PairNorm(mode="PN-XYZ")


def test_node_rows_have_mean_zero_and_std_one() -> None:
    norm = build_norm("node", 3)
    assert isinstance(norm, NodeNorm)
    out = norm(X)
    torch.testing.assert_close(out.mean(1), torch.zeros(4), atol=1e-6, rtol=0)
    torch.testing.assert_close(out.std(1, unbiased=False), torch.ones(4), atol=1e-5, rtol=0)
    # by hand for the first row [1, 2, 3]: mean 2, population variance 2/3
    expected = torch.tensor([-1.0, 0.0, 1.0]) / (2 / 3 + 1e-5) ** 0.5
    torch.testing.assert_close(out[0], expected)


def test_node_constant_row_maps_to_zero() -> None:
    out = NodeNorm()(torch.full((2, 4), 3.0))
    torch.testing.assert_close(out, torch.zeros(2, 4))


def test_mean_zero_column_means() -> None:
    out = build_norm("mean", 3)(X)
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(out, X - torch.tensor([0.75, 2.0, 2.75]))


def test_group_builds_with_groups() -> None:
    norm = build_norm("group", 3, groups=4)
    assert isinstance(norm, pyg_nn.DiffGroupNorm)
    assert norm.groups == 4 and norm.in_channels == 3
    assert build_norm("group", 3).groups == 10  # the default
    assert norm(X).shape == (4, 3)


def test_graph_normalises_the_single_graph() -> None:
    norm = build_norm("graph", 3)
    assert isinstance(norm, pyg_nn.GraphNorm)
    out = norm(X)  # fresh parameters: gamma = 1, beta = 0, alpha = 1 -> column standardising
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(0, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
