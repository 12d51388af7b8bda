r"""Evaluation of deep models on a whole graph without holding every layer.

:func:`layerwise_inference` computes a model's eval-mode outputs for all nodes one layer at a
time, as PyG's ``BasicGNN.inference`` does: the model runs its own forward pass on a
:class:`~fathom.nn.layerwise.ChunkedGraph` instead of ``edge_index``, and every conv in it
computes the whole layer by chunks of ``chunk_size`` target nodes (each chunk: the rows of
the layer's input its 1-hop in-neighbourhood holds, the conv there, the targets' rows kept).
Norms, activations, skips, jumping knowledge and heads run on the whole layer. Peak memory is
therefore a few ``[N, C]`` layers plus one chunk's subgraph and its messages, never the
``[E, C]`` messages of the whole graph at once (a full-batch GAT / SAGE / GIN layer) and
never ``L`` layers of activations (a training-mode forward pass), except where the model
itself reads every layer. Results equal :meth:`model.eval()(x, edge_index)
<torch.nn.Module.__call__>` up to the order of floating-point sums; the tests hold every arch,
conv, skip, norm and memory mode to ``atol = 1e-5`` in float32 with chunks smaller than the
graph.

What is exact layer-wise, what each costs, and how the rest is evaluated
(:func:`fathom.train.inference.sampled_inference` is the sampled alternative):

====================================  =======================  ============================
part of the model                     layer-wise               sampled (fan-out -1)
====================================  =======================  ============================
local convs: sage, gat, gatv2,        exact: the chunk's       exact with ``L`` hops
transformer, gin, gin0, gen, gated    1-hop in-neighbourhood
gcn, gcn2, gcn2-star(-code),         exact: rows of the       exact with ``L + 1`` hops
reversible GCN groups                 whole graph's            (the hop-``L`` nodes' full
                                      normalised adjacency     in-degrees)
                                      (full-graph degrees)
cheb (order ``K``)                    exact: ``K - 1``         ``(K - 1) L + 1`` hops;
                                      chunked propagations     exact on undirected graphs
                                      of the whole Laplacian   (its degrees are out-degrees)
mlp conv, encoder, linear head        exact, node-wise         exact
norms batch, group (eval: running     exact, node-wise         exact
statistics), layer, node
norms with graph-wide statistics:     exact: the whole layer   **refused**: a subgraph's
pair, pair-si, pair-scs, mean,        is kept                  statistics are not the
graph                                                          graph's
skips none, res, res+, initial;       exact; keeps ``x_0``     exact
GCNII's ``x_0``                       and the last layer
                                      (``2 N C``)
skip dense, jumping knowledge         exact; keeps every       exact
(cat, max, lstm)                      layer (``L N C``: they
                                      read them all)
memory reversible                     exact: the coupling's    exact, ``G`` hops per block
                                      forward, group after
                                      group (no inverse), on
                                      ``2 N C``
memory checkpoint                     exact (a plain call in   exact
                                      eval)
APPNP                                 exact: ``K`` chunked     exact with ``K + 1`` hops
                                      steps, holds ``H``, two
                                      iterates
SGC, GfNN, SIGN                       the hops precomputed     exact with ``K + 1`` hops
                                      in training (cached),
                                      else chunked; SIGN
                                      holds ``K + 1`` hops
IncepGCN                              exact; holds every       exact with ``depth + 1``
                                      branch output            hops
dropout, DropEdge, DropNode           training only            training only
another conv class                    refused (locality        exact if local, with its
                                      unknown; see             receptive field
                                      ``register_local_conv``)
DGI, link / graph / point-cloud       refused (no node         refused
models                                outputs of this kind)
====================================  =======================  ============================

Nothing the node task builds needs the sampled fallback to be evaluated exactly: layer-wise
keeps whole layers, so graph-wide norms are exact too. Sampled evaluation is the alternative
for convs whose locality is not known here (a newly registered one) and the cheaper choice
where only a few nodes are needed; its cost is a chunk's ``L``-hop neighbourhood, which for a
deep model is soon the whole graph (use small chunks or fixed fan-outs, exact no longer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fathom.config import ModelConfig, require
from fathom.models.decoupled import APPNP, SGC, SIGN, GfNN
from fathom.models.deep_gnn import DeepGNN, GCNGroup
from fathom.models.inception import IncepGCN
from fathom.nn.block import GNNBlock
from fathom.nn.layerwise import ChunkedGraph, chunkable, conv_hops, message_passing_modules
from fathom.nn.reversible import ReversibleGroups

__all__ = [
    "DEFAULT_CHUNK",
    "GRAPH_WIDE_NORMS",
    "LAYERWISE_ARCHS",
    "LAYERWISE_CONVS",
    "LAYERWISE_MODELS",
    "NODEWISE_NORMS",
    "ReceptiveField",
    "check_eval_mode",
    "check_layerwise",
    "layerwise_inference",
    "receptive_field",
    "unwrap",
]

DEFAULT_CHUNK = 4096
"""Target nodes per chunk when none is given (PyG's layer-wise inference examples use 4096)."""

LAYERWISE_MODELS: tuple[type[nn.Module], ...] = (DeepGNN, IncepGCN, APPNP, SGC, GfNN, SIGN)
"""Model classes whose forward pass takes a :class:`~fathom.nn.layerwise.ChunkedGraph`
(another class says so with a true ``supports_layerwise`` attribute)."""

LAYERWISE_ARCHS = ("deep", "incep", "appnp", "sgc", "gfnn", "sign")
"""``model.arch`` values built as one of :data:`LAYERWISE_MODELS`."""

LAYERWISE_CONVS = (
    "gcn",
    "gat",
    "gatv2",
    "transformer",
    "sage",
    "gin",
    "gin0",
    "cheb",
    "gen",
    "gated",
    "gcn2",
    "gcn2-star",
    "gcn2-star-code",
    "mlp",
)
"""``model.conv`` names whose modules :class:`~fathom.nn.layerwise.ChunkedGraph` chunks (a
conv registered later is refused for layer-wise evaluation until it is listed here)."""

NODEWISE_NORMS = ("none", "batch", "layer", "node", "group")
"""Norms that act on each node alone in eval mode (batch norm and DiffGroupNorm use their
running statistics), so a sampled subgraph computes them exactly."""

GRAPH_WIDE_NORMS = ("pair", "pair-si", "pair-scs", "mean", "graph", "batch-stats")
"""Norms with statistics over all nodes (``batch-stats``: BatchNorm on the batch's own
statistics in eval mode too): exact layer-wise (the whole layer is kept), not on a sampled
subgraph."""


@dataclass(frozen=True)
class ReceptiveField:
    """How far a model's output at a node reads.

    Attributes:
        hops: message-passing steps between the input and the output.
        degrees: whether some step normalises by the degrees of its *source* nodes (GCN's
            symmetric normalisation, the Chebyshev Laplacian), which a sampled neighbourhood
            sees whole only one hop further out.
    """

    hops: int
    degrees: bool

    @property
    def sampled_hops(self) -> int:
        """Hops of a sampled neighbourhood on which the output is exact (fan-out -1)."""
        return self.hops + int(self.degrees)

    def __add__(self, other: ReceptiveField) -> ReceptiveField:
        return ReceptiveField(self.hops + other.hops, self.degrees or other.degrees)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a :class:`~torch.nn.parallel.DistributedDataParallel` or
    :class:`~torch.nn.DataParallel` wrapper (itself otherwise): evaluation calls the module
    directly, with no collective of the wrapper's forward pass."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model


def _conv_field(conv: nn.Module) -> ReceptiveField:
    hook = getattr(conv, "receptive_field", None)
    if callable(hook):
        return hook()
    if isinstance(conv, GCNGroup):
        return ReceptiveField(1, True)
    if isinstance(conv, GNNBlock):
        return ReceptiveField(*conv_hops(conv.conv))
    if isinstance(conv, ReversibleGroups):  # the groups' functions run one after another
        field = ReceptiveField(0, False)
        for fn in conv.fns:
            field = field + _conv_field(fn)
        return field
    return ReceptiveField(*conv_hops(conv))


def receptive_field(model: nn.Module) -> ReceptiveField:
    """The :class:`ReceptiveField` of a node model: of every (active) block and a conv head
    of a :class:`~fathom.models.deep_gnn.DeepGNN`; ``depth`` GCN layers for IncepGCN; ``K``
    GCN propagations for APPNP, SGC, GfNN, SIGN. Another model may define
    ``receptive_field()`` returning one.

    Raises:
        ValueError: a model of another class without that method.
    """
    model = unwrap(model)
    hook = getattr(model, "receptive_field", None)
    if callable(hook):
        return hook()
    if isinstance(model, DeepGNN):
        blocks = (
            model.blocks if model.active_blocks is None else model.blocks[: model.active_blocks]
        )
        field = ReceptiveField(0, False)
        for block in blocks:
            field = field + _conv_field(block)
        if model.head_is_conv:
            field = field + _conv_field(model.head)
        return field
    if isinstance(model, IncepGCN):
        return ReceptiveField(model.depth, True)
    if isinstance(model, (APPNP, SGC, GfNN, SIGN)):
        return ReceptiveField(model.K, True)
    raise ValueError(
        f"the receptive field of a {type(model).__name__} is not known (define "
        "receptive_field() on it)"
    )


def check_layerwise(model: nn.Module) -> None:
    """Raise ``ValueError`` (one line) unless :func:`layerwise_inference` can run ``model``:
    one of :data:`LAYERWISE_MODELS` (or ``supports_layerwise = True``) whose convs are all
    :func:`~fathom.nn.layerwise.chunkable`."""
    model = unwrap(model)
    if not (isinstance(model, LAYERWISE_MODELS) or getattr(model, "supports_layerwise", False)):
        raise ValueError(
            f"layer-wise inference: a {type(model).__name__} does not take a ChunkedGraph "
            f"(models that do: {', '.join(c.__name__ for c in LAYERWISE_MODELS)}); evaluate "
            "it on sampled subgraphs instead"
        )
    convs = message_passing_modules(model)
    convs += [m.conv for m in model.modules() if isinstance(m, GNNBlock)]
    for module in convs:
        why = chunkable(module)
        if why is not None:
            raise ValueError(f"layer-wise inference: {why}; evaluate on sampled subgraphs instead")


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def layerwise_inference(
    model: nn.Module,
    x: Tensor,
    edge_index: Tensor,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    device: torch.device | str | None = None,
    num_nodes: int | None = None,
) -> Tensor:
    """Every node's eval-mode output of ``model``, one layer at a time, each layer's message
    passing by chunks of ``chunk_size`` target nodes (module docstring).

    The model is put in eval mode for the call (and back in its mode after) and run without
    autograd. The layers live on ``device``; the graph's structure stays where
    ``edge_index`` is and each chunk's part of it is moved to ``device``.

    Args:
        model: one of :data:`LAYERWISE_MODELS` (see :func:`check_layerwise`).
        x: node features.
        edge_index: the whole graph.
        chunk_size: target nodes per chunk.
        device: where to compute (default: the model's device).
        num_nodes: the number of nodes (default: ``x.size(0)``).

    Raises:
        ValueError: a model or conv that cannot run layer-wise (:func:`check_layerwise`).

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, out_channels]`` on ``device``.
    """
    model = unwrap(model)
    check_layerwise(model)
    device = torch.device(device) if device is not None else _model_device(model)
    graph = ChunkedGraph(
        edge_index,
        x.size(0) if num_nodes is None else num_nodes,
        chunk_size=chunk_size,
        device=device,
    )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x.to(device), graph)
    finally:
        model.train(was_training)


def check_eval_mode(cfg: ModelConfig, mode: str) -> None:
    """Raise :class:`~fathom.errors.ConfigError` (one line) when the model of ``cfg`` cannot
    be evaluated in ``mode`` (``train.eval_mode``): ``layerwise`` and ``sampled`` need an
    arch of :data:`LAYERWISE_ARCHS` (a node model with a known receptive field) and, for a
    block stack, a conv of :data:`LAYERWISE_CONVS`; ``sampled`` also needs a norm of
    :data:`NODEWISE_NORMS` (a subgraph's statistics are not the graph's). ``full`` is
    always possible."""
    if mode == "full":
        return
    require(
        cfg.arch in LAYERWISE_ARCHS,
        "train.eval_mode",
        f"needs a node model of model.arch {', '.join(LAYERWISE_ARCHS)}, not {cfg.arch!r}",
        mode,
    )
    if cfg.arch != "deep":
        return
    require(
        mode != "layerwise" or cfg.conv in LAYERWISE_CONVS,
        "train.eval_mode",
        f"cannot chunk model.conv {cfg.conv!r} (its locality is not known); use sampled",
        mode,
    )
    require(
        mode != "sampled" or cfg.norm in NODEWISE_NORMS,
        "train.eval_mode",
        f"cannot sample with model.norm {cfg.norm!r}: its statistics are over the whole graph "
        "(layerwise keeps whole layers and is exact)",
        mode,
    )
