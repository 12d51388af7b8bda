"""Smoke test of ``benchmarks/propagation.py``: the reads-only gather baseline and one size."""

from __future__ import annotations

from types import ModuleType

import torch

from benchmark_script import load_benchmark


def _module() -> ModuleType:
    return load_benchmark("propagation")


def test_gather_rows_reads_the_rows_in_order_block_by_block() -> None:
    bench = _module()
    x = torch.arange(50 * 3, dtype=torch.float32).view(50, 3)
    block = bench.GATHER_BLOCK
    col = torch.randint(0, 50, (block + 7,), dtype=torch.int32)
    buffer = torch.full((block, 3), -1.0)
    bench.gather_rows(x, col, buffer)
    # the last block (7 rows) overwrote the head of the buffer; the rest holds block one's tail
    assert torch.equal(buffer[:7], x[col[block:].long()])
    assert torch.equal(buffer[7:], x[col[7:block].long()])


def test_run_config_reports_each_case_against_the_gather_roofline() -> None:
    bench = _module()
    copy_times: list[float] = []
    rec = bench.run_config(
        300, 4, 8, rounds=1, copy=lambda: 1e-3, copy_times=copy_times, pyg_max_gb=1.0
    )
    assert set(rec["cases"]) == {"fathom", "fathom_int64", "torch_csr", "pyg"}
    assert rec["gather_ms"]["fwd"] > 0 and rec["gather_ms"]["bwd"] > 0
    fathom = rec["cases"]["fathom"]
    assert fathom["bit_identical_to_torch_csr"]
    expected = 100 * rec["gather_ms"]["fwd"] / fathom["fwd"]["median_ms"]
    assert abs(fathom["fwd"]["pct_gather"] - expected) < 1e-6 * expected
    bench._add_roofline(rec, 10.0)
    result = {
        "command": "x",
        "torch": "t",
        "pyg": "p",
        "threads": 1,
        "machine": "m",
        "loadavg_start": "0",
        "loadavg_end": "0",
        "graph": "random",
        "copy_mb": 512,
        "copy_ms": [1.0],
        "roofline_gbs": 10.0,
        "rounds": 1,
        "configs": [rec],
    }
    md = bench.markdown(result)
    assert "% gather" in md and "| 300 | 4 | 8 |" in md
