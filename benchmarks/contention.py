"""Epoch time of ``fathom train`` beside a second fathom process: default vs one thread.

Two torch processes that each start one thread per core on a small machine oversubscribe
it: their OpenMP threads spin waiting for each other and every epoch gets several times
slower. This benchmark runs the same training command in four situations, side by side in
one run:

- ``alone``: one process, default threads;
- ``alone --threads 1``: one process, one thread;
- ``pair``: two identical processes started together, default threads;
- ``pair --threads 1``: the same with one thread each.

Each situation runs twice: with fathom's default OpenMP wait policy (the CLI sets
``OMP_WAIT_POLICY=PASSIVE``: idle threads sleep) and with libgomp's own (``OMP_WAIT_POLICY``
set empty, which fathom leaves alone and libgomp ignores: idle threads spin first), which
was fathom's behaviour before.

Each process trains a GCN (``--depth`` layers, 64 hidden) on a seeded CSBM graph
(``--nodes`` nodes, mean degree 10, 32 features) for ``--epochs`` epochs without early
stopping; its epoch time is the run's training time over its epochs (from ``--json``), and
a pair's is the mean of its two processes. The figure that matters: ``pair`` against
``pair --threads 1`` (the default must not be several times slower).

Usage::

    .venv/bin/python benchmarks/contention.py --json docs/results/contention.json \\
        --md docs/results/contention.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FATHOM = [sys.executable, "-m", "fathom.cli"]


def _command(args: argparse.Namespace, out: Path, threads: int | None) -> list[str]:
    return [
        *FATHOM,
        "--quiet",
        "train",
        "--epochs",
        str(args.epochs),
        "--depth",
        str(args.depth),
        "--json",
        str(out),
        "train.patience=0",
        f"data.synthetic.num_nodes={args.nodes}",
        *(["--threads", str(threads)] if threads else []),
    ]


def _epoch_ms(path: Path) -> float:
    run = json.loads(path.read_text())["runs"][0]
    return 1000 * run["time_s"] / run["epochs"]


def _situation(args: argparse.Namespace, processes: int, threads: int | None, policy: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    if policy == "libgomp":
        env["OMP_WAIT_POLICY"] = ""  # present, so fathom does not set PASSIVE; ignored by libgomp
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / f"r{i}.json" for i in range(processes)]
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(
                _command(args, out, threads),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for out in outs
        ]
        errs = [p.communicate()[1] for p in procs]
        wall = time.perf_counter() - t0
        codes = [p.returncode for p in procs]
        if any(codes):
            shown = [line for e in errs for line in e.splitlines() if "libgomp:" not in line]
            raise SystemExit(f"a fathom process failed: exit codes {codes}: {shown[-3:]}")
        per_process = [_epoch_ms(out) for out in outs]
    return {
        "wait_policy": policy,
        "processes": processes,
        "threads": "default" if threads is None else threads,
        "epoch_ms": sum(per_process) / len(per_process),
        "epoch_ms_each": per_process,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20000)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path)
    args = parser.parse_args()
    rows = []
    for policy in ("fathom", "libgomp"):
        for processes, threads in ((1, None), (1, 1), (2, None), (2, 1)):
            row = _situation(args, processes, threads, policy)
            rows.append(row)
            print(
                f"{policy} wait policy, {processes} process(es), threads {row['threads']}: "
                f"{row['epoch_ms']:.1f} ms/epoch",
                flush=True,
            )
    pair_default, pair_one = rows[2]["epoch_ms"], rows[3]["epoch_ms"]
    result = {
        "workload": f"GCN depth {args.depth}, CSBM {args.nodes} nodes, {args.epochs} epochs",
        "cores": len(os.sched_getaffinity(0)),
        "load_before": os.getloadavg()[0],
        "rows": rows,
        "pair_default_over_pair_threads1": pair_default / pair_one,
        "before_pair_default_over_pair_threads1": rows[6]["epoch_ms"] / rows[7]["epoch_ms"],
        "command": " ".join(sys.argv),
    }
    print(f"pair, default / pair, --threads 1: {result['pair_default_over_pair_threads1']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.md:
        lines = [
            f"# fathom train beside a second fathom process ({result['cores']} cores)",
            "",
            f"Workload: {result['workload']}. Command: `{result['command']}`.",
            "",
            "| wait policy | processes | threads | ms / epoch | each process |",
            "|---|---|---|---|---|",
            *(
                f"| {r['wait_policy']} | {r['processes']} | {r['threads']} | "
                f"{r['epoch_ms']:.1f} | " + ", ".join(f"{x:.1f}" for x in r["epoch_ms_each"]) + " |"
                for r in rows
            ),
            "",
            f"Two processes with the default threads take "
            f"{result['pair_default_over_pair_threads1']:.2f}x the epoch time of two with "
            f"`--threads 1` (fathom's wait policy); with libgomp's own, as before, "
            f"{result['before_pair_default_over_pair_threads1']:.2f}x.",
        ]
        args.md.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
