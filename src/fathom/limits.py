"""Resource limits checked *before* anything large is allocated.

fathom refuses work whose size it can tell in advance would not fit: an array whose file
header claims more bytes than memory holds, a model whose parameters alone exceed it, a sweep
of a billion runs. The budget is :func:`memory_budget`: ``$FATHOM_MEMORY_BUDGET`` when set
(``"8G"``, ``"512M"``, ``"2000000000"``), else the memory the OS reports as available
(``MemAvailable`` of ``/proc/meminfo``), else 8 GiB. Nothing here imports torch.
"""

from __future__ import annotations

import os
import re

from fathom.errors import ConfigError, FathomError

__all__ = ["check_bytes", "human_bytes", "memory_budget", "parse_bytes"]

_FALLBACK = 8 << 30
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_bytes(text: str) -> int:
    """``"8G"`` → 8 GiB; ``"512M"``, ``"64K"``, ``"1T"`` or a plain number of bytes.

    Raises:
        ConfigError: anything else, or a size below 1 byte.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, flags=re.IGNORECASE)
    if m is None:
        raise ConfigError(f"FATHOM_MEMORY_BUDGET must be a size like 8G or 512M, got {text!r}")
    value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value < 1:
        raise ConfigError(f"FATHOM_MEMORY_BUDGET must be at least 1 byte, got {text!r}")
    return value


def _available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_budget() -> int:
    """Bytes fathom may plan to allocate at once: ``$FATHOM_MEMORY_BUDGET``, else the
    available memory, else 8 GiB."""
    env = os.environ.get("FATHOM_MEMORY_BUDGET")
    if env:
        return parse_bytes(env)
    return _available() or _FALLBACK


def human_bytes(n: float) -> str:
    """``1.5 GB``-style size (powers of 1024, one decimal)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def check_bytes(
    nbytes: float, what: str, *, error: type[FathomError] = ConfigError, hint: str = ""
) -> None:
    """Refuse (one line, ``error``) when ``what`` would need more than :func:`memory_budget`.

    ``what`` reads as the subject of "needs …" (``"a 100000-layer model's parameters"``);
    ``hint`` is appended (``"; lower --depth"``).
    """
    budget = memory_budget()
    if nbytes > budget:
        raise error(
            f"{what} needs about {human_bytes(nbytes)}, more than the memory budget of "
            f"{human_bytes(budget)} (available memory; FATHOM_MEMORY_BUDGET sets it){hint}"
        )
