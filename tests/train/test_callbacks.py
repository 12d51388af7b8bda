"""Tests of fathom.train.callbacks.EarlyStopping."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fathom.train.callbacks import EarlyStopping

NAN = math.nan


def _m(val_acc: float, val_loss: float, **extra: float) -> dict[str, float]:
    return {"val_acc": val_acc, "val_loss": val_loss, **extra}


def _run(
    stopper: EarlyStopping, seq: list[dict[str, float]], model: nn.Module | None = None
) -> int | None:
    """Feed epochs 1.. of ``seq``; return the epoch at which step() said stop (or None)."""
    model = model or nn.Linear(2, 2)
    for epoch, metrics in enumerate(seq, start=1):
        if stopper.step(epoch, metrics, model):
            return epoch
    return None


def test_best_epoch_by_val_acc() -> None:
    stopper = EarlyStopping("val_acc", patience=100)
    seq = [_m(0.5, 1.0), _m(0.7, 0.9), _m(0.6, 0.1), _m(0.7, 0.95), _m(0.4, 0.5)]
    assert _run(stopper, seq) is None
    assert stopper.best_epoch == 2
    assert stopper.best_metrics == _m(0.7, 0.9)


def test_val_acc_tie_broken_by_lower_val_loss() -> None:
    stopper = EarlyStopping("val_acc", patience=100)
    seq = [_m(0.7, 0.9), _m(0.7, 0.8), _m(0.7, 0.8), _m(0.7, 0.85)]
    _run(stopper, seq)
    assert stopper.best_epoch == 2  # a full tie (epoch 3) keeps the earlier epoch


def test_monitor_val_loss() -> None:
    stopper = EarlyStopping("val_loss", patience=100)
    seq = [_m(0.9, 1.0), _m(0.1, 0.5), _m(1.0, 0.6), _m(1.0, 0.5)]
    _run(stopper, seq)
    assert stopper.best_epoch == 2


def test_patience_stop_epoch() -> None:
    stopper = EarlyStopping("val_acc", patience=3)
    seq = [_m(0.5, 1.0), _m(0.6, 1.0), _m(0.6, 1.0), _m(0.55, 0.2), _m(0.6, 1.0), _m(0.9, 0.1)]
    # Best at 2; epochs 3, 4, 5 do not improve: stop at 5 = 2 + patience.
    assert _run(stopper, seq) == 5
    assert stopper.best_epoch == 2


def test_improvement_resets_patience() -> None:
    stopper = EarlyStopping("val_acc", patience=2)
    seq = [_m(0.5, 1.0), _m(0.4, 1.0), _m(0.6, 1.0), _m(0.6, 1.1), _m(0.6, 1.2), _m(0.9, 0.0)]
    assert _run(stopper, seq) == 5
    assert stopper.best_epoch == 3


def test_patience_one_stops_right_after_no_improvement() -> None:
    stopper = EarlyStopping("val_acc", patience=1)
    assert _run(stopper, [_m(0.5, 1.0), _m(0.5, 1.0), _m(0.9, 0.0)]) == 2


def test_patience_zero_never_stops() -> None:
    stopper = EarlyStopping("val_acc", patience=0)
    seq = [_m(0.9, 0.1)] + [_m(0.1, 5.0)] * 500
    assert _run(stopper, seq) is None
    assert stopper.best_epoch == 1


def test_nan_metrics_never_become_best() -> None:
    stopper = EarlyStopping("val_acc", patience=100)
    seq = [
        _m(NAN, NAN),
        _m(0.3, 1.0),
        _m(NAN, 0.1),
        _m(0.9, NAN),
        _m(0.5, 0.5, loss=math.inf),
        _m(0.4, 0.9),
    ]
    _run(stopper, seq)
    assert stopper.best_epoch == 6
    assert stopper.best_metrics == _m(0.4, 0.9)


def test_all_nan_never_records() -> None:
    stopper = EarlyStopping("val_loss", patience=3)
    model = nn.Linear(2, 2)
    # No best: best_epoch stays 0, so it stops once epoch reaches patience.
    assert _run(stopper, [_m(NAN, NAN)] * 5, model) == 3
    assert stopper.best_epoch == 0 and stopper.best_metrics is None
    before = model.weight.detach().clone()
    stopper.restore(model)  # no-op
    assert torch.equal(model.weight, before)


def test_restore_loads_best_weights() -> None:
    model = nn.Linear(3, 2)
    stopper = EarlyStopping("val_acc", patience=100)
    snapshots = []
    for epoch, metrics in enumerate([_m(0.2, 1.0), _m(0.8, 0.5), _m(0.7, 0.4)], start=1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))  # in place: the saved copy must not alias
            model.bias.fill_(-float(epoch))
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        stopper.step(epoch, metrics, model)
    assert stopper.best_epoch == 2
    stopper.restore(model)
    assert torch.equal(model.weight, torch.full((2, 3), 2.0))
    assert torch.equal(model.bias, torch.full((2,), -2.0))
    # Buffers are part of the checkpoint too.
    bn = nn.BatchNorm1d(2)
    stopper = EarlyStopping("val_loss")
    stopper.step(1, _m(0.5, 0.1), bn)
    bn(torch.randn(8, 2))
    assert not torch.equal(bn.running_mean, torch.zeros(2))
    stopper.restore(bn)
    assert torch.equal(bn.running_mean, torch.zeros(2))
    assert bn.num_batches_tracked.item() == 0


def test_best_metrics_is_a_copy() -> None:
    stopper = EarlyStopping()
    metrics = _m(0.5, 0.5)
    stopper.step(1, metrics, nn.Linear(1, 1))
    metrics["val_acc"] = 0.0
    assert stopper.best_metrics == _m(0.5, 0.5)


def test_a_monitor_the_metrics_lack_is_named() -> None:
    with pytest.raises(ValueError, match="must name a metric"):
        EarlyStopping("")
    stopper = EarlyStopping("val_f1")
    with pytest.raises(ValueError, match="'val_f1' is not among the metrics: val_acc"):
        stopper.update(1, {"val_acc": 0.5}, torch.nn.Linear(1, 1))


def test_any_metric_can_be_monitored_losses_lower() -> None:
    model = torch.nn.Linear(1, 1)
    ce = EarlyStopping("test_ce_loss", patience=0)
    ce.update(1, {"test_ce_loss": 0.5}, model)
    ce.update(2, {"test_ce_loss": 0.4}, model)
    f1 = EarlyStopping("val_f1", patience=0)
    f1.update(1, {"val_f1": 0.5}, model)
    f1.update(2, {"val_f1": 0.4}, model)
    assert (ce.best_epoch, f1.best_epoch) == (2, 1)


def test_auc_monitor_higher_is_better_ties_by_loss() -> None:
    model = torch.nn.Linear(1, 1)
    stopper = EarlyStopping("val_auc", patience=2)
    assert not stopper.step(1, {"val_auc": 0.8, "val_loss": 0.5}, model)
    assert not stopper.step(2, {"val_auc": 0.9, "val_loss": 0.6}, model)
    assert not stopper.step(3, {"val_auc": 0.9, "val_loss": 0.4}, model)
    assert stopper.best_epoch == 3
    assert not stopper.step(4, {"val_auc": 0.85, "val_loss": 0.1}, model)
    assert stopper.step(5, {"val_auc": 0.7, "val_loss": 0.1}, model)
    assert stopper.best_epoch == 3


def test_update_and_should_stop_are_step_in_two() -> None:
    model = nn.Linear(2, 2)
    split, whole = EarlyStopping("val_acc", patience=2), EarlyStopping("val_acc", patience=2)
    seq = [_m(0.5, 1.0), _m(0.7, 0.9), _m(0.6, 0.5), _m(0.6, 0.4), _m(0.9, 0.1)]
    for epoch, metrics in enumerate(seq, start=1):
        split.update(epoch, metrics, model)
        assert split.should_stop(epoch) == whole.step(epoch, metrics, model)
        assert split.best_epoch == whole.best_epoch
    assert not EarlyStopping("val_acc", patience=2).should_stop(1)  # nothing seen: wait
    # should_stop only reads the epoch: it can be asked without a new update
    assert split.should_stop(split.best_epoch + 2) and not split.should_stop(split.best_epoch + 1)


def test_monitor_training_loss_lower_is_better() -> None:
    stopper = EarlyStopping("loss", patience=2)
    seq = [{"loss": 1.0}, {"loss": 0.5}, {"loss": 0.7}, {"loss": 0.5}, {"loss": 0.1}]
    # best at 2; epochs 3 and 4 (a tie is no improvement) do not beat it: stop at 4
    assert _run(stopper, seq) == 4
    assert stopper.best_epoch == 2 and stopper.best_metrics == {"loss": 0.5}
