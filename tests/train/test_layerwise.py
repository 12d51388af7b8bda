"""Tests of fathom.train.layerwise.fit_layerwise and its dispatch from train_one."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

import fathom.train.layerwise as layerwise_mod
from fathom.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from fathom.data.synthetic import make_synthetic
from fathom.errors import ConfigError
from fathom.experiments.run import train_one
from fathom.models.build import build_model
from fathom.models.deep_gnn import DeepGNN
from fathom.tasks.node import NodeClassification
from fathom.train.layerwise import fit_layerwise

EPOCHS = 3


@pytest.fixture(scope="module")
def graph() -> Data:
    return make_synthetic(
        "csbm", num_nodes=60, num_classes=3, feature_dim=6, avg_degree=4.0, seed=0
    )


def _model(graph: Data, depth: int = 5, **kw) -> DeepGNN:
    torch.manual_seed(0)
    cfg = ModelConfig(depth=depth, hidden=8, head="linear", dropout=0.0, **kw)
    return build_model(cfg, graph.num_features, int(graph.y.max()) + 1)


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(epochs=EPOCHS, patience=0, lr=0.05, weight_decay=0.0, **kw)


def _snapshot(module: nn.Module) -> dict[str, Tensor]:
    return {k: p.detach().clone() for k, p in module.named_parameters()}


def _changed(before: dict[str, Tensor], after: dict[str, Tensor]) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before)


class StageSpy:
    """Wraps ``fit``: records, per stage, the active blocks, what was trainable and which
    parts' parameters changed."""

    def __init__(self, fit, model: DeepGNN) -> None:
        self.fit, self.model = fit, model
        self.stages: list[dict] = []

    def __call__(self, model, task, data, cfg, callbacks=()):
        parts = {f"block{i}": b for i, b in enumerate(model.blocks)}
        parts["head"] = model.head
        if model.encoder is not None:
            parts["encoder"] = model.encoder
        before = {name: _snapshot(m) for name, m in parts.items()}
        trainable = {
            name: all(p.requires_grad for p in m.parameters()) for name, m in parts.items()
        }
        result = self.fit(model, task, data, cfg, callbacks)
        changed = {name: _changed(before[name], _snapshot(m)) for name, m in parts.items()}
        self.stages.append(
            {"active": model.active_blocks, "trainable": trainable, "changed": changed}
        )
        return result


@pytest.fixture
def spy_run(graph: Data, monkeypatch: pytest.MonkeyPatch):
    def run(depth: int = 5, step: int = 2, **model_kw):
        model = _model(graph, depth=depth, **model_kw)
        spy = StageSpy(layerwise_mod.fit, model)
        monkeypatch.setattr(layerwise_mod, "fit", spy)
        result = fit_layerwise(model, NodeClassification(), graph, _cfg(layerwise=step))
        return model, result, spy.stages

    return run


def test_stages_are_tagged_in_the_history(spy_run) -> None:
    _, result, stages = spy_run()
    assert [s["active"] for s in stages] == [2, 4, 5]
    tags = [r["stage"] for r in result.history]
    assert tags == [1.0] * EPOCHS + [2.0] * EPOCHS + [3.0] * EPOCHS
    assert result.epochs == len(result.history) == 3 * EPOCHS
    assert result.status == "done"
    # the epoch counter restarts in every stage
    assert [r["epoch"] for r in result.history] == [1.0, 2.0, 3.0] * 3


def test_all_parameters_trainable_and_all_blocks_active_at_the_end(spy_run, graph) -> None:
    model, _, _ = spy_run()
    assert all(p.requires_grad for p in model.parameters())
    assert model.active_blocks is None
    out = model(graph.x, graph.edge_index)
    assert out.shape == (graph.num_nodes, 3)


def test_first_stages_train_new_blocks_and_freeze_earlier_ones(spy_run) -> None:
    _, _, stages = spy_run(encoder="linear")
    s1, s2, _ = stages
    # stage 1: blocks 0-1, the encoder and the head train
    assert all(s1["trainable"].values())
    assert {k for k, v in s1["changed"].items() if v} == {"block0", "block1", "encoder", "head"}
    # stage 2: blocks 0-1 and the encoder are frozen; blocks 2-3 and the head train
    assert {k for k, v in s2["trainable"].items() if not v} == {"block0", "block1", "encoder"}
    assert {k for k, v in s2["changed"].items() if v} == {"block2", "block3", "head"}


def test_last_partial_stage_freezes_every_earlier_block(spy_run) -> None:
    _, _, stages = spy_run(encoder="linear")
    s3 = stages[2]
    assert s3["active"] == 5
    frozen = {f"block{i}" for i in range(4)} | {"encoder"}
    assert {k for k, v in s3["trainable"].items() if not v} == frozen
    assert {k for k, v in s3["changed"].items() if v} == {"block4", "head"}


def test_even_split_freezes_every_earlier_block(spy_run) -> None:
    _, _, stages = spy_run(depth=6, step=2)
    assert [s["active"] for s in stages] == [2, 4, 6]
    s3 = stages[2]
    assert {k for k, v in s3["trainable"].items() if not v} == {f"block{i}" for i in range(4)}
    assert {k for k, v in s3["changed"].items() if v} == {"block4", "block5", "head"}


def test_inactive_blocks_are_not_run(graph: Data) -> None:
    model = _model(graph)
    calls: list[int] = []
    for i, block in enumerate(model.blocks):
        block.register_forward_hook(lambda *_, i=i: calls.append(i))
    model.active_blocks = 2
    model(graph.x, graph.edge_index)
    assert calls == [0, 1]


def test_step_larger_than_depth_is_one_stage(spy_run) -> None:
    _, result, stages = spy_run(depth=3, step=5)
    assert [s["active"] for s in stages] == [3]
    assert {r["stage"] for r in result.history} == {1.0}


def test_jumping_knowledge_is_rejected(graph: Data) -> None:
    model = _model(graph, skip="jk")
    with pytest.raises(ConfigError, match=r"train\.layerwise cannot be combined with model\.skip"):
        fit_layerwise(model, NodeClassification(), graph, _cfg(layerwise=2))


def test_layerwise_zero_is_rejected(graph: Data) -> None:
    with pytest.raises(ConfigError, match=r"train\.layerwise must be >= 1"):
        fit_layerwise(_model(graph), NodeClassification(), graph, _cfg(layerwise=0))


def _experiment(arch: str, layerwise: int) -> ExperimentConfig:
    return ExperimentConfig(
        data=DataConfig(name="csbm"),
        model=ModelConfig(arch=arch, depth=3, hidden=8, head="linear", dropout=0.0),
        train=_cfg(layerwise=layerwise),
    )


@pytest.mark.parametrize(
    ("arch", "model"), [("sgc", "SGC"), ("appnp", "APPNP"), ("incep", "IncepGCN")]
)
def test_train_one_rejects_layerwise_for_a_non_deep_arch(
    graph: Data, arch: str, model: str
) -> None:
    with pytest.raises(
        ConfigError, match=rf"train\.layerwise needs a block stack \(model\.arch 'deep'\).*{model}"
    ) as info:
        train_one(_experiment(arch, 2), graph)
    assert "\n" not in str(info.value)


def test_train_one_dispatches_to_layerwise(graph: Data) -> None:
    result = train_one(_experiment("deep", 2), graph)
    assert [r["stage"] for r in result.history] == [1.0] * EPOCHS + [2.0] * EPOCHS
    result = train_one(_experiment("deep", 0), graph)
    assert all("stage" not in r for r in result.history)
