"""The deep GNN every fathom block model is built from."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GCNConv
from torch_geometric.utils import dropout_edge

from fathom.nn.adjacency import gcn_adjacency, propagate
from fathom.nn.block import GNNBlock
from fathom.nn.dropouts import Dropout, dropout_mask
from fathom.nn.layerwise import ChunkedGraph, apply_conv
from fathom.nn.modes import FastModeSwitch
from fathom.nn.reversible import MEMORY_MODES, ReversibleGroups, checkpoint_call
from fathom.nn.skips import (
    SKIPS,
    InactiveSkipWarning,
    InitialResidual,
    JumpingKnowledgeSkip,
    NoSkip,
    Residual,
    Skip,
)
from fathom.nn.trim import ROW_WISE_NORMS, TRIMMABLE_CONVS, HopGraph

__all__ = ["DeepGNN", "GCNGroup", "GroupBlock", "drop_nodes"]


def _width(module: nn.Module | None, side: str) -> int | None:
    """``in_channels`` / ``out_channels`` of a conv (``channels`` for GCNII, the features
    of a ``Linear``), or ``None``."""
    if module is None:
        return None
    for attr in (f"{side}_channels", "channels", f"{side}_features"):
        value = getattr(module, attr, None)
        if isinstance(value, int):
            return value
    return None


def _join(items: Sequence[int]) -> str:
    """``1``, ``1 and 2``, ``1, 2 and 3``."""
    text = [str(i) for i in items]
    return text[0] if len(text) == 1 else f"{', '.join(text[:-1])} and {text[-1]}"


def drop_nodes(x: Tensor, p: float) -> Tensor:
    """DropNode: zero whole rows of ``x`` with probability ``p``, scale survivors by
    ``1 / (1 - p)`` (as in GRAND, Feng et al. NeurIPS 2020, and the Bag-of-Tricks benchmark).

    Shapes:
        x: ``[num_nodes, channels]`` -> same.
    """
    mask = dropout_mask(torch.Size([x.size(0), 1]), p, dtype=x.dtype, device=x.device)
    return x * mask


class GroupBlock(GNNBlock):
    """A :class:`~fathom.nn.block.GNNBlock` used as one function :math:`F_i` of a reversible
    coupling (:class:`~fathom.nn.reversible.ReversibleGroups`): callable as
    ``block(x, edge_index)``, as the coupling calls it. Its skip should be
    :class:`~fathom.nn.skips.NoSkip`: the coupling itself is the residual.

    Args: as :class:`~fathom.nn.block.GNNBlock`.

    Shapes:
        x: ``[num_nodes, channels / groups]`` -> same.
    """

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor | ChunkedGraph,
        history: list[Tensor] | None = None,
    ) -> Tensor:
        return super().forward(x, edge_index, [x] if history is None else history)


class GCNGroup(nn.Module):
    r"""The :class:`GroupBlock` of a GCN with batch norm (or none) as one module, for the
    reversible blocks of very deep models:

    .. math::
        F(\mathbf{X}) = \mathrm{act}\big(\mathrm{BN}(\hat{\mathbf{P}}\,
            \mathrm{dropout}(\mathbf{X})\,\mathbf{W}^\top + \mathbf{b})\big)

    with :math:`\hat{\mathbf{P}}` the normalised adjacency with self-loops
    (:func:`~fathom.nn.adjacency.gcn_adjacency`, shared by every layer). It computes exactly
    what ``GroupBlock(CachedGCNConv, BatchNorm1d, act, NoSkip, dropout)`` computes (same
    initialisation: Glorot weight, zero bias, unit BN scale), but its four parameters are
    views of one flat parameter :attr:`flat` (see :meth:`named_views`), its BN buffers
    direct attributes, and ``act`` / ``dropout`` modules that may be shared by every group
    of a model (they hold no state). Once activations do not grow with depth, what does is
    per layer: objects and small tensors count. Measured on a whole 1000-layer reversible GCN
    (``benchmarks/memory_depth.py``, two groups per layer, together with per-group seeds
    instead of saved generator states in :class:`~fathom.nn.reversible.ReversibleGroups`),
    peak memory grew by 152 KiB per layer with ``GroupBlock`` s (five modules and four
    parameters, each with a gradient and two Adam moments, per group) and by 64 KiB with
    ``GCNGroup`` s.

    Args:
        channels: the group's width (in and out).
        norm: BatchNorm (``True``) or none.
        act: the activation module.
        dropout: the dropout module applied to the input.
        eps: BatchNorm's epsilon.
        momentum: BatchNorm's running-statistics momentum.

    Shapes:
        x: ``[num_nodes, channels]``, edge_index: ``[2, num_edges]`` -> same as ``x``.
    """

    def __init__(
        self,
        channels: int,
        *,
        norm: bool,
        act: nn.Module,
        dropout: nn.Module,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        self.channels, self.has_norm, self.eps, self.momentum = channels, norm, eps, momentum
        c = channels
        self.flat = nn.Parameter(torch.empty(c * c + (3 if norm else 1) * c))
        if norm:
            self.register_buffer("running_mean", torch.zeros(c))
            self.register_buffer("running_var", torch.ones(c))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.act = act
        self.dropout = dropout
        self.reset_parameters()

    def named_views(self, flat: Tensor) -> dict[str, Tensor]:
        """``weight`` ``[C, C]``, ``bias``, and with batch norm ``norm_weight`` and
        ``norm_bias`` ``[C]``: views of ``flat``, shaped like :attr:`flat` (the parameters
        themselves, or their gradient)."""
        c = self.channels
        views = {"weight": flat[: c * c].view(c, c), "bias": flat[c * c : c * c + c]}
        if self.has_norm:
            views["norm_weight"] = flat[c * c + c : c * c + 2 * c]
            views["norm_bias"] = flat[c * c + 2 * c :]
        return views

    @property
    def weight(self) -> Tensor:
        r"""The GCN weight :math:`\mathbf{W}`, ``[C, C]`` (a view of :attr:`flat`)."""
        return self.named_views(self.flat)["weight"]

    def reset_parameters(self) -> None:
        views = self.named_views(self.flat.data)
        nn.init.xavier_uniform_(views["weight"])  # PyG's Linear 'glorot'
        nn.init.zeros_(views["bias"])
        if self.has_norm:
            nn.init.ones_(views["norm_weight"])
            nn.init.zeros_(views["norm_bias"])
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def forward(self, x: Tensor, edge_index: Tensor | ChunkedGraph) -> Tensor:
        p = self.named_views(self.flat)
        z = self.dropout(x) @ p["weight"].t()
        if isinstance(edge_index, ChunkedGraph):  # layer-wise inference
            h = edge_index.propagate_gcn(z) + p["bias"]
        else:
            adj = gcn_adjacency(edge_index, x.size(0), dtype=x.dtype, device=x.device)
            h = propagate(adj, z) + p["bias"]
        if self.has_norm:
            if self.training:
                self.num_batches_tracked.add_(1)
            h = F.batch_norm(
                h,
                self.running_mean,
                self.running_var,
                p["norm_weight"],
                p["norm_bias"],
                self.training,
                self.momentum,
                self.eps,
            )
        return self.act(h)

    def extra_repr(self) -> str:
        return f"{self.channels}, norm={'batch' if self.has_norm else 'none'}"


class DeepGNN(FastModeSwitch):
    """``encoder -> blocks -> [jumping knowledge] -> head``: a stack of
    :class:`~fathom.nn.block.GNNBlock` between an optional input encoder and an output head.

    With ``encoder=None`` the first block's conv maps input features to the hidden width, and
    with a conv ``head`` the last message-passing layer maps to the output classes, so a
    2-layer GCN is exactly Kipf & Welling's model (and PyG's ``GCN(in, hidden, 2, out)``).

    In training mode the input graph is thinned by DropEdge (Rong et al., ICLR 2020: a new
    random ``drop_edge`` fraction of edges removed at every forward pass, i.e. every epoch)
    and input rows by DropNode; evaluation uses the full graph.

    ``memory`` picks how the blocks' activations are kept for the backward pass (see
    :mod:`fathom.nn.reversible`): ``plain`` stores them; ``checkpoint`` recomputes each
    block's internals from its input (same gradients, one stored ``[N, C]`` tensor per block);
    ``reversible`` takes blocks that are :class:`~fathom.nn.reversible.ReversibleGroups`
    couplings (RevGNN, Li et al. ICML 2021), called as ``block(x, edge_index)``, whose inputs
    are reconstructed from their outputs, so activation memory does not depend on depth.
    :meth:`node_states` always computes ordinarily (every state is a real, kept tensor).

    Skips that cannot act: a residual joins two representations of the same width, so
    around a layer that changes width (the first conv of a model without an input encoder)
    it is dropped (:class:`~fathom.nn.skips.Residual`, unless built with ``project=True``).
    :attr:`inactive_skips` lists those layers and :meth:`skip_status` describes every
    layer; when *no* layer's skip can act (a depth-2 ResGCN: layer 1 changes width and the
    conv head has no skip) the model is the plain one, and building it warns with an
    :class:`~fathom.nn.skips.InactiveSkipWarning` (message: :attr:`skip_note`).

    Layer-wise inference (:func:`fathom.models.inference.layerwise_inference`): in eval mode
    ``edge_index`` may be a :class:`~fathom.nn.layerwise.ChunkedGraph`; every conv (blocks,
    reversible groups, head) then runs over the whole graph by chunks of target nodes, the
    rest on whole layers, and only the states a skip reads are kept (``x_0`` and the last
    one; every one for ``dense`` skips and jumping knowledge).

    Args:
        blocks: the hidden layers, applied in order: :class:`~fathom.nn.block.GNNBlock` s
            called as ``block(x, edge_index, history)``, or with ``memory="reversible"``
            :class:`~fathom.nn.reversible.ReversibleGroups` called as ``block(x, edge_index)``.
        head: maps the last hidden representation to outputs; either a message-passing
            module called as ``head(x, edge_index)`` (``head_is_conv=True``) or a plain
            module called as ``head(x)``.
        encoder: optional module applied to the input features first (``encoder(x)``).
        dropout: dropout probability on the head's input.
        input_dropout: dropout probability on the encoder's input (with an encoder; without
            one, the first block's own dropout plays this role).
        head_is_conv: whether ``head`` takes ``edge_index``.
        encoder_act: activation after the encoder.
        jk: jumping-knowledge module combining every block's output (Xu et al., ICML 2018),
            called as ``jk([x_1, …, x_L])``; ``None``: the head reads the last block.
        drop_edge: DropEdge probability.
        drop_node: DropNode probability.
        memory: ``plain``, ``checkpoint`` or ``reversible`` (see above).
        head_norm: optional normalisation of the head's output (DropEdge's ``withbn``
            batch-normalises its output layer too).

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, out_channels]``.
    """

    def __init__(
        self,
        blocks: Sequence[nn.Module],
        head: nn.Module,
        *,
        encoder: nn.Module | None = None,
        dropout: float = 0.0,
        input_dropout: float | None = None,
        head_is_conv: bool = True,
        encoder_act: nn.Module | None = None,
        jk: nn.Module | None = None,
        drop_edge: float = 0.0,
        drop_node: float = 0.0,
        memory: str = "plain",
        head_norm: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if memory not in MEMORY_MODES:
            raise ValueError(f"memory must be one of {', '.join(MEMORY_MODES)}, got {memory!r}")
        if memory == "reversible":
            if jk is not None:
                raise ValueError("memory 'reversible' cannot be combined with jumping knowledge")
            if not all(isinstance(b, ReversibleGroups) for b in blocks):
                raise ValueError("memory 'reversible' needs ReversibleGroups blocks")
        self.memory = memory
        self.encoder = encoder
        self.encoder_act = encoder_act if encoder_act is not None else nn.Identity()
        self.blocks = nn.ModuleList(blocks)
        self.jk = jk
        self.head = head
        self.head_is_conv = head_is_conv
        self.head_norm = head_norm
        self.dropout = Dropout(dropout)
        self.input_dropout = Dropout(dropout if input_dropout is None else input_dropout)
        self.drop_edge = drop_edge
        self.drop_node = drop_node
        self.active_blocks: int | None = None
        """Use only the first ``active_blocks`` blocks (greedy layer-wise training)."""
        note = self.skip_note
        if note is not None:
            warnings.warn(note, InactiveSkipWarning, stacklevel=2)

    def _block_skips(self) -> list[tuple[int, Skip]]:
        """``(layer, skip)`` of every block with a skip that combines representations
        (not plain stacking or jumping knowledge, which have no shortcut to drop)."""
        out = []
        for layer, block in enumerate(self.blocks, start=1):
            skip = getattr(block, "skip", None)
            if isinstance(skip, Skip) and not isinstance(skip, NoSkip | JumpingKnowledgeSkip):
                out.append((layer, skip))
        return out

    @property
    def inactive_skips(self) -> list[int]:
        """1-based layers whose skip cannot act (its shortcut's width differs from the
        layer's output and it is not projected): there the layer is a plain layer."""
        return [layer for layer, skip in self._block_skips() if not skip.active]

    def skip_status(self) -> list[dict[str, Any]]:
        """One record per message-passing layer: ``layer``, ``skip`` (registered name;
        ``None`` for a layer without one, such as the conv head), ``active``, ``projected``,
        ``in_width`` / ``out_width`` (``None`` where not known) and ``source_width`` (width
        of what the shortcut carries)."""
        names = {SKIPS.get(n): n for n in SKIPS.names()}
        records: list[dict[str, Any]] = []
        for layer, block in enumerate(self.blocks, start=1):
            skip = getattr(block, "skip", None)
            conv = getattr(block, "conv", None)
            has = isinstance(skip, Skip) and not isinstance(skip, NoSkip)
            records.append(
                {
                    "layer": layer,
                    "skip": names.get(type(skip)) if has else None,
                    "active": bool(has and skip.active),
                    "projected": bool(has and skip.projected),
                    "in_width": _width(conv, "in"),
                    "out_width": _width(conv, "out"),
                    "source_width": skip.source_width if has else None,
                }
            )
        if self.head_is_conv:
            records.append(
                {
                    "layer": len(self.blocks) + 1,
                    "skip": None,
                    "active": False,
                    "projected": False,
                    "in_width": _width(self.head, "in"),
                    "out_width": _width(self.head, "out"),
                    "source_width": None,
                }
            )
        return records

    @property
    def skip_note(self) -> str | None:
        """One line saying that the model's skip cannot act in any layer, or ``None`` (no
        such skip, or at least one layer where it acts)."""
        skips = self._block_skips()
        if not skips or any(skip.active for _, skip in skips):
            return None
        names = {SKIPS.get(n): n for n in SKIPS.names()}
        name = names.get(type(skips[0][1]), type(skips[0][1]).__name__)
        status = {r["layer"]: r for r in self.skip_status()}
        parts = []
        for layer, skip in skips:
            out = status[layer]["out_width"] or skip.channels
            parts.append(f"{skip.source_width}→{out}")
        layers = [layer for layer, _ in skips]
        where = f"layer{'s' if len(layers) > 1 else ''} {_join(layers)}"
        line = f"{name} skip inactive at {where} (width {', '.join(parts)})"
        if self.head_is_conv:
            head = status[len(self.blocks) + 1]
            widths = (
                f", {head['in_width']}→{head['out_width']}"
                if head["in_width"] is not None and head["out_width"] is not None
                else ""
            )
            line += f" and the conv head (layer {head['layer']}{widths}) has none"
        depth = self.num_layers
        convs = [getattr(block, "conv", None) for block in self.blocks]
        if name == "res" and all(isinstance(c, GCNConv) for c in convs):
            line += f": a depth-{depth} ResGCN is a plain GCN"
        else:
            line += f": this depth-{depth} model is the same model without skips"
        if all(isinstance(skip, InitialResidual) for _, skip in skips):
            line += (
                "; x_0 needs the hidden width: use model.encoder linear or "
                "model.skip_project (--skip-project)"
            )
        else:
            line += (
                f"; use depth ≥ {depth + 1}, model.encoder linear or model.skip_project "
                "(--skip-project)"
            )
        return line

    @property
    def num_layers(self) -> int:
        """Number of message-passing layers (blocks, plus the head when it is a conv)."""
        return len(self.blocks) + int(self.head_is_conv)

    def input_state(
        self, x: Tensor, edge_index: Tensor | ChunkedGraph
    ) -> tuple[Tensor, Tensor | ChunkedGraph]:
        """The representation entering the first block, and the graph the blocks see.

        In training mode DropEdge thins ``edge_index`` and DropNode zeroes rows of ``x``;
        then the encoder (if any) and its activation are applied.

        Shapes:
            x: ``[num_nodes, in_channels]`` -> ``[num_nodes, width_0]``;
            edge_index: ``[2, num_edges]`` -> ``[2, num_kept_edges]``.
        """
        x, edge_index, _ = self._input(x, edge_index)
        return x, edge_index

    def _input(
        self, x: Tensor, edge_index: Tensor | ChunkedGraph
    ) -> tuple[Tensor, Tensor | ChunkedGraph, Tensor | None]:
        """:meth:`input_state` and the mask of the edges DropEdge kept (``None``: none drawn)."""
        edge_mask = None
        if self.training and self.drop_edge > 0:
            edge_index, edge_mask = dropout_edge(edge_index, p=self.drop_edge)
        if self.training and self.drop_node > 0:
            x = drop_nodes(x, self.drop_node)
        if self.encoder is not None:
            x = self.encoder_act(self.encoder(self.input_dropout(x)))
        return x, edge_index, edge_mask

    def node_states(self, x: Tensor, edge_index: Tensor) -> list[Tensor]:
        """Node representations ``[x_0, x_1, …, x_L]``: the input after the encoder, then the
        output of every (active) block; the head and jumping knowledge are not applied.

        Computed ordinarily whatever ``memory`` is (every block's output is kept).

        Shapes:
            x: ``[num_nodes, in_channels]`` -> ``L + 1`` tensors ``[num_nodes, *]``.
        """
        x, edge_index = self.input_state(x, edge_index)
        return self._run_blocks(x, edge_index, memory="plain")

    def _history_is_local(self) -> bool:
        """Whether the blocks read no history but ``x_0`` and ``x_{l-1}`` (every skip but
        ``dense`` and jumping knowledge), so a forward pass may drop older states."""
        if self.jk is not None:
            return False
        local = (NoSkip, Residual, InitialResidual)
        return all(
            isinstance(block, ReversibleGroups)
            or (
                isinstance(getattr(block, "skip", None), local)
                and getattr(block.skip, "distance", 1) == 1  # a longer residual reads x_{l-k}
            )
            for block in self.blocks
        )

    def _used_blocks(self) -> Sequence[nn.Module]:
        """The blocks a forward pass runs: the first :attr:`active_blocks` (all when ``None``)."""
        return self.blocks if self.active_blocks is None else self.blocks[: self.active_blocks]

    def _run_blocks(
        self, x: Tensor, edge_index: Tensor | ChunkedGraph, memory: str, keep_all: bool = True
    ) -> list[Tensor]:
        """``[x_0, x_1, …, x_L]``; with ``keep_all=False`` only ``[x_0, x_L]``: a state no
        block reads again is dropped at once, so memory holds only what autograd keeps."""
        history = [x]
        blocks = self._used_blocks()
        for block in blocks:
            if isinstance(block, ReversibleGroups):
                x = (
                    block(x, edge_index)
                    if memory == "reversible"
                    else block.coupling(x, edge_index)
                )
            elif memory == "checkpoint":
                # a copy: the backward pass recomputes the block with the history it saw
                x = checkpoint_call(block, x, edge_index, list(history))
            else:
                x = block(x, edge_index, history)
            history.append(x)
            if not keep_all and len(history) > 2:
                del history[1]
        return history

    def trim_support(self) -> str | None:
        """Why a neighbour-sampled batch cannot be trimmed for this model (``None``: it can;
        see :mod:`fathom.nn.trim`): every layer a :class:`~fathom.nn.block.GNNBlock` (or the
        head) whose conv is one of :data:`~fathom.nn.trim.TRIMMABLE_CONVS` (in training,
        without attention dropout) and whose norms act on each row alone, no reversible or
        checkpointed blocks."""
        if self.memory != "plain":
            return f"memory {self.memory!r} is not trimmed"
        blocks = self._used_blocks()
        parts: list[tuple[str, nn.Module | None, nn.Module | None]] = []
        for layer, block in enumerate(blocks, start=1):
            if not isinstance(block, GNNBlock):
                return f"block {layer} ({type(block).__name__}) is not trimmed"
            if block.needs_x0:
                return f"block {layer}'s conv reads x_0"
            parts.append((f"block {layer}", block.conv, block.norm))
        if self.head_is_conv:
            parts.append(("the head", self.head, self.head_norm))
        elif self.head_norm is not None:
            parts.append(("the head", None, self.head_norm))
        for where, conv, norm in parts:
            if conv is not None and not isinstance(conv, TRIMMABLE_CONVS):
                return f"{where}'s conv {type(conv).__name__} is not trimmed"
            if self.training and float(getattr(conv, "dropout", 0.0) or 0.0) > 0:
                # one draw per edge, and a trimmed layer has fewer edges
                return f"{where}'s conv {type(conv).__name__} drops attention per edge"
            if norm is not None and not isinstance(norm, ROW_WISE_NORMS):
                return f"{where}'s norm {type(norm).__name__} takes statistics over nodes"
        return None

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor | ChunkedGraph,
        *,
        num_sampled_nodes_per_hop: Sequence[int] | None = None,
        num_sampled_edges_per_hop: Sequence[int] | None = None,
    ) -> Tensor:
        """The model's outputs; with ``num_sampled_nodes_per_hop`` and
        ``num_sampled_edges_per_hop`` (a neighbour-sampled batch's ``num_sampled_nodes`` /
        ``num_sampled_edges``, as PyG's ``BasicGNN`` takes them) each layer computes only
        the rows the seeds read (:mod:`fathom.nn.trim`) and the output is the seeds' rows:
        the first ``num_sampled_nodes_per_hop[0]`` rows of the untrimmed output (up to the
        dense products' rounding), the same random draws.

        Raises:
            ValueError: the counts given for a model that cannot be trimmed
                (:meth:`trim_support`), or counts that do not fit ``edge_index``.
        """
        if num_sampled_nodes_per_hop is not None and num_sampled_edges_per_hop is not None:
            return self._trimmed_forward(
                x, edge_index, num_sampled_nodes_per_hop, num_sampled_edges_per_hop
            )
        # The head needs the (possibly DropEdge-thinned) graph the blocks saw.
        x, edge_index = self.input_state(x, edge_index)
        history = self._run_blocks(x, edge_index, self.memory, not self._history_is_local())
        x = self.jk(history[1:]) if self.jk is not None else history[-1]
        x = self.dropout(x)
        out = apply_conv(self.head, x, edge_index) if self.head_is_conv else self.head(x)
        return out if self.head_norm is None else self.head_norm(out)

    def _trimmed_forward(
        self,
        x: Tensor,
        edge_index: Tensor | ChunkedGraph,
        num_sampled_nodes: Sequence[int],
        num_sampled_edges: Sequence[int],
    ) -> Tensor:
        reason = self.trim_support()
        if reason is not None:
            raise ValueError(f"trimmed forward pass: {reason}")
        if not isinstance(edge_index, Tensor):
            raise ValueError("trimmed forward pass: expected an edge_index tensor")
        if sum(int(n) for n in num_sampled_nodes) != x.size(0):
            raise ValueError(
                f"num_sampled_nodes_per_hop: they add up to {sum(num_sampled_nodes)}, "
                f"x has {x.size(0)} rows"
            )
        blocks = self._used_blocks()
        graph = HopGraph(
            edge_index, num_sampled_nodes, num_sampled_edges, len(blocks) + self.head_is_conv
        )
        # DropEdge and DropNode on the whole subgraph, the encoder on every row: the
        # untrimmed pass's draws
        x, _, edge_mask = self._input(x, edge_index)
        if edge_mask is not None:
            graph = graph.thinned(edge_mask)
        x = x[: graph.layer(1).num_in]
        history = [x]
        for layer, block in enumerate(blocks, start=1):
            x = block(x, graph.layer(layer), history)
            history.append(x)
        x = self.jk([h[: x.size(0)] for h in history[1:]]) if self.jk is not None else x
        x = self.dropout(x, graph.num_rows)
        if self.head_is_conv:
            out = apply_conv(self.head, x, graph.layer(len(blocks) + 1))
        else:
            out = self.head(x)
        return out if self.head_norm is None else self.head_norm(out)

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
