"""fathom.nn.modes: train()/eval() without nn.Module.__setattr__'s checks, same effect."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from fathom.nn.modes import FastModeSwitch, set_training


class _CountsTrain(nn.Module):
    """A module with its own train(): it must still be called."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(2, 2)
        self.calls: list[bool] = []

    def train(self, mode: bool = True) -> _CountsTrain:
        self.calls.append(mode)
        return super().train(mode)


class _OwnSetattr(nn.Module):
    """A module with its own __setattr__: the flag must go through it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "training" and "seen" in self.__dict__:
            self.seen.append(f"{name}={value}")
        super().__setattr__(name, value)


class _Model(FastModeSwitch):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.BatchNorm1d(3)) for _ in range(4)
        )
        self.custom = _CountsTrain()
        self.own = _OwnSetattr()
        self.empty = None  # a registered None submodule is skipped
        self.register_module("missing", None)


def _flags(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


@pytest.mark.parametrize("start", [True, False])
def test_same_flags_as_module_train(start: bool) -> None:
    fast, slow = _Model(), _Model()
    nn.Module.train(fast, start)
    nn.Module.train(slow, start)
    for mode in (not start, start, False, True):
        assert fast.train(mode) is fast
        nn.Module.train(slow, mode)
        assert _flags(fast) == _flags(slow) == [mode] * len(_flags(slow))
    assert fast.eval() is fast and not any(_flags(fast))


def test_overridden_train_and_setattr_are_honoured() -> None:
    model = _Model()
    model.eval()
    model.train()
    assert model.custom.calls == [False, True]
    assert model.own.seen == ["training=False", "training=True"]


def test_mode_must_be_boolean() -> None:
    with pytest.raises(ValueError, match="boolean"):
        set_training(nn.Linear(1, 1), 1)  # type: ignore[arg-type]


def test_eval_changes_what_dropout_does() -> None:
    model = _Model().eval()
    x = torch.randn(5, 3)
    assert torch.equal(model.blocks[0](x), model.blocks[0](x))
