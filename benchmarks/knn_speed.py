"""Throughput of fathom's blockwise dilated k-NN graph, side by side with a one-shot baseline.

``fathom``    :func:`fathom.nn.knn.dilated_knn_graph` (distances in blocks of
              ``--block`` query points, exact tie-breaking), k=16, dilation 2 (DeepGCN's
              ResGCN-28 setting), 3-D points.
``dense``     ``torch.cdist`` over all pairs then ``topk`` (what one writes without blocks;
              O(N^2) memory, so only run up to ``--dense-max`` points).

Points per second is points / wall time of one graph; median over ``--rounds`` after one
warm-up. Results print as a table and go to ``--json`` (and ``--md``).

Usage::

    .venv/bin/python benchmarks/knn_speed.py --sizes 4096,16384,65536,100000 \\
        --json runs/knn_speed.json --md runs/knn_speed.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from fathom.nn.knn import dilated_knn_graph


def _dense(x: torch.Tensor, k: int, dilation: int) -> torch.Tensor:
    nbrs = torch.cdist(x, x).topk(k * dilation, dim=1, largest=False).indices[:, ::dilation]
    return nbrs


def _time(fn, rounds: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4096,16384,65536,100000")
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--dilation", type=int, default=2)
    parser.add_argument("--block", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dense-max", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--md", metavar="PATH")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        sys.stderr.write(f"knn_speed: --sizes must be comma-separated integers: {args.sizes}\n")
        return 2
    torch.set_num_threads(args.threads)
    rows = []
    for n in sizes:
        x = torch.rand(n, 3, generator=torch.Generator().manual_seed(n))
        row: dict[str, float | int | None] = {"points": n}
        t = _time(
            lambda x=x: dilated_knn_graph(x, args.k, dilation=args.dilation, block_size=args.block),
            args.rounds,
        )
        row["fathom_s"], row["fathom_points_per_s"] = t, n / t
        if n <= args.dense_max:
            td = _time(lambda x=x: _dense(x, args.k, args.dilation), args.rounds)
            row["dense_s"], row["dense_points_per_s"] = td, n / td
            row["fathom_over_dense_time"] = t / td
        else:
            row["dense_s"] = row["dense_points_per_s"] = row["fathom_over_dense_time"] = None
        rows.append(row)
        print(
            f"{n:>7} points: fathom {t:.3f} s ({n / t:,.0f} points/s)"
            + (f", dense {row['dense_s']:.3f} s" if row["dense_s"] is not None else "")
        )
    result = {
        "k": args.k,
        "dilation": args.dilation,
        "block": args.block,
        "threads": args.threads,
        "torch": torch.__version__,
        "rows": rows,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.md:
        lines = [
            f"k={args.k}, dilation {args.dilation}, block {args.block}, {args.threads} threads, "
            "median of rounds",
            "",
            "| points | fathom (s) | points/s | dense cdist+topk (s) | fathom / dense time |",
            "|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            dense = "–" if r["dense_s"] is None else f"{r['dense_s']:.3f}"
            ratio = (
                "–" if r["fathom_over_dense_time"] is None else f"{r['fathom_over_dense_time']:.2f}"
            )
            lines.append(
                f"| {r['points']:,} | {r['fathom_s']:.3f} | {r['fathom_points_per_s']:,.0f} | "
                f"{dense} | {ratio} |"
            )
        Path(args.md).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
