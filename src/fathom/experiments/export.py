"""Stored runs as JSON or CSV, for scripts and spreadsheets."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fathom.config import flatten
from fathom.errors import FathomError
from fathom.experiments.store import RunStore, check_not_store
from fathom.files import atomic_path, check_output_file

__all__ = [
    "FORMATS",
    "check_export_output",
    "export_store",
    "records_to_csv",
    "records_to_json",
]

FORMATS = ("json", "csv")
"""The formats :func:`export_store` writes."""

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


def check_export_output(out: str | Path, store: str | Path) -> None:
    """Refuse, before the store is read, an ``--out`` that would overwrite the store (or one
    of its journal files, also through a link) or could not be written at the end (a
    folder, read-only, under a file).

    Raises:
        FathomError: one line naming ``--out``.
    """
    check_not_store(out, store, "--out")
    check_output_file(out, "--out")


def export_store(
    store: str | Path,
    out: str | Path | None = None,
    *,
    fmt: str = "json",
    sweep: str | None = None,
    status: str | Sequence[str] | None = None,
    history: bool = True,
) -> str:
    """The runs of ``store`` as JSON or CSV text, written atomically to ``out`` if given.

    The store is opened read-only (a read-only store or folder works) and never written;
    ``out`` is checked first (:func:`check_export_output`), so a refused output leaves
    every file as it was. Malformed rows are reported on stderr by run key and skipped.

    Args:
        store: the SQLite results store.
        out: the file to write (None: only return the text).
        fmt: ``"json"`` or ``"csv"``.
        sweep: only the runs of this sweep.
        status: only runs with this status (or one of these).
        history: keep the per-epoch history (JSON only; CSV never has it).

    Returns:
        The exported text.

    Raises:
        FathomError: a bad format or output path, or a store that cannot be read.
    """
    if fmt not in FORMATS:
        raise FathomError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if out is not None:
        check_export_output(out, store)
    with RunStore(store, create=False, readonly=True) as st:
        records = st.runs(sweep=sweep, status=status)
    if not history:
        records = [{**r, "history": []} for r in records]
    text = records_to_json(records) if fmt == "json" else records_to_csv(records)
    if out is not None:
        check_not_store(out, store, "--out")  # again: the path may have changed meanwhile
        with atomic_path(out) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return text
