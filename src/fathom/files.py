"""Atomic writes: a result file is either complete or absent, never half-written."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fathom.errors import FathomError

__all__ = [
    "atomic_path",
    "check_not_input",
    "check_output_dir",
    "check_output_file",
    "same_file",
    "write_json",
]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    If the body raises, the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FathomError(f"cannot create folder {target.parent}: {exc.strerror}") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); results are ordinary files (0666 & ~umask)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _existing_ancestor(path: Path) -> Path:
    """The nearest of ``path``'s ancestors that exists (``path`` itself excluded)."""
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _check_folder_writable(path: Path, what: str, *, inside: bool = False) -> None:
    """The folder that will hold ``path`` (``inside``: the folder ``path`` itself) exists or
    can be made, and is writable: probed by creating (and removing) a file in the nearest
    existing folder, which is what counts for root, read-only mounts and pseudo file systems
    alike."""
    ancestor = path if inside else _existing_ancestor(path)
    if not ancestor.is_dir():
        raise FathomError(f"{what} {path}: {ancestor} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".fathom-probe-", dir=ancestor)
    except OSError as exc:
        raise FathomError(
            f"{what} {path}: folder {ancestor} is not writable ({exc.strerror})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: str | Path, what: str) -> None:
    """Refuse, before any work, an output file that could not be written at the end: a
    folder, a read-only file, or one whose folder is a file or not writable (one line naming
    ``what``, e.g. ``"--json"``). A file that exists and is writable will be replaced."""
    p = Path(path).expanduser()
    if str(path) == "":
        raise FathomError(f"{what} needs a file name, got an empty string")
    if p.is_dir():
        raise FathomError(f"{what} {p} is a folder, not a file")
    if p.exists() and not os.access(p, os.W_OK):
        raise FathomError(f"{what} {p} is read-only")
    _check_folder_writable(p, what)


def check_output_dir(path: str | Path, what: str) -> None:
    """Refuse, before any work, an output folder that could not be written: a file, a
    read-only folder, or one under a file or a read-only folder."""
    p = Path(path).expanduser()
    if str(path) == "":
        raise FathomError(f"{what} needs a folder name, got an empty string")
    if p.exists():
        if not p.is_dir():
            raise FathomError(f"{what} {p} is a file, not a folder")
        _check_folder_writable(p, what, inside=True)
        return
    _check_folder_writable(p, what)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name the same file, existing or not: the same resolved path
    (symbolic links followed, ``..`` collapsed), or the same inode (a hard link)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop
        pass
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(path: str | Path, what: str, inputs: Mapping[str, str | Path]) -> None:
    """Refuse an output that is one of the command's inputs or other outputs
    (``{"the --config input": "c.yaml"}``), also through a hard or symbolic link: results
    must never replace what they were computed from, nor each other."""
    out = Path(path).expanduser()
    for name, given in inputs.items():
        src = Path(given).expanduser()
        if same_file(out, src):
            raise FathomError(f"{what} {out} is also {name}: it would be overwritten")


def _default(obj: Any) -> Any:
    to_dict: Callable[[], Any] | None = getattr(obj, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_default, allow_nan=True) + "\n")
    return Path(path)
