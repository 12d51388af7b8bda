"""A small generic name -> factory registry.

Names are resolved to factories only at builder boundaries; unknown names raise a
:class:`~fathom.errors.ConfigError` that lists the valid choices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from fathom.errors import ConfigError

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Maps lower-case names to objects (usually factories).

    Args:
        kind: what the registry holds, used in error messages (e.g. ``"conv"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a duplicate name raises ``ValueError``."""

        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; a duplicate name raises ``ValueError``."""
        key = name.lower()
        if key in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[key] = obj

    def get(self, name: str) -> T:
        """The object registered under ``name``; a ConfigError listing the choices if none."""
        try:
            return self._items[name.lower()]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
