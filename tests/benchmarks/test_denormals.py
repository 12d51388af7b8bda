"""Smoke test of benchmarks/denormals.py: both runs train, one flushing subnormals, one not."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmark_script import load_benchmark


def test_denormals_benchmark_runs_flushed_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = load_benchmark("denormals")
    out, md = tmp_path / "d.json", tmp_path / "d.md"
    argv = ["denormals.py", "--preset", "depth-gcn-cora", "--dataset", "csbm", "--depth", "3"]
    argv += ["--epochs", "4", "--window", "2", "--json", str(out), "--md", str(md)]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    payload = json.loads(out.read_text())
    flushed, kept = payload["runs"]["flushed"], payload["runs"]["kept"]
    assert flushed["flushes"] is True and kept["flushes"] is False
    assert len(flushed["epoch_s"]) == len(kept["epoch_s"]) == 4
    assert len(payload["windows"]["flushed"]) == 2
    shares = kept["subnormal_share"]
    assert {"module outputs", "gradients", "optimizer exp_avg", "optimizer exp_avg_sq"} <= set(
        shares
    )
    assert all(0.0 <= v <= 1.0 for v in shares.values())
    assert "| 1-2 |" in md.read_text() and "| 3-4 |" in md.read_text()
