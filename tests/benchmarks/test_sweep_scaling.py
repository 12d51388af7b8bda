"""Smoke runs of ``benchmarks/sweep_scaling.py`` (``--tiny``: 6 runs of 2 epochs): the rows of
each executor, positive figures, the same metrics in every store, the JSON and Markdown."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "sweep_scaling.py"


@pytest.fixture
def sweep_scaling(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("sweep_scaling", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "sweep_scaling", module)
    spec.loader.exec_module(module)
    return module


def _check(out: Path, md: Path, executors: list[str]) -> dict:
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [r["executor"] for r in rows] == executors
    for r in rows:
        assert r["runs"] == 6 and r["wall_s"] > 0 and r["train_s_median"] > 0
        assert r["slots"] == int(r["executor"][-1])
        assert r["overhead_per_run_s"] == pytest.approx(
            (r["wall_s"] * r["slots"] - r["train_s_sum"]) / r["runs"]
        )
    assert report["same_metrics"] is True
    assert report["workload"]["tiny"] is True and report["workload"]["threads"] == 1
    text = md.read_text()
    assert text.startswith("# Sweep scaling") and all(f"| {e} |" in text for e in executors)
    return report


@pytest.mark.slow
def test_tiny_run_of_the_local_executor(sweep_scaling: ModuleType, tmp_path: Path) -> None:
    out, md = tmp_path / "s.json", tmp_path / "s.md"
    argv = ["--tiny", "--threads", "1", "--executors", "local"]
    assert sweep_scaling.main([*argv, "--json", str(out), "--md", str(md)]) == 0
    report = _check(out, md, ["local ×1", "local ×2"])
    assert "ray_cluster_start_s" not in report and all(r["nodes"] == [] for r in report["rows"])


@pytest.mark.slow
def test_tiny_run_of_ray_on_one_then_two_simulated_nodes(
    sweep_scaling: ModuleType, tmp_path: Path
) -> None:
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'fathom-gnn[ray]'")
    out, md = tmp_path / "s.json", tmp_path / "s.md"
    argv = ["--tiny", "--threads", "1", "--executors", "ray"]
    assert sweep_scaling.main([*argv, "--json", str(out), "--md", str(md)]) == 0
    report = _check(out, md, ["ray ×1", "ray ×2"])
    assert report["ray_cluster_start_s"] > 0
    one, two = report["rows"]
    assert len(one["nodes"]) == 1 and one["nodes"][0] in two["nodes"]
