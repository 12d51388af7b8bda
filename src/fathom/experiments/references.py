"""Published reference figures: the numbers ``fathom reproduce`` compares with, as data.

Each reproduction suite's figures live in ``src/fathom/presets/references/<suite>.yaml``::

    suite: depth                  # the file's name
    metric: test accuracy         # what the values measure
    unit: percent                 # percent (0..100) or fraction (0..1)
    sources:                      # key -> citation (paper, table or figure)
      dropedge: "Rong et al., DropEdge, ICLR 2020 (…)"
    figures:
      - {model: gcn, dataset: cora, depth: 2, value: 81.1, source: dropedge}
      - {model: resgcn, dataset: cora, depth: 2, value: null, source: dropedge,
         note: "a dash: not run at this depth"}

A figure names the suite's ``--models`` key and the dataset, optionally a ``depth`` (absent:
the model's preset depth, its published setting) or a ``radius`` (Tree-NeighborsMatch), its
``value`` (``null``: the source has no figure for the cell), its ``source`` (a key of
``sources``) and an optional ``note``. :func:`load_references` reads and validates a suite's
file once; a malformed file raises a one-line :class:`~fathom.errors.ConfigError` naming the
file and the key.
"""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fathom.errors import ConfigError
from fathom.yamlio import load_file

__all__ = [
    "REFERENCES_DIR",
    "UNITS",
    "Figure",
    "ReferenceTable",
    "list_references",
    "load_reference_file",
    "load_references",
]

REFERENCES_DIR = Path(__file__).resolve().parents[1] / "presets" / "references"

UNITS: dict[str, float] = {"percent": 100.0, "fraction": 1.0}
"""Unit of a file's values -> the largest value it allows."""

_TOP_KEYS = ("suite", "metric", "unit", "sources", "figures")
_FIGURE_KEYS = ("model", "dataset", "depth", "radius", "value", "source", "note")


@dataclass(frozen=True)
class Figure:
    """One published figure and where it comes from."""

    model: str
    """The suite's ``--models`` key (``gcn-dropedge``)."""
    dataset: str
    depth: int | None
    """Layers; ``None``: the depth of the model's preset (its published setting)."""
    radius: int | None
    """Problem radius (Tree-NeighborsMatch); ``None`` elsewhere."""
    value: float | None
    """In the file's unit; ``None``: the source has no figure for this cell (a dash)."""
    source: str
    """The citation: paper and table or figure."""
    note: str = ""


@dataclass(frozen=True)
class ReferenceTable:
    """The published figures of one reproduction suite (one references file)."""

    suite: str
    metric: str
    unit: str
    """``percent`` or ``fraction`` (:data:`UNITS`)."""
    sources: Mapping[str, str]
    """Source key -> citation."""
    figures: tuple[Figure, ...]
    path: Path

    def get(
        self, model: str, dataset: str, depth: int | None = None, radius: int | None = None
    ) -> Figure | None:
        """The figure of exactly this cell, or ``None`` when the file has none."""
        for f in self.figures:
            if (f.model, f.dataset, f.depth, f.radius) == (model, dataset, depth, radius):
                return f
        return None

    def select(self, model: str, dataset: str) -> tuple[Figure, ...]:
        """Every figure of ``model`` on ``dataset`` (at any depth or radius), in file order."""
        return tuple(f for f in self.figures if (f.model, f.dataset) == (model, dataset))


def list_references() -> list[str]:
    """Suites with a references file, sorted."""
    return sorted(p.stem for p in REFERENCES_DIR.glob("*.yaml"))


@functools.cache
def load_references(suite: str) -> ReferenceTable:
    """The validated figures of ``suite`` (read once per process)."""
    path = REFERENCES_DIR / f"{suite}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"no published references for suite {suite!r}; "
            f"files exist for: {', '.join(list_references())}"
        )
    return load_reference_file(path)


def _fail(path: Path, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {key} {msg}")


def _string(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, key, f"must be a non-empty string, got {value!r}")
    return value


def _positive_int(path: Path, key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(path, key, f"must be a positive int, got {value!r}")
    return value


def _value(path: Path, key: str, value: Any, unit: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, key, f"must be a number or null, got {value!r}")
    top = UNITS[unit]
    if not (math.isfinite(value) and 0 <= value <= top):
        raise _fail(path, key, f"must be in 0..{top:g} ({unit}), got {value!r}")
    return float(value)


def _unknown(path: Path, where: str, raw: Mapping[Any, Any], known: tuple[str, ...]) -> None:
    for k in raw:
        if k not in known:
            raise _fail(path, f"{where}{k}", f"is not a known key; expected: {', '.join(known)}")


def _figure(path: Path, i: int, raw: Any, unit: str, sources: Mapping[str, str]) -> Figure:
    where = f"figures[{i}]"
    if not isinstance(raw, dict):
        raise _fail(path, where, f"must be a mapping, got {raw!r}")
    _unknown(path, f"{where}.", raw, _FIGURE_KEYS)
    for k in ("model", "dataset", "value", "source"):
        if k not in raw:
            raise _fail(path, f"{where}.{k}", "is missing")
    source = _string(path, f"{where}.source", raw["source"])
    if source not in sources:
        raise _fail(
            path, f"{where}.source", f"names no key of sources ({', '.join(sources)}): {source!r}"
        )
    depth = _positive_int(path, f"{where}.depth", raw.get("depth"))
    radius = _positive_int(path, f"{where}.radius", raw.get("radius"))
    if depth is not None and radius is not None:
        raise _fail(path, where, "may give depth or radius, not both")
    note = raw.get("note")
    return Figure(
        model=_string(path, f"{where}.model", raw["model"]),
        dataset=_string(path, f"{where}.dataset", raw["dataset"]),
        depth=depth,
        radius=radius,
        value=_value(path, f"{where}.value", raw["value"], unit),
        source=sources[source],
        note="" if note is None else _string(path, f"{where}.note", note),
    )


def load_reference_file(path: str | Path) -> ReferenceTable:
    """Read and validate one references file (the schema in this module's docstring)."""
    path = Path(path)
    raw = load_file(
        path, what="references file", expect=f"a mapping with keys {', '.join(_TOP_KEYS)}"
    )
    _unknown(path, "", raw, _TOP_KEYS)
    for k in _TOP_KEYS:
        if k not in raw:
            raise _fail(path, k, "is missing")
    suite = _string(path, "suite", raw["suite"])
    if suite != path.stem:
        raise _fail(path, "suite", f"must match the file's name {path.stem!r}, got {suite!r}")
    unit = raw["unit"]
    if unit not in UNITS:
        raise _fail(path, "unit", f"must be one of {', '.join(UNITS)}, got {unit!r}")
    sources = raw["sources"]
    if not isinstance(sources, dict) or not sources:
        raise _fail(path, "sources", f"must be a non-empty mapping, got {sources!r}")
    citations = {
        _string(path, "sources key", k): _string(path, f"sources.{k}", v)
        for k, v in sources.items()
    }
    items = raw["figures"]
    if not isinstance(items, list) or not items:
        raise _fail(path, "figures", f"must be a non-empty list, got {items!r}")
    figures = tuple(_figure(path, i, f, unit, citations) for i, f in enumerate(items))
    seen: dict[tuple[str, str, int | None, int | None], int] = {}
    for i, f in enumerate(figures):
        cell = (f.model, f.dataset, f.depth, f.radius)
        if cell in seen:
            raise _fail(path, f"figures[{i}]", f"repeats the cell of figures[{seen[cell]}]")
        seen[cell] = i
    cited = {f["source"] for f in items}
    unused = [k for k in citations if k not in cited]
    if unused:
        raise _fail(path, f"sources.{unused[0]}", "is cited by no figure")
    return ReferenceTable(
        suite=suite,
        metric=_string(path, "metric", raw["metric"]),
        unit=unit,
        sources=types.MappingProxyType(citations),
        figures=figures,
        path=path,
    )
