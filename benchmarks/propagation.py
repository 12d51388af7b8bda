"""One propagation ``Â·X`` (forward, and backward: the gradient w.r.t. ``X``) against torch's
CSR SpMM, PyG's gather/scatter path and the memory-bandwidth roofline, measured in one run.

Cases, each on the same seeded random undirected graph (``N`` nodes, ``N·degree/2`` random
node pairs in both directions, GCN-normalised with self-loops) and the same ``X``:

- ``fathom``: :func:`fathom.nn.adjacency.propagate` on the cached
  :func:`~fathom.nn.adjacency.gcn_adjacency` (backward through its cached transpose);
- ``fathom_int64``: fathom's propagation before the int32 kernel form (``torch.sparse.mm``
  on the int64-indexed matrix, backward on the cached int64 transpose): the "before";
- ``torch_csr``: ``torch.sparse.mm(csr, x)`` on the same CSR matrix (int64 indices; its
  backward is torch's own, which rebuilds the transposed matrix at every call);
- ``pyg``: a :class:`~torch_geometric.nn.MessagePassing` GCN propagation on ``edge_index``
  with edge weights (``GCNConv``'s message ``w_ij · x_j``, ``aggr="add"``): gather rows per
  edge, scale, scatter-add. This is the path PyG takes without ``torch-sparse``. Skipped
  where its ``[nnz, d]`` message tensor would exceed ``--pyg-max-gb``.

The roofline is a stream copy ``dst.copy_(src)`` of a ``--copy-mb`` float32 tensor (at
least 512 MB), ``GB/s = 2 · bytes / time``, best over every round, with the same thread
count as the products. Bytes moved by one product ``Â·X`` (``N`` rows, ``nnz`` non-zeros,
``d`` columns, float32 values, int64 column indices; row offsets neglected):

- minimum (worst case, every gathered row read from memory):
  ``nnz·12 B`` (values + column indices, 4 + 8 B) ``+ nnz·d·4 B`` (gathered rows)
  ``+ N·d·4 B`` (output);
- ideal (each row of ``X`` read once, as if it stayed in cache):
  ``nnz·12 B + N·d·4 B`` (``X``) ``+ N·d·4 B`` (output).

The backward (``Âᵀ·G``) moves the same bytes. For each case the table gives the median time
over ``--rounds`` rounds (cases interleaved within a round, their order rotated from round
to round, after one warm-up round), the
achieved GB/s (minimum bytes / time) and its % of the measured roofline, and the same for
the ideal bytes.

Usage::

    .venv/bin/python benchmarks/propagation.py --threads 2 \\
        --json docs/results/propagation.json --md docs/results/propagation.md
    .venv/bin/python benchmarks/propagation.py --sizes 200000 --degrees 10 --widths 64
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from fathom.nn.adjacency import _SparseDenseMM, gcn_adjacency, propagate, transposed

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


class _GCNPropagation(MessagePassing):
    """PyG's GCN propagation on ``edge_index``: ``out_i = Σ_j w_ji · x_j`` by gather/scatter."""

    def __init__(self) -> None:
        super().__init__(aggr="add")

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor) -> Tensor:
        """Propagate ``x`` along ``edge_index`` (source -> target) scaled by ``edge_weight``."""
        return self.propagate(edge_index, x=x, edge_weight=edge_weight)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        """``w_ij · x_j``, as in :class:`~torch_geometric.nn.GCNConv`."""
        return edge_weight.view(-1, 1) * x_j


def random_graph(num_nodes: int, degree: int, seed: int, window: int | None = None) -> Tensor:
    """``[2, N·degree]`` edges: ``N·degree/2`` seeded random pairs, in both directions.

    ``window=None``: both ends uniform over all nodes (no locality: the worst case for the
    gathers). ``window=w``: the second end within ``±w/2`` of the first (a banded graph, as
    a locality-preserving node order such as RCM or METIS gives real graphs).
    """
    g = torch.Generator().manual_seed(seed)
    pairs = num_nodes * degree // 2
    src = torch.randint(0, num_nodes, (pairs,), generator=g)
    if window is None:
        dst = torch.randint(0, num_nodes, (pairs,), generator=g)
    else:
        offset = torch.randint(-(window // 2), window // 2 + 1, (pairs,), generator=g)
        dst = (src + offset).clamp(0, num_nodes - 1)
    edges = torch.stack([src, dst])
    return torch.cat([edges, edges.flip(0)], 1)


def min_bytes(num_nodes: int, nnz: int, width: int) -> int:
    """Bytes ``Â·X`` must move when every gathered row comes from memory (see module doc)."""
    return nnz * 12 + nnz * width * 4 + num_nodes * width * 4


def ideal_bytes(num_nodes: int, nnz: int, width: int) -> int:
    """Bytes ``Â·X`` moves when each row of ``X`` is read once (see module doc)."""
    return nnz * 12 + 2 * num_nodes * width * 4


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


GATHER_BLOCK = 4096
"""Rows per gather block of the reads-only baseline: a ``[4096, d]`` buffer stays in cache."""


def gather_rows(x: Tensor, col: Tensor, buffer: Tensor) -> None:
    """Read the rows ``x[col]`` in ``col``'s order into a small reused ``buffer``, a block of
    :data:`GATHER_BLOCK` rows at a time: the gathers of a CSR product with no arithmetic and
    no output (what remains in cache is overwritten). Its time is the *gather roofline*: the
    least any CSR product over these column indices can take on this machine (the random
    row reads dominate; hardware prefetch cannot predict them)."""
    for start in range(0, col.numel(), GATHER_BLOCK):
        block = col[start : start + GATHER_BLOCK]
        torch.index_select(x, 0, block, out=buffer[: block.numel()])


def _backward_timer(forward: Callable[[Tensor], Tensor], x: Tensor, grad: Tensor) -> float:
    """Seconds of the backward alone (``∂(out·grad)/∂x``); the forward runs untimed."""
    xg = x.detach().requires_grad_()
    out = forward(xg)
    t0 = time.perf_counter()
    torch.autograd.grad(out, xg, grad)
    return time.perf_counter() - t0


def run_config(
    num_nodes: int,
    degree: int,
    width: int,
    *,
    rounds: int,
    copy: Callable[[], float],
    copy_times: list[float],
    pyg_max_gb: float,
    seed: int = 0,
    window: int | None = None,
) -> dict:
    """Time every case forward and backward at one size; returns a JSON-able record."""
    edge_index = random_graph(num_nodes, degree, seed, window)
    adj = gcn_adjacency(edge_index, num_nodes)
    nnz = adj._nnz()
    ei, w = gcn_norm(edge_index, None, num_nodes, add_self_loops=True)
    pyg = _GCNPropagation()
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(num_nodes, width, generator=g)
    grad = torch.randn(num_nodes, width, generator=g)

    forwards: dict[str, Callable[[Tensor], Tensor]] = {
        "fathom": lambda v: propagate(adj, v),
        "fathom_int64": lambda v: _SparseDenseMM.apply(adj, transposed(adj), v),
        "torch_csr": lambda v: torch.sparse.mm(adj, v),
    }
    run_pyg = nnz * width * 4 / 1e9 <= pyg_max_gb
    if run_pyg:
        forwards["pyg"] = lambda v: pyg(v, ei, w)

    ref = torch.sparse.mm(adj, x)
    check = {}
    with torch.no_grad():
        for name, f in forwards.items():
            out = f(x)
            check[name] = {
                "bit_identical_to_torch_csr": bool(torch.equal(out, ref)),
                "max_abs_diff": float((out - ref).abs().max()),
            }
    del out

    times: dict[str, dict[str, list[float]]] = {n: {"fwd": [], "bwd": []} for n in forwards}
    # the reads-only baseline: the rows the forward (Â's column indices) and the backward
    # (Âᵀ's) gather, in the order fathom's kernel reads them (int32 indices, as it uses)
    buffer = torch.empty(GATHER_BLOCK, width)
    cols = {
        "fwd": adj.col_indices().to(torch.int32),
        "bwd": transposed(adj).col_indices().to(torch.int32),
    }
    gather: dict[str, list[float]] = {"fwd": [], "bwd": []}
    for r in range(rounds + 1):  # round 0 warms up
        copy_t = copy()
        # rotate the order: the first case after the copy finds a cold cache
        names = list(forwards)
        names = names[r % len(names) :] + names[: r % len(names)]
        for name in names:
            f = forwards[name]
            with torch.no_grad():
                tf = _timed(lambda f=f: f(x))
            tb = _backward_timer(f, x, grad)
            if r:
                times[name]["fwd"].append(tf)
                times[name]["bwd"].append(tb)
        tg = {p: _timed(lambda p=p: gather_rows(x, cols[p], buffer)) for p in cols}
        if r:
            copy_times.append(copy_t)
            for pass_, t in tg.items():
                gather[pass_].append(t)

    mb, ib = min_bytes(num_nodes, nnz, width), ideal_bytes(num_nodes, nnz, width)
    cases = {}
    for name, t in times.items():
        cases[name] = {
            pass_: {
                "median_ms": 1e3 * statistics.median(ts),
                "min_ms": 1e3 * min(ts),
                "gbs": mb / statistics.median(ts) / 1e9,
                "ideal_gbs": ib / statistics.median(ts) / 1e9,
            }
            for pass_, ts in t.items()
        } | check[name]
        for pass_ in ("fwd", "bwd"):
            cases[name][pass_]["pct_gather"] = (
                100 * statistics.median(gather[pass_]) / statistics.median(t[pass_])
            )
    return {
        "num_nodes": num_nodes,
        "degree": degree,
        "width": width,
        "nnz": nnz,
        "min_bytes": mb,
        "ideal_bytes": ib,
        "cases": cases,
        "gather_ms": {p: 1e3 * statistics.median(ts) for p, ts in gather.items()},
        "pyg_skipped": not run_pyg,
    }


def _add_roofline(record: dict, roofline_gbs: float) -> None:
    for case in record["cases"].values():
        for pass_ in ("fwd", "bwd"):
            case[pass_]["pct_roofline"] = 100 * case[pass_]["gbs"] / roofline_gbs
            case[pass_]["ideal_pct_roofline"] = 100 * case[pass_]["ideal_gbs"] / roofline_gbs


def markdown(result: dict) -> str:
    """The results as a Markdown page with the command that produced them."""
    lines = [
        "# Propagation Â·X: fathom vs torch CSR SpMM vs PyG scatter, against the roofline",
        "",
        "Produced by:",
        "",
        "```",
        result["command"],
        "```",
        "",
        f"torch {result['torch']}, PyG {result['pyg']}, {result['threads']} thread(s), "
        f"{result['machine']}; load average at start {result['loadavg_start']}, "
        f"at end {result['loadavg_end']}. Graph: {result['graph']}.",
        "",
        f"Roofline (stream copy of {result['copy_mb']} MB float32, 2·bytes/time, best of "
        f"{len(result['copy_ms'])}): **{result['roofline_gbs']:.2f} GB/s**.",
        "",
        "Bytes per product: minimum = nnz·12 + nnz·d·4 + N·d·4 (every gathered row from "
        "memory); ideal = nnz·12 + 2·N·d·4 (X read once). Times are medians of "
        f"{result['rounds']} interleaved rounds (order rotated); GB/s = minimum bytes / "
        "time; % = of the roofline (ideal-bytes % in brackets). Backward = the gradient "
        "w.r.t. X alone. Gather roofline = the time to read the same rows in the same "
        f"order into a reused {GATHER_BLOCK}-row buffer (no arithmetic, no output: "
        "`gather_rows`); `% gather` = that time / the case's time.",
        "",
        "| N | deg | d | nnz | min MB | case | fwd ms | fwd GB/s | fwd % (ideal) | fwd % gather "
        "| bwd ms | bwd GB/s | bwd % (ideal) | bwd % gather | bit-identical |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rec in result["configs"]:
        for name, c in rec["cases"].items():
            f, b = c["fwd"], c["bwd"]
            lines.append(
                f"| {rec['num_nodes']:,} | {rec['degree']} | {rec['width']} | {rec['nnz']:,} "
                f"| {rec['min_bytes'] / 1e6:.0f} | {name} "
                f"| {f['median_ms']:.1f} | {f['gbs']:.2f} "
                f"| {f['pct_roofline']:.1f} ({f['ideal_pct_roofline']:.1f}) "
                f"| {f['pct_gather']:.0f} "
                f"| {b['median_ms']:.1f} | {b['gbs']:.2f} "
                f"| {b['pct_roofline']:.1f} ({b['ideal_pct_roofline']:.1f}) "
                f"| {b['pct_gather']:.0f} "
                f"| {'yes' if c['bit_identical_to_torch_csr'] else 'no'} "
                f"({c['max_abs_diff']:.1e}) |"
            )
        if rec["pyg_skipped"]:
            lines.append(
                f"| {rec['num_nodes']:,} | {rec['degree']} | {rec['width']} | | | pyg "
                "| skipped (message tensor over --pyg-max-gb) | | | | | | | | |"
            )
    return "\n".join(lines) + "\n"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> dict:
    """Parse arguments, run the grid, print a table and write ``--json`` / ``--md``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000], help="N")
    p.add_argument("--degrees", type=int, nargs="+", default=[5, 10, 50], help="mean degree")
    p.add_argument("--widths", type=int, nargs="+", default=[16, 64, 256], help="d")
    p.add_argument("--rounds", type=int, default=4, help="timed rounds (after one warm-up)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--copy-mb", type=int, default=512, help="stream-copy size, MB (>= 512)")
    p.add_argument("--pyg-max-gb", type=float, default=2.0, help="skip PyG above this [nnz,d]")
    p.add_argument("--max-gb", type=float, default=4.0, help="skip sizes whose nnz·d·4 B exceed")
    p.add_argument(
        "--window",
        type=int,
        default=None,
        help="banded graph: neighbours within ±window/2 (default: uniform random, no locality)",
    )
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--md", type=Path, default=None)
    args = p.parse_args(argv)
    if args.copy_mb < 512:
        p.error("--copy-mb must be at least 512")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load_start = _loadavg()

    numel = args.copy_mb * 2**20 // 4
    bufs = [torch.rand(numel), torch.empty(numel)]
    bufs[1].copy_(bufs[0])  # fault the pages in

    def copy() -> float:
        return _timed(lambda: bufs[1].copy_(bufs[0]))

    copy_times: list[float] = []
    configs = []
    for n in args.sizes:
        for deg in args.degrees:
            for d in args.widths:
                if n * (deg + 1) * d * 4 / 1e9 > args.max_gb:
                    print(f"skip N={n} deg={deg} d={d}: over --max-gb", file=sys.stderr)
                    continue
                rec = run_config(
                    n,
                    deg,
                    d,
                    rounds=args.rounds,
                    copy=copy,
                    copy_times=copy_times,
                    pyg_max_gb=args.pyg_max_gb,
                    window=args.window,
                )
                configs.append(rec)
                summary = "  ".join(
                    f"{k} {v['fwd']['median_ms']:.1f}/{v['bwd']['median_ms']:.1f} ms"
                    for k, v in rec["cases"].items()
                )
                print(f"N={n} deg={deg} d={d} nnz={rec['nnz']}: {summary}", file=sys.stderr)
    bufs.clear()
    roofline = 2 * args.copy_mb * 2**20 / min(copy_times) / 1e9
    for rec in configs:
        _add_roofline(rec, roofline)
    import torch_geometric

    result = {
        "command": "python benchmarks/propagation.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "torch": torch.__version__,
        "pyg": torch_geometric.__version__,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "loadavg_start": load_start,
        "loadavg_end": _loadavg(),
        "rounds": args.rounds,
        "graph": "random" if args.window is None else f"banded, window {args.window}",
        "copy_mb": args.copy_mb,
        "copy_ms": [1e3 * t for t in copy_times],
        "roofline_gbs": roofline,
        "configs": configs,
    }
    md = markdown(result)
    print(md)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(md)
    return result


if __name__ == "__main__":
    main()
