"""Smoke test of ``benchmarks/deep_speed.py`` in its tiny mode (no datasets needed)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from fathom import DataNotFoundError

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "deep_speed.py"


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
    argv = ["--tiny", "--threads", "1", "--epochs", "2", "--warmup", "1", "--mem-epochs", "1"]
    code = deep_speed.main([*argv, "--json", str(json_path), "--md", str(md_path)])

    assert code == 0
    result = json.loads(json_path.read_text())
    assert result["settings"]["tiny"] is True
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
    markdown = md_path.read_text()
    assert "Tiny smoke run" in markdown
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
