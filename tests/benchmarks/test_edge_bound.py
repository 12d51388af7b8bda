"""Smoke test of ``benchmarks/edge_bound.py`` (tiny clouds, no data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmark_script import load_benchmark
from fathom.nn.knn import dilated_knn_graph
from fathom.nn.point_convs import EdgeConv


def test_bound_forward_is_the_neighbour_max_of_the_projections() -> None:
    bench = load_benchmark("edge_bound")
    torch.manual_seed(0)
    x = torch.randn(40, 3)
    edge_index = dilated_knn_graph(x, 4)
    conv = EdgeConv(3, 8)
    torch.nn.init.normal_(conv.lin.bias)  # the centre term's bias counts (zeros by default)
    c = 3
    w_a, w_b = conv.lin.weight[:, :c], conv.lin.weight[:, c:]
    # max_j (W_b x_j) + (W_a - W_b) x_i + b, by brute force over each point's neighbours
    neighbour = x @ w_b.t()
    center = x @ (w_a - w_b).t() + conv.lin.bias
    expected = neighbour[edge_index[0]].view(40, 4, 8).amax(1) + center
    out = bench.bound_forward(conv, x, edge_index)
    torch.testing.assert_close(out, expected)
    # the real EdgeConv does more (ReLU + BatchNorm over edges): a different output
    assert not torch.allclose(conv(x, edge_index), out)
    with pytest.raises(ValueError, match="k contiguous"):
        bench.bound_forward(conv, x, edge_index.flip(1))


def test_to_bound_changes_only_the_edgeconvs_of_that_model() -> None:
    bench = load_benchmark("edge_bound")
    model = torch.nn.ModuleList([EdgeConv(3, 4), torch.nn.Linear(2, 2), EdgeConv(4, 4)])
    other = EdgeConv(3, 4)
    assert bench.to_bound(model) == 2
    assert model[0].forward.__func__ is bench.bound_forward
    assert "forward" not in vars(other)


def test_tiny_run_writes_all_three_sides(tmp_path: Path) -> None:
    bench = load_benchmark("edge_bound")
    out, md = tmp_path / "b.json", tmp_path / "b.md"
    argv = ["--tiny", "--warmup", "0", "--json", str(out), "--md", str(md)]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert set(result["times_s"]) == {"pyg", "fathom", "bound"}
    assert all(len(t) == 1 and t[0] > 0 for t in result["times_s"].values())
    assert result["edge_convs"] > 0
    assert result["ratio_to_pyg"]["pyg"] == 1.0
    assert "| bound |" in md.read_text()


def test_bad_counts_and_unwritable_output_exit_2(tmp_path: Path) -> None:
    bench = load_benchmark("edge_bound")
    assert bench.main(["--tiny", "--epochs", "0"]) == 2
    assert bench.main(["--tiny", "--json", str(tmp_path)]) == 2  # a folder
