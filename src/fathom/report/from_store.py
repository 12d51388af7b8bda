"""``fathom.report(store)``: a report folder straight from a results store."""

from __future__ import annotations

from pathlib import Path

from fathom.experiments.store import RunStore
from fathom.report.build import ReportFiles, build_report, check_report_output

__all__ = ["report_store"]


def report_store(
    store: str | Path, out: str | Path = "report", *, sweep: str | None = None
) -> ReportFiles:
    """Aggregate the runs of ``store`` (optionally one ``sweep``) into ``out``:
    ``report.md``, ``report.html``, plots and ``summary.json``.

    Reads the store only (opened read-only: a read-only store or folder works); ``out`` is
    checked before the store is read, and may never overwrite it (see
    :func:`~fathom.report.build.check_report_output`). Malformed rows are reported on
    stderr by run key and skipped.
    """
    check_report_output(out, [store])
    with RunStore(store, create=False, readonly=True) as st:
        records = st.runs(sweep=sweep)
    title = f"{sweep or Path(store).name}: results"
    return build_report(records, out, title=title, source=str(store), protect=[store])
