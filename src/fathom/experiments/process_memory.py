"""This process's resident memory as the Linux kernel reports it (benchmarks' peak memory).

``VmRSS`` is the resident set now and ``VmHWM`` its peak; writing ``5`` to
``/proc/self/clear_refs`` (Linux >= 4.0) resets the peak to the current RSS, so a benchmark
can measure the peak of one phase in a fresh process.
"""

from __future__ import annotations

import re

__all__ = ["reset_peak_rss", "status_kib"]


def status_kib(field: str) -> int:
    """The ``field`` line of ``/proc/self/status`` (``VmRSS``, ``VmHWM`` …) in KiB."""
    with open("/proc/self/status") as f:
        match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {field} in /proc/self/status")
    return int(match.group(1))


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS; False where the
    kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True
