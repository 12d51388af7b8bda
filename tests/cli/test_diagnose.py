"""``fathom diagnose``, ``train --checkpoint`` and the diagnostic reproduce suites, end to end
on small generated graphs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fathom.cli import main

GRAPH = ["--dataset", "csbm", "data.synthetic.num_nodes=80"]
SMALL = [*GRAPH, "--hidden", "8"]


def test_diagnose_graph_only_writes_structure_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    assert main(["diagnose", *GRAPH, "--out", str(tmp_path / "rep"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["structure"]["num_nodes"] == 80
    assert {"curvature", "resistance"} <= set(result)
    assert "layers" not in result
    assert (tmp_path / "rep" / "receptive-field.png").stat().st_size > 0
    assert (tmp_path / "rep" / "diagnosis.md").read_text().startswith("# Diagnosis: csbm")


def test_diagnose_a_model_reports_every_layer(tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    argv = ["diagnose", *SMALL, "--conv", "gcn", "--depth", "6", "--targets", "4"]
    assert main([*argv, "--out", str(tmp_path / "rep"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    layers = result["layers"]
    assert [r["layer"] for r in layers] == list(range(7))  # input + 6 layers
    for r in layers:
        assert {"dirichlet_energy", "mad", "effective_rank"} <= set(r)
    assert result["sensitivity"]["hops"][0] == 0
    assert result["energy_decay"]["rate"] > 0  # a 6-layer untrained GCN smooths
    assert {"structure", "curvature", "layers", "sensitivity"} <= set(result["timings_s"])
    for name in ("energy-vs-layer.png", "sensitivity-vs-hop.png", "receptive-field.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 0
    # every Markdown table row has as many cells as its header (literal pipes escaped)
    table: list[str] = []
    for line in [*(tmp_path / "rep" / "diagnosis.md").read_text().splitlines(), ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        cells = [len(re.split(r"(?<!\\)\|", row)) for row in table]
        assert len(set(cells)) <= 1, table
        table = []


def test_train_checkpoint_then_diagnose_it(tmp_path: Path) -> None:
    ckpt, out = tmp_path / "m.pt", tmp_path / "d.json"
    argv = ["train", *SMALL, "--depth", "3", "--epochs", "3", "--checkpoint", str(ckpt)]
    assert main(argv) == 0
    assert (
        main(
            [
                "diagnose",
                "--checkpoint",
                str(ckpt),
                "--quick",
                "--out",
                str(tmp_path / "r"),
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert len(result["layers"]) == 4 and "test_acc" in result["training"]
    assert "sensitivity" not in result and "curvature" not in result


def test_diagnose_train_reports_untrained_and_trained(tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    argv = ["diagnose", *SMALL, "--depth", "3", "--epochs", "3", "--train", "--quick"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["untrained"]["layers"]) == len(result["layers"]) == 4
    assert result["training"]["epochs"] == 3


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["diagnose", "--dataset", "nope"], ["unknown data.name"]),
        (["diagnose", *SMALL, "--metrics", "energy"], ["unknown metric 'energy'"]),
        (["diagnose", "--checkpoint", "missing.pt"], ["not found"]),
        (["train", *SMALL, "--rewire", "magic"], ["unknown data.rewire", "sdrf"]),
        (["reproduce", "oversmoothing", "--models", "GXN"], ["unknown model 'GXN'"]),
        (["reproduce", "neighbors-match", "--models", "gcn", "--radii", "9"], ["radius"]),
    ],
)
def test_diagnostic_commands_bad_input_one_line_exit_2(
    argv: list[str],
    words: list[str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for word in words:
        assert word in err, err


def test_train_with_rewiring_and_layer_diagnostics(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    argv = [
        "train",
        *SMALL,
        "--depth",
        "3",
        "--epochs",
        "4",
        "--rewire",
        "fosr",
        "--rewire-iterations",
        "5",
    ]
    assert main([*argv, "--diagnose-every", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["config"]["data"]["rewire"] == "fosr"
    assert [d["epoch"] for d in result["runs"][0]["diagnostics"]][:3] == [1, 2, 4]


def test_reproduce_oversmoothing_and_neighbors_match_tiny(tmp_path: Path) -> None:
    out = tmp_path / "os.json"
    argv = ["reproduce", "oversmoothing", "--datasets", "csbm", "--depths", "4", "--epochs", "2"]
    assert (
        main([*argv, "--models", "GCN,GCNII", "--report", str(tmp_path / "os"), "--json", str(out)])
        == 0
    )
    rows = json.loads(out.read_text())["rows"]
    assert [r["model"] for r in rows] == ["GCN", "GCNII"]
    assert len(rows[0]["untrained"]) == 5 and "rate" in rows[0]["trained_decay"]
    assert (tmp_path / "os" / "oversmoothing.md").exists()
    nm = tmp_path / "nm.json"
    argv = ["reproduce", "neighbors-match", "--models", "gcn", "--radii", "2", "--epochs", "20"]
    assert main([*argv, "--report", str(tmp_path / "nm"), "--json", str(nm)]) == 0
    (row,) = json.loads(nm.read_text())["rows"]
    assert row["radius"] == 2 and row["published"] == 1.0 and 0 <= row["train_acc"] <= 1
    assert (tmp_path / "nm" / "neighbors-match.md").exists()
