"""Errors raised by fathom.

Library code raises a :class:`FathomError` subclass whose message is one line naming the
field and the offending value; the CLI prints that line (no traceback) and exits with 2.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "DataNotFoundError", "FathomError"]


class FathomError(Exception):
    """Base class of every error fathom raises on bad input."""


class ConfigError(FathomError):
    """An unknown, missing or invalid configuration key or value."""


class DataError(FathomError):
    """A malformed graph: wrong dtype or shape, out-of-range index, NaN, bad mask."""


class DataNotFoundError(DataError):
    """A dataset or data file that could not be found (the message says where fathom looked)."""


class StoreError(FathomError):
    """A results store that cannot be opened, read or written (or has another schema version)."""
