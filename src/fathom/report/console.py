"""Terminal output with rich: result tables and progress bars."""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

__all__ = [
    "PlainProgress",
    "RunsInFlight",
    "console",
    "datasets_table",
    "depth_table",
    "err_console",
    "progress_bar",
    "results_table",
    "set_verbosity",
    "verbosity",
]

# rich wraps to 80 columns when output is not a terminal; tables read better wider in logs
console = Console(width=None if sys.stdout.isatty() else 140)
# progress and status go to stderr so stdout holds only results
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)


_VERBOSITY = 1
PROGRESS_EVERY_S = 30.0
"""Seconds between two plain progress lines (stderr not a terminal);
``$FATHOM_PROGRESS_EVERY`` overrides it."""


def set_verbosity(level: int) -> None:
    """0: quiet (``--quiet``: no progress or status lines, only results, warnings and
    errors), 1: normal, 2: verbose (``--verbose``: a progress line per step)."""
    global _VERBOSITY
    _VERBOSITY = level
    err_console.quiet = level <= 0


def verbosity() -> int:
    """The level :func:`set_verbosity` set (1 unless a command said otherwise)."""
    return _VERBOSITY


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0.0
    shown: float = -1.0


class PlainProgress:
    """Progress as plain lines on stderr, for logs and pipes where a bar shows nothing:
    ``description: 3/10 (30%) elapsed 1:02 eta 2:25`` every ``every`` seconds while work goes
    on (from a timer, so a long step still reports), on every update when ``every`` is 0,
    and once at the end. The subset of :class:`rich.progress.Progress` fathom uses."""

    def __init__(self, every: float, stream: IO[str] | None = None) -> None:
        self.every = every
        self._stream = stream
        self._tasks: list[_Task] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()

    def __enter__(self) -> PlainProgress:
        self._t0 = time.monotonic()
        if self.every > 0:
            self._thread = threading.Thread(target=self._tick, name="fathom-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if exc_type is None:  # an error's one line is not to be followed by progress
            self._print_all(final=True)

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        """A new task; returns its id."""
        with self._lock:
            self._tasks.append(_Task(description, total))
            return len(self._tasks) - 1

    def update(
        self,
        task_id: int,
        *,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        total: float | None = None,
        **_: Any,
    ) -> None:
        """Set or advance a task's count, description or total."""
        with self._lock:
            task = self._tasks[task_id]
            if completed is not None:
                task.completed = completed
            if advance is not None:
                task.completed += advance
            if description is not None:
                task.description = description
            if total is not None:
                task.total = total
        if self.every == 0:
            self._print_all()

    def line(self, task: _Task) -> str:
        """``description: k/n (p%) elapsed m:ss eta m:ss`` of ``task``."""
        elapsed = time.monotonic() - self._t0
        done, total = task.completed, task.total
        count = f"{done:g}" if total is None else f"{done:g}/{total:g}"
        if total:
            count += f" ({100 * done / total:.0f}%)"
        eta = ""
        if total and 0 < done < total:
            eta = f" eta {_clock(elapsed * (total - done) / done)}"
        return f"{task.description}: {count} elapsed {_clock(elapsed)}{eta}"

    def _print_all(self, final: bool = False) -> None:
        with self._lock:
            lines = []
            for task in self._tasks:
                if final and task.shown == task.completed:
                    continue
                task.shown = task.completed
                lines.append(self.line(task))
        stream = self._stream or sys.stderr
        for text in lines:
            stream.write(text + "\n")
        stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self._print_all()


class RunsInFlight:
    """A sweep's progress task, described by the latest finished run and then each run in
    flight with the last epoch it reported, e.g. ``cora gcn depth 8 seed 1: done test
    accuracy 80.1% · running: cora gcn depth 8 seed 2 epoch 37/400``.

    ``epoch`` and ``ended`` may be called from different threads (a worker pool's reports
    arrive on a thread of their own, possibly after the run's end, and are then ignored).

    Args:
        progress: the display (:func:`progress_bar`'s), where this adds the sweep's task.
        name: the task's description until the first run ends.
        labels: a run's label by run key (a run not in it shows its key's first 8 digits).
    """

    def __init__(
        self,
        progress: Progress | PlainProgress,
        name: str,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.progress = progress
        self.task = progress.add_task(name, total=None)
        self.labels: dict[str, str] = dict(labels or {})
        self._latest = name
        self._epochs: dict[str, tuple[int, int]] = {}
        self._ended: set[str] = set()
        self._lock = threading.Lock()

    def label(self, run_key: str) -> str:
        """The run's label."""
        return self.labels.get(run_key, run_key[:8])

    def start(self, total: int) -> None:
        """``total`` runs are about to run (a
        :data:`~fathom.experiments.sweep.StartCallback`): the count restarts at 0 of ``total``,
        so that it shows before the first run ends."""
        self.progress.update(self.task, total=total, completed=0)

    def epoch(self, run_key: str, epoch: int, epochs: int) -> None:
        """Run ``run_key`` has finished epoch ``epoch`` of ``epochs`` (0: budget unknown)
        (an :data:`~fathom.experiments.sweep.EpochProgress`)."""
        with self._lock:
            if run_key in self._ended:
                return
            self._epochs[run_key] = (epoch, epochs)
        self.progress.update(self.task, description=self._describe())

    def ended(self, run_key: str, outcome: str, completed: int, total: int) -> None:
        """Run ``run_key`` is finished (it leaves the line): ``completed`` of ``total``, the
        line led by its label and ``outcome``."""
        with self._lock:
            self._ended.add(run_key)
            self._epochs.pop(run_key, None)
            self._latest = f"{self.label(run_key)}: {outcome}"
        self.progress.update(
            self.task, total=total, completed=completed, description=self._describe()
        )

    def _describe(self) -> str:
        with self._lock:
            running = [
                f"{self.label(key)} epoch {epoch}" + (f"/{total}" if total else "")
                for key, (epoch, total) in self._epochs.items()
            ]
            latest = self._latest
        return f"{latest} · running: {'; '.join(running)}" if running else latest


def progress_bar(disable: bool = False) -> Progress | PlainProgress:
    """Progress on stderr with count, elapsed time and ETA: a rich bar on a terminal; plain
    lines (:class:`PlainProgress`) every :data:`PROGRESS_EVERY_S` seconds when stderr is not
    a terminal (logs), or per step with ``--verbose``; nothing with ``disable`` or
    ``--quiet``."""
    if disable or _VERBOSITY <= 0:
        return Progress(console=err_console, disable=True)
    if _VERBOSITY >= 2:
        return PlainProgress(0.0)
    if not err_console.is_terminal:
        env = os.environ.get("FATHOM_PROGRESS_EVERY")
        try:
            every = float(env) if env else PROGRESS_EVERY_S
        except ValueError:
            every = PROGRESS_EVERY_S
        return PlainProgress(every if every > 0 and math.isfinite(every) else PROGRESS_EVERY_S)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


def pct(mean: float | None, std: float | None = None) -> str:
    """``81.50 ± 0.52`` from fractions; ``–`` when missing."""
    if mean is None:
        return "–"
    return f"{100 * mean:.2f}" if std is None else f"{100 * mean:.2f} ± {100 * std:.2f}"


_FRACTIONS = ("_acc", "_auc", "_ap", "_hits", "_oa", "_miou", "_macc")


def _cell(key: str, mean: float | None, std: float | None = None) -> str:
    """A fraction metric in % (:func:`pct`); any other as its value (``4.2 ± 0.1``)."""
    if key.endswith(_FRACTIONS) or mean is None:
        return pct(mean, std)
    return f"{mean:.4g}" if std is None else f"{mean:.4g} ± {std:.2g}"


def results_table(title: str, runs: Sequence[Mapping[str, Any]], agg: Mapping[str, Any]) -> Table:
    """Per-run rows (per seed, or per seed and fold) and a final mean ± std row, in %.

    Classification shows train / val / test accuracy; link prediction and autoencoders
    (runs with ``test_auc``) show val AUC, test AUC, test AP and test Hits@K; segmentation
    (runs with ``test_miou``) shows val mIoU, test OA, test mIoU and test mAcc; a task with
    none of these shows its first four validation / test metrics (fractions in %, others as
    they are).
    """
    if any("test_auc" in r for r in runs):
        metrics = [
            ("val auc", "val_auc"),
            ("test auc", "test_auc"),
            ("test ap", "test_ap"),
            ("test hits", "test_hits"),
        ]
    elif any("test_miou" in r for r in runs):
        metrics = [
            ("val miou", "val_miou"),
            ("test oa", "test_oa"),
            ("test miou", "test_miou"),
            ("test macc", "test_macc"),
        ]
    else:
        metrics = [("train acc", "train_acc"), ("val acc", "val_acc"), ("test acc", "test_acc")]
    if not any(key in r for r in runs for _, key in metrics):
        # a task of other metrics: its first validation / test metrics, as they are
        found = dict.fromkeys(
            k
            for r in runs
            for k, v in r.items()
            if k.startswith(("val_", "test_"))
            and not k.endswith("_loss")
            and isinstance(v, (int, float))
        )
        metrics = [(k.replace("_", " "), k) for k in list(found)[:4]]
    folds = any("fold" in r for r in runs)
    table = Table(title=title, title_justify="left")
    columns = ["seed", *(["fold"] if folds else []), *(name for name, _ in metrics)]
    for col in (*columns, "best epoch", "epochs", "time (s)", "status"):
        table.add_column(col, justify="left" if col in ("seed", "status") else "right")
    for r in runs:
        table.add_row(
            str(r["seed"]),
            *([str(r.get("fold", ""))] if folds else []),
            *(_cell(key, r.get(key)) for _, key in metrics),
            str(r["best_epoch"]),
            str(r["epochs"]),
            f"{r['time_s']:.1f}",
            r["status"],
        )
    table.add_section()
    table.add_row(
        f"mean ± std (n={agg['n']})",
        *([""] if folds else []),
        *(_cell(key, agg.get(f"{key}_mean"), agg.get(f"{key}_std")) for _, key in metrics),
        "",
        f"{agg.get('epochs_mean', 0):.0f}",
        f"{agg.get('time_s_mean', 0):.1f}",
        f"{agg['n_diverged']} diverged" if agg["n_diverged"] else "",
        style="bold",
    )
    return table


def depth_table(title: str, rows: Sequence[Mapping[str, Any]]) -> Table:
    """Models as rows, depths as columns: test accuracy mean ± std (%)."""
    depths = sorted({r["depth"] for r in rows})
    table = Table(title=title, title_justify="left")
    table.add_column("model")
    for d in depths:
        table.add_column(f"depth {d}", justify="right")
    for model in dict.fromkeys(r["model"] for r in rows):
        cells = {r["depth"]: r for r in rows if r["model"] == model}
        table.add_row(
            model,
            *(
                pct(cells[d].get("test_acc_mean"), cells[d].get("test_acc_std"))
                if d in cells
                else "–"
                for d in depths
            ),
        )
    return table


def datasets_table(rows: Sequence[Mapping[str, Any]], title: str = "datasets") -> Table:
    """The registered datasets with statistics and where they were found (a ``graphs``
    column when a row has ``graphs``: graph-classification datasets; ``–`` in the others)."""
    table = Table(title=title, title_justify="left")
    graphs = any("graphs" in r for r in rows)
    numeric = ("graphs", "nodes", "edges", "features", "classes")
    columns = ("name", *(("graphs",) if graphs else ()), *numeric[1:], "split", "available")
    for col in (*columns, "path"):
        table.add_column(col, justify="right" if col in numeric else "left")
    for r in rows:
        where = r["availability"]
        table.add_row(
            r["name"],
            *((f"{r['graphs']:,}" if "graphs" in r else "–",) if graphs else ()),
            f"{r['nodes']:,}",
            f"{r['edges']:,}",
            f"{r['features']:,}",
            str(r["classes"]),
            r["split"],
            f"[red]{where}[/red]" if where == "missing" else where,
            str(r["path"] or ""),
        )
    return table


def runs_table(records: Sequence[Mapping[str, Any]]) -> Table:
    """One row per stored run: key, status, the model's main axes, seed and test accuracy."""
    table = Table(title=f"{len(records)} runs", title_justify="left")
    for col in (
        "run",
        "status",
        "dataset",
        "model",
        "depth",
        "skip",
        "norm",
        "seed",
        "test acc",
        "time (s)",
    ):
        table.add_column(
            col, justify="right" if col in ("depth", "seed", "test acc", "time (s)") else "left"
        )
    for r in records:
        cfg, m = r["config"], r["config"]["model"]
        time_s = r.get("time_s")
        table.add_row(
            r["run_key"][:10],
            r["status"],
            str(cfg["data"]["name"]),
            m["conv"] if m.get("arch", "deep") == "deep" else m["arch"],
            str(m["depth"]),
            m["skip"],
            m["norm"],
            str(cfg["seed"]),
            pct(r["metrics"].get("test_acc")),
            f"{time_s:.1f}" if time_s is not None else "–",
        )
    return table
