"""The aggregated results as tables: GitHub Markdown, rich (terminal) and HTML.

All three show the same content: one row per group, a column for each varying config key,
then test / val accuracy mean ± std (%) — test AUC / AP when link-prediction runs are among
the groups, test mIoU / OA instead of accuracy for point-cloud segmentation — number of
seeds, epochs and wall time. When ``model.depth`` varies, a pivot puts depths in columns and
the other varying keys in rows (test accuracy, test AUC for link prediction only, test mIoU
for segmentation only).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from fathom.report.aggregate import DEPTH_KEY, Group, fmt_value, short_key
from fathom.report.console import pct

__all__ = [
    "depth_pivot_html",
    "depth_pivot_markdown",
    "depth_pivot_rich",
    "html_table",
    "markdown_table",
    "rich_table",
    "table_rows",
]

_ACC = (("test acc (%)", "test_acc"), ("val acc (%)", "val_acc"))
_AUC = (("test AUC (%)", "test_auc"), ("test AP (%)", "test_ap"))
_SEG = (("test mIoU (%)", "test_miou"), ("test OA (%)", "test_oa"))
_COUNTS = ("n", "epochs", "time (s)")


def _has(groups: Sequence[Group], metric: str) -> bool:
    return any(g.mean(metric) is not None for g in groups)


def _metric_columns(groups: Sequence[Group]) -> list[tuple[str, str]]:
    """Accuracy columns, AUC / AP and mIoU / OA columns when some group has them (several
    for mixed stores; segmentation runs' accuracy is their OA, so it is not repeated)."""
    link, seg = _has(groups, "test_auc"), _has(groups, "test_miou")
    classification = any(
        g.mean("test_acc") is not None and g.mean("test_miou") is None for g in groups
    )
    acc = classification or not (link or seg)
    return [*(_ACC if acc else ()), *(_AUC if link else ()), *(_SEG if seg else ())]


def _headline(groups: Sequence[Group]) -> str:
    """The metric of the depth pivot: test accuracy, or test AUC for link-only groups, or
    test mIoU for segmentation-only groups."""
    columns = [key for _, key in _metric_columns(groups)]
    if "test_acc" in columns:
        return "test_acc"
    return columns[0]


def _n_numeric(groups: Sequence[Group]) -> int:
    return len(_metric_columns(groups)) + len(_COUNTS)


def _keys(groups: Sequence[Group]) -> list[str]:
    """The varying keys in config order, ``model.depth`` last (rows are sorted that way)."""
    keys = list(dict.fromkeys(k for g in groups for k in g.key))
    return [k for k in keys if k != DEPTH_KEY] + ([DEPTH_KEY] if DEPTH_KEY in keys else [])


def _num(mean: float | None, std: float | None, fmt: str) -> str:
    if mean is None:
        return "–"
    return f"{mean:{fmt}}" if not std else f"{mean:{fmt}} ± {std:{fmt}}"


def _n(group: Group) -> str:
    return f"{group.n} ({group.n_diverged} diverged)" if group.n_diverged else str(group.n)


def table_rows(groups: Sequence[Group]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (strings) shared by the Markdown, rich and HTML tables."""
    keys = _keys(groups)
    metrics = _metric_columns(groups)
    header = [short_key(k, keys) for k in keys] or ["runs"]
    header += [name for name, _ in metrics] + list(_COUNTS)
    rows = []
    for g in groups:
        cells = [fmt_value(g.key.get(k)) for k in keys] or [g.label]
        cells += [pct(g.mean(m), g.std(m)) for _, m in metrics]
        cells += [
            _n(g),
            _num(g.mean("epochs"), g.std("epochs"), ".0f"),
            _num(g.mean("time_s"), None, ".1f"),
        ]
        rows.append(cells)
    return header, rows


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(header: list[str], rows: list[list[str]], n_left: int) -> str:
    align = ["---" if i < n_left else "--:" for i in range(len(header))]
    lines = [
        "| " + " | ".join(_md_cell(h) for h in header) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_table(groups: Sequence[Group]) -> str:
    """A GitHub Markdown table, one row per group (accuracies as mean ± std in %)."""
    header, rows = table_rows(groups)
    return _markdown(header, rows, len(header) - _n_numeric(groups))


def rich_table(groups: Sequence[Group], title: str) -> Table:
    """The same content as :func:`markdown_table`, for the terminal."""
    header, rows = table_rows(groups)
    n_left = len(header) - _n_numeric(groups)
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i < n_left else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _html(header: list[str], rows: list[list[str]], n_left: int, caption: str | None) -> str:
    esc = html.escape
    out = ['<table class="results">']
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append(
        "<thead><tr>"
        + "".join(
            f'<th scope="col" class="{"l" if i < n_left else "r"}">{esc(h)}</th>'
            for i, h in enumerate(header)
        )
        + "</tr></thead>"
    )
    out.append("<tbody>")
    for row in rows:
        out.append(
            "<tr>"
            + "".join(
                f'<td class="{"l" if i < n_left else "r"}">{esc(c)}</td>' for i, c in enumerate(row)
            )
            + "</tr>"
        )
    out.append("</tbody></table>")
    return "\n".join(out)


def html_table(groups: Sequence[Group], caption: str | None = None) -> str:
    """The same content as :func:`markdown_table` as an HTML ``<table>`` (escaped)."""
    header, rows = table_rows(groups)
    return _html(header, rows, len(header) - _n_numeric(groups), caption)


# --------------------------------------------------------------------------- depth pivot


def _pivot(groups: Sequence[Group]) -> tuple[list[str], list[list[str]], int] | None:
    keys = _keys(groups)
    if DEPTH_KEY not in keys:
        return None
    depths = sorted({g.key[DEPTH_KEY] for g in groups}, key=_depth_sort)
    labels = list(dict.fromkeys(g.label for g in groups))
    metric = _headline(groups)
    cells: dict[tuple[str, Any], Group] = {(g.label, g.key[DEPTH_KEY]): g for g in groups}
    header = ["configuration", *(f"depth {fmt_value(d)}" for d in depths)]
    rows = []
    for label in labels:
        row = [label]
        for d in depths:
            g = cells.get((label, d))
            if g is None:
                row.append("–")
            else:
                text = pct(g.mean(metric), g.std(metric))
                row.append(
                    f"{text} (n={g.n})"
                    if g.n_diverged == 0
                    else f"{text} (n={g.n}, {g.n_diverged} div.)"
                )
        rows.append(row)
    return header, rows, 1


def _depth_sort(d: Any) -> tuple[int, Any]:
    return (0, d) if isinstance(d, int | float) else (1, str(d))


def depth_pivot_markdown(groups: Sequence[Group]) -> str | None:
    """Test accuracy (%) with depths as columns and the other varying keys as rows;
    ``None`` when ``model.depth`` does not vary."""
    pivot = _pivot(groups)
    return None if pivot is None else _markdown(*pivot)


def depth_pivot_rich(groups: Sequence[Group], title: str) -> Table | None:
    """:func:`depth_pivot_markdown` for the terminal; ``None`` when depth does not vary."""
    pivot = _pivot(groups)
    if pivot is None:
        return None
    header, rows, n_left = pivot
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i < n_left else "right")
    for row in rows:
        table.add_row(*row)
    return table


def depth_pivot_html(groups: Sequence[Group], caption: str | None = None) -> str | None:
    """:func:`depth_pivot_markdown` as an HTML ``<table>``; ``None`` when depth does not vary."""
    pivot = _pivot(groups)
    return None if pivot is None else _html(*pivot, caption)
