"""Tests of fathom.nn.activations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fathom.errors import ConfigError
from fathom.nn.activations import ACTIVATIONS, build_activation

X = torch.tensor([-1.0, 0.0, 2.0])


def test_names() -> None:
    assert ACTIVATIONS.names() == ["elu", "gelu", "identity", "leaky_relu", "relu", "tanh"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("relu", [0.0, 0.0, 2.0]),
        ("identity", [-1.0, 0.0, 2.0]),
        ("leaky_relu", [-0.2, 0.0, 2.0]),
        ("elu", [math.exp(-1.0) - 1.0, 0.0, 2.0]),
        ("tanh", [math.tanh(-1.0), 0.0, math.tanh(2.0)]),
        (
            "gelu",
            [
                -1.0 * 0.5 * (1 + math.erf(-1 / math.sqrt(2))),
                0.0,
                2.0 * 0.5 * (1 + math.erf(2 / math.sqrt(2))),
            ],
        ),
    ],
)
def test_values(name: str, expected: list[float]) -> None:
    out = build_activation(name)(X)
    torch.testing.assert_close(out, torch.tensor(expected), rtol=1e-6, atol=1e-6)


def test_fresh_module_each_call() -> None:
    a, b = build_activation("relu"), build_activation("relu")
    assert isinstance(a, nn.ReLU) and a is not b
    assert isinstance(build_activation("IDENTITY"), nn.Identity)


def test_unknown() -> None:
    with pytest.raises(ConfigError, match="unknown activation 'swish'; choose one of: elu"):
        build_activation("swish")
