"""fathom's version: the installed distribution's (``fathom-gnn``), one source of truth with
``pyproject.toml``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("fathom-gnn")
except PackageNotFoundError:  # pragma: no cover - run from a source tree, not installed
    __version__ = "0+unknown"
