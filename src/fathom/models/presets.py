"""Published model configurations, shipped as YAML config files with their source cited.

A preset is an ordinary experiment config (``src/fathom/presets/<name>.yaml``) whose header
comment names the paper and code it comes from (``# Source: …``) and how fathom's setting
differs, if at all; an optional ``# Setting:`` line says where its hyper-parameters come from
(:data:`SETTINGS`). ``fathom train --preset gcnii-cora`` starts from it; flags and
``--set key=value`` overrides apply on top.
"""

from __future__ import annotations

from pathlib import Path

from fathom.config import ExperimentConfig, load_config
from fathom.errors import ConfigError
from fathom.yamlio import short

__all__ = [
    "PRESETS_DIR",
    "SETTINGS",
    "list_presets",
    "load_preset",
    "preset_path",
    "preset_setting",
    "preset_source",
]

PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"


def list_presets() -> list[str]:
    """Names of every shipped preset, sorted."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """The YAML file of preset ``name``; an empty or unknown name (or one that is not a plain
    preset name, e.g. a path) raises :class:`ConfigError` listing the choices."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            f"--preset must name a preset, got {short(name)}; choose one of: "
            f"{', '.join(list_presets())}"
        )
    if name not in list_presets():  # never a path: "../x" must not read a file elsewhere
        raise ConfigError(
            f"unknown --preset {short(name)}; choose one of: {', '.join(list_presets())}"
        )
    return PRESETS_DIR / f"{name}.yaml"


def load_preset(name: str) -> ExperimentConfig:
    """The validated config of preset ``name``."""
    return load_config(preset_path(name))


def _header(name: str, field: str) -> str:
    prefix = f"# {field}:"
    for line in preset_path(name).read_text(encoding="utf-8").splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    return ""


def preset_source(name: str) -> str:
    """The ``# Source:`` line of preset ``name`` (the paper / code it reproduces)."""
    return _header(name, "Source")


SETTINGS = ("published", "tuned on validation", "fathom default")
"""Where a preset's hyper-parameters come from (its ``# Setting:`` line): the paper or its
code, a declared validation-only search, or fathom's own choice."""


def preset_setting(name: str) -> str:
    """The ``# Setting:`` line of preset ``name`` (one of :data:`SETTINGS`), or ``""`` for
    a preset without one."""
    return _header(name, "Setting")
