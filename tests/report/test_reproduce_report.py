"""Tests of fathom.report.reproduce: the ours-vs-published table, Markdown report and plots."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from fathom.report.reproduce import explain, reproduce_table, write_reproduce_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(
    dataset: str,
    model: str,
    depth: int,
    ours: float | None,
    published: float | None,
    *,
    std: float = 0.5,
    n: int = 3,
    n_planned: int = 3,
    note: str = "",
    source: str = "Some et al., 2020",
    train: float | None = None,
) -> dict[str, Any]:
    return {
        "suite": "depth",
        "model": model,
        "model_key": model.lower(),
        "dataset": dataset,
        "depth": depth,
        "ours_mean": ours,
        "ours_std": None if ours is None else std,
        "n": n if ours is not None else 0,
        "n_planned": n_planned,
        "n_diverged": 0,
        "n_failed": 0,
        "published": published,
        "diff": None if ours is None or published is None else ours - published,
        "source": source,
        "note": note,
        "train_mean": train,
        "epochs_mean": None,
        "time_s_mean": None,
    }


ROWS = [
    _row("cora", "GCN", 2, 81.0, 81.5, train=99.3),
    _row("cora", "GCN", 8, 60.0, 69.5, train=97.0),  # 9.5 points short: flagged
    _row("cora", "ResGCN", 2, 80.0, None, note="fathom adds BatchNorm"),
    _row("cora", "ResGCN", 8, 78.2, 75.6, n=2, std=1.25),
    _row("citeseer", "GCN", 2, 70.0, 70.8),
    _row("citeseer", "GCN", 8, None, 30.2),  # not run
    _row("pubmed", "GCN", 2, 79.0, 79.0),  # one depth only: no plot
]
META = {
    "command": "fathom reproduce depth --depths 2,8",
    "host": "testhost (1 threads)",
    "versions": "torch x, python y",
    "wall_s": 12.3,
    "store": "runs/r.db",
    "tolerance": 3.0,
    "notes": ["One setting per model, not tuned per cell."],
}


def test_markdown_report_and_one_plot_per_dataset(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    paths = write_reproduce_report(out, "depth", "Accuracy by depth", ROWS, META)
    md = out / "reproduce-depth.md"
    cora, citeseer = out / "reproduce-depth-cora.png", out / "reproduce-depth-citeseer.png"
    # citeseer has one run depth only, pubmed one depth: a plot for cora alone
    assert paths == [md, cora]
    assert cora.read_bytes()[:8] == PNG_MAGIC
    assert not citeseer.exists()
    # written atomically: no temporary file left beside the results
    assert sorted(p.name for p in out.iterdir()) == [cora.name, md.name]

    text = md.read_text()
    lines = text.splitlines()
    assert lines[0] == "# Reproduction: depth"
    assert "Accuracy by depth." in lines
    assert "`fathom reproduce depth --depths 2,8`" in text
    assert "testhost (1 threads)" in text and "`runs/r.db`" in text
    assert "sweep `reproduce-depth`" in text
    assert "over 3 points" in text
    header = "| dataset | model | depth | runs | ours | published | diff | train | source / note |"
    assert header in lines
    table = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert table == [
        "| cora | GCN | 2 | 3 | 81.0 ± 0.5 | 81.5 | -0.5 | 99 | Some et al., 2020 |",
        "| cora | GCN | 8 | 3 | 60.0 ± 0.5 | 69.5 | -9.5! | 97 | Some et al., 2020; fits its "
        "training nodes (97%) but generalises worse than published |",
        "| cora | ResGCN | 2 | 3 | 80.0 ± 0.5 | – | – | – | Some et al., 2020; fathom adds "
        "BatchNorm |",
        "| cora | ResGCN | 8 | 2/3 | 78.2 ± 1.2 | 75.6 | +2.6 | – | Some et al., 2020 |",
        "| citeseer | GCN | 2 | 3 | 70.0 ± 0.5 | 70.8 | -0.8 | – | Some et al., 2020 |",
        "| citeseer | GCN | 8 | 0/3 | not run | 30.2 | – | – | Some et al., 2020 |",
        "| pubmed | GCN | 2 | 3 | 79.0 ± 0.5 | 79.0 | +0.0 | – | Some et al., 2020 |",
    ]
    assert "## Notes" in lines and "- One setting per model, not tuned per cell." in lines
    assert "![reproduce-depth-cora](reproduce-depth-cora.png)" in text


def test_tolerance_from_meta_and_no_notes(tmp_path: Path) -> None:
    meta = {**META, "tolerance": 10.0, "notes": []}
    rows = [r for r in ROWS if r["dataset"] == "cora" and r["model"] == "GCN"]
    (md,) = write_reproduce_report(tmp_path, "t", "Tiny", [rows[1]], meta)
    text = md.read_text()
    assert "-9.5 |" in text and "!" not in text.split("| dataset |")[1]
    assert "over 10 points" in text
    assert "## Notes" not in text and ".png" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reproduce-t.md"]


def test_rewrite_replaces_the_report(tmp_path: Path) -> None:
    write_reproduce_report(tmp_path, "depth", "First", ROWS, META)
    write_reproduce_report(tmp_path, "depth", "Second", ROWS, META)
    text = (tmp_path / "reproduce-depth.md").read_text()
    assert "Second." in text and "First." not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "reproduce-depth-cora.png",
        "reproduce-depth.md",
    ]


def _render(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(reproduce_table("T", rows, 3.0))
    return buf.getvalue()


def test_console_table_shows_ours_published_and_diff() -> None:
    text = _render(ROWS)
    assert "not run" in text and "(2/3 runs)" in text
    assert "81.0 ± 0.5" in text and "-9.5" in text and "+2.6" in text
    for col in ("dataset", "model", "depth", "ours (%)", "published", "diff"):
        assert col in text


@pytest.mark.parametrize("value", [81.1, 80.4])
def test_console_table_prints_one_decimal_published_figures_with_one_digit(value: float) -> None:
    text = _render([_row("cora", "GCN", 2, 81.0, value)])
    assert f"{value:.1f}" in text and f"{value:.2f}" not in text


def test_explain_says_what_the_measurements_show() -> None:

    base = {"diff": -20.0, "train_mean": 21.0}
    assert explain(base, 3.0).endswith(
        "fits only 21% of its training nodes: it does not train in this setting"
    )
    mixed = {"diff": -14.7, "train_mean": 68.3, "train_runs": [97.9, 44.3, 43.6, 87.1, 68.6]}
    assert explain(mixed, 3.0) == (
        "2 of 5 runs fit under 60% of their training nodes (an optimisation failure on those "
        "seeds), the others 85%"
    )
    tuned = {**base, "note": "setting: tuned on validation (3-point grid ...)"}
    assert explain(tuned, 3.0).endswith("does not train even in the setting chosen on validation")
    assert "generalises worse" in explain({**base, "train_mean": 99.0}, 3.0)
    assert "above the published figure" in explain({"diff": 8.0, "train_mean": 99.0}, 3.0)
    assert explain({"diff": -2.0, "train_mean": 10.0}, 3.0) == ""  # within tolerance
    assert explain({"diff": None, "train_mean": 10.0}, 3.0) == ""
    assert explain({"diff": -9.0}, 3.0) == ""  # rows from older stores


def test_explain_tells_a_late_fit_and_the_epochs_picked_by_validation_loss() -> None:
    # the stored GCN-8 runs of docs/results/reproduce-depth.md, rounded
    row = {
        "diff": -17.4,
        "ours_mean": 52.1,
        "published": 69.5,
        "train_mean": 72.7,
        "train_runs": [87.9, 83.6, 83.6, 72.1, 36.4],
        "train_max_runs": [100.0, 100.0, 100.0, 100.0, 100.0],
        "best_epochs": [154, 352, 197, 154, 29],
        "by_val_acc_runs": [65.7, 61.5, 68.7, 62.9, 64.8],
    }
    assert explain(row, 3.0) == (
        "1 of 5 runs fit under 60% of their training nodes at the epoch picked but 100% at "
        "another epoch (not an optimisation failure), the others 82%; the epochs picked by "
        "validation loss (epochs 154, 352, 197, 154, 29): at each run's best validation "
        "accuracy instead the same runs read 64.7 ± 2.5 (-4.8)"
    )
    # a run that never fits is still an optimisation failure; a rule that moves the mean by
    # a point or less is not worth a note
    never = {**row, "train_max_runs": [100.0, 100.0, 100.0, 100.0, 41.0]}
    assert "(an optimisation failure on those seeds)" in explain(never, 3.0)
    close = {**row, "by_val_acc_runs": [52.0, 53.0, 52.5, 51.5, 52.0]}
    assert "validation loss" not in explain(close, 3.0)
    all_low = {**row, "train_mean": 40.0, "train_runs": [40.0] * 5, "by_val_acc_runs": []}
    assert explain(all_low, 3.0) == (
        "fits only 40% of its training nodes at the epochs picked, 100% at another epoch of "
        "every run"
    )


def test_training_time_counts_runs_shared_by_rows_once(tmp_path: Path) -> None:
    auc = {**_row("cora", "GAE AUC", 2, 91.0, 91.0), "run_times": {"a": 60.0, "b": 120.0}}
    ap = {**_row("cora", "GAE AP", 2, 92.0, 92.0), "run_times": {"a": 60.0, "b": 120.0}}
    (md,) = write_reproduce_report(tmp_path, "gae", "Tiny", [auc, ap], META)
    assert "training time summed over the 2 stored runs: 3 min." in md.read_text()


def test_one_cross_validation_shows_its_spread_over_folds(tmp_path: Path) -> None:
    row = {**_row("mutag", "GIN", 4, 82.4, 89.4, n=1, n_planned=1, std=10.3), "std_over_folds": 10}
    (md,) = write_reproduce_report(tmp_path, "tu", "Tiny", [row], META)
    assert "| 82.4 ± 10.3 (10 folds) | 89.4 | -7.0! |" in md.read_text()


def test_explain_graph_classification_rows() -> None:
    honest = {**_row("mutag", "GIN", 4, 82.4, 89.4), "suite": "tu", "metric": "test_acc"}
    honest["train_mean"] = 93.0
    assert "picks its epoch on the test folds" in explain(honest, 3.0)
    unfit = {**honest, "metric": "test_acc_paper", "train_mean": 40.0}
    assert "fits only 40% of its training graphs" in explain(unfit, 3.0)
