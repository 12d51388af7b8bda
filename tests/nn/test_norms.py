"""Tests of fathom.nn.norms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fathom.errors import ConfigError
from fathom.nn.norms import NORMS, build_norm


def test_names() -> None:
    assert NORMS.names() == ["batch", "layer", "none"]


def test_batch() -> None:
    norm = build_norm("batch", 4)
    assert type(norm) is nn.BatchNorm1d
    assert norm.num_features == 4
    torch.manual_seed(0)
    x = torch.randn(10, 4) * 3 + 5
    out = norm(x)  # training mode: normalised over the nodes
    torch.testing.assert_close(out.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(0, unbiased=False), torch.ones(4), atol=1e-3, rtol=0)


def test_none_is_identity() -> None:
    norm = build_norm("none", 4)
    assert type(norm) is nn.Identity
    x = torch.randn(3, 4)
    assert norm(x) is x


def test_layer() -> None:
    norm = build_norm("layer", 4)
    assert type(norm) is nn.LayerNorm
    assert norm.normalized_shape == (4,)
    out = norm(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    torch.testing.assert_close(out.mean(1), torch.zeros(1), atol=1e-6, rtol=0)


def test_fresh_module_each_call() -> None:
    assert build_norm("batch", 3) is not build_norm("batch", 3)


def test_unknown() -> None:
    msg = "unknown norm 'group'; choose one of: batch, layer, none"
    with pytest.raises(ConfigError, match=msg):
        build_norm("group", 4)
