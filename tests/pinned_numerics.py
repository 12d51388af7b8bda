"""Running test code in a child process with pinned numerics (helper of the tests).

MKL's conditional numerical reproducibility (``MKL_CBWR=COMPATIBLE``) and torch's scalar CPU
kernels (``ATEN_CPU_CAPABILITY=default``), on one thread: results that do not depend on the
CPU's model (MKL otherwise picks its kernels and blocking by instruction set and caches, torch
its vector width). Both are read when torch and MKL load, hence a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PINNED = {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"}
"""The child's environment."""

_TESTS = Path(__file__).resolve().parent


def run_pinned(script: Path, *args: str, timeout: float = 600) -> None:
    """Run ``python script *args`` with :data:`PINNED` (and the tests' helper modules on its
    path); a non-zero exit raises ``CalledProcessError``."""
    path = os.pathsep.join(p for p in (str(_TESTS), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, **PINNED, "PYTHONPATH": path}
    subprocess.run([sys.executable, str(script), *args], env=env, check=True, timeout=timeout)


def assert_pinned() -> None:
    """In the child: fail unless it runs with :data:`PINNED`."""
    assert all(os.environ.get(k) == v for k, v in PINNED.items()), "run with run_pinned"
