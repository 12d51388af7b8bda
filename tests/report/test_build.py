"""``build_report``: the report folder, its self-contained HTML and machine-readable JSON."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from fathom.errors import FathomError
from fathom.report.build import ReportFiles, build_report

PNG = b"\x89PNG\r\n\x1a\n"
EXPECTED = {
    "report.md",
    "report.html",
    "summary.json",
    "accuracy_vs_depth.png",
    "training_curves.png",
    "layer_dirichlet_energy.png",
    "layer_effective_rank.png",
}


def test_writes_every_file(report: ReportFiles) -> None:
    assert {p.name for p in report.out_dir.iterdir()} == EXPECTED  # no temporary files left
    assert {p.name for p in report.paths} == EXPECTED
    assert report.markdown == report.out_dir / "report.md"
    for path in report.plots.values():
        data = path.read_bytes()
        assert data[:8] == PNG
        assert len(data) > 5000
    assert len(report.groups) == 6


def test_summary_json_is_machine_readable(report: ReportFiles) -> None:
    summary = json.loads(report.summary_json.read_text())
    assert summary["title"] == "CSBM <depth> sweep & friends"
    assert summary["varying_keys"] == ["model.depth", "model.skip"]
    assert summary["runs"]["by_status"] == {"done": 18, "failed": 1, "running": 1, "pending": 1}
    groups = summary["groups"]
    assert len(groups) == 6
    g = groups[2]
    assert g["key"] == {"model.depth": 8, "model.skip": "none"}
    assert g["label"] == "skip=none"
    assert g["n"] == 3
    assert g["test_acc_mean"] == pytest.approx(0.61)
    assert g["test_acc_std"] == pytest.approx((2 / 3) ** 0.5 / 100)
    assert g["curves"]["val_acc"]["n"] == [3, 3, 3, 2, 1]
    assert g["diagnostics"]["dirichlet_energy"]["x"] == list(range(8))
    assert set(summary["files"]["plots"]) == EXPECTED - {"report.md", "report.html", "summary.json"}


def test_markdown_report(report: ReportFiles) -> None:
    md = report.markdown.read_text()
    assert md.startswith("# CSBM <depth> sweep & friends\n")
    assert "21 runs: 18 done, 1 failed, 1 running, 1 pending." in md
    assert "| skip | depth | test acc (%) | val acc (%) | n | epochs | time (s) |" in md
    assert "| none | 8 | 61.00 ± 0.82 | 56.00 ± 0.82 | 3 | 4 ± 1 | 2.0 |" in md
    assert "| configuration | depth 2 | depth 4 | depth 8 |" in md
    links = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", md)
    assert sorted(links) == sorted(p.name for p in report.plots.values())
    assert all((report.out_dir / link).is_file() for link in links)
    assert "CUDA out of memory \\| boom" in md  # the failed run, pipe escaped
    assert "- PyTorch: 2.4.0" in md and "- hosts: node-a, node-b" in md


def test_html_is_self_contained(report: ReportFiles) -> None:
    page = report.html.read_text()
    assert page.startswith("<!DOCTYPE html>")
    for forbidden in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert forbidden not in page.lower()
    assert "<title>CSBM &lt;depth&gt; sweep &amp; friends</title>" in page
    imgs = re.findall(r"<img\b[^>]*>", page)
    assert len(imgs) == len(report.plots) == 4
    for img in imgs:
        src = re.search(r'src="([^"]*)"', img)
        alt = re.search(r'alt="([^"]+)"', img)
        assert src is not None and alt is not None
        assert src.group(1).startswith("data:image/png;base64,")
        assert base64.b64decode(src.group(1).split(",", 1)[1])[:8] == PNG
    assert page.count("<figure>") == page.count("<figcaption>") == 4
    assert page.count("<table") == 3  # results, depth pivot, failed runs
    assert '<td class="r">61.00 ± 0.82</td>' in page
    assert "CUDA out of memory | boom" in page
    for text in ("PyTorch", "2.4.0", "PyG", "2.6.1", "fathom", "0.1.0", "node-a", "node-b"):
        assert text in page
    assert '<li class="failed">failed: 1</li>' in page


def test_no_finished_runs_raises_before_writing(make_record: Any, tmp_path: Path) -> None:
    runs = [make_record("none", 2, 0, status="failed"), make_record("none", 2, 1, status="pending")]
    with pytest.raises(FathomError, match=r"no finished runs to report in store\.db"):
        build_report(runs, tmp_path / "out", title="t", source="store.db")
    assert not (tmp_path / "out").exists()
    with pytest.raises(FathomError, match="no runs at all"):
        build_report([], tmp_path / "out", title="t")


def test_without_depth_axis_history_or_diagnostics(make_record: Any, tmp_path: Path) -> None:
    runs = [make_record(skip, 4, seed) for skip in ("none", "res") for seed in (0, 1)]
    for r in runs:
        r["history"] = []
    files = build_report(runs, tmp_path, title="no depth")
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"report.md", "report.html", "summary.json"}
    assert files.plots == {}
    assert "by depth" not in files.markdown.read_text()
    assert "<img" not in files.html.read_text()
