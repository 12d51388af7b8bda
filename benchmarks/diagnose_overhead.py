"""Cost of probing: a forward pass with per-layer over-smoothing metrics against a plain one.

Target (issue 5): probing plus *all* over-smoothing metrics on PubMed for a 16-layer model adds
at most 25% to a forward pass.

Models (evaluation mode, ``torch.no_grad``, PubMed: 19,717 nodes, 88,648 directed edges,
500 features):

``fathom-gcn16``
    fathom's 16-layer GCN (hidden 64), hooks on its 15 blocks and its conv head.
``pyg-gcn16``
    PyG's ``torch_geometric.nn.models.GCN(500, 64, num_layers=16, out_channels=3)``,
    unchanged, hooks on its 16 ``GCNConv``s (``cached=False``, as the class builds them).

Each is timed three ways in one process, interleaved round by round (the order rotates so
drift and contention hit all alike), median over ``--rounds``:

``plain``       ``model(x, edge_index)``;
``default``     the same under a :class:`~fathom.diagnostics.probes.LayerProbe` with the
                default metrics (Dirichlet energy, MAD, effective rank);
``all``         under a probe with every over-smoothing metric: Dirichlet energy, normalised
                energy, MAD, MADGap, numerical and effective rank, distance to the dominant
                subspace, class separation, row norm.

The probe's graph-side set-up (sampling, connected components, MADGap's hop pairs) is done
once per graph, before timing, as it is in training (``fathom train --diagnose-every``). On
PubMed the probe samples (4,096 nodes, 16,384 edges; Cora-sized graphs are measured exactly).
The layer input (500 features) counts as a layer.

Usage::

    FATHOM_DATA=/path/to/datasets .venv/bin/python benchmarks/diagnose_overhead.py \\
        --json runs/diagnose_overhead.json --md runs/diagnose_overhead.md
    .venv/bin/python benchmarks/diagnose_overhead.py --tiny     # smoke run, synthetic graph

Without ``$FATHOM_DATA`` (and without ``--tiny``) it prints a one-line error and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn.models import GCN

from fathom.config import DataConfig, ModelConfig
from fathom.diagnostics.probes import DEFAULT_METRICS, METRICS, LayerProbe
from fathom.errors import FathomError
from fathom.models.build import build_model

TARGET = 1.25


def load(tiny: bool) -> tuple[str, Data]:
    if tiny:
        from fathom.data.synthetic import make_synthetic

        return "csbm-2000", make_synthetic(
            "csbm", num_nodes=2000, feature_dim=64, num_classes=3, seed=0
        )
    from fathom.data.build import build_dataset

    return "pubmed", build_dataset(DataConfig(name="pubmed"))


def models(data: Data, depth: int) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    classes = int(data.y.max()) + 1
    return {
        f"fathom-gcn{depth}": build_model(
            ModelConfig(depth=depth, hidden=64), data.num_features, classes
        ).eval(),
        f"pyg-gcn{depth}": GCN(
            data.num_features, 64, num_layers=depth, out_channels=classes
        ).eval(),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_model(model: nn.Module, data: Data, rounds: int, warmup: int) -> dict[str, Any]:
    x, ei = data.x, data.edge_index
    device = x.device
    probes = {
        "default": LayerProbe(model, DEFAULT_METRICS, y=data.y),
        "all": LayerProbe(model, tuple(METRICS), y=data.y),
    }
    calls: dict[str, Callable[[], None]] = {"plain": lambda: model(x, ei)}
    for name, probe in probes.items():

        def run(probe: LayerProbe = probe) -> None:
            with probe:
                model(x, ei)
            probe.reset()

        calls[name] = run
    times: dict[str, list[float]] = {k: [] for k in calls}
    with torch.no_grad():
        for _ in range(warmup):  # also builds each probe's graph-side cache
            for call in calls.values():
                call()
        names = list(calls)
        for i in range(rounds):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                _sync(device)
                t0 = time.perf_counter()
                calls[name]()
                _sync(device)
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    layers = len(probes["all"].layers) + 1
    return {
        "layers_probed": layers,
        "median_ms": {k: 1000 * v for k, v in med.items()},
        "ratio_default": med["default"] / med["plain"],
        "ratio_all": med["all"] / med["plain"],
        "sampled": probes["all"].graph(data.num_nodes).sampled,  # type: ignore[union-attr]
    }


def to_markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    lines = [
        f"# Probe overhead on {s['dataset']} ({s['depth']} layers, forward pass, no grad, "
        f"{s.get('device', 'cpu')})",
        "",
        f"{s['rounds']} interleaved rounds, median; torch {result['environment']['torch']}, "
        f"{result['environment']['threads']} threads, {result['environment']['cpu']}. "
        f"Target: all metrics ≤ {TARGET:.2f}× the plain forward.",
        "",
        "| model | layers probed | plain (ms) | + default metrics (ms) | ratio "
        "| + all metrics (ms) | ratio | within target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["models"].items():
        m = r["median_ms"]
        lines.append(
            f"| {name} | {r['layers_probed']} | {m['plain']:.1f} | {m['default']:.1f} "
            f"| {r['ratio_default']:.3f} | {m['all']:.1f} | {r['ratio_all']:.3f} "
            f"| {'yes' if r['ratio_all'] <= TARGET else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: all cores)"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="smoke run on a 2,000-node synthetic graph"
    )
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--md", metavar="PATH")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a ratio exceeds the target"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        dataset, data = load(args.tiny)
    except FathomError as exc:
        sys.stderr.write(f"diagnose_overhead: error: {exc}\n")
        return 2
    result: dict[str, Any] = {
        "settings": {
            "dataset": dataset,
            "depth": args.depth,
            "rounds": args.rounds,
            "tiny": args.tiny,
        },
        "environment": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
        },
        "models": {},
    }
    device = torch.device(args.device)
    data = data.to(device)
    result["settings"]["device"] = str(device)
    for name, model in models(data, args.depth).items():
        model = model.to(device)
        r = time_model(model, data, args.rounds, args.warmup)
        result["models"][name] = r
        print(
            f"{name}: plain {r['median_ms']['plain']:.1f} ms, "
            f"default metrics x{r['ratio_default']:.3f}, all metrics x{r['ratio_all']:.3f}"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(to_markdown(result))
    if args.check and any(r["ratio_all"] > TARGET for r in result["models"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
