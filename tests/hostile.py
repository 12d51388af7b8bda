"""The hostile-input corpus's one assertion: a refused command changes nothing.

``assert_refused(argv, watch=[...])`` runs ``fathom argv`` in this process and asserts what
every bad input must give: exit status 2, exactly one line on stderr starting ``fathom`` (no
traceback), nothing on stdout, and every watched path byte-identical afterwards (files: same
bytes and mode; folders: the same tree, recursively, with the same bytes) — so nothing was
written, half-written, moved or deleted. Paths that did not exist must still not exist.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["Payload", "assert_refused", "snapshot"]


def snapshot(path: Path) -> object:
    """A comparable picture of ``path``: None (absent), file bytes and mode, or a folder's
    tree of such pictures."""
    if path.is_symlink():
        return ("link", os.readlink(path))
    if not path.exists():
        return None
    if path.is_dir():
        return ("dir", {child.name: snapshot(child) for child in sorted(path.iterdir())})
    return ("file", path.read_bytes(), path.stat().st_mode)


def assert_refused(
    argv: Sequence[str], watch: Iterable[str | Path] = (), *words: str, env: dict | None = None
) -> str:
    """Run ``fathom argv``; assert exit 2, one stderr line holding every word, no stdout and
    every ``watch`` path unchanged. Returns the error line."""
    from fathom.cli import main

    watched = [Path(p) for p in watch]
    before = [snapshot(p) for p in watched]
    out, err = io.StringIO(), io.StringIO()
    old_env = {k: os.environ.get(k) for k in (env or {})}
    try:
        os.environ.update(env or {})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(list(argv))
            except SystemExit as exc:  # argparse errors
                rc = exc.code
    finally:
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    text = err.getvalue().strip()
    assert rc == 2, f"exit {rc}, stderr: {text}"
    assert "Traceback" not in text, text
    assert len(text.splitlines()) == 1, text
    assert text.startswith("fathom"), text
    for word in words:
        assert word in text, f"{word!r} not in: {text}"
    assert out.getvalue() == "", out.getvalue()
    for p, b in zip(watched, before, strict=True):
        assert snapshot(p) == b, f"{p} changed"
    return text


def _touch(path: str) -> None:
    Path(path).touch()


class Payload:
    """Unpickling this calls ``_touch(marker)``: what a malicious data or cache file could do
    (a test asserts ``marker`` never appears)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_touch, (self.marker,))
