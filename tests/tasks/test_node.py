"""Tests of fathom.tasks.node.NodeClassification."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

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
