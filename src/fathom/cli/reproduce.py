"""``fathom reproduce SUITE``: published tables through the experiment engine, side by side
(:mod:`fathom.experiments.reproduce`); ``oversmoothing`` and ``neighbors-match`` run their own
studies (:mod:`fathom.experiments.oversmoothing_study`,
:mod:`fathom.experiments.neighbors_match`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import time
from collections.abc import Iterator
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
    parse_ints,
    positive_int,
    threads_per_run,
)
from fathom.errors import FathomError

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Add ``fathom reproduce``."""
    parser = add_command(
        sub,
        "reproduce",
        outputs={"json": "file", "store": "file", "report": "dir"},
        description="Run the presets of a reproduction suite over seeds through the "
        "experiment engine (resumable store) and compare with the published figures.",
    )
    from fathom.experiments.reproduce import SUITES

    # suites trained through the store, then the two studies with their own runners
    suites = [f"{name} ({suite.description})" for name, suite in SUITES.items()]
    suites += [
        "oversmoothing (Dirichlet energy by layer: plain GCN vs its remedies)",
        "neighbors-match (Tree-NeighborsMatch training accuracy by radius, Alon & Yahav)",
    ]
    parser.add_argument("suite", help="; ".join(suites))
    parser.add_argument("--datasets", help="comma-separated subset of the suite's datasets")
    parser.add_argument("--models", help="comma-separated subset of the suite's models")
    parser.add_argument("--depths", help="comma-separated depths (default: the suite's)")
    parser.add_argument(
        "--seeds",
        type=positive_int,
        help="seeds (splits for heterophily; whole cross-validations for tu); default 10, "
        "tu and neighbors-match 1",
    )
    parser.add_argument(
        "--store",
        default="runs/reproduce.db",
        help="SQLite results store (default runs/reproduce.db)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="data root searched first for the suite's datasets (as $FATHOM_DATA, for this "
        "command and its workers; not part of the runs' keys)",
    )
    parser.add_argument("--workers", type=positive_int, help="worker processes (default 1)")
    add_threads(parser, per_worker=True)
    add_executor_flags(parser)
    add_config_flags(parser, RUNTIME_KEYS)
    parser.add_argument("--retry-failed", action="store_true", help="re-run failed runs")
    parser.add_argument(
        "--tune",
        action="store_true",
        help="depth: search the setting of every cell not published at its depth on "
        "validation first (the grid of fathom/presets/search/depth.yaml; test accuracy is "
        "never read to choose), then run the chosen setting over the seeds",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the cells, run nothing")
    add_max_runs(parser)
    parser.add_argument(
        "--no-run",
        action="store_true",
        help="report what the store holds for these cells, train nothing",
    )
    parser.add_argument(
        "--report", metavar="DIR", help="write a Markdown report (and depth plots) here"
    )
    parser.add_argument("--json", metavar="PATH", help="write one row per cell as JSON")
    parser.add_argument(
        "--epochs",
        type=positive_int,
        help="cap on training epochs (suites trained through the store: train.epochs of "
        "every run lowered to it, new run keys, noted in each capped row; neighbors-match: "
        "passes over the data, evaluated every min(100, cap) passes)",
    )
    parser.add_argument(
        "--radii", help="neighbors-match: comma-separated tree radii (default 2..6)"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        metavar="S",
        help="neighbors-match: stop each run after S seconds (it reports the best so far)",
    )
    add_tracker_flags(parser)
    parser.set_defaults(run=run, overrides_ok=False)


def _csv(text: str | None) -> list[str] | None:
    """A comma-separated flag value as a list (``None`` when not given)."""
    if not text:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


@contextlib.contextmanager
def _data_root(data_dir: str | None) -> Iterator[None]:
    """``$FATHOM_DATA`` set to ``data_dir`` while the suite runs (worker processes inherit
    it), then restored; nothing when ``data_dir`` is not given. A data root, unlike the
    ``data.data_dir`` of a config, is not part of a run's key: a store stays valid wherever
    the data lives. A ``data_dir`` that is empty or no folder is refused in one line."""
    if data_dir is None:
        yield
        return
    from fathom.data.datasets import data_dir_candidates

    data_dir_candidates(data_dir)  # raises the one-line error of a missing or empty one
    saved = os.environ.get("FATHOM_DATA")
    os.environ["FATHOM_DATA"] = str(Path(data_dir).expanduser())
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("FATHOM_DATA", None)
        else:
            os.environ["FATHOM_DATA"] = saved


def run(args: argparse.Namespace) -> int:
    """Run (or list, or report) a suite's cells and print ours vs published."""
    # Ray missing, or a flag of the other executor, fails before anything else
    args.executor = executor_from_args(args, data_dir=args.data_dir)
    with _data_root(args.data_dir):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from fathom.devices import resolve_device

    runtime = given_flags(args, RUNTIME_KEYS)
    # a device this machine lacks (or bf16 off CUDA) fails first (with Ray and GPUs per
    # run, on the nodes that have them)
    if not skips_local_device_check(args.executor, [args.device or "auto"]):
        resolve_device(args.device or "auto", getattr(args, "train.precision", None) or "32")
    for flag, given in (("--tracker", args.tracker), ("--executor ray", args.executor != "local")):
        if args.suite in ("oversmoothing", "neighbors-match") and given:
            raise FathomError(
                f"{flag} applies to the suites trained through the store; {args.suite} has "
                "its own runner (its --json holds every figure)"
            )
    if args.suite == "oversmoothing":
        return _oversmoothing(args, runtime)
    if args.suite == "neighbors-match":
        return _neighbors_match(args)
    from fathom.experiments import reproduce as rp
    from fathom.experiments.store import RunStore
    from fathom.report.console import console

    cells = rp.build_cells(
        args.suite,
        datasets=_csv(args.datasets),
        models=_csv(args.models),
        depths=parse_ints(args.depths) if args.depths else None,
        seeds=args.seeds,
        **({} if args.max_runs is None else {"max_runs": args.max_runs}),
    )
    cells = rp.override_cells(cells, runtime)
    if args.epochs:
        cells = rp.cap_epochs(cells, args.epochs)
    tuning = _plan_tuning(args, cells)
    total = sum(len(c.configs) for c in cells)
    if args.dry_run:
        console.print(f"reproduce {args.suite}: {len(cells)} cells, {total} runs")
        for i, c in enumerate(cells):
            searched = ""
            if tuning is not None and i in tuning[1]:
                grid = tuning[1][i]
                searched = f" after a {len(grid.points)}-point validation search"
            console.print(
                f"  {c.dataset} {c.model} depth {c.depth}: {len(c.configs)} runs{searched}, "
                f"published {c.published.value if c.published.value is not None else '–'}"
            )
        return 0
    if not args.no_run:
        rp.check_data(cells)  # data that is nowhere fails here, in one line, before any run
    RunStore(args.store).close()  # a bad store fails here, in one line
    tracker = open_tracker_from_args(args, f"reproduce-{args.suite}")
    configs = [] if args.no_run else [cfg for cell in cells for cfg in cell.configs]
    if tuning is not None and not args.no_run:
        configs += [c for grid in tuning[1].values() for c in grid.all_configs()]
    session = ray_session(args.executor, args.store, configs, retry_failed=args.retry_failed)
    with tracker or contextlib.nullcontext(), session:
        return _run_cells(args, cells, tracker, tuning)


def _plan_tuning(args: argparse.Namespace, cells: list[Any]) -> tuple[Any, dict[int, Any]] | None:
    """With ``--tune``: the suite's declared search and the grid of each cell it applies to
    (refused for a suite that declares none, or when grids and runs together exceed
    ``--max-runs``)."""
    if not args.tune:
        return None
    from fathom.experiments.spec import DEFAULT_MAX_RUNS
    from fathom.experiments.tuning import load_search, plan_searches

    space = load_search(args.suite)
    searches = plan_searches(cells, space)
    runs = sum(len(c.configs) for c in cells)
    runs += sum(len(s.all_configs()) for s in searches.values())
    cap = args.max_runs or DEFAULT_MAX_RUNS
    if runs > cap:
        raise FathomError(
            f"reproduce {args.suite} --tune would run up to {runs:,} runs (searches "
            f"included), more than --max-runs {cap:,}; pass --max-runs {runs} to allow it"
        )
    return space, searches


def _print_grid_wait(live: dict[str, int]) -> None:
    """The line ``--tune`` prints while it waits for another invocation's grid runs."""
    from fathom.report.console import err_console

    pids = ", ".join(str(p) for p in sorted(set(live.values())))
    runs = f"{len(live)} search run{'s' if len(live) > 1 else ''}"
    err_console.print(
        f"waiting for {runs} that another process (pid {pids}) is training, "
        "to choose from the whole grid",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )


def _run_cells(
    args: argparse.Namespace,
    cells: list[Any],
    tracker: Any,
    tuning: tuple[Any, dict[int, Any]] | None = None,
) -> int:
    """Train the cells the store lacks (after their validation searches, with ``--tune``),
    print the table, write the report and JSON."""
    from dataclasses import replace

    from fathom.config import config_hash
    from fathom.experiments import reproduce as rp
    from fathom.files import write_json
    from fathom.report.console import RunsInFlight, console, err_console, pct, progress_bar
    from fathom.report.reproduce import reproduce_table, write_reproduce_report

    suite = rp.SUITES[args.suite]
    start = time.perf_counter()
    summary = tune_summary = None
    with progress_bar(disable=args.no_run) as progress:
        in_flight = RunsInFlight(progress, f"reproduce {args.suite}")

        def run_label(cell: Any, seed: int, search: bool = False) -> str:
            point = " (search)" if search else ""
            return f"{cell.dataset} {cell.key} depth {cell.depth} seed {seed}{point}"

        # the metric each run's cell compares (cells may share a run: the first one's)
        compared: dict[str, tuple[str, str]] = {}

        def label_runs(cells: list[Any]) -> None:
            for cell in cells:
                label = cell.metric_label or rp.METRIC_LABELS.get(cell.metric, cell.metric)
                for c in cell.configs:
                    key = config_hash(c)
                    compared.setdefault(key, (cell.metric, label))
                    in_flight.labels.setdefault(key, run_label(cell, c.seed))

        label_runs(cells)

        def on_run_end(done: int, todo: int, record: dict[str, Any]) -> None:
            key, met = record.get("run_key", ""), record["metrics"]
            metric, label = compared.get(key, ("test_acc", "accuracy"))
            outcome = f"{record['status']} test {label} {pct(met.get(metric))}%"
            in_flight.ended(key, outcome, done, todo)
            if tracker is not None:
                tracker.log_run(record)

        run_options: dict[str, Any] = {
            "workers": args.workers or 1,
            "threads": threads_per_run(args.threads, args.workers or 1)
            if args.executor == "local"
            else None,
            "retry_failed": args.retry_failed,
            "on_run_end": on_run_end,
            "on_epoch": in_flight.epoch,
            "on_start": in_flight.start,
            "device": args.device,
            "executor": args.executor,
        }
        if tuning is not None:
            from fathom.experiments.tuning import apply_choices, wait_for_grids

            space, searches = tuning
            if not args.no_run and searches:
                grids = [
                    replace(cells[i], configs=tuple(s.all_configs())) for i, s in searches.items()
                ]
                for grid in grids:
                    for c in grid.configs:
                        in_flight.labels.setdefault(config_hash(c), run_label(grid, c.seed, True))
                tune_summary = rp.run_suite(
                    grids, args.store, name=f"reproduce-{args.suite}-tune", **run_options
                )
                err_console.print(
                    tune_summary.line(),
                    soft_wrap=True,
                    markup=False,
                    highlight=False,
                )
                if not tune_summary.interrupted:
                    try:
                        wait_for_grids(args.store, searches, on_wait=_print_grid_wait)
                    except KeyboardInterrupt:
                        tune_summary.interrupted = True
            cells = apply_choices(cells, searches, space, args.store)
            label_runs(cells)  # the chosen settings' runs, named like the others
        if not args.no_run and not (tune_summary is not None and tune_summary.interrupted):
            summary = rp.run_suite(
                cells,
                args.store,
                name=f"reproduce-{args.suite}",
                **run_options,
            )
    rows = rp.suite_rows(cells, args.store)
    console.print(
        reproduce_table(f"reproduce {args.suite}: {suite.description}", rows, rp.TOLERANCE)
    )
    if summary is not None:
        err_console.print(summary.line(), soft_wrap=True, markup=False, highlight=False)
    meta = rp.run_meta(
        args.suite,
        command="fathom " + " ".join(shlex.quote(a) for a in args.argv),
        wall_s=time.perf_counter() - start,
        runs_executed=sum(x.ran for x in (tune_summary, summary) if x is not None),
        store=args.store,
    )
    if args.report:
        for path in write_reproduce_report(args.report, args.suite, suite.description, rows, meta):
            err_console.print(f"wrote {path}")
    if args.json:
        write_json(args.json, {**meta, "rows": rows})
        err_console.print(f"wrote {args.json}")
    if tracker is not None:
        interrupted = any(x is not None and x.interrupted for x in (tune_summary, summary))
        tracker.finish(
            artifacts=[p for p in (args.json, args.report) if p],
            status="KILLED" if interrupted else "FINISHED",
        )
    interrupted = any(x is not None and x.interrupted for x in (tune_summary, summary))
    return 130 if interrupted else 0


def _oversmoothing(args: argparse.Namespace, runtime: list[tuple[str, Any]]) -> int:
    from fathom.experiments.oversmoothing_study import (
        DEFAULT_STUDY_MODELS,
        check_study_models,
        energy_studies,
    )
    from fathom.files import write_json
    from fathom.report.console import console, err_console
    from fathom.report.oversmoothing import write_energy_study

    datasets = _csv(args.datasets) or ["cora"]
    models = check_study_models(_csv(args.models) or DEFAULT_STUDY_MODELS)
    depths = parse_ints(args.depths) if args.depths else [32]
    if args.dry_run:
        for name in datasets:
            for depth in depths:
                console.print(f"oversmoothing {name} depth {depth}: {', '.join(models)}")
        return 0
    command = "fathom " + shlex.join(args.argv)
    everything: list[dict[str, Any]] = []
    with err_console.status("oversmoothing study …") as status:
        for name, depth, rows in energy_studies(
            datasets,
            depths,
            models=models,
            max_epochs=args.epochs or 400,
            overrides=runtime,
            progress=lambda message: status.update(f"{message} …"),
        ):
            for r in rows:
                d0, d1 = r["untrained_decay"], r["trained_decay"]
                console.print(
                    f"{name} {r['model']} x{depth}: energy decay rate per layer "
                    f"{d0['rate']:.3f} (init) / {d1['rate']:.3f} (trained); "
                    f"test {100 * (r['test_acc'] or float('nan')):.1f}%"
                )
            if args.report:
                out = Path(args.report)
                if len(datasets) * len(depths) > 1:
                    out = out / f"{name}-{depth}"
                for p in write_energy_study(rows, out, dataset=name, command=command):
                    err_console.print(f"wrote {p}")
            everything += [{"dataset": name, **r} for r in rows]
    if args.json:
        write_json(args.json, {"suite": "oversmoothing", "command": command, "rows": everything})
        err_console.print(f"wrote {args.json}")
    return 0


def _neighbors_match(args: argparse.Namespace) -> int:
    from fathom.experiments import neighbors_match as nm
    from fathom.files import write_json
    from fathom.report.console import console, err_console
    from fathom.report.neighbors_match import neighbors_match_table, write_neighbors_match_report

    if getattr(args, "train.precision") is not None:
        raise FathomError("--precision does not apply to neighbors-match (float32 throughout)")
    models = _csv(args.models) or list(nm.MODELS)
    radii = parse_ints(args.radii, "--radii") if args.radii else [2, 3, 4, 5, 6]
    if args.dry_run:
        for m in models:
            for r in radii:
                pub = nm.PUBLISHED.get((m, r))
                console.print(f"neighbors-match {m} r={r} ({r + 1} layers): published {pub}")
        return 0
    command = "fathom " + shlex.join(args.argv)
    with err_console.status("Tree-NeighborsMatch …") as status:
        rows = nm.run_neighbors_match(
            models,
            radii,
            seeds=args.seeds or 1,
            device=args.device or "auto",
            json_path=args.json,
            progress=lambda message: status.update(message),
            **nm.capped(args.epochs, args.time_limit),
        )
    console.print(neighbors_match_table(rows))
    if args.report:
        for p in write_neighbors_match_report(rows, args.report):
            err_console.print(f"wrote {p}")
    if args.json:
        write_json(args.json, {"suite": "neighbors-match", "command": command, "rows": rows})
        err_console.print(f"wrote {args.json}")
    return 0
