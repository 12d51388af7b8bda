"""Optimisers built from a :class:`~fathom.config.TrainConfig`."""

from __future__ import annotations

import torch
from torch import nn

from fathom.config import TrainConfig

__all__ = ["build_optimizer"]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam with L2 weight decay on every parameter."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
