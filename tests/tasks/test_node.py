"""Tests of fathom.tasks.node.NodeClassification."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

import fathom.experiments.run as run_mod
from fathom.config import ExperimentConfig, ModelConfig, TrainConfig
from fathom.data.synthetic import make_synthetic
from fathom.tasks.node import NodeClassification

# Six nodes, three classes. Logits are one-hot-ish so predictions are obvious.
Y = torch.tensor([0, 1, 2, 0, 1, 2])
PRED = torch.tensor([0, 1, 0, 0, 2, 2])  # nodes 2 and 4 wrong
TRAIN = torch.tensor([True, True, True, False, False, False])  # 2 / 3 correct
VAL = torch.tensor([False, False, False, True, True, False])  # 1 / 2 correct
TEST = torch.tensor([False, False, False, False, False, True])  # 1 / 1 correct


class FixedLogits(nn.Module):
    """Returns ``logits`` (times a learnable scalar); records the mode it was called in."""

    def __init__(self, logits: Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.scale = nn.Parameter(torch.ones(()))
        self.modes: list[bool] = []

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        self.modes.append(self.training)
        return self.logits * self.scale


def _data() -> Data:
    return Data(
        x=torch.zeros(6, 1),
        edge_index=torch.empty(2, 0, dtype=torch.long),
        y=Y,
        train_mask=TRAIN,
        val_mask=VAL,
        test_mask=TEST,
    )


def _logits() -> Tensor:
    return F.one_hot(PRED, 3).float() * 2.0


def test_evaluate_exact_accuracy() -> None:
    metrics = NodeClassification().evaluate(FixedLogits(_logits()), _data())
    assert set(metrics) == {
        "train_acc",
        "val_acc",
        "test_acc",
        "train_loss",
        "val_loss",
        "test_loss",
    }
    assert metrics["train_acc"] == torch.tensor(2 / 3).item()
    assert metrics["val_acc"] == 0.5
    assert metrics["test_acc"] == 1.0


def test_evaluate_exact_loss() -> None:
    metrics = NodeClassification().evaluate(FixedLogits(_logits()), _data())
    # Logit 2 on the predicted class, 0 elsewhere: -log p(true) is
    # log(e^2 + 2) - 2 when right and log(e^2 + 2) when wrong.
    z = math.log(math.exp(2) + 2)
    right, wrong = z - 2, z
    assert math.isclose(metrics["train_loss"], (2 * right + wrong) / 3, rel_tol=1e-6)
    assert math.isclose(metrics["val_loss"], (right + wrong) / 2, rel_tol=1e-6)
    assert math.isclose(metrics["test_loss"], right, rel_tol=1e-6)


def test_evaluate_uses_eval_mode_and_restores_it() -> None:
    model = FixedLogits(_logits())
    NodeClassification().evaluate(model, _data())
    assert model.modes == [False] and model.training is True
    model.eval()
    NodeClassification().evaluate(model, _data())
    assert model.modes == [False, False] and model.training is False


def test_evaluate_builds_no_graph() -> None:
    model = FixedLogits(_logits())
    NodeClassification().evaluate(model, _data())
    assert model.scale.grad is None


def test_loss_on_training_nodes_only() -> None:
    logits = _logits()
    model = FixedLogits(logits)
    loss = NodeClassification().loss(model, _data())
    expected = F.cross_entropy(logits[TRAIN], Y[TRAIN])
    assert torch.equal(loss.detach(), expected)
    assert model.modes == [True]
    loss.backward()
    assert model.scale.grad is not None
    # Changing logits of non-training nodes does not change the loss.
    other = logits.clone()
    other[~TRAIN] = torch.tensor([5.0, -3.0, 1.0])
    assert torch.equal(NodeClassification().loss(FixedLogits(other), _data()), loss.detach())


def test_uniform_logits_loss_is_log_classes() -> None:
    metrics = NodeClassification().evaluate(FixedLogits(torch.zeros(6, 3)), _data())
    for split in ("train", "val", "test"):
        assert math.isclose(metrics[f"{split}_loss"], math.log(3), rel_tol=1e-6)
    # argmax of equal logits is class 0.
    assert metrics["train_acc"] == torch.tensor(1 / 3).item()
    assert metrics["val_acc"] == 0.5
    assert metrics["test_acc"] == 0.0


# --------------------------------------------------------------------------- label smoothing


def _smoothed_ce_by_hand(logits: list[list[float]], targets: list[int], eps: float) -> float:
    """Mean over rows of ``-sum_k q_k log softmax(z)_k`` with
    ``q = (1 - eps) * onehot(y) + eps / K``."""
    total = 0.0
    for z, y in zip(logits, targets, strict=True):
        k = len(z)
        lse = math.log(sum(math.exp(v) for v in z))
        log_p = [v - lse for v in z]
        q = [(1 - eps) * (i == y) + eps / k for i in range(k)]
        total -= sum(qi * lp for qi, lp in zip(q, log_p, strict=True))
    return total / len(logits)


def test_label_smoothing_default_is_off() -> None:
    assert NodeClassification().label_smoothing == 0.0


def test_label_smoothing_training_loss_closed_form() -> None:
    eps = 0.2
    loss = NodeClassification(label_smoothing=eps).loss(FixedLogits(_logits()), _data())
    # Training nodes 0-2 (classes 0, 1, 2) get logits [2,0,0], [0,2,0], [2,0,0]: two right,
    # one wrong. With z = log(e^2 + 2), log p = 2 - z on the logit-2 class and -z elsewhere,
    # so sum_k log p_k = 2 - 3z for every row:
    #   right: -(1 - eps)(2 - z) - eps/3 (2 - 3z);  wrong: -(1 - eps)(-z) - eps/3 (2 - 3z)
    z = math.log(math.exp(2) + 2)
    uniform = -(eps / 3) * (2 - 3 * z)
    right = -(1 - eps) * (2 - z) + uniform
    wrong = (1 - eps) * z + uniform
    expected = (2 * right + wrong) / 3
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)
    rows = _logits()[TRAIN].tolist()
    assert math.isclose(expected, _smoothed_ce_by_hand(rows, Y[TRAIN].tolist(), eps), rel_tol=1e-12)
    # and it differs from the unsmoothed loss
    plain = NodeClassification().loss(FixedLogits(_logits()), _data()).item()
    assert not math.isclose(loss.item(), plain, rel_tol=1e-3)


def test_label_smoothing_on_arbitrary_logits() -> None:
    logits = torch.tensor(
        [
            [1.5, -0.5, 0.25],
            [-2.0, 3.0, 0.0],
            [0.1, 0.2, 0.3],
            [9.0, 9.0, 9.0],
            [0.0, 0.0, 0.0],
            [4.0, -4.0, 1.0],
        ]
    )
    eps = 0.35
    loss = NodeClassification(label_smoothing=eps).loss(FixedLogits(logits), _data())
    expected = _smoothed_ce_by_hand(logits[TRAIN].tolist(), Y[TRAIN].tolist(), eps)
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)
    loss.backward()  # the smoothed loss is differentiable


def test_label_smoothing_of_uniform_logits_is_log_classes() -> None:
    # Any target distribution against a uniform prediction costs log K.
    loss = NodeClassification(label_smoothing=0.5).loss(FixedLogits(torch.zeros(6, 3)), _data())
    assert math.isclose(loss.item(), math.log(3), rel_tol=1e-6)


def test_label_smoothing_does_not_affect_evaluation() -> None:
    plain = NodeClassification().evaluate(FixedLogits(_logits()), _data())
    smoothed = NodeClassification(label_smoothing=0.3).evaluate(FixedLogits(_logits()), _data())
    assert smoothed == plain
    z = math.log(math.exp(2) + 2)
    assert math.isclose(smoothed["test_loss"], z - 2, rel_tol=1e-6)  # unsmoothed CE


def test_train_one_passes_label_smoothing(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []

    def fake_fit(model, task, data, cfg, callbacks=()):
        seen.append(task.label_smoothing)
        return "fitted"

    monkeypatch.setattr(run_mod, "fit", fake_fit)
    data = make_synthetic("csbm", num_nodes=30, num_classes=3, feature_dim=4, seed=0)
    cfg = ExperimentConfig(
        model=ModelConfig(depth=2, hidden=4), train=TrainConfig(label_smoothing=0.15)
    )
    assert run_mod.train_one(cfg, data) == "fitted"
    assert seen == [0.15]
