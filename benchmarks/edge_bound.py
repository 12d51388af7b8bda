"""res28-clouds with EdgeConv cut to its least per-edge work: can any torch-op EdgeConv reach
0.5x PyG's epoch?

``deep_speed``'s res28-clouds workload (DeepGCN's ResGCN-28 on two 4,096-point clouds,
dynamic dilated k-NN in every layer) is timed three ways, interleaved in one process as
``deep_speed`` times (after the warm-up each round runs every side once, the order
alternating):

``pyg``
    PyG's twin (``deep_speed``'s: PyG ``EdgeConv`` in DeepGCN's layout, ``cdist`` + ``topk``
    k-NN);
``fathom``
    fathom's model as it trains;
``bound``
    the same fathom model with every ``EdgeConv`` doing less than the model: the two
    per-point projections, one gather of the neighbour rows into an ``[N, k, C]`` tensor and
    the max over it, plus the centre projection added per point. No per-edge add, ReLU or
    BatchNorm over edges. Any EdgeConv built from torch ops materialises the gathered rows
    (the op that reads them) and reduces them, forward and backward, so this is a lower
    bound on such an EdgeConv's epoch; everything else (the k-NN, the other layers, the
    optimiser, the evaluation pass) is fathom's own, unchanged.

``bound / pyg`` above 0.5 means no EdgeConv made of torch ops brings the epoch to 0.5x PyG's
on this machine; what would is a fused native kernel (not shipped: fathom is pure Python).

Usage::

    FATHOM_DATA=../shared/datasets python benchmarks/edge_bound.py --threads 1 \\
        --json docs/results/edge_bound.json --md docs/results/edge_bound.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deep_speed

from fathom import FathomError
from fathom.files import atomic_path, check_output_file, write_json
from fathom.nn.aggregations import gather_rows
from fathom.nn.point_convs import EdgeConv, _NeighbourMax, neighbours_per_point

SIDES = ("pyg", "fathom", "bound")
WORKLOAD = "res28-clouds"


def bound_forward(conv: EdgeConv, x: Tensor, edge_index: Tensor) -> Tensor:
    """``conv``'s per-point projections, one gather of the neighbour rows, their max, and the
    centre projection per point: less per-edge work than :meth:`EdgeConv.forward` (no per-edge
    add, activation or normalisation), on the ``k``-per-point layout of the k-NN graphs."""
    n, out = x.size(0), conv.out_channels
    center, neighbour = conv.projections(x)
    k = neighbours_per_point(edge_index, n)
    if k is None:
        raise ValueError("bound_forward needs k contiguous in-edges per point (a k-NN graph)")
    edges = gather_rows(neighbour, edge_index[0]).view(n, k, out)
    return _NeighbourMax.apply(edges) + center


def to_bound(model: nn.Module) -> int:
    """Give every :class:`EdgeConv` of ``model`` :func:`bound_forward`; the count."""
    convs = [m for m in model.modules() if isinstance(m, EdgeConv)]
    for conv in convs:
        conv.forward = types.MethodType(bound_forward, conv)  # type: ignore[method-assign]
    return len(convs)


def measure(
    tiny: bool, points: int | None, epochs: int, warmup: int
) -> tuple[dict[str, list[float]], int]:
    """Epoch seconds of every side (``SIDES``), interleaved; and the EdgeConvs cut down."""
    workload = deep_speed.make_workloads(tiny, 1000, cloud_points=points)[WORKLOAD]
    data = deep_speed.load_data(workload)
    built: dict[str, Callable[[], Any]] = {}
    convs = 0
    for side in SIDES:
        model, epoch = deep_speed.build_impl(workload, "pyg" if side == "pyg" else "fathom", data)
        if side == "bound":
            convs = to_bound(model)
        built[side] = epoch
    for _ in range(warmup):
        for side in SIDES:
            built[side]()
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    for r in range(epochs):
        for side in SIDES if r % 2 == 0 else SIDES[::-1]:
            start = time.perf_counter()
            built[side]()
            times[side].append(time.perf_counter() - start)
            print(f"round {r + 1}/{epochs} {side}: {times[side][-1]:.1f} s", file=sys.stderr)
    return times, convs


def to_markdown(result: dict[str, Any]) -> str:
    env, med = result["environment"], result["median_s"]
    lines = [
        "# res28-clouds: EdgeConv at its least per-edge work",
        "",
        f"Produced by: `{result['command']}`",
        "",
        f"{result['epochs']} timed epochs per side after {result['warmup']} warm-up, "
        f"interleaved; {env['threads']} thread(s), torch {env['torch']}, PyG "
        f"{env['torch_geometric']}, {env['cpu']} (load average at start "
        f"{env['load_average'][0]:.2f}). {result['edge_convs']} EdgeConvs cut down in `bound`.",
        "",
        "| side | s per epoch (median) | epochs (s) | / PyG |",
        "|---|---:|---|---:|",
    ]
    for side in SIDES:
        runs = ", ".join(f"{t:.1f}" for t in result["times_s"][side])
        lines.append(f"| {side} | {med[side]:.1f} | {runs} | {med[side] / med['pyg']:.3f} |")
    lines += [
        "",
        "`bound`: fathom's model with every EdgeConv reduced to the per-point projections, one "
        "gather of the neighbour rows and their max (no per-edge add, ReLU or BatchNorm): less "
        "than the model computes, a lower bound on an EdgeConv made of torch ops.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge_bound.py", description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="default 2 (tiny: 1)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--points", type=int, default=None, help="points per cloud")
    parser.add_argument("--tiny", action="store_true", help="small clouds and model")
    parser.add_argument("--json", type=Path, metavar="PATH")
    parser.add_argument("--md", type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (1 if args.tiny else 2)
    if epochs < 1 or args.warmup < 0 or args.threads < 1 or (args.points or 1) < 1:
        print("edge_bound.py: error: epochs, threads and points must be >= 1", file=sys.stderr)
        return 2
    try:
        for flag, path in (("--json", args.json), ("--md", args.md)):
            if path is not None:
                check_output_file(path, flag)
    except FathomError as exc:
        print(f"edge_bound.py: error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    env = deep_speed._environment(args.threads, torch.device("cpu"))
    times, convs = measure(args.tiny, args.points, epochs, args.warmup)
    median = {side: statistics.median(t) for side, t in times.items()}
    result = {
        "command": "python benchmarks/edge_bound.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "environment": env,
        "epochs": epochs,
        "warmup": args.warmup,
        "edge_convs": convs,
        "times_s": times,
        "median_s": median,
        "ratio_to_pyg": {side: median[side] / median["pyg"] for side in SIDES},
    }
    for side in SIDES:
        print(f"{side}: {median[side]:.2f} s per epoch, {result['ratio_to_pyg'][side]:.3f} of PyG")
    if args.json:
        write_json(args.json, result)
    if args.md:
        with atomic_path(args.md) as tmp:
            tmp.write_text(to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
