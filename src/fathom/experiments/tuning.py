"""Validation-only search of a reproduction cell's setting (``fathom reproduce --tune``).

Where a paper tuned a cell but did not publish the setting, fathom searches a small grid
declared in ``presets/search/<suite>.yaml`` and keeps, per cell, the grid point with the
best mean validation metric over the search's seeds (ties: the first point in grid order).
Only the validation metric is read to choose; the cell's reported runs are the chosen point
over the suite's seeds, and its note says that the setting was tuned on validation, over
which grid, and what was chosen.

Grid runs are ordinary single-seed runs of the results store (their keys are their configs),
so a search resumes like any sweep, and a cell's seed-0 run is the grid run of the chosen
point when the search uses seed 0. Several invocations of one search share its grid through
the store's claims; each waits (:func:`wait_for_grids`) for the grid runs the others are
still training before it chooses, so that all of them go on to share the chosen cells' seeds.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fathom.config import (
    ExperimentConfig,
    apply_overrides,
    config_hash,
    config_to_dict,
    flatten,
    with_seed,
)
from fathom.errors import ConfigError
from fathom.experiments.store import RunStore
from fathom.yamlio import load_file

__all__ = [
    "SEARCH_DIR",
    "Axis",
    "CellSearch",
    "SearchSpace",
    "apply_choices",
    "load_search",
    "plan_searches",
    "wait_for_grids",
]

SEARCH_DIR = Path(__file__).resolve().parents[1] / "presets" / "search"

_TOP_KEYS = ("metric", "seeds", "axes")
_AXIS_KEYS = ("key", "name", "values", "only_if_set", "only_if")


@dataclass(frozen=True)
class Axis:
    """One dimension of a search, in grid order.

    Either a hyper-parameter (``key``: a dotted config key, ``values``: its values) or a named
    setting (``key``: the setting's name, ``settings=True``, ``values``: one mapping of dotted
    keys per value, ``{}`` for the cell's own setting), e.g. DropEdge's ``--withbn`` with the
    weight decay it is searched at.
    """

    key: str
    values: tuple[Any, ...]
    only_if_set: bool = False
    """Searched only for a cell whose base config sets ``key`` to a non-zero value."""
    only_if: tuple[tuple[str, Any], ...] = ()
    """Searched only for a cell whose base config has each of these (dotted key, value)."""
    settings: bool = False
    """``values`` are mappings of dotted keys (a named setting), not values of ``key``."""

    def applies(self, values: dict[str, Any]) -> bool:
        """Whether the axis is searched for a cell whose flattened base config is ``values``."""
        if self.only_if_set and not values.get(self.key):
            return False
        return all(values.get(k) == v for k, v in self.only_if)

    def overrides(self, value: Any) -> dict[str, Any]:
        """The config overrides of one of the axis's values."""
        return dict(value) if self.settings else {self.key: value}


@dataclass(frozen=True)
class SearchSpace:
    """A suite's declared search (``presets/search/<suite>.yaml``)."""

    suite: str
    metric: str
    """The stored validation metric that chooses (``val_acc``)."""
    seeds: int
    axes: tuple[Axis, ...]

    def axes_for(self, base: ExperimentConfig) -> list[Axis]:
        """The axes searched for a cell whose config is ``base``, in declared order."""
        values = flatten(config_to_dict(base))
        return [a for a in self.axes if a.applies(values)]

    def points(self, base: ExperimentConfig) -> list[dict[str, Any]]:
        """The grid for a cell whose config is ``base``: every combination of the axes that
        apply to it, in declared order (the last axis varies fastest), each as its config
        overrides."""
        axes = self.axes_for(base)
        points = []
        for combo in itertools.product(*(a.values for a in axes)):
            point: dict[str, Any] = {}
            for axis, value in zip(axes, combo, strict=True):
                point.update(axis.overrides(value))
            points.append(point)
        return points


def _fail(path: Path, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {msg}")


def _axis(path: Path, i: int, entry: dict[str, Any], defaults: dict[str, Any]) -> Axis:
    """One validated entry of ``axes``."""
    key, name, values = entry.get("key"), entry.get("name"), entry.get("values")
    if (key is None) == (name is None):
        raise _fail(path, f"axes[{i}] needs exactly one of key (a config key) or name (a setting)")
    label = key if name is None else name
    if not isinstance(label, str) or not label:
        what = "key must be a dotted config key" if name is None else "name must be a string"
        raise _fail(path, f"axes[{i}].{what}, got {label!r}")
    if not isinstance(values, list) or not values:
        raise _fail(path, f"axes[{i}].values must be a non-empty list")
    if name is not None and not all(isinstance(v, dict) for v in values):
        raise _fail(path, f"axes[{i}] ({name}): each value must be a mapping of config keys")
    only_if = entry.get("only_if", {})
    if not isinstance(only_if, dict) or any(k not in defaults for k in only_if):
        raise _fail(path, f"axes[{i}].only_if must map dotted config keys to values")
    axis = Axis(
        label,
        tuple(values),
        bool(entry.get("only_if_set", False)),
        tuple(only_if.items()),
        settings=name is not None,
    )
    try:  # every value must make a valid config on its own
        for value in values:
            apply_overrides(ExperimentConfig(), axis.overrides(value))
    except ConfigError as exc:
        raise _fail(path, f"axes[{i}] ({label}): {exc}") from None
    return axis


def load_search(suite: str, path: Path | None = None) -> SearchSpace:
    """The validated search of ``suite`` (``path``: another file, for tests).

    Raises:
        ConfigError: no search is declared for ``suite``, or the file is malformed (one line
            naming the file and the key).
    """
    if path is None:
        path = SEARCH_DIR / f"{suite}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in SEARCH_DIR.glob("*.yaml"))) or "none"
            raise ConfigError(
                f"--tune: no validation search is declared for suite {suite!r} "
                f"(declared for: {known})"
            )
    raw = load_file(path)
    unknown = sorted(set(raw) - set(_TOP_KEYS))
    if unknown:
        raise _fail(path, f"unknown key {unknown[0]!r}; allowed: {', '.join(_TOP_KEYS)}")
    metric = raw.get("metric")
    if not isinstance(metric, str) or not metric.startswith("val_"):
        raise _fail(path, f"metric must name a validation metric (val_...), got {metric!r}")
    seeds = raw.get("seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 10:
        raise _fail(path, f"seeds must be an int in [1, 10], got {seeds!r}")
    axes_raw = raw.get("axes")
    if not isinstance(axes_raw, list) or not axes_raw:
        raise _fail(path, "axes must be a non-empty list")
    defaults = flatten(config_to_dict(ExperimentConfig()))
    axes: list[Axis] = []
    for i, entry in enumerate(axes_raw):
        if not isinstance(entry, dict) or set(entry) - set(_AXIS_KEYS):
            raise _fail(path, f"axes[{i}] must be a mapping of {', '.join(_AXIS_KEYS)}")
        axes.append(_axis(path, i, entry, defaults))
    seen: dict[str, str] = {}
    for axis in axes:
        keys = {k for v in axis.values for k in axis.overrides(v)}
        for key in sorted(keys):
            if key in seen:
                raise _fail(path, f"axes {seen[key]!r} and {axis.key!r} both set {key}")
            seen[key] = axis.key
    return SearchSpace(suite, metric, seeds, tuple(axes))


@dataclass(frozen=True)
class CellSearch:
    """The grid of one cell: its points and each point's single-seed configs."""

    base: ExperimentConfig
    axes: tuple[str, ...]
    """The names of the axes searched for this cell (config keys or setting names)."""
    points: tuple[dict[str, Any], ...]
    configs: tuple[tuple[ExperimentConfig, ...], ...]
    """Per point, one config per search seed (seeds 0 ...)."""

    def all_configs(self) -> list[ExperimentConfig]:
        return [c for point in self.configs for c in point]


def plan_searches(cells: Sequence[Any], space: SearchSpace) -> dict[int, CellSearch]:
    """The grid of every tunable cell of ``cells`` (``cell.tunable``), by its index."""
    out = {}
    for i, cell in enumerate(cells):
        if not cell.tunable:
            continue
        base = cell.configs[0]
        points = space.points(base)
        configs = tuple(
            tuple(with_seed(apply_overrides(base, point), s) for s in range(space.seeds))
            for point in points
        )
        axes = tuple(a.key for a in space.axes_for(base))
        out[i] = CellSearch(base, axes, tuple(points), configs)
    return out


WAIT_POLL_S = 15.0
"""How often :func:`wait_for_grids` reads the store while another process trains."""


def wait_for_grids(
    store: str | Path,
    searches: dict[int, CellSearch],
    *,
    poll_s: float = WAIT_POLL_S,
    on_wait: Callable[[dict[str, int]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once no grid run of ``searches`` is being trained by another live process of
    this host: the wait of an invocation that found nothing left to claim in the grid while
    another invocation of the same search still trains some, so that it chooses from the
    whole grid and then shares the chosen cells' seeds instead of leaving them to the other.

    ``on_wait`` gets the runs waited for (run key -> pid) each time that set changes. A claim
    whose process dies ends the wait for it (the run stays unfinished and the grid
    incomplete); runs claimed on another host are not waited for. Ctrl-C interrupts the
    wait (``KeyboardInterrupt``), which writes nothing.
    """
    keys = [config_hash(c) for search in searches.values() for c in search.all_configs()]
    me = os.getpid()
    shown: dict[str, int] | None = None
    while True:
        with RunStore(store) as st:
            live = {k: pid for k, pid in st.in_flight(keys).items() if pid != me}
        if not live:
            return
        if on_wait is not None and live != shown:
            on_wait(live)
        shown = live
        sleep(poll_s)


def _describe(point: dict[str, Any]) -> str:
    return ", ".join(f"{k.split('.')[-1]} {v}" for k, v in point.items())


def apply_choices(
    cells: Sequence[Any],
    searches: dict[int, CellSearch],
    space: SearchSpace,
    store: str | Path,
) -> list[Any]:
    """``cells`` with each searched cell's configs set to its chosen point over the cell's
    seeds, and its note saying so. A cell whose grid is not complete in ``store`` (a run
    missing, failed or without the metric) keeps no runs (nothing untuned is reported as
    tuned) and its note says how much of the grid is done."""
    from fathom.config import with_seed

    keys = {config_hash(c): c for search in searches.values() for c in search.all_configs()}
    with RunStore(store) as st:
        records = {key: st.get(key) for key in keys}
    out = list(cells)
    for i, search in searches.items():
        cell = cells[i]
        grid_axes = ", ".join(search.axes) or "no axis"
        scores: list[float | None] = []
        for point_configs in search.configs:
            values = []
            for cfg in point_configs:
                rec = records[config_hash(cfg)]
                if rec is None or rec["status"] != "done":
                    break
                value = rec["metrics"].get(space.metric)
                if value is None:
                    break
                values.append(float(value))
            scores.append(statistics.fmean(values) if len(values) == len(point_configs) else None)
        grid = (
            f"{len(search.points)}-point grid over {grid_axes}, "
            f"{space.seeds} seed{'s' if space.seeds > 1 else ''}"
        )
        done = sum(s is not None for s in scores)
        if done < len(scores):
            note = f"setting: to be tuned on validation ({grid}; {done} of {len(scores)} done)"
            out[i] = replace(cell, configs=(), note=note)
            continue
        best = max(range(len(scores)), key=lambda j: (scores[j], -j))
        chosen = apply_overrides(search.base, search.points[best])
        seeds = len(cell.configs)
        note = (
            f"setting: tuned on validation ({grid}; chosen by {space.metric} "
            f"{100 * scores[best]:.1f}: {_describe(search.points[best])})"
        )
        out[i] = replace(cell, configs=tuple(with_seed(chosen, s) for s in range(seeds)), note=note)
    return out
