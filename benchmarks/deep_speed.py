"""Speed guard: fathom's deep GNNs against the same models written idiomatically with PyG.

Nine workloads, each trained side by side by fathom and by plain PyTorch Geometric code (the
"twin", taken from PyG's own example scripts: the fastest path a PyG user would write). Per
workload: what is trained, which PyG code path the twin follows and where it departs from it
(and why), and what one timed epoch holds.

``gcn2``
    2-layer GCN on Cora: fathom's ``gcn-cora`` preset against the model of PyG's
    ``examples/gcn.py`` (two ``GCNConv(cached=True)``, dropout 0.5 on the input of each).
``gcnii64``
    64-layer GCNII on Cora: fathom's ``gcnii-cora`` preset against the model of PyG's
    ``examples/gcn2_cora.py`` (``Linear`` -> 64 x ``GCN2Conv(shared_weights=True)`` ->
    ``Linear``, dropout 0.6 and ReLU) on the example's own path: the graph normalised once
    (``T.GCNNorm()``) and turned into a sparse ``adj_t`` (``T.ToSparseTensor``), the convs with
    ``normalize=False``. The example's ``SparseTensor`` needs ``torch-sparse``, which is not
    installable here, so ``adj_t`` is torch's own sparse CSR layout
    (``ToSparseTensor(layout=torch.sparse_csr)``), which PyG's ``GCN2Conv`` multiplies with
    ``torch.sparse.mm``: the fastest path a PyG user has here.
``res16``
    16-layer residual GCN (linear encoder and head, hidden 64, dropout 0.5) on a seeded CSBM
    graph of ``--res16-nodes`` nodes (default 100K: ~1M directed edges; mean degree 10, 64
    features, 5 classes; 1M nodes, ~10M edges, is generated in O(N + E), ~26 s and 2.4 GiB peak
    RSS on one CPU core): fathom's ``ModelConfig(conv="gcn", depth=16, skip="res",
    encoder="linear", head="linear")`` against ``Linear`` -> 16 x (``x +
    relu(GCNConv(cached=True)(dropout(x)))``) -> ``Linear`` (no PyG example has a residual GCN
    stack: written as ``examples/gcn.py`` writes its GCN).

The three above train full batch; an epoch is one training step plus one evaluation forward
pass. The six below build fathom's side from its task API exactly as ``fathom train`` runs a
config (the task's ``plan`` -- objective, loader, data --, then ``seed_everything``,
``build_model`` with the task's head, ``.to(device)``, ``build_optimizer`` and, with
``train.lr_decay_every``, fit's ``StepLR``), the config being a shipped preset with the
overrides named (``apply_overrides``, as ``--set`` does). Their timed epoch is the epoch of
:func:`fathom.fit`: :func:`fathom.train.loop.train_epoch` over the objective's batches, the
scheduler step, then the objective's ``evaluate`` (a test checks that it reproduces the run
pipeline's losses bit for bit).

``gcnii64-pubmed``
    64-layer GCNII on PubMed. fathom: the ``gcnii-pubmed`` preset with ``model.depth=64``: the
    paper's PubMed setting (chennnM/GCNII ``semi.sh``: hidden 256, lambda 0.4, dropout 0.5,
    weight decay 5e-4 on the GCNII and the dense layers; published with 16 layers) made 64
    layers deep. The one published 64-layer GCNII setting is Cora's (hidden 64, lambda 0.5: the
    ``gcnii-cora`` preset, ``gcnii64`` above); PubMed's own setting is kept, so this is
    PubMed's model at four times its depth, not Cora's model on PubMed. Twin: as ``gcnii64``
    (``examples/gcn2_cora.py``'s model, ``train()`` and ``test()`` on the normalised CSR
    ``adj_t``) with PubMed's settings; same departure (torch CSR instead of ``SparseTensor``).
    Epoch: one training step + one evaluation forward pass.
``resplus16``
    16-layer ResGCN+ (DeeperGCN) on res16's CSBM graph. fathom: the ``deepergcn-proteins``
    preset (``conv: gen``, softmax aggregation with a learnt t, ``skip: res+``, LayerNorm,
    ReLU, dropout 0.1, linear encoder and head, ``random-partition`` loader with 10 parts,
    exact ``layerwise`` evaluation of the whole graph) with ``model.depth=16``,
    ``model.memory=plain``, the CSBM graph and ``train.monitor=auto``. Twin: the ``DeeperGCN``
    of ``examples/ogbn_proteins_deepgcn.py`` (``Linear`` node encoder, 16 x
    ``DeepGCNLayer(GENConv(aggr='softmax', t=1.0, learn_t=True, num_layers=2, norm='layer'),
    LayerNorm, ReLU(inplace=True), block='res+', dropout=0.1)``, the first layer's conv on the
    encoder's output, then its norm -> act -> dropout -> ``Linear``) and its ``train()`` over a
    shuffled ``RandomNodeLoader``. Departures, all to node classification of the CSBM graph
    with the same work on both sides: no edge encoder or edge features (CSBM has none; fathom's
    convs read none), cross-entropy on the part's training nodes instead of BCE (one label per
    node), ``RandomNodeLoader(num_parts=10)`` (the preset's 10; the example uses 40 on
    ogbn-proteins) with ``num_workers=0`` (fathom loads in-process too), no gradient
    checkpointing (the example's ``ckpt_grad=i % 3`` and the preset's ``memory: checkpoint``
    are memory options that cost time and differ; both sides keep every activation), and the
    evaluation is one forward pass over the whole graph in eval mode (the example scores 5
    random parts, which drop 4/5 of the edges: an approximation; the whole graph is what
    fathom's exact layer-wise evaluation computes). What differs between the two models (the
    preset's header lists it): fathom's encoder is followed by ReLU, its first block also
    normalises and activates its input, there is no final norm -> act before its head, and
    fathom's ``gen`` conv builds PyG's ``GENConv`` with its default MLP norm (BatchNorm) where
    the example passes ``norm='layer'``; the parameter shapes are the same. Epoch: the 10
    partitions (one step each) + the whole-graph evaluation.
``sage-sampled``
    GraphSAGE with neighbour sampling on a products-shaped CSBM graph (``--sage-nodes`` nodes,
    default 100K, mean degree 50 (~5M directed edges), 100 features, 47 classes: ogbn-products'
    degree, feature and class counts; products itself has 2.45M nodes and is not available
    here). fathom: the ``sage-products`` preset (3 ``SAGEConv`` of 256 channels, mean
    aggregation, ReLU and dropout 0.5 after the hidden layers, ``neighbor`` loader with
    fan-outs 15, 10, 5 around batches of 1,024 training nodes, Adam lr 0.003, exact
    ``layerwise`` evaluation by chunks of 4,096 nodes) with the CSBM graph. Twin: the ``SAGE``
    model and ``train()`` loop of ``examples/ogbn_products_sage.py`` (log-softmax, NLL on the
    batch's seed nodes) and the layer-wise ``inference()`` as ``examples/reddit.py`` writes it
    (``x_all[batch.n_id]`` through the layer's conv, the target rows kept; the products
    example's own copy, as read for this, passes ``batch.x`` to every layer, which cannot run
    past the first), over a ``NeighborLoader``. PyG's ``NeighborLoader`` needs pyg-lib or
    torch-sparse for its sampler, which are not installable here, so both of the twin's loaders
    are PyG's own ``NodeLoader`` (what ``NeighborLoader`` is) on the plain-torch
    ``fathom.loaders.NeighborSampler``, the sampler fathom's own loader uses: both sides draw
    the same batches and the comparison is the model and the loop. ``num_workers=0`` on both
    sides (the example uses 12). Epoch: the first ``--sage-batches`` (default 10) training
    batches of a fresh shuffled pass (fathom: its objective's loader wrapped to stop there; the
    twin: ``itertools.islice`` of its loader) + the exact layer-wise inference of every node (3
    layers, each by chunks of 4,096 target nodes with their full 1-hop in-neighbourhoods: 25
    chunks at 100K nodes) and the accuracy of each split. fathom trims each training batch
    to the rows its seeds read (:mod:`fathom.nn.trim`; the same seed outputs and random
    draws); the example's loop does not.
``sage-sampled-trim``
    ``sage-sampled`` against a twin that trims too: PyG's ``trim_to_layer`` before every
    layer of the training forward pass, as its ``BasicGNN`` does when handed the batch's
    ``num_sampled_nodes`` / ``num_sampled_edges`` (the fastest sampled training a PyG user
    can write without pyg-lib).
``res28-clouds``
    ResGCN-28 for point-cloud segmentation (dynamic dilated k-NN, k = 16, dilation 1 + i in
    backbone block i, stochastic dilation with epsilon 0.2, EdgeConv, 64 channels, BatchNorm,
    fusion and prediction blocks). fathom: the ``resgcn-28`` preset with
    ``points.num_points=4096`` (``--cloud-points``), ``points.num_scenes=2`` and
    ``train.batch_size=2`` on its synthetic scenes (2 training, 1 validation, 1 test scene):
    fathom's ``DeepGCN`` with its own exact k-NN (``fathom.nn.knn``). Twin: the same
    architecture written with PyG layers as ``examples/dgcnn_segmentation.py`` writes its model
    and loop: ``EdgeConv(Sequential(Linear(2C, C), BatchNorm1d(C), ReLU()), aggr='max')`` (the
    preset's norm-then-act order), ``MLP`` fusion and prediction blocks (BatchNorm, ReLU,
    dropout 0.3 before the last ``Linear``), ``global_max_pool``, log-softmax and NLL, Adam
    with the preset's ``StepLR`` (20, 0.5), a shuffled ``DataLoader`` of the clouds. PyG's
    ``DynamicEdgeConv`` needs torch-cluster's ``knn``, which is not installable here, so the
    twin builds each layer's graph as a PyG user without it writes it: a dense ``torch.cdist``
    of each cloud's points + ``topk`` of the ``k * d`` nearest (itself included, as DeepGCN),
    every ``d``-th kept (dilation by striding the sorted neighbours, as DeepGCN's
    ``DenseDilated``), or with probability 0.2 in training ``k`` random ranks of them
    (stochastic dilation). ``num_workers=0`` (the example uses 6). The example scores only the
    test clouds with torchmetrics' ``jaccard_index`` (not installed here); the twin's
    ``test()`` scores every split, as fathom's evaluation does, with a plain-torch per-cloud
    IoU. Epoch: one training step on the 2 training clouds (the k-NN graphs of all 28 layers
    included) + the evaluation forward pass of all 4 clouds.
``dgi``
    Deep Graph Infomax on Cora: fathom's ``dgi-cora`` preset against PyG's
    ``examples/infomax_transductive.py`` as written (``DeepGraphInfomax`` with the example's
    ``Encoder``: ``GCNConv(cached=True)`` + ``PReLU``, hidden 512, corruption by a row
    permutation, summary ``sigmoid(mean)``, Adam lr 0.001). Epoch: one training step on each
    side; fathom's DGI objective evaluates nothing per epoch, and the example's ``test()``
    (logistic regression, once after training) is, like fathom's linear probe, not part of an
    epoch. Left out on fathom's side, as for every workload: fit's early-stopping bookkeeping
    (DGI: a copy of the weights before a step whose loss is the best so far).
``gae``
    Graph autoencoder on Cora: fathom's ``gae-cora`` preset against PyG's
    ``examples/autoencoder.py`` (``GAE(GCNEncoder(in, 16))``, ``T.RandomLinkSplit(num_val=0.05,
    num_test=0.1, is_undirected=True, split_labels=True, add_negative_train_samples=False)``,
    Adam lr 0.01, ``train()``: ``recon_loss`` on the training edges and as many sampled
    negatives, ``test(test_data)``: AUC and AP with scikit-learn). Departures: the encoder's
    ``GCNConv`` s have no bias (the paper's and fathom's layers have none: same parameter
    shapes), the split is applied to the same data object as fathom's (raw features, as the
    preset; the example row-normalises them). What differs in the work itself: fathom's
    objective is the paper's weighted reconstruction of *all* N^2 node pairs (dense up to 5,000
    nodes), the example's samples one negative per training edge; fathom evaluates the train,
    validation and test pairs (AUC, AP, Hits@20, loss), the example the test pairs (AUC, AP).
    Epoch: one training step + the evaluation.
``gae-sampled``
    ``gae`` with ``link.reconstruction: sampled``: fathom scores every training edge and one
    uniformly sampled non-edge per edge, the twin's amount of decoder work (fathom's loss
    weights them into the unbiased estimate of the paper's loss, the twin's is the plain
    mean; fathom's positives include the self loops the paper reconstructs). Same twin.

Every pair has parameters of identical shapes (checked), the same Adam optimiser (learning
rate and weight decay of fathom's config; GCNII: 0.01 on the convs and 5e-4 on the dense
layers for ``gcnii64``, as the paper and PyG's example), the same data object and the same
seed, on the same device (``--device``; model moved with ``.to(device)``; full-batch data
moved once with :func:`fathom.train.loop.to_device`, as fathom's run pipeline does; the
task-API workloads move what each side's own code moves: the plan's data for fathom, as
:func:`fathom.experiments.run.train_one` does, and the data or batches the example moves for
the twin). On the first three the fathom epoch is the epoch of :func:`fathom.fit`
(:func:`fathom.train.loop.train_epoch`, the function fit calls: the objective's batches --
here the one graph -- moved by ``to_device``, ``NodeClassification.loss`` under fit's
``autocast``, backward, step; then ``NodeClassification.evaluate``; a test checks that it
reproduces fit's losses bit for bit), on PyG's side the ``train()`` + ``test()`` functions of
PyG's examples.

**Time** is measured in one process, interleaved: after the warm-up epochs of each
implementation, every round times one fathom epoch and one PyG epoch, alternating which goes
first, so drift and contention hit both alike. The figure is the median epoch time. On CUDA
every clock read is preceded by ``torch.cuda.synchronize()`` (both sides alike). Timed and
warm-up epochs default per workload (``gcn2``, ``gcnii64``, ``res16``, ``dgi``, ``gae``,
``gae-sampled``: 50
after 5; ``gcnii64-pubmed``, ``resplus16``: 5 after 1; ``sage-sampled``, ``res28-clouds``: 3
after 1; ``--tiny``: 3 after 1); ``--epochs`` / ``--warmup`` set them for all. The four big
ones take about one to two minutes per epoch and implementation on one CPU core.

**Peak memory** on the CPU is measured for each (workload, implementation) in a fresh process
forked from a ``multiprocessing`` fork server that has only imported torch, PyG and the fathom
modules this script uses (so every child starts from the same heap and no thread pool): the
child loads the data and builds the model and optimiser, resets the kernel's peak-RSS counter
(``VmHWM``, via ``/proc/self/clear_refs``), reads its RSS as the baseline, trains a few epochs,
and reports ``VmHWM - baseline``: the resident memory training adds on top of data and
parameters (activations, gradients, Adam state, adjacency caches, allocator overhead). On CUDA
it is measured in the benchmark process, per (workload, implementation): a fresh model and
optimiser on the data already on the GPU, one warm-up epoch, then
``torch.cuda.reset_peak_memory_stats()``; the figure is ``torch.cuda.max_memory_allocated()``
during training minus ``torch.cuda.memory_allocated()`` at the reset (the same "what training
adds" as on the CPU; the absolute peak is recorded as ``peak_allocated_mib``).

Ratios are fathom / PyG; the guard is that every ratio is <= 1.0 (``--check`` exits 1 when
one is not).

Usage::

    FATHOM_DATA=/path/to/datasets .venv/bin/python benchmarks/deep_speed.py \\
        --json runs/deep_speed.json --md runs/deep_speed.md
    .venv/bin/python benchmarks/deep_speed.py --tiny --json /tmp/tiny.json   # smoke run
    FATHOM_DATA=/path/to/datasets .venv/bin/python benchmarks/deep_speed.py \\
        --workloads gcnii64-pubmed,resplus16,sage-sampled,res28-clouds,dgi,gae
    FATHOM_DATA=/path/to/datasets .venv/bin/python benchmarks/deep_speed.py --device cuda \\
        --res16-nodes 1000000 --json docs/results/deep_speed_cuda.json \\
        --md docs/results/deep_speed_cuda.md                                 # on a GPU

Cora and PubMed are read like fathom reads them (``$FATHOM_DATA``); when one is missing the
script prints a one-line error and exits with 2; so does a ``--device`` this machine does not
have. ``--tiny`` (a smoke run, not a benchmark) needs no data: it replaces Cora and PubMed with
a 500-node synthetic graph, res16's and resplus16's graph with 1,000 nodes (resplus16: 4
layers, 4 parts), sage-sampled's with 1,000 nodes of mean degree 10 (hidden 32, batches of
128 seeds, 2 batches), the clouds with 128 points (ResGCN-8 of 16 channels, fusion 64), cuts
GCNII to 16 layers (PubMed's: hidden 32) and trains 3 timed epochs after 1 warm-up.
"""

from __future__ import annotations

import argparse
import copy
import gc
import itertools
import json
import multiprocessing
import os
import platform
import re
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
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
from fathom.config import ExperimentConfig, apply_overrides
from fathom.devices import resolve_device
from fathom.experiments.process_memory import reset_peak_rss, status_kib
from fathom.experiments.run import build_task_data
from fathom.models.presets import load_preset
from fathom.seeding import seed_everything
from fathom.tasks import get_task
from fathom.train.loop import autocast, model_device, to_device, train_epoch
from fathom.train.optim import build_optimizer

WORKLOADS = (
    "gcn2",
    "gcnii64",
    "res16",
    "gcnii64-pubmed",
    "resplus16",
    "sage-sampled",
    "sage-sampled-trim",
    "res28-clouds",
    "dgi",
    "gae",
    "gae-sampled",
)
IMPLS = ("fathom", "pyg")
MIB = 1 << 20
SEED = 0
SPLITS = ("train", "val", "test")

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
    "imported torch/PyG and the fathom modules this script uses, with glibc's mmap threshold "
    "fixed at 128 KiB so that RSS "
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


class PyGDeeperGCN(nn.Module):
    """The ``DeeperGCN`` of PyG's ``examples/ogbn_proteins_deepgcn.py`` for node features and
    single-label classes: ``Linear`` node encoder, ``num_layers`` x ``DeepGCNLayer`` (res+:
    norm -> act -> dropout -> ``GENConv`` with softmax aggregation and a learnt t, plus the
    layer's input), the first layer's conv applied to the encoder's output directly, then the
    first layer's norm -> act -> dropout -> ``Linear`` head. No edge encoder (no edge
    features) and no gradient checkpointing (the example's ``ckpt_grad=i % 3``)."""

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int,
        dropout: float,
    ) -> None:
        from torch_geometric.nn import DeepGCNLayer, GENConv

        super().__init__()
        self.node_encoder = nn.Linear(in_channels, hidden_channels)
        self.layers = nn.ModuleList()
        for _ in range(num_layers):
            conv = GENConv(
                hidden_channels,
                hidden_channels,
                aggr="softmax",
                t=1.0,
                learn_t=True,
                num_layers=2,
                norm="layer",
            )
            norm = nn.LayerNorm(hidden_channels, elementwise_affine=True)
            act = nn.ReLU(inplace=True)
            self.layers.append(DeepGCNLayer(conv, norm, act, block="res+", dropout=dropout))
        self.lin = nn.Linear(hidden_channels, out_channels)
        self.dropout = dropout

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = self.node_encoder(x)
        x = self.layers[0].conv(x, edge_index)
        for layer in self.layers[1:]:
            x = layer(x, edge_index)
        x = self.layers[0].act(self.layers[0].norm(x))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.lin(x)


class PyGSAGE(nn.Module):
    """GraphSAGE as in PyG's ``examples/ogbn_products_sage.py`` (``SAGEConv`` s, ReLU and
    dropout 0.5 after the hidden layers, log-softmax), with the layer-wise ``inference`` of
    ``examples/reddit.py`` (every node, one layer at a time, over a subgraph loader that
    takes every in-neighbour)."""

    def __init__(
        self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int
    ) -> None:
        from torch_geometric.nn import SAGEConv

        super().__init__()
        self.num_layers = num_layers
        self.convs = nn.ModuleList([SAGEConv(in_channels, hidden_channels)])
        for _ in range(num_layers - 2):
            self.convs.append(SAGEConv(hidden_channels, hidden_channels))
        self.convs.append(SAGEConv(hidden_channels, out_channels))

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        num_sampled_nodes_per_hop: list[int] | None = None,
        num_sampled_edges_per_hop: list[int] | None = None,
    ) -> Tensor:
        """With the per-hop counts, PyG's ``trim_to_layer`` before every layer, as its
        ``BasicGNN`` does (``examples/hetero/hierarchical_sage.py``)."""
        from torch_geometric.utils import trim_to_layer

        for i, conv in enumerate(self.convs):
            if num_sampled_nodes_per_hop is not None and num_sampled_edges_per_hop is not None:
                x, edge_index, _ = trim_to_layer(
                    i, num_sampled_nodes_per_hop, num_sampled_edges_per_hop, x, edge_index
                )
            x = conv(x, edge_index)
            if i != self.num_layers - 1:
                x = x.relu()
                x = F.dropout(x, p=0.5, training=self.training)
        return x.log_softmax(dim=-1)

    @torch.no_grad()
    def inference(
        self, x_all: Tensor, subgraph_loader: Iterable[Data], device: torch.device
    ) -> Tensor:
        """Every node's output (before the log-softmax), layer by layer."""
        for i, conv in enumerate(self.convs):
            xs = []
            for batch in subgraph_loader:
                x = x_all[batch.n_id.to(x_all.device)].to(device)
                x = conv(x, batch.edge_index.to(device))
                if i < len(self.convs) - 1:
                    x = x.relu_()
                xs.append(x[: batch.batch_size].cpu())
            x_all = torch.cat(xs, dim=0)
        return x_all


def dense_dilated_knn(
    x: Tensor,
    num_clouds: int,
    k: int,
    dilation: int = 1,
    *,
    stochastic: bool = False,
    epsilon: float = 0.0,
) -> Tensor:
    """The dilated k-NN graph of ``num_clouds`` equal-sized clouds stacked in ``x``, as a PyG
    user writes it without torch-cluster: per cloud a dense ``torch.cdist`` and the ``topk``
    of the ``k * dilation`` nearest points (the point itself first, as DeepGCN), every
    ``dilation``-th kept, or with ``stochastic`` (training only) and probability ``epsilon``
    ``k`` random ranks of them, the same for every point (DeepGCN's ``DenseDilated``).

    Shapes:
        x: ``[num_clouds * n, C]`` -> edge_index ``[2, num_clouds * n * k]`` (row 0 the
        neighbour, row 1 the point, each point's neighbours contiguous).
    """
    with torch.no_grad():
        n = x.size(0) // num_clouds
        kd = k * dilation
        h = x.view(num_clouds, n, -1)
        nearest = torch.cdist(h, h).topk(kd, dim=-1, largest=False).indices  # [B, n, k * d]
        if stochastic and dilation > 1 and float(torch.rand(())) < epsilon:
            nearest = nearest[:, :, torch.randperm(kd, device=x.device)[:k]]
        else:
            nearest = nearest[:, :, ::dilation]
        offset = (torch.arange(num_clouds, device=x.device) * n).view(-1, 1, 1)
        sources = (nearest + offset).reshape(-1)
        targets = torch.arange(num_clouds * n, device=x.device).repeat_interleave(k)
        return torch.stack([sources, targets])


def _edge_conv(in_channels: int, out_channels: int) -> nn.Module:
    """PyG's ``EdgeConv`` whose ``h_theta`` is a 1x1 conv with BatchNorm then ReLU (the
    preset's order; statistics over the edges), max-aggregated."""
    from torch_geometric.nn import EdgeConv

    return EdgeConv(
        nn.Sequential(
            nn.Linear(2 * in_channels, out_channels),
            nn.BatchNorm1d(out_channels),
            nn.ReLU(),
        ),
        aggr="max",
    )


class PyGResGCNPoints(nn.Module):
    """DeepGCN's ResGCN for point-cloud segmentation written with PyG layers, as
    ``examples/dgcnn_segmentation.py`` writes its model: an ``EdgeConv`` head on the k-NN
    graph of ``pos``; ``depth - 1`` residual ``EdgeConv`` blocks, block ``i`` (0-based) on the
    k-NN graph of its own input with dilation ``1 + i`` (:func:`dense_dilated_knn`, stochastic
    in training); a fusion ``MLP`` over every layer's output, max-pooled per cloud; a
    prediction ``MLP`` (512, 256, dropout, classes) on the pooled and per-point features;
    log-softmax."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        hidden: int,
        depth: int,
        k: int,
        stochastic: bool,
        epsilon: float,
        dropout: float,
        fusion_channels: int,
    ) -> None:
        from torch_geometric.nn import MLP

        super().__init__()
        self.k, self.stochastic, self.epsilon = k, stochastic, epsilon
        self.head = _edge_conv(in_channels, hidden)
        self.backbone = nn.ModuleList(_edge_conv(hidden, hidden) for _ in range(depth - 1))
        self.dilations = [1 + i for i in range(depth - 1)]
        fusion_dims = hidden * depth
        self.fusion = MLP([fusion_dims, fusion_channels], norm="batch_norm", plain_last=False)
        self.prediction = MLP(
            [fusion_dims + fusion_channels, 512, 256, num_classes],
            norm="batch_norm",
            dropout=[0.0, dropout, 0.0],
        )

    def forward(self, data: Data) -> Tensor:
        from torch_geometric.nn import global_max_pool

        x, pos, batch, clouds = data.x, data.pos, data.batch, data.num_graphs
        h = self.head(x, dense_dilated_knn(pos, clouds, self.k))
        features = [h]
        for dilation, block in zip(self.dilations, self.backbone, strict=True):
            graph = dense_dilated_knn(
                h,
                clouds,
                self.k,
                dilation,
                stochastic=self.stochastic and self.training,
                epsilon=self.epsilon,
            )
            h = block(h, graph) + h
            features.append(h)
        feats = torch.cat(features, dim=1)
        fused = self.fusion(feats)
        pooled = global_max_pool(fused, batch)[batch]
        out = self.prediction(torch.cat([pooled, feats], dim=1))
        return F.log_softmax(out, dim=1)


class PyGDGIEncoder(nn.Module):
    """The ``Encoder`` of PyG's ``examples/infomax_transductive.py``: ``GCNConv(cached=True)``
    then ``PReLU``."""

    def __init__(self, in_channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.conv = GCNConv(in_channels, hidden_channels, cached=True)
        self.prelu = nn.PReLU(hidden_channels)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.prelu(self.conv(x, edge_index))


def dgi_corruption(x: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
    """The example's corruption: the rows of ``x`` permuted."""
    return x[torch.randperm(x.size(0))], edge_index


def dgi_summary(z: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """The example's summary: ``sigmoid(mean of z)``."""
    return torch.sigmoid(z.mean(dim=0))


def pyg_dgi(in_channels: int, hidden_channels: int) -> nn.Module:
    """``DeepGraphInfomax`` as PyG's ``examples/infomax_transductive.py`` builds it."""
    from torch_geometric.nn import DeepGraphInfomax

    return DeepGraphInfomax(
        hidden_channels=hidden_channels,
        encoder=PyGDGIEncoder(in_channels, hidden_channels),
        summary=dgi_summary,
        corruption=dgi_corruption,
    )


class PyGGAEEncoder(nn.Module):
    """The ``GCNEncoder`` of PyG's ``examples/autoencoder.py`` (``GCNConv(in, 2 out)`` ->
    ReLU -> ``GCNConv(2 out, out)``), its convs without bias (as the paper's and fathom's)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = GCNConv(in_channels, 2 * out_channels, bias=False)
        self.conv2 = GCNConv(2 * out_channels, out_channels, bias=False)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = self.conv1(x, edge_index).relu()
        return self.conv2(x, edge_index)


# --------------------------------------------------------------------------- workloads

Epoch = Callable[[], Any]


def _edge_index(data: Data) -> Tensor:
    return data.edge_index


@dataclass(frozen=True)
class Workload:
    """One comparison: what is trained, fathom's config and its PyG twin."""

    name: str
    title: str
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    pyg_model: Callable[[ModelConfig, int, int], nn.Module] | None = None
    """The full-batch node twin's model, from fathom's model config (``None``: the twin has a
    builder of its own, :attr:`pyg_build`)."""
    pyg_param_groups: Callable[[nn.Module, TrainConfig], list[dict[str, Any]]] | None = None
    pyg_loss: Callable[[Tensor, Tensor], Tensor] | None = None
    pyg_graph: Callable[[Data], Tensor] = _edge_index
    """What the PyG twin propagates on, prepared once before training as its example does
    (``edge_index``; GCNII: the normalised CSR ``adj_t``)."""
    twin: str = ""
    """The PyG code path the twin follows, in a few words (the report's notes)."""
    epochs: int = 50
    """Timed epochs when ``--epochs`` is not given (and not ``--tiny``)."""
    warmup: int = 5
    """Warm-up epochs when ``--warmup`` is not given (and not ``--tiny``)."""
    experiment: ExperimentConfig | None = None
    """The config whose run fathom's side is, built through the task API (the task's plan,
    as ``fathom train`` runs it); ``None``: the full-batch node classification of ``gcn2``,
    ``gcnii64`` and ``res16``, built from :attr:`model` and :attr:`train` directly."""
    pyg_build: Callable[[Workload, Any, torch.device], tuple[nn.Module, Epoch]] | None = None
    """Builds the twin's model and epoch from the workload, the data (as loaded) and the
    device; ``None``: the full-batch node twin of :attr:`pyg_model`."""
    batches: int | None = None
    """Training batches per epoch, the first of a fresh pass over a sampling loader (both
    sides); ``None``: every batch."""


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


def _csbm(nodes: int, classes: int, features: int, degree: float) -> dict[str, Any]:
    """Overrides that replace a preset's dataset with a seeded CSBM graph."""
    return {
        "data.name": "csbm",
        "data.synthetic.num_nodes": nodes,
        "data.synthetic.num_classes": classes,
        "data.synthetic.feature_dim": features,
        "data.synthetic.avg_degree": degree,
    }


def _preset(name: str, overrides: dict[str, Any]) -> ExperimentConfig:
    """Preset ``name`` with ``overrides`` (validated, as ``fathom train --preset name --set
    key=value`` builds it)."""
    return apply_overrides(load_preset(name), overrides)


def _task_workload(
    name: str,
    title: str,
    cfg: ExperimentConfig,
    pyg_build: Callable[[Workload, Any, torch.device], tuple[nn.Module, Epoch]],
    twin: str,
    epochs: int,
    warmup: int,
    **extra: Any,
) -> Workload:
    return Workload(
        name,
        title,
        cfg.data,
        cfg.model,
        cfg.train,
        twin=twin,
        epochs=epochs,
        warmup=warmup,
        experiment=cfg,
        pyg_build=pyg_build,
        **extra,
    )


SAGE_NODES, SAGE_BATCHES, CLOUD_POINTS = 100_000, 10, 4096
"""Default sizes of sage-sampled's graph and epoch and of res28-clouds' clouds."""
TINY_SAGE_NODES, TINY_SAGE_BATCHES, TINY_CLOUD_POINTS = 1000, 2, 128


def make_workloads(
    tiny: bool,
    nodes: int,
    *,
    sage_nodes: int | None = None,
    sage_batches: int | None = None,
    cloud_points: int | None = None,
) -> dict[str, Workload]:
    """Every workload; ``tiny`` swaps the datasets for small synthetic graphs and shrinks
    the models. ``nodes``: res16's and resplus16's CSBM graph; ``sage_nodes`` /
    ``sage_batches``: sage-sampled's graph and training batches per epoch; ``cloud_points``:
    points per cloud of res28-clouds (``None``: the defaults, tiny or not)."""
    if sage_nodes is None:
        sage_nodes = TINY_SAGE_NODES if tiny else SAGE_NODES
    if sage_batches is None:
        sage_batches = TINY_SAGE_BATCHES if tiny else SAGE_BATCHES
    if cloud_points is None:
        cloud_points = TINY_CLOUD_POINTS if tiny else CLOUD_POINTS
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
    workloads = {
        "gcn2": Workload(
            "gcn2",
            f"GCN, 2 layers, {graph}",
            cora,
            gcn_cora.model,
            gcn_cora.train,
            _pyg_gcn,
            _single_group,
            F.cross_entropy,
            twin="examples/gcn.py (2 x GCNConv(cached=True))",
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
            twin="examples/gcn2_cora.py on its normalised adj_t (torch CSR: torch-sparse "
            "not installable)",
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
            twin="GCNConv(cached=True) residual stack, written as examples/gcn.py (no PyG "
            "example has one)",
        ),
    }

    # gcnii64-pubmed: the paper's PubMed setting at the 64 layers of its depth study
    stand_in = _csbm(500, 3, 128, 4.0)
    pubmed = _preset(
        "gcnii-pubmed",
        {"model.depth": 16, "model.hidden": 32, **stand_in} if tiny else {"model.depth": 64},
    )
    pubmed_graph = "synthetic stand-in for PubMed" if tiny else "PubMed"
    workloads["gcnii64-pubmed"] = _task_workload(
        "gcnii64-pubmed",
        f"GCNII, {pubmed.model.depth} layers, hidden {pubmed.model.hidden}, {pubmed_graph} "
        "(gcnii-pubmed preset)",
        pubmed,
        _pyg_node,
        "examples/gcn2_cora.py's model, train() and test() on its normalised adj_t (torch "
        "CSR: torch-sparse not installable), PubMed's settings",
        epochs=5,
        warmup=1,
        pyg_model=_pyg_gcnii,
        pyg_param_groups=_gcnii_groups,
        pyg_loss=F.nll_loss,
        pyg_graph=pyg_adj_t,
    )

    # resplus16: DeeperGCN's ResGCN+ on res16's graph
    resplus = _preset(
        "deepergcn-proteins",
        {
            "model.depth": 4 if tiny else 16,
            "model.memory": "plain",
            "train.monitor": "auto",
            **({"train.num_parts": 4} if tiny else {}),
            **_csbm(nodes, 5, 64, 10.0),
        },
    )
    workloads["resplus16"] = _task_workload(
        "resplus16",
        f"ResGCN+ (DeeperGCN: GENConv softmax, res+ blocks), {resplus.model.depth} layers, "
        f"CSBM {nodes:,} nodes, "
        f"{resplus.train.num_parts} random partitions + whole-graph evaluation",
        resplus,
        _pyg_partitions,
        "examples/ogbn_proteins_deepgcn.py's DeeperGCN (DeepGCNLayer res+, GENConv softmax) "
        "and train() over RandomNodeLoader; whole-graph evaluation",
        epochs=5,
        warmup=1,
    )

    # sage-sampled: GraphSAGE with neighbour sampling on a products-shaped graph
    sage_overrides = (
        {"model.hidden": 32, "train.batch_size": 128, **_csbm(sage_nodes, 5, 32, 10.0)}
        if tiny
        else _csbm(sage_nodes, 47, 100, 50.0)
    )
    sage = _preset("sage-products", sage_overrides)
    syn = sage.data.synthetic
    workloads["sage-sampled"] = _task_workload(
        "sage-sampled",
        f"GraphSAGE, 3 layers, hidden {sage.model.hidden}, sampling {sage.train.fanouts} around "
        f"{sage.train.batch_size} seeds, CSBM {syn.num_nodes:,} nodes (mean degree "
        f"{syn.avg_degree:g}, {syn.feature_dim} features, {syn.num_classes} classes); "
        f"{sage_batches} batches + layer-wise inference",
        sage,
        _pyg_sampled,
        "examples/ogbn_products_sage.py's model and train(), examples/reddit.py's layer-wise "
        "inference(); PyG's NodeLoader on fathom's plain-torch NeighborSampler (pyg-lib / "
        "torch-sparse not installable)",
        epochs=3,
        warmup=1,
        batches=sage_batches,
    )
    # the same, against the twin that trims its batches as PyG's BasicGNN can
    workloads["sage-sampled-trim"] = replace(
        workloads["sage-sampled"],
        name="sage-sampled-trim",
        twin=workloads["sage-sampled"].twin + "; trim_to_layer before every layer of training",
        pyg_build=_pyg_sampled_trim,
    )

    # res28-clouds: DeepGCN's ResGCN-28 on point clouds, k-NN included
    cloud_overrides: dict[str, Any] = {
        "points.num_points": cloud_points,
        "points.num_scenes": 2,
        "train.batch_size": 2,
    }
    if tiny:
        cloud_overrides.update({"model.depth": 8, "model.hidden": 16, "points.fusion_channels": 64})
    clouds = _preset("resgcn-28", cloud_overrides)
    workloads["res28-clouds"] = _task_workload(
        "res28-clouds",
        f"ResGCN-{clouds.model.depth} (dynamic dilated k-NN, k {clouds.points.k}, EdgeConv), "
        f"2 training + 2 held-out synthetic scenes of {cloud_points:,} points, batch 2",
        clouds,
        _pyg_clouds,
        "PyG EdgeConv in DeepGCN's ResGCN layout, examples/dgcnn_segmentation.py's loop; "
        "k-NN by torch.cdist + topk (torch-cluster not installable)",
        epochs=3,
        warmup=1,
    )

    # dgi and gae on Cora
    cora_stand_in = _csbm(500, 7, 128, 4.0) if tiny else {}
    dgi = _preset("dgi-cora", cora_stand_in)
    workloads["dgi"] = _task_workload(
        "dgi",
        f"DGI, 1-layer GCN encoder, hidden {dgi.model.hidden}, {graph} (dgi-cora preset)",
        dgi,
        _pyg_dgi,
        "examples/infomax_transductive.py (DeepGraphInfomax, GCNConv(cached=True) + PReLU)",
        epochs=50,
        warmup=5,
    )
    gae = _preset("gae-cora", cora_stand_in)
    workloads["gae"] = _task_workload(
        "gae",
        f"GAE, 2-layer GCN encoder ({gae.model.hidden}-{gae.link.embedding_dim}), {graph} "
        "(gae-cora preset)",
        gae,
        _pyg_gae,
        "examples/autoencoder.py (GAE, GCNEncoder without bias, RandomLinkSplit, "
        "recon_loss + test())",
        epochs=50,
        warmup=5,
    )
    gae_sampled = apply_overrides(gae, {"link.reconstruction": "sampled"})
    workloads["gae-sampled"] = _task_workload(
        "gae-sampled",
        f"GAE as gae, with link.reconstruction: sampled (one sampled non-edge per training "
        f"edge, as the twin), {graph}",
        gae_sampled,
        _pyg_gae,
        "examples/autoencoder.py (GAE, GCNEncoder without bias, RandomLinkSplit, "
        "recon_loss + test())",
        epochs=50,
        warmup=5,
    )
    return workloads


def load_data(workload: Workload) -> Any:
    """What ``workload`` trains on, built with the seed: the graph, or for a task-API
    workload what its task loads (``build_task_data``: a graph, or point clouds)."""
    if workload.experiment is not None:
        return build_task_data(workload.experiment)
    return build_dataset(workload.data, seed=SEED)


def _data_key(workload: Workload) -> Any:
    """Workloads with equal keys train on the same data object (loaded once). The node,
    link and autoencoder tasks load ``build_dataset(cfg.data, seed)``, as the first three
    workloads do."""
    cfg = workload.experiment
    if cfg is None or cfg.task in ("node", "link", "autoencoder"):
        return workload.data
    return (cfg.task, cfg.data, cfg.points)


def _shapes(model: nn.Module) -> list[tuple[int, ...]]:
    return sorted(tuple(p.shape) for p in model.parameters())


def _data_device(data: Any) -> torch.device:
    """Where ``data``'s node features are (the CPU for data without any, e.g. clouds)."""
    x = getattr(data, "x", None)
    return x.device if isinstance(x, Tensor) else torch.device("cpu")


class FirstBatches:
    """The first ``count`` batches of every pass over ``loader``, each pass a fresh one (a
    shortened epoch of a sampling loader; the rest of the pass is never drawn)."""

    def __init__(self, loader: Iterable[Any], count: int) -> None:
        self.loader, self.count = loader, count

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(self.loader, self.count)


def build_impl(
    workload: Workload, impl: str, data: Any, device: torch.device | None = None
) -> tuple[nn.Module, Epoch]:
    """The model of ``impl`` on ``device`` (default: ``data``'s) and a closure running one
    epoch (training + evaluation) on ``data``. For ``gcn2`` / ``gcnii64`` / ``res16`` the
    caller has put ``data`` on that device; for the task-API workloads ``data`` is as loaded
    and each side moves what its own code moves."""
    device = _data_device(data) if device is None else device
    if impl == "fathom":
        if workload.experiment is not None:
            return _fathom_task(workload, data, device)
        torch.manual_seed(SEED)
        return _fathom_node(workload, data, device)
    if workload.experiment is not None:
        seed_everything(SEED)  # as the run pipeline seeds fathom's side
    else:
        torch.manual_seed(SEED)
    return (workload.pyg_build or _pyg_node)(workload, data, device)


def _fathom_node(workload: Workload, data: Data, device: torch.device) -> tuple[nn.Module, Epoch]:
    """fathom's full-batch node classification of ``workload.model`` / ``workload.train``."""
    in_channels, out_channels = data.num_features, int(data.y.max()) + 1
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


def _fathom_task(workload: Workload, data: Any, device: torch.device) -> tuple[nn.Module, Epoch]:
    """fathom's side of a task-API workload, as :func:`fathom.experiments.run.train_one`
    builds a fit: the task's plan (objective, loader, data), ``seed_everything``,
    ``build_model`` with the task's head, ``.to(device)``, the plan's data moved by
    ``to_device``; then what :func:`fathom.fit` builds: the optimiser and, with
    ``train.lr_decay_every``, its ``StepLR``. With :attr:`Workload.batches` the objective's
    loader stops after that many batches per epoch."""
    cfg = workload.experiment
    assert cfg is not None
    plan = next(iter(get_task(cfg.task).plan(cfg, data)))
    objective: Any = plan.objective
    if workload.batches is not None:
        objective.loader = FirstBatches(objective.loader, workload.batches)
    seed_everything(plan.seed)
    model = build_model(cfg.model, plan.in_channels, plan.out_channels, head=plan.head)
    model = model.to(device)
    fit_data = to_device(plan.data, device)
    t = cfg.train
    optimizer = build_optimizer(model, t)
    scheduler = (
        torch.optim.lr_scheduler.StepLR(optimizer, t.lr_decay_every, gamma=t.lr_decay)
        if t.lr_decay_every and getattr(objective, "lr_schedule", None) is None
        else None
    )
    fit_device = model_device(model)

    def fathom_epoch() -> tuple[float, dict[str, float]]:
        # one epoch of fathom.fit: train_epoch, the scheduler step, the evaluation under
        # fit's autocast (left out: early-stopping bookkeeping, as for every workload)
        model.train()
        loss = train_epoch(
            model, objective, fit_data, optimizer, accumulate=t.accumulate, precision=t.precision
        )
        if scheduler is not None:
            scheduler.step()
        with autocast(fit_device, t.precision):
            metrics = objective.evaluate(model, fit_data)
        return loss, metrics

    return model, fathom_epoch


def _accuracies(pred: Tensor, data: Data) -> list[float]:
    """Accuracy of ``pred`` on the train / val / test nodes, as PyG's examples' ``test()``."""
    pred = pred.to(data.y.device)
    return [
        int((pred[mask] == data.y[mask]).sum()) / int(mask.sum())
        for mask in (data.train_mask, data.val_mask, data.test_mask)
    ]


def _pyg_node(workload: Workload, data: Data, device: torch.device) -> tuple[nn.Module, Epoch]:
    """The full-batch node twin: ``workload.pyg_model`` with the ``train()`` and ``test()``
    of PyG's examples (``gcn2``, ``gcnii64``, ``res16``, ``gcnii64-pubmed``)."""
    assert workload.pyg_model is not None and workload.pyg_param_groups is not None
    assert workload.pyg_loss is not None
    data = to_device(data, device)  # the examples' data.to(device); itself when already there
    in_channels, out_channels = data.num_features, int(data.y.max()) + 1
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
        return _accuracies(model(data.x, graph).argmax(dim=-1), data)

    def pyg_epoch() -> tuple[float, list[float]]:
        return train(), test()

    return model, pyg_epoch


def _pyg_partitions(
    workload: Workload, data: Data, device: torch.device
) -> tuple[nn.Module, Epoch]:
    """resplus16's twin: ``examples/ogbn_proteins_deepgcn.py``'s model and ``train()`` over
    a ``RandomNodeLoader`` (the loader on the data as loaded, each part moved, as the
    example), and ``test()`` as one eval-mode pass over the whole graph."""
    from torch_geometric.loader import RandomNodeLoader

    cfg = workload.experiment
    assert cfg is not None
    m, t = cfg.model, cfg.train
    assert (m.conv, m.aggr, m.skip, m.norm, m.act) == ("gen", "softmax", "res+", "layer", "relu")
    out_channels = int(data.y.max()) + 1
    model = PyGDeeperGCN(data.num_features, m.hidden, out_channels, m.depth, m.dropout)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    train_loader = RandomNodeLoader(data, num_parts=t.num_parts, shuffle=True)
    full = to_device(data, device)

    def train() -> float:
        model.train()
        total_loss = total_examples = 0.0
        for batch in train_loader:
            optimizer.zero_grad()
            batch = batch.to(device)
            out = model(batch.x, batch.edge_index)
            loss = F.cross_entropy(out[batch.train_mask], batch.y[batch.train_mask])
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * int(batch.train_mask.sum())
            total_examples += int(batch.train_mask.sum())
        return total_loss / max(total_examples, 1.0)

    @torch.no_grad()
    def test() -> list[float]:
        model.eval()
        return _accuracies(model(full.x, full.edge_index).argmax(dim=-1), full)

    def pyg_epoch() -> tuple[float, list[float]]:
        return train(), test()

    return model, pyg_epoch


def _pyg_sampled_trim(
    workload: Workload, data: Data, device: torch.device
) -> tuple[nn.Module, Epoch]:
    """sage-sampled-trim's twin: :func:`_pyg_sampled` with PyG's ``trim_to_layer`` in the
    training forward pass."""
    return _pyg_sampled(workload, data, device, trim=True)


def _pyg_sampled(
    workload: Workload, data: Data, device: torch.device, trim: bool = False
) -> tuple[nn.Module, Epoch]:
    """sage-sampled's twin: ``examples/ogbn_products_sage.py``'s ``SAGE`` and ``train()``
    (the first :attr:`Workload.batches` batches of a shuffled pass), ``examples/reddit.py``'s
    subgraph loader and layer-wise ``inference()``; both loaders are PyG's ``NodeLoader`` on
    fathom's plain-torch ``NeighborSampler`` (what ``NeighborLoader`` is, with a sampler that
    needs no pyg-lib / torch-sparse). ``trim``: each training batch trimmed layer by layer
    (PyG's ``trim_to_layer``, what its ``BasicGNN`` does with the batch's per-hop counts)."""
    from torch_geometric.loader import NodeLoader

    from fathom.loaders import NeighborSampler
    from fathom.loaders.build import parse_fanouts

    cfg = workload.experiment
    assert cfg is not None and workload.batches is not None
    m, t = cfg.model, cfg.train
    assert (m.conv, m.aggr, m.norm, m.act, m.head) == ("sage", "mean", "none", "relu", "conv")
    num_batches = workload.batches
    data = to_device(data, device)  # the example: data = dataset[0].to(device)
    model = PyGSAGE(data.num_features, m.hidden, int(data.y.max()) + 1, m.depth).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    train_idx = data.train_mask.nonzero().view(-1)
    train_loader = NodeLoader(
        data,
        node_sampler=NeighborSampler(data, parse_fanouts(t.fanouts), seed=SEED),
        input_nodes=train_idx,
        batch_size=t.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(SEED),
    )
    # examples/reddit.py: every in-neighbour, the target nodes' features looked up by n_id
    subgraph_loader = NodeLoader(
        copy.copy(data),
        node_sampler=NeighborSampler(data, [-1], seed=SEED),
        input_nodes=None,
        batch_size=t.eval_chunk,
        shuffle=False,
    )
    del subgraph_loader.data.x, subgraph_loader.data.y  # not needed by inference()
    subgraph_loader.data.num_nodes = data.num_nodes
    subgraph_loader.data.n_id = torch.arange(data.num_nodes, device=data.edge_index.device)

    def train() -> tuple[float, float]:
        model.train()
        total_loss = total_correct = total_seeds = 0
        for batch in itertools.islice(train_loader, num_batches):
            optimizer.zero_grad()
            hops = (batch.num_sampled_nodes, batch.num_sampled_edges) if trim else (None, None)
            out = model(batch.x, batch.edge_index, *hops)[: batch.batch_size]
            y = batch.y[: batch.batch_size]
            loss = F.nll_loss(out, y)
            loss.backward()
            optimizer.step()
            total_loss += loss.item()
            total_correct += int(out.argmax(dim=-1).eq(y).sum())
            total_seeds += batch.batch_size
        return total_loss / num_batches, total_correct / max(total_seeds, 1)

    @torch.no_grad()
    def test() -> list[float]:
        model.eval()
        out = model.inference(data.x, subgraph_loader, device)
        return _accuracies(out.argmax(dim=-1), data)

    def pyg_epoch() -> tuple[tuple[float, float], list[float]]:
        return train(), test()

    return model, pyg_epoch


def _cloud_iou(pred: Tensor, target: Tensor, num_classes: int) -> float:
    """Mean IoU of one cloud over the classes present in its prediction or truth (the
    example's per-cloud ``jaccard_index``, in plain torch: torchmetrics is not installed)."""
    matrix = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    matrix = matrix.view(num_classes, num_classes)
    hits = matrix.diag()
    union = matrix.sum(0) + matrix.sum(1) - hits
    present = union > 0
    return float((hits[present].double() / union[present].double()).mean())


def _pyg_clouds(workload: Workload, data: Any, device: torch.device) -> tuple[nn.Module, Epoch]:
    """res28-clouds' twin: :class:`PyGResGCNPoints` with ``examples/dgcnn_segmentation.py``'s
    ``train()`` (shuffled ``DataLoader`` of the training clouds, each batch moved, NLL of the
    log-softmax) and ``test(loader)`` (per-cloud IoU) on every split, Adam with the preset's
    ``StepLR``."""
    from torch_geometric.loader import DataLoader

    cfg = workload.experiment
    assert cfg is not None
    m, p, t = cfg.model, cfg.points, cfg.train
    assert (m.conv, m.skip, m.norm, m.act) == ("edge", "res", "batch", "relu")
    assert (p.dilation, p.order) == ("linear", "norm-act")
    model = PyGResGCNPoints(
        data.in_channels,
        data.num_classes,
        hidden=m.hidden,
        depth=m.depth,
        k=p.k,
        stochastic=p.stochastic,
        epsilon=p.epsilon,
        dropout=m.dropout,
        fusion_channels=p.fusion_channels,
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=t.lr_decay_every, gamma=t.lr_decay
    )
    train_loader = DataLoader(
        data.train,
        batch_size=t.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(SEED),
    )
    loaders = {split: DataLoader(getattr(data, split), batch_size=t.batch_size) for split in SPLITS}
    num_classes = data.num_classes

    def train() -> float:
        model.train()
        total_loss, steps = 0.0, 0
        for batch in train_loader:
            batch = batch.to(device)
            optimizer.zero_grad()
            out = model(batch)
            loss = F.nll_loss(out, batch.y)
            loss.backward()
            optimizer.step()
            total_loss += loss.item()
            steps += 1
        return total_loss / max(steps, 1)

    @torch.no_grad()
    def test(loader: DataLoader) -> float:
        model.eval()
        iou = 0.0
        for batch in loader:
            batch = batch.to(device)
            out = model(batch).argmax(dim=1)
            sizes = (batch.ptr[1:] - batch.ptr[:-1]).tolist()
            for pred, y in zip(out.split(sizes), batch.y.split(sizes), strict=True):
                iou += _cloud_iou(pred, y, num_classes)
        return iou / len(loader.dataset)

    def pyg_epoch() -> tuple[float, list[float]]:
        loss = train()
        scheduler.step()
        return loss, [test(loader) for loader in loaders.values()]

    return model, pyg_epoch


def _pyg_dgi(workload: Workload, data: Data, device: torch.device) -> tuple[nn.Module, Epoch]:
    """dgi's twin: ``examples/infomax_transductive.py``'s model, optimiser and ``train()``."""
    cfg = workload.experiment
    assert cfg is not None
    data = to_device(data, device)  # the example: data = dataset[0].to(device)
    model = pyg_dgi(data.num_features, cfg.model.hidden).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay
    )

    def train() -> float:
        model.train()
        optimizer.zero_grad()
        pos_z, neg_z, summary = model(data.x, data.edge_index)
        loss = model.loss(pos_z, neg_z, summary)
        loss.backward()
        optimizer.step()
        return loss.item()

    def pyg_epoch() -> tuple[float, dict[str, float]]:
        return train(), {}

    return model, pyg_epoch


def _pyg_gae(workload: Workload, data: Data, device: torch.device) -> tuple[nn.Module, Epoch]:
    """gae's twin: ``examples/autoencoder.py``'s ``RandomLinkSplit``, ``GAE(GCNEncoder)``,
    ``train()`` and ``test(test_data)``."""
    import torch_geometric.transforms as T
    from torch_geometric.nn import GAE

    cfg = workload.experiment
    assert cfg is not None
    lk = cfg.link
    assert cfg.model.hidden == 2 * lk.embedding_dim and lk.decoder == "dot"
    split = T.RandomLinkSplit(
        num_val=lk.val_fraction,
        num_test=lk.test_fraction,
        is_undirected=True,
        split_labels=True,
        add_negative_train_samples=False,
    )
    train_data, _, test_data = split(to_device(data, device))
    model = GAE(PyGGAEEncoder(data.num_features, lk.embedding_dim)).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay
    )

    def train() -> float:
        model.train()
        optimizer.zero_grad()
        z = model.encode(train_data.x, train_data.edge_index)
        loss = model.recon_loss(z, train_data.pos_edge_label_index)
        loss.backward()
        optimizer.step()
        return loss.item()

    @torch.no_grad()
    def test(split_data: Data) -> tuple[float, float]:
        model.eval()
        z = model.encode(split_data.x, split_data.edge_index)
        return model.test(z, split_data.pos_edge_label_index, split_data.neg_edge_label_index)

    def pyg_epoch() -> tuple[float, tuple[float, float]]:
        return train(), test(test_data)

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
    data: Any,
    epochs: int,
    warmup: int,
    device: torch.device | None = None,
) -> tuple[dict[str, list[float]], int]:
    """Epoch times (seconds) of both implementations, interleaved; and the parameter count."""
    device = _data_device(data) if device is None else device
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
    workloads = make_workloads(spec["tiny"], spec["res16_nodes"], **spec.get("sizes", {}))
    workload = workloads[spec["workload"]]
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
    workload: Workload, impl: str, data: Any, device: torch.device, epochs: int
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
FATHOM_MODULES = ("fathom.experiments.run", "fathom.tasks", "fathom.models.presets")


def _fork_server() -> Any:
    # the fork server (and so every measuring process) inherits the environment at its start
    for key, value in MALLOC_ENV.items():
        os.environ.setdefault(key, value)
    ctx = multiprocessing.get_context("forkserver")
    # fathom's modules this script imports: loaded once here, not again in every child (the
    # baseline is read after imports, data and model, so they are not in the figure)
    ctx.set_forkserver_preload(["torch", "torch_geometric", "fathom", *FATHOM_MODULES])
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


def _epochs_text(result: dict[str, Any]) -> str:
    """``N timed epochs after W warm-up`` when every row has the same, else per workload."""
    pairs = [(row["epochs"], row["warmup"]) for row in result["rows"]]
    if pairs and all(pair == pairs[0] for pair in pairs):
        return f"{pairs[0][0]} timed epochs after {pairs[0][1]} warm-up"
    return "timed / warm-up epochs per workload: " + ", ".join(
        f"{row['workload']} {row['epochs']}/{row['warmup']}" for row in result["rows"]
    )


def _note(row: dict[str, Any]) -> str:
    """A row's title, size and twin, as the notes under the table give them."""
    return (
        f"{row['title']}; {row['num_params']:,} parameters; PyG twin: {row['twin']}"
        if row.get("twin")
        else f"{row['title']}; {row['num_params']:,} parameters"
    )


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
        title=f"deep_speed: fathom / PyG ({'TINY, ' if s['tiny'] else ''}{_epochs_text(result)}"
        f", device: {s['device']}, threads: {s['threads']})"
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
        console.print(f"  {row['workload']}: {_note(row)}")
    console.print(f"  on: {_where(result['environment'])}")
    console.print(f"  time: {s['timing']}")
    console.print(f"  memory: {s['memory']}")


def to_markdown(result: dict[str, Any]) -> str:
    s, env = result["settings"], result["environment"]
    lines = [
        "# deep_speed: fathom vs idiomatic PyG",
        "",
        f"{'**Tiny smoke run: not a benchmark result.** ' if s['tiny'] else ''}"
        f"{_epochs_text(result)}, "
        f"device: {s['device']}, threads: {s['threads']}; torch {env['torch']}, "
        f"PyG {env['torch_geometric']}, fathom {env['fathom']}, Python {env['python']} "
        f"on {_where(env)} (load average at start {env['load_average'][0]:.2f}).",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join(["---"] + ["---:"] * 6 + ["---"]) + "|",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in _table_rows(result)]
    lines += [""]
    lines += [f"- `{r['workload']}`: {_note(r)}" for r in result["rows"]]
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
        "--epochs",
        type=_positive,
        help="timed epochs per implementation, every workload (default: per workload, 50 "
        "for gcn2, gcnii64, res16, dgi, gae, gae-sampled; 5 for gcnii64-pubmed, resplus16; 3 for "
        "sage-sampled, res28-clouds; tiny 3)",
    )
    parser.add_argument(
        "--warmup",
        type=_non_negative,
        help="untimed epochs first, every workload (default: per workload, 5 / 1 / 1 as "
        "above; tiny 1)",
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
        help="nodes of res16's (and resplus16's) CSBM graph, mean degree 10 (default 100000; "
        "tiny 1000); the issue's figure: 1000000",
    )
    parser.add_argument(
        "--sage-nodes",
        type=_positive,
        metavar="N",
        help=f"nodes of sage-sampled's products-shaped CSBM graph, mean degree 50 (default "
        f"{SAGE_NODES}; tiny {TINY_SAGE_NODES}, mean degree 10)",
    )
    parser.add_argument(
        "--sage-batches",
        type=_positive,
        metavar="K",
        help=f"training batches in a sage-sampled epoch (default {SAGE_BATCHES}; tiny "
        f"{TINY_SAGE_BATCHES})",
    )
    parser.add_argument(
        "--cloud-points",
        type=_positive,
        metavar="P",
        help=f"points per cloud of res28-clouds (default {CLOUD_POINTS}; tiny "
        f"{TINY_CLOUD_POINTS}); k * 27 = 432 must not exceed it (tiny: k * 7 = 112)",
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
    if args.res16_nodes is None:
        args.res16_nodes = 1000 if args.tiny else 100_000
    if args.sage_nodes is None:
        args.sage_nodes = TINY_SAGE_NODES if args.tiny else SAGE_NODES
    if args.sage_batches is None:
        args.sage_batches = TINY_SAGE_BATCHES if args.tiny else SAGE_BATCHES
    if args.cloud_points is None:
        args.cloud_points = TINY_CLOUD_POINTS if args.tiny else CLOUD_POINTS
    if args.threads is None:
        args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return args


def _epochs(args: argparse.Namespace, workload: Workload) -> tuple[int, int]:
    """``(timed, warm-up)`` epochs of ``workload``: the flags, else tiny's 3 / 1, else the
    workload's defaults."""
    epochs = args.epochs if args.epochs is not None else 3 if args.tiny else workload.epochs
    warmup = args.warmup if args.warmup is not None else 1 if args.tiny else workload.warmup
    return epochs, warmup


def _sizes(args: argparse.Namespace) -> dict[str, int]:
    """The size options of :func:`make_workloads` given on the command line."""
    return {
        "sage_nodes": args.sage_nodes,
        "sage_batches": args.sage_batches,
        "cloud_points": args.cloud_points,
    }


def _summary(times: list[float], memory: dict[str, Any]) -> dict[str, Any]:
    ms = [t * 1000 for t in times]
    return {
        "ms_per_epoch": statistics.median(ms),
        "ms_min": min(ms),
        "ms_mean": statistics.fmean(ms),
        "epoch_ms": ms,
        **memory,
    }


def _describe(workload: Workload, data: Any) -> dict[str, Any]:
    """The data a row was measured on: the graph's size, or the task's description."""
    if workload.experiment is not None:
        return {"dataset": workload.data.name, **get_task(workload.experiment.task).describe(data)}
    return {
        "name": workload.data.name,
        "num_nodes": data.num_nodes,
        "num_edges": data.num_edges,
        "num_features": data.num_features,
        "num_classes": int(data.y.max()) + 1,
    }


_START = time.perf_counter()


def _progress(message: str) -> None:
    print(f"[{time.perf_counter() - _START:6.1f}s] {message} ...", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, device: torch.device | None = None) -> dict[str, Any]:
    device = torch.device("cpu") if device is None else device
    workloads = make_workloads(args.tiny, args.res16_nodes, **_sizes(args))
    env = _environment(args.threads, device)
    loaded: dict[Any, Any] = {}
    for name in args.workloads:
        key = _data_key(workloads[name])
        if key not in loaded:
            _progress(f"loading data for {name}")
            try:
                loaded[key] = load_data(workloads[name])
            except FathomError as exc:
                what = workloads[name].data.name
                raise type(exc)(f"workload {name} needs data {what!r}: {exc}") from None

    cuda = device.type == "cuda"
    ctx = None if cuda else _fork_server()
    moved: dict[Any, Any] = {}
    rows = []
    for name in args.workloads:
        workload = workloads[name]
        key = _data_key(workload)
        if workload.experiment is None:
            # moved once; both implementations train on this one object
            if key not in moved:
                moved[key] = to_device(loaded[key], device)
            data = moved[key]
        else:
            data = loaded[key]  # each side moves what its own code moves
        epochs, warmup = _epochs(args, workload)
        _progress(f"{name}: timing ({epochs} epochs after {warmup} warm-up)")
        times, num_params = time_workload(workload, data, epochs, warmup, device)
        # the timing is the result people wait for: shown before the memory runs begin
        medians = {impl: statistics.median(times[impl]) * 1000 for impl in IMPLS}
        _progress(
            f"{name}: "
            + ", ".join(f"{impl} {ms:.1f}" for impl, ms in medians.items())
            + f" ms/epoch (median), time ratio {medians[IMPLS[0]] / medians[IMPLS[1]]:.3f}"
        )
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
                "sizes": _sizes(args),
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
                "twin": workload.twin,
                "epochs": epochs,
                "warmup": warmup,
                "graph": _describe(workload, data),
                "model": {
                    "arch": workload.model.arch,
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
            **_sizes(args),
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
