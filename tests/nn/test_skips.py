"""Tests of fathom.nn.skips."""

from __future__ import annotations

import pytest
import torch

from fathom.errors import ConfigError
from fathom.nn.skips import SKIPS, NoSkip, Residual, build_skip

H = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
A = torch.tensor([[10.0, 20.0], [30.0, 40.0]])
B = torch.tensor([[100.0, 200.0], [300.0, 400.0]])


def test_names() -> None:
    assert SKIPS.names() == ["none", "res"]
    assert type(build_skip("none")) is NoSkip
    assert type(build_skip("RES")) is Residual


def test_noskip_returns_h() -> None:
    assert torch.equal(NoSkip()(H, [A, B]), H)
    assert NoSkip.needs_same_width is False


def test_residual_adds_last_history_entry() -> None:
    assert torch.equal(Residual()(H, [A]), H + A)
    assert torch.equal(Residual()(H, [A, B]), torch.tensor([[101.0, 202.0], [303.0, 404.0]]))
    assert Residual.needs_same_width is True


def test_residual_gradient_flows_to_both() -> None:
    h = H.clone().requires_grad_()
    prev = A.clone().requires_grad_()
    Residual()(h, [prev]).sum().backward()
    assert torch.equal(h.grad, torch.ones_like(H))
    assert torch.equal(prev.grad, torch.ones_like(A))


def test_unknown() -> None:
    with pytest.raises(ConfigError, match="unknown skip 'dense'; choose one of: none, res"):
        build_skip("dense")
