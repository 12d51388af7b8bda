"""Tests of fathom.report.neighbors_match: the Tree-NeighborsMatch table, plot and report files
(hand-written rows; no training)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fathom.errors import ConfigError
from fathom.experiments.neighbors_match import PUBLISHED
from fathom.report.neighbors_match import neighbors_match_table, write_neighbors_match_report


def _row(model: str, radius: int, seed: int, train_acc: float, **kw: Any) -> dict[str, Any]:
    """A row shaped as run_neighbors_match returns it."""
    return {
        "model": model,
        "radius": radius,
        "depth": radius + 1,
        "seed": seed,
        "train_acc": train_acc,
        "test_acc": train_acc / 2,
        "epochs": 100,
        "best_epoch": 50,
        "stop_reason": "patience",
        "num_examples": 96,
        "batch_size": 64,
        "accum_grad": 1,
        "time_s": 1.5,
        "published": PUBLISHED.get((model, radius)),
        **kw,
    }


def test_table_formats_ours_and_published() -> None:
    rows = [
        {"model": "gcn", "radius": 2, "train_acc": 0.98, "seed": 0},
        {"model": "gcn", "radius": 2, "train_acc": 0.5, "seed": 1},
        {"model": "gin", "radius": 7, "train_acc": 0.1234, "seed": 0},
    ]
    table = neighbors_match_table(rows)
    lines = table.strip().splitlines()
    assert lines[0] == "| model | r=2 | r=7 |"
    assert lines[2] == "| GCN | 0.98 (pub 1.00) | – (pub 0.09) |"  # best of two seeds
    assert lines[3] == "| GIN | – (pub 1.00) | 0.12 (pub –) |"
    # no run and no published value (GIN at r = 8): a bare dash
    other = [rows[2], {"model": "gcn", "radius": 8, "train_acc": 0.1, "seed": 0}]
    assert neighbors_match_table(other).splitlines()[3] == "| GIN | 0.12 (pub –) | – |"


def test_no_rows_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no Tree-NeighborsMatch rows"):
        write_neighbors_match_report([], "unused")


def test_report_files(tmp_path: Path) -> None:
    rows = [
        _row("gcn", 2, 0, 1.0),
        _row("gcn", 2, 1, 0.9),
        _row("gcn", 4, 0, 0.5, accum_grad=2, time_s=80.0),
        _row("ggnn", 2, 0, 0.75),
    ]
    paths = write_neighbors_match_report(rows, tmp_path / "report")
    assert [p.name for p in paths] == [
        "neighbors-match.md",
        "neighbors-match.json",
        "neighbors-match.png",
    ]
    md = paths[0].read_text()
    assert "(pub 1.00)" in md and "| GGNN |" in md and "Figure 3" in md
    assert "best of up to 2 seeds per cell" in md
    assert "| GCN | 4 | 5 | 0 | 0.5000 | 0.2500 | 0.70 |" in md
    assert "| 64×2 |" in md  # gradient accumulation shown beside the batch
    assert "Total training time: 84.5 s (2 min)." in md
    saved = json.loads(paths[1].read_text())
    assert saved["metric"] == "train_acc" and saved["rows"] == rows
    assert {"model": "gcn", "radius": 8, "train_acc": 0.08} in saved["published"]
    assert len(saved["published"]) == len(PUBLISHED) == 26
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "report").glob(".*.tmp"))
