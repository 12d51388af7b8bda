"""One self-contained HTML page: inline CSS, PNG plots embedded as ``data:`` URIs, no
scripts and no external URLs, so it opens from disk (or an e-mail attachment) anywhere."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["render_html"]

_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1b1f24; background: #fff; margin: 0 auto; padding: 1.5rem 2rem 3rem;
       max-width: 72rem; }
h1 { font-size: 1.6rem; margin: 0 0 .4rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .6rem; border-bottom: 1px solid #d0d7de;
     padding-bottom: .2rem; }
p.meta { color: #57606a; margin: 0 0 1rem; }
ul.status { list-style: none; padding: 0; margin: .3rem 0 1rem; display: flex;
            flex-wrap: wrap; gap: .5rem; }
ul.status li { border: 1px solid #d0d7de; border-radius: 1rem; padding: .1rem .7rem; }
ul.status li.done { background: #dafbe1; } ul.status li.diverged { background: #fff8c5; }
ul.status li.failed { background: #ffebe9; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0 1.2rem; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; white-space: nowrap; }
thead th { background: #f6f8fa; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.r, th.r { text-align: right; } td.l, th.l { text-align: left; }
td.err { white-space: normal; font-family: ui-monospace, monospace; font-size: .85em; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: .9rem; margin-top: .3rem; }
dl.prov { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; }
dl.prov dt { font-weight: 600; } dl.prov dd { margin: 0; }
"""


def _data_uri(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def _status_html(summary: Mapping[str, Any]) -> str:
    esc = html.escape
    by_status: Mapping[str, int] = summary.get("by_status") or {}
    total = summary.get("total", sum(by_status.values()))
    items = "".join(
        f'<li class="{esc(str(s))}">{esc(str(s))}: {int(n)}</li>' for s, n in by_status.items()
    )
    out = [f"<p>{int(total)} runs in total; done and diverged runs are aggregated.</p>"]
    if items:
        out.append(f'<ul class="status">{items}</ul>')
    return "\n".join(out)


def _failed_html(summary: Mapping[str, Any]) -> str:
    esc = html.escape
    out: list[str] = []
    failed: Sequence[Mapping[str, Any]] = summary.get("failed") or []
    if failed:
        n_failed = summary.get("n_failed", len(failed))
        more = f" (first {len(failed)} of {n_failed})" if n_failed > len(failed) else ""
        rows = "".join(
            "<tr>"
            f'<td class="l">{esc(str(f.get("run_key", ""))[:12])}</td>'
            f'<td class="l">{esc(str(f.get("config", "")))}</td>'
            f'<td class="r">{esc(str(f.get("seed", "")))}</td>'
            f'<td class="err">{esc(str(f.get("error", "")))}</td>'
            "</tr>"
            for f in failed
        )
        out.append(
            f'<h2>Failed runs</h2><div class="scroll"><table class="failed"><caption>'
            f"not aggregated{more}</caption>"
            '<thead><tr><th class="l">run</th><th class="l">config</th><th class="r">seed</th>'
            f'<th class="l">error</th></tr></thead><tbody>{rows}</tbody></table></div>'
        )
    return "\n".join(out)


def _provenance_html(summary: Mapping[str, Any]) -> str:
    esc = html.escape
    entries: list[tuple[str, str]] = []
    versions: Mapping[str, Sequence[str]] = summary.get("versions") or {}
    names = {"fathom": "fathom", "torch": "PyTorch", "torch_geometric": "PyG"}
    for pkg in [*names, *(p for p in versions if p not in names)]:
        if pkg in versions:
            entries.append((names.get(pkg, pkg), ", ".join(map(str, versions[pkg]))))
    hosts = summary.get("hosts") or []
    if hosts:
        entries.append(("hosts", ", ".join(map(str, hosts))))
    if summary.get("first_started") or summary.get("last_ended"):
        span = f"{summary.get('first_started') or '?'} – {summary.get('last_ended') or '?'}"
        entries.append(("runs between", span))
    if summary.get("generated_at"):
        entries.append(("report generated", str(summary["generated_at"])))
    if not entries:
        return "<p>No version or host information was stored with the runs.</p>"
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in entries)
    return f'<dl class="prov">{body}</dl>'


def render_html(
    title: str,
    summary: Mapping[str, Any],
    tables_html: Sequence[str],
    images: Sequence[tuple[str, Path]],
) -> str:
    """A complete, self-contained HTML document.

    Args:
        title: page title and heading (escaped).
        summary: run summary as :func:`fathom.report.aggregate.run_summary` returns it
            (``total``, ``by_status``, ``failed``, ``n_failed``, ``versions``, ``hosts``,
            ``first_started``, ``last_ended``; optional ``generated_at``); all optional.
        tables_html: ``<table>`` fragments (already escaped, e.g. from
            :func:`fathom.report.tables.html_table`), shown in order.
        images: ``(caption, png_path)`` pairs; each PNG is embedded as a base64 ``data:`` URI
            in a ``<figure>`` with the caption as ``alt`` text and ``<figcaption>``.
    """
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
        '<p class="meta">Accuracies are mean ± population std over seeds, in %; '
        "n is the number of seeds aggregated (a cross-validated run with one seed: ± over "
        "its folds).</p>",
        "<h2>Runs</h2>",
        _status_html(summary),
        "<h2>Results</h2>",
    ]
    parts += [f'<div class="scroll">{t}</div>' for t in tables_html]
    if images:
        parts.append("<h2>Plots</h2>")
    for caption, path in images:
        parts.append(
            f'<figure><img src="{_data_uri(path)}" alt="{esc(caption, quote=True)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )
    parts += [_failed_html(summary), "<h2>Provenance</h2>", _provenance_html(summary)]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
