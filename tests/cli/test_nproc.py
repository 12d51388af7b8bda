"""``fathom train --nproc`` / ``--resume`` / ``--dist-timeout``: bad values and what cannot
run on several processes are refused in one line (exit 2) before any worker starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fathom.cli import main
from fathom.cli.launch import without_nproc


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_nproc_values_are_one_line_errors(
    value: str, one_line_error: Callable[..., str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--nproc", value])
    assert exit_.value.code == 2
    one_line_error("--nproc", "integer >= 1")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--task", "graph", "--dataset", "motifs"], ["task 'graph'", "tasks that can: node"]),
        ([], ["needs a loader that splits", "'full'", "neighbor"]),
        (["--loader", "neighbor", "train.layerwise=1"], ["train.layerwise"]),
        (["--loader", "neighbor", "--diagnose-every", "2"], ["train.diagnose_every"]),
        (["--loader", "neighbor", "--arch", "dgi"], ["model.arch 'dgi'"]),
        (["--loader", "cluster", "--device", "cuda:1"], ["cuda:LOCAL_RANK"]),
    ],
)
def test_nproc_with_what_cannot_be_split_is_refused_in_one_line(
    args: list[str], words: list[str], one_line_error: Callable[..., str]
) -> None:
    assert main(["train", "--nproc", "2", *args]) == 2
    one_line_error(*words)


def test_resume_and_dist_timeout_refusals(
    tmp_path: Path, one_line_error: Callable[..., str]
) -> None:
    state = str(tmp_path / "s.pt")
    assert main(["train", "--task", "graph", "--dataset", "motifs", "--resume", state]) == 2
    one_line_error("--resume", "task 'graph'")
    assert main(["train", "--dist-timeout", "30"]) == 2
    one_line_error("--dist-timeout", "several processes")
    assert main(["train", "--resume-every", "3"]) == 2
    one_line_error("--resume-every", "--resume FILE")
    with pytest.raises(SystemExit):
        main(["train", "--nproc", "2", "--dist-timeout", "0"])
    one_line_error("--dist-timeout", "seconds > 0")


def test_nproc_under_torchrun_is_refused(
    monkeypatch: pytest.MonkeyPatch, one_line_error: Callable[..., str]
) -> None:
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    assert main(["train", "--nproc", "2", "--loader", "neighbor"]) == 2
    one_line_error("--nproc starts its own workers", "torchrun")


def test_the_workers_run_the_same_arguments_without_nproc() -> None:
    argv = ["train", "--nproc", "2", "--epochs", "3", "--nproc=4", "model.depth=2"]
    assert without_nproc(argv) == ["train", "--epochs", "3", "model.depth=2"]
