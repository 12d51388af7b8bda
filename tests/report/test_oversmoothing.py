"""Tests of fathom.report.oversmoothing: the over-smoothing study's table and files
(a hand-written row; no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from fathom.report.oversmoothing import energy_study_markdown, write_energy_study


def _layer(energy: float) -> dict[str, float]:
    return {"dirichlet_energy": energy, "normalized_energy": energy / 10, "effective_rank": 3.0}


ROW: dict[str, Any] = {
    "model": "GCN",
    "depth": 2,
    "untrained": [_layer(1.0), _layer(0.5), _layer(0.25), _layer(0.1)],
    "trained": [_layer(2.0), _layer(0.7), _layer(0.3), _layer(0.2)],
    "untrained_decay": {"rate": 0.7, "r2": 0.99},
    "trained_decay": {"rate": math.nan, "r2": 0.0},
    "train_acc": 0.9,
    "test_acc": None,
}


def test_markdown_row() -> None:
    md = energy_study_markdown([ROW], dataset="cora", command="fathom reproduce oversmoothing")
    assert md.startswith("# Over-smoothing on cora: Dirichlet energy by layer\n")
    assert "Command: `fathom reproduce oversmoothing`" in md
    # first hidden layer 0.7, last hidden layer 0.3; no trained fit: a dash
    assert "| GCN | 2 | 0.700 (R² 0.99) | – | 0.7 → 0.3 | 0.03 | 3.0 / 3.0 | 90.0 | nan |" in md


def test_write_energy_study(tmp_path: Path) -> None:
    paths = write_energy_study([ROW], tmp_path, dataset="cora", command="c")
    assert [p.name for p in paths] == [
        "oversmoothing-energy.png",
        "oversmoothing-normalized-energy.png",
        "oversmoothing.md",
        "oversmoothing.json",
    ]
    assert json.loads(paths[3].read_text())["dataset"] == "cora"
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
