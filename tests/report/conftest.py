"""Hand-written run records, shaped as the results store returns them (no training)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from fathom.report.build import ReportFiles, build_report

SKIPS = ("none", "res")
DEPTHS = (2, 4, 8)
SEEDS = (0, 1, 2)

BASE_CONFIG: dict[str, Any] = {
    "data": {"name": "csbm", "data_dir": None, "split": 0, "synthetic": {"num_nodes": 120}},
    "model": {"conv": "gcn", "depth": 2, "hidden": 16, "skip": "none", "norm": "none"},
    "train": {"epochs": 5, "lr": 0.01, "patience": 0},
    "task": "node",
    "seed": 0,
    "seeds": 1,
}

RecordFactory = Callable[..., dict[str, Any]]


def acc_of(skip: str, depth: int, seed: int) -> float:
    """The test accuracy the fixture gives a run: deeper is worse without a residual."""
    base = 0.8 if skip == "res" else 0.9 - 0.1 * {2: 0, 4: 1, 8: 3}.get(depth, 4)
    return round(base + 0.01 * seed, 6)


def _record(
    skip: str = "none",
    depth: int = 2,
    seed: int = 0,
    *,
    status: str = "done",
    test_acc: float | None = None,
    epochs: int | None = None,
    diagnostics: dict[str, list[float]] | None = None,
    norm: str = "none",
    error: str | None = None,
) -> dict[str, Any]:
    config = copy.deepcopy(BASE_CONFIG)
    config["model"].update(depth=depth, skip=skip, norm=norm)
    config["seed"] = seed
    finished = status in ("done", "diverged")
    n_epochs = epochs if epochs is not None else 5 - seed  # seeds stop at 5, 4, 3 epochs
    acc = test_acc if test_acc is not None else acc_of(skip, depth, seed)
    history = [
        {
            "epoch": e,
            "loss": 2.0 / e,
            "train_loss": 1.0 / e + 0.1 * seed,
            "val_loss": 1.5 / e,
            "test_loss": 1.6 / e,
            "train_acc": 0.5 + 0.05 * e,
            "val_acc": 0.4 + 0.05 * e + 0.01 * seed,
            "test_acc": 0.4 + 0.05 * e,
        }
        for e in range(1, n_epochs + 1)
    ]
    return {
        "run_key": f"{skip}-{norm}-d{depth}-s{seed}-{status}",
        "sweeps": ["depth"],
        "status": status,
        "config": config,
        "metrics": (
            {
                "train_acc": acc + 0.1,
                "val_acc": acc - 0.05,
                "test_acc": acc,
                "train_loss": 0.3,
                "val_loss": 0.6,
                "test_loss": 0.65,
                "best_epoch": n_epochs,
                "epochs": n_epochs,
            }
            if finished
            else {}
        ),
        "history": history if finished else [],
        "diagnostics": diagnostics or {},
        "time_s": 1.0 + seed if finished or status == "failed" else None,
        "peak_mem_mb": 100.0 + 10 * seed if finished else None,
        "error": error,
        "message": None,
        "versions": {"fathom": "0.1.0", "torch": "2.4.0", "torch_geometric": "2.6.1"}
        if finished or status == "failed"
        else {},
        "host": "node-a" if seed % 2 == 0 else "node-b",
        "attempts": 1,
        "created_at": "2024-05-01T10:00:00+00:00",
        "started_at": f"2024-05-01T10:0{seed}:00+00:00" if status != "pending" else None,
        "ended_at": f"2024-05-01T10:0{seed}:30+00:00" if finished or status == "failed" else None,
    }


@pytest.fixture
def make_record() -> RecordFactory:
    """``make_record(skip, depth, seed, status=..., test_acc=..., diagnostics=...)``."""
    return _record


def _records() -> list[dict[str, Any]]:
    out = []
    for skip in SKIPS:
        for depth in DEPTHS:
            for seed in SEEDS:
                diags = None
                if depth == 8:
                    diags = {
                        "dirichlet_energy": [10.0 ** (-layer - seed) for layer in range(depth)],
                        "effective_rank": [16.0 - layer - seed for layer in range(depth)],
                    }
                out.append(_record(skip, depth, seed, diagnostics=diags))
    out.append(_record("res", 16, 0, status="failed", error="CUDA out of memory | boom"))
    out.append(_record("none", 16, 0, status="pending"))
    out.append(_record("none", 16, 1, status="running"))
    return out


@pytest.fixture
def records() -> list[dict[str, Any]]:
    """2 skips x 3 depths x 3 seeds, done; plus one failed, one pending and one running run.

    The depth-8 runs carry per-layer diagnostics (Dirichlet energy spanning decades,
    effective rank linear)."""
    return _records()


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    """The report of :func:`records`, built once for the session (plots take a while)."""
    out = tmp_path_factory.mktemp("report") / "out"
    return build_report(_records(), out, title="CSBM <depth> sweep & friends")
