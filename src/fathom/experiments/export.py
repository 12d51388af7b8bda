"""Stored runs as JSON or CSV, for scripts and spreadsheets."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from fathom.config import flatten

__all__ = ["records_to_csv", "records_to_json"]

# scalar columns first, in this order; then config.* and metrics.*
LEADING = (
    "run_key",
    "status",
    "sweeps",
    "time_s",
    "peak_mem_mb",
    "attempts",
    "error",
    "message",
    "host",
    "started_at",
    "ended_at",
)


def records_to_json(records: Sequence[Mapping[str, Any]]) -> str:
    """A JSON list of run records (``run_key``, ``status``, ``config``, ``metrics`` …)."""
    return json.dumps(list(records), indent=2, allow_nan=True) + "\n"


def records_to_csv(records: Sequence[Mapping[str, Any]]) -> str:
    """One row per run: the scalar fields, ``config.*`` and ``metrics.*`` (no history)."""
    rows = []
    for r in records:
        row = {k: r.get(k) for k in LEADING}
        row["sweeps"] = ";".join(r.get("sweeps") or [])
        row.update(flatten(r.get("config") or {}, "config."))
        row.update(flatten(r.get("metrics") or {}, "metrics."))
        rows.append(row)
    columns = list(dict.fromkeys(k for row in rows for k in row)) or list(LEADING)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
