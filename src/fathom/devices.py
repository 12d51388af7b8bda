"""The one place a device is chosen: ``--device auto|cpu|cuda|cuda:N`` (``device:`` in YAML)."""

from __future__ import annotations

import os

import torch

from fathom.errors import ConfigError

__all__ = [
    "cpu_cores",
    "describe_device",
    "flush_denormals",
    "resolve_device",
    "set_threads",
    "threads_per_process",
]


def resolve_device(name: str, precision: str = "32") -> torch.device:
    """The torch device of ``name``: ``auto`` is CUDA when available, else the CPU; ``cuda``
    is the current CUDA device, with its index.

    Raises:
        ConfigError: ``cuda`` / ``cuda:N`` on a machine without CUDA, a device index the
            machine does not have, or ``precision`` ``bf16`` off CUDA (checked before any
            data is loaded or model built).
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"device (--device) must be auto, cpu, cuda or cuda:N, got {name!r}"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device (--device) {name!r} is not available: this machine has no CUDA device "
                "(use --device cpu or auto)"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"device (--device) {name!r} is not available: this machine has {count} CUDA "
                f"device(s), cuda:0 … cuda:{count - 1}"
            )
        if device.index is None:
            # the index tensors report, so that "already on this device" compares equal
            device = torch.device("cuda", torch.cuda.current_device())
    elif device.type != "cpu":
        raise ConfigError(f"device (--device) must be auto, cpu, cuda or cuda:N, got {name!r}")
    if precision == "bf16" and device.type != "cuda":
        raise ConfigError(
            f"train.precision (--precision) 'bf16' needs a CUDA device, got device {device}"
        )
    return device


def describe_device(device: torch.device) -> dict[str, object]:
    """What the results store records of where a run executed: device, GPU name, threads."""
    out: dict[str, object] = {"device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def set_threads(threads: int | None) -> None:
    """Set torch's intra-op threads (``--threads N``); ``None`` leaves torch's default.

    Raises:
        ConfigError: ``threads < 1``.
    """
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def flush_denormals() -> None:
    """Flush subnormal floats to zero in CPU arithmetic (``torch.set_flush_denormal(True)``):
    in this thread, and in the threads it starts afterwards (torch's intra-op pool, created
    at its first parallel op, inherits the mode), so entry points call it before any work.

    Deep stacks drift into float32's subnormal range (below 1.2e-38) as they train, where x86
    arithmetic is many times slower: measured (benchmarks/denormals.py, docs/results/denormals.md),
    a 16-layer ResGCN on PubMed (preset depth-resgcn-pubmed) ran 1.6 s an epoch for 100 epochs,
    then 8.5 s by epochs 141-160, 6.5 % of the gradients of its modules' outputs being
    subnormal; flushed, it stays at 1.6 s an epoch (1.93x less for 160 epochs) with the same
    test accuracy. Only subnormal values change (to zero), and runs stay deterministic. A no-op
    where the CPU has no such mode; CUDA is not affected.
    """
    torch.set_flush_denormal(True)


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def threads_per_process(processes: int) -> int:
    """Torch threads of each of ``processes`` processes sharing this machine's cores:
    ``cores // processes``, at least 1 (2 ranks on 16 cores: 8 threads each)."""
    return max(1, cpu_cores() // max(1, processes))
