"""Smoke test of ``benchmarks/epoch_profile.py`` (tiny graphs, no data)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType, SimpleNamespace

from benchmark_script import load_benchmark


def _module() -> ModuleType:
    return load_benchmark("epoch_profile")


def _event(name: str, parent: SimpleNamespace | None = None) -> SimpleNamespace:
    return SimpleNamespace(name=name, cpu_parent=parent)


def test_classify_by_name_and_by_sparse_ancestor() -> None:
    bench = _module()
    sparse = _event("aten::_sparse_mm", _event("_SparseDenseMM"))
    assert bench.classify(_event("aten::addmm", _event("aten::linear"))) == "gemm"
    assert bench.classify(_event("aten::addmm", sparse)) == "spmm"  # MKL's CSR kernel
    assert bench.classify(_event("aten::fill_", _event("aten::zeros", sparse))) == "spmm"
    assert bench.classify(_event("aten::random_")) == "rng"
    assert bench.classify(_event("aten::index_select")) == "gather_scatter"
    assert bench.classify(_event("aten::mul")) == "elementwise"
    assert bench.classify(_event("_MaskedScale")) is None
    # fathom's direct torch.addmm on a CSR matrix runs under its profiler label
    labelled = _event("fathom::spmm", _event("PropagateBackward"))
    assert bench.classify(_event("aten::addmm", labelled)) == "spmm"
    assert bench.classify(labelled) is None


def test_fathoms_sparse_products_carry_the_label_only_while_profiling() -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    import fathom.nn.adjacency as adjacency

    adj = adjacency._kernel_form(torch.eye(300).to_sparse_csr())
    x = torch.randn(300, 4)
    assert not isinstance(adjacency._labelled(), torch.profiler.record_function)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        adjacency._spmm(adj, x)
        adjacency.propagate_initial(adj, x, x, 0.1)
    names = [e.name for e in prof.events()]
    assert names.count(adjacency.SPMM_LABEL) == 2
    bench = _module()
    assert any(bench.classify(e) == "spmm" for e in prof.events() if e.name == "aten::addmm")


def test_tiny_run_accounts_for_the_epoch(tmp_path: Path) -> None:
    bench = _module()
    out = tmp_path / "p.json"
    argv = ["--tiny", "--workloads", "gcn2", "--epochs", "1", "--warmup", "0", "--json", str(out)]
    assert bench.main(argv) == 0
    rows = json.loads(out.read_text())["workloads"]["gcn2"]
    for row in rows.values():
        ops = sum(row[c] for c in bench.CLASSES)
        assert ops > 0 and row["gemm"] > 0
        assert abs(row["epoch_ms"] - ops - row["python_dispatch"]) < 1e-6
        assert row["floor"] == row["gemm"] + row["spmm"] + row["rng"]
    assert bench.main(["--tiny", "--workloads", "nope"]) == 2


def test_ranking_ops_are_their_own_class_and_top_ops_are_listed(tmp_path: Path) -> None:
    bench = _module()
    assert bench.classify(_event("aten::topk")) == "select"
    assert bench.classify(_event("aten::sort")) == "select"
    out, md = tmp_path / "p.json", tmp_path / "p.md"
    argv = ["--tiny", "--workloads", "res28-clouds", "--epochs", "1", "--warmup", "0"]
    assert bench.main([*argv, "--top", "3", "--json", str(out), "--md", str(md)]) == 0
    rows = json.loads(out.read_text())["workloads"]["res28-clouds"]
    for row in rows.values():
        assert row["select"] > 0  # the k-NN graph ranks distances at every layer
        top = row["top_ops"]
        assert len(top) == 3 and top[0]["ms"] >= top[1]["ms"] >= top[2]["ms"] > 0
        assert all(op["class"] in bench.CLASSES for op in top)
    assert "Largest ops of res28-clouds / fathom" in md.read_text()
    assert bench.main([*argv, "--top", "-1"]) == 2
