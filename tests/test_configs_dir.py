"""Every YAML config shipped in configs/ loads and validates (litgpt's habit)."""

from pathlib import Path

import pytest

from fathom.config import load_config

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("**/*.yaml"))


def test_there_are_configs() -> None:
    assert CONFIGS, "configs/ holds no YAML files"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.data.name
    assert cfg.model.depth >= 1
