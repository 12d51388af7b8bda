"""Smoke test of ``benchmarks/deep_speed.py`` in its tiny mode (no datasets needed), on the
CPU and (``gpu`` marker) on CUDA."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
import torch

from fathom import DataNotFoundError, NodeClassification, fit

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "deep_speed.py"
TINY = ["--tiny", "--threads", "1", "--epochs", "2", "--warmup", "1", "--mem-epochs", "1"]


@pytest.fixture
def deep_speed(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as module ``deep_speed``: its memory-measuring child processes import it
    by that name, from its folder."""
    spec = importlib.util.spec_from_file_location("deep_speed", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "deep_speed", module)
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec.loader.exec_module(module)
    return module


def test_tiny_run_writes_every_row_with_positive_figures(
    deep_speed: ModuleType, tmp_path: Path
) -> None:
    json_path, md_path = tmp_path / "out" / "speed.json", tmp_path / "speed.md"
    argv = [*TINY, "--device", "cpu"]
    code = deep_speed.main([*argv, "--json", str(json_path), "--md", str(md_path)])

    assert code == 0
    result = json.loads(json_path.read_text())
    assert result["settings"]["tiny"] is True
    assert result["settings"]["device"] == "cpu"
    assert result["settings"]["res16_nodes"] == 1000
    assert result["environment"]["gpu"] is None
    assert [row["workload"] for row in result["rows"]] == ["gcn2", "gcnii64", "res16"]
    for row in result["rows"]:
        assert row["num_params"] > 0
        for impl in ("fathom", "pyg"):
            figures = row[impl]
            assert len(figures["epoch_ms"]) == 2
            assert figures["ms_per_epoch"] > 0
            # the tiny GCN's and GCNII's activations (tens to hundreds of KiB; fathom keeps
            # only the states its skips read) can fit in heap pages the process already
            # holds, so their peak growth may be 0; the residual GCN's cannot
            assert (
                figures["peak_mib"] > 0 if row["workload"] == "res16" else figures["peak_mib"] >= 0
            )
        assert row["time_ratio"] == pytest.approx(
            row["fathom"]["ms_per_epoch"] / row["pyg"]["ms_per_epoch"]
        )
        if row["pyg"]["peak_mib"] > 0:
            assert row["mem_ratio"] == pytest.approx(
                row["fathom"]["peak_mib"] / row["pyg"]["peak_mib"]
            )
        assert row["time_ratio"] > 0 and math.isfinite(row["time_ratio"])
    markdown = md_path.read_text()
    assert "Tiny smoke run" in markdown
    assert "device: cpu" in markdown
    assert all(f"| {name} |" in markdown for name in ("gcn2", "gcnii64", "res16"))


def test_missing_dataset_is_one_line_and_exit_2(
    deep_speed: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def not_found(workload: object) -> None:
        raise DataNotFoundError("dataset 'cora' not found: looked in FATHOM_DATA /nowhere")

    monkeypatch.setattr(deep_speed, "load_data", not_found)

    assert deep_speed.main(["--workloads", "gcn2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("deep_speed.py: error: workload gcn2 needs data 'cora'")
    assert "not found" in err[-1]


def test_unknown_workload_is_a_usage_error(deep_speed: ModuleType) -> None:
    with pytest.raises(SystemExit) as exc:
        deep_speed.main(["--workloads", "gcn2,nope"])
    assert exc.value.code == 2


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "tpu"])
def test_unavailable_device_is_one_line_and_exit_2(
    deep_speed: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    device: str,
) -> None:
    # no CUDA, whatever machine runs the test; the device is refused before any data loads
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def no_data(workload: object) -> None:
        raise AssertionError("data loaded before the device was checked")

    monkeypatch.setattr(deep_speed, "load_data", no_data)

    assert deep_speed.main([*TINY, "--device", device]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("deep_speed.py: error: device (--device)")
    assert repr(device) in err


@pytest.mark.parametrize("workload", ["gcn2", "res16"])
def test_fathom_epoch_is_fits_epoch(deep_speed: ModuleType, workload: str) -> None:
    """The benchmark times fathom's training loop: its epochs give fit's losses, bit for bit
    (same seed, same optimiser, same dropout draws)."""
    spec = deep_speed.make_workloads(tiny=True, nodes=200)[workload]
    data = deep_speed.load_data(spec)
    _, epoch = deep_speed.build_impl(spec, "fathom", data, torch.device("cpu"))
    benchmark = [epoch()[0] for _ in range(3)]

    torch.manual_seed(deep_speed.SEED)
    fresh = deep_speed.build_model(spec.model, data.num_features, int(data.y.max()) + 1)
    task = NodeClassification(spec.train.label_smoothing)
    result = fit(fresh, task, data, replace(spec.train, epochs=3, patience=0))

    assert [record["loss"] for record in result.history] == benchmark


@pytest.mark.gpu
def test_tiny_run_on_cuda_records_the_gpu_and_finite_ratios(
    deep_speed: ModuleType, tmp_path: Path
) -> None:
    json_path, md_path = tmp_path / "speed.json", tmp_path / "speed.md"
    argv = [*TINY, "--device", "cuda", "--json", str(json_path), "--md", str(md_path)]

    assert deep_speed.main(argv) == 0
    result = json.loads(json_path.read_text())
    env = result["environment"]
    assert result["settings"]["device"].startswith("cuda:")
    assert env["device"] == result["settings"]["device"]
    assert env["gpu"] == torch.cuda.get_device_name(torch.device(env["device"]))
    assert "synchronize" in result["settings"]["timing"]
    assert "max_memory_allocated" in result["settings"]["memory"]
    assert [row["workload"] for row in result["rows"]] == ["gcn2", "gcnii64", "res16"]
    for row in result["rows"]:
        for impl in ("fathom", "pyg"):
            figures = row[impl]
            assert figures["ms_per_epoch"] > 0
            # every training forward allocates activations on the GPU
            assert figures["peak_mib"] > 0
            assert figures["peak_allocated_mib"] >= figures["peak_mib"]
        for key in ("time_ratio", "mem_ratio"):
            assert row[key] is not None and math.isfinite(row[key]) and row[key] > 0
    assert env["gpu"] in md_path.read_text()
