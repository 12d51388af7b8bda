"""Group stored runs by configuration (seed removed) and aggregate them over seeds.

Input is a list of run records as the results store returns them (plain dicts with
``run_key``, ``status``, ``config``, ``metrics``, ``history``, ``diagnostics``, ``time_s`` …).
Only ``done`` and ``diverged`` runs are aggregated; the others are only counted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean, pstdev
from typing import Any

from fathom.config import flatten

__all__ = [
    "AGGREGATED_STATUSES",
    "CURVE_KEYS",
    "DEPTH_KEY",
    "METRICS",
    "Group",
    "Series",
    "Stat",
    "filter_sweep",
    "flatten_config",
    "fmt_value",
    "group_runs",
    "run_summary",
    "short_key",
    "status_counts",
    "varying_keys",
]

AGGREGATED_STATUSES = ("done", "diverged")
"""Statuses of runs that are aggregated (the others are only counted)."""
STATUSES = ("done", "diverged", "failed", "running", "pending")

METRICS = (
    "test_acc",
    "val_acc",
    "train_acc",
    "test_acc_paper",
    "test_acc_fold_std",
    "test_auc",
    "val_auc",
    "test_ap",
    "test_hits",
    "test_miou",
    "val_miou",
    "test_oa",
    "epochs",
    "best_epoch",
    "time_s",
    "peak_mem_mb",
)
"""Per-run scalars aggregated over seeds (``time_s`` / ``peak_mem_mb`` are top-level fields)."""
_TOP_LEVEL = ("time_s", "peak_mem_mb")

CURVE_KEYS = ("loss", "train_loss", "val_loss", "test_loss", "train_acc", "val_acc", "test_acc")
"""Per-epoch history values averaged into training curves."""

DEPTH_KEY = "model.depth"
_IGNORED_KEYS = frozenset({"seed"})


# --------------------------------------------------------------------------- helpers


def flatten_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"model": {"depth": 2}, "seed": 0}`` -> ``{"model.depth": 2}`` (``seed`` removed)."""
    return {k: v for k, v in flatten(config or {}).items() if k not in _IGNORED_KEYS}


def _freeze(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def short_key(key: str, keys: Iterable[str] = ()) -> str:
    """The last part of a dotted key (``model.skip`` -> ``skip``), unless another key ends
    the same way, in which case the whole dotted key."""
    last = key.rsplit(".", 1)[-1]
    clashes = [k for k in keys if k != key and k.rsplit(".", 1)[-1] == last]
    return key if clashes else last


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "none"
    return str(value)


def filter_sweep(records: Iterable[Mapping[str, Any]], sweep: str | None) -> list[dict[str, Any]]:
    """The records that belong to sweep ``sweep`` (all of them when ``sweep`` is ``None``)."""
    return [dict(r) for r in records if sweep is None or sweep in (r.get("sweeps") or ())]


def status_counts(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Number of runs per status, known statuses first (zeros omitted)."""
    counts: dict[str, int] = {}
    for r in records:
        status = str(r.get("status") or "unknown")
        counts[status] = counts.get(status, 0) + 1
    order = {s: i for i, s in enumerate(STATUSES)}
    return dict(sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True)
class Stat:
    """Mean and population std of one metric over the seeds that have it."""

    mean: float
    std: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "n": self.n}


@dataclass(frozen=True)
class Series:
    """Mean ± population std over seeds at each x (an epoch, or a layer index);
    ``n[i]`` is the number of seeds with a finite value at ``x[i]``."""

    x: list[int]
    mean: list[float]
    std: list[float]
    n: list[int]

    def __len__(self) -> int:
        return len(self.x)

    def to_dict(self) -> dict[str, Any]:
        return {"x": self.x, "mean": self.mean, "std": self.std, "n": self.n}


def _stat(values: Sequence[float]) -> Stat | None:
    if not values:
        return None
    return Stat(mean=fmean(values), std=pstdev(values) if len(values) > 1 else 0.0, n=len(values))


def _series(points: Mapping[int, list[float]]) -> Series:
    xs = sorted(x for x, vals in points.items() if vals)
    stats = [_stat(points[x]) for x in xs]
    return Series(
        x=xs,
        mean=[s.mean for s in stats if s is not None],
        std=[s.std for s in stats if s is not None],
        n=[s.n for s in stats if s is not None],
    )


@dataclass
class Group:
    """The finished runs of one configuration (all seeds), aggregated.

    Attributes:
        key: the varying dotted config keys -> this group's value (``{"model.skip": "res"}``).
        label: a short readable name made of ``key`` without ``model.depth`` when depth is an
            axis of the study (``"skip=res, norm=batch"``); one line per label in a depth plot.
        config: the whole flattened config without ``seed``.
        run_keys, seeds: the aggregated runs.
        n, n_diverged: number of aggregated runs, and of those that diverged.
        stats: metric (see :data:`METRICS`) -> mean / std / n over the runs that have it.
        curves: history key (``train_loss``, ``val_acc`` …) -> mean curve aligned by epoch.
        diagnostics: per-layer series name -> mean over seeds by layer index.
    """

    key: dict[str, Any]
    label: str
    config: dict[str, Any]
    run_keys: list[str] = field(default_factory=list)
    seeds: list[Any] = field(default_factory=list)
    n: int = 0
    n_diverged: int = 0
    stats: dict[str, Stat] = field(default_factory=dict)
    curves: dict[str, Series] = field(default_factory=dict)
    diagnostics: dict[str, Series] = field(default_factory=dict)

    @property
    def depth(self) -> Any:
        return self.config.get(DEPTH_KEY)

    @property
    def full_label(self) -> str:
        """``label`` plus the depth when depth varies (unique per group)."""
        if DEPTH_KEY in self.key:
            d = f"depth={fmt_value(self.key[DEPTH_KEY])}"
            return f"{self.label}, {d}" if self.label else d
        return self.label

    def mean(self, metric: str) -> float | None:
        s = self.stats.get(metric)
        return None if s is None else s.mean

    def std(self, metric: str) -> float | None:
        """Population std over seeds; for one cross-validated run (graph classification, one
        seed) the std over its folds instead."""
        s = self.stats.get(metric)
        if s is None:
            return None
        fold_std = self.stats.get(f"{metric}_fold_std")
        if s.n == 1 and fold_std is not None:
            return fold_std.mean
        return s.std

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: flat ``<metric>_mean`` / ``_std`` / ``_n`` plus curves and diagnostics."""
        out: dict[str, Any] = {
            "label": self.label,
            "full_label": self.full_label,
            "key": self.key,
            "config": self.config,
            "run_keys": self.run_keys,
            "seeds": self.seeds,
            "n": self.n,
            "n_diverged": self.n_diverged,
        }
        for metric, s in self.stats.items():
            out[f"{metric}_mean"] = s.mean
            out[f"{metric}_std"] = s.std
            out[f"{metric}_n"] = s.n
        out["curves"] = {k: v.to_dict() for k, v in self.curves.items()}
        out["diagnostics"] = {k: v.to_dict() for k, v in self.diagnostics.items()}
        return out


# --------------------------------------------------------------------------- grouping


def _finished(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if r.get("status") in AGGREGATED_STATUSES]


def varying_keys(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Dotted config keys (``seed`` excluded) whose value differs between the given records,
    in config order. A key missing from some configs counts as varying."""
    flats = [flatten_config(r.get("config")) for r in records]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    return [k for k in keys if len({_freeze(f.get(k)) for f in flats}) > 1]


def _value_order(values: list[Any]) -> dict[str, int]:
    """Numbers sorted ascending; anything else in order of first appearance."""
    distinct = list({_freeze(v): v for v in values}.items())
    if all(isinstance(v, int | float) and not isinstance(v, bool) for _, v in distinct):
        distinct.sort(key=lambda kv: kv[1])
    return {frozen: i for i, (frozen, _) in enumerate(distinct)}


def _label(key: Mapping[str, Any], keys: Sequence[str], config: Mapping[str, Any]) -> str:
    parts = [f"{short_key(k, keys)}={fmt_value(v)}" for k, v in key.items() if k != DEPTH_KEY]
    if parts:
        return ", ".join(parts)
    # nothing but depth varies: name the line after the model
    conv = config.get("model.conv")
    return str(conv) if conv is not None else "all runs"


def group_runs(records: Iterable[Mapping[str, Any]]) -> list[Group]:
    """Group the ``done`` and ``diverged`` runs by config without ``seed`` and aggregate.

    Groups are ordered by their varying values (numbers ascending, other values in order of
    first appearance), ``model.depth`` last, so rows of one label sit together by depth.
    """
    finished = _finished(records)
    keys = varying_keys(finished)
    buckets: dict[str, list[Mapping[str, Any]]] = {}
    flats: dict[str, dict[str, Any]] = {}
    for r in finished:
        flat = flatten_config(r.get("config"))
        frozen = _freeze(flat)
        buckets.setdefault(frozen, []).append(r)
        flats.setdefault(frozen, flat)

    groups = [_aggregate(flats[fz], runs, keys) for fz, runs in buckets.items()]
    order = {k: _value_order([g.config.get(k) for g in groups]) for k in keys}
    sort_keys = [k for k in keys if k != DEPTH_KEY] + ([DEPTH_KEY] if DEPTH_KEY in keys else [])
    groups.sort(key=lambda g: tuple(order[k][_freeze(g.config.get(k))] for k in sort_keys))
    return groups


def _aggregate(flat: dict[str, Any], runs: Sequence[Mapping[str, Any]], keys: list[str]) -> Group:
    key = {k: flat.get(k) for k in keys}
    group = Group(key=key, label=_label(key, keys, flat), config=flat)
    runs = sorted(runs, key=lambda r: _freeze((r.get("config") or {}).get("seed")))
    group.run_keys = [str(r.get("run_key")) for r in runs]
    group.seeds = [(r.get("config") or {}).get("seed") for r in runs]
    group.n = len(runs)
    group.n_diverged = sum(r.get("status") == "diverged" for r in runs)

    for metric in METRICS:
        if metric in _TOP_LEVEL:
            raw = [r.get(metric) for r in runs]
        else:
            raw = [(r.get("metrics") or {}).get(metric) for r in runs]
        s = _stat([x for x in map(_finite, raw) if x is not None])
        if s is not None:
            group.stats[metric] = s

    # training curves, aligned by epoch: each point averages the seeds still running
    curves: dict[str, dict[int, list[float]]] = {}
    for r in runs:
        for i, row in enumerate(r.get("history") or []):
            epoch = row.get("epoch", i + 1)
            for name in CURVE_KEYS:
                x = _finite(row.get(name))
                if x is not None:
                    curves.setdefault(name, {}).setdefault(int(epoch), []).append(x)
    group.curves = {name: _series(pts) for name, pts in curves.items()}

    # per-layer diagnostics, aligned by layer index
    diags: dict[str, dict[int, list[float]]] = {}
    for r in runs:
        for name, values in (r.get("diagnostics") or {}).items():
            if not isinstance(values, Sequence) or isinstance(values, str):
                continue
            for layer, v in enumerate(values):
                x = _finite(v)
                if x is not None:
                    diags.setdefault(str(name), {}).setdefault(layer, []).append(x)
    group.diagnostics = {name: _series(pts) for name, pts in diags.items()}
    return group


# --------------------------------------------------------------------------- summary


def run_summary(records: Sequence[Mapping[str, Any]], *, max_failed: int = 50) -> dict[str, Any]:
    """Status counts and provenance of all the records (finished or not).

    Returns ``{"total", "by_status", "varying_keys", "failed": [{"run_key", "status",
    "config", "error"}] (at most ``max_failed``), "n_failed_listed", "versions": {package:
    [distinct values]}, "hosts": [...], "first_started", "last_ended"}``.
    """
    keys = varying_keys(records)
    failed = [r for r in records if r.get("status") == "failed"]
    versions: dict[str, list[str]] = {}
    for r in records:
        for pkg, ver in (r.get("versions") or {}).items():
            vals = versions.setdefault(str(pkg), [])
            if str(ver) not in vals:
                vals.append(str(ver))
    hosts = sorted({str(r["host"]) for r in records if r.get("host")})
    started = sorted(str(r["started_at"]) for r in records if r.get("started_at"))
    ended = sorted(str(r["ended_at"]) for r in records if r.get("ended_at"))
    return {
        "total": len(records),
        "by_status": status_counts(records),
        "varying_keys": keys,
        "failed": [
            {
                "run_key": r.get("run_key"),
                "status": r.get("status"),
                "config": ", ".join(
                    f"{short_key(k, keys)}={fmt_value(flatten_config(r.get('config')).get(k))}"
                    for k in keys
                ),
                "seed": (r.get("config") or {}).get("seed"),
                "error": r.get("error") or r.get("message") or "",
            }
            for r in failed[:max_failed]
        ],
        "n_failed": len(failed),
        "versions": versions,
        "hosts": hosts,
        "first_started": started[0] if started else None,
        "last_ended": ended[-1] if ended else None,
    }
