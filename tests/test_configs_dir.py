"""Every YAML shipped in configs/ validates (litgpt's habit): configs load as experiment
configs, files under configs/sweeps/ as sweep specs that expand to runs."""

from pathlib import Path

import pytest

from fathom.config import load_config
from fathom.experiments.spec import expand, load_spec

ROOT = Path(__file__).parents[1] / "configs"
SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))
CONFIGS = sorted(p for p in ROOT.glob("**/*.yaml") if p not in SWEEPS)


def test_there_are_configs_and_sweeps() -> None:
    assert CONFIGS and SWEEPS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.data.name
    assert cfg.model.depth >= 1


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_sweep_spec_expands(path: Path) -> None:
    runs = expand(load_spec(path))
    assert runs and all(cfg.seeds == 1 for cfg in runs)


def test_csbm_depth_sweep_is_the_documented_grid() -> None:
    runs = expand(load_spec(ROOT / "sweeps" / "csbm-depth.yaml"))
    assert len(runs) == 5 * 2 * 3
    assert {r.model.depth for r in runs} == {2, 4, 8, 16, 32}
    assert {r.model.skip for r in runs} == {"none", "res"}
    assert {r.seed for r in runs} == {0, 1, 2}
