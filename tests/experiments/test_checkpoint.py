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


def _good(tmp_path: Path) -> tuple[Path, dict]:
    cfg = ExperimentConfig(model=ModelConfig(depth=2, hidden=4))
    path = save_checkpoint(
        tmp_path / "good.pt", cfg, build_model(cfg.model, 5, 2), num_features=5, num_classes=2
    )
    return path, torch.load(path, weights_only=True)


def _edit(payload: dict, **changes: object) -> dict:
    out = dict(payload)
    for key, value in changes.items():
        if value is _DROP:
            out.pop(key)
        else:
            out[key] = value
    return out


_DROP = object()


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"config": _DROP}, "is missing config"),
        ({"state_dict": _DROP}, "is missing state_dict"),
        ({"config": _DROP, "state_dict": _DROP}, "is missing config, state_dict"),
        ({"num_classes": _DROP}, "is missing num_classes"),
        ({"config": [1, 2]}, "config must be a mapping, got list"),
        ({"config": {"model": {"depth": "deep"}}}, "bad config"),
        ({"state_dict": {}}, "state_dict must be a non-empty mapping"),
        ({"state_dict": [1]}, "state_dict must be a non-empty mapping of tensors, got list"),
        ({"state_dict": {"w": 3}}, "state_dict entry 'w' is int, not a tensor"),
        ({"num_features": "5"}, "num_features must be a positive integer, got str"),
        ({"num_classes": -1}, "num_classes must be a positive integer"),
        ({"num_classes": True}, "num_classes must be a positive integer"),
        ({"metrics": [0.5]}, "metrics must be a mapping"),
    ],
)
def test_malformed_checkpoint_is_one_line_naming_the_file(
    tmp_path: Path, changes: dict, words: str
) -> None:
    _, payload = _good(tmp_path)
    bad = tmp_path / "bad.pt"
    torch.save(_edit(payload, **changes), bad)
    with pytest.raises(FathomError) as info:
        load_checkpoint(bad)
    message = str(info.value)
    assert "\n" not in message and str(bad) in message and words in message, message


def test_truncated_folder_and_foreign_checkpoints(tmp_path: Path) -> None:
    path, _ = _good(tmp_path)
    data = path.read_bytes()
    for n in (0, 10, len(data) // 2, len(data) - 1):
        cut = tmp_path / f"cut{n}.pt"
        cut.write_bytes(data[:n])
        with pytest.raises(FathomError) as info:
            load_checkpoint(cut)
        assert "\n" not in str(info.value) and str(cut) in str(info.value)
    with pytest.raises(FathomError, match="is a folder"):
        load_checkpoint(tmp_path)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(FathomError, match="not a fathom checkpoint"):
        load_checkpoint(tensor)


def test_a_pickle_in_a_checkpoint_never_runs(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    _, payload = _good(tmp_path)
    evil = tmp_path / "evil.pt"
    torch.save({**payload, "metrics": Evil()}, evil, pickle_module=pickle)
    with pytest.raises(FathomError, match="cannot read checkpoint"):
        load_checkpoint(evil)
    assert not marker.exists()


def test_weights_that_do_not_fit_the_config(tmp_path: Path) -> None:
    _, payload = _good(tmp_path)
    bad = tmp_path / "bad.pt"
    weights = {k: torch.zeros(1) for k in payload["state_dict"]}
    torch.save({**payload, "state_dict": weights}, bad)
    with pytest.raises(FathomError, match="checkpoint weights do not fit its config"):
        build_from_checkpoint(load_checkpoint(bad))


def test_saving_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = _good(tmp_path)
    before = path.read_bytes()

    def boom(obj, f, *a, **kw):
        Path(f).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    cfg = ExperimentConfig(model=ModelConfig(depth=2, hidden=4))
    with pytest.raises(OSError):
        save_checkpoint(path, cfg, build_model(cfg.model, 5, 2), num_features=5, num_classes=2)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.pt"]
