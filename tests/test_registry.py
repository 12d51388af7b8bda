"""Tests of fathom.registry."""

from __future__ import annotations

import pytest

from fathom.errors import ConfigError
from fathom.registry import Registry


def _registry() -> Registry[object]:
    reg: Registry[object] = Registry("widget")
    reg.add("beta", 2)

    @reg.register("Alpha")
    def alpha() -> int:
        return 1

    return reg


def test_register_get_names() -> None:
    reg = _registry()
    assert reg.get("beta") == 2
    assert reg.get("alpha")() == 1
    assert reg.names() == ["alpha", "beta"]
    assert list(reg) == ["alpha", "beta"]
    assert len(reg) == 2


def test_register_decorator_returns_the_object() -> None:
    reg: Registry[object] = Registry("widget")

    def f() -> None:
        return None

    assert reg.register("f")(f) is f
    assert reg.get("f") is f


def test_case_insensitive() -> None:
    reg = _registry()
    assert reg.get("ALPHA") is reg.get("alpha")
    assert reg.get("Beta") == 2
    assert "BETA" in reg and "alpha" in reg
    assert "gamma" not in reg
    assert 3 not in reg


@pytest.mark.parametrize("name", ["beta", "BETA", "alpha"])
def test_duplicate_raises_value_error(name: str) -> None:
    reg = _registry()
    with pytest.raises(ValueError, match=r"widget .* already registered"):
        reg.add(name, 3)
    with pytest.raises(ValueError):
        reg.register(name)(lambda: None)
    assert reg.get("beta") == 2  # unchanged


def test_unknown_name_lists_choices() -> None:
    reg = _registry()
    with pytest.raises(ConfigError) as info:
        reg.get("gamma")
    assert str(info.value) == "unknown widget 'gamma'; choose one of: alpha, beta"


def test_empty_registry() -> None:
    reg: Registry[object] = Registry("thing")
    assert reg.names() == [] and len(reg) == 0
    with pytest.raises(ConfigError, match="unknown thing 'x'"):
        reg.get("x")
