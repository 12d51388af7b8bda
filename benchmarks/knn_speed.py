"""fathom's dilated k-NN graph against a dense ``cdist`` + ``topk``, side by side in one run.

``fathom``  :func:`fathom.nn.knn.dilated_knn_graph`: distances in blocks of ``--block``
            query points (O(block x N) memory), exact ranking (ties by the lower index, the
            result of sorting every distance).
``dense``   ``torch.cdist`` over all pairs of a cloud (clouds batched as ``[C, N, F]``), then
            ``topk(k * d)`` and every d-th: the fastest a PyG user writes without torch-cluster
            (O(N^2) memory, topk's choice among tied distances arbitrary). Both build the same
            ``edge_index`` layout.

Two parts:

* ``deepgcn`` (with ``--deepgcn``): DeepGCN's setting, clouds of ``--cloud-points``
  (4,096) points, ``k`` in ``--ks``, dilations ``--dilations`` (1..4, as the dilated layers
  use), ``--clouds`` clouds per batch, ``--features`` feature widths (3: coordinates at the
  first layer; 64: deeper layers). fathom and dense alternate round by round (which goes
  first alternates too); the time of each is the median over ``--rounds`` after one warm-up
  of each.
* ``rows``: one cloud of each of ``--sizes`` points, k = ``--k``, dilation ``--dilation``;
  dense only up to ``--dense-max`` points. Sizes above ``--rss-above`` run in a fresh
  subprocess that also reports its peak RSS growth (``VmHWM`` after the call minus before it;
  ``ru_maxrss`` would report the parent's peak, which Linux keeps across exec), to show
  that memory stays O(block x N), not O(N^2).

Results print as tables and go to ``--json`` (and ``--md``).

Usage::

    .venv/bin/python benchmarks/knn_speed.py --deepgcn --threads 1 --sizes 16384,100000 \\
        --json docs/results/knn_speed.json --md docs/results/knn_speed.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from fathom.nn.knn import dilated_knn_graph


def _dense(x: torch.Tensor, k: int, dilation: int, clouds: int = 1) -> torch.Tensor:
    """``cdist`` + ``topk`` over ``clouds`` equal clouds stacked in ``x``; PyG's layout."""
    n = x.size(0) // clouds
    xs = x.view(clouds, n, x.size(1))
    nbrs = torch.cdist(xs, xs).topk(k * dilation, dim=2, largest=False).indices[:, :, ::dilation]
    nbrs = nbrs + (torch.arange(clouds) * n).view(-1, 1, 1)
    target = torch.arange(clouds * n).repeat_interleave(k)
    return torch.stack([nbrs.reshape(-1), target])


def _fathom(
    x: torch.Tensor, k: int, dilation: int, clouds: int = 1, block: int = 1024
) -> torch.Tensor:
    """fathom's k-NN graph over ``clouds`` equal clouds stacked in ``x``."""
    batch = None
    if clouds > 1:
        batch = torch.arange(clouds).repeat_interleave(x.size(0) // clouds)
    return dilated_knn_graph(x, k, batch, dilation=dilation, block_size=block)


def _time(fn: Callable[[], object], rounds: int) -> float:
    """Median wall time of ``fn`` over ``rounds`` after one warm-up."""
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _interleaved(
    a: Callable[[], object], b: Callable[[], object], rounds: int
) -> tuple[float, float]:
    """Median times of ``a`` and ``b`` run alternately (the first alternating too)."""
    a()
    b()
    ta, tb = [], []
    for r in range(rounds):
        for fn, times in ((a, ta), (b, tb)) if r % 2 == 0 else ((b, tb), (a, ta)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb)


def _points(n: int, features: int, seed: int) -> torch.Tensor:
    return torch.rand(n, features, generator=torch.Generator().manual_seed(seed))


_CHILD = """
import json, resource, sys, time, torch
torch.set_num_threads({threads})
from fathom.nn.knn import dilated_knn_graph
x = torch.rand({n}, 3, generator=torch.Generator().manual_seed({n}))
def peak_kib():  # VmHWM: this process's own peak (ru_maxrss keeps the parent's across exec)
    try:
        status = open("/proc/self/status").read()
        return int(status.split("VmHWM:")[1].split()[0])
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before = peak_kib()
start = time.perf_counter()
dilated_knn_graph(x, {k}, dilation={dilation}, block_size={block})
seconds = time.perf_counter() - start
after = peak_kib()
print(json.dumps({{"seconds": seconds, "rss_growth_bytes": (after - before) * 1024}}))
"""


def _in_subprocess(n: int, args: argparse.Namespace) -> dict[str, float]:
    """Time of one graph of ``n`` points and the peak RSS growth of a fresh process."""
    code = _CHILD.format(
        threads=args.threads, n=n, k=args.k, dilation=args.dilation, block=args.block
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ints(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 2 on a malformed list argument."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deepgcn", action="store_true", help="run the DeepGCN cloud grid")
    parser.add_argument("--cloud-points", type=int, default=4096)
    parser.add_argument("--ks", default="9,16")
    parser.add_argument("--dilations", default="1,2,3,4")
    parser.add_argument("--clouds", default="1,4")
    parser.add_argument("--features", default="3")
    parser.add_argument("--sizes", default="4096,16384,100000")
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--dilation", type=int, default=2)
    parser.add_argument("--block", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dense-max", type=int, default=16384)
    parser.add_argument("--rss-above", type=int, default=50000)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--md", metavar="PATH")
    args = parser.parse_args(argv)
    try:
        sizes, ks, dilations = _ints(args.sizes), _ints(args.ks), _ints(args.dilations)
        clouds_list, features_list = _ints(args.clouds), _ints(args.features)
    except ValueError:
        sys.stderr.write(
            "knn_speed: --sizes/--ks/--dilations/--clouds/--features must be "
            f"comma-separated integers: {args.sizes}\n"
        )
        return 2
    torch.set_num_threads(args.threads)

    deepgcn = []
    n = args.cloud_points
    for features in features_list if args.deepgcn else []:
        for clouds in clouds_list:
            x = _points(n * clouds, features, seed=n * clouds + features)
            for k in ks:
                for d in dilations:
                    if k * d > n:
                        continue
                    tf, td = _interleaved(
                        lambda x=x, k=k, d=d, c=clouds: _fathom(x, k, d, c, args.block),
                        lambda x=x, k=k, d=d, c=clouds: _dense(x, k, d, c),
                        args.rounds,
                    )
                    row = {
                        "features": features,
                        "clouds": clouds,
                        "k": k,
                        "dilation": d,
                        "fathom_s": tf,
                        "dense_s": td,
                        "fathom_over_dense_time": tf / td,
                    }
                    deepgcn.append(row)
                    print(
                        f"{clouds} x {n} points, F={features}, k={k}, d={d}: fathom "
                        f"{tf * 1e3:.1f} ms, dense {td * 1e3:.1f} ms, ratio {tf / td:.2f}",
                        flush=True,
                    )

    rows = []
    for n in sizes:
        row: dict[str, float | int | None] = {"points": n, "rss_growth_bytes": None}
        if n > args.rss_above:
            child = _in_subprocess(n, args)
            t = child["seconds"]
            row["rss_growth_bytes"] = child["rss_growth_bytes"]
        else:
            x = _points(n, 3, seed=n)
            if n <= args.dense_max:
                t, td = _interleaved(
                    lambda x=x: _fathom(x, args.k, args.dilation, 1, args.block),
                    lambda x=x: _dense(x, args.k, args.dilation),
                    args.rounds,
                )
            else:
                t = _time(lambda x=x: _fathom(x, args.k, args.dilation, 1, args.block), args.rounds)
        row["fathom_s"], row["fathom_points_per_s"] = t, n / t
        if n <= args.dense_max and n <= args.rss_above:
            row["dense_s"], row["dense_points_per_s"] = td, n / td
            row["fathom_over_dense_time"] = t / td
        else:
            row["dense_s"] = row["dense_points_per_s"] = row["fathom_over_dense_time"] = None
        rows.append(row)
        print(
            f"{n:>7} points: fathom {t:.3f} s ({n / t:,.0f} points/s)"
            + (f", dense {row['dense_s']:.3f} s" if row["dense_s"] is not None else "")
            + (
                f", peak RSS growth {row['rss_growth_bytes'] / 2**20:,.0f} MiB"
                if row["rss_growth_bytes"] is not None
                else ""
            ),
            flush=True,
        )
    result = {
        "k": args.k,
        "dilation": args.dilation,
        "block": args.block,
        "threads": args.threads,
        "rounds": args.rounds,
        "cloud_points": args.cloud_points,
        "torch": torch.__version__,
        "deepgcn": deepgcn,
        "rows": rows,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.md:
        Path(args.md).write_text(_markdown(result))
    return 0


def _markdown(result: dict) -> str:
    """The two tables of ``result`` as markdown."""
    lines = (
        []
        if not result["deepgcn"]
        else [
            f"DeepGCN clouds of {result['cloud_points']:,} points, block {result['block']}, "
            f"{result['threads']} threads, median of {result['rounds']} interleaved rounds",
            "",
            "| features | clouds | k | dilation | fathom (ms) | dense cdist+topk (ms) "
            "| fathom / dense time |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
    )
    for r in result["deepgcn"]:
        lines.append(
            f"| {r['features']} | {r['clouds']} | {r['k']} | {r['dilation']} "
            f"| {r['fathom_s'] * 1e3:.1f} | {r['dense_s'] * 1e3:.1f} "
            f"| {r['fathom_over_dense_time']:.2f} |"
        )
    lines += [
        *([""] if lines else []),
        f"One cloud, k={result['k']}, dilation {result['dilation']}, 3-D points",
        "",
        "| points | fathom (s) | points/s | dense cdist+topk (s) | fathom / dense time "
        "| peak RSS growth (MiB) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        dense = "–" if r["dense_s"] is None else f"{r['dense_s']:.3f}"
        ratio = "–" if r["fathom_over_dense_time"] is None else f"{r['fathom_over_dense_time']:.2f}"
        rss = "–" if r["rss_growth_bytes"] is None else f"{r['rss_growth_bytes'] / 2**20:,.0f}"
        lines.append(
            f"| {r['points']:,} | {r['fathom_s']:.3f} | {r['fathom_points_per_s']:,.0f} | "
            f"{dense} | {ratio} | {rss} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
