"""``fathom train --nproc N``: start N worker processes on this machine with torchrun's own
engine, and report a failed run in one line.

The workers are launched by :func:`torch.distributed.launcher.api.elastic_launch`, the
elastic agent behind ``torchrun`` (``torch.distributed.run``), configured as ``torchrun
--standalone --nproc-per-node N --max-restarts 0``: a c10d rendezvous on a free localhost
port, ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR`` … set in each worker, each
worker ``python -m fathom.cli train <the same arguments without --nproc>``. So ``--nproc N``
and ``torchrun --nproc-per-node N -m fathom.cli train …`` run the very same worker code;
the agent watches the workers and, when one exits with an error or a signal, stops the
others (SIGTERM, then SIGKILL) instead of leaving them blocked in a collective.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Sequence
from typing import Any

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_RUN_FAILED",
    "LAUNCHER_ENV",
    "launch_workers",
    "without_nproc",
]

LAUNCHER_ENV = "FATHOM_LAUNCHER"
"""Set to ``nproc`` in the workers ``--nproc`` starts: a worker that loses its peers then
leaves the report to the launcher (one line for the run, not one per rank)."""

EXIT_RUN_FAILED = 1
"""Exit status of a run that failed after it started (a rank died): not bad input (2)."""
EXIT_BAD_INPUT = 2
"""``fathom.cli.parser.EXIT_BAD_INPUT`` (the parser imports the commands: no import back)."""
EXIT_INTERRUPTED = 130
"""Exit status of a run stopped by a signal (Ctrl-C), as ``fathom``'s own."""


def without_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (what each worker runs)."""
    out: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token == "--nproc":
            skip = True
        elif not token.startswith("--nproc="):
            out.append(token)
    return out


def _describe(failure: Any) -> str:
    code = int(failure.exitcode)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def _cause(failures: dict[int, Any]) -> tuple[int, Any]:
    """The failure that ended the run: the first rank that failed on its own (not one the
    agent stopped with SIGTERM / SIGKILL after it), else the first."""
    stopped = (-signal.SIGTERM, -signal.SIGKILL)
    ranked = sorted(failures.items(), key=lambda item: (item[1].timestamp, item[0]))
    own = [item for item in ranked if item[1].exitcode not in stopped]
    return (own or ranked)[0]


def launch_workers(
    argv: Sequence[str], nproc: int, *, resume: str | None, command: str = "train"
) -> int:
    """Run ``fathom <argv>`` (``argv`` without ``--nproc``) on ``nproc`` ranks; returns the
    exit status: 0 when every rank finished; 2 when rank 0 stopped on bad input (it printed
    the one line); otherwise :data:`EXIT_RUN_FAILED` (1) after one line naming the rank
    that failed and how to resume (``resume``: the ``--resume`` file).
    """
    from torch.distributed.elastic.multiprocessing.api import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # the agent logs every start, stop and failure of a worker: the one line below is ours
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    logging.getLogger("torch.distributed.launcher").setLevel(logging.CRITICAL)
    log_dir = tempfile.mkdtemp(prefix="fathom-workers-")
    os.environ[LAUNCHER_ENV] = "nproc"  # inherited by the workers
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
        logs_specs=DefaultLogsSpecs(log_dir=log_dir),
    )
    again = (
        f"rerun the same command to resume from {resume}"
        if resume
        else "rerun to start over (--resume FILE keeps the progress of a run)"
    )
    try:
        elastic_launch(config, sys.executable)("-u", "-m", "fathom.cli", *without_nproc(argv))
    except ChildFailedError as exc:
        rank, failure = _cause(exc.failures)
        if failure.exitcode == EXIT_BAD_INPUT and failure.local_rank == 0:
            return EXIT_BAD_INPUT  # the worker printed its one-line error
        sys.stderr.write(
            f"fathom {command}: error: rank {rank} of {nproc} {_describe(failure)}; the other "
            f"ranks were stopped and the run failed (no result written); {again}\n"
        )
        return EXIT_RUN_FAILED
    except SignalException as exc:  # the agent stopped the workers first
        sys.stderr.write(f"fathom {command}: interrupted ({exc.sigval.name}); {again}\n")
        return EXIT_INTERRUPTED
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0
