"""Small run of ``benchmarks/memory_depth.py``: JSON schema, skipping by projection, and that
reversible blocks' memory grows with depth far less than residual blocks'."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "memory_depth.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("memory_depth", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_small_run_writes_rows_and_reversible_grows_less_than_res(tmp_path: Path) -> None:
    module = _load()
    out, md = tmp_path / "m.json", tmp_path / "m.md"
    # four fresh processes (each imports torch): two at a time
    argv = ["--nodes", "2000", "--depths", "2,8", "--hidden", "128", "--epochs", "1"]
    argv += ["--blocks", "res,reversible", "--jobs", "2", "--json", str(out), "--md", str(md)]
    assert module.main(argv) == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["block"], r["depth"]) for r in rows] == [
        ("res", 2),
        ("res", 8),
        ("reversible", 2),
        ("reversible", 8),
    ]
    for r in rows:
        assert r["status"] == "ok", r
        assert r["peak_mb"] > 0 and r["epoch_s"] > 0
        assert {"graph_mb", "model_mb", "state_mb", "working_mb", "params"} <= set(r)
    assert result["setup"]["nodes"] == 2000 and "VmHWM" in result["setup"]["peak_mb"]
    peak = {(r["block"], r["depth"]): r["peak_mb"] for r in rows}
    res_growth = peak["res", 8] - peak["res", 2]
    rev_growth = peak["reversible", 8] - peak["reversible", 2]
    # 6 more residual blocks keep >= 3 [2000, 128] float tensors each (>= 17 MB); 6 more
    # reversible blocks keep none (their parameters, gradients, Adam state and module objects
    # are ~1.5 MB)
    assert res_growth > 12
    assert rev_growth < 0.25 * res_growth
    ratio = result["ratios"]["reversible"]
    assert ratio["projected"] is False
    assert ratio["ratio"] == pytest.approx(peak["reversible", 8] / peak["reversible", 2])
    grown = result["growth"]["reversible"]
    assert (grown["from_depth"], grown["to_depth"]) == (2, 8)
    assert grown["delta_peak_mb"] == pytest.approx(rev_growth)
    text = md.read_text()
    assert "| reversible | 8 | ok |" in text and "## Ratios" in text
    assert "## What grows with depth" in text

    # the report can be rendered again from the JSON alone
    md2 = tmp_path / "again.md"
    assert module.main(["--from-json", str(out), "--md", str(md2)]) == 0
    assert md2.read_text() == text


def test_rows_over_the_limit_are_skipped_with_a_labelled_projection() -> None:
    module = _load()
    assert module.project([], 8) is None
    assert module.project([(8, 100.0)], 32) == 400.0
    assert module.project([(8, 100.0), (32, 160.0)], 128) == pytest.approx(400.0)

    calls = []

    def fake_child(spec: dict, timeout: float | None) -> dict:
        calls.append(spec["depth"])
        mb = 100.0 + 10.0 * spec["depth"]
        model, state = 0.5 * spec["depth"], 1.5 * spec["depth"]
        return {
            "status": "ok",
            "peak_mb": mb,
            "epoch_s": 1.0,
            "model_mb": model,
            "state_mb": state,
            "working_mb": mb - 50 - model - state,
        }

    module.run_child = fake_child
    args = module.parse_args(["--depths", "8,32,128,512", "--blocks", "res", "--max-mb", "2000"])
    result = module.run_benchmark(args, log=lambda _: None)
    assert calls == [8, 32, 128]
    skipped = result["rows"][-1]
    assert skipped["status"] == "skipped" and skipped["peak_mb"] is None
    assert skipped["projected_peak_mb"] == pytest.approx(100.0 + 10.0 * 512)
    assert result["ratios"]["res"]["projected"] is True
    grown = result["growth"]["res"]
    assert grown["from_depth"] == 8 and grown["to_depth"] == 128
    assert grown["peak_mb_per_layer"] == pytest.approx(10.0)
    assert grown["model_and_state_share"] == pytest.approx(0.2)
    assert "PROJECTED" in module.to_markdown(result)
    assert "skipped (projected 5220 MB)" in module.to_markdown(result)


def test_plot_draws_measured_and_projected_rows(tmp_path: Path) -> None:
    module = _load()
    rows = [
        {"block": "res", "depth": 8, "status": "ok", "peak_mb": 400.0},
        {"block": "res", "depth": 32, "status": "ok", "peak_mb": 1400.0},
        {
            "block": "res",
            "depth": 128,
            "status": "skipped",
            "peak_mb": None,
            "projected_peak_mb": 5400.0,
        },
        {"block": "reversible", "depth": 8, "status": "ok", "peak_mb": 160.0},
        {"block": "reversible", "depth": 128, "status": "ok", "peak_mb": 170.0},
    ]
    png = tmp_path / "plots" / "memory.png"
    module.plot({"rows": rows, "setup": {"nodes": 50_000}}, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
