"""Tests of fathom.report.console: the results table of ``fathom train``."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from fathom.report.console import results_table


def _render(runs: list[dict[str, Any]], agg: dict[str, Any]) -> str:
    console = Console(width=200, record=True)
    console.print(results_table("t", runs, agg))
    return console.export_text()


def _run(**metrics: float) -> dict[str, Any]:
    return {"seed": 0, "best_epoch": 1, "epochs": 2, "time_s": 0.1, "status": "done", **metrics}


def test_classification_shows_accuracies_in_percent() -> None:
    text = _render(
        [_run(train_acc=0.5, val_acc=0.25, test_acc=0.75)],
        {"n": 1, "n_diverged": 0, "test_acc_mean": 0.75, "test_acc_std": 0.0},
    )
    assert "train acc" in text and "75.00" in text and "75.00 ± 0.00" in text


def test_a_task_of_other_metrics_shows_them_as_they_are() -> None:
    # a task whose metrics the table does not know (a regression, say): shown, not dropped
    text = _render(
        [_run(val_mae=0.5, test_mae=1.25, test_loss=3.0)],
        {"n": 1, "n_diverged": 0, "test_mae_mean": 1.25, "test_mae_std": 0.0},
    )
    assert "val mae" in text and "test mae" in text
    assert "1.25" in text and "125.00" not in text
    assert "test loss" not in text
