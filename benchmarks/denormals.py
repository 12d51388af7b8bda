"""Epoch time of a deep model through training, subnormal floats flushed (fathom) or kept.

Deep stacks drift into float32's subnormal range (below 1.2e-38) as they train, and x86
arithmetic on subnormals is many times slower than on normal floats. fathom flushes them to
zero (:func:`fathom.devices.flush_denormals`, called by every entry point that trains); this
benchmark trains the same config twice, side by side in one run, each in a child process:
``flushed`` (fathom's behaviour) and ``kept`` (torch's default, as before). It records every
epoch's wall time, and at the last epoch of each run the share of subnormal values among the
outputs of the model's leaf modules (that epoch's forward passes) and their gradients, the
weights' gradients and each tensor of the optimiser's state (Adam's moments).

A node-classification preset (``--preset``). Default: ``depth-resgcn-pubmed`` at 16 layers
(the DropEdge paper's one-block ResGCN, hidden 128, weight decay 5e-3) for 160 epochs, one
thread; needs PubMed under ``$FATHOM_DATA`` (or ``--data-dir``).

Usage::

    .venv/bin/python benchmarks/denormals.py --json docs/results/denormals.json \\
        --md docs/results/denormals.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = r"""
import json, sys, time, warnings
import torch
from torch.nn.modules.module import register_module_full_backward_hook
from torch.optim.optimizer import register_optimizer_step_post_hook

import fathom.experiments.run as run_module
from fathom.config import apply_overrides
from fathom.models.presets import load_preset

preset, depth, epochs, mode, out, dataset = sys.argv[1:7]
depth, epochs = int(depth), int(epochs)
torch.set_num_threads(1)
if mode == "kept":
    run_module.flush_denormals = lambda: None  # torch's default: subnormals kept
    torch.set_flush_denormal(False)
overrides = {"model.depth": depth, "train.epochs": epochs, "train.patience": 0, "device": "cpu"}
if dataset:
    overrides["data.name"] = dataset
cfg = apply_overrides(load_preset(preset), overrides)
data = run_module.build_task_data(cfg)
times = []
last = [time.perf_counter()]

def tick(record):
    now = time.perf_counter()
    times.append(now - last[0])
    last[0] = now
    armed[0] = len(times) == epochs - 1  # the last epoch's passes are counted
    if armed[0]:  # hooked for the last epoch only: full backward hooks wrap every module call
        warnings.filterwarnings("ignore", "Full backward hook is firing")
        register_module_full_backward_hook(count_grads)


armed = [False]
outputs = {"subnormal": 0, "total": 0}


def count_outputs(module, args, out):
    leaf = not list(module.children())
    if armed[0] and leaf and torch.is_tensor(out) and out.is_floating_point():
        t = out.detach()
        outputs["subnormal"] += int(((t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)).sum())
        outputs["total"] += t.numel()


grads = {"subnormal": 0, "total": 0}


def count_grads(module, grad_in, grad_out):
    if armed[0] and not list(module.children()):
        for g in grad_out:
            if torch.is_tensor(g) and g.is_floating_point():
                grads["subnormal"] += int(((g != 0) & (g.abs() < torch.finfo(g.dtype).tiny)).sum())
                grads["total"] += g.numel()


torch.nn.modules.module.register_module_forward_hook(count_outputs)

def subnormal_share(tensors):
    tensors = [t.detach().float().flatten() for t in tensors if t.is_floating_point()]
    total = sum(t.numel() for t in tensors)
    tiny = torch.finfo(torch.float32).tiny
    sub = sum(int(((t != 0) & (t.abs() < tiny)).sum()) for t in tensors)
    return sub / max(total, 1)

shares = {}
optimizers = []
register_optimizer_step_post_hook(
    lambda opt, args, kwargs: optimizers.append(opt) if not optimizers else None
)

def inspect(model):
    # the last epoch's module outputs (training and evaluation passes), gradients and optimiser
    # state (the weights are the best epoch's by now)
    params = [p for group in optimizers[0].param_groups for p in group["params"]]
    shares["module outputs"] = outputs["subnormal"] / max(outputs["total"], 1)
    shares["gradients of module outputs"] = grads["subnormal"] / max(grads["total"], 1)
    shares["gradients"] = subnormal_share([p.grad for p in params if p.grad is not None])
    state = optimizers[0].state
    for key in sorted({k for p in params for k in state.get(p, {})}):
        values = [state[p][key] for p in params if torch.is_tensor(state.get(p, {}).get(key))]
        if values and values[0].dim() > 0:
            shares[f"optimizer {key}"] = subnormal_share(values)

result = run_module.train_one(cfg, data, [tick], on_model=inspect)
flushes = torch.tensor([1e-323], dtype=torch.float64).item() == 0.0
json.dump({"flushes": flushes, "epoch_s": times, "test_acc": result.metrics.get("test_acc"),
           "val_acc": result.metrics.get("val_acc"), "subnormal_share": shares}, open(out, "w"))
"""


def _run(args: argparse.Namespace, mode: str, tmp: Path) -> dict:
    out = tmp / f"{mode}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if args.data_dir:
        env["FATHOM_DATA"] = args.data_dir
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            args.preset,
            str(args.depth),
            str(args.epochs),
            mode,
            str(out),
            args.dataset or "",
        ],
        env=env,
        check=True,
    )
    rec = json.loads(out.read_text())
    rec["wall_s"] = time.perf_counter() - t0
    return rec


def _windows(epoch_s: list[float], width: int) -> list[float]:
    return [
        sum(epoch_s[i : i + width]) / len(epoch_s[i : i + width])
        for i in range(0, len(epoch_s), width)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="depth-resgcn-pubmed")
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=160)
    parser.add_argument("--window", type=int, default=20, help="epochs per reported mean")
    parser.add_argument("--dataset", default=None, help="data.name instead of the preset's")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--md", type=Path, default=None)
    args = parser.parse_args()
    if args.depth < 1 or args.epochs < 1 or args.window < 1:
        parser.error("--depth, --epochs and --window must be >= 1")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {mode: _run(args, mode, Path(tmp)) for mode in ("flushed", "kept")}
    table = {mode: _windows(r["epoch_s"], args.window) for mode, r in runs.items()}
    lines = [
        f"# Subnormal floats: epoch time through training, flushed vs kept ({args.preset}, "
        f"depth {args.depth})",
        "",
        f"Command: `python benchmarks/denormals.py --preset {args.preset} --depth {args.depth} "
        f"--epochs {args.epochs} --window {args.window}`  ",
        f"Measured on: {platform.node()} ({platform.processor() or platform.machine()}), "
        "1 thread per run, the two runs one after the other.",
        "",
        f"Mean epoch time (s) per {args.window} epochs; `kept / flushed` the ratio.",
        "",
        "| epochs | flushed (fathom) | kept (torch default) | kept / flushed |",
        "|---|---:|---:|---:|",
    ]
    for i, (a, b) in enumerate(zip(table["flushed"], table["kept"], strict=False)):
        lo, hi = i * args.window + 1, min((i + 1) * args.window, args.epochs)
        lines.append(f"| {lo}-{hi} | {a:.2f} | {b:.2f} | {b / a:.2f} |")
    f, k = runs["flushed"], runs["kept"]
    lines += [
        "",
        f"Whole run: {sum(f['epoch_s']):.1f} s flushed, {sum(k['epoch_s']):.1f} s kept "
        f"({sum(k['epoch_s']) / sum(f['epoch_s']):.2f}x). Test accuracy {100 * f['test_acc']:.1f} "
        f"flushed, {100 * k['test_acc']:.1f} kept.",
        "Subnormal share (of all values) at the last epoch of the kept run: "
        + ", ".join(f"{name} {100 * v:.3g} %" for name, v in k["subnormal_share"].items())
        + ".",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    payload = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs, "windows": table}
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    if args.md:
        args.md.write_text(text)


if __name__ == "__main__":
    main()
