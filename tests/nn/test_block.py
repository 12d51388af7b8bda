"""Tests of fathom.nn.block: the wiring of conv -> norm -> act -> skip with identity stubs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from fathom.nn.block import GNNBlock
from fathom.nn.skips import DenseSkip, NoSkip, PreActResidual, Residual, build_skip

EDGE_INDEX = torch.tensor([[0, 1], [1, 0]])
X = torch.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])


def _res(channels: int = 3, history_widths: list[int] | None = None) -> Residual:
    widths = history_widths or [channels]
    return Residual(channels, layer=len(widths), history_widths=widths)


def _none(channels: int = 3, history_widths: list[int] | None = None) -> NoSkip:
    widths = history_widths or [channels]
    return NoSkip(channels, layer=len(widths), history_widths=widths)


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


class Logged(nn.Module):
    """Applies ``fn`` and appends ``name`` to a shared log (call order of the block's parts)."""

    def __init__(self, name: str, log: list[str], fn=lambda x: x) -> None:
        super().__init__()
        self.name, self.log, self.fn = name, log, fn

    def forward(self, x: Tensor, *args: Tensor) -> Tensor:
        self.log.append(self.name)
        return self.fn(x)


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
    block = _block(conv, _res())
    assert torch.equal(block(X, EDGE_INDEX, [X]), 2 * X)
    assert conv.calls[0][1] is EDGE_INDEX  # the conv is called with the graph


def test_identity_parts_with_noskip_give_x() -> None:
    assert torch.equal(_block(IdentityConv(), _none())(X, EDGE_INDEX, [X]), X)


def test_residual_uses_last_history_entry() -> None:
    prev = torch.full_like(X, 10.0)
    skip = _res(history_widths=[3, 3])
    out = _block(IdentityConv(), skip)(X, EDGE_INDEX, [torch.zeros_like(X), prev])
    assert torch.equal(out, X + 10.0)


def test_order_is_norm_then_act() -> None:
    # act(norm(conv(x))) = (x + 1) * 2; the reverse order would give 2x + 1.
    out = _block(IdentityConv(), _none(), norm=AddOne(), act=Double())(X, EDGE_INDEX, [X])
    assert torch.equal(out, (X + 1) * 2)
    # The skip is added after the activation: (x + 1) * 2 + x.
    out = _block(IdentityConv(), _res(), norm=AddOne(), act=Double())(X, EDGE_INDEX, [X])
    assert torch.equal(out, (X + 1) * 2 + X)


def test_post_activation_call_order() -> None:
    log: list[str] = []
    block = _block(
        Logged("conv", log),
        _none(),
        norm=Logged("norm", log),
        act=Logged("act", log),
    )
    block.dropout = Logged("dropout", log)  # type: ignore[assignment]
    assert block.pre_activation is False
    block(X, EDGE_INDEX, [X])
    assert log == ["dropout", "conv", "norm", "act"]


def test_pre_activation_call_order_and_shortcut() -> None:
    log: list[str] = []
    skip = build_skip("res+", 3, layer=1, history_widths=[3])
    assert isinstance(skip, PreActResidual) and skip.active
    block = _block(
        Logged("conv", log, lambda x: x * 10),
        skip,
        norm=Logged("norm", log, lambda x: x + 1),
        act=Logged("act", log, lambda x: x * 2),
    )
    block.dropout = Logged("dropout", log, lambda x: x - 3)  # type: ignore[assignment]
    assert block.pre_activation is True
    out = block(X, EDGE_INDEX, [X])
    assert log == ["norm", "act", "dropout", "conv"]
    # h = conv(dropout(act(norm(x)))) = ((x + 1) * 2 - 3) * 10; the shortcut adds the raw x.
    assert torch.equal(out, ((X + 1) * 2 - 3) * 10 + X)


def test_pre_activation_dropout_after_act_before_conv() -> None:
    conv = IdentityConv()
    skip = PreActResidual(4, layer=1, history_widths=[4])
    block = _block(conv, skip, norm=AddOne(), dropout=0.5)
    x = torch.zeros(50, 4)
    torch.manual_seed(0)
    out = block(x, EDGE_INDEX, [x])
    seen = conv.calls[-1][0]
    # dropout acts on norm(x) = 1: entries are dropped (0) or kept and scaled (2).
    assert set(seen.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(out, seen + x)


class X0Conv(nn.Module):
    """A ``needs_x0`` conv stub: ``x + 100 * x_0``; records its arguments."""

    needs_x0 = True

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Tensor, Tensor, Tensor]] = []

    def forward(self, x: Tensor, x_0: Tensor, edge_index: Tensor) -> Tensor:
        self.calls.append((x, x_0, edge_index))
        return x + 100 * x_0


def test_needs_x0_conv_receives_first_history_entry() -> None:
    conv = X0Conv()
    block = _block(conv, _none(history_widths=[3, 3, 3]))
    assert block.needs_x0 is True
    x0, x1, x2 = X, X * 2, X * 3
    out = block(x2, EDGE_INDEX, [x0, x1, x2])
    x, seen_x0, ei = conv.calls[0]
    assert x is x2 and seen_x0 is x0 and ei is EDGE_INDEX
    assert torch.equal(out, x2 + 100 * x0)


def test_needs_x0_in_pre_activation_order() -> None:
    conv = X0Conv()
    skip = PreActResidual(3, layer=2, history_widths=[3, 3])
    x0, x1 = X, X * 2
    out = _block(conv, skip, act=Double())(x1, EDGE_INDEX, [x0, x1])
    assert conv.calls[0][1] is x0  # x_0 is passed un-normalised, un-activated
    assert torch.equal(out, 2 * x1 + 100 * x0 + x1)


def test_plain_conv_does_not_need_x0() -> None:
    assert _block(IdentityConv(), _none()).needs_x0 is False


def test_residual_bypassed_when_widths_differ() -> None:
    skip = _res(2, history_widths=[3])  # x_0 has 3 features, the conv outputs 2
    assert skip.active is False
    block = _block(TakeFirst(), skip)
    assert torch.equal(block(X, EDGE_INDEX, [X]), X[:, :2] * 3)


def test_noskip_kept_when_widths_differ() -> None:
    skip = _none(2, history_widths=[3])
    assert skip.active is True
    block = _block(TakeFirst(), skip)
    assert torch.equal(block(X, EDGE_INDEX, [X]), X[:, :2] * 3)


def test_pre_activation_residual_bypassed_when_widths_differ() -> None:
    skip = build_skip("res+", 2, layer=1, history_widths=[3])
    assert skip.active is False
    block = _block(TakeFirst(), skip, norm=AddOne())
    assert torch.equal(block(X, EDGE_INDEX, [X]), (X[:, :2] + 1) * 3)


def test_dropout_on_the_conv_input_only() -> None:
    conv = IdentityConv()
    block = _block(conv, _res(4), dropout=0.5)
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
    GNNBlock(conv, norm, nn.ReLU(), _none(2)).reset_parameters()
    assert calls == ["conv", "norm"]


def test_reset_parameters_resets_a_skip_with_parameters() -> None:
    skip = DenseSkip(2, layer=1, history_widths=[2])
    calls: list[str] = []
    skip.reset_parameters = lambda: calls.append("skip")  # type: ignore[method-assign]
    GNNBlock(nn.Linear(2, 2), nn.Identity(), nn.ReLU(), skip).reset_parameters()
    assert calls == ["skip"]


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_invalid_dropout(p: float) -> None:
    with pytest.raises(ValueError):
        _block(IdentityConv(), _none(), dropout=p)
