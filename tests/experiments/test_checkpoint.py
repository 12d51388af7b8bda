"""Checkpoints: save a trained model with its config, rebuild it exactly, refuse bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fathom.config import ExperimentConfig, ModelConfig
from fathom.data.synthetic import make_synthetic
from fathom.errors import ConfigError, DataNotFoundError, FathomError
from fathom.experiments.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint
from fathom.models.build import build_model


def test_checkpoint_round_trip_reproduces_outputs(tmp_path: Path) -> None:
    data = make_synthetic("csbm", num_nodes=50, feature_dim=6, num_classes=3, seed=0)
    cfg = ExperimentConfig(model=ModelConfig(depth=3, hidden=8, skip="res", norm="batch"))
    model = build_model(cfg.model, 6, 3).eval()
    path = save_checkpoint(
        tmp_path / "m.pt", cfg, model, num_features=6, num_classes=3, metrics={"test_acc": 0.5}
    )
    payload = load_checkpoint(path)
    assert payload["config"] == cfg and payload["metrics"] == {"test_acc": 0.5}
    rebuilt = build_from_checkpoint(payload, 6, 3)
    assert torch.equal(rebuilt(data.x, data.edge_index), model(data.x, data.edge_index))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(FathomError, match="cannot read checkpoint"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"a": 1}, other)
    with pytest.raises(FathomError, match="not a fathom checkpoint"):
        load_checkpoint(other)
    cfg = ExperimentConfig(model=ModelConfig(depth=2, hidden=4))
    path = save_checkpoint(
        tmp_path / "m.pt", cfg, build_model(cfg.model, 5, 2), num_features=5, num_classes=2
    )
    with pytest.raises(ConfigError, match="takes 5 input features, the graph has 7"):
        build_from_checkpoint(load_checkpoint(path), 7, 2)
