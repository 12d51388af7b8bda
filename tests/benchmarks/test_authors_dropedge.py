"""Smoke test of benchmarks/authors_dropedge.py on a stand-in for the authors' script."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmark_script import load_benchmark

# prints the authors' result line; the test accuracy encodes the seed and the dropout flag,
# and every call is counted, so the test sees which runs were made and with which flags
FAKE = """
import sys
from pathlib import Path
args = sys.argv[1:]
seed = int(args[args.index("--seed") + 1])
last = len(args) - 1 - args[::-1].index("--dropout")
dropout = float(args[last + 1])
with (Path(__file__).parent / "calls.txt").open("a") as f:
    f.write(" ".join(args) + "\\n")
print("Epoch: 0001 ...")
test = f"{0.5 + seed / 100 + dropout / 10:.6f}"
print("\\t".join(["0.1", "0.2", "0.3", "1.000000", "0.5", test]))
"""


def _checkout(tmp_path: Path, script: str) -> Path:
    """A stand-in checkout whose ``src/train_new.py`` is ``script``."""
    code = tmp_path / "code"
    (code / "src").mkdir(parents=True)
    (code / "src" / "train_new.py").write_text(script)
    return code


def _tests(report: Path) -> dict[tuple[str, int], float]:
    """The test accuracy of each (cell, seed) row of a --json record."""
    rows = json.loads(report.read_text())["rows"]
    return {(r["name"], r["seed"]): round(r["test_acc"], 3) for r in rows}


def test_runs_each_cell_and_seed_once_and_reports_them(tmp_path: Path) -> None:
    bench = load_benchmark("authors_dropedge")
    code = _checkout(tmp_path, FAKE)
    logs, out, md = tmp_path / "logs", tmp_path / "a.json", tmp_path / "a.md"
    argv = ["--code", str(code), "--python", sys.executable, "--logs", str(logs)]
    argv += ["--seeds", "1,2", "--cells", "resgcn8-do0.1,cs-gcn4-do0.3"]
    argv += ["--json", str(out), "--md", str(md)]
    assert bench.main(argv) == 0
    assert _tests(out) == {
        ("resgcn8-do0.1", 1): 52.0,
        ("resgcn8-do0.1", 2): 53.0,
        ("cs-gcn4-do0.3", 1): 54.0,
        ("cs-gcn4-do0.3", 2): 55.0,
    }
    calls = (code / "src" / "calls.txt").read_text().splitlines()
    assert len(calls) == 4
    assert all("--task_type semi" in c and "--sampling_percent 1" in c for c in calls)
    assert any("--dataset citeseer" in c and "--type mutigcn" in c for c in calls)
    # finished logs are read, not run again
    assert bench.main(argv) == 0
    assert len((code / "src" / "calls.txt").read_text().splitlines()) == 4
    table = md.read_text()
    assert "| cora | ResGCN | 8 | searched | 2 | 52.0 (s1), 53.0 (s2) | 52.5 |" in table


def test_bad_input_is_refused_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_benchmark("authors_dropedge")
    common = ["--logs", str(tmp_path / "l"), "--json", "x.json", "--md", "x.md"]
    assert bench.main(["--code", str(tmp_path), *common]) == 2
    assert "no src/train_new.py" in capsys.readouterr().err
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train_new.py").write_text("raise SystemExit(1)")
    assert bench.main(["--code", str(tmp_path), "--cells", "nope", *common]) == 2
    assert "unknown cells: nope" in capsys.readouterr().err
    assert bench.main(["--code", str(tmp_path), "--seeds", "a", *common]) == 2
    assert not (tmp_path / "l").exists()


# saves a checkpoint as the authors' EarlyStopping does and names it in its output
SAVING = """
import sys
from pathlib import Path
seed = sys.argv[sys.argv.index("--seed") + 1]
Path("tmpmodel").mkdir(exist_ok=True)
Path(f"tmpmodel/run-{seed}.pt").write_bytes(b"x")
print(f"Model is saving to: tmpmodel/run-{seed}.pt")
print("\\t".join(["0.1", "0.2", "0.3", "1.000000", "0.5", "0.7"]))
"""


def test_removes_only_its_own_checkpoint(tmp_path: Path) -> None:
    bench = load_benchmark("authors_dropedge")
    code = _checkout(tmp_path, SAVING)
    (code / "tmpmodel").mkdir()
    other = code / "tmpmodel" / "another-run.pt"  # a run beside it, not yet reloaded
    other.write_bytes(b"y")
    argv = ["--code", str(code), "--python", sys.executable, "--logs", str(tmp_path / "l")]
    argv += ["--seeds", "3", "--cells", "resgcn8-do0.1"]
    argv += ["--json", str(tmp_path / "a.json"), "--md", str(tmp_path / "a.md")]
    assert bench.main(argv) == 0
    assert not (code / "tmpmodel" / "run-3.pt").exists()
    assert other.read_bytes() == b"y"


def test_results_outlive_their_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run the --json already holds is read from it when its log is gone (another machine),
    and an invocation on some cells writes the other cells' rows back unchanged."""
    bench = load_benchmark("authors_dropedge")
    code = _checkout(tmp_path, FAKE)
    out, md = tmp_path / "a.json", tmp_path / "a.md"
    argv = ["--code", str(code), "--python", sys.executable, "--json", str(out), "--md", str(md)]
    both = ["--seeds", "1", "--cells", "resgcn8-do0.1,cs-gcn4-do0.3"]
    assert bench.main([*argv, "--logs", str(tmp_path / "l1"), *both]) == 0
    calls = code / "src" / "calls.txt"
    assert len(calls.read_text().splitlines()) == 2
    # new logs folder: nothing is run again, with or without --no-run
    assert bench.main([*argv, "--logs", str(tmp_path / "l2"), *both]) == 0
    assert bench.main([*argv, "--logs", str(tmp_path / "l3"), *both, "--no-run"]) == 0
    assert len(calls.read_text().splitlines()) == 2
    assert "| cora | ResGCN | 8 | searched | 1 | 52.0 (s1) | 52.0 |" in md.read_text()
    # one cell, a new seed: runs that one only and keeps the other cell's row
    one = ["--seeds", "2", "--cells", "resgcn8-do0.1"]
    assert bench.main([*argv, "--logs", str(tmp_path / "l4"), *one]) == 0
    assert len(calls.read_text().splitlines()) == 3
    assert _tests(out) == {
        ("resgcn8-do0.1", 2): 53.0,
        ("resgcn8-do0.1", 1): 52.0,
        ("cs-gcn4-do0.3", 1): 54.0,
    }
    # a stored row whose flags are not the cell's any more is run again, not reused
    stale = json.loads(out.read_text())
    for r in stale["rows"]:
        r["flags"] = [*r["flags"], "--old"]
    out.write_text(json.dumps(stale))
    assert bench.main([*argv, "--logs", str(tmp_path / "l5"), *one]) == 0
    assert len(calls.read_text().splitlines()) == 4
    # a --json that is not this script's report is refused before any run, left as it was
    out.write_text("[1, 2]")
    assert bench.main([*argv, "--logs", str(tmp_path / "l6"), *one]) == 2
    assert "is not a report of this script" in capsys.readouterr().err
    assert out.read_text() == "[1, 2]"
    assert len(calls.read_text().splitlines()) == 4
