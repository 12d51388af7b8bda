"""DGI's training step: fathom against PyG's own example, side by side in one run.

``fathom``  :class:`fathom.models.dgi.DGI` (``model.arch: dgi``): one :math:`XW` per step
            (the corrupted view is its rows permuted), a CSR sparse-dense product for
            bag-of-words features on CPU (at most 2 % non-zero).
``pyg``     PyG's ``examples/infomax_transductive.py``: ``DeepGraphInfomax`` with an encoder
            of one ``GCNConv(cached=True)`` and a PReLU, the summary
            ``sigmoid(z.mean(dim=0))`` and corruption by a row shuffle: the encoder runs
            twice per step, each a dense :math:`XW`.

Both train 512 hidden units with Adam (lr 0.001), the paper's setting, on the Planetoid
datasets found under ``$FATHOM_DATA`` (row-normalised features, as the presets load them).
The two alternate round by round (which goes first alternates too); the time of each is the
median over ``--rounds`` rounds of ``--steps`` steps, after one warm-up step of each.

Usage::

    FATHOM_DATA=../shared/datasets .venv/bin/python benchmarks/dgi_speed.py --threads 1 \\
        --json docs/results/dgi_speed.json --md docs/results/dgi_speed.md
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch_geometric.nn import DeepGraphInfomax, GCNConv

from fathom.data.datasets import load_dataset
from fathom.models.dgi import DGI


class _PygEncoder(nn.Module):
    """The encoder of PyG's examples/infomax_transductive.py."""

    def __init__(self, in_channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.conv = GCNConv(in_channels, hidden_channels, cached=True)
        self.prelu = nn.PReLU(hidden_channels)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.conv(x, edge_index))


def _pyg_step(data: object, hidden: int) -> Callable[[], None]:
    def corruption(x: torch.Tensor, edge_index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return x[torch.randperm(x.size(0))], edge_index

    model = DeepGraphInfomax(
        hidden_channels=hidden,
        encoder=_PygEncoder(data.x.size(1), hidden),
        summary=lambda z, *args, **kwargs: z.mean(dim=0).sigmoid(),
        corruption=corruption,
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.001)

    def step() -> None:
        model.train()
        opt.zero_grad()
        pos_z, neg_z, summary = model(data.x, data.edge_index)
        model.loss(pos_z, neg_z, summary).backward()
        opt.step()

    return step


def _fathom_step(data: object, hidden: int) -> Callable[[], None]:
    model = DGI(data.x.size(1), hidden)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)

    def step() -> None:
        model.train()
        opt.zero_grad()
        model.loss(data.x, data.edge_index).backward()
        opt.step()

    return step


def _time(step: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="cora,citeseer,pubmed")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.datasets.split(","):
        data = load_dataset(name, normalize_features=True)
        torch.manual_seed(0)
        steps = {"fathom": _fathom_step(data, args.hidden), "pyg": _pyg_step(data, args.hidden)}
        for step in steps.values():
            step()  # warm-up (PyG's cached adjacency, fathom's CSR copy)
        times: dict[str, list[float]] = {k: [] for k in steps}
        for r in range(args.rounds):
            order = list(steps) if r % 2 == 0 else list(reversed(steps))
            for key in order:
                times[key].append(_time(steps[key], args.steps))
        med = {k: statistics.median(v) for k, v in times.items()}
        density = float((data.x != 0).float().mean())
        row = {
            "dataset": name,
            "nodes": data.num_nodes,
            "features": data.x.size(1),
            "density": density,
            "fathom_ms": 1000 * med["fathom"],
            "pyg_ms": 1000 * med["pyg"],
            "ratio": med["fathom"] / med["pyg"],
        }
        rows.append(row)
        print(
            f"{name}: fathom {row['fathom_ms']:.1f} ms/step, PyG example {row['pyg_ms']:.1f} "
            f"ms/step, ratio {row['ratio']:.2f}",
            flush=True,
        )
    meta = {
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "threads": args.threads,
        "hidden": args.hidden,
        "steps": args.steps,
        "rounds": args.rounds,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    if args.md:
        lines = [
            "# DGI training step: fathom vs PyG's example",
            "",
            f"Command: `{meta['command']}`  ",
            f"torch {meta['torch']}, python {meta['python']}, {args.threads} thread(s); "
            f"hidden {args.hidden}; median of {args.rounds} rounds of {args.steps} steps.",
            "",
            "| dataset | nodes | features | non-zero | fathom ms/step | PyG ms/step | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r['dataset']} | {r['nodes']} | {r['features']} | {100 * r['density']:.1f} % "
                f"| {r['fathom_ms']:.1f} | {r['pyg_ms']:.1f} | {r['ratio']:.2f} |"
            )
        args.md.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
