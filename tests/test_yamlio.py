"""Tests of fathom.yamlio: the bounded safe YAML reader every YAML of fathom goes through."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fathom.errors import ConfigError
from fathom.yamlio import (
    MAX_ALIASES,
    MAX_BYTES,
    MAX_DEPTH,
    YamlSyntaxError,
    load_file,
    loads,
    short,
)


def _bomb(levels: int, width: int = 9) -> str:
    """A billion-laughs document: each level lists the previous one ``width`` times."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _error(fn, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert len(message) < 400, message
    return message


def test_plain_documents_anchors_and_merge_keys_still_load() -> None:
    text = "base: &b {depth: 2, hidden: 8}\nmodel:\n  <<: *b\n  depth: 4\nother: *b\n"
    assert loads(text) == {
        "base": {"depth": 2, "hidden": 8},
        "model": {"depth": 4, "hidden": 8},
        "other": {"depth": 2, "hidden": 8},
    }
    assert loads("") is None
    assert loads("# nothing\n") is None
    assert loads("16") == 16


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("model:\n  depth: 2\nmodel:\n  depth: 3\n", ["line 3", "duplicate key 'model'", "line 1"]),
        ("a:\n  x: 1\n  y: 2\n  x: 3\n", ["line 4", "duplicate key 'x'"]),
        ("{1: a, 1: b}\n", ["duplicate key 1"]),
        (_bomb(9), ["alias"]),  # 9**9 values from 72 aliases
        (_bomb(40, width=2), ["alias"]),  # 2**40 values from 78 aliases
        (
            "".join(f"k{i}: &a{i} x\n" for i in range(200))
            + "v: ["
            + ", ".join(f"*a{i}" for i in range(150))
            + "]\n",
            [f"more than {MAX_ALIASES} aliases"],
        ),
        ("a: &a [*a]\n", ["recursive alias *a"]),
        ("a: &a {b: [1, {c: *a}]}\n", ["recursive alias *a"]),
        ("a: " + "[" * 20_000 + "]" * 20_000 + "\n", [f"deeper than {MAX_DEPTH}"]),
        ("".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "1\n", ["deeper"]),
        (
            "a: &a " + "[" * 40 + "1" + "]" * 40 + "\nb: " + "[" * 40 + "*a" + "]" * 40 + "\n",
            ["deeper than", "alias"],
        ),
        ("x: !!python/object/apply:os.system [echo hi]\n", ["not valid YAML", "line 1"]),
        ("x: *nowhere\n", ["not valid YAML", "undefined alias"]),
        ("seed: " + "9" * 5000 + "\n", ["cannot read"]),
        ("a: 1\n---\nb: 2\n", ["not valid YAML"]),
    ],
)
def test_hostile_documents_are_refused_fast_in_one_line(text: str, words: list[str]) -> None:
    start = time.perf_counter()
    message = _error(loads, text, source="config file x.yaml")
    assert time.perf_counter() - start < 10
    assert message.startswith("config file x.yaml")
    for word in words:
        assert word in message, message


def test_syntax_errors_are_their_own_class() -> None:
    with pytest.raises(YamlSyntaxError, match="line 1"):
        loads("[1, 2", source="t")
    with pytest.raises(ConfigError) as info:  # a limit is not a syntax error
        loads("a: &a [*a]", source="t")
    assert not isinstance(info.value, YamlSyntaxError)


def test_file_checks(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert _error(load_file, missing, what="config file") == f"config file not found: {missing}"
    assert "folder" in _error(load_file, tmp_path, what="config file")

    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_BYTES + "\n")
    assert "too large" in _error(load_file, big)

    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    assert "NUL" in _error(load_file, binary)

    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: 1\nname: caf\xe9\n")
    message = _error(load_file, latin)
    assert "not UTF-8" in message and "line 2" in message

    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_file(bom) == {"a": 1}

    control = tmp_path / "control.yaml"
    control.write_bytes(b"a: \x07\n")
    assert "not valid YAML" in _error(load_file, control)


@pytest.mark.parametrize(
    ("text", "got"),
    [("", "an empty file"), ("# comment\n", "an empty document"), ("null\n", "an empty document")],
)
def test_empty_documents_are_refused_unless_allowed(tmp_path: Path, text: str, got: str) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(text)
    message = _error(load_file, path, what="sweep spec", expect="a mapping with fields name")
    assert message == f"sweep spec {path} must be a mapping with fields name, got {got}"
    assert load_file(path, allow_empty=True) is None


@pytest.mark.parametrize(("text", "kind"), [("- 1\n", "list"), ("3\n", "int"), ("hi\n", "str")])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    assert _error(load_file, path).endswith(f"got a {kind}")


def test_real_binary_given_as_a_config(tmp_path: Path) -> None:
    ls = Path("/bin/ls")
    if not ls.is_file():
        pytest.skip("no /bin/ls")
    message = _error(load_file, ls, what="config file")
    assert "/bin/ls" in message and ("NUL" in message or "too large" in message)


def test_short_bounds_what_errors_print() -> None:
    assert "..." in short("x" * 10_000) and len(short("x" * 10_000)) <= 80
    assert len(short(list(range(10**5)))) <= 80
    nested: list = []
    for _ in range(5000):
        nested = [nested, nested]  # exponentially large in print
    assert len(short(nested)) <= 80
    assert short(10**5000) == "<a int>"
    assert short("model") == "'model'"
