"""One model-agnostic training loop for every task: ``fit`` = epochs of ``batches -> loss ->
step``, then ``evaluate``, with early stopping on the best checkpoint.

Full-batch training is an objective whose :meth:`Objective.batches` yields the one graph;
graph classification and segmentation yield their shuffled mini-batches. Each batch is moved
to the model's device as it is used; nothing is copied back to the CPU inside an epoch but the
scalars the history records.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch_geometric.data.data import BaseData

from fathom.config import TrainConfig
from fathom.train.callbacks import EarlyStopping
from fathom.train.optim import build_optimizer

__all__ = [
    "EpochCallback",
    "FitCheckpoint",
    "FitResult",
    "Objective",
    "autocast",
    "fit",
    "full_batch",
    "model_device",
    "resolve_monitor",
    "to_device",
    "train_epoch",
]


class Objective(Protocol):
    """What ``fit`` needs from a task.

    ``loss(model, batch)`` is one training loss (``fit`` takes the optimiser step);
    ``evaluate(model, data)`` returns the epoch's validation / test metrics (eval mode is the
    objective's business). Optional attributes and methods:

    - ``batches(data) -> Iterable[(batch, weight)]``: one epoch's training batches and their
      weights in the epoch's mean loss (default: :func:`full_batch`, the whole ``data`` once);
    - ``default_monitor``: what ``monitor: auto`` resolves to (``val_acc`` if absent);
    - ``monitor``: a metric the objective always selects on, whatever ``train.monitor``
      says, with ``min_delta`` / ``baseline`` (see :class:`~fathom.train.callbacks.
      EarlyStopping`); ``select_before_step``: take the snapshot right after the first
      batch's loss, before its step (DGI selects on its training loss: the weights that
      scored it are those before the step);
    - ``final_metrics(model, data) -> dict``: the run's metrics, computed once from the
      restored best model instead of the best epoch's record (DGI's linear probe);
    - ``lr_schedule(optimizer) -> Callable[[record], None]``: a learning-rate schedule
      stepped after every epoch's evaluation with its record (NeighborsMatch's
      ``ReduceLROnPlateau`` on the training accuracy), instead of ``train.lr_decay_every``;
    - ``done(record, best) -> bool``: the objective is met and training stops (a solved
      task); ``best`` says whether this epoch is the new best by the monitor;
    - ``loader``: the objective's mini-batch loader, whose random state a resumed ``fit``
      restores (:func:`~fathom.loaders.shard.loader_state`).

    ``evaluate`` may report ``loss``: it then replaces the epoch's training loss in the
    record (a distributed objective reports the mean over every rank's batches).
    """

    def loss(self, model: nn.Module, batch: Any) -> Tensor: ...

    def evaluate(self, model: nn.Module, data: Any) -> dict[str, float]: ...


def full_batch(data: Any) -> Iterator[tuple[Any, float]]:
    """The loader of full-batch training: ``data`` once, weight 1."""
    yield data, 1.0


def resolve_monitor(monitor: str, task: object) -> str:
    """The objective's own ``monitor`` if it has one; else ``monitor``, or for ``auto`` the
    objective's ``default_monitor`` (``val_acc`` if none)."""
    fixed = getattr(task, "monitor", None)
    if fixed is not None:
        return str(fixed)
    if monitor != "auto":
        return monitor
    return str(getattr(task, "default_monitor", "val_acc"))


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (CPU for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` on ``device``: itself when it is already there; a PyG ``Data`` / ``Batch``
    is moved as a shallow copy (PyG's ``Data.to`` moves in place: the caller's graph stays
    where it was); anything else with a ``to`` (tensors, datasets of fathom) is moved by it;
    anything without (lists of graphs, split objects) is returned as it is."""
    move = getattr(batch, "to", None)
    if not callable(move):
        return batch
    if isinstance(batch, BaseData):
        tensors = [v for store in batch.stores for v in store.values() if isinstance(v, Tensor)]
        if all(t.device == device for t in tensors):
            return batch
        return copy.copy(batch).to(device)
    if isinstance(batch, Tensor) and batch.device == device:
        return batch
    return move(device)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast on CUDA for ``precision == "bf16"``; otherwise a no-op context."""
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class FitResult:
    """Outcome of one training run.

    ``metrics`` are those of the best epoch (by the monitored validation metric), whose
    weights are restored into the model; ``status`` is ``done`` or ``diverged``.
    """

    status: str
    metrics: dict[str, float]
    best_epoch: int
    epochs: int
    time_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    message: str = ""
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    """Per-layer metrics measured during training (``LayerDiagnostics``), if any."""
    folds: list[dict[str, Any]] = field(default_factory=list)
    """Per-fold results of a cross-validated run (graph classification); ``metrics`` then
    holds their means."""
    stop_reason: str = "epochs"
    """Why training ended: ``epochs`` (all ran), ``patience`` (early stopping), ``objective``
    (the objective was met), ``callback`` (a callback asked), ``diverged``."""
    final_lr: float = float("nan")
    """The learning rate at the end of training (after every schedule step)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "best_epoch": self.best_epoch,
            "epochs": self.epochs,
            "time_s": self.time_s,
            **self.metrics,
            "history": self.history,
            **({"diagnostics": self.diagnostics} if self.diagnostics else {}),
            **({"folds": self.folds} if self.folds else {}),
        }


EpochCallback = Callable[[dict[str, float]], Any]
"""Called with each epoch's record; returning ``True`` stops training."""


class FitCheckpoint(Protocol):
    """Where :func:`fit` keeps its state between epochs, to resume an interrupted run.

    ``save(epoch, shared, local)`` is called on every rank after each epoch that does not
    end training, with callables that build the state: ``shared()`` the model, optimiser,
    schedule, early stopping, history, epoch and time (the same on every rank), ``local()``
    this rank's random state (torch's generators, the objective's loader); the checkpoint
    decides whether to write (every k epochs, rank 0 only). ``load()`` returns what was
    saved last, ``(shared, this rank's local)``, or ``None`` to start afresh; ``fit`` then
    continues with the next epoch, drawing what an uninterrupted run would have drawn.
    """

    def load(self) -> tuple[dict[str, Any], dict[str, Any]] | None: ...

    def save(
        self,
        epoch: int,
        shared: Callable[[], dict[str, Any]],
        local: Callable[[], dict[str, Any]],
    ) -> None: ...


def _cpu(obj: Any) -> Any:
    """``obj`` with every tensor detached and on the CPU (dicts, lists, tuples walked)."""
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj


def _rng_state(device: torch.device) -> dict[str, Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def train_epoch(
    model: nn.Module,
    task: Objective,
    data: Any,
    optimizer: torch.optim.Optimizer,
    *,
    accumulate: int = 1,
    precision: str = "32",
    before_step: Callable[[float], None] | None = None,
) -> float:
    """One training epoch of :func:`fit`: the batches of ``task.batches(data)`` (the whole
    ``data`` once by default), each moved to the model's device, one optimiser step per
    ``accumulate`` batches on the summed gradients of ``loss / accumulate``.

    Returns the epoch's loss, the weighted mean of its batches' (by the weights ``batches``
    yields); a non-finite batch loss is returned at once, with no step taken on it. The
    gradients of a last, incomplete group of ``accumulate`` batches are dropped.
    ``before_step(loss)`` is called with the first batch's loss before its step.
    """
    device = model_device(model)
    batches: Callable[[Any], Iterable[tuple[Any, float]]] = getattr(task, "batches", full_batch)
    total, count = 0.0, 0.0
    optimizer.zero_grad(set_to_none=True)
    for i, (batch, weight) in enumerate(batches(data)):
        with autocast(device, precision):
            loss = task.loss(model, to_device(batch, device))
        value = loss.item()
        if not math.isfinite(value):
            return value
        if before_step is not None and i == 0:
            before_step(value)
        (loss / accumulate if accumulate > 1 else loss).backward()
        if (i + 1) % accumulate == 0:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        total += value * weight
        count += weight
    return total / max(count, 1)


def fit(
    model: nn.Module,
    task: Objective,
    data: Any,
    cfg: TrainConfig,
    callbacks: Sequence[EpochCallback] = (),
    *,
    checkpoint: FitCheckpoint | None = None,
) -> FitResult:
    """Train ``model`` on ``data`` for up to ``cfg.epochs`` epochs with early stopping.

    Each epoch: the batches of ``task.batches(data)`` (one batch, the whole graph, for
    full-batch tasks), one optimiser step per ``cfg.accumulate`` batches on ``task.loss``
    (gradients of ``loss / accumulate`` summed); the epoch's loss is the weighted mean of its
    batches' losses. Then ``task.evaluate``; the record ``{epoch, loss, **metrics}`` is
    appended to the history and passed to each callback (a callback that returns ``True``
    stops training). With ``cfg.lr_decay_every`` the learning rate is multiplied by
    ``cfg.lr_decay`` every that many epochs. A non-finite batch loss stops the run as
    ``diverged at epoch N`` (no step is taken on it); the best checkpoint before it (if any)
    is restored and its metrics reported.

    Batches are moved to the model's device (:func:`to_device`); the caller puts the model
    (and full-batch data) there. ``cfg.precision == "bf16"`` runs the forward passes under
    bfloat16 autocast on CUDA.

    With a ``checkpoint`` (:class:`FitCheckpoint`), training starts from the state it
    loads, if any, and its state is saved after every epoch that does not end training; an
    interrupted run resumed this way ends as the uninterrupted one would (same batches,
    dropout masks, steps and stopping epoch). ``time_s`` then adds up every attempt's time.
    """
    optimizer = build_optimizer(model, cfg)
    schedule = getattr(task, "lr_schedule", None)
    epoch_schedule = schedule(optimizer) if schedule is not None else None
    scheduler = (
        torch.optim.lr_scheduler.StepLR(optimizer, cfg.lr_decay_every, gamma=cfg.lr_decay)
        if cfg.lr_decay_every and epoch_schedule is None
        else None
    )
    stopper = EarlyStopping(
        resolve_monitor(cfg.monitor, task),
        cfg.patience,
        min_delta=getattr(task, "min_delta", 0.0),
        baseline=getattr(task, "baseline", None),
    )
    select_before_step = bool(getattr(task, "select_before_step", False))
    done: Callable[[dict[str, float], bool], bool] | None = getattr(task, "done", None)
    device = model_device(model)
    history: list[dict[str, float]] = []
    status, message, epoch, reason = "done", "", 0, "epochs"
    first, time_before = 1, 0.0
    if checkpoint is not None:
        if epoch_schedule is not None:
            from fathom.errors import ConfigError

            raise ConfigError("resuming is not available for an objective with its own schedule")
        restored = checkpoint.load()
        if restored is not None:
            first, time_before = _restore(
                restored, model, optimizer, scheduler, stopper, history, task, device
            )
    start = time.perf_counter()
    model.train()
    for epoch in range(first, cfg.epochs + 1):
        loss_value = train_epoch(
            model,
            task,
            data,
            optimizer,
            accumulate=cfg.accumulate,
            precision=cfg.precision,
            before_step=(
                (lambda v, e=epoch: stopper.update(e, {"epoch": float(e), "loss": v}, model))
                if select_before_step
                else None
            ),
        )
        if not math.isfinite(loss_value):
            status, message = "diverged", f"diverged at epoch {epoch} (training loss {loss_value})"
            reason = "diverged"
            break
        if scheduler is not None:
            scheduler.step()
        with autocast(device, cfg.precision):
            metrics = task.evaluate(model, data)
        record = {"epoch": float(epoch), "loss": loss_value, **metrics}
        if epoch_schedule is not None:
            epoch_schedule(record)
        history.append(record)
        asked = [callback(record) for callback in callbacks]
        if not select_before_step:
            stopper.update(epoch, record, model)
        if done is not None and done(record, stopper.best_epoch == epoch):
            reason = "objective"
            break
        if stopper.should_stop(epoch):
            reason = "patience"
            break
        if any(a is True for a in asked):
            reason = "callback"
            break
        if checkpoint is not None and epoch < cfg.epochs:
            checkpoint.save(
                epoch,
                lambda e=epoch: _cpu(
                    {
                        "epoch": e,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": None if scheduler is None else scheduler.state_dict(),
                        "stopper": {
                            "best_epoch": stopper.best_epoch,
                            "best_metrics": stopper.best_metrics,
                            "best_state": stopper.best_state,
                        },
                        "history": history,
                        "time_s": time_before + time.perf_counter() - start,
                    }
                ),
                lambda: _cpu(
                    {
                        "rng": _rng_state(device),
                        "loader": _loader_state(getattr(task, "loader", None)),
                    }
                ),
            )
    elapsed = time_before + time.perf_counter() - start
    stopper.restore(model)
    metrics = {k: v for k, v in (stopper.best_metrics or {}).items() if k not in ("epoch", "loss")}
    final = getattr(task, "final_metrics", None)
    if final is not None and stopper.best_metrics is not None:
        metrics = final(model, data)
    if stopper.best_metrics is None and status == "done":
        status, message = "diverged", f"diverged at epoch {epoch} (non-finite validation metrics)"
    return FitResult(
        status=status,
        metrics=metrics,
        best_epoch=stopper.best_epoch,
        epochs=len(history),
        time_s=elapsed,
        history=history,
        message=message,
        stop_reason=reason,
        final_lr=float(optimizer.param_groups[0]["lr"]),
    )


def _loader_state(loader: Any) -> dict[str, Any]:
    from fathom.loaders.shard import loader_state

    return loader_state(loader)


def _restore(
    restored: tuple[dict[str, Any], dict[str, Any]],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    stopper: EarlyStopping,
    history: list[dict[str, float]],
    task: Objective,
    device: torch.device,
) -> tuple[int, float]:
    """Load a :class:`FitCheckpoint`'s state into ``fit``'s objects; returns the first epoch
    to run and the time spent before."""
    from fathom.loaders.shard import load_loader_state

    shared, local = restored
    model.load_state_dict(shared["model"])
    optimizer.load_state_dict(shared["optimizer"])
    if scheduler is not None and shared["scheduler"] is not None:
        scheduler.load_state_dict(shared["scheduler"])
    best = shared["stopper"]
    stopper.best_epoch, stopper.best_metrics = best["best_epoch"], best["best_metrics"]
    stopper.best_state = best["best_state"]
    history.extend(shared["history"])
    _set_rng_state(local["rng"], device)
    load_loader_state(getattr(task, "loader", None), local["loader"])
    return int(shared["epoch"]) + 1, float(shared["time_s"])
