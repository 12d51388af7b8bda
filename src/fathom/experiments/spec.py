"""Sweep specs: a base config plus axes, expanded into single-seed runs.

A sweep spec is a YAML file (read with a safe loader that rejects duplicate keys)::

    name: csbm-depth            # required: letters, digits, '_', '.', '-'
    config: ../cora-gcn.yaml    # optional: a config file (relative to this spec) loaded first
    base:                       # optional: a mapping in ExperimentConfig's shape, applied over
      data: {name: csbm}        #   the defaults (or over ``config``)
      train: {epochs: 100}
    grid:                       # optional axes: dotted config key -> non-empty list of values,
      model.depth: [2, 4, 8]    #   or "range(N)" / "range(A, B)" / "range(A, B, STEP)"
      model.skip: [none, res]
      seed: range(3)
    zip:                        # optional list of groups; the lists of one group have equal
      - {model.norm: [none, batch], model.dropout: [0.5, 0.1]}   # lengths and vary together
    exclude:                    # optional list of partial points; a run matching every
      - {model.skip: res, model.depth: 2}                       # key/value of an entry is dropped

Expansion (:func:`expand`): the Cartesian product of the grid axes in the order written (the
last axis varies fastest), then of the zip groups in the order written (each group is one axis
whose positions move all its keys together; zip groups vary faster than grid axes). Every point
is applied to the base config with :func:`~fathom.config.apply_overrides` (so every value is
validated and coerced), a point whose ``seeds`` is above 1 becomes ``seeds`` single-seed runs
(``seed, seed + 1, …``), exclusions are applied to those runs (values are compared after
resolution, so ``0`` matches ``model.dropout: 0.0`` and ``1e-3`` matches ``0.001``; an entry's
``seeds`` is compared with the point's ``seeds`` before expansion), and runs with the same
:func:`~fathom.config.config_hash` as an earlier run are dropped. Every run returned has
``seeds == 1``; the order is deterministic.

Every problem with a spec raises a one-line :class:`~fathom.errors.ConfigError` naming the spec
file and the field.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fathom.config import (
    ExperimentConfig,
    apply_overrides,
    config_from_dict,
    config_hash,
    config_to_dict,
    load_config,
    with_seed,
)
from fathom.errors import ConfigError

__all__ = ["SPEC_FIELDS", "SweepSpec", "describe", "expand", "load_spec", "spec_from_dict"]

SPEC_FIELDS = ("name", "config", "base", "grid", "zip", "exclude")
"""The top-level fields a sweep spec may have."""

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_INT = r"\s*([-+]?\d+)\s*"
_RANGE = re.compile(rf"range\({_INT}(?:,{_INT}(?:,{_INT})?)?\)")


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep spec (see the module docstring for the YAML format)."""

    name: str
    """The sweep's name: runs are registered under it in the results store."""
    base: ExperimentConfig = field(default_factory=ExperimentConfig)
    """The config every point starts from (``config`` file, then ``base`` applied over it)."""
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """Grid axes in the order written: dotted config key -> values (ranges expanded)."""
    zip: tuple[dict[str, tuple[Any, ...]], ...] = ()
    """Zip groups: within a group every key has as many values, and they vary together."""
    exclude: tuple[dict[str, Any], ...] = ()
    """Partial points to drop, values resolved to the config's own types."""
    source: Path | None = None
    """The spec file, when it was read from one."""

    @property
    def axes(self) -> list[str]:
        """Every swept key: the grid axes, then the keys of each zip group."""
        return [*self.grid, *(key for group in self.zip for key in group)]


# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key written twice in one mapping."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:  # before merging: an own key may override a merged ('<<') one
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        if isinstance(key, (str, int, float, bool)) or key is None:
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec YAML file.

    Raises:
        ConfigError: the file is missing, unreadable or not valid YAML (with the line), or the
            spec is invalid (see :func:`spec_from_dict`).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"sweep spec not found: {p}")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read sweep spec {p}: {_one_line(exc)}") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if problem else ""
        raise ConfigError(f"sweep spec {p} is not valid YAML{where}{detail}") from None
    return spec_from_dict(raw, source=p)


def spec_from_dict(raw: Any, *, source: str | Path | None = None) -> SweepSpec:
    """Validate a spec given as a mapping (as read from YAML) and build a :class:`SweepSpec`.

    Args:
        raw: the parsed YAML document.
        source: the spec file; named in errors, and ``config:`` is resolved relative to it
            (relative to the working directory without one).

    Raises:
        ConfigError: one line naming the spec and the field: not a mapping, missing or invalid
            ``name``, unknown top-level field, an axis that is not a non-empty list or a valid
            ``range(…)`` string, a zip group with lists of unequal lengths, a key swept twice,
            an exclude entry that is not a mapping, an unknown config key or a bad value.
    """
    src = Path(source) if source is not None else None
    where = f"sweep spec {src}" if src is not None else "sweep spec"

    def fail(msg: str) -> ConfigError:
        return ConfigError(f"{where}: {msg}")

    if not isinstance(raw, Mapping):
        got = "an empty file" if raw is None else type(raw).__name__
        raise fail(f"must be a mapping with fields {', '.join(SPEC_FIELDS)}, got {got}")
    unknown = [k for k in raw if k not in SPEC_FIELDS]
    if unknown:
        raise fail(f"unknown field {unknown[0]!r}; valid fields: {', '.join(SPEC_FIELDS)}")

    name = raw.get("name")
    if name is None:
        raise fail("missing required field 'name'")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise fail(f"name must be letters, digits, '_', '.' or '-', got {name!r}")

    base = _base_config(raw, src, fail)

    grid_raw = raw.get("grid")
    if grid_raw is None:
        grid_raw = {}
    if not isinstance(grid_raw, Mapping):
        raise fail(f"grid must be a mapping of config key -> list of values, got {grid_raw!r}")
    grid: dict[str, tuple[Any, ...]] = {}
    for key, values in grid_raw.items():
        label = f"grid axis {key!r}"
        _check_key(key, label, fail)
        grid[key] = _axis_values(values, label, fail)

    zip_raw = raw.get("zip")
    if zip_raw is None:
        zip_raw = []
    if not isinstance(zip_raw, list):
        raise fail(
            f"zip must be a list of mappings (groups of keys varied together), got {zip_raw!r}"
        )
    seen: dict[str, str] = {key: f"grid axis {key!r}" for key in grid}
    groups: list[dict[str, tuple[Any, ...]]] = []
    for i, group_raw in enumerate(zip_raw):
        if not isinstance(group_raw, Mapping) or not group_raw:
            raise fail(f"zip[{i}] must be a non-empty mapping of key -> list, got {group_raw!r}")
        group: dict[str, tuple[Any, ...]] = {}
        for key, values in group_raw.items():
            label = f"zip[{i}] axis {key!r}"
            _check_key(key, label, fail)
            if key in seen:
                raise fail(f"{label}: key {key!r} is already swept by {seen[key]}")
            seen[key] = label
            group[key] = _axis_values(values, label, fail)
        lengths = {len(v) for v in group.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{k} has {len(v)}" for k, v in group.items())
            raise fail(f"zip[{i}]: lists must have equal lengths ({sizes})")
        groups.append(group)

    for label, key, values in [
        *((f"grid axis {k!r}", k, v) for k, v in grid.items()),
        *((f"zip[{i}] axis {k!r}", k, v) for i, g in enumerate(groups) for k, v in g.items()),
    ]:
        for value in values:
            _resolve(base, key, value, label, fail)

    exclude_raw = raw.get("exclude")
    if exclude_raw is None:
        exclude_raw = []
    if not isinstance(exclude_raw, list):
        raise fail(f"exclude must be a list of mappings (partial points), got {exclude_raw!r}")
    exclude: list[dict[str, Any]] = []
    for i, entry in enumerate(exclude_raw):
        if not isinstance(entry, Mapping) or not entry:
            raise fail(f"exclude[{i}] must be a non-empty mapping of key -> value, got {entry!r}")
        resolved: dict[str, Any] = {}
        for key, value in entry.items():
            label = f"exclude[{i}] key {key!r}"
            _check_key(key, label, fail)
            if isinstance(value, (list, dict)):
                raise fail(f"{label} must be a single value, got {value!r}")
            resolved[key] = _resolve(base, key, value, label, fail)
        exclude.append(resolved)

    return SweepSpec(
        name=name, base=base, grid=grid, zip=tuple(groups), exclude=tuple(exclude), source=src
    )


def _base_config(raw: Mapping[str, Any], src: Path | None, fail: Any) -> ExperimentConfig:
    """The ``config`` file (if any) with the ``base`` mapping merged over it."""
    cfg = ExperimentConfig()
    config_path = raw.get("config")
    if config_path is not None:
        if not isinstance(config_path, str) or not config_path:
            raise fail(f"config must be the path of a config file, got {config_path!r}")
        path = Path(config_path).expanduser()
        if not path.is_absolute() and src is not None:
            path = src.parent / path
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            raise fail(f"config {config_path!r}: {exc}") from None
    base = raw.get("base")
    if base is None:
        return cfg
    if not isinstance(base, Mapping):
        raise fail(f"base must be a mapping in the shape of a config, got {base!r}")
    try:
        return config_from_dict(_merge(config_to_dict(cfg), base))
    except ConfigError as exc:
        raise fail(f"base: {exc}") from None


def _merge(into: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(into)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _check_key(key: Any, label: str, fail: Any) -> None:
    if not isinstance(key, str) or not key:
        raise fail(f"{label}: keys must be dotted config keys such as model.depth")


def _axis_values(values: Any, label: str, fail: Any) -> tuple[Any, ...]:
    """A list, or a ``range(…)`` string, as a non-empty tuple."""
    if isinstance(values, str):
        text = values.strip()
        if not text.startswith("range"):
            raise fail(f"{label} must be a list of values or 'range(N)', got {values!r}")
        match = _RANGE.fullmatch(text)
        if match is None:
            raise fail(
                f"{label}: malformed range {values!r}; write range(N), range(A, B) or "
                "range(A, B, STEP) with integers"
            )
        args = [int(g) for g in match.groups() if g is not None]
        if len(args) == 3 and args[2] == 0:
            raise fail(f"{label}: malformed range {values!r}; STEP must not be 0")
        out: tuple[Any, ...] = tuple(range(*args))
        if not out:
            raise fail(f"{label}: {values!r} is empty")
        return out
    if not isinstance(values, list):
        raise fail(f"{label} must be a list of values or 'range(N)', got {values!r}")
    if not values:
        raise fail(f"{label} must not be empty")
    for value in values:
        if isinstance(value, (list, dict)):
            raise fail(f"{label}: values must be scalars, got {value!r}")
    return tuple(values)


def _get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _resolve(base: ExperimentConfig, key: str, value: Any, label: str, fail: Any) -> Any:
    """``value`` validated and coerced by the config (``0`` -> ``0.0`` for a float field)."""
    try:
        return _get(apply_overrides(base, {key: value}), key)
    except ConfigError as exc:
        raise fail(f"{label}: {exc}") from None


# --------------------------------------------------------------------------- expansion


def _points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The overrides of every point, grid axes then zip groups (the last varies fastest)."""
    dims: list[list[dict[str, Any]]] = [
        [{key: value} for value in values] for key, values in spec.grid.items()
    ]
    for group in spec.zip:
        length = len(next(iter(group.values())))
        dims.append([{key: values[i] for key, values in group.items()} for i in range(length)])
    return [
        {key: value for part in combo for key, value in part.items()}
        for combo in itertools.product(*dims)
    ]


def _excluded(spec: SweepSpec, run: ExperimentConfig, seeds: int) -> bool:
    for entry in spec.exclude:
        if all(
            (seeds if key == "seeds" else _get(run, key)) == value for key, value in entry.items()
        ):
            return True
    return False


def _expand(spec: SweepSpec) -> tuple[int, list[ExperimentConfig]]:
    where = f"sweep spec {spec.source}" if spec.source is not None else "sweep spec"
    points = _points(spec)
    runs: dict[str, ExperimentConfig] = {}
    for overrides in points:
        try:
            cfg = apply_overrides(spec.base, overrides)
        except ConfigError as exc:
            point = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
            raise ConfigError(f"{where}: point {point}: {exc}") from None
        for i in range(cfg.seeds):
            run = with_seed(cfg, cfg.seed + i)
            if not _excluded(spec, run, cfg.seeds):
                runs.setdefault(config_hash(run), run)
    if not runs:
        raise ConfigError(
            f"{where}: expands to zero runs ({len(points)} points, all excluded by 'exclude')"
        )
    return len(points), list(runs.values())


def expand(spec: SweepSpec) -> list[ExperimentConfig]:
    """Every single-seed run of ``spec``, in a deterministic order, without duplicates.

    Raises:
        ConfigError: a point is not a valid config (naming the point and the key), or the
            spec expands to zero runs.
    """
    return _expand(spec)[1]


def describe(spec: SweepSpec) -> dict[str, Any]:
    """A JSON-serialisable summary for ``--dry-run``: name, source, axes and their sizes,
    zip groups, exclusions, ``points`` (grid × zip combinations) and ``runs`` (after seed
    expansion, exclusion and de-duplication)."""
    points, runs = _expand(spec)
    return {
        "name": spec.name,
        "source": str(spec.source) if spec.source is not None else None,
        "axes": spec.axes,
        "grid": {key: list(values) for key, values in spec.grid.items()},
        "zip": [{key: list(values) for key, values in g.items()} for g in spec.zip],
        "exclude": [dict(entry) for entry in spec.exclude],
        "points": points,
        "runs": len(runs),
    }


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
