"""Multi-process training on torch.distributed (gloo, CPU): DDP equals one process on the
same global batch, exact resume from ``--resume``, a two-"machine" torchrun rendezvous on
localhost, a killed rank failing the run, and ``--nproc`` refusals.

The subprocess tests start real workers (``fathom train --nproc 2``, ``torchrun``); most of
their time is the workers importing torch and PyG.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fathom.config import ExperimentConfig, apply_overrides
from fathom.errors import ConfigError
from fathom.experiments.resume import RunResume
from fathom.experiments.run import build_task_data, check_processes, run_experiment, train_one
from fathom.train.distributed import FAULT_ENV, FAULT_EXIT_CODE, fault_injection

# 100 nodes: a stratified split with 60 training nodes, 30 per rank
ONE_STEP = [
    ("data.synthetic.num_nodes", 100),
    ("model.conv", "sage"),
    ("model.hidden", 16),
    ("model.dropout", 0.0),
    ("train.epochs", 1),
    ("train.loader", "neighbor"),
    ("train.fanouts", "-1,-1"),  # every neighbour, 2 hops = the 2 layers: exact outputs
    ("train.batch_size", 64),  # one batch: all 60 seeds (one process), 30 (each of 2)
]

CLI = [
    "train",
    "--dataset",
    "csbm",
    "data.synthetic.num_nodes=200",
    "--epochs",
    "6",
    "--hidden",
    "8",
    "--loader",
    "neighbor",
    "--fanouts",
    "5,5",
    "--batch-size",
    "16",
    "--threads",
    "1",
    "--history",
]
"""A run of 6 epochs with dropout 0.5 (so resuming must restore every generator)."""

SUBPROCESS_TIMEOUT = 240


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", FAULT_ENV)}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fathom(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fathom.cli", *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


def _run(path: Path) -> dict[str, Any]:
    (run,) = json.loads(path.read_text())["runs"]
    return run


RESULT_KEYS = ("train_acc", "val_acc", "test_acc", "test_loss", "best_epoch", "epochs")


# ---------------------------------------------------------------- DDP = one process


def _one_step_rank(rank: int, world: int, store: str, cfg: ExperimentConfig, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        data = build_task_data(cfg)
        train_one(cfg, data, on_model=lambda m: torch.save(m.state_dict(), f"{out}/rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_take_the_step_of_one_process_on_the_same_global_batch(
    tmp_path: Path,
) -> None:
    """One Adam step: 2 ranks with 30 seeds each (gradients averaged by DDP) give the
    parameters of 1 process with the 60 seeds in one batch, within float32 rounding
    (rtol 1e-5, atol 1e-6; the step moves parameters by ~lr = 1e-2)."""
    cfg = apply_overrides(ExperimentConfig(), ONE_STEP)
    data = build_task_data(cfg)
    assert int(data.train_mask.sum()) == 60
    single: dict[str, torch.Tensor] = {}
    train_one(cfg, data, on_model=lambda m: single.update(m.state_dict()))

    mp.start_processes(
        _one_step_rank,
        args=(2, str(tmp_path / "store"), cfg, str(tmp_path)),
        nprocs=2,
        start_method="fork",
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    torch.manual_seed(cfg.seed)
    for key, value in single.items():
        assert torch.equal(ranks[0][key], ranks[1][key]), key  # DDP keeps replicas identical
        torch.testing.assert_close(ranks[0][key], value, rtol=1e-5, atol=1e-6)
    # the step is not vacuous: parameters moved by about lr from their initial values
    from fathom.experiments.run import initial_model

    init = initial_model(cfg, data).state_dict()
    moved = max(float((single[k] - init[k]).abs().max()) for k in init)
    assert moved > 0.5 * cfg.train.lr


# ---------------------------------------------------------------- exact resume (1 process)


class SimulatedCrashError(Exception):
    """Stands in for a process that died."""


def _crash_at(fit: int, epoch: int) -> Callable[[dict[str, float]], None]:
    """An epoch callback raising :class:`SimulatedCrashError` at ``epoch`` of fit ``fit``."""
    fits = {"started": -1}

    def callback(record: dict[str, float]) -> None:
        if int(record["epoch"]) == 1:
            fits["started"] += 1
        if fits["started"] == fit and int(record["epoch"]) == epoch:
            raise SimulatedCrashError

    return callback


@pytest.mark.parametrize("loader", ["neighbor", "random-partition", "full"])
def test_an_interrupted_run_resumes_to_the_numbers_of_an_uninterrupted_one(
    tmp_path: Path, loader: str
) -> None:
    extra = {"neighbor": [("train.fanouts", "4,3"), ("train.batch_size", 16)]}.get(loader, [])
    cfg = apply_overrides(
        ExperimentConfig(),
        [
            ("data.synthetic.num_nodes", 150),
            ("model.hidden", 8),
            ("train.epochs", 7),
            ("seeds", 2),
            ("train.loader", loader),
            *([("train.num_parts", 4)] if loader == "random-partition" else []),
            *extra,
        ],
    )
    data = build_task_data(cfg)
    reference = run_experiment(cfg, data)
    path = tmp_path / "state.pt"
    # seed 0 finishes, seed 1 dies after epoch 4 (its state saved after epochs 2; every 2)
    with pytest.raises(SimulatedCrashError):
        run_experiment(cfg, data, callbacks=[_crash_at(1, 5)], resume=RunResume(path, cfg, 2))
    resume = RunResume(path, cfg, 2)
    assert resume.resumed and resume.progress == "seeds done: 0; seed 1 at epoch 4"
    resumed = run_experiment(cfg, data, resume=resume)
    for ref, got in zip(reference.runs, resumed.runs, strict=True):
        assert {k: got[k] for k in RESULT_KEYS} == {k: ref[k] for k in RESULT_KEYS}
        assert [h["loss"] for h in got["history"]] == [h["loss"] for h in ref["history"]]
    resume.finish()
    assert not path.exists()


def test_a_resume_file_of_another_config_or_world_size_is_refused(tmp_path: Path) -> None:
    cfg = apply_overrides(ExperimentConfig(), [("train.epochs", 3)])
    path = tmp_path / "state.pt"
    RunResume(path, cfg).complete(0, {"seed": 0, "status": "done"})
    with pytest.raises(ConfigError.__mro__[1], match="another config"):
        RunResume(path, replace(cfg, seed=1))
    state = torch.load(path, weights_only=True)
    torch.save({**state, "world_size": 2}, path)
    with pytest.raises(ConfigError.__mro__[1], match="on 2 process"):
        RunResume(path, cfg)
    path.write_text("not a checkpoint")
    with pytest.raises(ConfigError.__mro__[1], match="cannot read the resume file"):
        RunResume(path, cfg)


# ---------------------------------------------------------------- torchrun, rank death


@pytest.fixture(scope="module")
def two_node_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``torchrun --nnodes 2 --nproc-per-node 1`` twice on localhost: a c10d rendezvous of
    two "machines" of one process each."""
    work = tmp_path_factory.mktemp("torchrun")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        "fathom-two-nodes",
        "--max-restarts",
        "0",
        "-m",
        "fathom.cli",
        *CLI,
        "--json",
        "out.json",
    ]
    nodes = [
        subprocess.Popen(
            command, cwd=work, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [node.communicate(timeout=SUBPROCESS_TIMEOUT) for node in nodes]
    return {
        "dir": work,
        "codes": [node.returncode for node in nodes],
        "stdout": [o[0] for o in outputs],
        "stderr": [o[1] for o in outputs],
    }


@pytest.mark.slow
def test_a_two_node_torchrun_rendezvous_on_localhost_trains_and_rank_0_alone_writes(
    two_node_run: dict[str, Any],
) -> None:
    assert two_node_run["codes"] == [0, 0], two_node_run["stderr"]
    files = sorted(p.name for p in two_node_run["dir"].iterdir())
    assert files == ["out.json"]  # one result file, no leftovers
    result = json.loads((two_node_run["dir"] / "out.json").read_text())
    assert result["versions"]["world_size"] == 2 and result["versions"]["backend"] == "gloo"
    assert _run(two_node_run["dir"] / "out.json")["epochs"] == 6
    # rank 0's machine prints the results; the other prints nothing
    printed = ["mean ± std" in out for out in two_node_run["stdout"]]
    assert sorted(printed) == [False, True]
    assert [out for out in two_node_run["stdout"] if "mean ± std" not in out] == [""]


@pytest.mark.slow
def test_a_killed_rank_fails_the_run_and_rerunning_resumes_to_the_uninterrupted_numbers(
    tmp_path: Path, two_node_run: dict[str, Any]
) -> None:
    """Rank 1 of ``--nproc 2`` dies after epoch 4 (test-only fault hook): the run fails
    (exit 1, one line, no result); the same command again resumes from the state of epoch 3
    and ends with the numbers of the uninterrupted two-process run (the torchrun one)."""
    args = [*CLI, "--nproc", "2", "--resume", "state.pt", "--json", "out.json"]
    failed = _fathom(args, tmp_path, **{FAULT_ENV: "1:4"})
    assert failed.returncode == 1, failed.stderr
    errors = [line for line in failed.stderr.splitlines() if "error" in line.lower()]
    assert errors == [failed.stderr.strip().splitlines()[-1]], failed.stderr
    assert "rank 1 of 2 exited with code 86" in errors[0] and "resume from state.pt" in errors[0]
    assert "Traceback" not in failed.stderr
    assert failed.stdout == ""
    assert not (tmp_path / "out.json").exists()  # nothing written as done
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["runs"] == {} and state["fit"]["shared"]["epoch"] == 3

    resumed = _fathom(args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from state.pt: seed 0 at epoch 3" in resumed.stderr
    assert not (tmp_path / "state.pt").exists()  # removed once the result is written
    got, ref = _run(tmp_path / "out.json"), _run(two_node_run["dir"] / "out.json")
    assert {k: got[k] for k in RESULT_KEYS} == {k: ref[k] for k in RESULT_KEYS}
    assert [h["loss"] for h in got["history"]] == [h["loss"] for h in ref["history"]]


def test_check_processes_and_the_fault_hook_parse_strictly() -> None:
    cfg = apply_overrides(ExperimentConfig(), [("train.loader", "saint")])
    check_processes(cfg, 4)
    check_processes(ExperimentConfig(), 1)  # one process: anything goes
    with pytest.raises(ConfigError, match="--nproc must be >= 1"):
        check_processes(cfg, 0)
    assert fault_injection({}) is None
    assert callable(fault_injection({FAULT_ENV: "1:3"}))
    for bad in ("1", "a:3", "1:3:4", "-1:2"):
        with pytest.raises(ConfigError, match=FAULT_ENV):
            fault_injection({FAULT_ENV: bad})
    assert FAULT_EXIT_CODE not in (0, 1, 2)


def test_the_torchrun_environment_is_read_strictly() -> None:
    from fathom.distributed import Launch, from_env

    assert from_env({}) is None
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    assert from_env(env) == Launch(3, 4, 1, 2)
    assert not Launch(3, 4, 1, 2).speaks and Launch(2, 4, 0, 2).speaks
    for bad in ({**env, "RANK": "4"}, {**env, "LOCAL_RANK": "x"}, {"WORLD_SIZE": "2"}):
        with pytest.raises(ConfigError):
            from_env(bad)


def test_each_process_gets_its_share_of_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import fathom.devices

    monkeypatch.setattr(fathom.devices, "cpu_cores", lambda: 16)
    assert [fathom.devices.threads_per_process(n) for n in (1, 2, 3, 16, 32)] == [16, 8, 5, 1, 1]
