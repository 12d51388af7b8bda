"""``fathom sweep``, ``runs``, ``export`` and ``report``: a results store, filled and read."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from fathom.cli.commands import add_command
from fathom.cli.executors import (
    add_executor_flags,
    executor_from_args,
    ray_session,
    skips_local_device_check,
)
from fathom.cli.flags import (
    RUNTIME_KEYS,
    add_config_flags,
    add_max_runs,
    add_threads,
    add_tracker_flags,
    given_flags,
    open_tracker_from_args,
    positive_int,
    threads_per_run,
)
from fathom.config import apply_overrides, config_hash, config_to_dict
from fathom.experiments.store import STATUSES

__all__ = ["export", "import_", "register", "report", "runs", "sweep"]


def _add_status_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--status",
        choices=STATUSES,
        metavar="STATUS",
        help=f"only runs with this status ({', '.join(STATUSES)})",
    )


def register(sub: Any) -> None:
    """Add ``fathom sweep``, ``runs``, ``export`` and ``report``."""
    parser = add_command(
        sub,
        "sweep",
        outputs={"json": "file", "store": "file"},
        inputs={"spec": "spec"},
        description="Expand a sweep spec (base config + grid/zip axes + "
        "exclusions) and run every run the store lacks. --device applies to the runs this "
        "sweep registers (a run already in the store keeps the device it was registered with).",
    )
    parser.add_argument("spec", help="sweep YAML file")
    parser.add_argument("--store", default="runs.db", help="SQLite results store (default runs.db)")
    parser.add_argument(
        "--workers", type=positive_int, help="parallel worker processes (default 1)"
    )
    add_threads(parser, per_worker=True)
    add_executor_flags(parser)
    add_config_flags(parser, RUNTIME_KEYS)
    parser.add_argument("--retry-failed", action="store_true", help="re-run runs that failed")
    parser.add_argument("--dry-run", action="store_true", help="list the runs, run nothing")
    add_max_runs(parser)
    parser.add_argument("--json", metavar="PATH", help="write the sweep summary as JSON")
    add_tracker_flags(parser)
    parser.set_defaults(run=sweep, overrides_ok=False)

    parser = add_command(sub, "runs", outputs={"json": "file"}, inputs={"store": "store"})
    parser.add_argument("store", help="SQLite results store")
    parser.add_argument("--sweep", help="only runs of this sweep")
    _add_status_flag(parser)
    parser.add_argument("--json", metavar="PATH", help="write the listed runs as JSON")
    add_threads(parser)
    parser.set_defaults(run=runs, overrides_ok=False)

    parser = add_command(sub, "export", outputs={"out": "file"}, inputs={"store": "store"})
    parser.add_argument("store", help="SQLite results store")
    parser.add_argument("--format", choices=("json", "csv"), default="json")
    parser.add_argument("--sweep", help="only runs of this sweep")
    _add_status_flag(parser)
    parser.add_argument("--out", metavar="PATH", help="file to write (default: stdout)")
    parser.add_argument("--no-history", action="store_true", help="leave out per-epoch history")
    add_threads(parser)
    parser.set_defaults(run=export, overrides_ok=False)

    parser = add_command(sub, "import", outputs={"store": "file"}, inputs={"files": "file"})
    parser.add_argument("files", nargs="+", metavar="EXPORT", help="JSON from fathom export")
    parser.add_argument("--store", default="runs.db", help="SQLite results store (default runs.db)")
    add_threads(parser)
    parser.set_defaults(run=import_, overrides_ok=False)

    parser = add_command(
        sub, "report", outputs={"json": "file", "out": "dir"}, inputs={"store": "store"}
    )
    parser.add_argument("store", help="SQLite results store")
    parser.add_argument("--sweep", help="only runs of this sweep")
    parser.add_argument("--out", default="report", help="output folder (default: report)")
    parser.add_argument("--json", metavar="PATH", help="write the aggregated groups as JSON")
    add_threads(parser)
    parser.set_defaults(run=report, overrides_ok=False)


def sweep(args: argparse.Namespace) -> int:
    """Run (or, with ``--dry-run``, list) the runs of a sweep spec the store lacks."""
    from fathom.devices import resolve_device
    from fathom.experiments.spec import DEFAULT_MAX_RUNS, describe, expand, load_spec
    from fathom.experiments.store import RunStore
    from fathom.experiments.sweep import run_configs
    from fathom.files import write_json
    from fathom.report.console import RunsInFlight, console, err_console, pct, progress_bar

    executor = executor_from_args(args)  # Ray missing, or a flag of the other executor
    workers = args.workers or 1
    max_runs = DEFAULT_MAX_RUNS if args.max_runs is None else args.max_runs
    spec = load_spec(args.spec, max_runs=max_runs)
    # every bad input fails here, in one line, before the progress bar draws on stderr: a bad
    # point of the spec or device, then a store that is not a fathom store of this schema
    configs = expand(spec, max_runs=max_runs)
    runtime = given_flags(args, RUNTIME_KEYS)
    if runtime:
        configs = [apply_overrides(cfg, runtime) for cfg in configs]
    if not skips_local_device_check(executor, [c.device for c in configs]):
        for cfg in {(c.device, c.train.precision): c for c in configs}.values():
            resolve_device(cfg.device, cfg.train.precision)
    if args.dry_run:
        info = describe(spec)
        console.print(
            f"sweep {spec.name!r}: {len(configs)} runs over axes {', '.join(info.get('axes', []))}"
        )
        for cfg in configs:
            m = cfg.model
            console.print(
                f"  {cfg.data.name} conv={m.conv} depth={m.depth} skip={m.skip} "
                f"norm={m.norm} seed={cfg.seed}"
            )
        if args.json:
            write_json(args.json, {**info, "runs": [config_to_dict(c) for c in configs]})
        return 0
    RunStore(args.store).close()
    tracker = open_tracker_from_args(args, spec.name)
    session = ray_session(executor, args.store, configs, retry_failed=args.retry_failed)
    with tracker or contextlib.nullcontext(), session:
        with progress_bar() as progress:
            in_flight = RunsInFlight(
                progress,
                f"sweep {spec.name}",
                {
                    config_hash(c): f"depth {c.model.depth} skip {c.model.skip} seed {c.seed}"
                    for c in configs
                },
            )

            def on_run_end(done: int, total: int, record: dict[str, Any]) -> None:
                if tracker is not None:
                    tracker.log_run(record)
                outcome = f"{record['status']} test {pct(record['metrics'].get('test_acc'))}%"
                in_flight.ended(record.get("run_key", ""), outcome, done, total)

            summary = run_configs(
                spec.name,
                configs,
                args.store,
                workers=workers,
                retry_failed=args.retry_failed,
                threads=threads_per_run(args.threads, workers) if executor == "local" else None,
                on_run_end=on_run_end,
                on_epoch=in_flight.epoch,
                on_start=in_flight.start,
                # --device also moves runs stored earlier with another device (not in their key)
                device=dict(runtime).get("device"),
                executor=executor,
            )
        # one line, however long the store's path (no wrapping) and whatever it holds
        err_console.print(summary.line(), soft_wrap=True, markup=False, highlight=False)
        if args.json:
            write_json(args.json, summary.__dict__)
        if tracker is not None:
            tracker.finish(
                artifacts=[args.json] if args.json else [],
                status="KILLED" if summary.interrupted else "FINISHED",
            )
    return 130 if summary.interrupted else 0


def _open_store(path: str) -> Any:
    from fathom.experiments.store import RunStore

    return RunStore(path, create=False)


def runs(args: argparse.Namespace) -> int:
    """Print a store's runs (and their counts by status)."""
    from fathom.report.console import console, runs_table

    with _open_store(args.store) as store:
        records = store.runs(sweep=args.sweep, status=args.status)
        counts = store.counts(sweep=args.sweep)
    console.print(runs_table(records))
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()))
    if args.json:
        from fathom.files import write_json

        write_json(args.json, [{k: v for k, v in r.items() if k != "history"} for r in records])
    return 0


def export(args: argparse.Namespace) -> int:
    """Write a store's runs as JSON or CSV (to stdout or ``--out``, never onto the store)."""
    from fathom.experiments.export import export_store

    text = export_store(
        args.store,
        args.out,
        fmt=args.format,
        sweep=args.sweep,
        status=args.status,
        history=not args.no_history,
    )
    if not args.out:
        sys.stdout.write(text)
    return 0


def import_(args: argparse.Namespace) -> int:
    """Read JSON exports into a store (every file checked before anything is written)."""
    from fathom.experiments.export import import_runs
    from fathom.report.console import err_console

    counts = import_runs(args.files, args.store)
    err_console.print(
        f"{args.store}: {counts['added']} runs added, {counts['filled']} filled "
        f"(were pending or failed), {counts['kept']} already stored and kept, "
        f"{counts['skipped']} not finished and skipped"
    )
    return 0


def report(args: argparse.Namespace) -> int:
    """Write a store's tables and plots; print the tables."""
    from fathom.files import write_json
    from fathom.report.console import console, err_console
    from fathom.report.from_store import report_store
    from fathom.report.tables import depth_pivot_rich, rich_table

    files = report_store(args.store, args.out, sweep=args.sweep)
    title = f"{args.sweep or Path(args.store).name}: results"
    console.print(rich_table(files.groups, title))
    pivot = depth_pivot_rich(files.groups, f"{title}: test accuracy (%) by depth")
    if pivot is not None:
        console.print(pivot)
    err_console.print(f"wrote {files.html}, {files.markdown} and {len(files.plots)} plots")
    if args.json:
        write_json(
            args.json, {"summary": files.summary, "groups": [g.to_dict() for g in files.groups]}
        )
    return 0
