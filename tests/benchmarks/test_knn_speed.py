"""Smoke test of ``benchmarks/knn_speed.py`` on tiny clouds."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "knn_speed.py"


def test_tiny_run_writes_rows_side_by_side(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("knn_speed", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, md = tmp_path / "k.json", tmp_path / "k.md"
    argv = ["--sizes", "64,200", "--k", "4", "--rounds", "1", "--threads", "1", "--dense-max", "64"]
    assert module.main([*argv, "--json", str(out), "--md", str(md)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["points"] for r in rows] == [64, 200]
    assert rows[0]["fathom_over_dense_time"] == rows[0]["fathom_s"] / rows[0]["dense_s"]
    assert rows[1]["dense_s"] is None  # above --dense-max: not run
    assert "| 200 |" in md.read_text()
    assert module.main(["--sizes", "x"]) == 2


def test_tiny_deepgcn_grid_compares_each_setting_with_dense(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("knn_speed", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "k.json"
    argv = ["--deepgcn", "--cloud-points", "64", "--ks", "2", "--dilations", "1,2"]
    argv += ["--clouds", "1,2", "--sizes", "64", "--rounds", "1", "--threads", "1"]
    assert module.main([*argv, "--json", str(out)]) == 0
    grid = json.loads(out.read_text())["deepgcn"]
    assert [(r["clouds"], r["dilation"]) for r in grid] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(r["fathom_over_dense_time"] == r["fathom_s"] / r["dense_s"] for r in grid)
