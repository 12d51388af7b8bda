"""Small run of ``benchmarks/scale.py``: the JSON's rows and report, positive figures, the
memory watchdog, projections and skipping over ``--max-mb``, the generator's graphs and the
target verdicts."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"


def _load() -> ModuleType:
    # the fork server's children import the script by this name
    spec = importlib.util.spec_from_file_location("scale", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scale"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_small_run_writes_rows_report_and_kills_rows_over_the_cap(tmp_path: Path) -> None:
    module = _load()
    out, md, cache = tmp_path / "s.json", tmp_path / "s.md", tmp_path / "cache"
    argv = ["--scale", "0.01", "--graphs", "arxiv", "--models", "sage2", "--targets", ""]
    argv += ["--steps", "1", "--probe-nodes", "200", "--probe-edges", "1000"]
    argv += ["--json", str(out), "--md", str(md), "--cache-dir", str(cache)]
    assert module.main(argv) == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["impl"], r["loader"]) for r in rows] == [
        ("fathom", "full"),
        ("pyg", "full"),
        ("fathom", "neighbor"),
        ("fathom", "cluster"),
        ("fathom", "random-partition"),
        ("fathom", "saint"),
    ]
    for r in rows:
        assert r["status"] == "ok", r
        assert r["graph"] == "arxiv" and r["model"] == "sage2"
        assert r["peak_mb"] > 0 and r["graph_mb"] > 0 and r["params"] > 0
        assert r["step_s"] > 0 and r["epoch_s"] > 0 and r["first_step_s"] > 0
        assert r["batches_per_epoch"] >= 1 and r["batch_nodes_mean"] > 0
        assert r["peak_mb"] == max(r["setup_peak_mb"], r["train_peak_mb"])
        assert all(math.isfinite(loss) for loss in r["losses"])
        if r["epoch_extrapolated"]:
            expected = r["first_step_s"] + r["step_s"] * (r["batches_per_epoch"] - 1)
            assert r["epoch_s"] == pytest.approx(expected)
    full = rows[0]
    assert full["batches_per_epoch"] == 1 and full["num_nodes"] == 1693
    points = full["projection"]["points"]
    assert len(points) == 3 and all(p["peak_mb"] > 0 for p in points)
    assert [(p["nodes"]) for p in points] == [200, 400, 200]
    assert full["projected_peak_mb"] > 0 and full["projected_step_s"] > 0
    assert rows[3]["loader_options"] == {"num_parts": 10, "parts_per_batch": 10}
    assert result["graphs"]["arxiv"]["nodes"] == 1693
    assert result["setup"]["threads"] == 1 and result["targets"] == {}
    text = md.read_text()
    assert "| arxiv | sage2 | pyg | full | ok |" in text
    assert "Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scale.py --scale 0.01" in text
    assert "torch " in text and "thread(s) per run" in text

    # the report can be rendered again from the JSON alone
    md2 = tmp_path / "again.md"
    assert module.main(["--from-json", str(out), "--md", str(md2)]) == 0
    again = md2.read_text()
    assert "rendered again from" in again
    assert [line for line in again.splitlines() if line.startswith("| arxiv")] == [
        line for line in text.splitlines() if line.startswith("| arxiv")
    ]

    # the watchdog: a row whose RSS grows past max_mb is killed, not measured
    ctx = module.fork_server(1)
    spec = {
        "graph": "arxiv",
        "model": "sage2",
        "impl": "fathom",
        "loader": "full",
        "loader_options": {},
        "graph_path": next(str(p) for p in cache.glob("arxiv-*.pt")),
        "steps": 1,
        "row_seconds": 60.0,
        "threads": 1,
    }
    killed = module.run_child(ctx, "measure", spec, max_mb=0.5, timeout=120)
    assert killed["status"] == "killed" and "--max-mb" in killed["error"]


def _fake_child(calls: list[tuple[str, Any]]) -> Any:
    """run_child without processes: probes follow peak = 10 + 0.001 N + 0.01 E MB."""

    def fake(ctx: Any, fn: str, spec: dict[str, Any], *, max_mb: float, timeout: Any) -> dict:
        calls.append((fn, spec.get("loader"), spec.get("generate")))
        if fn == "generate":
            nodes, edges = spec["nodes"], 2 * spec["edges"]
            return {"status": "ok", "generate_s": 1.0, "nodes": nodes, "edges": edges,
                    "peak_rss_mb": 1.0}  # fmt: skip
        if spec.get("generate"):
            n, m = spec["generate"]
            peak = 10 + 0.001 * n + 0.01 * 2 * m
            return {"status": "ok", "num_nodes": n, "num_edges": 2 * m, "peak_mb": peak,
                    "step_s": 0.5}  # fmt: skip
        return {"status": "ok", "peak_mb": 3000.0, "step_s": 2.0, "epoch_s": 200.0,
                "epoch_extrapolated": True, "batches_per_epoch": 100, "setup_s": 1.0,
                "steps_timed": 2, "num_nodes": 1_000_000}  # fmt: skip

    return fake


def test_rows_over_the_cap_are_skipped_with_a_projection_and_targets_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _load()
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(module, "run_child", _fake_child(calls))
    monkeypatch.setattr(module, "fork_server", lambda threads: None)
    argv = ["--graphs", "products", "--models", "resgcn16", "--loaders", "full,random-partition"]
    argv += ["--max-mb", "5000", "--cache-dir", str(tmp_path)]
    result = module.run_benchmark(module.parse_args(argv), log=lambda _: None)
    rows = result["rows"]
    # targets first: (b), then (a)'s products rows, samplers before full batch
    assert [(r["graph"], r["impl"], r["loader"], r["target"]) for r in rows] == [
        ("rev1m", "fathom", "random-partition", "b"),
        ("products", "fathom", "random-partition", "a"),
        ("products", "fathom", "full", "a"),
        ("products", "pyg", "full", "a"),
    ]
    n, e = 2_449_029, 2 * 61_859_140
    for full in rows[2:]:
        assert full["status"] == "skipped" and full["peak_mb"] is None
        assert full["projected_peak_mb"] == pytest.approx(10 + 0.001 * n + 0.01 * e, rel=1e-6)
        assert "not run" in full["note"]
    # full-batch rows were only probed, never measured on the graph itself
    measured = [c for c in calls if c[0] == "measure" and c[2] is None]
    assert [c[1] for c in measured] == ["random-partition", "random-partition"]
    assert len([c for c in calls if c[2] is not None]) == 6
    a, b = result["targets"]["a"], result["targets"]["b"]
    assert a["pass"] and a["sampler_peaks_mb"] == {"random-partition": 3000.0}
    assert a["full_batch"]["fits"] is False
    assert b["pass"] and b["peak_mb"] == 3000.0 and b["steps"] == 3
    text = module.to_markdown(result)
    assert "**PASS**" in text and "projected" in text and "| skipped |" in text

    # killed and out-of-memory rows are reported as such, the peak as a lower bound
    plain = {k: rows[1][k] for k in ("graph", "model", "impl", "loader", "target")}
    killed = {**plain, "status": "killed", "wall_s": 12.0}
    oom = {**plain, "status": "failed",
           "error": "x | RuntimeError: you tried to allocate 2147483648 bytes."}  # fmt: skip
    text = module.to_markdown({**result, "rows": [*rows, killed, oom]})
    assert "| killed | — | — | — | > 5,000 |" in text
    assert "killed after 12 s" in text and "(2.0 GiB) was refused" in text

    # over the limits: verdicts fail
    rows[0]["peak_mb"] = 9000.0
    rows[1]["peak_mb"] = 30_000.0
    verdicts = module.targets(rows)
    assert not verdicts["a"]["pass"] and not verdicts["b"]["pass"]


def test_budget_leaves_later_rows_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = _load()
    monkeypatch.setattr(module, "run_child", _fake_child([]))
    monkeypatch.setattr(module, "fork_server", lambda threads: None)
    argv = ["--graphs", "arxiv", "--models", "sage2", "--loaders", "neighbor", "--targets", ""]
    argv += ["--budget-min", "0", "--cache-dir", str(tmp_path)]
    result = module.run_benchmark(module.parse_args(argv), log=lambda _: None)
    assert [r["status"] for r in result["rows"]] == ["not run"]
    assert "--budget-min" in module.to_markdown(result)


def test_generated_graphs_are_seeded_symmetric_simple_and_sized() -> None:
    module = _load()
    shape = module.GRAPHS["products"]
    g = module.generate(shape, 3000, 20_000, seed=3)
    again = module.generate(shape, 3000, 20_000, seed=3)
    assert all(torch.equal(g[k], again[k]) for k in g)
    ei = g["edge_index"]
    assert ei.dtype == torch.int64 and ei.shape == (2, 40_000)
    assert bool((ei[0] != ei[1]).all())
    key = ei[0] * 3000 + ei[1]
    assert key.unique().numel() == 40_000  # no repeated edge
    assert torch.equal(key.sort().values, (ei[1] * 3000 + ei[0]).sort().values)  # symmetric
    assert g["x"].dtype == torch.float32 and g["x"].shape == (3000, 100)
    assert g["y"].shape == (3000,) and int(g["y"].max()) < 47
    masks = g["train_mask"].long() + g["val_mask"].long() + g["test_mask"].long()
    assert bool((masks == 1).all()) and int(g["train_mask"].sum()) == round(0.0803 * 3000)
    deg = torch.bincount(ei[0], minlength=3000)
    assert int(deg.max()) > 4 * deg.float().mean()  # degree-skewed

    proteins = module.generate(module.GRAPHS["proteins"], 500, 5_000)
    assert proteins["y"].shape == (500, 112) and set(proteins["y"].unique().tolist()) <= {0, 1}


def test_projection_fit_and_probe_sizes() -> None:
    module = _load()
    points = [
        {"nodes": n, "edges": e, "peak_mb": 5 + 2 * n + 3 * e, "step_s": 1.0}
        for n, e in ((10, 100), (20, 100), (10, 200))
    ]
    assert module.fit_linear(points, "peak_mb", 1000, 5000) == pytest.approx(17_005)
    assert module.probe_sizes(1000, 10_000) is None  # small enough to run as it is
    assert module.probe_sizes(2_449_029, 61_859_140) == [
        (4000, 25_000),
        (8000, 25_000),
        (4000, 50_000),
    ]
