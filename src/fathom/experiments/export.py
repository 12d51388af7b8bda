"""Stored runs as JSON or CSV, for scripts and spreadsheets; and a JSON export read back
into a store (results carried between machines, or kept beside a report)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fathom.config import config_from_dict, config_hash, config_to_dict, flatten
from fathom.errors import ConfigError, FathomError
from fathom.experiments.store import RunStore, check_not_store
from fathom.files import atomic_path, check_output_file

__all__ = [
    "FORMATS",
    "check_export_output",
    "export_store",
    "import_runs",
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


IMPORT_MAX_BYTES = 1 << 30
"""The largest export :func:`import_runs` reads (1 GiB; also bounded by the memory budget)."""


def _read_export(path: Path) -> list[Any]:
    from fathom.limits import check_bytes

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FathomError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not path.is_file():
        raise FathomError(f"{path} is not a file")
    if size > IMPORT_MAX_BYTES:
        raise FathomError(f"{path} is {size:,} bytes: over the {IMPORT_MAX_BYTES:,}-byte limit")
    check_bytes(size * 8, f"reading {path}", error=FathomError)  # parsed JSON: ~8x the text
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FathomError(f"{path} is not a JSON export of runs ({str(exc)[:80]})") from None
    if not isinstance(records, list):
        raise FathomError(f"{path} is not a JSON export of runs (a {type(records).__name__})")
    return records


def import_runs(paths: Sequence[str | Path], store: str | Path) -> dict[str, int]:
    """Read JSON exports (:func:`export_store`) into ``store``, created if missing.

    Every file is read and every record checked before anything is written: its config
    must be a valid config of this fathom whose key (:func:`~fathom.config.config_hash`) is
    the record's ``run_key``, and its status final. Runs are then stored in one transaction
    by :meth:`~fathom.experiments.store.RunStore.add_results` (never replacing or
    duplicating a stored result). No file is executed or unpickled: exports are JSON.

    Returns:
        ``{"added", "filled", "kept", "skipped"}`` run counts (``skipped``: records not
        finished, e.g. ``pending``, which are not imported).

    Raises:
        FathomError: a file that is not an export, or a record that is not a finished run of
            a valid config with its own key (one line naming file, record and problem).
    """
    chosen: dict[str, dict[str, Any]] = {}
    skipped = 0
    for path in map(Path, paths):
        check_not_store(path, store, "an import file")
        for i, record in enumerate(_read_export(path)):
            where = f"{path}: run {i + 1}"
            if not isinstance(record, dict):
                raise FathomError(f"{where} is a {type(record).__name__}, not a run record")
            if record.get("status") in ("pending", "running"):
                skipped += 1
                continue
            raw = record.get("config")
            if not isinstance(raw, dict):
                raise FathomError(f"{where} has no config")
            try:
                cfg = config_from_dict(raw)
            except ConfigError as exc:
                raise FathomError(f"{where}: its config is not valid here: {exc}") from None
            key = config_hash(cfg)
            if record.get("run_key") != key:
                raise FathomError(
                    f"{where}: run_key {str(record.get('run_key'))[:16]!r} is not its config's "
                    f"key ({key[:16]}): the record was edited, or comes from a fathom whose "
                    "configs differ"
                )
            record = {**record, "config": config_to_dict(cfg)}
            earlier = chosen.get(key)
            # the same run in two files: keep one, a finished result over a failed one
            if earlier is None or (earlier["status"] == "failed" and record["status"] != "failed"):
                chosen[key] = record
    with RunStore(store) as st:
        counts = st.add_results(list(chosen.values()))
    return {**counts, "skipped": skipped}
