"""``build_report``: stored runs -> a report folder (Markdown, HTML, PNG plots, JSON)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fathom.errors import FathomError
from fathom.experiments.store import check_not_store
from fathom.files import atomic_path, check_output_dir, write_json
from fathom.report.aggregate import (
    DEPTH_KEY,
    Group,
    group_runs,
    run_summary,
    status_counts,
)
from fathom.report.html import render_html
from fathom.report.plots import (
    plot_accuracy_vs_depth,
    plot_layer_series,
    plot_training_curves,
    pretty_series_name,
)
from fathom.report.tables import (
    depth_pivot_html,
    depth_pivot_markdown,
    html_table,
    markdown_table,
)

__all__ = ["REPORT_FILES", "ReportFiles", "build_report", "check_report_output"]


@dataclass
class ReportFiles:
    """What :func:`build_report` wrote, and the groups it aggregated.

    ``plots`` maps a caption to the PNG's path, in the order they appear in the report.
    """

    out_dir: Path
    markdown: Path
    html: Path
    summary_json: Path
    plots: dict[str, Path] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def paths(self) -> list[Path]:
        return [self.markdown, self.html, *self.plots.values(), self.summary_json]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "series"


REPORT_FILES = ("report.md", "report.html", "summary.json")
"""The files :func:`build_report` always writes (plus ``*.png`` plots)."""


def check_report_output(out_dir: str | Path, protect: Sequence[str | Path] = ()) -> None:
    """Refuse, before any work, a report folder that could not be written (a file, read-only,
    under a file) or whose files would overwrite one of ``protect`` (the results store, an
    input), also through a link: the folder itself, ``report.md``, ``report.html``,
    ``summary.json`` or a ``.png`` in it.

    Raises:
        FathomError: one line naming ``--out``.
    """
    out = Path(out_dir).expanduser()
    for path in protect:
        check_not_store(out, path, "--out")
        for name in REPORT_FILES:
            check_not_store(out / name, path, "--out")
        p = Path(path).expanduser()
        if p.suffix.lower() == ".png" and out.is_dir() and (out / p.name).exists():
            check_not_store(out / p.name, path, "--out")
    check_output_dir(out, "--out")


def build_report(
    records: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    title: str,
    source: str | None = None,
    protect: Sequence[str | Path] = (),
) -> ReportFiles:
    """Aggregate ``records`` over seeds and write the report folder ``out_dir``:

    ``report.md``, ``report.html`` (self-contained), ``accuracy_vs_depth.png`` (when
    ``model.depth`` varies), ``training_curves.png`` (when runs have a history),
    ``layer_<name>.png`` per per-layer diagnostic series, and ``summary.json``.

    ``protect`` lists files the report must never overwrite (the results store it was read
    from): see :func:`check_report_output`, checked before any work. Every file is written
    atomically (complete or absent).

    Raises:
        FathomError: no ``done`` / ``diverged`` run among ``records`` (nothing is written);
            ``source`` (e.g. the store path) names where the runs came from in the message;
            an output folder that cannot be written or would overwrite ``protect``.
    """
    check_report_output(out_dir, protect)
    records = list(records)
    groups = group_runs(records)
    if not groups:
        counts = ", ".join(f"{n} {s}" for s, n in status_counts(records).items())
        where = source or title
        raise FathomError(f"no finished runs to report in {where} ({counts or 'no runs at all'})")
    out = Path(out_dir)
    summary = run_summary(records)
    summary["generated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")

    plots: dict[str, Path] = {}
    depth_varies = any(DEPTH_KEY in g.key for g in groups)
    if depth_varies:
        rows = [
            {
                "model": g.label,
                "depth": g.key[DEPTH_KEY],
                "test_acc_mean": g.mean("test_acc"),
                "test_acc_std": g.std("test_acc") or 0.0,
            }
            for g in groups
            if g.mean("test_acc") is not None
        ]
        if rows:
            caption = "Test accuracy vs depth: mean over seeds, band ±1 std"
            plots[caption] = plot_accuracy_vs_depth(
                rows, out / "accuracy_vs_depth.png", title=f"{title}: test accuracy vs depth"
            )
    if any(g.curves for g in groups):
        caption = (
            "Training curves: mean training loss and validation accuracy per epoch, "
            "band ±1 std over the seeds still training"
        )
        plots[caption] = plot_training_curves(
            groups, out / "training_curves.png", title=f"{title}: training curves"
        )
    series = list(dict.fromkeys(name for g in groups for name in g.diagnostics))
    for name in series:
        pretty = pretty_series_name(name)
        caption = f"{pretty} by layer: mean over seeds, band ±1 std"
        plots[caption] = plot_layer_series(
            groups, name, out / f"layer_{_safe_name(name)}.png", title=f"{title}: {pretty}"
        )

    table_md = markdown_table(groups)
    pivot_md = depth_pivot_markdown(groups)
    tables_html = [html_table(groups, caption="Results per configuration")]
    pivot_html = depth_pivot_html(groups, caption="Test accuracy (%) by depth")
    if pivot_html is not None:
        tables_html.append(pivot_html)

    html_path = out / "report.html"
    page = render_html(title, summary, tables_html, list(plots.items()))
    with atomic_path(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")

    md_path = out / "report.md"
    text = _markdown(title, summary, table_md, pivot_md, plots, out)
    with atomic_path(md_path) as tmp:
        tmp.write_text(text, encoding="utf-8")

    summary_path = write_json(
        out / "summary.json",
        {
            "title": title,
            "runs": summary,
            "varying_keys": list(dict.fromkeys(k for g in groups for k in g.key)),
            "groups": [g.to_dict() for g in groups],
            "files": {
                "markdown": md_path.name,
                "html": html_path.name,
                "plots": [p.name for p in plots.values()],
            },
        },
    )
    files = ReportFiles(
        out_dir=out,
        markdown=md_path,
        html=html_path,
        summary_json=summary_path,
        plots=plots,
        groups=groups,
        summary=summary,
    )
    return files


def _markdown(
    title: str,
    summary: Mapping[str, Any],
    table_md: str,
    pivot_md: str | None,
    plots: Mapping[str, Path],
    out: Path,
) -> str:
    status = ", ".join(f"{n} {s}" for s, n in summary["by_status"].items())
    lines = [
        f"# {title}",
        "",
        f"{summary['total']} runs: {status}. Done and diverged runs are aggregated; "
        "accuracies are mean ± population std over seeds (%), n is the number of seeds "
        "(a cross-validated run with one seed: ± over its folds).",
        "",
        "## Results",
        "",
        table_md,
    ]
    if pivot_md:
        lines += ["### Test accuracy (%) by depth", "", pivot_md]
    if plots:
        lines += ["## Plots", ""]
        for caption, path in plots.items():
            rel = path.relative_to(out) if path.is_relative_to(out) else path
            lines += [f"![{caption}]({rel.as_posix()})", "", f"*{caption}*", ""]
    failed = summary.get("failed") or []
    if failed:
        lines += ["## Failed runs", "", "| run | config | seed | error |"]
        lines.append("| --- | --- | --: | --- |")
        for f in failed:
            cells = [
                str(f.get("run_key", ""))[:12],
                f.get("config", ""),
                f.get("seed", ""),
                f.get("error", ""),
            ]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        if summary.get("n_failed", 0) > len(failed):
            lines.append(f"\n(first {len(failed)} of {summary['n_failed']} failed runs)")
        lines.append("")
    lines += ["## Provenance", ""]
    names = {"fathom": "fathom", "torch": "PyTorch", "torch_geometric": "PyG"}
    versions = summary.get("versions") or {}
    for pkg in [*names, *(p for p in versions if p not in names)]:
        if pkg in versions:
            lines.append(f"- {names.get(pkg, pkg)}: {', '.join(versions[pkg])}")
    if summary.get("hosts"):
        lines.append(f"- hosts: {', '.join(summary['hosts'])}")
    if summary.get("first_started"):
        lines.append(f"- runs between {summary['first_started']} and {summary['last_ended']}")
    lines.append(f"- report generated {summary.get('generated_at')}")
    return "\n".join(lines) + "\n"
