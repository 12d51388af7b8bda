"""Activation functions by name."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from fathom.registry import Registry

__all__ = ["ACTIVATIONS", "build_activation"]

ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry("activation")
ACTIVATIONS.add("relu", nn.ReLU)
ACTIVATIONS.add("elu", nn.ELU)
ACTIVATIONS.add("gelu", nn.GELU)
ACTIVATIONS.add("leaky_relu", lambda: nn.LeakyReLU(0.2))
ACTIVATIONS.add("tanh", nn.Tanh)
ACTIVATIONS.add("identity", nn.Identity)


def build_activation(name: str) -> nn.Module:
    """A fresh activation module for ``name`` (unknown names list the choices)."""
    return ACTIVATIONS.get(name)()
