"""Library functions moved out of the CLI: the diagnosis of a config, the NeighborsMatch run
cap, the over-smoothing study's model check, reproduction cells with overrides."""

from __future__ import annotations

import pytest

from fathom.config import ExperimentConfig, apply_overrides
from fathom.errors import ConfigError, FathomError
from fathom.experiments.diagnosis import check_diagnosable, grid_reference, model_name
from fathom.experiments.neighbors_match import capped
from fathom.experiments.oversmoothing_study import DEFAULT_STUDY_MODELS, check_study_models
from fathom.experiments.reproduce import build_cells, override_cells


def test_model_name() -> None:
    cfg = apply_overrides(ExperimentConfig(), {"model.depth": 8, "model.skip": "res"})
    assert model_name(cfg) == "gcn x8 skip=res"
    assert model_name(apply_overrides(cfg, {"model.arch": "sgc"})) == "sgc K=8"


def test_only_transductive_node_models_are_diagnosed() -> None:
    check_diagnosable(ExperimentConfig())
    for override in ({"task": "graph"}, {"data.inductive": True}):
        with pytest.raises(FathomError, match="transductive node-classification"):
            check_diagnosable(apply_overrides(ExperimentConfig(), override))


def test_grid_reference_is_a_square_grid_of_about_n_nodes() -> None:
    (name, report), *rest = grid_reference(100, hops=3, seed=0).items()
    assert not rest and name == "grid 10x10"
    assert report


def test_capped_neighbors_match_runs() -> None:
    assert capped() == {}
    assert capped(50) == {"max_epochs": 50, "eval_every": 50}
    assert capped(500, 9.5) == {"max_epochs": 500, "eval_every": 100, "time_limit_s": 9.5}


def test_study_models_are_checked() -> None:
    assert check_study_models(DEFAULT_STUDY_MODELS) == list(DEFAULT_STUDY_MODELS)
    with pytest.raises(ConfigError, match="'GXN'"):
        check_study_models(["GCN", "GXN"])


def test_override_cells_applies_to_every_config() -> None:
    cells = build_cells("depth", datasets=["cora"], models=["gcn"], depths=[2], seeds=2)
    moved = override_cells(cells, [("device", "cpu")])
    assert [c.device for cell in moved for c in cell.configs] == ["cpu", "cpu"]
    assert override_cells(cells, []) == cells
