"""A user's own ``Data`` through the Python API gets what a graph file gets; graphs fathom
already prepared are not prepared twice; ``load_dataset`` can apply training's feature
preprocessing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

import fathom.data.build as B
from fathom.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from fathom.data.build import build_dataset, is_prepared, prepare_user_graph
from fathom.errors import DataError
from fathom.experiments.run import run_experiment

N = 40
CFG = ExperimentConfig(
    model=ModelConfig(depth=2, hidden=8), train=TrainConfig(epochs=2), seeds=1, seed=3
)


def _bare(n: int = N) -> Data:
    g = torch.Generator().manual_seed(0)
    src = torch.arange(n)
    edge_index = torch.stack([src, (src + 1) % n])  # directed ring
    return Data(x=torch.rand(n, 5, generator=g), edge_index=edge_index, y=torch.arange(n) % 3)


def test_bare_data_is_prepared_like_the_same_graph_in_a_file(tmp_path: Path) -> None:
    bare = _bare()
    path = tmp_path / "g.npz"
    np.savez(path, **{k: bare[k].numpy() for k in ("x", "edge_index", "y")})
    cfg = DataConfig(name=str(path))
    from_file = build_dataset(cfg, seed=3)
    from_api = prepare_user_graph(bare, cfg, seed=3)
    for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(from_file[key], from_api[key]), key
    assert "train_mask" not in bare and bare.edge_index.shape == (2, N)  # caller's untouched
    assert is_prepared(from_file) and is_prepared(from_api) and not is_prepared(bare)


def test_run_experiment_on_bare_data_without_masks() -> None:
    result = run_experiment(CFG, data=_bare())
    assert result.runs[0]["status"] == "done"
    assert result.dataset["train"] + result.dataset["val"] + result.dataset["test"] == N


def test_prepared_data_is_not_prepared_again(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = replace(CFG, data=DataConfig(name="csbm"))
    data = build_dataset(cfg.data, seed=cfg.seed)

    def twice(*args: object, **kwargs: object) -> Data:
        raise AssertionError("prepared twice")

    monkeypatch.setattr(B, "prepare_user_graph", twice)
    assert run_experiment(cfg, data=data).runs[0]["status"] == "done"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"y": torch.where(torch.arange(N) == 7, 10**9, 0)}, ["label 1000000000", "40 nodes"]),
        ({"y": torch.where(torch.arange(N) == 7, -1, 0)}, ["negative"]),
        ({"x": torch.zeros(N, 0)}, ["zero feature columns"]),
        ({"edge_index": torch.tensor([[0], [N]])}, ["out of range"]),
        ({"train_mask": torch.ones(N, dtype=torch.bool)}, ["all three masks or none"]),
    ],
)
def test_bad_bare_data_is_one_line(change: dict, words: list[str]) -> None:
    data = _bare()
    for key, value in change.items():
        data[key] = value
    with pytest.raises(DataError) as info:
        run_experiment(CFG, data=data)
    assert "\n" not in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_load_dataset_can_apply_trainings_normalisation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fathom.data.datasets as D
    from data.test_datasets import write_planetoid
    from fathom.data.datasets import load_dataset

    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(D, "known_checksums", lambda: {})  # the fixture is not the real Cora
    data_dir = write_planetoid(tmp_path / "data")
    raw = load_dataset("cora", data_dir=data_dir, verify=False)
    assert raw.x.sum(1).max() > 1  # as published: 0/1 bag of words
    trained = build_dataset(DataConfig(name="cora", data_dir=str(data_dir)))
    for mode in (None, True):
        same = load_dataset("cora", data_dir=data_dir, verify=False, normalize_features=mode)
        assert torch.equal(same.x, trained.x)
        torch.testing.assert_close(same.x.sum(1), torch.ones(same.num_nodes))
