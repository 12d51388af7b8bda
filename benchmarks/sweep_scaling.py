"""Wall time of one sweep by executor: local worker processes (1 and 2) and Ray (1 and 2
simulated nodes), side by side in one run, with each executor's overhead per run.

The sweep is the same 24 runs for every executor: a seeded CSBM graph (``--nodes``), GCN
depth 2 / 4 / 8 × skip none / res × 4 seeds, ``--epochs`` epochs each (no early stopping).
Each executor fills a fresh results store through :func:`fathom.experiments.sweep.sweep`, as
``fathom sweep`` does:

* ``local ×1``: the runs one after the other in this process; ``local ×2``: two spawned
  worker processes (their start, importing torch, is in the wall time);
* ``ray ×1`` / ``ray ×2``: a Ray cluster of this machine (``ray.cluster_utils.Cluster``: a
  head without CPUs and 1, then 2, worker nodes of ``--threads`` CPUs each, separate
  processes), joined by a fresh driver for each sweep (a new Ray job: its workers' start is in
  the wall time); the cluster's own start, which a real cluster pays once, is reported apart.

Every run trains with ``--threads`` torch threads (Ray: ``--cpus-per-run``). **Overhead per
run** = (wall time × parallel slots − the runs' own training time, summed) / runs: slot time
spent on anything but training (process or worker start, data building, scheduling, the
store's writes), per run. The runs' median training time shows how much parallel runs slow
each other on a machine with few cores. All four stores must hold the same metrics (checked
bit for bit, reported as ``same_metrics``).

Usage::

    .venv/bin/python benchmarks/sweep_scaling.py --threads 1 --json out.json --md out.md
    .venv/bin/python benchmarks/sweep_scaling.py --tiny --json /tmp/s.json   # smoke run

On a machine shared with other work the figures are indicative: the report records cores and
load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import torch
import torch_geometric

from fathom.devices import cpu_cores
from fathom.experiments.store import RunStore
from fathom.experiments.sweep import sweep

__all__ = ["main"]

SPEC = """\
name: sweep-scaling
base:
  data:
    name: csbm
    synthetic: {{num_nodes: {nodes}, feature_dim: 16}}
  model: {{hidden: 16}}
  train: {{epochs: {epochs}, patience: 0}}
grid:
  model.depth: {depths}
  model.skip: [none, res]
  seed: range({seeds})
"""


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000, help="graph nodes (default 1000)")
    parser.add_argument("--epochs", type=int, default=60, help="epochs per run (default 60)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPUs) per run")
    parser.add_argument(
        "--executors",
        default="local,ray",
        help="which executors to time: local, ray or both (default local,ray)",
    )
    parser.add_argument("--tiny", action="store_true", help="a smoke run (6 runs), not a benchmark")
    parser.add_argument("--json", help="write the results as JSON here")
    parser.add_argument("--md", help="write a Markdown table here")
    args = parser.parse_args(argv)
    args.depths, args.seeds = [2, 4, 8], 4
    if args.tiny:
        args.nodes, args.epochs, args.depths, args.seeds = 100, 2, [2, 4, 8], 1
    args.executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    if not args.executors or not set(args.executors) <= {"local", "ray"}:
        parser.error(f"--executors must name local and/or ray, got {args.executors}")
    if args.threads < 1 or args.nodes < 10 or args.epochs < 1:
        parser.error("--threads and --epochs must be >= 1, --nodes >= 10")
    return args


def _records(db: Path) -> dict[str, dict[str, Any]]:
    with RunStore(db, create=False) as st:
        return {r["run_key"]: r for r in st.runs()}


def _timed(name: str, slots: int, spec: Path, db: Path, **kwargs: Any) -> dict[str, Any]:
    """One sweep into a fresh store, timed; its figures."""
    t0 = time.perf_counter()
    summary = sweep(spec, db, **kwargs)
    wall = time.perf_counter() - t0
    records = _records(db)
    if summary.counts.get("done", 0) != len(records) or summary.interrupted:
        raise SystemExit(f"sweep_scaling: {name} did not finish every run: {summary.line()}")
    train = [float(r["time_s"] or 0.0) for r in records.values()]
    runs = len(records)
    return {
        "executor": name,
        "slots": slots,
        "runs": runs,
        "wall_s": wall,
        "train_s_sum": sum(train),
        "train_s_median": statistics.median(train),
        "overhead_per_run_s": (wall * slots - sum(train)) / runs,
        "nodes": sorted({r["versions"].get("ray_node", "")[:12] for r in records.values()} - {""}),
        "_metrics": {k: r["metrics"] for k, r in records.items()},
    }


def _ray_rows(args: argparse.Namespace, spec: Path, folder: Path) -> tuple[list[Any], float]:
    """Ray with 1 then 2 simulated nodes; the cluster's start time."""
    from ray.cluster_utils import Cluster

    from fathom.experiments.ray_executor import RayExecutor

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t0 = time.perf_counter()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "object_store_memory": 100 * 1024**2},
    )
    rows = []
    try:
        cluster.add_node(num_cpus=args.threads, object_store_memory=100 * 1024**2)
        cluster.wait_for_nodes()
        startup = time.perf_counter() - t0
        for nodes in (1, 2):
            if nodes == 2:
                cluster.add_node(num_cpus=args.threads, object_store_memory=100 * 1024**2)
                cluster.wait_for_nodes()
            executor = RayExecutor(address=cluster.address, cpus_per_run=args.threads)
            rows.append(
                _timed(f"ray ×{nodes}", nodes, spec, folder / f"ray{nodes}.db", executor=executor)
            )
    finally:
        cluster.shutdown()
    return rows, startup


def _markdown(report: dict[str, Any]) -> str:
    w, m = report["workload"], report["machine"]
    lines = [
        "# Sweep scaling: local processes vs Ray",
        "",
        f"The same {w['runs']}-run sweep (GCN depth {'/'.join(map(str, w['depths']))} × skip "
        f"none/res × {w['seeds']} seeds, {w['epochs']} epochs, CSBM graph of {w['nodes']:,} "
        f"nodes) with each executor, {w['threads']} torch thread(s) per run, into a fresh "
        "store each. Produced by `benchmarks/sweep_scaling.py`"
        f"{' (--tiny: a smoke run)' if w['tiny'] else ''}.",
        "",
        "| executor | parallel slots | wall (s) | speedup | run training time, median (s) "
        "| overhead per run (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    base = report["rows"][0]["wall_s"]
    for r in report["rows"]:
        lines.append(
            f"| {r['executor']} | {r['slots']} | {r['wall_s']:.1f} | {base / r['wall_s']:.2f}× | "
            f"{r['train_s_median']:.2f} | {r['overhead_per_run_s']:.2f} |"
        )
    lines += [
        "",
        "Overhead per run: (wall × slots − the runs' summed training time) / runs, i.e. slot "
        "time not spent training (worker start, data building, scheduling, store writes). "
        "Ray's wall time includes joining the cluster and starting the job's worker "
        "processes; the cluster's own start"
        + (f" ({report['ray_cluster_start_s']:.1f} s)" if "ray_cluster_start_s" in report else "")
        + " is not included. Same metrics in every store: "
        f"{'yes' if report['same_metrics'] else 'NO'}.",
        "",
        f"Machine: {m['cores']} CPU cores ({m['cpu']}), load average {m['load_before']} before "
        f"and {m['load_after']} after (1, 5, 15 minutes). {m['note']}",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = _parse(argv)
    if "ray" in args.executors:
        try:
            import ray  # noqa: F401
        except ImportError:
            sys.stderr.write("sweep_scaling: Ray is not installed: pip install 'fathom-gnn[ray]'\n")
            return 2
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sweep-scaling-") as tmp:
        folder = Path(tmp)
        spec = folder / "spec.yaml"
        text = SPEC.format(
            nodes=args.nodes, epochs=args.epochs, depths=args.depths, seeds=args.seeds
        )
        spec.write_text(textwrap.dedent(text))
        if "local" in args.executors:
            for workers in (1, 2):
                threads = args.threads
                db = folder / f"local{workers}.db"
                rows.append(
                    _timed(f"local ×{workers}", workers, spec, db, workers=workers, threads=threads)
                )
        if "ray" in args.executors:
            ray_rows, startup = _ray_rows(args, spec, folder)
            rows += ray_rows
            report["ray_cluster_start_s"] = startup
    load_after = os.getloadavg()
    metrics = [r.pop("_metrics") for r in rows]
    cores = cpu_cores()
    report = {
        "workload": {
            "runs": rows[0]["runs"],
            "nodes": args.nodes,
            "epochs": args.epochs,
            "depths": args.depths,
            "seeds": args.seeds,
            "threads": args.threads,
            "tiny": args.tiny,
        },
        "machine": {
            "cores": cores,
            "cpu": platform.processor() or platform.machine(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in load_after],
            "note": (
                f"2 parallel runs on {cores} cores: each has a core only when nothing else "
                "runs; on a shared machine these figures are indicative."
            ),
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__,
            **({"ray": __import__("ray").__version__} if "ray" in args.executors else {}),
        },
        "rows": rows,
        "same_metrics": all(m == metrics[0] for m in metrics),
        **report,
    }
    base = rows[0]["wall_s"]
    for r in rows:
        print(
            f"{r['executor']:>8}: {r['runs']} runs in {r['wall_s']:6.1f} s "
            f"(speedup {base / r['wall_s']:.2f}x), run median {r['train_s_median']:.2f} s, "
            f"overhead {r['overhead_per_run_s']:.2f} s per run"
        )
    if "ray_cluster_start_s" in report:
        print(f"Ray cluster start (not in the walls): {report['ray_cluster_start_s']:.1f} s")
    print(f"same metrics in every store: {report['same_metrics']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(_markdown(report))
    return 0 if report["same_metrics"] else 1


if __name__ == "__main__":
    sys.exit(main())
