"""The process group of a multi-process run: torchrun's environment, torch.distributed's
collectives, rank 0 as the one writer.

A run on several processes is launched by ``torchrun`` (``torch.distributed.run``) or by
``fathom train --nproc N``, which starts the same elastic agent torchrun does. The launcher
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` in every worker; :func:`from_env` reads them and :func:`init` joins the
process group (gloo on the CPU, NCCL on CUDA, ``LOCAL_RANK`` picking the GPU) with a
collective timeout, so a rank whose peers died raises instead of waiting forever.

Everything else asks :func:`rank` / :func:`world_size`, which fall back to a single process
(rank 0 of 1) when no group is initialised: the single-process path calls no collective.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from fathom.errors import ConfigError

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ENV_VARS",
    "Launch",
    "all_gather_objects",
    "barrier",
    "broadcast_object",
    "describe",
    "from_env",
    "init",
    "is_initialized",
    "is_main",
    "main_first",
    "rank",
    "shutdown",
    "world_size",
]

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
"""What torchrun (and ``fathom train --nproc``) tell each worker."""

DEFAULT_TIMEOUT_S = 1800
"""Collective timeout (torch's own default for gloo): a rank waiting this long on a peer
fails instead of hanging."""


@dataclass(frozen=True)
class Launch:
    """Where this worker sits in a torchrun launch."""

    rank: int
    """Global rank, ``0 … world_size - 1``; rank 0 writes every result."""
    world_size: int
    """Processes in the run, over every machine."""
    local_rank: int
    """Rank on this machine; picks the GPU (``cuda:LOCAL_RANK``)."""
    local_world_size: int
    """Processes on this machine (they share its cores)."""

    @property
    def speaks(self) -> bool:
        """Whether this worker prints errors: local rank 0, one line per machine (the
        others raise the same error and stay quiet)."""
        return self.local_rank == 0


def _int(environ: Mapping[str, str], name: str, default: int | None = None) -> int:
    text = environ.get(name)
    if text is None:
        if default is None:
            raise ConfigError(f"${name} is not set (torchrun sets it in every worker)")
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"${name} must be an integer, got {text!r}") from None


def from_env(environ: Mapping[str, str] | None = None) -> Launch | None:
    """The launch torchrun describes in ``environ`` (default: ``os.environ``); ``None`` when
    this process was not started by torchrun (no ``WORLD_SIZE``).

    Raises:
        ConfigError: a variable missing or not an integer, or ranks out of range.
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return None
    world = _int(env, "WORLD_SIZE")
    rank_ = _int(env, "RANK")
    local_rank = _int(env, "LOCAL_RANK", rank_)
    local_world = _int(env, "LOCAL_WORLD_SIZE", world)
    if not (world >= 1 and 0 <= rank_ < world and 0 <= local_rank < local_world <= world):
        raise ConfigError(
            f"torchrun environment out of range: RANK={rank_} WORLD_SIZE={world} "
            f"LOCAL_RANK={local_rank} LOCAL_WORLD_SIZE={local_world}"
        )
    return Launch(rank_, world, local_rank, local_world)


def is_initialized() -> bool:
    """Whether this process is in an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """Processes in the run (1 without a process group)."""
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """Whether this process writes results: rank 0 (the only process of a plain run)."""
    return rank() == 0


def init(launch: Launch, device: torch.device, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Join the process group torchrun set up (``env://``): NCCL for a CUDA ``device`` (the
    caller picked ``cuda:LOCAL_RANK``), gloo on the CPU; every collective times out after
    ``timeout_s`` seconds."""
    if timeout_s <= 0:
        raise ConfigError(f"--dist-timeout must be > 0 seconds, got {timeout_s}")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend,
        rank=launch.rank,
        world_size=launch.world_size,
        timeout=datetime.timedelta(seconds=timeout_s),
    )


def shutdown() -> None:
    """Leave the process group (no-op without one)."""
    if is_initialized():
        dist.destroy_process_group()


def describe() -> dict[str, object]:
    """What a result records of the process group: ``world_size`` and ``backend`` (nothing
    for a single process, so single-process results stay as they were)."""
    if not is_initialized() or dist.get_world_size() == 1:
        return {}
    return {"world_size": dist.get_world_size(), "backend": str(dist.get_backend())}


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if is_initialized():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (pickled; itself without a process group)."""
    if not is_initialized():
        return obj
    box = [obj if dist.get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` without a group)."""
    if not is_initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


@contextmanager
def main_first() -> Iterator[None]:
    """Run the body on rank 0 first, then on the other ranks (e.g. a dataset that is
    processed and cached on first use, so the other ranks read the cache instead of
    writing it at the same time). No-op without a process group."""
    if not is_initialized():
        yield
        return
    if dist.get_rank() != 0:
        dist.barrier()
    yield
    if dist.get_rank() == 0:
        dist.barrier()
