"""Tests of fathom.tasks.node: NodeClassification and InductiveNodeClassification."""

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
from fathom.tasks.node import InductiveNodeClassification, NodeClassification
from fathom.train.loop import fit

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


# --------------------------------------------------------------------------- inductive


def _gcn(data: Data, seed: int = 0, **model: object) -> nn.Module:
    """A 2-layer GCN (fathom defaults unless overridden), seeded."""
    from fathom.models.build import build_model

    torch.manual_seed(seed)
    cfg = ModelConfig(**{"depth": 2, "hidden": 8, **model})  # type: ignore[arg-type]
    return build_model(cfg, data.num_features, int(data.y.max()) + 1)


def _csbm(num_nodes: int = 120, seed: int = 0) -> Data:
    return make_synthetic(
        "csbm", num_nodes=num_nodes, num_classes=3, feature_dim=8, avg_degree=6.0, seed=seed
    )


class CountingModel(nn.Module):
    """Logits = features (3 of them); records the node count and mode of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.calls: list[tuple[int, bool]] = []

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        self.calls.append((x.size(0), self.training))
        return x * self.scale


def _held_out_features(data: Data, values: Tensor) -> Data:
    """A copy of ``data`` whose validation and test nodes' features are ``values``."""
    out = data.clone()
    held_out = data.val_mask | data.test_mask
    out.x = data.x.clone()
    out.x[held_out] = values.expand(int(held_out.sum()), -1)
    return out


def _train_steps(data: Data, steps: int) -> tuple[list[Tensor], list[list[Tensor]]]:
    """Losses and all parameter gradients of ``steps`` Adam steps of an inductive GCN with
    dropout and DropEdge (random draws seeded identically for every call)."""
    model = _gcn(data, dropout=0.5, drop_edge=0.3)
    task = InductiveNodeClassification()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    torch.manual_seed(123)
    losses, grads = [], []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = task.loss(model, data)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
    return losses, grads


def test_inductive_isolation_nan_features_never_reach_training() -> None:
    data = _csbm()
    poisoned = _held_out_features(data, torch.full((1, 8), float("nan")))
    other = _held_out_features(data, torch.full((1, 8), 1e6))
    assert bool(poisoned.x.isnan().any())
    losses_nan, grads_nan = _train_steps(poisoned, steps=5)
    losses_big, grads_big = _train_steps(other, steps=5)
    losses_ref, grads_ref = _train_steps(data, steps=5)
    for step in range(5):
        assert bool(torch.isfinite(losses_nan[step]))
        assert torch.equal(losses_nan[step], losses_big[step])
        assert torch.equal(losses_nan[step], losses_ref[step])
        for g_nan, g_big, g_ref in zip(
            grads_nan[step], grads_big[step], grads_ref[step], strict=True
        ):
            assert bool(torch.isfinite(g_nan).all())
            assert torch.equal(g_nan, g_big)
            assert torch.equal(g_nan, g_ref)
    # the transductive task on the same poisoned graph is not isolated: its loss is NaN
    model = _gcn(poisoned)
    assert bool(NodeClassification().loss(model, poisoned).isnan())


def test_inductive_isolation_through_fit() -> None:
    # With held-out features changed, model selection may differ, but every epoch's training
    # loss (which depends only on the training graph and the weights) must be identical.
    data = _csbm()
    other = _held_out_features(data, torch.full((1, 8), 1e3))
    cfg = TrainConfig(epochs=8, patience=0, lr=0.05)
    histories = []
    for d in (data, other):
        model = _gcn(d, dropout=0.5)
        torch.manual_seed(7)
        histories.append(
            [r["loss"] for r in fit(model, InductiveNodeClassification(), d, cfg).history]
        )
    assert len(histories[0]) == 8
    assert histories[0] == histories[1]


def test_inductive_loss_sees_only_training_nodes() -> None:
    data = _data_with_features(_logits())
    model = CountingModel()
    loss = InductiveNodeClassification().loss(model, data)
    assert model.calls == [(3, True)]
    assert torch.equal(loss.detach(), F.cross_entropy(_logits()[TRAIN], Y[TRAIN]))
    loss.backward()
    assert model.scale.grad is not None


def _data_with_features(x: Tensor) -> Data:
    data = _data()
    data.x = x
    return data


def test_inductive_evaluate_uses_one_graph_per_split() -> None:
    # Feature-only model: metrics equal the transductive ones; one eval-mode call per split
    # with the training graph (3 nodes), train + val graph (5), full graph (6).
    data = _data_with_features(_logits())
    model = CountingModel()
    metrics = InductiveNodeClassification().evaluate(model, data)
    assert model.calls == [(3, False), (5, False), (6, False)]
    assert model.training is True
    assert metrics == NodeClassification().evaluate(CountingModel(), data)
    assert model.scale.grad is None


def test_inductive_label_smoothing() -> None:
    data = _data_with_features(_logits())
    eps = 0.2
    loss = InductiveNodeClassification(label_smoothing=eps).loss(CountingModel(), data)
    expected = NodeClassification(label_smoothing=eps).loss(CountingModel(), data)
    assert math.isclose(loss.item(), expected.item(), rel_tol=1e-6)
    plain = InductiveNodeClassification().evaluate(CountingModel(), data)
    smoothed = InductiveNodeClassification(label_smoothing=eps).evaluate(CountingModel(), data)
    assert smoothed == plain


def _two_components() -> Data:
    """Train nodes 0-5 form one component, val/test nodes 6-11 another."""
    ring = [(i, (i + 1) % 6) for i in range(6)] + [(0, 3)]
    pairs = ring + [(a + 6, b + 6) for a, b in ring]
    edges = sorted({(a, b) for a, b in pairs} | {(b, a) for a, b in pairs})
    node = torch.arange(12)
    return Data(
        x=torch.randn(12, 4, generator=torch.Generator().manual_seed(0)),
        edge_index=torch.tensor(edges).t(),
        y=torch.tensor([0, 1, 2] * 4),
        train_mask=node < 6,
        val_mask=(node >= 6) & (node < 9),
        test_mask=node >= 9,
    )


def test_inductive_equals_transductive_when_held_out_nodes_are_disconnected() -> None:
    data = _two_components()
    model = _gcn(data, dropout=0.0)
    inductive = InductiveNodeClassification().loss(model, data)
    transductive = NodeClassification().loss(model, data)
    assert torch.allclose(inductive, transductive, rtol=0, atol=1e-6)
    # Joining a training node to a test node changes the transductive loss only.
    joined = data.clone()
    extra = torch.tensor([[0, 11], [11, 0]])
    joined.edge_index = torch.cat([data.edge_index, extra], dim=1)
    assert torch.allclose(InductiveNodeClassification().loss(model, joined), inductive, atol=1e-6)
    assert not torch.allclose(NodeClassification().loss(model, joined), transductive, atol=1e-4)


def test_inductive_views_are_cached_and_never_stale() -> None:
    data = _csbm()
    task = InductiveNodeClassification()
    views = task.views(data)
    assert task.views(data) is views
    data.x[0] += 1.0  # in-place edit: rebuilt, and the new view has the new features
    fresh = task.views(data)
    assert fresh is not views
    assert torch.equal(fresh.train.x, data.x[data.train_mask])
    assert task.views(data) is fresh
    data.edge_index = data.edge_index[:, :10]  # replaced tensor: rebuilt
    assert task.views(data).train.edge_index.size(1) <= 10
    other = _csbm(seed=1)  # another graph: its own views
    assert torch.equal(task.views(other).train.x, other.x[other.train_mask])


def test_inductive_gcn_on_csbm_beats_chance() -> None:
    data = make_synthetic(
        "csbm", num_nodes=300, num_classes=3, feature_dim=16, separation=2.0, seed=0
    )
    model = _gcn(data, hidden=16)
    result = fit(model, InductiveNodeClassification(), data, TrainConfig(epochs=20, patience=0))
    assert result.status == "done"
    assert result.metrics["test_acc"] > 0.7  # chance is 1/3


def test_inductive_same_seed_same_numbers() -> None:
    data = _csbm()
    runs = []
    for _ in range(2):
        model = _gcn(data, dropout=0.5, drop_edge=0.2)
        torch.manual_seed(3)
        cfg = TrainConfig(epochs=5, patience=0)
        runs.append(fit(model, InductiveNodeClassification(), data, cfg).history)
    assert len(runs[0]) == 5
    assert runs[0] == runs[1]


def test_train_one_uses_inductive_task(monkeypatch: pytest.MonkeyPatch) -> None:
    from fathom.config import DataConfig

    seen: list[object] = []

    def fake_fit(model, task, data, cfg, callbacks=()):
        seen.append(task)
        return "fitted"

    monkeypatch.setattr(run_mod, "fit", fake_fit)
    data = _csbm(30)
    cfg = ExperimentConfig(
        data=DataConfig(inductive=True),
        model=ModelConfig(depth=2, hidden=4),
        train=TrainConfig(label_smoothing=0.1),
    )
    assert run_mod.train_one(cfg, data) == "fitted"
    assert isinstance(seen[0], InductiveNodeClassification)
    assert seen[0].label_smoothing == 0.1


def test_inductive_missing_mask_is_a_data_error() -> None:
    from fathom.errors import DataError

    data = _data_with_features(_logits())
    del data.val_mask
    with pytest.raises(DataError, match="val_mask is missing"):
        InductiveNodeClassification().loss(CountingModel(), data)


def test_a_batch_without_training_nodes_is_a_zero_loss_not_a_nan() -> None:
    from fathom.loaders.partition import PartitionLoader
    from fathom.models.build import build_model

    data = make_synthetic(
        "csbm", num_nodes=40, num_classes=2, feature_dim=4, avg_degree=4.0, seed=0
    )
    data.train_mask = torch.zeros(40, dtype=torch.bool)
    data.train_mask[:10] = True  # part 0 holds every training node, parts 1-3 none
    part = torch.arange(40) // 10
    objective = NodeClassification(loader=PartitionLoader(data, part, shuffle=False))
    model = build_model(ModelConfig(depth=2, hidden=8, dropout=0.0), 4, 2)
    batches = list(objective.batches(data))
    assert [w for _, w in batches] == [10.0, 0.0, 0.0, 0.0]
    losses = [objective.loss(model, b) for b, _ in batches]
    assert math.isfinite(losses[0].item()) and losses[0].item() > 0
    assert [x.item() for x in losses[1:]] == [0.0, 0.0, 0.0]
    losses[1].backward()  # the zero loss still has a graph (every rank steps alike)
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    result = fit(model, objective, data, TrainConfig(epochs=3, patience=0))
    assert result.status == "done"


# --------------------------------------------------------------------------- val_train_mode_loss


def test_val_train_mode_loss_is_the_validation_loss_of_the_training_forward() -> None:
    data = _data()
    task = NodeClassification(train_val_loss=True)
    model = FixedLogits(_logits())
    assert "val_train_mode_loss" not in task.evaluate(model, data)  # no training step yet
    task.loss(model, data)
    with torch.no_grad():
        model.scale.mul_(3.0)  # a step after the forward: not what the value saw
    metrics = task.evaluate(model, data)
    expected = F.cross_entropy(_logits()[VAL], Y[VAL]).item()
    assert metrics["val_train_mode_loss"] == pytest.approx(expected)
    assert metrics["val_loss"] == pytest.approx(F.cross_entropy(3 * _logits()[VAL], Y[VAL]).item())
    assert "val_train_mode_loss" not in NodeClassification().evaluate(model, data)


def test_val_train_mode_loss_sees_dropout_and_picks_the_epoch() -> None:
    data = _csbm()
    torch.manual_seed(0)
    model = _gcn(data, dropout=0.8)
    task = NodeClassification(train_val_loss=True)
    result = fit(
        model, task, data, TrainConfig(epochs=15, patience=0, monitor="val_train_mode_loss")
    )
    history = result.history
    # dropout on: the training forward's validation loss is not the evaluation's
    assert all(e["val_train_mode_loss"] != e["val_loss"] for e in history)
    best = min(history, key=lambda e: e["val_train_mode_loss"])
    assert result.best_epoch == int(best["epoch"])
    assert result.metrics["test_acc"] == best["test_acc"]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"train.loader": "neighbor"}, "train.loader"),
        ({"model.arch": "dgi"}, "model.arch"),
        ({"data.inductive": True}, "data.inductive"),
    ],
)
def test_val_train_mode_loss_is_refused_where_no_full_training_forward_sees_the_validation_nodes(
    override: dict, key: str
) -> None:
    from fathom.config import apply_overrides
    from fathom.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"{key}.*val_train_mode_loss"):
        apply_overrides(ExperimentConfig(), {"train.monitor": "val_train_mode_loss", **override})
    with pytest.raises(ValueError, match="full-batch"):
        NodeClassification(loader=[_data()], train_val_loss=True)
