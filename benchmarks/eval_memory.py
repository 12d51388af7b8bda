"""Peak memory of evaluating a trained-shape model on a whole graph: one forward pass vs
layer-wise inference vs sampled subgraphs (``train.eval_mode``).

Workload: a seeded CSBM graph (``fathom.data.synthetic.csbm``, ``--nodes`` nodes, mean degree
``--degree``, ``--features`` features, 3 classes) and fathom models built by ``build_model``
(eval mode, untrained weights: memory does not depend on their values):

``gat3``      3-layer GAT, ``--hidden`` channels in 4 heads, batch norm, residual skips;
``sage3``     3-layer GraphSAGE (mean), batch norm, residual skips;
``resgcn16``  16-layer ResGCN (linear encoder and head, batch norm), the deep-model case.

Each (model, mode) runs in a fresh Python process: it builds the graph and the model, warms
the whole graph's normalised adjacency (the cache a training run has filled already), then
resets the kernel's peak-RSS counter (``/proc/self/clear_refs``) and evaluates once;
**``peak_mb`` = VmHWM - VmRSS before the evaluation**: what the evaluation itself adds (its
outputs, the layers it holds, messages, chunk subgraphs, temporaries). glibc returns every
block over 128 KiB on free, so RSS tracks live memory. Modes: ``full`` (``model(x,
edge_index)`` under ``torch.no_grad()``), ``layerwise`` (chunks of ``--chunk`` target nodes),
``sampled`` (chunks of ``--chunk`` on the full-fan-out neighbourhood; 3-layer models only: a
16-layer receptive field is the whole graph).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eval_memory.py --md docs/results/eval_memory.md
    .venv/bin/python benchmarks/eval_memory.py --nodes 2000 --models sage3  # smoke
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from typing import Any

from fathom.experiments.process_memory import reset_peak_rss, status_kib

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
MODELS: dict[str, dict[str, Any]] = {
    "gat3": {"conv": "gat", "depth": 3, "heads": 4, "skip": "res", "norm": "batch"},
    "sage3": {"conv": "sage", "depth": 3, "skip": "res", "norm": "batch"},
    "resgcn16": {
        "conv": "gcn",
        "depth": 16,
        "skip": "res",
        "norm": "batch",
        "encoder": "linear",
        "head": "linear",
    },
}
MODES = ("full", "layerwise", "sampled")


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Evaluate one (model, mode) in this fresh process and measure the evaluation's peak."""
    import torch

    from fathom.config import ModelConfig
    from fathom.data.synthetic import csbm
    from fathom.models.build import build_model
    from fathom.nn.adjacency import gcn_adjacency
    from fathom.train.inference import node_outputs

    torch.set_num_threads(1)
    data = csbm(spec["nodes"], 3, feature_dim=spec["features"], avg_degree=spec["degree"], seed=0)
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=spec["hidden"], **MODELS[spec["model"]])
    model = build_model(cfg, data.num_features, 3).eval()
    gcn_adjacency(data.edge_index, data.num_nodes)  # what training has cached already
    gc.collect()
    before = status_kib("VmRSS")
    reset = reset_peak_rss()
    t0 = time.perf_counter()
    out = node_outputs(model, data.x, data.edge_index, mode=spec["mode"], chunk_size=spec["chunk"])
    seconds = time.perf_counter() - t0
    peak = status_kib("VmHWM") - before
    return {
        **spec,
        "num_edges": data.num_edges,
        "peak_mb": round(peak / 1024, 1),
        "seconds": round(seconds, 2),
        "peak_source": "VmHWM" if reset else "VmHWM (not reset)",
        "checksum": float(out.double().abs().sum()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--degree", type=float, default=20.0)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--md", help="write the table as Markdown")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(json.loads(args.child))))
        return 0
    rows = []
    for model in args.models.split(","):
        for mode in MODES:
            if mode == "sampled" and MODELS[model]["depth"] > 3:
                continue
            spec = {
                "model": model,
                "mode": mode,
                "nodes": args.nodes,
                "degree": args.degree,
                "features": args.features,
                "hidden": args.hidden,
                "chunk": args.chunk,
            }
            done = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(spec)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, **MALLOC_ENV},
            )
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    lines = [
        f"Evaluation peak memory, CSBM {args.nodes} nodes, {rows[0]['num_edges']} edges, "
        f"{args.features} features, hidden {args.hidden}, chunk {args.chunk}, 1 thread "
        "(`benchmarks/eval_memory.py`)",
        "",
        "| model | mode | peak MB | seconds | output checksum |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['model']} | {r['mode']} | {r['peak_mb']} | {r['seconds']} | {r['checksum']:.4f} |"
        for r in rows
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        with open(args.md, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
