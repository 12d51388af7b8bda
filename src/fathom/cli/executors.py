"""``--executor``, ``--address``, ``--cpus-per-run`` and ``--gpus-per-run`` of ``fathom sweep``
and ``fathom reproduce``: where the runs execute (local worker processes, or Ray tasks on a
local instance or a cluster), checked before any work."""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fathom.cli.flags import positive_int
from fathom.errors import FathomError

__all__ = [
    "add_executor_flags",
    "executor_from_args",
    "ray_session",
    "skips_local_device_check",
]

_RAY_ONLY = ("address", "cpus_per_run", "gpus_per_run")


def _non_negative_float(text: str) -> float:
    """argparse type of a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def add_executor_flags(parser: argparse.ArgumentParser) -> None:
    """Add the executor flags (``--workers`` and ``--threads`` stay the local executor's)."""
    group = parser.add_argument_group("where runs execute")
    group.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: --workers processes on this machine (default); ray: Ray tasks on a "
        "local Ray instance or, with --address, a cluster (pip install 'fathom-gnn[ray]'); "
        "this process alone writes the store either way",
    )
    group.add_argument(
        "--address",
        metavar="HOST:PORT|auto",
        help="--executor ray: the cluster's head (auto: the one `ray start` began on this "
        "machine, or $RAY_ADDRESS); default: start a local Ray instance and stop it after",
    )
    group.add_argument(
        "--cpus-per-run",
        type=positive_int,
        metavar="N",
        help="--executor ray: CPUs reserved for each run, which trains with N torch threads "
        "(default 1)",
    )
    group.add_argument(
        "--gpus-per-run",
        type=_non_negative_float,
        metavar="G",
        help="--executor ray: GPUs reserved for each run (fractions share one; default 0: "
        "runs of device auto train on the CPU)",
    )


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def executor_from_args(args: argparse.Namespace, *, data_dir: str | None = None) -> Any:
    """``"local"`` or a :class:`~fathom.experiments.ray_executor.RayExecutor` from the flags.

    ``data_dir`` (``reproduce --data-dir``) becomes the tasks' ``$FATHOM_DATA`` on every node.

    Raises:
        FathomError: a Ray flag without ``--executor ray``; ``--workers`` or ``--threads``
            with it; Ray is not installed (one line naming ``pip install
            'fathom-gnn[ray]'``); or no cluster answers at ``--address``.
    """
    if args.executor != "ray":
        given = [_flag(d) for d in _RAY_ONLY if getattr(args, d, None) is not None]
        if given:
            raise FathomError(f"{', '.join(given)} applies to --executor ray only")
        return "local"
    from fathom.experiments.ray_executor import RayExecutor, require_ray

    require_ray()
    if args.workers is not None:
        raise FathomError(
            "--workers applies to --executor local; with --executor ray the cluster's CPUs "
            "decide how many runs train at once (--cpus-per-run each)"
        )
    if args.threads is not None:
        raise FathomError(
            "--threads applies to --executor local; with --executor ray each run trains "
            "with as many threads as its --cpus-per-run"
        )
    executor = RayExecutor(
        address=args.address,
        cpus_per_run=args.cpus_per_run or 1,
        gpus_per_run=args.gpus_per_run or 0.0,
        data_dir=None if data_dir is None else str(Path(data_dir).expanduser().absolute()),
    )
    executor.check()  # a cluster that does not answer at --address
    return executor


def skips_local_device_check(executor: Any, devices: list[str]) -> bool:
    """Whether the runs' ``devices`` are checked on the nodes rather than on this machine:
    with Ray and GPUs per run (the driver may have none). A CUDA device with Ray and no
    ``--gpus-per-run`` is refused: a run may only use the GPUs Ray reserved for it.

    Raises:
        FathomError: a ``cuda`` device with ``--executor ray`` and no ``--gpus-per-run``.
    """
    if isinstance(executor, str):
        return False
    if executor.gpus_per_run > 0:
        return True
    cuda = sorted({d for d in devices if str(d).startswith("cuda")})
    if cuda:
        raise FathomError(
            f"--device {cuda[0]} with --executor ray needs --gpus-per-run (a run may only use "
            "the GPUs Ray reserved for it)"
        )
    return False


@contextlib.contextmanager
def ray_session(
    executor: Any, store: str, configs: Sequence[Any], *, retry_failed: bool
) -> Iterator[None]:
    """With a Ray executor, start (or join) Ray on entering, when some of ``configs`` is
    left to run in ``store``, so that a cluster that cannot be reached or a run that fits
    on no node fails in one line before any progress is drawn; leave it on exit. Nothing
    with the local executor."""
    if isinstance(executor, str):
        yield
        return
    from fathom.experiments.sweep import anything_to_run

    try:
        if anything_to_run(store, configs, retry_failed=retry_failed):
            executor.start()
        yield
    finally:
        executor.stop()
