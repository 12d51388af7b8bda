"""Tests of fathom.tasks.segmentation: the point-cloud task, its metrics, and a segmentation
run (``train_one`` with the ``points`` head).

The task is tested with tiny models of the DeepGCN interface (``model(x, pos, batch)``) built
here, so it does not depend on the DeepGCN; one test runs the real one.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

import fathom.experiments.run as run_mod
from fathom.config import ExperimentConfig, ModelConfig, TrainConfig
from fathom.data.pointclouds import PointCloudSplits
from fathom.errors import ConfigError, DataError
from fathom.experiments.run import train_one
from fathom.seeding import seed_everything
from fathom.tasks.segmentation import PointsConfig, Segmentation, class_key
from fathom.train.loop import fit

NAMES = ("Floor", "Table/Desk", "chair")


def _cloud(n: int, gen: torch.Generator, num_classes: int = 2) -> Data:
    """``n`` points in the unit cube labelled by their x coordinate: ``num_classes`` slabs."""
    pos = torch.rand(n, 3, generator=gen)
    x = torch.cat([pos, torch.rand(n, 6, generator=gen)], dim=1)  # xyz + rgb + room xyz
    y = (pos[:, 0] * num_classes).long().clamp(max=num_classes - 1)
    return Data(x=x, pos=pos, y=y)


def _splits(num_classes: int = 2, sizes: tuple[int, int, int] = (6, 2, 2), n: int = 32) -> Any:
    gen = torch.Generator().manual_seed(0)
    train, val, test = ([_cloud(n, gen, num_classes) for _ in range(k)] for k in sizes)
    return PointCloudSplits("toy", train, val, test, num_classes, NAMES[:num_classes])


class PointMLP(nn.Module):
    """Per-point MLP with the DeepGCN forward signature (``pos`` and ``batch`` unused)."""

    def __init__(self, in_channels: int = 9, num_classes: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, num_classes)
        )

    def forward(self, x: Tensor, pos: Tensor, batch: Tensor | None) -> Tensor:
        return self.mlp(x)


class Constant(nn.Module):
    """Logits ``[1, 0, 0, …]`` for every point: always predicts class 0."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_classes))
        self.register_buffer("base", torch.eye(num_classes)[0])

    def forward(self, x: Tensor, pos: Tensor, batch: Tensor | None) -> Tensor:
        return (self.base + self.bias).expand(x.size(0), -1)


def _counts(clouds: list[Data], num_classes: int) -> list[int]:
    return torch.bincount(torch.cat([c.y for c in clouds]), minlength=num_classes).tolist()


def test_class_key_lower_cases_and_replaces_non_alphanumerics() -> None:
    assert [class_key(n) for n in NAMES] == ["floor", "table_desk", "chair"]
    assert class_key("Sofa 2") == "sofa_2"


def test_task_rejects_class_names_that_do_not_fit() -> None:
    with pytest.raises(DataError, match="2 names for 3 classes"):
        Segmentation(3, ("a", "b"))
    with pytest.raises(DataError, match="duplicate"):
        Segmentation(2, ("Table/Desk", "table desk"))
    assert Segmentation(3).class_keys == ["0", "1", "2"]


def test_evaluate_gives_exact_metrics_of_a_constant_model() -> None:
    data = _splits(num_classes=3, sizes=(4, 3, 2))
    m = Segmentation(3, data.class_names, batch_size=2).evaluate(Constant(3), data)
    ce0, ce_other = -math.log(math.e / (math.e + 2)), -math.log(1 / (math.e + 2))
    for split in ("train", "val", "test"):
        n0, n1, n2 = _counts(getattr(data, split), 3)
        n = n0 + n1 + n2
        # everything predicted as 0: IoU_0 = n0 / n, IoU_1 = IoU_2 = 0 (no TP, FN > 0);
        # recalls 1, 0, 0
        assert m[f"{split}_oa"] == m[f"{split}_acc"] == pytest.approx(n0 / n, rel=1e-12)
        assert m[f"{split}_miou"] == pytest.approx(n0 / n / 3, rel=1e-12)
        assert m[f"{split}_macc"] == pytest.approx(1 / 3, rel=1e-12)
        assert m[f"{split}_loss"] == pytest.approx((n0 * ce0 + (n1 + n2) * ce_other) / n)
    n0, _, _ = _counts(data.test, 3)
    assert m["test_iou_floor"] == pytest.approx(n0 / sum(_counts(data.test, 3)), rel=1e-12)
    assert m["test_iou_table_desk"] == 0.0 and m["test_iou_chair"] == 0.0
    assert not any(k.startswith(("train_iou", "val_iou")) for k in m)


def test_a_class_neither_present_nor_predicted_has_no_iou_key() -> None:
    data = _splits(num_classes=2, sizes=(2, 1, 1))
    # a third class that no point has and the constant model never predicts
    data = replace(data, num_classes=3, class_names=NAMES)
    m = Segmentation(3, NAMES).evaluate(Constant(3), data)
    assert "test_iou_chair" not in m
    assert {"test_iou_floor", "test_iou_table_desk"} <= set(m)
    n0, n1, _ = _counts(data.test, 3)
    # the absent class is left out of the means: (IoU_0 + 0) / 2 and (1 + 0) / 2
    assert m["test_miou"] == pytest.approx(n0 / (n0 + n1) / 2, rel=1e-12)
    assert m["test_macc"] == 0.5
    assert all(math.isfinite(v) for v in m.values())


def test_evaluate_accumulates_over_the_whole_split_whatever_the_batch_size() -> None:
    data = _splits(sizes=(5, 3, 3))
    torch.manual_seed(0)
    model = PointMLP()
    model.train()
    one = Segmentation(2, data.class_names, batch_size=1).evaluate(model, data)
    many = Segmentation(2, data.class_names, batch_size=4).evaluate(model, data)
    assert model.training  # the mode is restored
    assert one.keys() == many.keys()
    for key, value in one.items():
        assert many[key] == pytest.approx(value, rel=1e-6), key
    expected = {f"{s}_{m}" for s in ("train", "val", "test") for m in ("loss", "oa", "acc")}
    expected |= {f"{s}_{m}" for s in ("train", "val", "test") for m in ("miou", "macc")}
    expected |= {"test_iou_floor", "test_iou_table_desk"}
    assert set(one) == expected
    for key, value in one.items():
        assert 0.0 <= value <= 1.0 or key.endswith("_loss"), key


def test_fit_reduces_the_loss_and_learns_the_slabs() -> None:
    data = _splits(sizes=(8, 2, 2))
    torch.manual_seed(0)
    model = PointMLP()
    task = Segmentation(2, data.class_names, batch_size=3, seed=0)
    before = task.evaluate(model, data)
    cfg = TrainConfig(epochs=30, lr=0.05, weight_decay=0.0, patience=0)
    result = fit(model, task, data, cfg)
    losses = [r["loss"] for r in result.history]
    after = task.evaluate(model, data)  # the restored best epoch
    assert losses[-1] < losses[0] / 2
    assert after["train_loss"] < before["train_loss"] / 2
    # the classes are the two halves of the cube along x: a linearly separable rule
    assert after["test_oa"] > 0.9 and after["test_miou"] > 0.8


def test_batches_visit_every_cloud_once_per_epoch_in_a_seeded_order() -> None:
    gen = torch.Generator().manual_seed(1)
    clouds = [_cloud(3 + i, gen) for i in range(7)]
    data = PointCloudSplits("toy", clouds, [], [], 2, NAMES[:2])

    class Recorder(Constant):
        def __init__(self) -> None:
            super().__init__(2)
            self.sizes: list[int] = []

        def forward(self, x: Tensor, pos: Tensor, batch: Tensor | None) -> Tensor:
            assert batch is not None
            self.sizes += torch.bincount(batch).tolist()
            return super().forward(x, pos, batch)

    n0, n1 = _counts(clouds, 2)
    # point-weighted mean: -log(e / (e + 1)) per class-0 point, -log(1 / (e + 1)) else
    expected = (n0 * math.log1p(math.exp(-1)) + n1 * math.log1p(math.e)) / (n0 + n1)
    orders = []
    for _ in range(2):
        model = Recorder()
        task = Segmentation(2, batch_size=3, seed=5)
        for _epoch in range(2):
            batches = list(task.batches(data))
            assert [b.num_graphs for b, _ in batches] == [3, 3, 1]
            assert [w for _, w in batches] == [float(b.num_nodes) for b, _ in batches]
            assert sum(w for _, w in batches) == n0 + n1  # weighted by their points
            loss = sum(task.loss(model, b).item() * w for b, w in batches) / (n0 + n1)
            assert loss == pytest.approx(expected, rel=1e-6)
        assert sorted(model.sizes[:7]) == [3 + i for i in range(7)]
        assert sorted(model.sizes[7:]) == [3 + i for i in range(7)]
        orders.append(model.sizes)
    assert orders[0] == orders[1]  # same seed, same batches
    assert orders[0][:7] != orders[0][7:]  # a new order every epoch


def _fit(data: PointCloudSplits, seed: int, epochs: int = 4) -> Any:
    seed_everything(seed)
    model = PointMLP(dropout=0.3)  # dropout draws from the global generator
    task = Segmentation(2, data.class_names, batch_size=2, seed=seed)
    cfg = TrainConfig(epochs=epochs, lr=0.02, weight_decay=0.0, patience=0)
    return fit(model, task, data, cfg)


def test_fit_monitors_val_miou_and_repeats_with_the_same_seed() -> None:
    data = _splits()
    a, b, c = _fit(data, seed=3), _fit(data, seed=3), _fit(data, seed=4)
    assert a.status == "done" and a.epochs == 4
    assert a.history == b.history and a.metrics == b.metrics
    assert a.history != c.history
    best = max(a.history, key=lambda r: (r["val_miou"], -r["val_loss"]))
    assert a.best_epoch == int(best["epoch"])
    assert a.metrics["val_miou"] == best["val_miou"]


def test_a_nan_model_diverges() -> None:
    class NaNModel(PointMLP):
        def forward(self, x: Tensor, pos: Tensor, batch: Tensor | None) -> Tensor:
            return super().forward(x, pos, batch) * float("nan")

    data = _splits()
    task = Segmentation(2, data.class_names, batch_size=2)
    model = NaNModel()
    before = [p.detach().clone() for p in model.parameters()]
    result = fit(model, task, data, TrainConfig(epochs=3, lr=1.0, patience=0))
    # no step is taken on a non-finite loss
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))
    assert result.status == "diverged" and result.epochs == 0
    assert result.message == "diverged at epoch 1 (training loss nan)"


def test_a_model_with_the_wrong_output_width_is_a_data_error() -> None:
    data = _splits()
    with pytest.raises(DataError, match=r"\[num_points, 3\] logits, got \[\d+, 2\]"):
        Segmentation(3, NAMES).evaluate(PointMLP(num_classes=2), data)


def _cfg(**train: Any) -> ExperimentConfig:
    return ExperimentConfig(
        task="segmentation",
        model=ModelConfig(conv="edge", depth=3, hidden=8, skip="res", norm="batch", dropout=0.0),
        train=TrainConfig(epochs=3, lr=0.01, weight_decay=0.0, batch_size=2, patience=0, **train),
        points=PointsConfig(num_points=32, num_scenes=4, k=4, fusion_channels=16),
        seed=2,
    )


def test_segmentation_run_builds_the_points_head_and_fits_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[Any, ...]] = []

    def build_model(model: Any, in_channels: int, num_classes: int, head: Any) -> nn.Module:
        calls.append((model, in_channels, num_classes, head))
        return PointMLP(in_channels, num_classes, dropout=0.2)

    # a stand-in for the DeepGCN, so this test checks the wiring alone
    monkeypatch.setattr(run_mod, "build_model", build_model)
    cfg = _cfg(lr_decay_every=1, lr_decay=0.5)
    data = _splits(num_classes=3, sizes=(5, 2, 2))
    seen: list[dict[str, float]] = []
    a = train_one(cfg, data, [seen.append])
    b = train_one(cfg, data)
    assert calls == [(cfg.model, 9, 3, cfg.points.head())] * 2
    assert calls[0][3].kind == "points" and dict(calls[0][3].options)["k"] == 4
    assert a.status == "done" and a.epochs == 3 and len(seen) == 3
    assert a.history == b.history and a.metrics == b.metrics
    assert {"test_miou", "test_oa", "test_acc", "test_macc", "val_miou"} <= set(a.metrics)
    with pytest.raises(DataError, match="no val clouds"):
        train_one(cfg, replace(data, val=[]))
    # per-layer diagnostics are refused by the task's config check
    scenes = replace(cfg, data=replace(cfg.data, name="scenes"))
    assert scenes.validate() is scenes
    with pytest.raises(ConfigError, match=r"train\.diagnose_every") as info:
        replace(scenes, train=replace(cfg.train, diagnose_every=1)).validate()
    assert "\n" not in str(info.value)


def test_segmentation_run_trains_the_deepgcn() -> None:
    cfg = _cfg()
    data = _splits(sizes=(4, 2, 2))
    a, b = train_one(cfg, data), train_one(cfg, data)
    assert a.status == "done" and a.epochs == 3
    assert a.metrics == b.metrics  # same seed, same numbers
    for split in ("train", "val", "test"):
        assert 0.0 <= a.metrics[f"{split}_oa"] <= 1.0
        assert 0.0 <= a.metrics[f"{split}_miou"] <= 1.0
        assert math.isfinite(a.metrics[f"{split}_loss"])
