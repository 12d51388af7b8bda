"""Peak memory against depth: plain, residual, checkpointed and reversible deep GCNs.

Target (issue 7): a reversible node-classification GNN on a 50K-node synthetic graph uses at
most 1.5x the memory at 1000 layers that it uses at 8, side by side with ordinary residual
blocks (whose stored activations grow linearly with depth).

Workload: full-batch node classification on a seeded CSBM graph (``fathom.data.synthetic.csbm``,
``--nodes`` nodes, mean degree ``--degree``, ``--features`` features, ``--classes`` classes;
the loss is cross-entropy over all nodes). Every model is fathom's ``DeepGNN`` built by
``build_model``: ``Linear`` encoder -> ``depth`` hidden blocks of ``--hidden`` channels ->
``Linear`` head, GCN convs, batch norm, ReLU, dropout ``--dropout``, Adam (lr 0.01). Blocks:

``plain``       ``x = relu(bn(gcn(dropout(x))))`` (``skip: none``);
``res``         ``x = x + relu(bn(gcn(dropout(x))))`` (``skip: res``, ResGCN);
``checkpoint``  ``res`` with every block checkpointed (``memory: checkpoint``);
``reversible``  RevGNN's grouped reversible coupling of ``--groups`` groups of
                ``hidden / groups`` channels, each group a ``relu(bn(gcn(dropout(.))))``
                (``memory: reversible``).

Each (depth, block) runs in a fresh Python process, so a peak is that run's alone. The process
imports torch, PyG and fathom, then reads its resident set size (``VmRSS``) as the baseline,
generates the graph, resets the kernel's peak-RSS counter (``VmHWM``, via
``/proc/self/clear_refs``) so that the generator's temporaries are not counted, builds the
model and optimiser and trains ``--epochs`` epochs. **``peak_mb`` = VmHWM at the end - the
baseline**: the peak resident memory of training, counting the graph (features, labels,
``edge_index``, the cached normalised adjacency), the model (parameters and the Python module
objects), gradients, Adam's moments, the activations kept for the backward pass and
temporaries. Where ``clear_refs`` is unavailable ``ru_maxrss`` is used instead (then the
generator's temporaries count too; the row says ``peak_source: ru_maxrss``). glibc's
allocator is set to return every block over 128 KiB on free (``MALLOC_MMAP_THRESHOLD_``), so
RSS tracks live memory.

Each row also splits the peak: ``graph_mb`` (RSS growth from generating the graph, measured),
``model_mb`` (RSS growth from building the model and optimiser, measured: parameters plus
module objects), ``state_mb`` (gradients and Adam's two moments, 3 x the parameter bytes,
computed) and ``working_mb`` = ``peak_mb`` - the three (derived: activations kept for backward
and temporaries). ``epoch_s`` is the median time of one training step (forward, backward,
optimiser step) over the epochs after the first.

Rows whose peak, projected linearly in depth from the two largest measured depths of the same
block (from one measured depth: proportionally), would exceed ``--max-mb`` are not run: they
are written with ``status: "skipped"``, ``peak_mb: null`` and the projection as
``projected_peak_mb``. Ratios ``peak(max depth) / peak(min depth)`` are given per block, and
marked ``projected`` when the larger figure is a projection.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/memory_depth.py \\
        --json docs/results/memory_depth.json --md docs/results/memory_depth.md \\
        --plot docs/results/memory_depth.png
    .venv/bin/python benchmarks/memory_depth.py --nodes 2000 --depths 2,4 --epochs 1  # smoke
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fathom.experiments.process_memory import reset_peak_rss, status_kib

TARGET = 1.5
BLOCKS = {
    "plain": {"skip": "none", "memory": "plain"},
    "res": {"skip": "res", "memory": "plain"},
    "checkpoint": {"skip": "res", "memory": "checkpoint"},
    "reversible": {"skip": "res", "memory": "reversible"},
}
MIB = 2**20
# glibc serves large blocks from mmap only below a threshold that it raises after every free of
# a large block; a fixed threshold returns every block over 128 KiB on free, so RSS tracks
# live memory instead of the allocation history
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


# --------------------------------------------------------------------------- child process


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one configuration in this (fresh) process and measure its peak memory."""
    import torch
    import torch.nn.functional as F

    from fathom.config import ModelConfig
    from fathom.data.synthetic import csbm
    from fathom.models.build import build_model

    torch.set_num_threads(spec["threads"])
    gc.collect()
    base = status_kib("VmRSS")
    data = csbm(
        spec["nodes"],
        spec["classes"],
        feature_dim=spec["features"],
        avg_degree=spec["degree"],
        seed=spec["seed"],
    )
    x, edge_index, y = data.x, data.edge_index, data.y
    del data
    gc.collect()
    after_graph = status_kib("VmRSS")
    reset = reset_peak_rss()

    torch.manual_seed(spec["seed"])
    block = BLOCKS[spec["block"]]
    cfg = ModelConfig(
        conv="gcn",
        depth=spec["depth"],
        hidden=spec["hidden"],
        skip=block["skip"],
        norm="batch",
        dropout=spec["dropout"],
        act="relu",
        encoder="linear",
        head="linear",
        memory=block["memory"],
        groups=spec["groups"],
    )
    model = build_model(cfg, x.size(1), spec["classes"])
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    gc.collect()
    after_model = status_kib("VmRSS")
    params = sum(p.numel() for p in model.parameters())

    times, losses = [], []
    for _ in range(spec["epochs"]):
        t0 = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x, edge_index), y)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    if reset:
        peak_kib, source = status_kib("VmHWM"), "VmHWM"
    else:  # Linux reports ru_maxrss in KiB
        peak_kib, source = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
    peak = (peak_kib - base) / 1024
    graph_mb = (after_graph - base) / 1024
    model_mb = (after_model - after_graph) / 1024
    state_mb = 3 * params * 4 / MIB
    timed = times[1:] if len(times) > 1 else times
    return {
        "peak_mb": peak,
        "epoch_s": statistics.median(timed),
        "graph_mb": graph_mb,
        "model_mb": model_mb,
        "state_mb": state_mb,
        "working_mb": peak - graph_mb - model_mb - state_mb,
        "params": params,
        "epoch_times_s": times,
        "losses": losses,
        "num_edges": int(edge_index.size(1)),
        "peak_source": source,
    }


# --------------------------------------------------------------------------- parent


def run_child(spec: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """Run :func:`measure` for ``spec`` in a fresh interpreter; its result or a failure row."""
    env = {**os.environ, **MALLOC_ENV, "OMP_NUM_THREADS": str(spec["threads"])}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"timed out after {timeout} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {
            "status": "failed",
            "error": f"exit code {proc.returncode}: " + " | ".join(tail),
        }
    return {"status": "ok", **json.loads(lines[-1])}


def project(measured: list[tuple[int, float]], depth: int) -> float | None:
    """Peak at ``depth``, linear in depth through the two largest measured depths (through
    the origin from a single one); ``None`` without any."""
    if not measured:
        return None
    if len(measured) == 1:
        d, p = measured[0]
        return p * depth / d
    (d1, p1), (d2, p2) = sorted(measured)[-2:]
    slope = max((p2 - p1) / (d2 - d1), 0.0)
    return p2 + slope * (depth - d2)


def run_block(args: argparse.Namespace, block: str, log: Any = print) -> list[dict[str, Any]]:
    """The rows of one block, depth by depth (each projection needs the smaller depths)."""
    rows: list[dict[str, Any]] = []
    measured: list[tuple[int, float]] = []
    for depth in sorted(args.depths):
        row: dict[str, Any] = {"depth": depth, "block": block}
        projected = project(measured, depth)
        if projected is not None and projected > args.max_mb:
            row.update(status="skipped", peak_mb=None, epoch_s=None)
            row["projected_peak_mb"] = projected
            row["note"] = f"projected peak {projected:.0f} MB > --max-mb {args.max_mb:.0f}"
            log(f"{block:>10} depth {depth:>5}: skipped ({row['note']})")
            rows.append(row)
            continue
        spec = {
            "block": block,
            "depth": depth,
            "nodes": args.nodes,
            "degree": args.degree,
            "features": args.features,
            "classes": args.classes,
            "hidden": args.hidden,
            "groups": args.groups,
            "dropout": args.dropout,
            "epochs": args.epochs,
            "threads": args.threads,
            "seed": args.seed,
        }
        t0 = time.perf_counter()
        row.update(run_child(spec, args.timeout))
        row.setdefault("peak_mb", None)
        row.setdefault("epoch_s", None)
        row["wall_s"] = time.perf_counter() - t0
        if row["status"] == "ok":
            measured.append((depth, row["peak_mb"]))
            log(
                f"{block:>10} depth {depth:>5}: peak {row['peak_mb']:.1f} MB, "
                f"epoch {row['epoch_s']:.2f} s"
            )
        else:
            log(f"{block:>10} depth {depth:>5}: failed ({row['error']})")
        rows.append(row)
    return rows


def run_benchmark(args: argparse.Namespace, log: Any = print) -> dict[str, Any]:
    """Every (depth, block) row, the per-block ratios and the set-up.

    With ``args.jobs > 1`` blocks run concurrently (each run is still its own process, so
    peaks stay separate; epoch times then share the CPU).
    """
    if args.jobs > 1:
        with ThreadPoolExecutor(args.jobs) as pool:
            per_block = list(pool.map(lambda b: run_block(args, b, log), args.blocks))
    else:
        per_block = [run_block(args, b, log) for b in args.blocks]
    rows = [row for block_rows in per_block for row in block_rows]
    return summarise({"rows": rows, "setup": setup(args)}, sorted(args.depths))


def summarise(result: dict[str, Any], depths: list[int]) -> dict[str, Any]:
    """``result`` with its per-block ``ratios`` and ``growth`` (re)computed from its rows."""
    result["ratios"] = ratios(result["rows"], depths)
    result["growth"] = growth(result["rows"])
    return result


def growth(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per block, what grew between its smallest and largest *measured* depth, split as the
    rows split the peak, in MB and in MB per added layer."""
    out: dict[str, Any] = {}
    for block in dict.fromkeys(r["block"] for r in rows):
        ok = sorted(
            (r for r in rows if r["block"] == block and r["status"] == "ok"),
            key=lambda r: r["depth"],
        )
        if len(ok) < 2:
            continue
        lo, hi = ok[0], ok[-1]
        layers = hi["depth"] - lo["depth"]
        delta = {k: hi[k] - lo[k] for k in ("peak_mb", "model_mb", "state_mb", "working_mb")}
        out[block] = {
            "from_depth": lo["depth"],
            "to_depth": hi["depth"],
            **{f"delta_{k}": v for k, v in delta.items()},
            "peak_mb_per_layer": delta["peak_mb"] / layers,
            # how much of the growth is parameters, their gradients and Adam state, and the
            # module objects: memory any deeper model pays, reversible or not
            "model_and_state_share": (
                (delta["model_mb"] + delta["state_mb"]) / delta["peak_mb"]
                if delta["peak_mb"] > 0
                else None
            ),
        }
    return out


def ratios(rows: list[dict[str, Any]], depths: list[int]) -> dict[str, Any]:
    """Per block, peak at the largest depth / peak at the smallest (and the same for the
    working set), marked ``projected`` when the larger figure is a projection."""
    out: dict[str, Any] = {}
    lo, hi = depths[0], depths[-1]
    for block in dict.fromkeys(r["block"] for r in rows):
        by_depth = {r["depth"]: r for r in rows if r["block"] == block}
        small, large = by_depth.get(lo), by_depth.get(hi)
        if small is None or large is None or small.get("peak_mb") is None or lo == hi:
            continue
        entry: dict[str, Any] = {"from_depth": lo, "to_depth": hi}
        if large.get("peak_mb") is not None:
            entry["ratio"] = large["peak_mb"] / small["peak_mb"]
            entry["working_ratio"] = large["working_mb"] / small["working_mb"]
            entry["projected"] = False
        elif large.get("projected_peak_mb") is not None:
            entry["ratio"] = large["projected_peak_mb"] / small["peak_mb"]
            entry["projected"] = True
        else:
            continue
        out[block] = entry
    return out


def setup(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import torch_geometric

    return {
        "nodes": args.nodes,
        "mean_degree": args.degree,
        "features": args.features,
        "classes": args.classes,
        "hidden": args.hidden,
        "groups": args.groups,
        "dropout": args.dropout,
        "norm": "batch",
        "conv": "gcn",
        "encoder": "linear",
        "head": "linear",
        "optimizer": "adam(lr=0.01)",
        "epochs": args.epochs,
        "threads": args.threads,
        "jobs": args.jobs,
        "seed": args.seed,
        "max_mb": args.max_mb,
        "peak_mb": (
            "VmHWM at the end of training minus VmRSS before generating the graph, in a fresh "
            "process (peak counter reset after generating the graph): graph, model, "
            "gradients, optimiser state, activations, temporaries"
        ),
        "epoch_s": "median over epochs after the first of one training step "
        "(forward, backward, optimiser step)",
        "malloc_env": MALLOC_ENV,
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "command": " ".join(["benchmarks/memory_depth.py", *sys.argv[1:]]),
    }


def _fmt(value: Any, spec: str) -> str:
    return "—" if value is None else format(value, spec)


COLUMNS = [
    ("block", "block"),
    ("depth", "depth"),
    ("status", "status"),
    ("peak MB", "peak_mb"),
    ("epoch s", "epoch_s"),
    ("graph MB", "graph_mb"),
    ("model MB", "model_mb"),
    ("grad+Adam MB", "state_mb"),
    ("working MB", "working_mb"),
    ("params", "params"),
]


def _cells(row: dict[str, Any]) -> list[str]:
    cells = []
    for _, key in COLUMNS:
        value = row.get(key)
        if key == "status" and row["status"] == "skipped":
            cells.append(f"skipped (projected {row['projected_peak_mb']:.0f} MB)")
        elif key in ("block", "status", "depth"):
            cells.append(str(value))
        elif key == "params":
            cells.append(_fmt(value, ","))
        elif key == "epoch_s":
            cells.append(_fmt(value, ".2f"))
        else:
            cells.append(_fmt(value, ".1f"))
    return cells


def _growth_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for block, g in result.get("growth", {}).items():
        share = g["model_and_state_share"]
        text = (
            f"{block} ({g['from_depth']} -> {g['to_depth']} layers): peak "
            f"{g['delta_peak_mb']:+.1f} MB ({g['peak_mb_per_layer'] * 1024:.0f} KiB per layer) = "
            f"model {g['delta_model_mb']:+.1f} + grad/Adam {g['delta_state_mb']:+.1f} + working "
            f"{g['delta_working_mb']:+.1f}"
        )
        if share is not None:
            text += f"; model + grad/Adam are {100 * share:.0f}% of the growth"
        lines.append(text)
    return lines


def _ratio_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for block, r in result["ratios"].items():
        kind = "PROJECTED (not run)" if r["projected"] else "measured"
        text = (
            f"{block}: peak({r['to_depth']}) / peak({r['from_depth']}) = {r['ratio']:.2f}x ({kind})"
        )
        if "working_ratio" in r:
            text += f"; working set {r['working_ratio']:.2f}x"
        if block == "reversible":
            met = "met" if r["ratio"] <= TARGET else "NOT met"
            text += f"; target <= {TARGET}x {met}"
        lines.append(text)
    return lines


def to_markdown(result: dict[str, Any]) -> str:
    s = result["setup"]
    lines = [
        f"# Peak memory against depth ({s['nodes']:,}-node CSBM graph, hidden {s['hidden']})",
        "",
        f"Command: `OMP_NUM_THREADS={s['threads']} python {s['command']}`",
        "",
        f"Full-batch node classification, GCN blocks with batch norm, ReLU and dropout "
        f"{s['dropout']}, linear encoder and head, Adam; {s['epochs']} training epochs per run, "
        f"{s['threads']} thread(s), torch {s['torch']}, PyG {s['torch_geometric']}. Target "
        f"(issue 7): reversible peak at the largest depth ≤ {TARGET}× its peak at the smallest.",
        "",
        f"**peak MB** (MB = 2^20 bytes): {s['peak_mb']}. Each (depth, block) ran in its own "
        "process. "
        "**graph MB** and **model MB** are measured RSS growth from generating the graph and "
        "from building the model and optimiser (parameters and Python module objects); "
        "**grad+Adam MB** is computed (3 × parameter bytes); **working MB** = peak − those "
        "three (activations kept for backward, the cached normalised adjacency built by the "
        "first forward pass, temporaries). graph MB also holds modules the generator imports "
        "on first use (about 10 MB: a 2,000-node graph, 0.6 MB of tensors, shows 12 MB). "
        "**epoch s**: "
        f"{s['epoch_s']}. Skipped rows were not run: their figure is a linear projection "
        f"from smaller depths of the same block, over `--max-mb {s['max_mb']:.0f}`, never a "
        "measurement.",
        "",
        "| " + " | ".join(name for name, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in result["rows"]:
        lines.append("| " + " | ".join(_cells(row)) + " |")
    lines += ["", "## Ratios", ""]
    lines += [f"- {line}" for line in _ratio_lines(result)]
    lines += ["", "## What grows with depth (measured depths only)", ""]
    lines += [f"- {line}" for line in _growth_lines(result)]
    failed = [r for r in result["rows"] if r["status"] == "failed"]
    if failed:
        lines += ["", "## Failed runs", ""]
        lines += [f"- {r['block']} depth {r['depth']}: {r['error']}" for r in failed]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    """Peak MB against depth, one line per block on log-log axes: measured rows as filled
    markers, projected (skipped) rows as hollow ones on a dashed line, and the target
    ``TARGET`` x the reversible model's smallest-depth peak as a dotted line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for block in dict.fromkeys(r["block"] for r in result["rows"]):
        rows = sorted((r for r in result["rows"] if r["block"] == block), key=lambda r: r["depth"])
        measured = [(r["depth"], r["peak_mb"]) for r in rows if r.get("peak_mb") is not None]
        projected = [
            (r["depth"], r["projected_peak_mb"]) for r in rows if r.get("projected_peak_mb")
        ]
        if not measured:
            continue
        (line,) = ax.plot(*zip(*measured, strict=True), marker="o", label=block)
        if projected:
            xs, ys = zip(*([measured[-1], *projected]), strict=True)
            ax.plot(xs, ys, linestyle="--", color=line.get_color())
            ax.plot(
                [d for d, _ in projected],
                [p for _, p in projected],
                linestyle="none",
                marker="o",
                markerfacecolor="none",
                color=line.get_color(),
            )
    reversible = sorted(
        (r for r in result["rows"] if r["block"] == "reversible" and r.get("peak_mb")),
        key=lambda r: r["depth"],
    )
    if reversible:
        ax.axhline(
            TARGET * reversible[0]["peak_mb"],
            linestyle=":",
            color="black",
            label=f"target: {TARGET}x reversible at {reversible[0]['depth']}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("layers")
    ax.set_ylabel("peak memory (MB)")
    ax.set_title(
        f"Peak memory by depth, {result['setup']['nodes']:,}-node graph "
        "(hollow: projected, not run)",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_table(result: dict[str, Any]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # rich is a dependency; plain text if it is missing anyway
        print(to_markdown(result))
        return
    table = Table(title=f"Peak memory against depth ({result['setup']['nodes']:,} nodes)")
    for name, _ in COLUMNS:
        table.add_column(name, justify="left" if name in ("block", "status") else "right")
    for row in result["rows"]:
        table.add_row(*_cells(row))
    console = Console()
    console.print(table)
    for line in _ratio_lines(result) + _growth_lines(result):
        console.print(line)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _block_list(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in BLOCKS]
    if bad or not values:
        raise argparse.ArgumentTypeError(
            f"unknown block(s) {', '.join(bad) or text!r}; choose from {', '.join(BLOCKS)}"
        )
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, help="write the result as JSON here")
    p.add_argument("--md", type=Path, help="write a markdown report here")
    p.add_argument("--plot", type=Path, help="write a PNG of peak memory against depth here")
    p.add_argument("--nodes", type=int, default=50_000)
    p.add_argument("--degree", type=float, default=10.0, help="mean degree of the graph")
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--depths", type=_int_list, default=[8, 32, 128, 512, 1000])
    p.add_argument("--blocks", type=_block_list, default=list(BLOCKS))
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--groups", type=int, default=2, help="groups of a reversible block")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max-mb",
        type=float,
        default=4000.0,
        help="skip runs whose projected peak exceeds this (MB)",
    )
    p.add_argument("--timeout", type=float, default=None, help="seconds per run")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="blocks measured concurrently (peaks stay per process; epoch times share CPUs)",
    )
    p.add_argument(
        "--from-json",
        type=Path,
        help="do not run: print and write the report of an earlier run's JSON",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(json.loads(args.child))))
        return 0
    if args.from_json is not None:
        result = json.loads(args.from_json.read_text())
        depths = sorted({r["depth"] for r in result["rows"]})
        result = summarise(result, depths)
    else:
        result = run_benchmark(args, log=lambda m: print(m, file=sys.stderr, flush=True))
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(to_markdown(result))
    if args.plot:
        plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
