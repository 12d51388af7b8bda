"""Smoke test of ``benchmarks/epoch_profile.py`` (tiny graphs, no data)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType, SimpleNamespace

from benchmark_script import load_benchmark


def _module() -> ModuleType:
    return load_benchmark("epoch_profile")


def _event(
    name: str, parent: SimpleNamespace | None = None, shapes: list[list[int]] | None = None
) -> SimpleNamespace:
    return SimpleNamespace(name=name, cpu_parent=parent, input_shapes=shapes or [])


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


def test_classify_a_direct_sparse_addmm_by_its_square_matrix() -> None:
    """fathom multiplies its CSR adjacency by ``torch.addmm(out, adj, x)``: the square
    ``[N, N]`` first matrix (recorded shapes) marks it and its children as spmm, while a
    layer's ``addmm(bias, x, W)`` stays gemm."""
    bench = _module()
    spmm = _event("aten::addmm", None, [[2708, 64], [2708, 2708], [2708, 64], [], []])
    assert bench.classify(spmm) == "spmm"
    assert bench.classify(_event("aten::copy_", spmm)) == "spmm"
    assert bench.classify(_event("aten::mm", None, [[2708, 2708], [2708, 16]])) == "spmm"
    layer = _event("aten::addmm", None, [[64], [2708, 64], [64, 64], [], []])
    assert bench.classify(layer) == "gemm"
    small = _event("aten::mm", None, [[64, 64], [64, 2708]])  # a square weight: dense
    assert bench.classify(small) == "gemm"


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
