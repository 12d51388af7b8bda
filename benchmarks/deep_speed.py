"""Speed guard: fathom's deep GNNs against the same models written idiomatically with PyG.

Three workloads, each trained side by side by fathom and by plain PyTorch Geometric code:

``gcn2``
    2-layer GCN on Cora: fathom's ``gcn-cora`` preset against the model of PyG's
    ``examples/gcn.py`` (two ``GCNConv(cached=True)``, dropout 0.5 on the input of each).
``gcnii64``
    64-layer GCNII on Cora: fathom's ``gcnii-cora`` preset against the model of PyG's
    ``examples/gcn2_cora.py`` (``Linear`` -> 64 x ``GCN2Conv(shared_weights=True)`` -> ``Linear``,
    dropout 0.6 and ReLU) on the example's own path: the graph normalised once
    (``T.GCNNorm()``) and turned into a sparse ``adj_t`` (``T.ToSparseTensor``), the convs with
    ``normalize=False``. The example's ``SparseTensor`` needs ``torch-sparse``, which is not
    installable here, so ``adj_t`` is torch's own sparse CSR layout
    (``ToSparseTensor(layout=torch.sparse_csr)``), which PyG's ``GCN2Conv`` multiplies with
    ``torch.sparse.mm``: the fastest path a PyG user has here.
``res16``
    16-layer residual GCN (linear encoder and head, hidden 64, dropout 0.5) on a seeded CSBM
    graph of ``--res16-nodes`` nodes (default 100K: ~1M directed edges; mean degree 10, 64
    features, 5 classes; 1M nodes, ~10M edges, is generated in O(N + E), ~26 s and 2.4 GiB
    peak RSS on one CPU core): fathom's
    ``ModelConfig(conv="gcn", depth=16, skip="res", encoder="linear", head="linear")``
    against ``Linear`` -> 16 x (``x + relu(GCNConv(cached=True)(dropout(x)))``) -> ``Linear``.

Both sides of a workload have parameters of identical shapes (checked), the same Adam
optimiser (learning rate and weight decay of fathom's config; GCNII: 0.01 on the convs and
5e-4 on the dense layers, as the paper and PyG's example), the same data object and the
same seed, on the same device (``--device``; model moved with ``.to(device)``, data moved once
with :func:`fathom.train.loop.to_device`, as fathom's run pipeline does). An epoch is one
training step plus one evaluation forward pass: on fathom's side the epoch of
:func:`fathom.fit` (:func:`fathom.train.loop.train_epoch`, the function fit calls: the
objective's batches -- here the one graph -- moved by ``to_device``, ``NodeClassification.loss``
under fit's ``autocast``, backward, step; then ``NodeClassification.evaluate``; a test checks
that it reproduces fit's losses bit for bit), on PyG's side the ``train()`` + ``test()``
functions of PyG's examples.

**Time** is measured in one process, interleaved: after ``--warmup`` untimed epochs of each
implementation, every round times one fathom epoch and one PyG epoch, alternating which goes
first, so drift and contention hit both alike. The figure is the median epoch time. On CUDA
every clock read is preceded by ``torch.cuda.synchronize()`` (both sides alike).

**Peak memory** on the CPU is measured for each (workload, implementation) in a fresh process
forked from a ``multiprocessing`` fork server that has only imported torch, PyG and fathom (so
every child starts from the same heap and no thread pool): the child loads the data and builds
the model and optimiser, resets the kernel's peak-RSS counter (``VmHWM``, via
``/proc/self/clear_refs``), reads its RSS as the baseline, trains a few epochs, and reports
``VmHWM - baseline``: the resident memory training adds on top of data and parameters
(activations, gradients, Adam state, adjacency caches, allocator overhead). On CUDA it is
measured in the benchmark process, per (workload, implementation): a fresh model and optimiser
on the data already on the GPU, one warm-up epoch, then ``torch.cuda.reset_peak_memory_stats()``;
the figure is ``torch.cuda.max_memory_allocated()`` during training minus
``torch.cuda.memory_allocated()`` at the reset (the same "what training adds" as on the CPU;
the absolute peak is recorded as ``peak_allocated_mib``).

Ratios are fathom / PyG; the guard is that every ratio is <= 1.0 (``--check`` exits 1 when
one is not).

Usage::

    FATHOM_DATA=/path/to/datasets .venv/bin/python benchmarks/deep_speed.py \\
        --json runs/deep_speed.json --md runs/deep_speed.md
    .venv/bin/python benchmarks/deep_speed.py --tiny --json /tmp/tiny.json   # smoke run
    FATHOM_DATA=/path/to/datasets .venv/bin/python benchmarks/deep_speed.py --device cuda \\
        --res16-nodes 1000000 --json docs/results/deep_speed_cuda.json \\
        --md docs/results/deep_speed_cuda.md                                 # on a GPU

Cora is read like fathom reads it (``$FATHOM_DATA``); when it is missing the script prints a
one-line error and exits with 2; so does a ``--device`` this machine does not have. ``--tiny``
(a smoke run, not a benchmark) needs no data: it replaces Cora with a 500-node synthetic
graph, res16's graph with 1,000 nodes, cuts GCNII to 16 layers and trains 3 timed epochs.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import platform
import re
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torch_geometric
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GCN2Conv, GCNConv

import fathom
from fathom import (
    DataConfig,
    FathomError,
    ModelConfig,
    NodeClassification,
    SyntheticConfig,
    TrainConfig,
    build_dataset,
    build_model,
)
from fathom.devices import resolve_device
from fathom.experiments.process_memory import reset_peak_rss, status_kib
from fathom.models.presets import load_preset
from fathom.train.loop import autocast, model_device, to_device, train_epoch
from fathom.train.optim import build_optimizer

WORKLOADS = ("gcn2", "gcnii64", "res16")
IMPLS = ("fathom", "pyg")
MIB = 1 << 20
SEED = 0

TIMING_METHOD = (
    "interleaved in one process: after the warm-up, each round times one fathom and one PyG "
    "epoch, alternating which goes first; median over rounds"
)
CUDA_TIMING_METHOD = TIMING_METHOD + "; torch.cuda.synchronize() before every clock read"
CUDA_MEMORY_METHOD = (
    "in the benchmark process, per (workload, implementation): a fresh model and optimiser "
    "on the data already on the GPU and one warm-up epoch, then "
    "torch.cuda.reset_peak_memory_stats(); "
    "torch.cuda.max_memory_allocated() during training minus torch.cuda.memory_allocated() at "
    "the reset (peak_allocated_mib: the absolute peak, data and parameters included)"
)
MEMORY_METHOD = (
    "fresh process per (workload, implementation), forked from a fork server that only "
    "imported torch/PyG/fathom, with glibc's mmap threshold fixed at 128 KiB so that RSS "
    "tracks live memory; peak RSS (VmHWM, reset via /proc/self/clear_refs) during training "
    "minus RSS after data loading, model/optimiser construction and one warm-up epoch "
    "(file_mib: growth of file-backed RSS, i.e. library code paged in, which is included)"
)


# --------------------------------------------------------------------------- PyG models


class PyGGCN(nn.Module):
    """Kipf & Welling's 2-layer GCN as in PyG's ``examples/gcn.py`` (cached normalisation)."""

    def __init__(
        self, in_channels: int, hidden_channels: int, out_channels: int, dropout: float
    ) -> None:
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden_channels, cached=True)
        self.conv2 = GCNConv(hidden_channels, out_channels, cached=True)
        self.dropout = dropout

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = self.conv1(x, edge_index).relu()
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, edge_index)


class PyGGCNII(nn.Module):
    """GCNII as in PyG's ``examples/gcn2_cora.py``, propagating on a normalised sparse
    ``adj_t`` (:func:`pyg_adj_t`)."""

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int,
        alpha: float,
        theta: float,
        dropout: float,
    ) -> None:
        super().__init__()
        self.lins = nn.ModuleList(
            [nn.Linear(in_channels, hidden_channels), nn.Linear(hidden_channels, out_channels)]
        )
        self.convs = nn.ModuleList(
            GCN2Conv(
                hidden_channels,
                alpha,
                theta,
                layer + 1,
                shared_weights=True,
                normalize=False,  # the example normalises once (T.GCNNorm) into adj_t
            )
            for layer in range(num_layers)
        )
        self.dropout = dropout

    def forward(self, x: Tensor, adj_t: Tensor) -> Tensor:
        x = F.dropout(x, self.dropout, training=self.training)
        x = x_0 = self.lins[0](x).relu()
        for conv in self.convs:
            x = F.dropout(x, self.dropout, training=self.training)
            x = conv(x, x_0, adj_t).relu()
        x = F.dropout(x, self.dropout, training=self.training)
        return self.lins[1](x).log_softmax(dim=-1)


def pyg_adj_t(data: Data) -> Tensor:
    """``T.GCNNorm()`` then ``T.ToSparseTensor(layout=torch.sparse_csr)``, as PyG's
    ``examples/gcn2_cora.py`` prepares its graph once before training: the normalised
    adjacency (self-loops included) as a sparse CSR ``adj_t``."""
    import torch_geometric.transforms as T

    prepared = T.ToSparseTensor(layout=torch.sparse_csr)(T.GCNNorm()(data.clone()))
    return prepared.adj_t


class PyGResGCN(nn.Module):
    """Residual GCN (ResGCN): ``Linear`` encoder, ``num_layers`` x
    ``x = x + relu(GCNConv(dropout(x)))``, ``Linear`` head."""

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.lin_in = nn.Linear(in_channels, hidden_channels)
        self.convs = nn.ModuleList(
            GCNConv(hidden_channels, hidden_channels, cached=True) for _ in range(num_layers)
        )
        self.lin_out = nn.Linear(hidden_channels, out_channels)
        self.dropout = dropout

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = F.dropout(x, self.dropout, training=self.training)
        x = self.lin_in(x).relu()
        for conv in self.convs:
            h = F.dropout(x, self.dropout, training=self.training)
            x = x + conv(h, edge_index).relu()
        x = F.dropout(x, self.dropout, training=self.training)
        return self.lin_out(x)


# --------------------------------------------------------------------------- workloads


def _edge_index(data: Data) -> Tensor:
    return data.edge_index


@dataclass(frozen=True)
class Workload:
    """One comparison: a graph, fathom's model config and its PyG twin."""

    name: str
    title: str
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    pyg_model: Callable[[ModelConfig, int, int], nn.Module]
    pyg_param_groups: Callable[[nn.Module, TrainConfig], list[dict[str, Any]]]
    pyg_loss: Callable[[Tensor, Tensor], Tensor]
    pyg_graph: Callable[[Data], Tensor] = _edge_index
    """What the PyG twin propagates on, prepared once before training as its example does
    (``edge_index``; GCNII: the normalised CSR ``adj_t``)."""


def _single_group(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    return [{"params": list(model.parameters()), "weight_decay": cfg.weight_decay}]


def _gcnii_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    assert isinstance(model, PyGGCNII)
    return [
        {"params": list(model.convs.parameters()), "weight_decay": cfg.conv_weight_decay},
        {"params": list(model.lins.parameters()), "weight_decay": cfg.weight_decay},
    ]


def _pyg_gcn(m: ModelConfig, in_channels: int, out_channels: int) -> nn.Module:
    return PyGGCN(in_channels, m.hidden, out_channels, m.dropout)


def _pyg_gcnii(m: ModelConfig, in_channels: int, out_channels: int) -> nn.Module:
    return PyGGCNII(in_channels, m.hidden, out_channels, m.depth, m.alpha, m.theta, m.dropout)


def _pyg_res(m: ModelConfig, in_channels: int, out_channels: int) -> nn.Module:
    return PyGResGCN(in_channels, m.hidden, out_channels, m.depth, m.dropout)


def make_workloads(tiny: bool, nodes: int) -> dict[str, Workload]:
    """The three workloads; ``tiny`` swaps Cora for a small synthetic graph."""
    gcn_cora, gcnii_cora = load_preset("gcn-cora"), load_preset("gcnii-cora")
    cora = gcn_cora.data
    if tiny:
        cora = DataConfig(
            name="csbm",
            synthetic=SyntheticConfig(
                num_nodes=500, num_classes=7, feature_dim=128, avg_degree=4.0
            ),
        )
    big = DataConfig(
        name="csbm",
        synthetic=SyntheticConfig(num_nodes=nodes, num_classes=5, feature_dim=64, avg_degree=10.0),
    )
    res = ModelConfig(
        conv="gcn", depth=16, skip="res", encoder="linear", head="linear", hidden=64, dropout=0.5
    )
    graph = "synthetic stand-in for Cora" if tiny else "Cora"
    # tiny: 16 GCNII layers keep the smoke run short; the other depths are cheap already
    gcnii = replace(gcnii_cora.model, depth=16) if tiny else gcnii_cora.model
    return {
        "gcn2": Workload(
            "gcn2",
            f"GCN, 2 layers, {graph}",
            cora,
            gcn_cora.model,
            gcn_cora.train,
            _pyg_gcn,
            _single_group,
            F.cross_entropy,
        ),
        "gcnii64": Workload(
            "gcnii64",
            f"GCNII, {gcnii.depth} layers, {graph}",
            cora,
            gcnii,
            gcnii_cora.train,
            _pyg_gcnii,
            _gcnii_groups,
            F.nll_loss,
            pyg_adj_t,
        ),
        "res16": Workload(
            "res16",
            f"residual GCN, 16 layers, CSBM {nodes:,} nodes",
            big,
            res,
            TrainConfig(lr=0.01, weight_decay=5e-4),
            _pyg_res,
            _single_group,
            F.cross_entropy,
        ),
    }


def load_data(workload: Workload) -> Data:
    return build_dataset(workload.data, seed=SEED)


def _shapes(model: nn.Module) -> list[tuple[int, ...]]:
    return sorted(tuple(p.shape) for p in model.parameters())


Epoch = Callable[[], Any]


def build_impl(
    workload: Workload, impl: str, data: Data, device: torch.device | None = None
) -> tuple[nn.Module, Epoch]:
    """The model of ``impl`` on ``device`` (default: ``data``'s) and a closure running one
    epoch (train step + evaluation) on ``data``, which the caller has put on that device."""
    device = data.x.device if device is None else device
    in_channels, out_channels = data.num_features, int(data.y.max()) + 1
    torch.manual_seed(SEED)
    if impl == "fathom":
        # as fathom's run pipeline: build_model -> .to(device) -> fit (which builds the optimiser)
        model = build_model(workload.model, in_channels, out_channels).to(device)
        cfg = workload.train
        optimizer = build_optimizer(model, cfg)
        task = NodeClassification(cfg.label_smoothing)
        fit_device = model_device(model)

        def fathom_epoch() -> tuple[float, dict[str, float]]:
            # one epoch of fathom.fit: its own train_epoch, then the evaluation under fit's
            # autocast; left out is what fit does between epochs (early-stopping
            # bookkeeping: a state-dict copy when validation improves; callbacks and LR
            # schedules: none here)
            model.train()
            loss = train_epoch(
                model, task, data, optimizer, accumulate=cfg.accumulate, precision=cfg.precision
            )
            with autocast(fit_device, cfg.precision):
                metrics = task.evaluate(model, data)
            return loss, metrics

        return model, fathom_epoch

    model = workload.pyg_model(workload.model, in_channels, out_channels).to(device)
    optimizer = torch.optim.Adam(
        workload.pyg_param_groups(model, workload.train), lr=workload.train.lr
    )
    criterion = workload.pyg_loss

    graph = workload.pyg_graph(data)

    # train() and test() as in PyG's examples
    def train() -> float:
        model.train()
        optimizer.zero_grad()
        out = model(data.x, graph)
        loss = criterion(out[data.train_mask], data.y[data.train_mask])
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def test() -> list[float]:
        model.eval()
        pred, accs = model(data.x, graph).argmax(dim=-1), []
        for mask in (data.train_mask, data.val_mask, data.test_mask):
            accs.append(int((pred[mask] == data.y[mask]).sum()) / int(mask.sum()))
        return accs

    def pyg_epoch() -> tuple[float, list[float]]:
        return train(), test()

    return model, pyg_epoch


# --------------------------------------------------------------------------- timing


def _clock(device: torch.device) -> Callable[[], float]:
    """``time.perf_counter``; on CUDA after ``torch.cuda.synchronize`` (queued kernels done)."""
    if device.type != "cuda":
        return time.perf_counter

    def synchronized() -> float:
        torch.cuda.synchronize(device)
        return time.perf_counter()

    return synchronized


def time_workload(
    workload: Workload,
    data: Data,
    epochs: int,
    warmup: int,
    device: torch.device | None = None,
) -> tuple[dict[str, list[float]], int]:
    """Epoch times (seconds) of both implementations, interleaved; and the parameter count."""
    device = data.x.device if device is None else device
    now = _clock(device)
    built = {impl: build_impl(workload, impl, data, device) for impl in IMPLS}
    shapes = {impl: _shapes(model) for impl, (model, _) in built.items()}
    if shapes["fathom"] != shapes["pyg"]:
        raise AssertionError(
            f"{workload.name}: fathom and PyG parameter shapes differ: "
            f"{shapes['fathom']} vs {shapes['pyg']}"
        )
    num_params = sum(p.numel() for p in built["fathom"][0].parameters())
    for _ in range(warmup):
        for impl in IMPLS:
            built[impl][1]()
    times: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for r in range(epochs):
        for impl in IMPLS if r % 2 == 0 else IMPLS[::-1]:
            start = now()
            built[impl][1]()
            times[impl].append(now() - start)
    return times, num_params


# --------------------------------------------------------------------------- memory


def measure_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS increase while training ``spec['impl']`` on ``spec['workload']`` (after one
    untimed warm-up epoch), measured in the calling process (meant to be a fresh one)."""
    torch.set_num_threads(spec["threads"])
    workload = make_workloads(spec["tiny"], spec["res16_nodes"])[spec["workload"]]
    data = load_data(workload)
    _, epoch = build_impl(workload, spec["impl"], data)
    # one epoch first: lazy one-time costs (modules imported on first use, kernel code paged
    # in, Adam's state) are not what depth or composition costs; what follows is the
    # working set of training itself (activations kept for backward, gradients, temporaries)
    epoch()
    gc.collect()
    reset = reset_peak_rss()
    baseline, baseline_file = status_kib("VmRSS"), status_kib("RssFile")
    for _ in range(spec["epochs"]):
        epoch()
    peak, file = status_kib("VmHWM"), status_kib("RssFile")
    return {
        "baseline_mib": baseline * 1024 / MIB,
        "peak_mib": max(peak - baseline, 0) * 1024 / MIB,
        # library code paged in by the first calls of kernels: part of the peak, reported
        # so that small graphs (where it dominates) can be read
        "file_mib": max(file - baseline_file, 0) * 1024 / MIB,
        "peak_reset": reset,
    }


def measure_cuda_memory(
    workload: Workload, impl: str, data: Data, device: torch.device, epochs: int
) -> dict[str, Any]:
    """Peak CUDA memory that training ``impl`` on ``workload`` allocates on top of what is
    live after one warm-up epoch (data, parameters, Adam state, adjacency caches), measured in
    this process with the caching allocator's counters (``data`` is already on ``device``)."""
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    _, epoch = build_impl(workload, impl, data, device)
    epoch()  # the same warm-up epoch as on the CPU: Adam's state, cached normalisations
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    for _ in range(epochs):
        epoch()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    reserved = torch.cuda.max_memory_reserved(device)
    del epoch
    gc.collect()
    return {
        "baseline_mib": baseline / MIB,
        "peak_mib": max(peak - baseline, 0) / MIB,
        "peak_allocated_mib": peak / MIB,
        "peak_reserved_mib": reserved / MIB,
        "file_mib": None,
        "peak_reset": True,
    }


def _memory_child(spec: dict[str, Any], conn: Any) -> None:
    try:
        conn.send({"ok": measure_memory(spec)})
    except BaseException:  # the parent reports it
        conn.send({"error": traceback.format_exc()})
    finally:
        conn.close()


def memory_in_fresh_process(ctx: Any, spec: dict[str, Any]) -> dict[str, Any]:
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_memory_child, args=(spec, send), daemon=True)
    proc.start()
    send.close()
    try:
        reply = receive.recv()
    except EOFError:
        reply = {"error": "the measuring process died without a reply"}
    proc.join()
    if "error" in reply or proc.exitcode != 0:
        raise RuntimeError(
            f"memory measurement of {spec['workload']}/{spec['impl']} failed "
            f"(exit code {proc.exitcode}):\n{reply.get('error', '')}"
        )
    return reply["ok"]


# glibc serves large blocks from mmap only below a threshold that it raises after every free
# of a large block, so which blocks stay in RSS depends on the allocation history, and peak
# RSS of a small model varied by 2x between identical runs. A fixed threshold makes every
# block over 128 KiB its own mapping, returned on free: RSS then tracks live memory.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def _fork_server() -> Any:
    # the fork server (and so every measuring process) inherits the environment at its start
    for key, value in MALLOC_ENV.items():
        os.environ.setdefault(key, value)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "torch_geometric", "fathom"])
    # children unpickle _memory_child by module name: make this file importable for them
    here = str(Path(__file__).resolve().parent)
    if __name__ not in ("__main__", "__mp_main__") and here not in sys.path:
        sys.path.insert(0, here)
    return ctx


# --------------------------------------------------------------------------- report


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def _environment(threads: int, device: torch.device) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            match = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.MULTILINE)
        cpu = match.group(1).strip() if match else cpu
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "fathom": fathom.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "load_average": list(os.getloadavg()),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
    }


def _where(env: dict[str, Any]) -> str:
    """The hardware of a run in words: the GPU (with its device) or the CPU."""
    if env.get("gpu"):
        return f"{env['gpu']} ({env['device']}, CUDA {env['cuda']}; host CPU {env['cpu']})"
    return str(env["cpu"])


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _verdict(row: dict[str, Any], max_ratio: float) -> str:
    failed = [
        label
        for label, ratio in (("slower", row["time_ratio"]), ("larger", row["mem_ratio"]))
        if ratio is None or ratio > max_ratio
    ]
    return "ok" if not failed else "FAIL: " + ", ".join(failed)


def _table_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for row in result["rows"]:
        fa, py = row["fathom"], row["pyg"]
        rows.append(
            [
                row["workload"],
                _fmt(fa["ms_per_epoch"], ".2f"),
                _fmt(py["ms_per_epoch"], ".2f"),
                _fmt(row["time_ratio"], ".3f"),
                _fmt(fa["peak_mib"], ".1f"),
                _fmt(py["peak_mib"], ".1f"),
                _fmt(row["mem_ratio"], ".3f"),
                _verdict(row, result["settings"]["max_ratio"]),
            ]
        )
    return rows


HEADERS = [
    "workload",
    "fathom ms/epoch",
    "PyG ms/epoch",
    "time ratio",
    "fathom peak MiB",
    "PyG peak MiB",
    "mem ratio",
    "guard",
]


def print_table(result: dict[str, Any]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(" | ".join(HEADERS))
        for cells in _table_rows(result):
            print(" | ".join(cells))
        return
    s = result["settings"]
    table = Table(
        title=f"deep_speed: fathom / PyG ({'TINY, ' if s['tiny'] else ''}{s['epochs']} timed "
        f"epochs after {s['warmup']} warm-up, device: {s['device']}, threads: {s['threads']})"
    )
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if i in (0, 7) else "right")
    for cells in _table_rows(result):
        table.add_row(*cells)
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)  # a pipe or file: rich would assume 80 columns
    console.print(table)
    for row in result["rows"]:
        console.print(f"  {row['workload']}: {row['title']}; {row['num_params']:,} parameters")
    console.print(f"  on: {_where(result['environment'])}")
    console.print(f"  time: {s['timing']}")
    console.print(f"  memory: {s['memory']}")


def to_markdown(result: dict[str, Any]) -> str:
    s, env = result["settings"], result["environment"]
    lines = [
        "# deep_speed: fathom vs idiomatic PyG",
        "",
        f"{'**Tiny smoke run: not a benchmark result.** ' if s['tiny'] else ''}"
        f"{s['epochs']} timed epochs after {s['warmup']} warm-up epochs, "
        f"device: {s['device']}, threads: {s['threads']}; torch {env['torch']}, "
        f"PyG {env['torch_geometric']}, fathom {env['fathom']}, Python {env['python']} "
        f"on {_where(env)} (load average at start {env['load_average'][0]:.2f}).",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join(["---"] + ["---:"] * 6 + ["---"]) + "|",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in _table_rows(result)]
    lines += [""]
    lines += [
        f"- `{r['workload']}`: {r['title']}; {r['num_params']:,} parameters" for r in result["rows"]
    ]
    lines += [
        f"- Time: {s['timing']}.",
        f"- Memory: {s['memory']}.",
        "- Ratios are fathom / PyG; the guard asks every ratio to be <= "
        f"{s['max_ratio']}. All pass: {'yes' if result['all_pass'] else 'no'}.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _workload_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {', '.join(unknown) or '(none)'}; "
            f"choose from {','.join(WORKLOADS)}"
        )
    return list(dict.fromkeys(names))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="deep_speed.py",
        description="Epoch time and peak memory of fathom's deep GNNs against idiomatic PyG "
        "twins, as ratios fathom / PyG.",
    )
    parser.add_argument(
        "--workloads",
        type=_workload_list,
        default=list(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)} (default: all)",
    )
    parser.add_argument(
        "--epochs", type=_positive, help="timed epochs per implementation (default 50; tiny 3)"
    )
    parser.add_argument(
        "--warmup", type=_non_negative, help="untimed epochs first (default 5; tiny 1)"
    )
    parser.add_argument(
        "--mem-epochs",
        type=_positive,
        default=3,
        help="epochs trained by each memory-measuring process (default 3)",
    )
    parser.add_argument(
        "--threads", type=_positive, help="torch threads (default: all available cores)"
    )
    parser.add_argument(
        "--res16-nodes",
        "--nodes",
        dest="res16_nodes",
        type=_positive,
        metavar="N",
        help="nodes of res16's CSBM graph, mean degree 10 (default 100000; tiny 1000); "
        "the issue's figure: 1000000",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto, cpu, cuda or cuda:N: where both sides train (default auto: CUDA when "
        "available)",
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="small graphs and few epochs (a smoke run; needs no datasets)",
    )
    parser.add_argument(
        "--max-ratio",
        type=float,
        default=1.0,
        help="the guard: every ratio must be <= this (default 1.0)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a ratio breaks the guard"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the result as JSON")
    parser.add_argument("--md", type=Path, metavar="PATH", help="write the result as Markdown")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 3 if args.tiny else 50
    if args.warmup is None:
        args.warmup = 1 if args.tiny else 5
    if args.res16_nodes is None:
        args.res16_nodes = 1000 if args.tiny else 100_000
    if args.threads is None:
        args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return args


def _summary(times: list[float], memory: dict[str, Any]) -> dict[str, Any]:
    ms = [t * 1000 for t in times]
    return {
        "ms_per_epoch": statistics.median(ms),
        "ms_min": min(ms),
        "ms_mean": statistics.fmean(ms),
        "epoch_ms": ms,
        **memory,
    }


_START = time.perf_counter()


def _progress(message: str) -> None:
    print(f"[{time.perf_counter() - _START:6.1f}s] {message} ...", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, device: torch.device | None = None) -> dict[str, Any]:
    device = torch.device("cpu") if device is None else device
    workloads = make_workloads(args.tiny, args.res16_nodes)
    env = _environment(args.threads, device)
    datasets: dict[DataConfig, Data] = {}
    for name in args.workloads:
        cfg = workloads[name].data
        if cfg not in datasets:
            _progress(f"loading data for {name}")
            try:
                data = load_data(workloads[name])
            except FathomError as exc:
                raise type(exc)(f"workload {name} needs data {cfg.name!r}: {exc}") from None
            # moved once; both implementations train on this one object
            datasets[cfg] = to_device(data, device)
            del data

    cuda = device.type == "cuda"
    ctx = None if cuda else _fork_server()
    rows = []
    for name in args.workloads:
        workload = workloads[name]
        data = datasets[workload.data]
        _progress(f"{name}: timing")
        times, num_params = time_workload(workload, data, args.epochs, args.warmup, device)
        memory = {}
        for impl in IMPLS:
            _progress(f"{name}: peak memory of {impl}")
            if cuda:
                memory[impl] = measure_cuda_memory(workload, impl, data, device, args.mem_epochs)
                continue
            spec = {
                "workload": name,
                "impl": impl,
                "tiny": args.tiny,
                "res16_nodes": args.res16_nodes,
                "threads": args.threads,
                "epochs": args.mem_epochs,
            }
            memory[impl] = memory_in_fresh_process(ctx, spec)
        fa, py = (_summary(times[impl], memory[impl]) for impl in IMPLS)
        time_ratio = _ratio(fa["ms_per_epoch"], py["ms_per_epoch"])
        mem_ratio = _ratio(fa["peak_mib"], py["peak_mib"])
        ok = all(r is not None and r <= args.max_ratio for r in (time_ratio, mem_ratio))
        rows.append(
            {
                "workload": name,
                "title": workload.title,
                "graph": {
                    "name": workload.data.name,
                    "num_nodes": data.num_nodes,
                    "num_edges": data.num_edges,
                    "num_features": data.num_features,
                    "num_classes": int(data.y.max()) + 1,
                },
                "model": {
                    "conv": workload.model.conv,
                    "depth": workload.model.depth,
                    "hidden": workload.model.hidden,
                    "skip": workload.model.skip,
                },
                "num_params": num_params,
                "fathom": fa,
                "pyg": py,
                "time_ratio": time_ratio,
                "mem_ratio": mem_ratio,
                "pass": ok,
            }
        )
    env["load_average_end"] = list(os.getloadavg())
    return {
        "benchmark": "deep_speed",
        "settings": {
            "workloads": args.workloads,
            "epochs": args.epochs,
            "warmup": args.warmup,
            "mem_epochs": args.mem_epochs,
            "threads": args.threads,
            "res16_nodes": args.res16_nodes,
            "device": str(device),
            "tiny": args.tiny,
            "max_ratio": args.max_ratio,
            "timing": CUDA_TIMING_METHOD if cuda else TIMING_METHOD,
            "memory": CUDA_MEMORY_METHOD if cuda else MEMORY_METHOD,
        },
        "environment": env,
        "rows": rows,
        "all_pass": all(row["pass"] for row in rows),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        device = resolve_device(args.device)
    except FathomError as exc:
        print(f"deep_speed.py: error: {exc}", file=sys.stderr)
        return 2
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        result = run(args, device)
    except FathomError as exc:
        print(f"deep_speed.py: error: {exc}", file=sys.stderr)
        return 2
    finally:
        torch.set_num_threads(threads)
    print_table(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.md is not None:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(to_markdown(result))
        print(f"wrote {args.md}", file=sys.stderr)
    if args.check and not result["all_pass"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
