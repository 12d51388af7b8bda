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
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from fathom.yamlio import load_file, short

__all__ = [
    "DEFAULT_MAX_RUNS",
    "SPEC_FIELDS",
    "SweepSpec",
    "describe",
    "expand",
    "load_spec",
    "spec_from_dict",
]

SPEC_FIELDS = ("name", "config", "base", "grid", "zip", "exclude")
"""The top-level fields a sweep spec may have."""

DEFAULT_MAX_RUNS = 10_000
"""The most points (grid × zip combinations) and runs a spec may expand to unless
``fathom sweep --max-runs`` raises it: counted from the axis lengths before anything is built."""

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
    max_runs: int = DEFAULT_MAX_RUNS
    """The most points and runs it may expand to (``fathom sweep --max-runs``)."""

    @property
    def axes(self) -> list[str]:
        """Every swept key: the grid axes, then the keys of each zip group."""
        return [*self.grid, *(key for group in self.zip for key in group)]


# --------------------------------------------------------------------------- loading


def load_spec(path: str | Path, *, max_runs: int = DEFAULT_MAX_RUNS) -> SweepSpec:
    """Read and validate a sweep spec YAML file (with :func:`fathom.yamlio.load_file`: a
    duplicate key, an alias bomb, a binary, empty or oversized file is refused).

    Args:
        path: the spec file.
        max_runs: the most points (grid × zip combinations) and runs the spec may expand to
            (``fathom sweep --max-runs``); kept with the spec for :func:`expand`.

    Raises:
        ConfigError: the file is missing, unreadable or not valid YAML (with the line), or the
            spec is invalid (see :func:`spec_from_dict`).
    """
    raw = load_file(
        path, what="sweep spec", expect=f"a mapping with fields {', '.join(SPEC_FIELDS)}"
    )
    return spec_from_dict(raw, source=Path(path), max_runs=max_runs)


def spec_from_dict(
    raw: Any, *, source: str | Path | None = None, max_runs: int = DEFAULT_MAX_RUNS
) -> SweepSpec:
    """Validate a spec given as a mapping (as read from YAML) and build a :class:`SweepSpec`.

    Args:
        raw: the parsed YAML document.
        source: the spec file; named in errors, and ``config:`` is resolved relative to it
            (relative to the working directory without one).
        max_runs: the most points (grid × zip combinations, counted from the axis lengths
            before any is built) and runs the spec may expand to.

    Raises:
        ConfigError: one line naming the spec and the field: not a mapping, missing or invalid
            ``name``, unknown top-level field, an axis that is not a non-empty list or a valid
            ``range(…)`` string, a zip group with lists of unequal lengths, a key swept twice,
            an exclude entry that is not a mapping, an unknown config key or a bad value,
            or more than ``max_runs`` points.
    """
    _check_max_runs(max_runs)
    src = Path(source) if source is not None else None
    where = f"sweep spec {src}" if src is not None else "sweep spec"

    def fail(msg: str) -> ConfigError:
        return ConfigError(f"{where}: {msg}")

    if not isinstance(raw, Mapping):
        got = "an empty file" if raw is None else type(raw).__name__
        raise fail(f"must be a mapping with fields {', '.join(SPEC_FIELDS)}, got {got}")
    unknown = [k for k in raw if k not in SPEC_FIELDS]
    if unknown:
        raise fail(f"unknown field {short(unknown[0])}; valid fields: {', '.join(SPEC_FIELDS)}")

    name = raw.get("name")
    if name is None:
        raise fail("missing required field 'name'")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise fail(f"name must be letters, digits, '_', '.' or '-', got {short(name)}")

    base = _base_config(raw, src, fail)

    grid_raw = raw.get("grid")
    if grid_raw is None:
        grid_raw = {}
    if not isinstance(grid_raw, Mapping):
        raise fail(f"grid must be a mapping of config key -> list of values, got {short(grid_raw)}")
    grid: dict[str, tuple[Any, ...]] = {}
    for key, values in grid_raw.items():
        label = f"grid axis {short(key)}"
        _check_key(key, label, fail)
        grid[key] = _axis_values(values, label, fail, max_runs)

    zip_raw = raw.get("zip")
    if zip_raw is None:
        zip_raw = []
    if not isinstance(zip_raw, list):
        raise fail(
            f"zip must be a list of mappings (groups of keys varied together), got {short(zip_raw)}"
        )
    seen: dict[str, str] = {key: f"grid axis {short(key)}" for key in grid}
    groups: list[dict[str, tuple[Any, ...]]] = []
    for i, group_raw in enumerate(zip_raw):
        if not isinstance(group_raw, Mapping) or not group_raw:
            raise fail(
                f"zip[{i}] must be a non-empty mapping of key -> list, got {short(group_raw)}"
            )
        group: dict[str, tuple[Any, ...]] = {}
        for key, values in group_raw.items():
            label = f"zip[{i}] axis {short(key)}"
            _check_key(key, label, fail)
            if key in seen:
                raise fail(f"{label}: key {short(key)} is already swept by {seen[key]}")
            seen[key] = label
            group[key] = _axis_values(values, label, fail, max_runs)
        lengths = {len(v) for v in group.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{k} has {len(v)}" for k, v in group.items())
            raise fail(f"zip[{i}]: lists must have equal lengths ({sizes})")
        groups.append(group)

    points = _count_points(grid, groups)
    if points > max_runs:
        raise fail(_too_many(points, "points (grid × zip combinations)", max_runs))

    # A grid value is checked on its own; a zip group position as a whole, since a group's
    # keys may only be valid together (model.norm batch with model.head_norm true).
    for key, values in grid.items():
        for value in values:
            _resolve(base, {key: value}, f"grid axis {short(key)}", fail)
    for i, group in enumerate(groups):
        for j in range(len(next(iter(group.values())))):
            point = {key: values[j] for key, values in group.items()}
            _resolve(base, point, f"zip[{i}] position {j} ({_show(point)})", fail)

    exclude_raw = raw.get("exclude")
    if exclude_raw is None:
        exclude_raw = []
    if not isinstance(exclude_raw, list):
        raise fail(f"exclude must be a list of mappings (partial points), got {short(exclude_raw)}")
    exclude: list[dict[str, Any]] = []
    for i, entry in enumerate(exclude_raw):
        if not isinstance(entry, Mapping) or not entry:
            raise fail(
                f"exclude[{i}] must be a non-empty mapping of key -> value, got {short(entry)}"
            )
        resolved: dict[str, Any] = {}
        for key, value in entry.items():
            label = f"exclude[{i}] key {short(key)}"
            _check_key(key, label, fail)
            if isinstance(value, (list, dict)):
                raise fail(f"{label} must be a single value, got {short(value)}")
            resolved[key] = _resolve(base, {key: value}, label, fail)
        exclude.append(resolved)

    return SweepSpec(
        name=name,
        base=base,
        grid=grid,
        zip=tuple(groups),
        exclude=tuple(exclude),
        source=src,
        max_runs=max_runs,
    )


def _base_config(raw: Mapping[str, Any], src: Path | None, fail: Any) -> ExperimentConfig:
    """The ``config`` file (if any) with the ``base`` mapping merged over it."""
    cfg = ExperimentConfig()
    config_path = raw.get("config")
    if config_path is not None:
        if not isinstance(config_path, str) or not config_path:
            raise fail(f"config must be the path of a config file, got {short(config_path)}")
        path = Path(config_path).expanduser()
        if not path.is_absolute() and src is not None:
            path = src.parent / path
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            raise fail(f"config {short(config_path)}: {exc}") from None
    base = raw.get("base")
    if base is None:
        return cfg
    if not isinstance(base, Mapping):
        raise fail(f"base must be a mapping in the shape of a config, got {short(base)}")
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


def _axis_values(values: Any, label: str, fail: Any, max_runs: int) -> tuple[Any, ...]:
    """A list, or a ``range(…)`` string, as a non-empty tuple (a range's length is checked
    against ``max_runs`` before it is built)."""
    if isinstance(values, str):
        text = values.strip()
        if not text.startswith("range"):
            raise fail(f"{label} must be a list of values or 'range(N)', got {short(values)}")
        match = _RANGE.fullmatch(text)
        if match is None:
            raise fail(
                f"{label}: malformed range {short(values)}; write range(N), range(A, B) or "
                "range(A, B, STEP) with integers"
            )
        if any(g is not None and len(g.strip().lstrip("+-")) > 19 for g in match.groups()):
            raise fail(f"{label}: range {short(values)} has a bound beyond 64 bits")
        args = [int(g) for g in match.groups() if g is not None]
        if len(args) == 3 and args[2] == 0:
            raise fail(f"{label}: malformed range {short(values)}; STEP must not be 0")
        length = _range_length(*args)
        if length > max_runs:
            raise fail(f"{label}: {_too_many(length, 'values', max_runs)}")
        out: tuple[Any, ...] = tuple(range(*args))
        if not out:
            raise fail(f"{label}: {short(values)} is empty")
        return out
    if not isinstance(values, list):
        raise fail(f"{label} must be a list of values or 'range(N)', got {short(values)}")
    if not values:
        raise fail(f"{label} must not be empty")
    for value in values:
        if isinstance(value, (list, dict)):
            raise fail(f"{label}: values must be scalars, got {short(value)}")
    return tuple(values)


def _range_length(*args: int) -> int:
    """``len(range(*args))`` without building it (and without ``len``'s 64-bit limit)."""
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
    if step > 0:
        return max(0, (stop - start + step - 1) // step)
    return max(0, (start - stop - step - 1) // -step)


def _count_points(
    grid: Mapping[str, tuple[Any, ...]], groups: list[dict[str, tuple[Any, ...]]]
) -> int:
    """The number of points (grid × zip combinations), from the axis lengths alone."""
    lengths = [len(v) for v in grid.values()]
    lengths += [len(next(iter(g.values()))) for g in groups]
    return math.prod(lengths)


def _check_max_runs(max_runs: Any) -> None:
    if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
        raise ConfigError(f"max_runs (--max-runs) must be an integer >= 1, got {short(max_runs)}")


def _too_many(count: int, what: str, max_runs: int) -> str:
    """The refusal of a sweep over ``max_runs``, saying how to raise the limit."""
    shown = f"{count:,}" if count < 10**15 else f"about 10^{len(str(count)) - 1}"
    return (
        f"expands to {shown} {what}, more than the limit of {max_runs:,} runs; narrow the "
        f"axes or raise the limit with --max-runs N"
    )


def _get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _resolve(base: ExperimentConfig, point: dict[str, Any], label: str, fail: Any) -> Any:
    """The value of ``point``'s key validated and coerced by the config (``0`` -> ``0.0``
    for a float field); a point of several keys is applied (and checked) as one."""
    try:
        cfg = apply_overrides(base, point)
    except ConfigError as exc:
        raise fail(f"{label}: {exc}") from None
    return _get(cfg, next(iter(point)))


def _show(point: dict[str, Any]) -> str:
    return ", ".join(f"{key}={short(value)}" for key, value in point.items())


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


def _expand(spec: SweepSpec, max_runs: int | None = None) -> tuple[int, list[ExperimentConfig]]:
    where = f"sweep spec {spec.source}" if spec.source is not None else "sweep spec"
    limit = spec.max_runs if max_runs is None else max_runs
    _check_max_runs(limit)
    count = _count_points(spec.grid, list(spec.zip))
    if count > limit:
        raise ConfigError(f"{where}: {_too_many(count, 'points (grid × zip combinations)', limit)}")
    points = _points(spec)
    configs: list[tuple[dict[str, Any], ExperimentConfig]] = []
    total = 0
    for overrides in points:
        try:
            cfg = apply_overrides(spec.base, overrides)
        except ConfigError as exc:
            point = ", ".join(f"{k}={short(v)}" for k, v in overrides.items())
            raise ConfigError(f"{where}: point {point}: {exc}") from None
        total += cfg.seeds
        if total > limit:  # counted before any run is built; seeds may be swept
            raise ConfigError(
                f"{where}: {_too_many(total, 'runs (points × seeds) or more', limit)}"
            )
        configs.append((overrides, cfg))
    runs: dict[str, ExperimentConfig] = {}
    for _, cfg in configs:
        for i in range(cfg.seeds):
            run = with_seed(cfg, cfg.seed + i)
            if not _excluded(spec, run, cfg.seeds):
                runs.setdefault(config_hash(run), run)
    if not runs:
        raise ConfigError(
            f"{where}: expands to zero runs ({len(points)} points, all excluded by 'exclude')"
        )
    return len(points), list(runs.values())


def expand(spec: SweepSpec, *, max_runs: int | None = None) -> list[ExperimentConfig]:
    """Every single-seed run of ``spec``, in a deterministic order, without duplicates.

    Args:
        spec: the sweep spec.
        max_runs: the most points and runs (before exclusion and de-duplication) it may
            expand to; ``None``: ``spec.max_runs``. Counted before the runs are built.

    Raises:
        ConfigError: a point is not a valid config (naming the point and the key), the spec
            expands to zero runs, or to more than ``max_runs``.
    """
    return _expand(spec, max_runs)[1]


def describe(spec: SweepSpec, *, max_runs: int | None = None) -> dict[str, Any]:
    """A JSON-serialisable summary for ``--dry-run``: name, source, axes and their sizes,
    zip groups, exclusions, ``points`` (grid × zip combinations) and ``runs`` (after seed
    expansion, exclusion and de-duplication); ``max_runs`` as in :func:`expand`."""
    points, runs = _expand(spec, max_runs)
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
