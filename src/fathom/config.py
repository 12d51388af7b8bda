"""Typed, frozen experiment configs.

One :class:`ExperimentConfig` (``data + model + train + task + seed``) describes a run. It is
built from defaults, then a YAML file (read with :mod:`fathom.yamlio`'s bounded safe loader),
then command-line overrides (``model.depth=16``); unknown keys, wrong types and invalid values
raise a :class:`~fathom.errors.ConfigError` naming the key (and the flag the user typed, where
one exists). Configs are turned into objects only at builder boundaries (``build_dataset``,
``build_model``, ``build_optimizer``); layers below never see them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from fathom.errors import ConfigError
from fathom.yamlio import YamlSyntaxError, load_file, loads
from fathom.yamlio import short as _short

__all__ = [
    "EVAL_MODES",
    "PRECISIONS",
    "DataConfig",
    "ExperimentConfig",
    "ModelConfig",
    "SyntheticConfig",
    "TrainConfig",
    "apply_overrides",
    "check_given",
    "config_from_dict",
    "config_hash",
    "config_to_dict",
    "flag",
    "flatten",
    "load_config",
    "parse_override",
    "register_check",
    "register_given_check",
    "register_section",
    "require",
    "section_types",
    "with_seed",
]

C = TypeVar("C")

# PyYAML (YAML 1.1) reads exponent literals without a dot ("1e-3", "5e-4") as strings.
_EXP_FLOAT = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+")

# The config keys exposed as flags of the CLI, each listed once: ``fathom train`` (and
# ``diagnose``) build their flags from this table, with the type of the config field, its
# docstring as help and the names of its registry as choices; validation errors name the flag.
FLAG_FOR_KEY: dict[str, str] = {
    "data.name": "--dataset",
    "data.data_dir": "--data-dir",
    "data.rewire": "--rewire",
    "data.rewire_iterations": "--rewire-iterations",
    "model.conv": "--conv",
    "model.depth": "--depth",
    "model.hidden": "--hidden",
    "model.skip": "--skip",
    "model.skip_project": "--skip-project",
    "model.skip_every": "--skip-every",
    "model.root_weight": "--root-weight",
    "model.adj_norm": "--adj-norm",
    "model.init": "--init",
    "model.norm": "--norm",
    "model.dropout": "--dropout",
    "model.act": "--act",
    "model.arch": "--arch",
    "model.aggr": "--aggr",
    "model.alpha": "--alpha",
    "model.theta": "--theta",
    "model.drop_edge": "--drop-edge",
    "model.drop_node": "--drop-node",
    "model.jk": "--jk",
    "train.label_smoothing": "--label-smoothing",
    "train.diagnose_every": "--diagnose-every",
    "train.epochs": "--epochs",
    "train.lr": "--lr",
    "train.weight_decay": "--weight-decay",
    "train.patience": "--patience",
    "seed": "--seed",
    "seeds": "--seeds",
    "task": "--task",
    "data.inductive": "--inductive",
    "train.monitor": "--monitor",
    "train.batch_size": "--batch-size",
    "train.loader": "--loader",
    "train.fanouts": "--fanouts",
    "train.num_parts": "--num-parts",
    "graph.folds": "--folds",
    "graph.readout": "--readout",
    "graph.pool": "--pool",
    "link.decoder": "--decoder",
    "link.corrupt_edges": "--corrupt-edges",
    "link.corrupt_features": "--corrupt-features",
    "model.memory": "--memory",
    "points.k": "--k",
    "device": "--device",
    "train.precision": "--precision",
    "train.eval_mode": "--eval-mode",
    "train.eval_chunk": "--eval-chunk",
    "train.eval_fanouts": "--eval-fanouts",
}


PRECISIONS = ("32", "bf16")
"""Training precision (``train.precision``): float32, or bfloat16 autocast on CUDA."""

EVAL_MODES = ("full", "layerwise", "sampled")
"""How node classification computes its evaluation outputs (``train.eval_mode``): one
forward pass, layer by layer in chunks, or on sampled subgraphs (``fathom.train.inference``)."""

_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
_FANOUTS = re.compile(r"-?\d+(,-?\d+)*")

# Task sections (``graph``, ``link``, ``points`` …) and the checks that need registries are
# registered by the modules that own them (``fathom.tasks``, ``fathom.models.build``), so this
# module imports nothing of fathom's above it.
_SECTIONS: dict[str, tuple[type, Callable[[Any], None] | None]] = {}
_CHECKS: list[Callable[[ExperimentConfig], None]] = []
_GIVEN_CHECKS: list[Callable[[ExperimentConfig, frozenset[str]], None]] = []

# Fields added after runs were first stored: left out of a run's key while at their default,
# so the keys of stored runs stay valid (a new option must not re-run or duplicate them).
_UNKEYED_AT_DEFAULT: dict[tuple[str, ...], Any] = {
    ("device",): None,  # never keyed: where a run executes is recorded, not part of what it is
    ("train", "precision"): "32",
    ("train", "accumulate"): 1,
    ("model", "post_norm"): False,
    ("model", "skip_project"): False,
    ("model", "root_weight"): False,
    ("model", "adj_norm"): "sym",
    ("model", "skip_every"): 1,
    ("model", "head_norm"): False,
    ("model", "init"): "default",
    ("train", "loader"): "full",
    ("train", "fanouts"): "10,5",
    ("train", "num_parts"): 16,
    ("train", "parts_per_batch"): 1,
    ("train", "walk_length"): 2,
    ("train", "sample_coverage"): 50,
    ("train", "num_workers"): 0,
    ("train", "eval_mode"): "full",
    ("train", "eval_chunk"): 4096,
    ("train", "eval_fanouts"): "-1",
    ("data", "reverse_edges"): False,
}


def register_section(
    name: str,
    cls: type,
    check: Callable[[Any], None] | None = None,
    *,
    keyed_at_default: bool = False,
    unkeyed_at_default: tuple[str, ...] = (),
) -> None:
    """Add the config section ``name`` (a frozen dataclass ``cls``; its fields' docstrings are
    its documentation) to :class:`ExperimentConfig`: ``cfg.<name>`` and the YAML key ``name:``.
    ``check(section)`` validates its values whatever the task. A task module calls this once
    when it is imported (``fathom.tasks`` imports every task).

    A section enters a run's key (:func:`config_hash`) only when it differs from its defaults,
    so adding a task leaves the keys of stored runs as they were; ``keyed_at_default`` keeps
    it in always (the sections that were part of every key before sections were registered),
    and then ``unkeyed_at_default`` names its fields added later, each of which enters the
    key only when it differs from its default.
    """
    if name in _SECTIONS and _SECTIONS[name][0] is not cls:
        raise ValueError(f"config section {name!r} is already registered")
    if name in {f.name for f in fields(ExperimentConfig)}:
        raise ValueError(f"config section {name!r} would shadow an ExperimentConfig field")
    _SECTIONS[name] = (cls, check)
    if not keyed_at_default:
        _UNKEYED_AT_DEFAULT[(name,)] = dataclasses.asdict(cls())
    for field_name in unkeyed_at_default:
        _UNKEYED_AT_DEFAULT[(name, field_name)] = getattr(cls(), field_name)


def register_check(check: Callable[[ExperimentConfig], None]) -> None:
    """Run ``check(cfg)`` on every validated config (after the value checks of this module);
    how layers above config (models, tasks) validate names against their registries."""
    if check not in _CHECKS:
        _CHECKS.append(check)


def register_given_check(check: Callable[[ExperimentConfig, frozenset[str]], None]) -> None:
    """Run ``check(cfg, keys)`` on a config built from what a user wrote — a config file
    (:func:`load_config`) or overrides (:func:`apply_overrides`: flags, ``key=value``, sweep
    axes) — with the dotted ``keys`` written. For rules on options *given* (an option the
    chosen model never reads is refused), which must not apply to configs rebuilt from a
    store or a checkpoint, or built in code."""
    if check not in _GIVEN_CHECKS:
        _GIVEN_CHECKS.append(check)


def check_given(cfg: ExperimentConfig, keys: Iterable[str]) -> ExperimentConfig:
    """Run the checks of :func:`register_given_check` on ``cfg`` for the dotted ``keys`` a
    user wrote; return ``cfg``."""
    given = frozenset(keys)
    for check in _GIVEN_CHECKS:
        check(cfg, given)
    return cfg


def section_types() -> dict[str, type]:
    """The registered task sections by name, in registration order."""
    _ensure_sections()
    return {name: cls for name, (cls, _) in _SECTIONS.items()}


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of a generated graph (used when ``data.name`` is a generator)."""

    num_nodes: int = 1000
    """Number of nodes (approximate for grid / tree / barbell, which round to their shape); for
    the multi-graph generators (``csbm-graphs``, graph-classification ``motifs``) the total
    over all graphs."""
    num_classes: int = 3
    """Number of classes."""
    feature_dim: int = 32
    """Node feature dimension."""
    avg_degree: float = 10.0
    """Expected average degree (CSBM)."""
    homophily: float = 0.8
    """Expected fraction of intra-class edges (CSBM)."""
    separation: float = 1.0
    """Distance scale between class means relative to unit feature noise (CSBM)."""
    num_graphs: int | None = None
    """Number of graphs of a multi-graph generator; ``None``: the generator's default
    (``csbm-graphs``: 10; ``motifs``: one per 25 nodes of ``num_nodes``)."""


@dataclass(frozen=True)
class DataConfig:
    """Which graph to train on and how to prepare it."""

    name: str = "csbm"
    """A registered dataset (``cora`` …), a generator (``csbm`` …) or a ``.npz``/``.pt`` path."""
    data_dir: str | None = None
    """Folder laid out like PyG's dataset roots. When given it is the only place raw files are
    looked for (it must exist); unset, fathom looks in ``$FATHOM_DATA``, then the cache."""
    split: int = 0
    """Which of a dataset's fixed splits to use (Geom-GCN datasets have 10)."""
    normalize_features: bool | None = None
    """Row-normalise features to sum to one (``NormalizeFeatures``, as the Planetoid papers do);
    ``None``: only when every feature is non-negative (bag-of-words datasets)."""
    to_undirected: bool = True
    """Symmetrise the graph (the Geom-GCN datasets are published as directed)."""
    reverse_edges: bool = False
    """Reverse every edge of a directed graph (``to_undirected: false``): a node then
    aggregates over the nodes its edges point to, as the product A·X with A[i, j] = 1 for an
    edge i -> j does in GCNII's and Geom-GCN's code; PyG's own flow (and the default) is
    source to target, over the nodes that point to it."""
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    """Generator parameters when ``name`` is a synthetic generator."""
    rewire: str = "none"
    """Graph rewiring against over-squashing applied once when the graph is built:
    ``sdrf`` (curvature-based, Topping et al. ICLR 2022) or ``fosr`` (spectral, Karhadkar et
    al. ICLR 2023); see ``fathom.transforms.rewiring.REWIRINGS``."""
    rewire_iterations: int = 50
    """Rewiring steps: SDRF loops / FoSR edges added."""
    inductive: bool = False
    """Inductive node classification (``task: node``): train on the subgraph induced by the
    training nodes (validation and test nodes, their features and edges are never seen in
    training), select on the subgraph of training + validation nodes, test on the full
    graph. With a multi-graph dataset (train / val / test graphs as one disjoint union)
    this is the usual train-on-some-graphs, test-on-others protocol."""


@dataclass(frozen=True)
class ModelConfig:
    """A ``DeepGNN``: optional encoder -> ``depth`` message-passing layers -> head."""

    arch: str = "deep"
    """``deep``: a stack of blocks (conv/skip/norm below); or a model that does not fit the
    block pattern: ``sgc``, ``gfnn``, ``appnp``, ``sign``, ``incep``, ``dgi`` (see
    ``fathom.models.build.ARCHS``). For ``sgc``/``gfnn``/``appnp``/``sign``, ``depth`` is the
    number of propagation steps K."""
    conv: str = "gcn"
    """Message-passing operator (see ``fathom.nn.convs.CONVS``)."""
    depth: int = 2
    """Number of message-passing layers (the conv head, if any, counts as one)."""
    hidden: int = 64
    """Hidden width (total over attention heads)."""
    skip: str = "none"
    """Skip connection between blocks (see ``fathom.nn.skips.SKIPS``)."""
    skip_project: bool = False
    """Residual and initial-residual skips: project a shortcut whose width differs from the
    block's through a learnt bias-free linear map (He et al.'s projection shortcut) instead
    of dropping it. Off by default, as in the published ResGCN / GCNII, where such a skip is
    inactive (a depth-2 ResGCN is then a plain GCN, and fathom warns)."""
    norm: str = "none"
    """Normalisation after each hidden conv (see ``fathom.nn.norms.NORMS``)."""
    dropout: float = 0.5
    """Dropout probability on the input of every layer."""
    act: str = "relu"
    """Activation after each hidden conv (see ``fathom.nn.activations.ACTIVATIONS``)."""
    encoder: str = "none"
    """``none``: the first conv maps input -> hidden (as PyG's ``BasicGNN``);
    ``linear``: a Linear layer does."""
    head: str = "conv"
    """``conv``: the last conv maps hidden -> classes (Kipf & Welling);
    ``linear``: a Linear layer does; ``none``: the stack ends with its last block (a task's
    head reads it out)."""
    heads: int = 8
    """Attention heads of hidden attention layers (GAT), ``hidden // heads`` channels each."""
    out_heads: int = 1
    """Attention heads of an attention conv head (averaged)."""
    attn_dropout: float = 0.6
    """Dropout on attention coefficients (GAT)."""
    aggr: str | None = None
    """Neighbourhood aggregation (``sum``/``mean``/``max``/``min``; ``softmax``/``powermean``
    for ``gen``) where the conv allows a choice; ``None``: the conv's own default."""
    alpha: float = 0.1
    """Teleport / initial-residual weight: GCNII's and APPNP's alpha, the ``initial`` skip."""
    theta: float = 0.5
    """GCNII's lambda: identity-mapping strength ``beta_l = log(theta / l + 1)``."""
    cheb_k: int = 2
    """Chebyshev filter order K (``cheb``)."""
    msg_norm: bool = False
    """Message normalisation (MsgNorm, DeeperGCN) in ``gen``."""
    jk: str = "cat"
    """Jumping-knowledge aggregation of the ``jk`` skip: ``cat``, ``max`` or ``lstm``."""
    norm_scale: float = 1.0
    """PairNorm's scale ``s``."""
    norm_groups: int = 10
    """Number of groups of DiffGroupNorm (``group``)."""
    input_dropout: float | None = None
    """Dropout on the raw input features; ``None``: same as ``dropout``."""
    drop_edge: float = 0.0
    """DropEdge (Rong et al., ICLR 2020): fraction of edges removed, resampled every
    training forward pass."""
    drop_node: float = 0.0
    """DropNode: probability of zeroing a node's whole input feature row in training
    (survivors rescaled by ``1 / (1 - p)``)."""
    share_weights: bool = False
    """Share one conv's parameters across all hidden blocks (parameter-sharing remedy)."""
    memory: str = "plain"
    """How activations are kept for the backward pass: ``plain`` (stored, memory grows with
    depth), ``checkpoint`` (each block's activations recomputed in the backward pass) or
    ``reversible`` (grouped reversible residual blocks, RevGNN, Li et al. ICML 2021: each
    block's input is reconstructed from its output, so activation memory does not grow with
    depth)."""
    groups: int = 2
    """Channel groups of a reversible block (``memory: reversible``)."""
    post_norm: bool = False
    """Normalise each block's output after its skip, ``x_l = norm(skip(act(conv(x))))``
    (the original Transformer's order, and Alon & Yahav's NeighborsMatch model), instead of
    ``skip(act(norm(conv(x))))``."""
    root_weight: bool = False
    """GCN (``conv: gcn``, ``arch: incep``): add a separate self-feature term, ``X' = P X W +
    X W_self + b`` (DropEdge's ``--withloop``, Rong et al. ICLR 2020); see
    ``fathom.nn.propagation.DropEdgeGCNConv``."""
    adj_norm: str = "sym"
    """GCN (``conv: gcn``, ``arch: incep``): the propagation matrix ``P``: ``sym`` (Kipf &
    Welling's ``D^-1/2 (A+I) D^-1/2``; DropEdge's AugNormAdj), ``rw`` (``D^-1 (A+I)``;
    AugRWalk), ``first-order`` (``I + D^-1/2 A D^-1/2``; FirstOrderGCN) or ``sym+i`` (``I +
    D^-1/2 (A+I) D^-1/2``; BingGeNormAdj); see ``fathom.nn.propagation.ADJ_NORMS``."""
    skip_every: int = 1
    """Residual skips (``res``, ``res+``) span this many blocks: ``x_l = h + x_{l-k}`` at
    the end of every group of ``k`` blocks after the input layer (the first block, or the
    linear encoder), no skip inside a group (DropEdge's ``resgcn`` with
    ``--nbaseblocklayer k``). 1: a residual around every block; 0: one residual around all
    the hidden blocks, whatever the depth (DropEdge's scripts: ``--nhiddenlayer 1``,
    ``--nbaseblocklayer depth - 2``)."""
    head_norm: bool = False
    """Apply ``norm`` to the head's output too (DropEdge's ``--withbn`` batch-normalises its
    output layer as well as every hidden one)."""
    init: str = "default"
    """Parameter initialisation of the built model: ``default`` (each layer's own: Glorot
    weights and zero biases for GCN layers) or ``uniform-out`` (every weight and bias of every
    GCN and GCNII layer uniform in ``±1/sqrt(out_channels)``, as Kipf's pygcn, DropEdge's
    GraphConvolutionBS and GCNII's GraphConvolution draw them); see
    ``fathom.nn.inits.INITS``."""


@dataclass(frozen=True)
class TrainConfig:
    """Full-batch optimisation with early stopping."""

    epochs: int = 200
    """Maximum number of epochs."""
    lr: float = 0.01
    """Adam learning rate."""
    weight_decay: float = 5e-4
    """Adam (L2) weight decay on all parameters."""
    patience: int = 100
    """Stop after this many epochs without a better monitored value; 0 disables early stopping."""
    monitor: str = "auto"
    """Metric that picks the best epoch, one the task reports (``TaskSpec.monitors``):
    ``val_acc`` (ties broken by lower val_loss), ``val_loss``, ``val_auc``, ``val_ap``,
    ``val_miou``, ``train_acc``, ``val_train_mode_loss`` (node classification, full batch: the
    validation loss of the training forward pass, dropout on, as the DropEdge scripts
    select); ``auto``: the task's default (``val_acc`` for node and graph
    classification, ``val_auc`` for link prediction and autoencoders, ``val_miou`` for
    segmentation, ``train_acc`` for Tree-NeighborsMatch, whose figure it is)."""
    label_smoothing: float = 0.0
    """Label smoothing of the training cross-entropy."""
    conv_weight_decay: float | None = None
    """Weight decay of message-passing layers (GCNII: 0.01, dense layers ``weight_decay``);
    ``None``: ``weight_decay`` for every parameter."""
    diagnose_every: int = 0
    """Measure per-layer over-smoothing metrics (Dirichlet energy, MAD, ranks) every this many
    epochs and of the final model; kept with the run (JSON, results store, reports). 0: off.
    Measuring draws no random numbers, so results are the same with it on. Graphs above 512
    nodes / 2,048 edges are measured on a fixed sample (``fathom diagnose`` is exact). Graph
    classification measures fold 0's model on its validation graphs; link tasks measure the
    encoder on the training graph."""
    batch_size: int = 32
    """Items per mini-batch of the tasks that train in mini-batches: graphs (``graph``),
    point clouds (``segmentation``), trees (``neighbors-match``); the single-graph tasks
    (``node``, ``link``, ``autoencoder``) train full batch."""
    lr_decay_every: int = 0
    """Multiply the learning rate by ``lr_decay`` every this many epochs (StepLR; the GIN
    paper halves it every 50). 0: constant learning rate."""
    lr_decay: float = 0.5
    """Factor of the step learning-rate decay."""
    layerwise: int = 0
    """Greedy layer-wise training: train ``layerwise`` blocks (plus head), freeze them, add
    ``layerwise`` more, … until all blocks are in; ``epochs`` per stage. 0: train jointly."""
    loader: str = "full"
    """How ``fit`` gets its batches on one large graph (node classification): ``full`` (the
    whole graph, one step per epoch), ``neighbor`` (GraphSAGE neighbour sampling with
    ``fanouts``; ``batch_size`` seed nodes per batch), ``cluster`` (METIS partitions,
    Cluster-GCN; ``num_parts``, ``parts_per_batch``), ``random-partition`` (random node
    partitions, the DeeperGCN / RevGNN ogbn-proteins recipe) or ``saint`` (GraphSAINT random
    walks of ``walk_length`` from ``batch_size`` roots); see ``fathom.loaders.LOADERS``."""
    fanouts: str = "10,5"
    """Neighbours sampled per node and hop (``loader: neighbor``), comma-separated, first hop
    first; -1 takes every neighbour."""
    num_parts: int = 16
    """Partitions of the graph (``loader: cluster`` / ``random-partition``)."""
    parts_per_batch: int = 1
    """Partitions per mini-batch, with the edges between them (Cluster-GCN's stochastic
    multiple partitions)."""
    walk_length: int = 2
    """Random-walk steps from each root (``loader: saint``)."""
    sample_coverage: int = 50
    """GraphSAINT's pre-sampling: batches drawn per node to estimate the loss normalisation
    (``loader: saint``)."""
    num_workers: int = 0
    """Worker processes that build the batches of a sampling loader (0: in the training
    process)."""
    accumulate: int = 1
    """Mini-batches per optimiser step (gradient accumulation): the gradients of
    ``loss / accumulate`` of that many batches are summed before each step; the gradients of
    an epoch's last, incomplete group are dropped (as NeighborsMatch's official code does)."""
    precision: str = "32"
    """``32``: float32; ``bf16``: bfloat16 autocast of the forward passes (CUDA only; weights,
    optimiser and losses stay float32)."""
    eval_mode: str = "full"
    """How node classification (``task: node``) computes the outputs it evaluates: ``full``
    (one forward pass over the whole graph), ``layerwise`` (all nodes one layer at a time,
    each conv by chunks of ``eval_chunk`` target nodes with their 1-hop in-neighbourhood:
    exact, holding a few layers and one chunk's messages instead of the whole graph's) or
    ``sampled`` (chunks of ``eval_chunk`` target nodes, each on its neighbourhood as deep as
    the model reads, ``eval_fanouts`` per hop: exact with -1); see
    ``fathom.models.inference``."""
    eval_chunk: int = 4096
    """Target nodes per chunk of ``eval_mode`` ``layerwise`` / ``sampled``."""
    eval_fanouts: str = "-1"
    """Neighbours sampled per node and hop by ``eval_mode: sampled``, comma-separated, first
    hop first (the last repeats for further hops); -1 takes every neighbour (exact)."""


@dataclass(frozen=True, init=False)
class ExperimentConfig:
    """Everything that defines a run: ``data + model + train + task + seed``, plus one section
    per task (``graph``, ``link``, ``points`` …: registered by the task modules, read as
    ``cfg.graph``) and the ``device`` it runs on."""

    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    task: str
    """Learning task, a name registered in ``fathom.tasks.TASKS``: ``node`` (node
    classification), ``graph`` (graph classification with cross-validation), ``link`` (link
    prediction), ``autoencoder`` (GAE / VGAE link reconstruction, optionally denoising),
    ``segmentation`` (per-point classification of point clouds with a DeepGCN) or
    ``neighbors-match`` (Alon & Yahav's Tree-NeighborsMatch)."""
    seed: int
    """First seed; a run over ``seeds`` seeds uses ``seed, seed + 1, …``."""
    seeds: int
    """Number of seeds (independent trainings) to run and aggregate."""
    device: str
    """Where to train: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or
    ``cuda:N``. Not part of the run's key (:func:`config_hash`): where a run executes is
    recorded with it, not what it is."""
    sections: tuple[tuple[str, Any], ...]
    """The task sections as ``(name, section)`` pairs; read them as attributes."""

    def __init__(
        self,
        data: DataConfig | None = None,
        model: ModelConfig | None = None,
        train: TrainConfig | None = None,
        task: str = "node",
        seed: int = 0,
        seeds: int = 1,
        device: str = "auto",
        sections: Iterable[tuple[str, Any]] = (),
        **named: Any,
    ) -> None:
        _ensure_sections()
        given = dict(sections)
        for name, value in named.items():
            if name not in _SECTIONS:
                raise TypeError(f"ExperimentConfig has no section {name!r}")
            given[name] = value
        set_ = object.__setattr__
        set_(self, "data", DataConfig() if data is None else data)
        set_(self, "model", ModelConfig() if model is None else model)
        set_(self, "train", TrainConfig() if train is None else train)
        set_(self, "task", task)
        set_(self, "seed", seed)
        set_(self, "seeds", seeds)
        set_(self, "device", device)
        set_(
            self,
            "sections",
            tuple(
                (name, given[name] if name in given else cls())
                for name, (cls, _) in _SECTIONS.items()
            ),
        )

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: the task sections
        for key, value in self.__dict__.get("sections", ()):
            if key == name:
                return value
        raise AttributeError(f"ExperimentConfig has no field or section {name!r}")

    def validate(self) -> ExperimentConfig:
        """Check value ranges, then every registered check (registered names, task rules);
        return ``self`` or raise ConfigError."""
        _check_values(self)
        for name, (_, check) in _SECTIONS.items():
            if check is not None:
                check(getattr(self, name))
        for check in _CHECKS:
            check(self)
        return self


# --------------------------------------------------------------------------- conversion


def flag(key: str) -> str:
    """``key`` as error messages name it: ``model.depth (--depth)`` where a flag exists."""
    return f"{key} ({FLAG_FOR_KEY[key]})" if key in FLAG_FOR_KEY else key


_flag = flag


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (int/float/str/bool/Optional/dataclass)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _coerce(value, opt, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{_flag(key)} must not be null")
    if is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{_flag(key)} must be a mapping, got {_short(value)}")
        return _from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{_flag(key)} must be true or false, got {_short(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{_flag(key)} must be an integer, got {_short(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _EXP_FLOAT.fullmatch(value.strip()):
            return float(value)
        raise ConfigError(f"{_flag(key)} must be a number, got {_short(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{_flag(key)} must be a string, got {_short(value)}")
    raise ConfigError(f"{_flag(key)} has unsupported type {_type_name(tp)}")


def _from_dict(cls: type[C], raw: Mapping[str, Any], prefix: str = "") -> C:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    if cls is ExperimentConfig:
        names = (names - {"sections"}) | set(_SECTIONS)
        hints.update(section_types())
    unknown = [k for k in raw if k not in names]
    if unknown:
        raise ConfigError(
            f"unknown config key {_short(f'{prefix}{unknown[0]}')}; valid keys under "
            f"{prefix.rstrip('.') or 'the top level'}: {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{prefix}{k}") for k, v in raw.items()}
    return cls(**kwargs)


_SECTION_LOADER: list[Callable[[], Any]] = []


def set_section_loader(loader: Callable[[], Any]) -> None:
    """Register what registers the task sections (``fathom/__init__.py`` passes the import
    of :mod:`fathom.tasks`): called once, the first time a config or its sections are
    needed, so a config built through any import path knows every section while this
    module imports nothing above it."""
    _SECTION_LOADER[:] = [loader]


def _ensure_sections() -> None:
    """Run the section loader once (it is removed before it runs: a task module that builds
    a config while it is being imported does not start it again)."""
    if _SECTION_LOADER:
        _SECTION_LOADER.pop()()


def config_from_dict(raw: Mapping[str, Any]) -> ExperimentConfig:
    """Build and validate an :class:`ExperimentConfig` from a nested mapping."""
    _ensure_sections()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a config must be a mapping of sections, got {type(raw).__name__}")
    return _from_dict(ExperimentConfig, raw).validate()


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys: ``{"model": {"depth": 2}}`` -> ``{"model.depth": 2}``."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The fully resolved config as plain nested dicts (JSON/YAML serialisable); the task
    sections of an :class:`ExperimentConfig` are top-level keys, as in its YAML."""
    if not isinstance(cfg, ExperimentConfig):
        return dataclasses.asdict(cfg)
    out: dict[str, Any] = {
        "data": dataclasses.asdict(cfg.data),
        "model": dataclasses.asdict(cfg.model),
        "train": dataclasses.asdict(cfg.train),
        "task": cfg.task,
    }
    out.update((name, dataclasses.asdict(section)) for name, section in cfg.sections)
    out.update(seed=cfg.seed, seeds=cfg.seeds, device=cfg.device)
    return out


def load_config(path: str | Path) -> ExperimentConfig:
    """Read a YAML config file over the defaults (with :mod:`fathom.yamlio`'s safe, bounded
    reader: an empty file, a duplicate key, an alias bomb or a binary file is refused)."""
    raw = load_file(
        path, what="config file", expect="a mapping of sections (data, model, train, ...)"
    )
    cfg = config_from_dict(raw)
    try:
        return check_given(cfg, flatten(raw))
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key=value``; the value is parsed as YAML (``16`` -> int, ``null`` -> None),
    or kept as the raw string when it is not YAML (``[abc``)."""
    key, sep, value = text.partition("=")
    key = key.strip().removeprefix("--")
    if not sep or not key:
        raise ConfigError(f"override {_short(text)} must look like section.key=value")
    try:
        parsed = loads(value, source=f"override {_short(key)}") if value.strip() else ""
    except YamlSyntaxError:
        parsed = value
    return key, parsed


def apply_overrides(
    cfg: ExperimentConfig, overrides: Mapping[str, Any] | Iterable[tuple[str, Any]]
) -> ExperimentConfig:
    """Return ``cfg`` with dotted keys (``model.depth``) replaced, then validated."""
    raw = config_to_dict(cfg)
    items = list(overrides.items() if isinstance(overrides, Mapping) else overrides)
    for key, value in items:
        node = raw
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                prefix = ".".join(parts[: i + 1])
                raise ConfigError(f"unknown config key {_short(prefix)} in override {_short(key)}")
            node = node[part]
        if parts[-1] not in node:
            section = ".".join(parts[:-1]) or "the top level"
            raise ConfigError(
                f"unknown config key {_short(key)}; valid keys under {section}: "
                f"{', '.join(sorted(node))}"
            )
        node[parts[-1]] = value
    cfg = config_from_dict(raw)
    return check_given(cfg, (key for key, _ in items))


def config_hash(cfg: ExperimentConfig) -> str:
    """A stable identity of a resolved config: sha256 of its canonical JSON (sorted keys).

    Two configs hash equal iff every field but ``device`` is equal, whatever order they were
    written in; this is a run's key in the results store (the device a run used is stored
    with it). Fields and task sections added after runs were first stored are left out while
    at their defaults, so a config that does not use them keeps the key it always had.
    """
    raw = config_to_dict(cfg)
    raw.pop("device", None)
    for path, default in _UNKEYED_AT_DEFAULT.items():
        *parents, leaf = path
        node = raw
        for part in parents:
            node = node.get(part, {})
        if leaf in node and node[leaf] == default:
            del node[leaf]
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def with_seed(cfg: ExperimentConfig, seed: int) -> ExperimentConfig:
    """A copy of ``cfg`` for one training run with ``seed`` (and ``seeds=1``)."""
    return replace(cfg, seed=seed, seeds=1)


# --------------------------------------------------------------------------- validation


def require(ok: bool, key: str, msg: str, value: Any) -> None:
    """Raise ``ConfigError("<key (--flag)> <msg>, got <value>")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{flag(key)} {msg}, got {_short(value)}")


_require = require


MAX_DEPTH = 10_000
"""Most message-passing layers (``model.depth``): ten times the deepest published model fathom
reproduces (RevGNN's 1001); what fits in memory is checked separately when the model is built
(:func:`fathom.models.build.check_model_memory`)."""
MAX_EPOCHS = 1_000_000
"""Most epochs (``train.epochs``)."""
MAX_SEEDS = 10_000
"""Most seeds of one run (``seeds``), as many as a sweep's default ``max_runs``."""
MAX_SEED = 2**63
"""Seeds are ``0 <= seed < 2**63`` (every seed of a run, ``seed + seeds - 1``, too): torch's
generators take 64 bits and fathom derives 63-bit seeds from them."""
MAX_WORKERS = 256
"""Most loader worker processes (``train.num_workers``)."""
_INT_LIMIT = 2**63


def _check_numbers(section: Any, prefix: str) -> None:
    """Every float field finite, every int field within 64 bits (recursing into nested
    sections): NaN, infinities and integers torch cannot hold are refused whatever the key."""
    for f in fields(section):
        value = getattr(section, f.name)
        key = f"{prefix}{f.name}"
        if is_dataclass(value):
            _check_numbers(value, f"{key}.")
        elif isinstance(value, float):
            _require(math.isfinite(value), key, "must be a finite number", value)
        elif isinstance(value, int) and not isinstance(value, bool):
            _require(
                -_INT_LIMIT < value < _INT_LIMIT,
                key,
                "must fit in 64 bits (|value| < 2**63)",
                value,
            )


def _check_values(cfg: ExperimentConfig) -> None:
    """Value ranges of the data, model and train sections (no registry is consulted here)."""
    m, t, d, s = cfg.model, cfg.train, cfg.data, cfg.data.synthetic
    _require(
        isinstance(cfg.seed, int) and not isinstance(cfg.seed, bool),
        "seed",
        "must be an integer",
        cfg.seed,
    )
    _require(
        isinstance(cfg.seeds, int) and not isinstance(cfg.seeds, bool),
        "seeds",
        "must be an integer",
        cfg.seeds,
    )
    for name in ("data", "model", "train"):
        _check_numbers(getattr(cfg, name), f"{name}.")
    for name, section in cfg.sections:
        if is_dataclass(section):
            _check_numbers(section, f"{name}.")
    _require(m.depth >= 1, "model.depth", "must be >= 1", m.depth)
    _require(m.depth <= MAX_DEPTH, "model.depth", f"must be <= {MAX_DEPTH:,}", m.depth)
    _require(m.hidden >= 1, "model.hidden", "must be >= 1", m.hidden)
    _require(0.0 <= m.dropout < 1.0, "model.dropout", "must be in [0, 1)", m.dropout)
    _require(0.0 <= m.attn_dropout < 1.0, "model.attn_dropout", "must be in [0, 1)", m.attn_dropout)
    _require(m.heads >= 1, "model.heads", "must be >= 1", m.heads)
    _require(m.out_heads >= 1, "model.out_heads", "must be >= 1", m.out_heads)
    _require(0.0 <= m.alpha <= 1.0, "model.alpha", "must be in [0, 1]", m.alpha)
    _require(m.theta > 0, "model.theta", "must be > 0", m.theta)
    _require(m.cheb_k >= 1, "model.cheb_k", "must be >= 1", m.cheb_k)
    _require(m.jk in ("cat", "max", "lstm"), "model.jk", "must be cat, max or lstm", m.jk)
    _require(m.norm_scale > 0, "model.norm_scale", "must be > 0", m.norm_scale)
    _require(m.norm_groups >= 1, "model.norm_groups", "must be >= 1", m.norm_groups)
    for key, p in [
        ("model.input_dropout", m.input_dropout),
        ("model.drop_edge", m.drop_edge),
        ("model.drop_node", m.drop_node),
    ]:
        _require(p is None or 0.0 <= p < 1.0, key, "must be in [0, 1)", p)
    _require(m.groups >= 2, "model.groups", "must be >= 2", m.groups)
    _require(m.skip_every >= 0, "model.skip_every", "must be >= 0", m.skip_every)
    _require(t.epochs >= 1, "train.epochs", "must be >= 1", t.epochs)
    _require(t.epochs <= MAX_EPOCHS, "train.epochs", f"must be <= {MAX_EPOCHS:,}", t.epochs)
    _require(t.lr > 0, "train.lr", "must be > 0", t.lr)
    _require(t.weight_decay >= 0, "train.weight_decay", "must be >= 0", t.weight_decay)
    _require(t.patience >= 0, "train.patience", "must be >= 0 (0 disables)", t.patience)
    _require(
        0.0 <= t.label_smoothing < 1.0,
        "train.label_smoothing",
        "must be in [0, 1)",
        t.label_smoothing,
    )
    _require(
        t.conv_weight_decay is None or t.conv_weight_decay >= 0,
        "train.conv_weight_decay",
        "must be >= 0",
        t.conv_weight_decay,
    )
    _require(t.layerwise >= 0, "train.layerwise", "must be >= 0 (0 disables)", t.layerwise)
    _require(
        t.diagnose_every >= 0, "train.diagnose_every", "must be >= 0 (0 disables)", t.diagnose_every
    )
    _require(t.batch_size >= 1, "train.batch_size", "must be >= 1", t.batch_size)
    _require(t.lr_decay_every >= 0, "train.lr_decay_every", "must be >= 0", t.lr_decay_every)
    _require(t.accumulate >= 1, "train.accumulate", "must be >= 1", t.accumulate)
    _require(bool(t.loader), "train.loader", "must not be empty", t.loader)
    _require(
        _FANOUTS.fullmatch(t.fanouts.replace(" ", "")) is not None
        and all(int(f) >= 1 or int(f) == -1 for f in t.fanouts.split(",")),
        "train.fanouts",
        "must be comma-separated neighbour counts >= 1 (or -1: all), e.g. 15,10",
        t.fanouts,
    )
    _require(t.num_parts >= 2, "train.num_parts", "must be >= 2", t.num_parts)
    _require(t.parts_per_batch >= 1, "train.parts_per_batch", "must be >= 1", t.parts_per_batch)
    _require(
        t.parts_per_batch <= t.num_parts,
        "train.parts_per_batch",
        f"must be <= train.num_parts ({t.num_parts})",
        t.parts_per_batch,
    )
    _require(t.walk_length >= 1, "train.walk_length", "must be >= 1", t.walk_length)
    _require(t.sample_coverage >= 0, "train.sample_coverage", "must be >= 0", t.sample_coverage)
    _require(t.num_workers >= 0, "train.num_workers", "must be >= 0", t.num_workers)
    _require(
        t.num_workers <= MAX_WORKERS,
        "train.num_workers",
        f"must be <= {MAX_WORKERS}",
        t.num_workers,
    )
    _require(0.0 < t.lr_decay <= 1.0, "train.lr_decay", "must be in (0, 1]", t.lr_decay)
    _require(
        t.eval_mode in EVAL_MODES,
        "train.eval_mode",
        f"must be one of {', '.join(EVAL_MODES)}",
        t.eval_mode,
    )
    _require(t.eval_chunk >= 1, "train.eval_chunk", "must be >= 1", t.eval_chunk)
    _require(
        t.eval_mode != "full" or t.eval_chunk == TrainConfig.eval_chunk,
        "train.eval_chunk",
        "applies to train.eval_mode layerwise or sampled, not 'full'",
        t.eval_chunk,
    )
    _require(
        _FANOUTS.fullmatch(t.eval_fanouts.replace(" ", "")) is not None
        and all(int(f) >= 1 or int(f) == -1 for f in t.eval_fanouts.split(",")),
        "train.eval_fanouts",
        "must be comma-separated neighbour counts >= 1 (or -1: all), e.g. 15,10",
        t.eval_fanouts,
    )
    _require(
        t.eval_mode == "sampled" or t.eval_fanouts == "-1",
        "train.eval_fanouts",
        f"applies to train.eval_mode sampled, not {t.eval_mode!r}",
        t.eval_fanouts,
    )
    _require(
        t.precision in PRECISIONS,
        "train.precision",
        f"must be one of {', '.join(PRECISIONS)}",
        t.precision,
    )
    _require(
        bool(_DEVICE.fullmatch(cfg.device)),
        "device",
        "must be auto, cpu, cuda or cuda:N",
        cfg.device,
    )
    _require(cfg.seeds >= 1, "seeds", "must be >= 1", cfg.seeds)
    _require(cfg.seeds <= MAX_SEEDS, "seeds", f"must be <= {MAX_SEEDS:,}", cfg.seeds)
    _require(cfg.seed >= 0, "seed", "must be >= 0", cfg.seed)
    _require(
        cfg.seed + cfg.seeds <= MAX_SEED,
        "seed",
        f"must be < 2**63 - seeds + 1 (every seed of the run, seed + {cfg.seeds - 1}, "
        "must be below 2**63)"
        if cfg.seeds > 1
        else "must be < 2**63",
        cfg.seed,
    )
    _require(d.split >= 0, "data.split", "must be >= 0", d.split)
    _require(
        not (d.reverse_edges and d.to_undirected),
        "data.reverse_edges",
        "needs data.to_undirected: false (reversing a symmetrised graph changes nothing)",
        d.reverse_edges,
    )
    _require(
        d.rewire_iterations >= 0, "data.rewire_iterations", "must be >= 0", d.rewire_iterations
    )
    _require(bool(d.name), "data.name", "must not be empty", d.name)
    _require(
        d.data_dir is None or bool(d.data_dir.strip()),
        "data.data_dir",
        "must name a folder (leave it unset to search $FATHOM_DATA and the cache)",
        d.data_dir,
    )
    _require(s.num_nodes >= 2, "data.synthetic.num_nodes", "must be >= 2", s.num_nodes)
    _require(s.num_classes >= 2, "data.synthetic.num_classes", "must be >= 2", s.num_classes)
    _require(
        s.num_classes <= s.num_nodes,
        "data.synthetic.num_classes",
        f"must be <= data.synthetic.num_nodes ({s.num_nodes})",
        s.num_classes,
    )
    _require(s.feature_dim >= 1, "data.synthetic.feature_dim", "must be >= 1", s.feature_dim)
    _require(s.avg_degree > 0, "data.synthetic.avg_degree", "must be > 0", s.avg_degree)
    _require(0 <= s.homophily <= 1, "data.synthetic.homophily", "must be in [0, 1]", s.homophily)
    _require(
        s.num_graphs is None or s.num_graphs >= 2,
        "data.synthetic.num_graphs",
        "must be >= 2",
        s.num_graphs,
    )
    _require(s.separation >= 0, "data.synthetic.separation", "must be >= 0", s.separation)
