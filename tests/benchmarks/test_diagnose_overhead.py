"""Smoke test of ``benchmarks/diagnose_overhead.py`` in its tiny mode (no datasets needed)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "diagnose_overhead.py"


def test_tiny_run_times_plain_and_probed_forwards(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("diagnose_overhead", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, md = tmp_path / "o.json", tmp_path / "o.md"
    argv = ["--tiny", "--depth", "4", "--rounds", "3", "--warmup", "1", "--threads", "1"]
    assert module.main([*argv, "--json", str(out), "--md", str(md)]) == 0
    result = json.loads(out.read_text())
    assert set(result["models"]) == {"fathom-gcn4", "pyg-gcn4"}
    for r in result["models"].values():
        assert r["layers_probed"] == 5  # input + 4 layers
        assert all(v > 0 for v in r["median_ms"].values())
        assert r["ratio_all"] == r["median_ms"]["all"] / r["median_ms"]["plain"]
    assert "| fathom-gcn4 | 5 |" in md.read_text()
