"""Data-parallel training on several processes: DDP around the model, an objective whose
every decision is the same on every rank, and a test-only fault hook.

``fit`` itself does not know it runs on several ranks. :func:`wrap_model` puts the model in
:class:`~torch.nn.parallel.DistributedDataParallel` (gradients averaged over the ranks by
all-reduce in the backward pass; rank 0's weights broadcast at the start), and
:class:`DistributedObjective` wraps the task's objective so that the ranks never disagree:

- the loader shards every epoch (:mod:`fathom.loaders.shard`), so every rank steps the same
  number of times;
- a non-finite batch loss on any rank makes the loss non-finite on every rank (one
  all-reduce of a flag per batch), so all stop as ``diverged`` at the same batch instead of
  some waiting forever in the next all-reduce;
- rank 0 alone evaluates (on the unwrapped model, no collective inside) and broadcasts the
  metrics: early stopping, ``done`` and the best epoch are decided from the same record on
  every rank; the record's training loss is the mean over every rank's batches.

With equal shards, averaged gradients are those of the loss over the union of the shards,
so one step on ``W`` ranks of ``batch_size`` seeds each equals one step of one process on
the ``W * batch_size`` seeds (``tests/train/test_distributed.py`` checks it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from fathom import distributed
from fathom.errors import ConfigError
from fathom.train.loop import EpochCallback, Objective, full_batch

__all__ = [
    "FAULT_ENV",
    "FAULT_EXIT_CODE",
    "DistributedObjective",
    "fault_injection",
    "unwrap",
    "wrap_model",
]

FAULT_ENV = "_FATHOM_TEST_KILL_RANK_AT_EPOCH"
"""Test-only fault injection: ``RANK:EPOCH`` makes that rank ``os._exit`` right after that
epoch's evaluation (before its state is saved), as a crashed machine would. The leading
underscore and the exact ``int:int`` form keep it from being set by accident; anything else
in it is refused in one line."""

FAULT_EXIT_CODE = 86
"""Exit status of a rank killed by :data:`FAULT_ENV`."""


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` (on ``device``:
    one GPU per rank, or the CPU), or itself without a process group of several ranks."""
    if distributed.world_size() == 1:
        return model
    if device.type == "cuda":
        return DistributedDataParallel(model, device_ids=[device.index], output_device=device.index)
    return DistributedDataParallel(model)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (``model`` itself otherwise)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


class DistributedObjective:
    """``inner`` trained on several ranks in lockstep (see the module docstring).

    Every attribute not defined here (``default_monitor``, ``done``, ``loader`` …) is
    ``inner``'s. Without a process group of several ranks it adds nothing: the loss and
    metrics are ``inner``'s.
    """

    def __init__(self, inner: Objective) -> None:
        self.inner = inner
        self._weight = 1.0
        self._sum = 0.0
        self._count = 0.0

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def batches(self, data: Any) -> Iterator[tuple[Any, float]]:
        """``inner``'s batches, remembering each one's weight for the epoch's mean loss."""
        self._sum = self._count = 0.0
        for batch, weight in getattr(self.inner, "batches", full_batch)(data):
            self._weight = weight
            yield batch, weight

    def loss(self, model: nn.Module, batch: Any) -> Tensor:
        """``inner``'s loss; non-finite on every rank when it is on any."""
        loss = self.inner.loss(model, batch)
        value = loss.item()
        if distributed.world_size() > 1:
            bad = torch.tensor([0.0 if math.isfinite(value) else 1.0], device=loss.device)
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
            if bad.item():
                return loss * float("nan")
        self._sum += value * self._weight
        self._count += self._weight
        return loss

    def evaluate(self, model: nn.Module, data: Any) -> dict[str, float]:
        """Rank 0's metrics of the unwrapped model, on every rank, with ``loss`` the mean
        training loss of the epoch over every rank's batches."""
        if distributed.world_size() == 1:
            return self.inner.evaluate(unwrap(model), data)
        device = next(model.parameters()).device
        totals = torch.tensor([self._sum, self._count], dtype=torch.float64, device=device)
        dist.all_reduce(totals)
        metrics = self.inner.evaluate(unwrap(model), data) if distributed.is_main() else None
        metrics = distributed.broadcast_object(metrics)
        return {**metrics, "loss": float(totals[0] / totals[1].clamp(min=1e-12))}


def fault_injection(environ: dict[str, str] | None = None) -> EpochCallback | None:
    """The epoch callback of :data:`FAULT_ENV` (``None`` when it is not set).

    Raises:
        ConfigError: the variable is set but not ``RANK:EPOCH`` (non-negative integers).
    """
    text = (os.environ if environ is None else environ).get(FAULT_ENV)
    if not text:
        return None
    rank_text, _, epoch_text = text.partition(":")
    if not (rank_text.isdigit() and epoch_text.isdigit()):
        raise ConfigError(f"${FAULT_ENV} must be RANK:EPOCH (test-only), got {text!r}")
    rank, epoch = int(rank_text), int(epoch_text)

    def kill(record: dict[str, float]) -> None:
        if distributed.rank() == rank and int(record["epoch"]) == epoch:
            os._exit(FAULT_EXIT_CODE)

    return kill
