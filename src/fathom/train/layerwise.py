"""Greedy layer-wise training: train a few blocks, freeze them, grow, repeat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from fathom.config import TrainConfig
from fathom.errors import ConfigError
from fathom.models.deep_gnn import DeepGNN
from fathom.train.loop import EpochCallback, FitResult, Objective, fit

__all__ = ["fit_layerwise"]


def fit_layerwise(
    model: nn.Module,
    task: Objective,
    data: Any,
    cfg: TrainConfig,
    callbacks: Sequence[EpochCallback] = (),
) -> FitResult:
    """Train ``model`` greedily, ``cfg.layerwise`` blocks at a time.

    ``model`` is a :class:`~fathom.models.deep_gnn.DeepGNN` or holds one (a graph
    classifier's node stack, a link model's encoder): its blocks are grown. Stage ``s``
    activates the first ``s * cfg.layerwise`` blocks, freezes the blocks trained
    in earlier stages (and the encoder after the first stage) and trains the new blocks and
    the head with :func:`~fathom.train.loop.fit` (``cfg.epochs`` epochs, early stopping per
    stage), in the spirit of layer-wise pre-training (Bengio et al., NeurIPS 2006) applied to
    deep GNNs. Frozen blocks get no gradient; their dropout and BatchNorm statistics still
    follow train mode. The result has the final stage's metrics and every stage's history, each
    record tagged with its ``stage``.
    """
    root = model
    found = [m for m in model.modules() if isinstance(m, DeepGNN)]
    if not found:
        raise ConfigError(
            "train.layerwise needs a block stack (model.arch 'deep') to grow, got a "
            f"{type(model).__name__}"
        )
    model = found[0]  # the block stack inside a graph classifier or a link model
    step = cfg.layerwise
    if step < 1:
        raise ConfigError(f"train.layerwise must be >= 1 for layer-wise training, got {step}")
    if model.jk is not None:
        raise ConfigError(
            "train.layerwise cannot be combined with model.skip 'jk': the head's input "
            "width changes as blocks are added"
        )
    num_blocks = len(model.blocks)
    history: list[dict[str, float]] = []
    total_time, total_epochs, result = 0.0, 0, None
    active = 0
    for stage, end in enumerate(range(step, num_blocks + step, step), start=1):
        active = min(end, num_blocks)
        frozen = (stage - 1) * step  # every block trained in an earlier stage
        for i, block in enumerate(model.blocks):
            block.requires_grad_(i >= frozen)
        if model.encoder is not None:
            model.encoder.requires_grad_(stage == 1)
        model.active_blocks = active
        result = fit(root, task, data, cfg, callbacks)
        history.extend({**r, "stage": float(stage)} for r in result.history)
        total_time += result.time_s
        total_epochs += result.epochs
        if result.status != "done":
            break
    root.requires_grad_(True)
    model.active_blocks = None if result is None or result.status == "done" else active
    if result is None:  # no blocks: a single stage trains the head alone
        return fit(root, task, data, cfg, callbacks)
    result.history = history
    result.time_s = total_time
    result.epochs = total_epochs
    return result
