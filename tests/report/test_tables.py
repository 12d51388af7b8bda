"""Markdown, rich and HTML tables of aggregated groups."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from fathom.report.aggregate import group_runs
from fathom.report.tables import (
    depth_pivot_html,
    depth_pivot_markdown,
    depth_pivot_rich,
    html_table,
    markdown_table,
    rich_table,
)


def _lines(text: str) -> list[str]:
    return text.strip().splitlines()


def test_markdown_table_has_a_row_per_group_with_mean_std_percent(
    records: list[dict[str, Any]],
) -> None:
    md = markdown_table(group_runs(records))
    lines = _lines(md)
    assert lines[0] == "| skip | depth | test acc (%) | val acc (%) | n | epochs | time (s) |"
    assert lines[1] == "| --- | --- | --: | --: | --: | --: | --: |"
    assert len(lines) == 2 + 6
    # skip=none, depth=8: 0.60 / 0.61 / 0.62 -> 61.00 ± 0.82 (population std)
    assert lines[4] == "| none | 8 | 61.00 ± 0.82 | 56.00 ± 0.82 | 3 | 4 ± 1 | 2.0 |"
    assert all(line.count("|") == 8 for line in lines)


def test_markdown_counts_diverged_and_escapes_pipes(make_record: Any) -> None:
    runs = [make_record("a|b", 2, 0), make_record("a|b", 2, 1, status="diverged")]
    runs.append(make_record("c", 2, 0))
    md = markdown_table(group_runs(runs))
    assert "a\\|b" in md
    assert "2 (1 diverged)" in md


def test_single_group_without_varying_keys(make_record: Any) -> None:
    md = markdown_table(group_runs([make_record("none", 2, 0)]))
    assert _lines(md)[0].startswith("| runs | test acc (%)")
    assert "| gcn | 90.00 ± 0.00 | 85.00 ± 0.00 | 1 | 5 | 1.0 |" in md


def test_depth_pivot_puts_depths_in_columns(records: list[dict[str, Any]]) -> None:
    groups = group_runs(records)
    lines = _lines(depth_pivot_markdown(groups) or "")
    assert lines[0] == "| configuration | depth 2 | depth 4 | depth 8 |"
    cells = ("91.00 ± 0.82 (n=3)", "81.00 ± 0.82 (n=3)", "61.00 ± 0.82 (n=3)")
    assert lines[2] == "| skip=none | " + " | ".join(cells) + " |"
    assert lines[3].startswith("| skip=res | 81.00 ± 0.82 (n=3) |")


def test_depth_pivot_is_none_without_a_depth_axis(make_record: Any) -> None:
    groups = group_runs([make_record("none", 2, 0), make_record("res", 2, 0)])
    assert depth_pivot_markdown(groups) is None
    assert depth_pivot_rich(groups, "t") is None
    assert depth_pivot_html(groups) is None


def test_rich_table_shows_the_same_content(records: list[dict[str, Any]]) -> None:
    groups = group_runs(records)
    console = Console(width=200, record=True)
    console.print(rich_table(groups, "depth sweep"))
    pivot = depth_pivot_rich(groups, "by depth")
    assert pivot is not None
    console.print(pivot)
    text = console.export_text()
    assert "depth sweep" in text and "by depth" in text
    assert "61.00 ± 0.82" in text
    assert "test acc (%)" in text


def test_html_table_is_escaped(make_record: Any) -> None:
    runs = [make_record("<b>", 2, 0), make_record("res", 2, 0)]
    out = html_table(group_runs(runs), caption="results & more")
    assert out.startswith('<table class="results">')
    assert "&lt;b&gt;" in out and "<b>" not in out
    assert "results &amp; more" in out
    assert out.count("<tr>") == 3  # header + 2 rows


def _link_records(make_record: Any) -> list[dict[str, Any]]:
    runs = []
    for depth in (2, 4):
        for seed in (0, 1):
            r = make_record("none", depth, seed)
            r["config"]["task"] = "link"
            auc = 0.9 - 0.1 * (depth == 4) + 0.02 * seed
            r["metrics"] = {"test_auc": auc, "test_ap": auc + 0.01, "epochs": 5, "best_epoch": 5}
            runs.append(r)
    return runs


def test_link_groups_show_auc_and_ap_columns(make_record: Any) -> None:
    lines = _lines(markdown_table(group_runs(_link_records(make_record))))
    assert lines[0] == "| depth | test AUC (%) | test AP (%) | n | epochs | time (s) |"
    assert lines[2].startswith("| 2 | 91.00 ± 1.00 | 92.00 ± 1.00 | 2 |")


def test_depth_pivot_of_link_groups_uses_auc(make_record: Any) -> None:
    lines = _lines(depth_pivot_markdown(group_runs(_link_records(make_record))) or "")
    assert lines[2] == "| gcn | 91.00 ± 1.00 (n=2) | 81.00 ± 1.00 (n=2) |"
