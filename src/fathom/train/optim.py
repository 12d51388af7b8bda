"""Optimisers built from a :class:`~fathom.config.TrainConfig`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch_geometric.nn.conv import MessagePassing

from fathom.config import TrainConfig

__all__ = ["build_optimizer", "parameter_groups"]


def parameter_groups(
    model: nn.Module, weight_decay: float, conv_weight_decay: float | None
) -> list[dict[str, Any]]:
    """Adam parameter groups: message-passing layers (every PyG ``MessagePassing`` module)
    get ``conv_weight_decay``, everything else (encoders, heads, norms) ``weight_decay``.

    GCNII (Chen et al., ICML 2020) regularises its convolutions with 0.01 and its dense
    layers with 5e-4. Frozen parameters (``requires_grad=False``) are left out. With
    ``conv_weight_decay=None`` there is a single group.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    if conv_weight_decay is None:
        return [{"params": trainable, "weight_decay": weight_decay}]
    conv_ids = {
        id(p)
        for module in model.modules()
        if isinstance(module, MessagePassing)
        for p in module.parameters()
    }
    conv = [p for p in trainable if id(p) in conv_ids]
    dense = [p for p in trainable if id(p) not in conv_ids]
    groups = [
        {"params": conv, "weight_decay": conv_weight_decay},
        {"params": dense, "weight_decay": weight_decay},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam with L2 weight decay, per :func:`parameter_groups`."""
    groups = parameter_groups(model, cfg.weight_decay, cfg.conv_weight_decay)
    return torch.optim.Adam(groups, lr=cfg.lr)
