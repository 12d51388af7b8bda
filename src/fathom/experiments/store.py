"""The results store: one SQLite row per run, keyed by the hash of its resolved config.

A store is a single SQLite file (stdlib :mod:`sqlite3`, WAL journal, 30 s busy timeout) with
``PRAGMA user_version`` = :data:`SCHEMA_VERSION` and four tables:

* ``meta`` (key, value): ``schema_version``, ``fathom_version``, ``created_at``;
* ``runs``: one row per run (``run_key`` unique), JSON columns stored as TEXT;
* ``sweeps`` (name, created_at) and ``sweep_runs`` (sweep, run_key): a run can belong to
  several sweeps, and is stored once.

A run moves ``pending`` -> ``running`` (:meth:`RunStore.claim`) -> ``done`` / ``failed`` /
``diverged`` (:meth:`RunStore.finish`); an interrupted run goes back to ``pending``
(:meth:`RunStore.release`, or :meth:`RunStore.recover_stale` once its process is gone).
Every write is one ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction, so a process killed at any
moment leaves the store at its previous consistent state, and a transition is applied by
exactly one of several concurrent processes.

Opening a store reads it only: an existing file is not modified until a write is requested,
and a file that is not a fathom store (or has another schema version) is left byte-identical.
A :class:`RunStore` must not be carried across ``fork``: open one per process.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
import urllib.parse
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fathom.errors import StoreError
from fathom.files import same_file
from fathom.version import __version__

__all__ = [
    "FINAL_STATUSES",
    "SCHEMA_VERSION",
    "STATUSES",
    "MalformedRunWarning",
    "RunStore",
    "check_not_store",
    "warn_malformed",
]

SCHEMA_VERSION = 1
"""The layout this fathom reads and writes (``PRAGMA user_version``)."""

STATUSES = ("pending", "running", "done", "failed", "diverged")
"""Every status a run can have."""

FINAL_STATUSES = ("done", "failed", "diverged")
"""The statuses :meth:`RunStore.finish` may set."""

BUSY_TIMEOUT_S = 30.0
"""How long a write waits for another process's transaction before failing."""

# a process that started this much later than a run's started_at cannot have claimed it
# (its pid was reused); generous against clock granularity (``btime`` is in whole seconds)
_PID_REUSE_SLACK_S = 5.0

_SCHEMA = f"""
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_key     TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
    config      TEXT NOT NULL,
    metrics     TEXT NOT NULL DEFAULT '{{}}',
    history     TEXT NOT NULL DEFAULT '[]',
    diagnostics TEXT NOT NULL DEFAULT '{{}}',
    time_s      REAL,
    peak_mem_mb REAL,
    error       TEXT,
    message     TEXT NOT NULL DEFAULT '',
    versions    TEXT NOT NULL DEFAULT '{{}}',
    host        TEXT,
    pid         INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    ended_at    TEXT
);
CREATE INDEX runs_status ON runs (status);
CREATE TABLE sweeps (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE sweep_runs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    sweep   TEXT NOT NULL REFERENCES sweeps (name),
    run_key TEXT NOT NULL REFERENCES runs (run_key),
    UNIQUE (sweep, run_key)
);
CREATE INDEX sweep_runs_run ON sweep_runs (run_key);
"""

_COLUMNS = (
    "run_key, status, config, metrics, history, diagnostics, time_s, peak_mem_mb, error, "
    "message, versions, host, pid, attempts, created_at, started_at, ended_at"
)


# columns an imported result leaves as they were when it fills a stored pending/failed run
_KEPT_ON_FILL = frozenset({"run_key", "config", "created_at"})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _json_default(value: Any) -> Any:
    """numpy / torch scalars and arrays (``.item()`` / ``.tolist()``), paths, sets."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value: Any, name: str) -> str:
    try:
        return json.dumps(value, allow_nan=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} cannot be stored as JSON: {_one_line(exc)}") from None


def _number(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or None, got {value!r}") from None
    return out


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}; choose one of: {', '.join(STATUSES)}")


def _proc_start_epoch(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), from /proc; None if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _pid_alive(pid: int, started_at: str | None = None) -> bool:
    """Whether ``pid`` is a live process that may be the one that claimed a run at
    ``started_at``: not a zombie, and (on Linux) not a newer process that reused the pid."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            if stat[stat.rindex(")") + 2 :].split()[0] in ("Z", "X"):
                return False  # exited, not yet reaped by its parent
        except (OSError, ValueError, IndexError):
            pass
        if started_at is not None:
            began = _proc_start_epoch(pid)
            try:
                claimed = datetime.fromisoformat(started_at).timestamp()
            except ValueError:
                return True
            if began is not None and began > claimed + _PID_REUSE_SLACK_S:
                return False
    return True


def _companions(path: Path) -> list[Path]:
    """The files SQLite keeps beside a database: its write-ahead log, shared memory and
    rollback journal."""
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def _check_writable(path: Path) -> None:
    """A store that will be written: the file (and its journal files) and its folder must be
    writable, else one line saying the store is read-only (readers can still open it)."""
    if path.exists() and not os.access(path, os.W_OK):
        raise StoreError(
            f"results store {path} is read-only: it can be listed, exported and reported "
            "but not written; use another store (--store) or make it writable"
        )
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise StoreError(f"cannot create results store {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(
            f"results store {path} is in a read-only folder ({folder}): SQLite writes its "
            "journal beside the store; it can be listed, exported and reported but not "
            "written; use another store (--store)"
        )
    for companion in _companions(path):
        if companion.exists() and not os.access(companion, os.W_OK):
            raise StoreError(
                f"results store {path} is read-only: its journal file {companion.name} is "
                "not writable"
            )


def check_not_store(path: str | Path, store: str | Path, what: str) -> None:
    """Refuse (one line, before any work) an output ``path`` that is the results ``store``
    or one of its journal files (``-wal``, ``-shm``, ``-journal``), through any symbolic or
    hard link: writing it would replace the stored runs.

    Raises:
        StoreError: ``path`` is the store or a journal file of it.
    """
    out, db = Path(path).expanduser(), Path(store).expanduser()
    for target in (db, *_companions(db)):
        if same_file(out, target):
            kind = "results store" if target == db else f"results store's journal ({target.name})"
            raise StoreError(
                f"{what} {out} is the {kind} {db}: writing it would destroy the stored runs; "
                "choose another output path"
            )


def _is_readonly_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text or "unable to open" in text


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection to ``path``: read-write, or for a reader that must never write or create
    anything, read-only. A writable store is opened as usual (and ``query_only`` set by the
    caller), so that SQLite removes its journal files on close; a read-only file is opened
    with ``mode=ro``; in a read-only folder, where SQLite cannot create the WAL's shared
    memory file, with ``immutable=1`` (nobody can be writing it: no journal can be made
    there) unless an unmerged write-ahead log is present."""
    kwargs: dict[str, Any] = {
        "timeout": BUSY_TIMEOUT_S,
        "isolation_level": None,
        "check_same_thread": True,
    }
    if not readonly:
        return sqlite3.connect(str(path), **kwargs)
    folder_writable = os.access(path.absolute().parent, os.W_OK | os.X_OK)
    if folder_writable and os.access(path, os.W_OK):
        return sqlite3.connect(str(path), **kwargs)
    uri = "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro"
    wal = _companions(path)[0]
    if not folder_writable and not (wal.exists() and wal.stat().st_size > 0):
        uri += "&immutable=1"
    return sqlite3.connect(uri, uri=True, **kwargs)


_JSON_TYPES = {
    "config": dict,
    "metrics": dict,
    "history": list,
    "diagnostics": dict,
    "versions": dict,
}


def _parse_row(record: dict[str, Any]) -> str | None:
    """Decode the JSON columns of a row in place; return what is wrong with it (one short
    phrase) or None. A row edited by hand or by another program must not crash a reader."""
    key = record.get("run_key")
    if not isinstance(key, str) or not key:
        return f"run_key is {type(key).__name__}, not text"
    if record.get("status") not in STATUSES:
        return f"unknown status {str(record.get('status'))[:40]!r}"
    for col, kind in _JSON_TYPES.items():
        raw = record[col]
        if not isinstance(raw, str):
            return f"column {col} is {type(raw).__name__}, not JSON text"
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            return f"column {col} is not valid JSON ({_one_line(exc)[:80]})"
        if not isinstance(value, kind):
            return f"column {col} is a JSON {type(value).__name__}, not a {kind.__name__}"
        if col == "history" and not all(isinstance(h, dict) for h in value):
            return "column history is not a list of objects"
        record[col] = value
    for col in ("time_s", "peak_mem_mb"):
        value = record.get(col)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"column {col} is {type(value).__name__}, not a number"
    for col in ("attempts", "pid"):
        value = record.get(col)
        if value is not None and not isinstance(value, int):
            return f"column {col} is {type(value).__name__}, not an integer"
    for col in ("error", "message", "host", "created_at", "started_at", "ended_at"):
        value = record.get(col)
        if value is not None and not isinstance(value, str):
            return f"column {col} is {type(value).__name__}, not text"
    return None


class MalformedRunWarning(UserWarning):
    """A stored run whose row cannot be read: it was skipped, and left as it is."""


def warn_malformed(run_key: str, problem: str) -> None:
    """The default report of a malformed row: a :class:`MalformedRunWarning` naming the run
    (one line on stderr from the ``fathom`` command)."""
    # warn_explicit without a registry: filters apply, but a store read again (another
    # RunStore, another command in the same process) reports its bad rows again
    warnings.warn_explicit(
        f"skipping stored run {run_key}: {problem}",
        MalformedRunWarning,
        __file__,
        sys._getframe().f_lineno,
        module=__name__,
    )


class RunStore:
    """A SQLite results store of runs, keyed by config hash (see the module docstring).

    Args:
        path: the store file.
        create: create the file (and its folder) if missing, and initialise an empty file;
            with ``False`` a missing or empty file raises :class:`StoreError` (for readers).
        readonly: open for reading only (default: ``not create``): nothing is created or
            written, and a read-only store file or folder can be read (``mode=ro``, or
            ``immutable=1`` in a read-only folder); writes raise :class:`StoreError`.

    Attributes:
        malformed: run key -> what is wrong, for every malformed row met so far (rows
            whose JSON columns do not parse or have the wrong type); reads skip them.
        on_malformed: called ``(run_key, problem)`` once per malformed row met
            (default :func:`warn_malformed`: a :class:`MalformedRunWarning`); ``None``
            to stay silent.

    Raises:
        StoreError: one line: the file is missing (``create=False``), a folder, not a
            SQLite database, a SQLite database that is not a fathom store (or lacks a table
            or column this fathom reads), unreadable, of another schema version, or (for a
            writer) read-only or in a read-only folder. The file is left untouched.
    """

    def __init__(
        self, path: str | Path, *, create: bool = True, readonly: bool | None = None
    ) -> None:
        self.path = Path(path)
        self.readonly = (not create) if readonly is None else bool(readonly)
        self.malformed: dict[str, str] = {}
        self.on_malformed: Callable[[str, str], None] | None = warn_malformed
        self._conn: sqlite3.Connection | None = None
        p = self.path
        if str(path) == "":
            raise StoreError("results store needs a file name, got an empty string")
        if p.exists() and not p.is_file():
            kind = "a folder" if p.is_dir() else "not a regular file"
            raise StoreError(f"results store {p} is not a file ({kind})")
        if not p.exists():
            if not create or self.readonly:
                raise StoreError(f"results store not found: {p}")
            _check_writable(p)
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create results store {p}: {_one_line(exc)}") from None
        elif not os.access(p, os.R_OK):
            raise StoreError(f"cannot read results store {p}: permission denied")
        elif not self.readonly:
            _check_writable(p)
        try:
            conn = _connect(p, self.readonly)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open results store {p}: {_one_line(exc)}") from None
        self._conn = conn
        try:
            self._open(create and not self.readonly)
        except BaseException:
            self._conn = None
            conn.close()
            raise

    def _open(self, create: bool) -> None:
        conn, p = self.conn, self.path
        try:
            # reads only: the file is not modified until the checks pass
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            if _is_readonly_error(exc):
                raise StoreError(
                    f"cannot read results store {p}: its folder is read-only and it has an "
                    f"unmerged write-ahead log ({p.name}-wal); open it once where the folder "
                    "is writable"
                ) from None
            raise StoreError(
                f"results store {p} is not a SQLite database ({_one_line(exc)})"
            ) from None
        if version not in (0, SCHEMA_VERSION):
            raise StoreError(
                f"results store {p} has schema version {version}, this fathom reads "
                f"{SCHEMA_VERSION}; use another store (--store) or a matching fathom"
            )
        if version == 0 and tables:
            raise StoreError(
                f"results store {p} is a SQLite database but not a fathom results store "
                f"(tables: {', '.join(sorted(tables))})"
            )
        if version == SCHEMA_VERSION and "runs" not in tables:
            raise StoreError(f"results store {p} has schema version {version} but no runs table")
        if version == 0 and not create:
            raise StoreError(f"results store {p} is empty (no fathom results store was created)")
        if version == SCHEMA_VERSION:
            self._check_layout(tables)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if self.readonly:
                conn.execute("PRAGMA query_only = ON")
                return
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            if version == 0:
                self._initialise()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open results store {p}: {_one_line(exc)}") from None

    def _check_layout(self, tables: set[str]) -> None:
        """The tables and columns this fathom reads exist (a file edited or made by
        another program with the same ``user_version`` is refused in one line)."""
        want = {
            "runs": [c.strip() for c in _COLUMNS.split(",")],
            "sweeps": ["name"],
            "sweep_runs": ["sweep", "run_key"],
            "meta": ["key", "value"],
        }
        for table, columns in want.items():
            if table not in tables:
                raise StoreError(
                    f"results store {self.path} has no {table} table: not a fathom results "
                    f"store of schema {SCHEMA_VERSION}"
                )
            try:
                have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
            except sqlite3.DatabaseError as exc:
                raise StoreError(
                    f"cannot read results store {self.path}: {_one_line(exc)}"
                ) from None
            missing = [c for c in columns if c not in have]
            if missing:
                raise StoreError(
                    f"results store {self.path}: table {table} lacks column(s) "
                    f"{', '.join(missing)}: not a fathom results store of schema {SCHEMA_VERSION}"
                )

    def _initialise(self) -> None:
        with self._write() as conn:
            # another process may have initialised the file since we looked
            if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return
            # executescript() would COMMIT first: run the statements one by one
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            now = _now()
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("fathom_version", __version__),
                    ("created_at", now),
                ],
            )
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ------------------------------------------------------------------ plumbing

    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection (raises StoreError once closed)."""
        if self._conn is None:
            raise StoreError(f"results store {self.path} is closed")
        return self._conn

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on error)."""
        conn = self.conn
        if self.readonly:
            raise StoreError(f"results store {self.path} is open read-only: cannot write it")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write results store {self.path}: {_one_line(exc)}") from None
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise StoreError(f"cannot write results store {self.path}: {_one_line(exc)}") from None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same snapshot."""
        conn = self.conn
        try:
            conn.execute("BEGIN")
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read results store {self.path}: {_one_line(exc)}") from None
        finally:
            if conn.in_transaction:
                conn.rollback()

    def _status_of(self, conn: sqlite3.Connection, run_key: str) -> str:
        row = conn.execute("SELECT status FROM runs WHERE run_key = ?", (run_key,)).fetchone()
        if row is None:
            raise StoreError(f"run {run_key!r} not found in results store {self.path}")
        return row[0]

    # ------------------------------------------------------------------ writes

    def register(self, sweep: str, runs: Sequence[tuple[str, dict[str, Any]]]) -> int:
        """Add ``(run_key, config)`` runs as ``pending`` (those not stored yet) and record them
        as members of ``sweep``, in one transaction.

        A run already stored keeps its row (status, results and config); it is never
        duplicated. Returns how many runs were new.
        """
        if not isinstance(sweep, str) or not sweep:
            raise ValueError(f"sweep name must be a non-empty string, got {sweep!r}")
        rows = []
        for item in runs:
            key, config = item
            if not isinstance(key, str) or not key:
                raise ValueError(f"run_key must be a non-empty string, got {key!r}")
            if not isinstance(config, dict):
                raise ValueError(f"config of run {key!r} must be a dict, got {config!r}")
            rows.append((key, _dumps(config, f"config of run {key!r}")))
        now = _now()
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO sweeps (name, created_at) VALUES (?, ?)", (sweep, now)
            )
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO runs (run_key, status, config, created_at) "
                "VALUES (?, 'pending', ?, ?)",
                [(key, config, now) for key, config in rows],
            )
            new = conn.total_changes - before
            conn.executemany(
                "INSERT OR IGNORE INTO sweep_runs (sweep, run_key) VALUES (?, ?)",
                [(sweep, key) for key, _ in rows],
            )
        return new

    def claim(
        self,
        run_key: str,
        *,
        retry_failed: bool = False,
        pid: int | None = None,
        host: str | None = None,
    ) -> bool:
        """Atomically move a ``pending`` run (or a ``failed`` one, with ``retry_failed``) to
        ``running``: ``attempts += 1``, ``started_at`` = now, earlier results cleared.

        Args:
            run_key: the run.
            retry_failed: also claim a ``failed`` run (never a ``diverged`` one).
            pid: the process that will finish it (default: this process).
            host: its host (default: this host).

        Returns:
            True if this call claimed it; False if it was not claimable (running, done …).

        Raises:
            StoreError: no run ``run_key``.
        """
        claimable = ("pending", "failed") if retry_failed else ("pending",)
        pid = os.getpid() if pid is None else int(pid)
        host = socket.gethostname() if host is None else host
        with self._write() as conn:
            if self._status_of(conn, run_key) not in claimable:
                return False
            conn.execute(
                "UPDATE runs SET status = 'running', attempts = attempts + 1, started_at = ?, "
                "ended_at = NULL, pid = ?, host = ?, metrics = '{}', history = '[]', "
                "diagnostics = '{}', time_s = NULL, peak_mem_mb = NULL, error = NULL, "
                "message = '' WHERE run_key = ?",
                (_now(), pid, host, run_key),
            )
        return True

    def finish(
        self,
        run_key: str,
        *,
        status: str,
        metrics: dict[str, Any],
        history: list[dict[str, Any]],
        diagnostics: dict[str, list[float]] | None = None,
        time_s: float | None = None,
        peak_mem_mb: float | None = None,
        error: str | None = None,
        message: str = "",
        versions: dict[str, Any] | None = None,
    ) -> None:
        """Record the outcome of a ``running`` run (``done``, ``failed`` or ``diverged``) and
        ``ended_at`` = now, in one transaction. NaN / inf in ``metrics``, ``history`` and
        ``diagnostics`` are stored and read back; a NaN ``time_s`` / ``peak_mem_mb`` is
        stored as None.

        Raises:
            ValueError: ``status`` is not a final status, or a value cannot be stored.
            StoreError: no run ``run_key``, or it is not ``running`` (a stale worker must not
                overwrite a run that was re-claimed or finished).
        """
        _check_status(status)
        if status not in FINAL_STATUSES:
            raise ValueError(
                f"finish status must be one of {', '.join(FINAL_STATUSES)}, got {status!r}"
            )
        values = (
            status,
            _dumps(dict(metrics or {}), "metrics"),
            _dumps(list(history or []), "history"),
            _dumps(dict(diagnostics or {}), "diagnostics"),
            _number(time_s, "time_s"),
            _number(peak_mem_mb, "peak_mem_mb"),
            None if error is None else str(error),
            str(message or ""),
            _dumps(dict(versions or {}), "versions"),
            _now(),
            run_key,
        )
        with self._write() as conn:
            current = self._status_of(conn, run_key)
            if current != "running":
                raise StoreError(
                    f"run {run_key!r} is {current}, not running: cannot finish it as {status}"
                )
            conn.execute(
                "UPDATE runs SET status = ?, metrics = ?, history = ?, diagnostics = ?, "
                "time_s = ?, peak_mem_mb = ?, error = ?, message = ?, versions = ?, "
                "ended_at = ? WHERE run_key = ?",
                values,
            )

    def add_results(self, records: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Store finished runs taken from elsewhere (another store's export), in one
        transaction: all or nothing.

        Each record is a run as :meth:`runs` returns it (``run_key``, ``sweeps``, ``status``,
        ``config``, ``metrics``, ``history`` …) with a final status. A run this store lacks is
        added with its results, provenance and times (``pid`` cleared: it named a process
        elsewhere); a ``pending`` run, or a ``failed`` one whose import is ``done`` or
        ``diverged``, gets the imported results; any other stored run (running, done,
        diverged) is kept as it is: results already stored are never replaced or duplicated.
        Every record's sweeps are recorded as memberships either way.

        Returns:
            ``{"added": …, "filled": …, "kept": …}`` run counts.

        Raises:
            StoreError: a record that is not a well-formed finished run (named by its key and
                position); nothing is written then.
        """
        rows = []
        for i, record in enumerate(records):
            row = self._result_row(i, record)
            sweeps = record.get("sweeps") or []
            if not isinstance(sweeps, list) or not all(isinstance(x, str) and x for x in sweeps):
                raise StoreError(f"run {i + 1} ({row['run_key']}): sweeps must be a list of names")
            rows.append((row, sweeps))
        counts = {"added": 0, "filled": 0, "kept": 0}
        names = [c.strip() for c in _COLUMNS.split(",")]
        now = _now()
        with self._write() as conn:
            for row, sweeps in rows:
                key = row["run_key"]
                found = conn.execute("SELECT status FROM runs WHERE run_key = ?", (key,)).fetchone()
                values = [row[n] for n in names]
                if found is None:
                    conn.execute(
                        f"INSERT INTO runs ({_COLUMNS}) VALUES ({', '.join('?' * len(names))})",
                        values,
                    )
                    counts["added"] += 1
                elif found[0] == "pending" or (
                    found[0] == "failed" and row["status"] in ("done", "diverged")
                ):
                    assignments = ", ".join(f"{n} = ?" for n in names if n not in _KEPT_ON_FILL)
                    conn.execute(
                        f"UPDATE runs SET {assignments} WHERE run_key = ?",
                        [row[n] for n in names if n not in _KEPT_ON_FILL] + [key],
                    )
                    counts["filled"] += 1
                else:
                    counts["kept"] += 1
                # memberships as register() records them (UNIQUE (sweep, run_key))
                conn.executemany(
                    "INSERT OR IGNORE INTO sweeps (name, created_at) VALUES (?, ?)",
                    [(sweep, now) for sweep in sweeps],
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO sweep_runs (sweep, run_key) VALUES (?, ?)",
                    [(sweep, key) for sweep in sweeps],
                )
        return counts

    @staticmethod
    def _result_row(index: int, record: Any) -> dict[str, Any]:
        """One imported record as a row of column values (JSON columns as text), checked as
        a stored row is (:func:`_parse_row`) and for a final status."""
        where = f"run {index + 1}"
        if not isinstance(record, dict):
            raise StoreError(f"{where} is a {type(record).__name__}, not a run record")
        key = record.get("run_key")
        if isinstance(key, str) and key:
            where = f"{where} ({key[:16]})"
        row: dict[str, Any] = {}
        for name in (c.strip() for c in _COLUMNS.split(",")):
            value = record.get(name)
            if name in _JSON_TYPES:
                default = _JSON_TYPES[name]()
                try:
                    value = json.dumps(default if value is None else value, allow_nan=True)
                except (TypeError, ValueError) as exc:
                    raise StoreError(
                        f"{where}: {name} cannot be stored ({_one_line(exc)})"
                    ) from None
            row[name] = value
        row["pid"] = None
        row["attempts"] = row["attempts"] if row["attempts"] is not None else 1
        if row["message"] is None:
            row["message"] = ""
        if row["created_at"] is None:
            row["created_at"] = row["started_at"] or _now()
        problem = _parse_row(dict(row))
        if problem is not None:
            raise StoreError(f"{where}: {problem}")
        if row["status"] not in FINAL_STATUSES:
            raise StoreError(
                f"{where}: status {row['status']} is not final ({', '.join(FINAL_STATUSES)})"
            )
        return row

    def release(self, run_key: str) -> None:
        """Return an interrupted ``running`` run to ``pending`` (clearing ``pid`` and
        ``started_at``); a run in any other status is left as it is.

        Raises:
            StoreError: no run ``run_key``.
        """
        with self._write() as conn:
            if self._status_of(conn, run_key) == "running":
                conn.execute(
                    "UPDATE runs SET status = 'pending', pid = NULL, started_at = NULL "
                    "WHERE run_key = ?",
                    (run_key,),
                )

    @staticmethod
    def _running_rows(
        conn: sqlite3.Connection, host: str | None
    ) -> list[tuple[str, int | None, str | None]]:
        """``(run_key, pid, started_at)`` of the ``running`` runs claimed on ``host`` (default:
        this host) or on no recorded host, in insertion order."""
        host = socket.gethostname() if host is None else host
        return conn.execute(
            "SELECT run_key, pid, started_at FROM runs WHERE status = 'running' "
            "AND (host = ? OR host IS NULL) ORDER BY id",
            (host,),
        ).fetchall()

    def recover_stale(self, *, host: str | None = None, exclude: Collection[str] = ()) -> list[str]:
        """Return to ``pending`` the ``running`` runs of ``host`` (default: this host) whose
        process is gone, or that have no pid; runs of other hosts, and those in ``exclude``
        (e.g. malformed rows, which are never rewritten), are left alone.

        A process counts as gone when it does not exist, is a zombie, or (on Linux) started
        after the run was claimed (its pid was reused). Returns the keys reset, in order.
        """
        with self._write() as conn:
            rows = self._running_rows(conn, host)
            stale = [
                key
                for key, pid, started in rows
                if key not in exclude and (pid is None or not _pid_alive(pid, started))
            ]
            conn.executemany(
                "UPDATE runs SET status = 'pending', pid = NULL, started_at = NULL "
                "WHERE run_key = ? AND status = 'running'",
                [(key,) for key in stale],
            )
        return stale

    # ------------------------------------------------------------------ reads

    def _records(
        self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]
    ) -> list[dict[str, Any]]:
        keys = [row[0] for row in rows]
        member: dict[str, list[str]] = {key: [] for key in keys}
        if keys:
            query = "SELECT run_key, sweep FROM sweep_runs ORDER BY id"
            if len(keys) == 1:
                query = "SELECT run_key, sweep FROM sweep_runs WHERE run_key = ? ORDER BY id"
            for key, sweep in conn.execute(query, keys if len(keys) == 1 else ()):
                if key in member:
                    member[key].append(sweep)
        names = [c.strip() for c in _COLUMNS.split(",")]
        out = []
        for row in rows:
            record = dict(zip(names, row, strict=True))
            problem = _parse_row(record)
            if problem is not None:
                self._report_malformed(str(record["run_key"]), problem)
                continue
            out.append(
                {
                    "run_key": record["run_key"],
                    "sweeps": member[record["run_key"]],
                    **{k: v for k, v in record.items() if k != "run_key"},
                }
            )
        return out

    def _report_malformed(self, run_key: str, problem: str) -> None:
        """Remember a malformed row (skipped by every read) and warn once per row."""
        if run_key in self.malformed:
            return
        self.malformed[run_key] = problem
        on_malformed = self.on_malformed
        if on_malformed is not None:
            on_malformed(run_key, problem)

    def malformed_rows(self) -> dict[str, str]:
        """Every stored run whose row cannot be read (malformed JSON, a wrong type): run key
        -> what is wrong. Such rows are skipped by :meth:`runs` and :meth:`get`, never
        rewritten; they are reported by run key (see :attr:`on_malformed`)."""
        names = [c.strip() for c in _COLUMNS.split(",")]
        found: dict[str, str] = {}
        with self._read() as conn:
            for row in conn.execute(f"SELECT {_COLUMNS} FROM runs ORDER BY id"):
                record = dict(zip(names, row, strict=True))
                problem = _parse_row(record)
                if problem is not None:
                    found[str(record["run_key"])] = problem
        for key, problem in found.items():
            self._report_malformed(key, problem)
        return found

    def get(self, run_key: str) -> dict[str, Any] | None:
        """The record of ``run_key`` (see :meth:`runs`), or None if it is not stored (or its
        row is malformed: then reported, see :attr:`malformed`)."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE run_key = ?", (run_key,)
            ).fetchall()
            records = self._records(conn, rows)
            return records[0] if records else None

    def runs(
        self, *, sweep: str | None = None, status: str | Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Run records, in insertion order (of the sweep's membership, with ``sweep``).

        Each record has ``run_key``, ``sweeps`` (list of names), ``status``, ``config``,
        ``metrics`` ({} until finished), ``history`` (per-epoch dicts), ``diagnostics``
        (name -> per-layer floats), ``time_s``, ``peak_mem_mb``, ``error``, ``message``,
        ``versions`` (provenance: package versions, device, threads, and the ``executor``,
        ``hostname`` and ``ray_node`` that ran it), ``host`` and ``pid`` (of the process that
        claimed it), ``attempts``, ``created_at``, ``started_at`` and ``ended_at`` (ISO-8601
        UTC strings or None).

        Args:
            sweep: only the runs of this sweep (none if it is unknown).
            status: only runs with this status (or one of these statuses).

        Raises:
            ValueError: an unknown status.
        """
        wanted: list[str] | None = None
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            for s in wanted:
                _check_status(s)
        where, params = [], []
        if wanted is not None:
            where.append(f"r.status IN ({', '.join('?' * len(wanted))})")
            params.extend(wanted)
        cols = ", ".join(f"r.{c.strip()}" for c in _COLUMNS.split(","))
        if sweep is not None:
            sql = f"SELECT {cols} FROM sweep_runs m JOIN runs r ON r.run_key = m.run_key"
            where.insert(0, "m.sweep = ?")
            params.insert(0, sweep)
            order = "m.id"
        else:
            sql, order = f"SELECT {cols} FROM runs r", "r.id"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order}"
        with self._read() as conn:
            return self._records(conn, conn.execute(sql, params).fetchall())

    def statuses(self) -> dict[str, str]:
        """Run key -> status of every stored run: a cheap read (no JSON column is parsed,
        so a malformed row is listed too)."""
        with self._read() as conn:
            return {str(k): str(s) for k, s in conn.execute("SELECT run_key, status FROM runs")}

    def in_flight(self, run_keys: Collection[str], *, host: str | None = None) -> dict[str, int]:
        """The runs among ``run_keys`` that a live process of ``host`` (default: this host) is
        training: run key -> that process's pid. A claim whose process is gone is not listed,
        nor is a run of another host (whether its process lives cannot be told from here); a
        claim with no recorded host counts as this host's, as in :meth:`recover_stale`."""
        wanted = set(run_keys)
        with self._read() as conn:
            rows = self._running_rows(conn, host)
        return {
            str(key): int(pid)
            for key, pid, started in rows
            if key in wanted and pid is not None and _pid_alive(pid, started)
        }

    def counts(self, *, sweep: str | None = None) -> dict[str, int]:
        """How many runs have each status (every status present, 0 by default)."""
        if sweep is None:
            sql, params = "SELECT status, COUNT(*) FROM runs GROUP BY status", ()
        else:
            sql = (
                "SELECT r.status, COUNT(*) FROM sweep_runs m JOIN runs r "
                "ON r.run_key = m.run_key WHERE m.sweep = ? GROUP BY r.status"
            )
            params = (sweep,)
        out = dict.fromkeys(STATUSES, 0)
        with self._read() as conn:
            for status, n in conn.execute(sql, params):
                out[status] = n
        return out

    def sweeps(self) -> list[str]:
        """The names of the sweeps registered in the store, oldest first."""
        with self._read() as conn:
            return [row[0] for row in conn.execute("SELECT name FROM sweeps ORDER BY id")]

    def meta(self) -> dict[str, str]:
        """The ``meta`` table: ``schema_version``, ``fathom_version``, ``created_at``."""
        with self._read() as conn:
            return dict(conn.execute("SELECT key, value FROM meta"))
