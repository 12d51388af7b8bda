"""The one YAML reader of fathom: a safe loader with limits.

Every YAML fathom reads (config files, ``--set key=value`` overrides, sweep specs, presets,
reference tables) goes through :func:`load_file` or :func:`loads`. Both use
:class:`BoundedLoader`, a :class:`yaml.SafeLoader` (no tags that build Python objects) that
additionally refuses, with one :class:`~fathom.errors.ConfigError` line naming the file and
the line:

- a key written twice in one mapping (YAML's default keeps the last one silently);
- more than :data:`MAX_ALIASES` alias uses (``*name``), an alias to a node that contains it
  (a recursive structure), and documents whose aliases expand to more than
  :data:`MAX_NODES` nodes (a "billion laughs" bomb is refused while it is being read, before
  anything walks or prints it);
- nesting deeper than :data:`MAX_DEPTH` levels (counting what aliases expand to);
- a file over :data:`MAX_BYTES` (checked on its size before it is read, and again on what is
  read), a file holding NUL bytes (binary) or bytes that are not UTF-8.

:func:`load_file` also refuses an empty document (empty file, only comments, ``null``) and a
top level that is not a mapping. Nothing here imports torch.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fathom.errors import ConfigError

__all__ = [
    "MAX_ALIASES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "BoundedLoader",
    "YamlSyntaxError",
    "load_file",
    "loads",
    "short",
]

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6

MAX_BYTES = 1 << 20
"""Largest YAML text fathom reads (1 MiB); configs and specs are a few KB."""
MAX_ALIASES = 100
"""Most alias uses (``*name``) in one document."""
MAX_DEPTH = 64
"""Deepest nesting of sequences and mappings, counting what aliases expand to."""
MAX_NODES = 100_000
"""Most nodes (scalars, sequences, mappings) of a document once its aliases are expanded."""


class YamlSyntaxError(ConfigError):
    """The text is not YAML (scanner / parser error); limit and duplicate-key errors are plain
    :class:`ConfigError`. ``--set key=value`` falls back to the raw string on this one only."""


class _Refused(yaml.YAMLError):
    """A limit of :class:`BoundedLoader` was hit (carries the line where it was)."""

    def __init__(self, message: str, mark: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` bounded to about ``limit`` characters: containers show their first
    items and levels only (:mod:`reprlib`), so an error message never renders a huge value
    (a value read from YAML may share sub-structures and be exponentially large in print)."""
    try:
        text = _REPR.repr(value)
    except Exception:  # e.g. an int beyond Python's digit limit
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _line(mark: Any) -> str:
    return f" at line {mark.line + 1}" if mark is not None else ""


class BoundedLoader(yaml.SafeLoader):
    """A :class:`yaml.SafeLoader` that refuses duplicate keys, alias bombs, recursive aliases
    and deep nesting (see the module docstring); use it through :func:`loads`."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0
        self._open: set[str] = set()
        # id(node) -> (expanded node count, expanded depth); nodes live as long as the loader
        self._measure: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(
                    f"more than {MAX_ALIASES} aliases (*name); fathom refuses alias bombs",
                    event.start_mark,
                )
            if event.anchor in self._open:
                raise _Refused(
                    f"a recursive alias *{str(event.anchor)[:40]} (it refers to a "
                    "node that contains it)",
                    event.start_mark,
                )
            node = super().compose_node(parent, index)
            self._check(node, event.start_mark)
            return node
        event = self.peek_event()
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
        anchor = event.anchor
        if anchor is not None:
            self._open.add(anchor)
        node = super().compose_node(parent, index)
        if anchor is not None:
            self._open.discard(anchor)
        self._depth -= 1
        if isinstance(node, ScalarNode):
            children: list[Node] = []
        elif isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        else:  # pragma: no cover - the composer builds only these three
            children = []
        size = 1 + sum(self._measure[id(c)][0] for c in children)
        depth = 1 + max((self._measure[id(c)][1] for c in children), default=0)
        self._measure[id(node)] = (size, depth)
        self._check(node, event.start_mark)
        return node

    def _check(self, node: Node, mark: Any) -> None:
        size, depth = self._measure[id(node)]
        if size > MAX_NODES:
            raise _Refused(
                f"aliases expand it to more than {MAX_NODES:,} values; fathom refuses alias bombs",
                mark,
            )
        if depth + self._depth > MAX_DEPTH:
            raise _Refused(f"nesting deeper than {MAX_DEPTH} levels (through an alias)", mark)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:  # an own key may override a merged ('<<') one
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable: SafeConstructor refuses it below
                continue
            if first is not None:
                raise _Refused(
                    f"duplicate key {short(key, 40)} in one mapping (first at line "
                    f"{first.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def loads(text: str, *, source: str = "YAML text") -> Any:
    """Parse one YAML document with :class:`BoundedLoader`; ``None`` for an empty one.

    Args:
        text: the YAML text.
        source: what errors call it (``"config file cfg.yaml"``).

    Raises:
        YamlSyntaxError: not YAML (with the line).
        ConfigError: too long, a NUL character, a duplicate key, an alias bomb, a recursive
            alias or nesting too deep (with the line).
    """
    if len(text) > MAX_BYTES:
        raise ConfigError(
            f"{source} is too large ({len(text):,} characters; fathom reads YAML up to "
            f"{MAX_BYTES:,} bytes)"
        )
    if "\x00" in text:
        raise ConfigError(f"{source} is not a text file (it holds NUL bytes)")
    loader = None
    try:
        loader = BoundedLoader(text)  # the reader checks the characters here
        return loader.get_single_data()
    except _Refused as exc:
        raise ConfigError(f"{source}{_at(exc.mark)}: {exc.message}") from None
    except (yaml.scanner.ScannerError, yaml.parser.ParserError, yaml.reader.ReaderError) as exc:
        raise YamlSyntaxError(f"{source} is not valid YAML{_where(exc)}") from None
    except yaml.YAMLError as exc:  # composer / constructor: undefined alias, bad tag …
        raise ConfigError(f"{source} is not valid YAML{_where(exc)}") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more than 4,300 digits
        raise ConfigError(
            f"{source} has a value fathom cannot read: {short(str(exc), 120)}"
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _at(mark: Any) -> str:
    return f", line {mark.line + 1}" if mark is not None else ""


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if isinstance(exc, yaml.reader.ReaderError):
        return f" at character {exc.position}: {short(exc.reason, 80)}"
    detail = f": {short(str(problem), 200)[1:-1]}" if problem else ""
    return f"{_line(mark)}{detail}"


def load_file(
    path: str | Path,
    *,
    what: str = "YAML file",
    expect: str = "a mapping",
    allow_empty: bool = False,
) -> Any:
    """Read and parse the YAML file ``path`` (see the module docstring for what is refused).

    Args:
        path: the file.
        what: what errors call it (``"config file"``, ``"sweep spec"``).
        expect: what its top level must be, as errors say it (``"a mapping of sections"``);
            it must be a mapping (``dict``).
        allow_empty: return ``None`` for an empty document instead of refusing it.

    Raises:
        ConfigError: one line naming the file: missing, not a regular file, unreadable, too
            large, binary or not UTF-8, not YAML, over a limit, empty, or not a mapping.
    """
    p = Path(path)
    source = f"{what} {p}"
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {p}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror or exc}") from None
    if p.is_dir():
        raise ConfigError(f"{source} is a folder, not a file")
    if not p.is_file():
        raise ConfigError(f"{source} is not a regular file")
    if st.st_size > MAX_BYTES:
        raise ConfigError(
            f"{source} is too large ({st.st_size:,} bytes; fathom reads YAML up to "
            f"{MAX_BYTES:,} bytes)"
        )
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{source} is too large (fathom reads YAML up to {MAX_BYTES:,} bytes)")
    if b"\x00" in data:
        raise ConfigError(f"{source} is not a text file (it holds NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{source} is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line})"
        ) from None
    raw = loads(text, source=source)
    if raw is None:
        if allow_empty:
            return None
        kind = "an empty file" if not text.strip() else "an empty document"
        raise ConfigError(f"{source} must be {expect}, got {kind}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be {expect}, got a {type(raw).__name__}")
    return raw
