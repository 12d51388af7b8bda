"""Turning results into files people read: tables, plots, HTML, JSON.

The package is also callable: ``fathom.report(store, out="report", sweep=None)`` is
:func:`fathom.report.from_store.report_store`, mirroring ``fathom report STORE``, while
``from fathom.report import plots`` keeps working.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from fathom.report.from_store import report_store

        return report_store(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
