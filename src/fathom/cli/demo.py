"""``fathom demo``: plain vs residual GCN by depth on a generated graph."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from fathom.cli.commands import add_command
from fathom.cli.flags import RUNTIME_KEYS, add_config_flags, add_threads, given_flags, parse_ints
from fathom.config import ExperimentConfig, apply_overrides

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Add ``fathom demo``."""
    demo = add_command(
        sub,
        "demo",
        outputs={"json": "file", "out": "dir"},
        description="Plain vs residual GCN at several depths on a contextual "
        "stochastic block model graph; prints a table, writes a "
        "plot.",
    )
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument("--depths", default="2,8,32", help="comma-separated depths (default 2,8,32)")
    demo.add_argument("--seeds", type=int, default=2, help="seeds per point (default 2)")
    demo.add_argument("--epochs", type=int, default=100, help="epochs per run (default 100)")
    demo.add_argument(
        "--dropout",
        type=float,
        default=0.1,
        help="dropout before every layer (default 0.1: at 0.5 the noise that 32 "
        "residual layers add up drowns the signal)",
    )
    demo.add_argument("--json", metavar="PATH", help="write the results as JSON")
    add_config_flags(demo, RUNTIME_KEYS)
    add_threads(demo)
    demo.set_defaults(run=run, overrides_ok=False)


def run(args: argparse.Namespace) -> int:
    """Run the depth study, print the table, write the plot and JSON."""
    from fathom.data.build import build_dataset
    from fathom.devices import resolve_device
    from fathom.experiments.depth_study import depth_study
    from fathom.files import write_json
    from fathom.report.console import console, depth_table, err_console, progress_bar
    from fathom.report.plots import plot_accuracy_vs_depth

    depths = parse_ints(args.depths)
    base = apply_overrides(
        ExperimentConfig(),
        [
            ("seeds", args.seeds),
            ("train.epochs", args.epochs),
            ("train.patience", 0),
            ("model.dropout", args.dropout),
            *given_flags(args, RUNTIME_KEYS),
        ],
    )
    resolve_device(base.device, base.train.precision)
    variants = {"GCN": {"model.skip": "none"}, "ResGCN (residual)": {"model.skip": "res"}}
    out = Path(args.out)
    start = time.perf_counter()
    data = build_dataset(base.data, seed=base.seed)
    s = base.data.synthetic
    err_console.print(
        f"CSBM graph: {data.num_nodes} nodes, {data.num_edges // 2} edges, {s.num_classes} "
        f"classes, homophily {s.homophily}; {len(variants)} models x depths {depths} x "
        f"{args.seeds} seeds"
    )
    runs = [
        (name, depth, seed)
        for name in variants
        for depth in depths
        for seed in range(base.seed, base.seed + args.seeds)
    ]
    # one step per epoch (no early stopping here: every run trains every epoch)
    with progress_bar() as progress:
        task = progress.add_task("depth study", total=len(runs) * args.epochs)
        done = {"runs": 0}

        def on_epoch(record: dict[str, float]) -> None:
            name, depth, seed = runs[min(done["runs"], len(runs) - 1)]
            epoch = int(record["epoch"])
            progress.update(
                task,
                completed=done["runs"] * args.epochs + epoch,
                description=f"run {done['runs'] + 1} of {len(runs)} ({name} depth {depth} seed "
                f"{seed}) epoch {epoch}",
            )

        def on_run_end(name: str, depth: int, seed: int, run: dict[str, Any]) -> None:
            done["runs"] += 1
            progress.update(
                task,
                completed=done["runs"] * args.epochs,
                description=f"run {done['runs']} of {len(runs)} ({name} depth {depth} seed "
                f"{seed}): test {100 * run['test_acc']:.1f}%",
            )

        rows = depth_study(
            base, variants, depths, data=data, on_run_end=on_run_end, callbacks=[on_epoch]
        )
    elapsed = time.perf_counter() - start
    chance = float(data.y.bincount().max()) / data.num_nodes
    title = f"CSBM ({data.num_nodes} nodes, homophily {s.homophily}): test accuracy vs depth"
    console.print(depth_table(title, rows))
    plot = plot_accuracy_vs_depth(rows, out / "accuracy_vs_depth.png", title=title, chance=chance)
    payload = {"title": title, "wall_s": elapsed, "rows": rows}
    write_json(out / "results.json", payload)
    if args.json:
        write_json(args.json, payload)
    console.print(f"plot: {plot}   results: {out / 'results.json'}   ({elapsed:.0f} s)")
    return 0
