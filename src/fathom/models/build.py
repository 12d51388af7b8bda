"""Turn a :class:`~fathom.config.ModelConfig` into a model: the one place names become modules.

:func:`build_model` builds every model of every task: the node-level architectures of
:data:`ARCHS` (a :class:`~fathom.models.deep_gnn.DeepGNN` block stack, or a model that does
not fit the block pattern), and, when a task asks for a :class:`Head`, what the task puts on
the shared model: a graph classifier's readout and pooling (``graph``), a link model's edge
decoder (``link``), a DeepGCN's point-cloud fusion and prediction blocks (``points``).
Everything below this module takes explicit arguments, never a config object.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any

from torch import nn
from torch_geometric.nn import JumpingKnowledge

from fathom.config import ExperimentConfig, ModelConfig, flag, register_given_check, require
from fathom.errors import ConfigError
from fathom.models.deep_gnn import DeepGNN, GCNGroup, GroupBlock
from fathom.nn.activations import ACTIVATIONS, build_activation
from fathom.nn.block import GNNBlock
from fathom.nn.convs import CONVS, build_conv
from fathom.nn.dropouts import Dropout
from fathom.nn.inits import INITS, apply_init
from fathom.nn.norms import NORMS, build_norm
from fathom.nn.propagation import ADJ_NORMS
from fathom.nn.reversible import MEMORY_MODES, ReversibleGroups
from fathom.nn.skips import SKIPS, build_skip
from fathom.registry import Registry

__all__ = [
    "ARCHS",
    "ENCODERS",
    "HEADS",
    "HEAD_BUILDERS",
    "Head",
    "build_deep_gnn",
    "build_model",
    "check_model",
    "check_model_memory",
    "check_model_options",
    "estimate_activations",
    "estimate_parameters",
]

# Encoder / head kinds: kept as registries so validation and error messages list choices.
ENCODERS: Registry[str] = Registry("encoder")
ENCODERS.add("none", "none")
ENCODERS.add("linear", "linear")
HEADS: Registry[str] = Registry("head")
HEADS.add("conv", "conv")
HEADS.add("linear", "linear")
HEADS.add("none", "none")

ArchBuilder = Callable[[ModelConfig, int, int], nn.Module]
ARCHS: Registry[ArchBuilder] = Registry("arch")


@dataclass(frozen=True)
class Head:
    """What a task puts on the shared model, as plain values: ``kind`` names a builder of
    :data:`HEAD_BUILDERS` (``graph``, ``link``, ``points``) and ``options`` its keyword
    arguments (readout and pooling, decoder, k-NN graph …)."""

    kind: str
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, kind: str, **options: Any) -> Head:
        """``Head.of("graph", readout="sum", …)``."""
        return cls(kind, tuple(sorted(options.items())))


HeadBuilder = Callable[..., nn.Module]
HEAD_BUILDERS: Registry[HeadBuilder] = Registry("model head")


def build_model(
    cfg: ModelConfig,
    in_channels: int,
    out_channels: int,
    head: Head | None = None,
    *,
    num_nodes: int | None = None,
) -> nn.Module:
    """Build the model described by ``cfg`` for ``in_channels`` features and
    ``out_channels`` outputs: ``cfg.arch`` picks the node-level builder; a task's ``head``
    picks the builder that wraps it (graph readout, link decoder, point-cloud blocks).

    First, from the config alone, :func:`check_model_memory` refuses a model whose
    parameters (and, given ``num_nodes`` of a full-batch graph, activations) exceed the
    memory budget. Last, ``cfg.init`` re-initialises it (:func:`~fathom.nn.inits.apply_init`)."""
    check_model_memory(cfg, in_channels, out_channels, num_nodes=num_nodes)
    if head is None:
        model = ARCHS.get(cfg.arch)(cfg, in_channels, out_channels)
    else:
        model = HEAD_BUILDERS.get(head.kind)(cfg, in_channels, out_channels, **dict(head.options))
    apply_init(model, cfg.init)
    return model


_BYTES_PER_PARAMETER = 16
"""float32 weight, its gradient and Adam's two moments."""


def estimate_parameters(cfg: ModelConfig, in_channels: int, out_channels: int) -> int:
    """A lower bound on the parameters of the model ``cfg`` describes, from the config alone
    (nothing is built): for a block stack a ``hidden x hidden`` weight per block after the
    first (one when ``share_weights``; ``hidden^2 / groups`` per block when reversible), the input
    layer ``in x hidden`` and the output layer ``hidden x out`` (``depth x hidden x out``
    with ``jk: cat``); for the other architectures their input and output layers. Convs with
    several weight matrices (SAGE, GIN, Chebyshev) have more, so the bound never refuses a
    model that would fit."""
    h, depth = cfg.hidden, cfg.depth
    ends = in_channels * h + h * out_channels
    if cfg.arch == "sign":
        return (depth + 1) * in_channels * h + (depth + 1) * h * out_channels
    if cfg.arch != "deep":
        return ends
    num_blocks = depth - 1 if cfg.head == "conv" else depth
    blocks = max(num_blocks - (1 if cfg.encoder == "none" else 0), 0)  # hidden -> hidden
    if cfg.share_weights:
        blocks = min(blocks, 1)
    per_block = h * h // cfg.groups if cfg.memory == "reversible" else h * h
    if cfg.skip == "jk" and cfg.jk == "cat":
        ends = in_channels * h + depth * h * out_channels
    return blocks * per_block + ends


def estimate_activations(cfg: ModelConfig, num_nodes: int) -> int:
    """A lower bound on the float32 values a full-batch forward pass over ``num_nodes``
    nodes keeps for the backward pass: two ``num_nodes x hidden`` tensors per layer (conv
    output and activation) with ``memory: plain``; a few layers' worth with ``checkpoint``
    or ``reversible``, which recompute the rest."""
    layers = cfg.depth if cfg.memory == "plain" and cfg.arch == "deep" else 2
    return 2 * num_nodes * cfg.hidden * layers


def check_model_memory(
    cfg: ModelConfig, in_channels: int, out_channels: int, *, num_nodes: int | None = None
) -> None:
    """Refuse, before any layer is built, a model whose parameters with their gradients and
    Adam's state (16 bytes each, :func:`estimate_parameters`) — plus, given ``num_nodes``
    (a full-batch graph), its activations (:func:`estimate_activations`) — exceed
    :func:`fathom.limits.memory_budget`: a ``--depth 10000 --hidden 4096`` is a one-line
    :class:`ConfigError` with the estimate, not minutes of building then MemoryError."""
    from fathom.limits import check_bytes

    params = estimate_parameters(cfg, in_channels, out_channels)
    nbytes = params * _BYTES_PER_PARAMETER
    what = (
        f"a model of depth {cfg.depth:,} and width {cfg.hidden:,} ({in_channels:,} input "
        f"features, {out_channels:,} outputs: at least {params:,} parameters, with their "
        "gradients and Adam's state"
    )
    if num_nodes is not None:
        nbytes += 4 * estimate_activations(cfg, num_nodes)
        what += f", and its activations on {num_nodes:,} nodes"
    check_bytes(nbytes, what + ")", hint="; lower --depth or --hidden")


MAX_MODEL_BYTES = 1 << 40
"""The most a model's parameters with gradients and Adam's state may need for its config to
be valid at all (1 TiB), whatever the machine: what a config declares never depends on the
memory of the machine reading it (a store of runs must load anywhere). Whether a model fits
this machine is checked when it is built (:func:`check_model_memory`)."""


def _check_model_size(cfg: ModelConfig) -> None:
    """Refuse a config whose hidden-to-hidden weights alone need more than
    :data:`MAX_MODEL_BYTES` (``--depth 10000 --hidden 4096``, ``--hidden 1000000``)."""
    params = estimate_parameters(cfg, 0, 0)
    nbytes = params * _BYTES_PER_PARAMETER
    if nbytes > MAX_MODEL_BYTES:
        from fathom.limits import human_bytes

        raise ConfigError(
            f"model.depth (--depth) {cfg.depth:,} with model.hidden (--hidden) {cfg.hidden:,} "
            f"is at least {params:,} parameters, {human_bytes(nbytes)} with their gradients "
            f"and Adam's state (the limit is {human_bytes(MAX_MODEL_BYTES)}); lower --depth "
            "or --hidden"
        )


def check_model(cfg: ModelConfig, *, point_cloud: bool = False) -> None:
    """Registered names and block rules of a model (ConfigError naming the flag); a task
    calls it from its config check (``TaskSpec.check``). ``point_cloud``: a DeepGCN, whose
    conv, skip and memory rules :func:`~fathom.models.deepgcn.check_point_model` checks."""
    from fathom.nn.convs import check_aggr

    names = [
        ("model.arch", ARCHS, cfg.arch),
        ("model.conv", CONVS, cfg.conv),
        ("model.skip", SKIPS, cfg.skip),
        ("model.norm", NORMS, cfg.norm),
        ("model.act", ACTIVATIONS, cfg.act),
        ("model.encoder", ENCODERS, cfg.encoder),
        ("model.head", HEADS, cfg.head),
        ("model.adj_norm", ADJ_NORMS, cfg.adj_norm),
        ("model.init", INITS, cfg.init),
    ]
    for key, registry, value in names:
        if point_cloud and key in ("model.conv", "model.skip"):
            continue
        if value not in registry:
            raise ConfigError(
                f"unknown {flag(key)} {value!r}; choose one of: {', '.join(registry.names())}"
            )
    check_memory(cfg)
    _check_model_size(cfg)
    if point_cloud:
        return
    if cfg.aggr is not None:
        check_aggr(cfg.conv, cfg.aggr)
    require(
        not (cfg.post_norm and getattr(SKIPS.get(cfg.skip), "pre_activation", False)),
        "model.post_norm",
        f"cannot be combined with the pre-activation model.skip {cfg.skip!r}",
        cfg.post_norm,
    )
    if cfg.memory == "reversible":
        require(
            cfg.encoder == "linear",
            "model.encoder",
            "must be 'linear' for model.memory 'reversible' (a reversible block keeps its width)",
            cfg.encoder,
        )
        require(
            cfg.skip in ("none", "res"),
            "model.skip",
            "must be none or res for model.memory 'reversible' (the coupling is the residual)",
            cfg.skip,
        )
    require(
        cfg.arch not in ("gae", "vgae") or cfg.depth == 2,
        "model.depth",
        f"must be 2 for model.arch {cfg.arch!r} (Kipf & Welling's 2-layer GCN encoder; for a "
        "deeper encoder use model.arch deep)",
        cfg.depth,
    )


# options read by the conv factory that declares a parameter of that name (``gat(…, heads)``)
_CONV_OPTIONS = (
    "heads",
    "out_heads",
    "attn_dropout",
    "cheb_k",
    "msg_norm",
    "theta",
    "root_weight",
    "adj_norm",
)
# convs whose layers model.init re-draws (fathom.nn.inits.gcn_layers)
_INIT_CONVS = ("gcn", "gcn2", "gcn2-star", "gcn2-star-code")
# conv options IncepGCN reads too (every one of its layers is a GCN)
_INCEP_OPTIONS = ("root_weight", "adj_norm")
# options read by the norm factory that declares the parameter (``_pair(…, scale)``)
_NORM_OPTIONS = {"norm_scale": "scale", "norm_groups": "groups"}


def _takes(factory: Callable[..., Any], name: str) -> bool:
    return name in inspect.signature(factory).parameters


def check_model_options(cfg: ModelConfig, given: Collection[str] | None = None) -> None:
    """Refuse an option set away from its default that the chosen model never reads (it
    would be silently ignored); with ``given`` (dotted keys a user wrote), only those
    options are checked. Registered with :func:`~fathom.config.register_given_check`, so a
    config file, flag, override or sweep axis is checked, while configs rebuilt from a store
    or checkpoint (or built in code, like the Tree-NeighborsMatch zoo's, which sets GAT's
    ``heads`` on every model) load as they were stored.

    The options: attention heads with a conv without attention, ``cheb_k`` off ``cheb``,
    ``theta`` off GCNII, ``msg_norm`` off ``gen`` (conv options apply only to
    ``model.arch deep``, whose blocks are built from ``model.conv``), ``norm_scale`` /
    ``norm_groups`` off the norms that take them, ``jk`` without the ``jk`` skip,
    ``groups`` without ``model.memory reversible``, ``drop_edge`` off ``deep`` / ``incep``,
    ``drop_node`` off ``deep`` and ``init`` on a model without GCN or GCNII layers. Which
    conv or norm reads an option is read from its factory's signature, so a new operator
    needs no entry here."""
    defaults = ModelConfig()
    conv = CONVS.get(cfg.conv)

    def unset(name: str) -> bool:
        value = getattr(cfg, name)
        return value == getattr(defaults, name) or (
            given is not None and f"model.{name}" not in given
        )

    for name in _CONV_OPTIONS:
        value = getattr(cfg, name)
        if unset(name):
            continue
        if cfg.arch == "incep" and name in _INCEP_OPTIONS:
            continue
        if cfg.arch != "deep":
            archs = "'deep' (a block stack of model.conv)" + (
                " or 'incep'" if name in _INCEP_OPTIONS else ""
            )
            raise ConfigError(
                f"{flag(f'model.{name}')} applies to model.arch {archs}, not {cfg.arch!r}; "
                f"got {value!r}"
            )
        if not _takes(conv, name):
            users = [c for c in CONVS.names() if _takes(CONVS.get(c), name)]
            raise ConfigError(
                f"{flag(f'model.{name}')} applies to model.conv {', '.join(users)}, not "
                f"{cfg.conv!r}; got {value!r}"
            )
    if not unset("out_heads") and cfg.head != "conv":
        raise ConfigError(
            f"model.out_heads applies to a conv head (model.head conv), not {cfg.head!r}; "
            f"got {cfg.out_heads!r}"
        )
    norm = NORMS.get(cfg.norm)
    for name, param in _NORM_OPTIONS.items():
        value = getattr(cfg, name)
        if not unset(name) and not _takes(norm, param):
            users = [n for n in NORMS.names() if _takes(NORMS.get(n), param)]
            raise ConfigError(
                f"model.{name} applies to model.norm {', '.join(users)}, not {cfg.norm!r}; "
                f"got {value!r}"
            )
    require(
        unset("jk") or cfg.skip == "jk",
        "model.jk",
        f"applies to model.skip 'jk', not {cfg.skip!r}",
        cfg.jk,
    )
    skip = SKIPS.get(cfg.skip)
    if not unset("skip_project") and not _takes(skip, "project"):
        users = [s for s in SKIPS.names() if _takes(SKIPS.get(s), "project")]
        raise ConfigError(
            f"model.skip_project (--skip-project) applies to model.skip {', '.join(users)}, "
            f"not {cfg.skip!r}"
        )
    require(
        unset("groups") or cfg.memory == "reversible",
        "model.groups",
        f"applies to model.memory 'reversible', not {cfg.memory!r}",
        cfg.groups,
    )
    if not unset("skip_every"):
        users = [s for s in SKIPS.names() if _takes(SKIPS.get(s), "distance")]
        require(
            cfg.skip in users,
            "model.skip_every",
            f"applies to model.skip {', '.join(users)}, not {cfg.skip!r}",
            cfg.skip_every,
        )
        require(
            cfg.arch == "deep" and cfg.memory != "reversible",
            "model.skip_every",
            "applies to a block stack (model.arch deep) without model.memory reversible",
            cfg.skip_every,
        )
    require(
        unset("drop_edge") or cfg.arch in ("deep", "incep"),
        "model.drop_edge",
        f"applies to model.arch deep or incep, not {cfg.arch!r}",
        cfg.drop_edge,
    )
    require(
        unset("drop_node") or cfg.arch == "deep",
        "model.drop_node",
        f"applies to model.arch deep, not {cfg.arch!r}",
        cfg.drop_node,
    )
    if not unset("init"):
        require(
            (cfg.arch == "deep" and cfg.conv in _INIT_CONVS and cfg.memory != "reversible")
            or cfg.arch == "incep",
            "model.init",
            f"applies to GCN and GCNII layers: model.arch deep with model.conv "
            f"{', '.join(_INIT_CONVS)} (without model.memory reversible) or incep; not arch "
            f"{cfg.arch!r}, conv {cfg.conv!r}, memory {cfg.memory!r}",
            cfg.init,
        )
    if not unset("head_norm"):
        require(
            ((cfg.arch == "deep" and cfg.head != "none") or cfg.arch == "incep")
            and cfg.norm != "none",
            "model.head_norm",
            "applies to model.arch deep with a head (model.head conv or linear) or incep, "
            f"with a model.norm (--norm); not arch {cfg.arch!r}, head {cfg.head!r}, norm "
            f"{cfg.norm!r}",
            cfg.head_norm,
        )


def _check_given_options(cfg: ExperimentConfig, given: frozenset[str]) -> None:
    if cfg.task == "segmentation":  # a DeepGCN: conv and skip are the point model's own
        return
    check_model_options(cfg.model, given)


register_given_check(_check_given_options)


def check_memory(cfg: ModelConfig) -> None:
    """``model.memory`` is a known mode, on a block stack, with a width its groups divide."""
    require(
        cfg.memory in MEMORY_MODES,
        "model.memory",
        f"must be one of {', '.join(MEMORY_MODES)}",
        cfg.memory,
    )
    require(
        cfg.memory == "plain" or cfg.arch == "deep",
        "model.memory",
        f"needs model.arch 'deep' (a block stack), not {cfg.arch!r}",
        cfg.memory,
    )
    require(
        cfg.memory != "reversible" or cfg.hidden % cfg.groups == 0,
        "model.hidden",
        f"must be divisible by model.groups ({cfg.groups}) for model.memory 'reversible'",
        cfg.hidden,
    )


@ARCHS.register("deep")
def build_deep_gnn(cfg: ModelConfig, in_channels: int, out_channels: int) -> DeepGNN:
    """Build the :class:`DeepGNN` described by ``cfg``.

    ``cfg.depth`` counts message-passing layers: with a conv head there are ``depth - 1``
    hidden blocks and the conv head; with a linear head, ``depth`` blocks.

    ``cfg.memory`` ``checkpoint`` checkpoints every block; ``reversible`` makes every hidden
    block a grouped reversible coupling (RevGNN, Li et al. ICML 2021) of ``cfg.groups``
    :class:`~fathom.models.deep_gnn.GroupBlock` s of width ``hidden / groups`` (conv, norm,
    activation, dropout; no skip of their own: the coupling is the residual), see
    :func:`_reversible_blocks`.
    """
    memory = cfg.memory
    if memory not in MEMORY_MODES:
        raise ConfigError(
            f"model.memory (--memory) {memory!r} is unknown; choose one of: "
            f"{', '.join(MEMORY_MODES)}"
        )
    encoder_is_linear = ENCODERS.get(cfg.encoder) == "linear"
    head_is_conv = HEADS.get(cfg.head) == "conv"
    conv_options = {
        "heads": cfg.heads,
        "out_heads": cfg.out_heads,
        "attn_dropout": cfg.attn_dropout,
        "aggr": cfg.aggr,
        "alpha": cfg.alpha,
        "theta": cfg.theta,
        "cheb_k": cfg.cheb_k,
        "msg_norm": cfg.msg_norm,
        "root_weight": cfg.root_weight,
        "adj_norm": cfg.adj_norm,
    }
    norm_options = {"scale": cfg.norm_scale, "groups": cfg.norm_groups}
    input_dropout = cfg.dropout if cfg.input_dropout is None else cfg.input_dropout

    encoder = nn.Linear(in_channels, cfg.hidden) if encoder_is_linear else None
    width = cfg.hidden if encoder is not None else in_channels
    num_blocks = cfg.depth - 1 if head_is_conv else cfg.depth
    if memory == "reversible":
        if encoder is None:
            raise ConfigError(
                "model.memory (--memory) 'reversible' needs model.encoder 'linear': a "
                f"reversible block keeps its width, got model.encoder {cfg.encoder!r}"
            )
        blocks: list[nn.Module] = _reversible_blocks(cfg, num_blocks, conv_options, norm_options)
    else:
        if cfg.skip == "jk" and num_blocks < 1:
            raise ConfigError(
                "model.skip (--skip) 'jk' needs at least one hidden block: raise model.depth"
            )
        # skip_every 0: one group spanning every hidden block (all blocks after the input layer)
        every = cfg.skip_every or num_blocks - (0 if encoder is not None else 1)
        history_widths = [width]
        shared: dict[int, nn.Module] = {}  # input width -> the conv shared by blocks of that width
        blocks = []
        for layer in range(1, num_blocks + 1):
            skip = build_skip(
                _block_skip(cfg.skip, every, layer, encoder is not None),
                cfg.hidden,
                layer=layer,
                history_widths=list(history_widths),
                alpha=cfg.alpha,
                project=cfg.skip_project,
                distance=max(every, 1),
            )
            if cfg.share_weights and width in shared:
                conv = shared[width]
            else:
                conv = build_conv(cfg.conv, width, cfg.hidden, layer=layer, **conv_options)
                if cfg.share_weights and getattr(conv, "needs_x0", False):
                    raise ConfigError(
                        f"model.share_weights cannot be used with model.conv {cfg.conv!r}: its "
                        "layers differ by a depth-dependent constant"
                    )
                if cfg.share_weights:
                    shared[width] = conv
            pre_activation = getattr(skip, "pre_activation", False)
            blocks.append(
                GNNBlock(
                    conv,
                    build_norm(cfg.norm, width if pre_activation else cfg.hidden, **norm_options),
                    build_activation(cfg.act),
                    skip,
                    dropout=input_dropout if layer == 1 and encoder is None else cfg.dropout,
                    post_norm=cfg.post_norm,
                )
            )
            width = cfg.hidden
            history_widths.append(width)

    jk = None
    if cfg.skip == "jk":
        jk = JumpingKnowledge(cfg.jk, channels=cfg.hidden, num_layers=num_blocks)
        width = cfg.hidden * num_blocks if cfg.jk == "cat" else cfg.hidden
    if head_is_conv:
        head_dropout = input_dropout if num_blocks == 0 and encoder is None else cfg.dropout
        head = build_conv(
            cfg.conv, width, out_channels, final=True, layer=num_blocks + 1, **conv_options
        )
    elif HEADS.get(cfg.head) == "none":
        head_dropout = cfg.dropout
        head = nn.Identity()
    else:
        head_dropout = cfg.dropout
        head = nn.Linear(width, out_channels)
    head_norm = None
    if cfg.head_norm and HEADS.get(cfg.head) != "none":
        head_norm = build_norm(cfg.norm, out_channels, **norm_options)
    return DeepGNN(
        blocks,
        head,
        encoder=encoder,
        dropout=head_dropout,
        input_dropout=input_dropout,
        head_is_conv=head_is_conv,
        encoder_act=build_activation(cfg.act) if encoder is not None else None,
        jk=jk,
        drop_edge=cfg.drop_edge,
        drop_node=cfg.drop_node,
        memory=memory,
        head_norm=head_norm,
    )


def _block_skip(skip: str, every: int, layer: int, has_encoder: bool) -> str:
    """The skip of block ``layer`` when residual skips span ``every`` blocks
    (``model.skip_every``): ``skip`` at the last block of each group of ``every`` blocks
    after the input layer (the first block without an encoder, the encoder with one),
    ``none`` elsewhere; ``skip`` itself for every block when ``every`` is 1, ``none`` for
    every block when it is 0 (no hidden block to span)."""
    if every == 1:
        return skip
    if every < 1:
        return "none"
    position = layer - (0 if has_encoder else 1)  # blocks since the input layer's output
    return skip if position >= every and position % every == 0 else "none"


def _reversible_blocks(
    cfg: ModelConfig,
    num_blocks: int,
    conv_options: dict[str, Any],
    norm_options: dict[str, Any],
) -> list[nn.Module]:
    """``num_blocks`` :class:`~fathom.nn.reversible.ReversibleGroups` couplings of
    ``cfg.groups`` :class:`~fathom.models.deep_gnn.GroupBlock` s, each mapping
    ``hidden / groups`` channels to ``hidden / groups``:
    ``F_i(x) = act(norm(conv(dropout(x))))``. A GCN with batch norm or none (and unshared
    weights) gets the same function as one :class:`~fathom.models.deep_gnn.GCNGroup` per
    group.

    Raises:
        ConfigError: ``cfg.skip`` other than ``none``/``res`` (the coupling is the residual),
            ``cfg.hidden`` not divisible by ``cfg.groups``, fewer than 2 groups, or a conv
            that does not map a width to itself (GCNII's needs the initial representation).
    """
    if cfg.skip not in ("none", "res"):
        raise ConfigError(
            f"model.skip (--skip) {cfg.skip!r} cannot be combined with model.memory "
            "'reversible': the reversible coupling is itself the residual; use none or res"
        )
    if cfg.groups < 2:
        raise ConfigError(
            f"model.groups must be >= 2 for model.memory 'reversible', got {cfg.groups}"
        )
    if cfg.hidden % cfg.groups:
        raise ConfigError(
            f"model.hidden (--hidden) {cfg.hidden} must be divisible by model.groups "
            f"({cfg.groups}) for model.memory 'reversible'"
        )
    width = cfg.hidden // cfg.groups
    plain_gcn = cfg.conv == "gcn" and not cfg.root_weight and cfg.adj_norm == "sym"
    if plain_gcn and cfg.norm in ("batch", "none") and not cfg.share_weights:
        # the same function as the GroupBlocks below, as one module per group (a fifth of
        # their Python objects: what grows with depth once activations do not)
        act, dropout = build_activation(cfg.act), Dropout(cfg.dropout)  # stateless: shared
        return [
            ReversibleGroups(
                [
                    GCNGroup(width, norm=cfg.norm == "batch", act=act, dropout=dropout)
                    for _ in range(cfg.groups)
                ]
            )
            for _ in range(num_blocks)
        ]
    shared: nn.Module | None = None
    blocks: list[nn.Module] = []
    for layer in range(1, num_blocks + 1):
        fns = []
        for _ in range(cfg.groups):
            if cfg.share_weights and shared is not None:
                conv = shared
            else:
                conv = build_conv(cfg.conv, width, width, layer=layer, **conv_options)
                shared = conv
            if getattr(conv, "needs_x0", False):
                raise ConfigError(
                    f"model.conv (--conv) {cfg.conv!r} cannot be combined with model.memory "
                    "'reversible': it needs the initial representation, which a channel group "
                    "does not have"
                )
            skip = build_skip("none", width, layer=layer, history_widths=[width] * layer)
            fns.append(
                GroupBlock(
                    conv,
                    build_norm(cfg.norm, width, **norm_options),
                    build_activation(cfg.act),
                    skip,
                    dropout=cfg.dropout,
                )
            )
        blocks.append(ReversibleGroups(fns))
    return blocks


@ARCHS.register("sgc")
def _sgc(cfg: ModelConfig, in_channels: int, out_channels: int) -> nn.Module:
    """SGC: a linear classifier on ``S^K X`` (``K = depth``)."""
    from fathom.models.decoupled import SGC

    return SGC(in_channels, out_channels, K=cfg.depth)


@ARCHS.register("gfnn")
def _gfnn(cfg: ModelConfig, in_channels: int, out_channels: int) -> nn.Module:
    """gfNN: a 2-layer MLP on ``S^K X`` (``K = depth``)."""
    from fathom.models.decoupled import GfNN

    return GfNN(in_channels, cfg.hidden, out_channels, K=cfg.depth, dropout=cfg.dropout)


@ARCHS.register("appnp")
def _appnp(cfg: ModelConfig, in_channels: int, out_channels: int) -> nn.Module:
    """APPNP: a 2-layer MLP, then ``K = depth`` personalised-PageRank steps with ``alpha``."""
    from fathom.models.decoupled import APPNP

    return APPNP(
        in_channels, cfg.hidden, out_channels, K=cfg.depth, alpha=cfg.alpha, dropout=cfg.dropout
    )


@ARCHS.register("sign")
def _sign(cfg: ModelConfig, in_channels: int, out_channels: int) -> nn.Module:
    """SIGN: one linear branch per hop ``S^k X``, k = 0…depth, concatenated."""
    from fathom.models.decoupled import SIGN

    return SIGN(in_channels, cfg.hidden, out_channels, K=cfg.depth, dropout=cfg.dropout)


@ARCHS.register("incep")
def _incep(cfg: ModelConfig, in_channels: int, out_channels: int) -> nn.Module:
    """IncepGCN (DropEdge paper): parallel GCN branches of depth 1…depth-2, concatenated;
    ``root_weight``, ``adj_norm`` and ``norm`` apply to every GCN layer (DropEdge's
    ``--withloop``, ``--normalization``, ``--withbn``), ``drop_edge`` to its graph."""
    from fathom.models.inception import IncepGCN

    if cfg.depth < 2:
        raise ConfigError(f"model.depth (--depth) must be >= 2 for incep, got {cfg.depth}")
    return IncepGCN(
        in_channels,
        cfg.hidden,
        out_channels,
        depth=cfg.depth,
        dropout=cfg.dropout,
        root_weight=cfg.root_weight,
        adj_norm=cfg.adj_norm,
        norm=cfg.norm,
        head_norm=cfg.head_norm,
        drop_edge=cfg.drop_edge,
    )


@ARCHS.register("dgi")
def _dgi(cfg: ModelConfig, in_channels: int, out_channels: int) -> nn.Module:
    """Deep Graph Infomax encoder (one GCN layer + PReLU), trained self-supervised."""
    from fathom.models.dgi import DGI

    return DGI(in_channels, cfg.hidden)


@ARCHS.register("gae")
def _gae(cfg: ModelConfig, in_channels: int, out_channels: int) -> nn.Module:
    """GAE encoder (Kipf & Welling 2016): 2-layer GCN ``in -> hidden -> out`` (the latent)."""
    from fathom.models.autoencoder import GAEEncoder

    return GAEEncoder(in_channels, cfg.hidden, out_channels, dropout=cfg.dropout)


@ARCHS.register("vgae")
def _vgae(cfg: ModelConfig, in_channels: int, out_channels: int) -> nn.Module:
    """VGAE encoder (Kipf & Welling 2016): shared GCN layer, then GCN layers for mu and
    log sigma; samples in training, returns mu in eval."""
    from fathom.models.autoencoder import VGAEEncoder

    return VGAEEncoder(in_channels, cfg.hidden, out_channels, dropout=cfg.dropout)


# --------------------------------------------------------------------------- task heads


@HEAD_BUILDERS.register("graph")
def _graph_classifier(
    cfg: ModelConfig,
    in_channels: int,
    num_classes: int,
    *,
    readout: str = "sum",
    readout_layers: str = "last",
    pool: str = "none",
    pool_ratio: float = 0.5,
    pool_every: int = 1,
) -> nn.Module:
    """A :class:`~fathom.models.graph_classifier.GraphClassifier`: the node stack of ``cfg``
    (:func:`build_deep_gnn`), per-graph ``readout`` of the last layer or of every layer
    (``readout_layers``), optional hierarchical ``pool`` every ``pool_every`` blocks, dropout
    ``cfg.dropout`` and one ``Linear`` classifier.

    ``cfg.depth`` counts the message-passing blocks (``cfg.head`` is ignored: the classifier
    is the head). For the GIN paper's model: ``conv=gin``, ``norm=batch``, ``depth=4`` (+ the
    input "layer"), ``readout=sum``, ``readout_layers=all``.

    Raises:
        ConfigError: ``cfg.arch`` is not ``deep``; ``readout_layers=all`` or a ``jk`` skip
            with pooling; fewer blocks than ``pool_every``.
    """
    from fathom.models.graph_classifier import GraphClassifier, GraphReadout, build_pool

    if cfg.arch != "deep":
        raise ConfigError(
            f"model.arch (--arch) must be 'deep' for task 'graph' (a block stack to read "
            f"out), got {cfg.arch!r}"
        )
    gnn = build_deep_gnn(replace(cfg, head="linear"), in_channels, cfg.hidden)
    gnn.head = nn.Identity()  # the graph classifier is the head
    gnn.head_norm = None
    depth = len(gnn.blocks)
    width0 = cfg.hidden if gnn.encoder is not None else in_channels
    pools = None
    if pool != "none":
        if readout_layers == "all":
            raise ConfigError(
                "graph.readout_layers 'all' cannot be combined with graph.pool (--pool) "
                f"{pool!r}: pooled levels are summed; use readout_layers 'last'"
            )
        if gnn.jk is not None:
            raise ConfigError(
                f"model.skip (--skip) 'jk' cannot be combined with graph.pool (--pool) {pool!r}"
            )
        if depth < pool_every:
            raise ConfigError(
                f"graph.pool_every must be <= model.depth ({depth}) to pool at all, got "
                f"{pool_every}"
            )
        num_pools = depth // pool_every
        pools = [build_pool(pool, cfg.hidden, pool_ratio) for _ in range(num_pools)]
        levels = num_pools + int(depth % pool_every != 0)
        readouts = [GraphReadout(readout, cfg.hidden) for _ in range(levels)]
        width = cfg.hidden
    elif readout_layers == "all":
        widths = [width0] + [cfg.hidden] * depth
        readouts = [GraphReadout(readout, w) for w in widths]
        width = sum(widths)
    else:
        width = cfg.hidden
        if gnn.jk is not None and cfg.jk == "cat":
            width = cfg.hidden * depth
        readouts = [GraphReadout(readout, width)]
    return GraphClassifier(
        gnn,
        readouts,
        nn.Linear(width, num_classes),
        readout_layers=readout_layers,
        pools=pools,
        pool_every=pool_every,
        dropout=cfg.dropout,
    )


@HEAD_BUILDERS.register("link")
def _link_model(
    cfg: ModelConfig,
    in_channels: int,
    embedding_dim: int,
    *,
    decoder: str = "dot",
    reconstruct_features: bool = False,
) -> nn.Module:
    """A :class:`~fathom.models.link.LinkModel`: the node model of ``cfg`` as encoder
    (``in_channels -> embedding_dim``), the edge ``decoder``, and with
    ``reconstruct_features`` a linear feature decoder ``embedding_dim -> in_channels``."""
    from fathom.models.link import LinkModel, build_decoder

    encoder = build_model(cfg, in_channels, embedding_dim)
    feature_decoder = nn.Linear(embedding_dim, in_channels) if reconstruct_features else None
    return LinkModel(encoder, build_decoder(decoder, embedding_dim), feature_decoder)


@HEAD_BUILDERS.register("points")
def _deepgcn(
    cfg: ModelConfig,
    in_channels: int,
    num_classes: int,
    *,
    k: int = 16,
    dilation: str = "linear",
    stochastic: bool = True,
    epsilon: float = 0.2,
    fusion_channels: int = 1024,
    order: str = "act-norm",
) -> nn.Module:
    """The :class:`~fathom.models.deepgcn.DeepGCN` of ``cfg`` over dynamic dilated k-NN
    graphs: ``cfg.conv`` is the point conv, ``cfg.depth`` the number of GCN layers (head +
    backbone), ``cfg.hidden`` the channels, ``cfg.skip`` the backbone (``none``: PlainGCN,
    ``res``: ResGCN, ``dense``: DenseGCN), ``cfg.norm`` / ``cfg.act``, ``cfg.dropout``
    (prediction block), ``cfg.memory`` / ``cfg.groups``; ``k``, ``dilation``,
    ``stochastic``, ``epsilon``, ``fusion_channels`` and ``order`` as in
    :class:`~fathom.models.deepgcn.DeepGCN`.

    Raises:
        ConfigError: a conv outside :data:`~fathom.nn.point_convs.POINT_CONVS`, a skip other
            than none / res / dense, or a memory mode the backbone cannot take.
    """
    from fathom.models.deepgcn import DeepGCN, check_point_model, point_backbone

    check_point_model(cfg.conv, cfg.skip, cfg.memory)
    return DeepGCN(
        in_channels,
        num_classes,
        conv=cfg.conv,
        hidden=cfg.hidden,
        depth=cfg.depth,
        block=point_backbone(cfg.skip),
        k=k,
        dilation=dilation,
        stochastic=stochastic,
        epsilon=epsilon,
        norm=cfg.norm,
        act=cfg.act,
        dropout=cfg.dropout,
        fusion_channels=fusion_channels,
        memory=cfg.memory,
        groups=cfg.groups,
        order=order,
    )


@HEAD_BUILDERS.register("root")
def _root_classifier(
    cfg: ModelConfig,
    num_symbols: int,
    num_classes: int,
    *,
    columns: int = 2,
) -> nn.Module:
    """A :class:`~fathom.models.root_classifier.RootClassifier`: ``columns`` embeddings of
    ``num_symbols`` integer symbols summed into ``cfg.hidden`` channels, the block stack of
    ``cfg`` (``cfg.depth`` blocks, no head of its own), and a bias-free ``Linear`` on each
    graph's root node (Alon & Yahav's Tree-NeighborsMatch model)."""
    from fathom.models.root_classifier import RootClassifier

    embeddings = [nn.Embedding(num_symbols, cfg.hidden) for _ in range(columns)]
    gnn = build_deep_gnn(replace(cfg, encoder="none", head="none"), cfg.hidden, cfg.hidden)
    return RootClassifier(embeddings, gnn, nn.Linear(cfg.hidden, num_classes, bias=False))
