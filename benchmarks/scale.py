"""Epoch time and peak memory of full-batch training against each mini-batch loader, on
synthetic graphs shaped like ogbn-arxiv, ogbn-proteins and ogbn-products (issue 16).

Rows are (graph, model, implementation, loader). fathom's rows are built through fathom's
public pieces, so they measure what ``fathom train --task node --loader ...`` runs: an
``ExperimentConfig`` (validated), the node task's objective
(``TASKS["node"].objective(cfg, data)``: ``build_loader`` over the train section and
``NodeClassification.loss`` / ``MultiLabelNodeClassification.loss``), ``build_model``,
``build_optimizer`` and ``train_epoch`` (the epoch ``fit`` runs). The ``pyg`` rows are the
same models written with PyG's own classes, trained full batch on ``edge_index`` as PyG's
examples do (``torch-sparse`` is not installable here, so no ``SparseTensor``): PyG's
``GraphSAGE`` (``SAGEConv``) and the DeeperGCN of ``examples/ogbn_proteins_deepgcn.py``
(``DeepGCNLayer(GENConv(softmax), LayerNorm, ReLU, block="res+")``, without edge features and
without its gradient checkpointing, so that both sides keep their activations).

**Graphs** (:data:`GRAPHS`, shrunk by ``--scale``): seeded degree-skewed random graphs made
straight into an int64 ``edge_index`` in O(N + E) memory (:func:`generate`): every node gets
a log-normal expected degree, endpoints ("stubs") are drawn with a multinomial over those
weights, 80% of stubs are paired inside the node's community (blocks of
``max(512, 8 x mean degree)`` consecutive nodes, so METIS finds structure, as in the real
graphs) and the rest over the whole graph; self loops and repeats are dropped, the count is
trimmed to the target, node ids are shuffled and every edge is stored in both directions.
Features are float32 Gaussian noise plus a class signal (1.0 on feature ``class mod F``);
classes are the community id mod C. ogbn-proteins is multi-label like the real one: 112 binary
tasks, each node's drawn with probabilities that depend on one of 8 latent classes
(``MultiLabelNodeClassification``, BCE over the tasks). Train/val/test fractions are OGB's.

**Time**: one warm-up step, then ``--steps`` timed steps of the epoch (batches fetched by the
loader count: sampling is part of a step), fewer when they pass ``--row-seconds`` (at least
one; none when the warm-up step alone took longer: then ``step_s`` is the first step's time,
marked "1st"; target (b) always runs all of them). ``step_s`` is the mean timed step; ``epoch_s`` =
first step + ``step_s`` x (``batches_per_epoch`` - 1), **extrapolated** (marked) unless the
whole epoch ran. The first step holds the epoch's start (drawing a random partition; the
first chunk of GraphSAINT walks). GraphSAINT samples several batches per call: its timed
window is rounded up to whole calls. Full-batch rows time ``min(--steps, 2)`` full steps after
a warm-up step; ``epoch_s`` is their mean. Evaluation is not part of an epoch here.

**Memory**: every row runs in a fresh process forked from a server that only imported torch,
PyG and fathom, with glibc's mmap threshold fixed at 128 KiB (RSS tracks live memory). The
process reads its RSS (``VmRSS``) as the baseline, loads the cached graph, resets the kernel's
peak counter (``VmHWM`` via ``/proc/self/clear_refs``), builds the config, loader (CSR,
METIS, GraphSAINT's normalisation), model and optimiser (``setup_peak_mb``), resets the peak
again and trains (``train_peak_mb``). ``peak_mb`` = max of the two - baseline: graph, loader
state, model, gradients, Adam state, activations and temporaries. A watchdog in the parent
kills a row whose RSS passes ``--max-mb`` over its start (status ``killed``).

**Projections**: a full-batch row's peak and step time are linear in the graph's nodes and
edges (per-node and per-edge activations, a constant): before running it, the row is run on
three small graphs of the same shape family, (n, m), (2n, m) and (n, 2m) nodes and edges
(``--probe-nodes``, ``--probe-edges``), each generated in its own fresh process (the peak
counter is reset after generating it), and ``a + b N + c E`` is fitted and evaluated at the
row's graph. A row whose projected peak is
over ``--max-mb`` is written as ``skipped`` with the projection and never run. Sampler rows
hold fixed-size batches; they are run (under the watchdog) without a projection.

**Targets** (issue 16): (a) a 16-layer ResGCN+ on the products-shaped graph trains within
24 GB on CPU with a sampler (each sampler row's measured peak; full batch: its projection);
(b) a 1000-layer reversible model on a 1M-node graph with random partitions within 8 GB
(peak over a warm-up and ``--steps`` training steps).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scale.py --graphs arxiv,products,proteins \\
        --threads 1 --steps 2 --row-seconds 20 --max-mb 14000 --budget-min 28 --timeout 600 \\
        --json docs/results/scale.json --md docs/results/scale.md
    .venv/bin/python benchmarks/scale.py --scale 0.01 --graphs arxiv --steps 1   # smoke
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fathom.experiments.process_memory import reset_peak_rss, status_kib

MIB = 1 << 20
GB_MB = 1024.0
SEED = 0
# glibc serves large blocks from mmap only below a threshold that it raises after every free
# of a large block; a fixed threshold returns every block over 128 KiB on free, so RSS tracks
# live memory instead of the allocation history
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
TARGET_A_MB = 24 * GB_MB
TARGET_B_MB = 8 * GB_MB


# --------------------------------------------------------------------------- graphs


@dataclass(frozen=True)
class GraphShape:
    """A graph to generate: sizes of the OGB dataset it imitates (``edges`` undirected, each
    stored in both directions), OGB's split fractions, and the label kind."""

    name: str
    title: str
    nodes: int
    edges: int
    features: int
    classes: int
    train: float
    val: float
    multi_label: bool = False
    latent: int = 0
    """Latent classes behind a multi-label graph's task probabilities."""


GRAPHS: dict[str, GraphShape] = {
    # ogbn-arxiv: 169,343 nodes, 1,166,243 (directed) citations, symmetrised as PyG's arxiv
    # examples do; 128 features, 40 classes; split 90,941 / 29,799 / 48,603
    "arxiv": GraphShape("arxiv", "ogbn-arxiv", 169_343, 1_166_243, 128, 40, 0.537, 0.176),
    # ogbn-proteins: 132,534 nodes, 39,561,252 edges, 8 features (OGB's node features are
    # species ids; the DeeperGCN recipe turns the 8 edge features into node features), 112
    # binary tasks; split 86,619 / 21,236 / 24,679
    "proteins": GraphShape(
        "proteins", "ogbn-proteins", 132_534, 39_561_252, 8, 112, 0.654, 0.160, True, 8
    ),
    # ogbn-products: 2,449,029 nodes, 61,859,140 edges, 100 features, 47 classes; split
    # 196,615 / 39,323 / 2,213,091
    "products": GraphShape(
        "products", "ogbn-products", 2_449_029, 61_859_140, 100, 47, 0.0803, 0.0161
    ),
    # target (b): a 1M-node graph with ogbn-products' mean degree (~50), features and classes
    "rev1m": GraphShape("rev1m", "1M-node graph", 1_000_000, 25_259_000, 100, 47, 0.0803, 0.0161),
}
MAIN_GRAPHS = ("arxiv", "proteins", "products")
HOMOPHILY = 0.8
"""Fraction of edge endpoints paired inside their community."""
DEGREE_SIGMA = 1.0
"""Log-normal spread of the expected degrees."""


def sizes(shape: GraphShape, scale: float) -> tuple[int, int]:
    """(nodes, undirected edges) of ``shape`` shrunk by ``scale``."""
    n = max(64, round(shape.nodes * scale))
    m = max(n, round(shape.edges * scale))
    return n, min(m, n * (n - 1) // 2)


def generate(
    shape: GraphShape, num_nodes: int, num_edges: int, seed: int = SEED
) -> dict[str, torch.Tensor]:
    """The graph of ``shape`` with ``num_nodes`` nodes and (up to) ``num_edges`` undirected
    edges as tensors: ``x`` float32 ``[N, F]``, ``edge_index`` int64 ``[2, 2E]`` (both
    directions), ``y`` (int64 ``[N]``, or ``[N, T]`` of 0/1 for a multi-label shape) and
    boolean ``train_mask`` / ``val_mask`` / ``test_mask``. O(N + E) memory, seeded.
    """
    n, m = int(num_nodes), int(num_edges)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    degree = 2 * m / n
    community = int(max(512, 8 * degree))
    draw = int(m * 1.04) + 64  # repeats and self loops are dropped below

    weight = np.exp(DEGREE_SIGMA * rng.standard_normal(n))
    weight /= weight.sum()
    key = _draw_edges(n, draw, community, weight, rng, gen)
    for _ in range(4):  # top up what repeats and self loops took
        if key.numel() >= m:
            break
        more = _draw_edges(n, int((m - key.numel()) * 1.3) + 64, community, weight, rng, gen)
        key = torch.unique(torch.cat([key, more]))
        del more
    del weight
    if key.numel() > m:
        drop = torch.randperm(key.numel(), generator=gen)[: key.numel() - m]
        mask = torch.ones(key.numel(), dtype=torch.bool)
        mask[drop] = False
        key = key[mask]
        del drop, mask
    relabel = torch.randperm(n, generator=gen)
    row, col = relabel[key // n], relabel[key % n]
    del key
    edge_index = torch.empty(2, 2 * row.numel(), dtype=torch.long)
    edge_index[0, : row.numel()], edge_index[0, row.numel() :] = row, col
    edge_index[1, : row.numel()], edge_index[1, row.numel() :] = col, row
    del row, col

    # node i of the unshuffled numbering sits in community i // community; relabel[i] is its id
    label = torch.empty(n, dtype=torch.long)
    label[relabel] = torch.arange(n) // community
    del relabel
    x = torch.randn(n, shape.features, generator=gen)
    if shape.multi_label:
        latent = label % shape.latent
        x[torch.arange(n), latent % shape.features] += 1.0
        prob = torch.rand(shape.latent, shape.classes, generator=gen) * 0.5
        y = (torch.rand(n, shape.classes, generator=gen) < prob[latent]).long()
    else:
        y = label % shape.classes
        x[torch.arange(n), y % shape.features] += 1.0
    perm = torch.randperm(n, generator=gen)
    n_train, n_val = round(shape.train * n), round(shape.val * n)
    masks = {}
    for split, (lo_, hi_) in {
        "train_mask": (0, n_train),
        "val_mask": (n_train, n_train + n_val),
        "test_mask": (n_train + n_val, n),
    }.items():
        mask_ = torch.zeros(n, dtype=torch.bool)
        mask_[perm[lo_:hi_]] = True
        masks[split] = mask_
    return {"x": x, "edge_index": edge_index, "y": y, **masks}


def _draw_edges(
    n: int,
    draw: int,
    community: int,
    weight: np.ndarray,
    rng: np.random.Generator,
    gen: torch.Generator,
) -> torch.Tensor:
    """``draw`` random edges as sorted unique keys ``lo * n + hi`` (no self loops): stubs
    drawn in proportion to ``weight``, a :data:`HOMOPHILY` share paired inside their
    community of ``community`` consecutive nodes, the rest over the whole graph."""
    stubs = torch.repeat_interleave(
        torch.arange(n), torch.from_numpy(rng.multinomial(2 * draw, weight))
    )  # [2 * draw], sorted by node, so grouped by community
    inside = torch.rand(stubs.numel(), generator=gen) < HOMOPHILY
    a = stubs[inside]
    b = stubs[~inside]
    del stubs, inside
    # inside a community: sort by (community, random key), pair neighbours in that order
    key = (a // community) * (1 << 31) + torch.randint(0, 1 << 31, a.shape, generator=gen)
    a = a[torch.argsort(key)]
    del key
    b = b[torch.randperm(b.numel(), generator=gen)]
    keys = []
    for c in (a, b):
        half = c.numel() // 2
        u, v = c[0 : 2 * half : 2], c[1 : 2 * half : 2]
        lo, hi = torch.minimum(u, v), torch.maximum(u, v)
        keep = lo != hi
        keys.append(lo[keep] * n + hi[keep])
    del a, b
    return torch.unique(torch.cat(keys))


def to_data(tensors: dict[str, torch.Tensor]) -> Any:
    from torch_geometric.data import Data

    data = Data(**tensors)
    data.num_nodes = tensors["x"].size(0)
    return data


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    config: dict[str, Any]
    pyg: str | None
    """Name of the PyG twin (:func:`pyg_model`), None: no PyG row."""


MODELS: dict[str, ModelSpec] = {
    # GraphSAGE as PyG's ogbn-products example (2 layers here), hidden 256, dropout 0.5
    "sage2": ModelSpec(
        "sage2",
        "GraphSAGE-2 (hidden 256)",
        {"conv": "sage", "depth": 2, "hidden": 256, "dropout": 0.5},
        "sage",
    ),
    # DeeperGCN's ResGCN+ (Li et al. 2020; the ogbn-proteins recipe: GENConv with softmax
    # aggregation and a learnt temperature, res+ pre-activation blocks, layer norm, hidden 64,
    # dropout 0.1), 16 layers, linear encoder and head
    "resgcn16": ModelSpec(
        "resgcn16",
        "ResGCN+-16 (DeeperGCN res+, GEN softmax, hidden 64)",
        {
            "conv": "gen",
            "aggr": "softmax",
            "depth": 16,
            "hidden": 64,
            "skip": "res+",
            "norm": "layer",
            "dropout": 0.1,
            "encoder": "linear",
            "head": "linear",
        },
        "deepergcn",
    ),
    # RevGNN (Li et al. 2021): 1000 grouped reversible blocks (2 groups), target (b); GCN
    # groups with batch norm (fathom's fused GCNGroup) rather than RevGNN's GEN convs, whose
    # per-edge softmax makes 1000 layers several times slower on two CPU cores
    "rev1000": ModelSpec(
        "rev1000",
        "RevGNN-1000 (reversible, 2 groups, GCN + batch norm, hidden 64)",
        {
            "conv": "gcn",
            "depth": 1000,
            "hidden": 64,
            "skip": "res",
            "norm": "batch",
            "dropout": 0.1,
            "encoder": "linear",
            "head": "linear",
            "memory": "reversible",
            "groups": 2,
        },
        None,
    ),
}
MAIN_MODELS = ("sage2", "resgcn16")


def pyg_model(name: str, spec: ModelSpec, in_channels: int, out_channels: int) -> Any:
    """The PyG twin of ``spec``, from PyG's own classes."""
    import torch.nn.functional as F
    from torch import nn
    from torch_geometric.nn import DeepGCNLayer, GENConv
    from torch_geometric.nn.models import GraphSAGE

    cfg = spec.config
    if name == "sage":
        return GraphSAGE(
            in_channels,
            cfg["hidden"],
            num_layers=cfg["depth"],
            out_channels=out_channels,
            dropout=cfg["dropout"],
        )

    class DeeperGCN(nn.Module):
        """``examples/ogbn_proteins_deepgcn.py`` without edge features or checkpointing."""

        def __init__(self) -> None:
            super().__init__()
            hidden, self.dropout = cfg["hidden"], cfg["dropout"]
            self.node_encoder = nn.Linear(in_channels, hidden)
            self.layers = nn.ModuleList()
            for _ in range(cfg["depth"]):
                conv = GENConv(
                    hidden,
                    hidden,
                    aggr="softmax",
                    t=1.0,
                    learn_t=True,
                    num_layers=2,
                    norm="layer",
                )
                norm = nn.LayerNorm(hidden, elementwise_affine=True)
                act = nn.ReLU(inplace=True)
                self.layers.append(
                    DeepGCNLayer(conv, norm, act, block="res+", dropout=self.dropout)
                )
            self.lin = nn.Linear(hidden, out_channels)

        def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
            x = self.node_encoder(x)
            x = self.layers[0].conv(x, edge_index)
            for layer in self.layers[1:]:
                x = layer(x, edge_index)
            x = self.layers[0].act(self.layers[0].norm(x))
            x = F.dropout(x, p=self.dropout, training=self.training)
            return self.lin(x)

    return DeeperGCN()


# --------------------------------------------------------------------------- loaders

LOADER_NAMES = ("full", "neighbor", "cluster", "random-partition", "saint")
SAMPLERS = LOADER_NAMES[1:]
CLUSTER_PART_NODES = 2_449_029 / 15_000
"""Nodes per METIS part: ogbn-products' Cluster-GCN recipe (15,000 parts, 32 per batch)."""
RANDOM_PART_NODES = 132_534 / 10
"""Nodes per random part: the DeeperGCN / RevGNN ogbn-proteins recipe (10 parts)."""


def loader_options(loader: str, num_nodes: int, args: argparse.Namespace) -> dict[str, Any]:
    """The ``train.*`` options of ``loader`` on a graph of ``num_nodes`` nodes."""
    if loader == "full":
        return {}
    if loader == "neighbor":
        # PyG's ogbn-products GraphSAGE example: fan-outs 15, 10(, 5), 1024 seeds per batch
        return {"fanouts": args.fanouts, "batch_size": 1024}
    if loader == "cluster":
        parts = max(2, round(num_nodes / CLUSTER_PART_NODES))
        return {"num_parts": parts, "parts_per_batch": min(32, parts)}
    if loader == "random-partition":
        return {"num_parts": max(2, round(num_nodes / RANDOM_PART_NODES)), "parts_per_batch": 1}
    if loader == "saint":
        # OGB's ogbn-products GraphSAINT example: 20,000 roots, walks of 3
        return {
            "batch_size": 20_000,
            "walk_length": 3,
            "sample_coverage": args.saint_coverage,
        }
    raise ValueError(loader)


# --------------------------------------------------------------------------- child process


class TimedSteps:
    """An objective that trains on the first ``limit`` batches of ``inner``'s epoch and reads
    the clock before fetching each batch (so a step is: fetch, loss, backward, step)."""

    def __init__(self, inner: Any, limit: int, seconds: float = math.inf) -> None:
        self.inner, self.limit, self.seconds = inner, limit, seconds
        self.marks: list[float] = []
        self.nodes: list[int] = []
        self.edges: list[int] = []

    def batches(self, data: Any) -> Iterator[tuple[Any, float]]:
        from fathom.train.loop import full_batch

        it = iter(getattr(self.inner, "batches", full_batch)(data))
        for i in range(self.limit):
            self.marks.append(time.perf_counter())
            if i >= 1 and self.marks[-1] - self.marks[i - 1 if i == 1 else 1] > self.seconds:
                return  # the row's time is up (after the warm-up, or one timed step)
            try:
                batch, weight = next(it)
            except StopIteration:
                return
            self.nodes.append(int(batch.num_nodes))
            self.edges.append(int(batch.edge_index.size(1)))
            yield batch, weight
        self.marks.append(time.perf_counter())

    def loss(self, model: Any, batch: Any) -> torch.Tensor:
        return self.inner.loss(model, batch)

    def durations(self) -> list[float]:
        return [self.marks[i + 1] - self.marks[i] for i in range(len(self.nodes))]


def _load_graph(path: str) -> Any:
    return to_data(torch.load(path, weights_only=True))


def _experiment_config(spec: dict[str, Any]) -> Any:
    from fathom.config import ExperimentConfig, ModelConfig, TrainConfig

    model = ModelConfig(**MODELS[spec["model"]].config)
    train = TrainConfig(loader=spec["loader"], **spec["loader_options"])
    return ExperimentConfig(model=model, train=train, task="node", seed=SEED).validate()


def _criterion(y: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    import torch.nn.functional as F

    if y.dim() == 2:
        return lambda out, t: F.binary_cross_entropy_with_logits(out, t.to(out.dtype))
    return F.cross_entropy


def train_steps(spec: dict[str, Any], data: Any) -> dict[str, Any]:
    """Set up and train ``spec`` on ``data`` in this process; timing and batch sizes, with
    the peaks of setup and training (``VmHWM``, reset in between) in KiB."""
    from fathom.models.build import build_model
    from fathom.tasks import TASKS
    from fathom.train.loop import train_epoch
    from fathom.train.optim import build_optimizer

    reset_peak_rss()
    torch.manual_seed(SEED)
    t0 = time.perf_counter()
    out_channels = data.y.size(1) if data.y.dim() == 2 else int(data.y.max()) + 1
    loader_len = 1
    chunk = 1
    if spec["impl"] == "fathom":
        cfg = _experiment_config(spec)
        objective = TASKS.get("node").objective(cfg, data)
        loader = getattr(objective, "loader", None)
        if loader is not None:
            loader_len = len(loader)
            chunk_size = getattr(loader, "_chunk_size", None)  # GraphSAINT: batches per call
            chunk = int(chunk_size()) if callable(chunk_size) else 1
        model = build_model(cfg.model, data.num_features, out_channels)
        optimizer = build_optimizer(model, cfg.train)
    else:
        from fathom.config import TrainConfig

        spec_m = MODELS[spec["model"]]
        model = pyg_model(spec_m.pyg or "", spec_m, data.num_features, out_channels)
        defaults = TrainConfig()
        optimizer = torch.optim.Adam(
            model.parameters(), lr=defaults.lr, weight_decay=defaults.weight_decay
        )
        objective = None
    model.train()
    setup_s = time.perf_counter() - t0
    gc.collect()
    setup_hwm = status_kib("VmHWM")
    reset_peak_rss()

    steps = spec["steps"]
    if loader_len == 1:  # full batch: one warm-up step, then min(steps, 2) timed steps
        durations = []
        losses = []
        nodes, edges = [data.num_nodes], [int(data.edge_index.size(1))]
        for i in range(1 + min(steps, 2)):
            if i >= 1 and sum(durations[1:] if i >= 2 else durations) > spec["row_seconds"]:
                break  # the row's time is up (after the warm-up, or one timed step)
            t = time.perf_counter()
            if objective is not None:
                losses.append(train_epoch(model, objective, data, optimizer))
            else:
                criterion = _criterion(data.y)
                optimizer.zero_grad(set_to_none=True)
                out = model(data.x, data.edge_index)
                loss = criterion(out[data.train_mask], data.y[data.train_mask])
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            durations.append(time.perf_counter() - t)
        timed = durations[1:]
        step_s = statistics.mean(timed) if timed else durations[0]
        epoch_s, extrapolated = step_s, False
    else:
        timed_steps = min(loader_len - 1, math.ceil(steps / chunk) * chunk)
        wrapper = TimedSteps(objective, 1 + timed_steps, spec["row_seconds"])
        losses = [train_epoch(model, wrapper, data, optimizer)]
        durations = wrapper.durations()
        nodes, edges = wrapper.nodes, wrapper.edges
        timed = durations[1:]
        step_s = statistics.mean(timed) if timed else durations[0]
        if len(durations) >= loader_len:
            epoch_s, extrapolated = sum(durations), False
        else:
            epoch_s, extrapolated = durations[0] + step_s * (loader_len - 1), True
    train_hwm = status_kib("VmHWM")
    return {
        "setup_s": setup_s,
        "setup_hwm_kib": setup_hwm,
        "train_hwm_kib": train_hwm,
        "batches_per_epoch": loader_len,
        "steps_timed": len(timed),
        "first_step_s": durations[0],
        "step_s": step_s,
        "step_times_s": durations,
        "epoch_s": epoch_s,
        "epoch_extrapolated": extrapolated,
        "batch_nodes_mean": statistics.mean(nodes),
        "batch_edges_mean": statistics.mean(edges),
        "params": sum(p.numel() for p in model.parameters()),
        "losses": losses,
    }


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """One row in this (fresh) process: load the graph (or generate it: ``spec["generate"]``
    = (nodes, undirected edges), a probe), set up, train, measure."""
    torch.set_num_threads(spec["threads"])
    gc.collect()
    base = status_kib("VmRSS")
    if spec.get("generate"):
        n, m = spec["generate"]
        data = to_data(generate(GRAPHS[spec["graph"]], n, m, SEED))
    else:
        data = _load_graph(spec["graph_path"])
    gc.collect()
    after_graph = status_kib("VmRSS")
    result = train_steps(spec, data)  # resets the peak: generator temporaries do not count
    setup_peak = (result.pop("setup_hwm_kib") - base) / 1024
    train_peak = (result.pop("train_hwm_kib") - base) / 1024
    return {
        **result,
        "peak_mb": max(setup_peak, train_peak),
        "setup_peak_mb": setup_peak,
        "train_peak_mb": train_peak,
        "graph_mb": (after_graph - base) / 1024,
        "num_nodes": int(data.num_nodes),
        "num_edges": int(data.edge_index.size(1)),
    }


def _die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent (the fork server, which ends with
    the benchmark) dies, so that no measuring process outlives an interrupted run."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux / glibc: nothing to arrange
        pass


def _child(fn_name: str, spec: dict[str, Any], conn: Any) -> None:
    _die_with_parent()
    try:
        fn = {"measure": measure, "generate": _generate_to}[fn_name]
        conn.send({"ok": fn(spec)})
    except BaseException:  # the parent reports it
        conn.send({"error": traceback.format_exc()})
    finally:
        conn.close()


GEN_KEYS = ("generate_s", "nodes", "edges", "peak_rss_mb")


def _generate_to(spec: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    tensors = generate(GRAPHS[spec["graph"]], spec["nodes"], spec["edges"], SEED)
    gen_s = time.perf_counter() - t0
    torch.save(tensors, spec["path"])
    return {
        "generate_s": gen_s,
        "nodes": int(tensors["x"].size(0)),
        "edges": int(tensors["edge_index"].size(1)),
        "peak_rss_mb": status_kib("VmHWM") / 1024,
    }


# --------------------------------------------------------------------------- parent


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_child(
    ctx: Any, fn_name: str, spec: dict[str, Any], *, max_mb: float, timeout: float | None
) -> dict[str, Any]:
    """``fn_name(spec)`` in a fresh process forked from the server; its result or a
    ``failed`` / ``killed`` status. The process is killed when its RSS grows more than
    ``max_mb`` over its RSS at start, or after ``timeout`` seconds."""
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn_name, spec, send), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    send.close()
    start_rss = _rss_mb(proc.pid)  # the fork server's pages, before the child allocates
    high = 0.0
    reply: dict[str, Any] | None = None
    while reply is None:
        if receive.poll(0.2):
            try:
                reply = receive.recv()
            except EOFError:
                reply = {"error": f"the process died without a reply (exit code {proc.exitcode})"}
            break
        rss = _rss_mb(proc.pid)
        if rss is not None:
            start_rss = rss if start_rss is None else start_rss
            high = max(high, rss - start_rss)
            if high > max_mb:
                proc.kill()
                proc.join()
                return {
                    "status": "killed",
                    "error": f"RSS grew {high:.0f} MB > --max-mb {max_mb:.0f}: killed",
                    "wall_s": time.perf_counter() - t0,
                }
        if timeout is not None and time.perf_counter() - t0 > timeout:
            proc.kill()
            proc.join()
            return {"status": "failed", "error": f"timed out after {timeout:.0f} s"}
        if not proc.is_alive() and not receive.poll(0.5):
            reply = {"error": f"the process died without a reply (exit code {proc.exitcode})"}
    proc.join()
    wall = time.perf_counter() - t0
    if "error" in reply:
        lines = reply["error"].strip().splitlines()
        return {"status": "failed", "error": " | ".join(lines[-3:]), "wall_s": wall}
    return {"status": "ok", **reply["ok"], "wall_s": wall}


def fork_server(threads: int) -> Any:
    """A fork server that imported torch, PyG and fathom, with the allocator and thread
    settings every measuring process inherits."""
    for key, value in MALLOC_ENV.items():
        os.environ.setdefault(key, value)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(
        ["torch", "torch_geometric", "fathom", "fathom.tasks", "fathom.models.build", "pymetis"]
    )
    # children unpickle _child by module name: make this file importable for them
    here = str(Path(__file__).resolve().parent)
    if __name__ not in ("__main__", "__mp_main__") and here not in sys.path:
        sys.path.insert(0, here)
    return ctx


def fit_linear(points: list[dict[str, Any]], key: str, nodes: int, edges: int) -> float:
    """``a + b N + c E`` through three probe points, evaluated at (``nodes``, ``edges``)."""
    a = np.array([[1.0, p["nodes"], p["edges"]] for p in points])
    v = np.array([p[key] for p in points])
    coef, *_ = np.linalg.lstsq(a, v, rcond=None)
    coef[1:] = np.maximum(coef[1:], 0.0)  # memory and time do not fall as a graph grows
    return float(coef[0] + coef[1] * nodes + coef[2] * edges)


def probe_sizes(
    n: int, m: int, probe_nodes: int = 4_000, probe_edges: int = 25_000
) -> list[tuple[int, int]] | None:
    """Probe graph sizes (n0, m0), (2 n0, m0), (n0, 2 m0) for a graph of ``n`` nodes, ``m``
    undirected edges; None when the graph is small enough to run without a projection."""
    n0, m0 = min(n, probe_nodes), min(m, probe_edges)
    if n <= 4 * n0 and m <= 4 * m0:
        return None
    return [(n0, m0), (2 * n0, min(m0, n0 * (2 * n0 - 1))), (n0, min(2 * m0, n0 * (n0 - 1) // 2))]


@dataclass(frozen=True)
class Row:
    graph: str
    model: str
    impl: str
    loader: str
    target: str | None = None


def plan_rows(args: argparse.Namespace) -> list[Row]:
    """Targets first ((b), then (a)'s products rows), then every other requested row, graph
    by graph in the order of ``--graphs``."""
    rows: list[Row] = []
    if "b" in args.targets:
        rows.append(Row("rev1m", "rev1000", "fathom", "random-partition", "b"))
    grid: list[Row] = []
    for graph in args.graphs:  # in the order given
        for model in args.models:
            for loader in args.loaders:
                grid.append(Row(graph, model, "fathom", loader))
                if loader == "full" and args.pyg and MODELS[model].pyg:
                    grid.append(Row(graph, model, "pyg", loader))
    if "a" in args.targets:
        order = {"random-partition": 0, "cluster": 1, "saint": 2, "neighbor": 3, "full": 4}
        first = [r for r in grid if r.graph == "products" and r.model == "resgcn16"]
        first.sort(key=lambda r: (order[r.loader], r.impl))
        rows += [Row(r.graph, r.model, r.impl, r.loader, "a") for r in first]
        grid = [r for r in grid if r not in first]
    return rows + grid


def run_benchmark(args: argparse.Namespace, log: Callable[[str], Any] = print) -> dict[str, Any]:
    ctx = fork_server(args.threads)
    rows_plan = plan_rows(args)
    cache = Path(args.cache_dir) if args.cache_dir else Path(tempfile.mkdtemp(prefix="scale-"))
    cache.mkdir(parents=True, exist_ok=True)
    graphs: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    load_start = os.getloadavg()
    try:
        for plan in rows_plan:
            spent = (time.perf_counter() - started) / 60
            if args.budget_min is not None and spent > args.budget_min:
                rows.append(
                    {
                        "graph": plan.graph,
                        "model": plan.model,
                        "impl": plan.impl,
                        "loader": plan.loader,
                        "target": plan.target,
                        "status": "not run",
                        "note": f"--budget-min {args.budget_min:g} spent ({spent:.1f} min)",
                    }
                )
                log(f"{plan.graph}/{plan.model}/{plan.impl}/{plan.loader}: not run (budget)")
                continue
            shape = GRAPHS[plan.graph]
            n, m = sizes(shape, args.scale)
            if plan.graph not in graphs:
                path = cache / f"{plan.graph}-n{n}-m{m}-s{SEED}.pt"
                info: dict[str, Any] = {"path": str(path)}
                meta = path.with_suffix(".json")
                if path.exists() and meta.exists():
                    info.update(json.loads(meta.read_text()), cached=True)
                else:
                    log(f"generating {plan.graph}: {n:,} nodes, {m:,} edges ...")
                    spec = {"graph": plan.graph, "nodes": n, "edges": m, "path": str(path)}
                    info.update(run_child(ctx, "generate", spec, max_mb=1e9, timeout=None))
                    if info["status"] != "ok":
                        raise RuntimeError(f"generating {plan.graph} failed: {info['error']}")
                    log(
                        f"generated {plan.graph} in {info['generate_s']:.0f} s "
                        f"({info['edges']:,} directed edges)"
                    )
                    meta.write_text(json.dumps({k: info[k] for k in GEN_KEYS}))
                graphs[plan.graph] = {
                    "title": shape.title,
                    "nodes": n,
                    "target_undirected_edges": m,
                    "features": shape.features,
                    "classes": shape.classes,
                    "multi_label": shape.multi_label,
                    **{k: v for k, v in info.items() if k not in ("status", "path")},
                }
                graphs[plan.graph]["_path"] = str(path)
            rows.append(run_row(ctx, args, plan, graphs[plan.graph], n, m, log))
    finally:
        if not args.cache_dir:
            shutil.rmtree(cache, ignore_errors=True)
    for info in graphs.values():
        info.pop("_path", None)
    result = {
        "rows": rows,
        "graphs": graphs,
        "setup": setup(args, time.perf_counter() - started, load_start),
    }
    result["targets"] = targets(rows)
    return result


def run_row(
    ctx: Any,
    args: argparse.Namespace,
    plan: Row,
    graph: dict[str, Any],
    n: int,
    m: int,
    log: Callable[[str], Any],
) -> dict[str, Any]:
    label = f"{plan.graph}/{plan.model}/{plan.impl}/{plan.loader}"
    row: dict[str, Any] = {
        "graph": plan.graph,
        "model": plan.model,
        "impl": plan.impl,
        "loader": plan.loader,
        "target": plan.target,
    }
    options = loader_options(plan.loader, n, args)
    row["loader_options"] = options
    spec = {
        "graph": plan.graph,
        "model": plan.model,
        "impl": plan.impl,
        "loader": plan.loader,
        "loader_options": options,
        "graph_path": graph["_path"],
        "steps": args.steps,
        # target (b) is a peak over a few training steps: all of them, whatever they take
        "row_seconds": math.inf if plan.target == "b" else args.row_seconds,
        "threads": args.threads,
    }
    t0 = time.perf_counter()
    sizes_ = (
        probe_sizes(n, m, args.probe_nodes, args.probe_edges) if plan.loader == "full" else None
    )
    if sizes_ is not None:
        log(f"{label}: probing {len(sizes_)} small graphs for a projection ...")
        points = []
        for size in sizes_:
            probe_spec = {**spec, "generate": size, "steps": 1, "row_seconds": math.inf}
            probed = run_child(ctx, "measure", probe_spec, max_mb=args.max_mb, timeout=None)
            if probed["status"] != "ok":
                row.update(status="failed", error=f"probe {size}: {probed['error']}")
                log(f"{label}: probe failed ({probed['error']})")
                return row
            points.append(
                {
                    "nodes": probed["num_nodes"],
                    "edges": probed["num_edges"],
                    "peak_mb": probed["peak_mb"],
                    "step_s": probed["step_s"],
                }
            )
        nodes, edges = n, graph["edges"]
        row["projection"] = {
            "points": points,
            "peak_mb": fit_linear(points, "peak_mb", nodes, edges),
            "step_s": fit_linear(points, "step_s", nodes, edges),
            "at": {"nodes": nodes, "edges": edges},
        }
        row["projected_peak_mb"] = row["projection"]["peak_mb"]
        row["projected_step_s"] = row["projection"]["step_s"]
        if row["projected_peak_mb"] > args.max_mb:
            row.update(status="skipped", peak_mb=None, epoch_s=None, step_s=None)
            row["note"] = (
                f"projected peak {row['projected_peak_mb']:,.0f} MB > --max-mb "
                f"{args.max_mb:,.0f}: not run"
            )
            row["wall_s"] = time.perf_counter() - t0
            log(f"{label}: skipped ({row['note']})")
            return row
    log(f"{label}: running ...")
    row.update(run_child(ctx, "measure", spec, max_mb=args.max_mb, timeout=args.timeout))
    row["wall_s"] = time.perf_counter() - t0
    if row["status"] == "ok":
        kind = "extrapolated" if row["epoch_extrapolated"] else "measured"
        log(
            f"{label}: peak {row['peak_mb']:,.0f} MB, step {row['step_s']:.2f} s, "
            f"epoch {row['epoch_s']:.1f} s ({kind}, {row['batches_per_epoch']} batches), "
            f"setup {row['setup_s']:.1f} s, wall {row['wall_s']:.0f} s"
        )
    else:
        log(f"{label}: {row['status']} ({row['error']})")
    return row


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Verdicts of targets (a) and (b) from the rows (absent when their rows are)."""
    out: dict[str, Any] = {}
    a_rows = [r for r in rows if r["target"] == "a"]
    if a_rows:
        samplers = {
            r["loader"]: r["peak_mb"]
            for r in a_rows
            if r["loader"] != "full" and r.get("status") == "ok"
        }
        full = [r for r in a_rows if r["loader"] == "full" and r["impl"] == "fathom"]
        full_row = full[0] if full else None
        best = min(samplers.items(), key=lambda kv: kv[1]) if samplers else None
        out["a"] = {
            "text": "16-layer ResGCN+ on the products-shaped graph trains within 24 GB on CPU "
            "(with a sampler)",
            "limit_mb": TARGET_A_MB,
            "sampler_peaks_mb": samplers,
            "not_measured": [
                f"{r['loader']} ({r['status']})"
                for r in a_rows
                if r["loader"] != "full" and r.get("status") != "ok"
            ],
            "pass": best is not None and best[1] <= TARGET_A_MB,
            "every_sampler_within": bool(samplers)
            and all(v <= TARGET_A_MB for v in samplers.values()),
            "full_batch": None
            if full_row is None
            else {
                "status": full_row.get("status"),
                "peak_mb": full_row.get("peak_mb"),
                "projected_peak_mb": full_row.get("projected_peak_mb"),
                "fits": (
                    full_row["peak_mb"] <= TARGET_A_MB
                    if full_row.get("peak_mb") is not None
                    else (
                        full_row["projected_peak_mb"] <= TARGET_A_MB
                        if full_row.get("projected_peak_mb") is not None
                        else None
                    )
                ),
            },
        }
    b_rows = [r for r in rows if r["target"] == "b"]
    if b_rows:
        r = b_rows[0]
        ok = r.get("status") == "ok"
        out["b"] = {
            "text": "1000-layer reversible model on a 1M-node graph with random partitions "
            "within 8 GB",
            "limit_mb": TARGET_B_MB,
            "status": r.get("status"),
            "peak_mb": r.get("peak_mb"),
            "nodes": r.get("num_nodes"),
            "steps": None if not ok else 1 + r["steps_timed"],
            "pass": ok and r["peak_mb"] <= TARGET_B_MB,
        }
    return out


def setup(args: argparse.Namespace, wall_s: float, load_start: tuple[float, ...]) -> dict[str, Any]:
    import torch_geometric

    return {
        "command": " ".join(["benchmarks/scale.py", *(args.argv or [])]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "scale": args.scale,
        "steps": args.steps,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_average_start": list(load_start),
        "load_average_end": list(os.getloadavg()),
        "max_mb": args.max_mb,
        "fanouts": args.fanouts,
        "saint_coverage": args.saint_coverage,
        "wall_s": wall_s,
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "memory_total_mb": _mem_total_mb(),
        "malloc_env": MALLOC_ENV,
        "models": {k: {"title": v.title, **v.config} for k, v in MODELS.items()},
    }


def _mem_total_mb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------- report


def _f(value: Any, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _sec(value: float | None) -> str:
    """Seconds to about three significant figures."""
    if value is None:
        return "—"
    return format(
        value, ".3f" if value < 1 else ".2f" if value < 10 else ",.1f" if value < 1000 else ",.0f"
    )


HEADERS = [
    "graph",
    "model",
    "impl",
    "loader",
    "status",
    "batches/epoch",
    "step s",
    "epoch s",
    "peak MB",
    "proj. peak MB",
    "setup s",
    "nodes/batch",
    "edges/batch",
]


def _why(row: dict[str, Any], max_mb: float) -> str:
    """Why a row has no measurement, in one line."""
    if row["status"] == "killed":
        return (
            f"killed after {row.get('wall_s', 0):.0f} s, when its RSS had grown past "
            f"--max-mb {max_mb:,.0f} MB (its peak is above that; not measured further)"
        )
    error = row.get("note") or row.get("error", "")
    match = re.search(r"tried to allocate (\d+) bytes", error)
    if match:
        size = int(match.group(1))
        return (
            f"failed: one allocation of {size:,} bytes ({size / 2**30:.1f} GiB) was refused "
            f"(out of memory): {error.split('|')[0].strip()}"
        )
    return error


def _cells(row: dict[str, Any], max_mb: float) -> list[str]:
    status = row["status"]
    epoch = _sec(row.get("epoch_s"))
    if row.get("epoch_extrapolated"):
        epoch += " (extrap.)"
    peak = _f(row.get("peak_mb"), ",.0f")
    step = _sec(row.get("step_s"))
    if row.get("steps_timed") == 0:
        step += " (1st)"
    if status == "skipped":
        peak = f"proj. {row['projected_peak_mb']:,.0f}"
    elif status == "killed":
        peak = f"> {max_mb:,.0f}"
    target = f" ({row['target']})" if row.get("target") else ""
    return [
        row["graph"],
        row["model"] + target,
        row["impl"],
        row["loader"],
        status,
        _f(row.get("batches_per_epoch"), ","),
        step,
        epoch,
        peak,
        _f(row.get("projected_peak_mb"), ",.0f"),
        _sec(row.get("setup_s")),
        _f(row.get("batch_nodes_mean"), ",.0f"),
        _f(row.get("batch_edges_mean"), ",.0f"),
    ]


def _target_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    a = result["targets"].get("a")
    if a is not None:
        verdict = "PASS" if a["pass"] else "FAIL"
        peaks = ", ".join(f"{k} {v:,.0f} MB" for k, v in a["sampler_peaks_mb"].items())
        text = f"(a) {a['text']}: **{verdict}** — measured peaks: {peaks or 'none'}"
        if a["not_measured"]:
            text += (
                f"; not measured: {', '.join(a['not_measured'])} (a killed row's RSS passed "
                f"--max-mb {result['setup']['max_mb']:,.0f} MB on this machine: whether it "
                "fits in 24 GB is not known)"
            )
        full = a.get("full_batch")
        if full is not None:
            if full.get("peak_mb") is not None:
                text += f"; full batch measured {full['peak_mb']:,.0f} MB"
            elif full.get("projected_peak_mb") is not None:
                fits = "fits" if full["fits"] else "does not fit"
                text += (
                    f"; full batch not run, projected {full['projected_peak_mb']:,.0f} MB "
                    f"({fits} in 24 GB)"
                )
        lines.append(text)
    b = result["targets"].get("b")
    if b is not None:
        verdict = "PASS" if b["pass"] else "FAIL"
        figure = (
            f"measured peak {b['peak_mb']:,.0f} MB over {b['steps']} training step(s) on a "
            f"{b['nodes']:,}-node graph"
            if b["peak_mb"] is not None
            else f"not measured ({b['status']})"
        )
        lines.append(f"(b) {b['text']}: **{verdict}** — {figure}")
    return lines


def to_markdown(result: dict[str, Any]) -> str:
    s = result["setup"]
    g = result["graphs"]
    lines = [
        "# Full batch against mini-batch loaders on OGB-shaped graphs (issue 16)",
        "",
        f"Command: `OMP_NUM_THREADS={s['threads']} .venv/bin/python {s['command']}`",
        "",
        f"Environment: {s['date']}; torch {s['torch']}, PyG {s['torch_geometric']}, Python "
        f"{s['python']}, {s['cpu']}; **{s['threads']} thread(s) per run, one run at a time**, "
        f"on a machine of {s['cpu_count']} cores and {_f(s['memory_total_mb'], ',.0f')} MB "
        f"that other processes shared during the run (load average "
        f"{s['load_average_start'][0]:.1f} "
        f"at the start, {s['load_average_end'][0]:.1f} at the end), so times are "
        f"indicative. Whole run: {s['wall_s'] / 60:.1f} min. `--scale {s['scale']}`, "
        f"`--steps {s['steps']}`, `--max-mb {s['max_mb']:,.0f}`.",
        "",
        *(
            [
                f"This report was rendered again from `{s['rendered_from']}` with "
                "`benchmarks/scale.py --from-json` (the same run and figures).",
                "",
            ]
            if s.get("rendered_from")
            else []
        ),
        "## Graphs (synthetic, seeded; see the script's docstring for the generator)",
        "",
        "| graph | shaped like | nodes | directed edges | features | labels | generated in |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for name, info in g.items():
        labels = (
            f"{info['classes']} binary tasks (multi-label, BCE)"
            if info["multi_label"]
            else f"{info['classes']} classes"
        )
        lines.append(
            f"| {name} | {info['title']} | {info['nodes']:,} | {_f(info.get('edges'), ',')} | "
            f"{info['features']} | {labels} | {_sec(info.get('generate_s'))} s"
            f"{' (cached)' if info.get('cached') else ''} |"
        )
    lines += [
        "",
        "## Rows",
        "",
        "Models: " + "; ".join(f"`{k}` = {v['title']}" for k, v in s["models"].items()) + ". "
        "`fathom` rows: fathom's config, node objective, loader, model and `train_epoch`; "
        "`pyg` rows: PyG's `GraphSAGE` / the DeeperGCN of PyG's ogbn-proteins example on "
        "`edge_index`, full batch.",
        "",
        "Loaders: neighbor = fan-outs "
        f"{s['fanouts']}, 1,024 seeds per batch (the same 2-hop subgraphs feed the 16-layer "
        "model); cluster = METIS parts of ~163 nodes (ogbn-products' 15,000), 32 per batch; "
        "random-partition = parts of ~13,253 nodes (the ogbn-proteins recipe's 10), one per "
        "batch, redrawn every epoch; saint = 20,000 roots, walks of 3 "
        f"(sample coverage {s['saint_coverage']}); batches per epoch as `fathom train` "
        "builds them.",
        "",
        "**step s**: mean of the timed steps (fetching the batch, forward, backward, Adam). "
        "**epoch s**: first step + step s × (batches − 1), *extrapolated* where marked, "
        "training only (no evaluation). **peak MB** (MB = 2^20 bytes): peak RSS of the row's "
        "own fresh process minus its RSS before loading the graph: graph, loader state "
        "(CSR, partitions), model, gradients, Adam state, activations and temporaries, the "
        "larger of setup and training. **setup s**: building the loader (METIS, CSR, "
        "GraphSAINT's normalisation), model and optimiser. **(1st)**: the warm-up step alone "
        "took longer than `--row-seconds`, so it is the one step measured. *proj.*: a "
        "full-batch row's peak projected linearly in nodes and edges from three small runs of "
        "the same row (each in its own process), never a measurement; rows projected over "
        "`--max-mb` were not run. The **proj. peak MB** column also shows the projection of "
        "the full-batch rows that did run, as a check of the projection. (Projected step "
        "times are in the JSON only: one small step each on a shared machine makes them too "
        "noisy to print.) **killed**: the watchdog killed the row when its RSS had grown past "
        "`--max-mb` (peak shown as > the cap: a lower bound, not a measurement of the peak). "
        "**not run**: the `--budget-min` time budget was spent before the row's turn. "
        "**(cached)** graphs were generated by an earlier, interrupted invocation of this "
        "script (the same generator code and seed), kept in `--cache-dir` and loaded from "
        "there; generating a graph is never part of a row.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * 5 + "---:|" * (len(HEADERS) - 5),
    ]
    lines += ["| " + " | ".join(_cells(r, s["max_mb"])) + " |" for r in result["rows"]]
    lines += ["", "## Targets", ""]
    lines += [f"- {line}" for line in _target_lines(result)]
    notes = [r for r in result["rows"] if r["status"] not in ("ok",)]
    if notes:
        lines += ["", "## Rows not measured", ""]
        for r in notes:
            why = _why(r, s["max_mb"])
            lines.append(f"- {r['graph']}/{r['model']}/{r['impl']}/{r['loader']}: {why}")
    return "\n".join(lines) + "\n"


def _list(choices: tuple[str, ...] | list[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if bad:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(bad)}; choose from {', '.join(choices)}"
            )
        return values

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--graphs", type=_list(MAIN_GRAPHS), default=list(MAIN_GRAPHS))
    p.add_argument("--models", type=_list(MAIN_MODELS), default=list(MAIN_MODELS))
    p.add_argument("--loaders", type=_list(LOADER_NAMES), default=list(LOADER_NAMES))
    p.add_argument(
        "--targets",
        type=_list(("a", "b")),
        default=["a", "b"],
        help="target rows to run first: a (ResGCN+ on products), b (RevGNN-1000, 1M nodes); "
        "'' for none",
    )
    p.add_argument("--no-pyg", dest="pyg", action="store_false", help="no PyG full-batch rows")
    p.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    p.add_argument(
        "--row-seconds",
        type=float,
        default=60.0,
        help="stop timing a row's steps once they took this long (after at least one; "
        "the warm-up step alone when it took longer); not for target (b)",
    )
    p.add_argument(
        "--budget-min",
        type=float,
        default=None,
        help="rows not started within this many minutes are written as not run",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-mb", type=float, default=12_000.0, help="memory cap per row (MB)")
    p.add_argument("--scale", type=float, default=1.0, help="shrink every graph by this")
    p.add_argument("--fanouts", default="15,10")
    p.add_argument("--saint-coverage", type=int, default=0, help="GraphSAINT sample_coverage")
    p.add_argument("--timeout", type=float, default=None, help="seconds per row")
    p.add_argument(
        "--probe-nodes",
        type=int,
        default=4_000,
        help="nodes of the smallest probe graph of a full-batch projection",
    )
    p.add_argument(
        "--probe-edges",
        type=int,
        default=25_000,
        help="undirected edges of the smallest probe graph of a full-batch projection",
    )
    p.add_argument("--cache-dir", help="keep generated graphs here (default: a temp dir)")
    p.add_argument(
        "--from-json",
        type=Path,
        help="do not run: write the report (--md) of an earlier run's JSON again",
    )
    p.add_argument("--json", type=Path)
    p.add_argument("--md", type=Path)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.steps < 1 or args.threads < 1 or not 0 < args.scale <= 1:
        p.error("--steps and --threads must be >= 1 and --scale in (0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.from_json is not None:
        result = json.loads(args.from_json.read_text())
        result["targets"] = targets(result["rows"])
        result["setup"]["rendered_from"] = str(args.from_json)
    else:
        result = run_benchmark(args, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(to_markdown(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
