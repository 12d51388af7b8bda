"""Tests of fathom.nn.block: the wiring of conv -> norm -> act -> skip with identity stubs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from fathom.nn.block import GNNBlock
from fathom.nn.skips import NoSkip, Residual

EDGE_INDEX = torch.tensor([[0, 1], [1, 0]])
X = torch.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])


class IdentityConv(nn.Module):
    """``conv(x, edge_index) = x``; records what it was called with."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Tensor, Tensor]] = []

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        self.calls.append((x, edge_index))
        return x


class TakeFirst(nn.Module):
    """A width-changing conv stub: ``x[:, :2] * 3``."""

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return x[:, :2] * 3


class AddOne(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x + 1


class Double(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * 2


def _block(
    conv: nn.Module,
    skip: nn.Module,
    *,
    norm: nn.Module | None = None,
    act: nn.Module | None = None,
    **kw,
) -> GNNBlock:
    return GNNBlock(conv, norm or nn.Identity(), act or nn.Identity(), skip, **kw)


def test_identity_parts_with_residual_give_2x() -> None:
    conv = IdentityConv()
    block = _block(conv, Residual())
    assert torch.equal(block(X, EDGE_INDEX, [X]), 2 * X)
    assert conv.calls[0][1] is EDGE_INDEX  # the conv is called with the graph


def test_identity_parts_with_noskip_give_x() -> None:
    assert torch.equal(_block(IdentityConv(), NoSkip())(X, EDGE_INDEX, [X]), X)


def test_residual_uses_last_history_entry() -> None:
    prev = torch.full_like(X, 10.0)
    out = _block(IdentityConv(), Residual())(X, EDGE_INDEX, [torch.zeros_like(X), prev])
    assert torch.equal(out, X + 10.0)


def test_order_is_norm_then_act() -> None:
    # act(norm(conv(x))) = (x + 1) * 2; the reverse order would give 2x + 1.
    out = _block(IdentityConv(), NoSkip(), norm=AddOne(), act=Double())(X, EDGE_INDEX, [X])
    assert torch.equal(out, (X + 1) * 2)
    # The skip is added after the activation: (x + 1) * 2 + x.
    out = _block(IdentityConv(), Residual(), norm=AddOne(), act=Double())(X, EDGE_INDEX, [X])
    assert torch.equal(out, (X + 1) * 2 + X)


def test_residual_bypassed_when_widths_differ() -> None:
    block = _block(TakeFirst(), Residual(), same_width=False)
    assert block.use_skip is False
    assert torch.equal(block(X, EDGE_INDEX, [X]), X[:, :2] * 3)


def test_noskip_kept_when_widths_differ() -> None:
    block = _block(TakeFirst(), NoSkip(), same_width=False)
    assert block.use_skip is True
    assert torch.equal(block(X, EDGE_INDEX, [X]), X[:, :2] * 3)


def test_dropout_on_the_conv_input_only() -> None:
    conv = IdentityConv()
    block = _block(conv, Residual(), dropout=0.5)
    x = torch.ones(50, 4)
    torch.manual_seed(0)
    out = block(x, EDGE_INDEX, [x])
    seen = conv.calls[-1][0]
    assert set(seen.unique().tolist()) == {0.0, 2.0}  # dropped / kept and scaled by 2
    assert torch.equal(out, seen + x)  # the skip adds the un-dropped input
    block.eval()
    assert torch.equal(block(x, EDGE_INDEX, [x]), 2 * x)


def test_reset_parameters_resets_conv_and_norm() -> None:
    conv, norm = nn.Linear(2, 2), nn.BatchNorm1d(2)
    calls: list[str] = []
    conv.reset_parameters = lambda: calls.append("conv")  # type: ignore[method-assign]
    norm.reset_parameters = lambda: calls.append("norm")  # type: ignore[method-assign]
    GNNBlock(conv, norm, nn.ReLU(), NoSkip()).reset_parameters()
    assert calls == ["conv", "norm"]


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_invalid_dropout(p: float) -> None:
    with pytest.raises(ValueError):
        _block(IdentityConv(), NoSkip(), dropout=p)
