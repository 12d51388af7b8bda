"""Throughput of data-parallel training: 1 process against 2 (or more) on one machine.

The workload is fathom's own multi-process training step, on a graph where compute
dominates: a seeded CSBM graph (``--nodes``, default 100K nodes, mean degree 10, 64
features, 5 classes), GraphSAGE neighbour sampling (``--fanouts``, ``--batch-size`` seeds
per process and batch) over ``--seeds`` training nodes, and a wide GraphSAGE model
(``--hidden``, ``--depth``). Each process is what ``fathom train --nproc N`` runs for one
rank: the loader :func:`fathom.loaders.build.build_loader` shards for its rank, the model in
``DistributedDataParallel`` (gloo), the objective in
:class:`~fathom.train.distributed.DistributedObjective`, and
:func:`fathom.train.loop.train_epoch` (the epoch ``fit`` runs); with 1 process there is no
process group and no wrapper does anything.

**What is timed**: after one warm-up epoch, ``--epochs`` training epochs, each between two
barriers (the slowest rank's time); evaluation (rank 0's, on the whole graph) is left out, as
it does not change with the number of processes. An epoch of ``W`` processes covers the same
training nodes as one of 1 process (each rank ``ceil(n / W)`` of them, padded), so the
**throughput** is training seed nodes per second, ``W * ceil(n / W) / epoch time`` (median
over epochs), and the **speedup** is the ratio to 1 process. The CPU time of each rank's
epoch is measured too (every thread of the process, gloo's included): the busiest rank's is
about what the epoch would take with a free core per process, so its speedup estimates the
figure of a machine with idle cores. It leaves out time a rank spends blocked waiting for a
slower peer and the memory bandwidth the processes share, so it is an optimistic estimate.
Every process gets ``--threads`` torch threads (default 1). The graph is built once and the
processes are forked from the benchmark process, so they share it copy-on-write.

Usage::

    .venv/bin/python benchmarks/ddp_throughput.py --json docs/results/ddp_throughput.json \\
        --md docs/results/ddp_throughput.md
    .venv/bin/python benchmarks/ddp_throughput.py --tiny --json /tmp/ddp.json   # smoke run

The report records the machine's cores and load average before and after: on a machine
shared with other work, processes compete for cores and the speedup says so.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch_geometric

from fathom.config import DataConfig, ModelConfig, SyntheticConfig, TrainConfig
from fathom.data.build import build_dataset
from fathom.devices import cpu_cores
from fathom.loaders.build import build_loader
from fathom.models.build import build_model
from fathom.seeding import seed_everything
from fathom.tasks.node import NodeClassification
from fathom.train.distributed import DistributedObjective, wrap_model
from fathom.train.loop import train_epoch
from fathom.train.optim import build_optimizer

__all__ = ["main"]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000, help="graph nodes (default 100K)")
    parser.add_argument("--seeds", type=int, default=8192, help="training seed nodes per epoch")
    parser.add_argument("--hidden", type=int, default=256, help="hidden width (default 256)")
    parser.add_argument("--depth", type=int, default=2, help="GraphSAGE layers (default 2)")
    parser.add_argument("--fanouts", default="10,5", help="neighbours per hop (default 10,5)")
    parser.add_argument("--batch-size", type=int, default=512, help="seeds per process and batch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (default 3)")
    parser.add_argument("--processes", default="1,2", help="process counts (default 1,2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--tiny", action="store_true", help="a smoke run, not a benchmark")
    parser.add_argument("--json", help="write the results as JSON here")
    parser.add_argument("--md", help="write a Markdown table here")
    args = parser.parse_args(argv)
    if args.tiny:
        args.nodes, args.seeds, args.hidden, args.epochs, args.batch_size = 2000, 512, 32, 2, 128
    return args


def _graph(args: argparse.Namespace) -> Any:
    cfg = DataConfig(
        name="csbm",
        synthetic=SyntheticConfig(num_nodes=args.nodes, num_classes=5, feature_dim=64),
    )
    data = build_dataset(cfg, seed=0)
    train = torch.zeros(data.num_nodes, dtype=torch.bool)
    pick = torch.randperm(data.num_nodes, generator=torch.Generator().manual_seed(0))
    train[pick[: args.seeds]] = True
    data.train_mask = train
    return data


def _rank(rank: int, world: int, store: str, args: argparse.Namespace, data: Any, out: Any) -> None:
    """One process: the rank's loader, DDP model and objective; timed training epochs."""
    torch.set_num_threads(args.threads)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        train = TrainConfig()
        options = {"fanouts": args.fanouts, "batch_size": args.batch_size, "num_workers": 0}
        loader = build_loader("neighbor", data, seed=0, options=options)
        seed_everything(0)
        model_cfg = ModelConfig(conv="sage", depth=args.depth, hidden=args.hidden)
        model = wrap_model(
            build_model(model_cfg, data.num_features, int(data.y.max()) + 1), torch.device("cpu")
        )
        objective = DistributedObjective(NodeClassification(loader=loader))
        optimizer = build_optimizer(model, train)
        model.train()
        train_epoch(model, objective, data, optimizer)  # warm-up
        times, cpu = [], []
        for _ in range(args.epochs):
            if world > 1:
                dist.barrier()
            t0, c0 = time.perf_counter(), time.process_time()
            train_epoch(model, objective, data, optimizer)
            c1 = time.process_time()
            if world > 1:
                dist.barrier()
            times.append(time.perf_counter() - t0)
            cpu.append(c1 - c0)
        out.put({"rank": rank, "times": times, "cpu": cpu, "batches": len(loader)})
    finally:
        if world > 1:
            dist.destroy_process_group()


def _measure(world: int, args: argparse.Namespace, data: Any) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "store")
        procs = [
            ctx.Process(target=_rank, args=(r, world, store, args, data, out)) for r in range(world)
        ]
        for p in procs:
            p.start()
        results = sorted((out.get(timeout=3600) for _ in procs), key=lambda r: r["rank"])
        for p in procs:
            p.join()
        if any(p.exitcode for p in procs):
            raise SystemExit(f"a process of the {world}-process run failed")
    per_rank = math.ceil(args.seeds / world)
    epoch = statistics.median(results[0]["times"])
    # the CPU time of the busiest rank: the epoch time if every process had a core to itself
    cpu = max(statistics.median(r["cpu"]) for r in results)
    return {
        "processes": world,
        "threads_per_process": args.threads,
        "epoch_times_s": results[0]["times"],
        "epoch_s": epoch,
        "cpu_s_per_rank": [r["cpu"] for r in results],
        "busiest_rank_cpu_s": cpu,
        "batches_per_rank": results[0]["batches"],
        "seeds_per_epoch": world * per_rank,
        "seeds_per_s": world * per_rank / epoch,
        "seeds_per_cpu_s": world * per_rank / cpu,
    }


def _markdown(report: dict[str, Any]) -> str:
    w = report["workload"]
    m = report["machine"]
    lines = [
        "# DDP throughput: 1 process vs several",
        "",
        f"GraphSAGE depth {w['depth']}, hidden {w['hidden']}, neighbour sampling "
        f"fan-outs {w['fanouts']}, {w['batch_size']} seeds per process and batch, "
        f"{w['seeds']:,} training seeds per epoch, on a CSBM graph of {w['nodes']:,} nodes "
        f"and {w['edges']:,} edges (64 features, 5 classes); gloo on the CPU, "
        f"{report['runs'][0]['threads_per_process']} torch thread per process; training epochs "
        "only (evaluation excluded), median of "
        f"{w['epochs']} after a warm-up epoch. Produced by `benchmarks/ddp_throughput.py`.",
        "",
        "Wall: the epoch's wall-clock time (the slowest rank, between barriers) and the "
        "throughput it gives, on this shared machine. CPU: the CPU time of the busiest rank "
        "during the epoch (all its threads, gloo's included), about the epoch time with a free "
        "core per process; its speedup estimates a machine with idle cores, optimistically "
        "(it leaves out time blocked waiting for a slower peer and shared memory bandwidth).",
        "",
        "| processes | batches per rank | wall epoch (s) | seeds / s (wall) | speedup (wall) "
        "| busiest rank CPU (s) | speedup (CPU) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = report["runs"][0]
    for run in report["runs"]:
        lines.append(
            f"| {run['processes']} | {run['batches_per_rank']} | {run['epoch_s']:.2f} | "
            f"{run['seeds_per_s']:,.0f} | {run['seeds_per_s'] / base['seeds_per_s']:.2f}× | "
            f"{run['busiest_rank_cpu_s']:.2f} | "
            f"{run['seeds_per_cpu_s'] / base['seeds_per_cpu_s']:.2f}× |"
        )
    lines += [
        "",
        f"Machine: {m['cores']} CPU cores usable by this process ({m['cpu']}), "
        f"load average {m['load_before']} before and {m['load_after']} after the run "
        "(1-minute, 5-minute, 15-minute). " + m["note"],
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = _parse(argv)
    torch.set_num_threads(args.threads)  # no thread pool in the parent before forking
    processes = [int(p) for p in args.processes.split(",")]
    if min(processes) < 1:
        sys.stderr.write("ddp_throughput: --processes must be integers >= 1\n")
        return 2
    load_before = os.getloadavg()
    data = _graph(args)
    runs = [_measure(world, args, data) for world in processes]
    load_after = os.getloadavg()
    cores = cpu_cores()
    report = {
        "workload": {
            "nodes": data.num_nodes,
            "edges": int(data.edge_index.size(1)),
            "seeds": args.seeds,
            "hidden": args.hidden,
            "depth": args.depth,
            "fanouts": args.fanouts,
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "tiny": args.tiny,
        },
        "machine": {
            "cores": cores,
            "cpu": platform.processor() or platform.machine(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in load_after],
            "note": (
                f"{max(processes)} processes on {cores} cores: every process has a core only "
                "when nothing else runs; other work on the machine takes cores from them."
            ),
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__,
        },
        "runs": runs,
    }
    for run in runs:
        print(
            f"{run['processes']} process(es): epoch {run['epoch_s']:.2f} s, "
            f"{run['seeds_per_s']:,.0f} seeds/s, "
            f"speedup {run['seeds_per_s'] / runs[0]['seeds_per_s']:.2f}x (wall), "
            f"{run['seeds_per_cpu_s'] / runs[0]['seeds_per_cpu_s']:.2f}x (busiest rank's CPU)"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
