"""Where an epoch's time goes: fathom and its PyG twin of a ``deep_speed`` workload, op class
by op class, measured in one process.

For each implementation the epoch of :mod:`deep_speed` (one training step plus one
evaluation forward pass, the same closures) runs ``--warmup`` times, then ``--epochs`` times
under :mod:`torch.profiler` (CPU, 1 thread by default) and ``--epochs`` times unprofiled
(interleaved with the other implementation, as ``deep_speed`` times). Every profiled op's
*self* time is put in one class:

``gemm``
    dense matrix products (``aten::addmm``, ``mm``, ``bmm``, ``baddbmm``) not called by a
    sparse product;
``spmm``
    sparse-dense products: ``aten::_sparse_mm`` / ``_sparse_addmm`` / ``_sparse_csr_mm`` and
    every op under them (MKL's CSR kernel runs as their child ``aten::addmm``), and every op
    under fathom's ``fathom::spmm`` profiler range (its direct ``torch.addmm(out, adj, x)``
    on a CSR ``adj``, :data:`fathom.nn.adjacency.SPMM_LABEL`);
``gather_scatter``
    ``index_select``, ``gather``, ``scatter*``, ``index_add_``, ``segment_reduce`` (message
    passing on ``edge_index``);
``rng``
    random draws (``random_``, ``bernoulli_``, ``uniform_``, ``normal_``, ``randperm``,
    ``randint``, ``multinomial``);
``select``
    ranking: ``topk``, ``sort``, ``kthvalue`` (a k-NN graph's neighbour selection; not
    part of the floor: any exact selection gives the same neighbours);
``elementwise``
    every other ``aten::`` op (scaling, adds, activations, masks, copies, fills, the
    optimiser's updates);

and ``python + dispatch`` = the unprofiled median epoch time minus the profiled self time of
all ops (per epoch): the interpreter, module calls, autograd bookkeeping. ``--top N`` also
lists each implementation's ``N`` ops with the largest self time per epoch.

Why it is there: for a model fathom must reproduce bit for bit, the dense and sparse
products and the random draws are fixed (same shapes, same kernels, same order: a different
kernel, blocking or fusion changes the rounding); what an implementation controls is the
rest. ``floor`` = gemm + spmm + rng of fathom's own epoch: no bit-identical implementation
on this machine's kernels is faster than that.

Usage::

    FATHOM_DATA=/path/to/datasets .venv/bin/python benchmarks/epoch_profile.py \\
        --workloads gcn2,gcnii64 --json docs/results/epoch_profile.json \\
        --md docs/results/epoch_profile.md
    .venv/bin/python benchmarks/epoch_profile.py --tiny          # smoke run, no data
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deep_speed

from fathom import FathomError
from fathom.nn.adjacency import SPMM_LABEL

CLASSES = ("gemm", "spmm", "gather_scatter", "rng", "select", "elementwise")
GEMM = {"aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "aten::addbmm"}
SPMM = {"aten::_sparse_mm", "aten::_sparse_addmm", "aten::_sparse_csr_mm", "aten::sparse_mm"}
GATHER = {
    "aten::index_select",
    "aten::gather",
    "aten::scatter",
    "aten::scatter_",
    "aten::scatter_add_",
    "aten::scatter_reduce_",
    "aten::scatter_reduce",
    "aten::index_add_",
    "aten::segment_reduce",
    "aten::_segment_reduce",
}
RNG = {
    "aten::random_",
    "aten::bernoulli_",
    "aten::bernoulli",
    "aten::uniform_",
    "aten::normal_",
    "aten::randperm",
    "aten::randint",
    "aten::multinomial",
}
SELECT = {"aten::topk", "aten::sort", "aten::kthvalue"}


def classify(event: Any) -> str | None:
    """The class of one profiled CPU event (``None``: not an ``aten::`` op, not counted)."""
    name = event.name
    if not name.startswith("aten::"):
        return None
    parent = event.cpu_parent
    while parent is not None:
        if parent.name in SPMM or parent.name == SPMM_LABEL:
            return "spmm"
        parent = parent.cpu_parent
    if name in SPMM:
        return "spmm"
    if name in GEMM:
        return "gemm"
    if name in GATHER:
        return "gather_scatter"
    if name in RNG:
        return "rng"
    if name in SELECT:
        return "select"
    return "elementwise"


def op_breakdown(
    epoch: deep_speed.Epoch, epochs: int, top: int = 0
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Self CPU ms per epoch of each op class while ``epoch`` runs ``epochs`` times, and the
    ``top`` (op, class) pairs with the largest self time, largest first, as ``{"op",
    "class", "ms"}``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(epochs):
            epoch()
    by_op: dict[tuple[str, str], float] = {}
    for event in prof.events():
        cls = classify(event)
        if cls is not None:
            ms = event.self_cpu_time_total / 1e3  # us -> ms
            by_op[event.name, cls] = by_op.get((event.name, cls), 0.0) + ms
    totals = dict.fromkeys(CLASSES, 0.0)
    for (_, cls), ms in by_op.items():
        totals[cls] += ms
    largest = sorted(by_op.items(), key=lambda item: -item[1])[:top]
    return (
        {cls: ms / epochs for cls, ms in totals.items()},
        [{"op": op, "class": cls, "ms": ms / epochs} for (op, cls), ms in largest],
    )


def profile_workload(
    workload: deep_speed.Workload, epochs: int, warmup: int, top: int = 0
) -> dict[str, dict[str, Any]]:
    """Op-class breakdown, unprofiled median epoch time and (``top`` > 0) the ``top`` ops
    with the largest self time (``top_ops``) of both implementations."""
    data = deep_speed.load_data(workload)
    built = {impl: deep_speed.build_impl(workload, impl, data)[1] for impl in deep_speed.IMPLS}
    for _ in range(warmup):
        for epoch in built.values():
            epoch()
    times: dict[str, list[float]] = {impl: [] for impl in built}
    for r in range(epochs):
        for impl in deep_speed.IMPLS if r % 2 == 0 else deep_speed.IMPLS[::-1]:
            start = time.perf_counter()
            built[impl]()
            times[impl].append(time.perf_counter() - start)
    rows = {}
    for impl, epoch in built.items():
        ops, largest = op_breakdown(epoch, epochs, top)
        wall = 1e3 * statistics.median(times[impl])
        rows[impl] = {
            "epoch_ms": wall,
            **ops,
            "python_dispatch": wall - sum(ops.values()),
            "floor": ops["gemm"] + ops["spmm"] + ops["rng"],
        }
        if top:
            rows[impl]["top_ops"] = largest
    return rows


def to_markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    cols = ["epoch_ms", *CLASSES, "python_dispatch", "floor"]
    lines = [
        "# Where an epoch's time goes (fathom and its PyG twin)",
        "",
        f"Produced by: `{result['command']}`",
        "",
        f"{'**Tiny smoke run: not a benchmark result.** ' if s['tiny'] else ''}"
        f"{s['epochs']} profiled and {s['epochs']} unprofiled epochs per implementation after "
        f"{s['warmup']} warm-up, {s['threads']} thread(s); torch {result['torch']}; load "
        f"average {result['load_average'][0]:.2f} at start, "
        f"{result['load_average_end'][0]:.2f} at end.",
        "",
        "ms per epoch; op classes are profiled self times, `python_dispatch` = unprofiled "
        "epoch time minus all ops' self time, `floor` = gemm + spmm + rng of that "
        "implementation (see benchmarks/epoch_profile.py). The last column is fathom's "
        "floor as a fraction of PyG's epoch time: a bit-identical fathom cannot go below it.",
        "",
        "| workload | impl | " + " | ".join(cols) + " | floor / PyG epoch |",
        "|---|---|" + "---:|" * (len(cols) + 1),
    ]
    for name, rows in result["workloads"].items():
        pyg_epoch = rows["pyg"]["epoch_ms"]
        for impl, row in rows.items():
            ratio = f"{row['floor'] / pyg_epoch:.3f}" if impl == "fathom" else ""
            cells = " | ".join(f"{row[c]:.1f}" for c in cols)
            lines.append(f"| {name} | {impl} | {cells} | {ratio} |")
    for name, rows in result["workloads"].items():
        for impl, row in rows.items():
            if not row.get("top_ops"):
                continue
            lines += [
                "",
                f"Largest ops of {name} / {impl} (self ms per epoch, share of the epoch):",
                "",
                "| op | class | ms | share |",
                "|---|---|---:|---:|",
            ]
            for op in row["top_ops"]:
                share = op["ms"] / row["epoch_ms"]
                lines.append(f"| `{op['op']}` | {op['class']} | {op['ms']:.1f} | {share:.1%} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="epoch_profile.py", description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default="gcn2,gcnii64", help="comma-separated names")
    parser.add_argument("--epochs", type=int, default=None, help="default 10 (tiny: 2)")
    parser.add_argument("--warmup", type=int, default=None, help="default 3 (tiny: 1)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=None, help="res16's graph size")
    parser.add_argument("--points", type=int, default=None, help="res28-clouds' cloud size")
    parser.add_argument(
        "--top", type=int, default=0, help="also list each side's N largest ops (default 0)"
    )
    parser.add_argument("--tiny", action="store_true", help="small graphs, no data needed")
    parser.add_argument("--json", type=Path, metavar="PATH")
    parser.add_argument("--md", type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.tiny else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 3)
    nodes = args.nodes or (1000 if args.tiny else 100_000)
    workloads = deep_speed.make_workloads(args.tiny, nodes, cloud_points=args.points)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in workloads]
    bad_counts = epochs < 1 or warmup < 0 or args.threads < 1 or args.top < 0
    if unknown or not names or bad_counts or (args.points is not None and args.points < 1):
        print(
            f"epoch_profile.py: error: unknown workload(s) {unknown} or bad counts; "
            f"workloads: {','.join(workloads)}",
            file=sys.stderr,
        )
        return 2
    torch.set_num_threads(args.threads)
    load = list(os.getloadavg())
    results = {}
    try:
        for name in names:
            print(f"profiling {name} ...", file=sys.stderr, flush=True)
            results[name] = profile_workload(workloads[name], epochs, warmup, args.top)
    except FathomError as exc:
        print(f"epoch_profile.py: error: {exc}", file=sys.stderr)
        return 2
    result = {
        "benchmark": "epoch_profile",
        "command": "python benchmarks/epoch_profile.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "torch": torch.__version__,
        "load_average": load,
        "load_average_end": list(os.getloadavg()),
        "settings": {
            "epochs": epochs,
            "warmup": warmup,
            "threads": args.threads,
            "tiny": args.tiny,
            "top": args.top,
        },
        "workloads": results,
    }
    md = to_markdown(result)
    print(md)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.md is not None:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
