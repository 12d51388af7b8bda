r"""DeepGCN for point-cloud segmentation: PlainGCN, ResGCN and DenseGCN over dynamic dilated
k-NN graphs (Li et al., "DeepGCNs: Can GCNs Go as Deep as CNNs?", ICCV 2019).

The layout follows the reference code ``lightaime/deep_gcns_torch``,
``examples/sem_seg_dense/architecture.py`` (``DenseDeepGCN``) with the blocks of
``gcn_lib/dense/torch_vertex.py`` and the graphs of ``gcn_lib/dense/torch_edge.py``::

    head conv on the k-NN graph of pos (dilation 1)                        -> C
    depth - 1 backbone blocks, block i (0-based) on the dilated k-NN graph of its own input
        plain: x' = conv(x)              dilation 1, no stochastic dilation
        res:   x' = x + conv(x)          dilation 1 + i (or 1)
        dense: x' = [x, conv(x)]         dilation 1 + i (or 1), growth C
    fusion: F = concat(every layer's output); g = BasicConv(F -> 1024); max over each cloud
    prediction: BasicConv([g, F] -> 512) -> BasicConv(512 -> 256) -> Dropout
                -> Linear(256 -> classes)

where ``BasicConv`` is a 1x1 convolution (here a Linear over points) followed by the
activation and then the normalisation (the reference's order; ``order="norm-act"`` swaps
them). With ``C`` channels and
``n = depth`` layers, ``F`` has ``C n`` channels (plain, res) or ``C n (n + 1) / 2`` (dense:
every block's output, itself a concatenation, enters the fusion, as in the reference).

Beyond the reference, ``memory`` picks how backbone activations are kept for the backward
pass (see :mod:`fathom.nn.reversible`): ``plain``; ``checkpoint`` (each block recomputed in
the backward pass); ``reversible`` (ResGCN only: each block is a grouped reversible
residual coupling, RevGNN, Li et al. ICML 2021, whose input is rebuilt from its output).
Every block's graph is built from its input *before* the block runs, under
``torch.no_grad()`` (k-NN selection has no gradient), and handed to it: a checkpointed or
reversible block never recomputes it from recomputed or reconstructed features, which
could differ in the last bits and pick other neighbours.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from fathom.errors import ConfigError
from fathom.nn.knn import dilated_knn_graph
from fathom.nn.modes import FastModeSwitch
from fathom.nn.point_convs import POINT_CONVS, BasicConv, build_point_conv
from fathom.nn.reversible import MEMORY_MODES, Checkpointed, ReversibleGroups

__all__ = [
    "BLOCKS",
    "DeepGCN",
    "DenseDynBlock",
    "DynamicGraph",
    "PlainDynBlock",
    "ResDynBlock",
    "check_point_model",
    "point_backbone",
]

BLOCKS = ("plain", "res", "dense")
"""Backbone kinds: PlainGCN, ResGCN, DenseGCN."""

DILATIONS = ("linear", "none")
"""``linear``: backbone block ``i`` (0-based) has dilation ``1 + i``; ``none``: 1."""


class DynamicGraph(nn.Module):
    r"""The dilated k-NN graph of a layer's input, DeepGCN's ``DenseDilatedKnnGraph``.

    Each point's ``k * dilation`` nearest points in feature space (itself first) are found
    with :func:`~fathom.nn.knn.dilated_knn_graph` and every ``dilation``-th is kept. With
    ``stochastic`` in training, with probability ``epsilon`` per forward pass ``k`` ranks
    among the ``k * dilation`` are drawn at random instead -- the same ranks for every
    point, as the reference's ``DenseDilated`` does with ``randperm(k * d)[:k]`` -- from
    torch's global random state (seeded by :func:`~fathom.seeding.seed_everything`). With
    dilation 1 that draw would keep all ``k`` anyway, so none is made. Evaluation is
    deterministic. No gradient flows through the selection.

    Args:
        k: neighbours per point.
        dilation: :math:`d \ge 1`.
        stochastic: allow stochastic dilation in training.
        epsilon: its probability per forward pass.

    Shapes:
        x: ``[N, F]``, batch: ``[N]`` or ``None`` -> edge_index ``[2, N * k]``, each
        point's ``k`` neighbours contiguous (row 1 = ``arange(N).repeat_interleave(k)``).
    """

    def __init__(
        self, k: int, dilation: int = 1, *, stochastic: bool = False, epsilon: float = 0.0
    ) -> None:
        super().__init__()
        self.k, self.dilation, self.stochastic, self.epsilon = k, dilation, stochastic, epsilon

    def forward(self, x: Tensor, batch: Tensor | None = None) -> Tensor:
        with torch.no_grad():
            kd = self.k * self.dilation
            if (
                self.training
                and self.stochastic
                and self.dilation > 1
                and float(torch.rand(())) < self.epsilon
            ):
                candidates = dilated_knn_graph(x, kd, batch)[0].view(-1, kd)  # [N, k * d]
                ranks = torch.randperm(kd, device=x.device)[: self.k].sort().values
                sources = candidates[:, ranks].reshape(-1)
                targets = torch.arange(x.size(0), device=x.device).repeat_interleave(self.k)
                return torch.stack([sources, targets])
            return dilated_knn_graph(x, self.k, batch, dilation=self.dilation)

    def extra_repr(self) -> str:
        return (
            f"k={self.k}, dilation={self.dilation}, stochastic={self.stochastic}, "
            f"epsilon={self.epsilon}"
        )


class PlainDynBlock(nn.Module):
    r"""PlainGCN block (``PlainDynBlock2d``): :math:`\mathbf{x}' = \mathrm{conv}(\mathbf{x},
    \mathcal{G})`.

    Shapes:
        x: ``[N, C]``, edge_index: ``[2, E]`` -> ``[N, C]``.
    """

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.conv(x, edge_index)


class ResDynBlock(nn.Module):
    r"""ResGCN block (``ResDynBlock2d`` with ``res_scale=1``):
    :math:`\mathbf{x}' = \mathrm{conv}(\mathbf{x}, \mathcal{G}) + \mathbf{x}`.

    Shapes:
        x: ``[N, C]``, edge_index: ``[2, E]`` -> ``[N, C]``.
    """

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.conv(x, edge_index) + x


class DenseDynBlock(nn.Module):
    r"""DenseGCN block (``DenseDynBlock2d``): :math:`\mathbf{x}' = [\mathbf{x},
    \mathrm{conv}(\mathbf{x}, \mathcal{G})]`, the conv adding ``growth`` channels.

    Shapes:
        x: ``[N, C_in]``, edge_index: ``[2, E]`` -> ``[N, C_in + growth]``.
    """

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return torch.cat([x, self.conv(x, edge_index)], dim=1)


class DeepGCN(FastModeSwitch):
    r"""DeepGCN for per-point classification (``DenseDeepGCN`` of the reference's
    ``examples/sem_seg_dense/architecture.py``; see the module docstring for the layout).

    Args:
        in_channels: point feature width (9 for S3DIS: xyz, rgb, normalised xyz).
        num_classes: segmentation classes.
        conv: a :data:`~fathom.nn.point_convs.POINT_CONVS` name (``edge``, ``mr``, ``sage``,
            ``gin``).
        hidden: channels ``C`` of the head and of each block (the dense growth rate too).
        depth: GCN layers in all, the reference's ``n_blocks``: the head conv plus
            ``depth - 1`` backbone blocks.
        block: ``plain``, ``res`` or ``dense``.
        k: neighbours per point of every graph.
        dilation: ``linear`` (block ``i``, 0-based, has dilation ``1 + i``) or ``none``.
            The plain backbone uses dilation 1 without stochastic dilation whatever this
            says, as the reference's plain backbone does.
        stochastic: stochastic dilation in training (:class:`DynamicGraph`).
        epsilon: its probability per block and forward pass.
        norm: normalisation name (:data:`~fathom.nn.norms.NORMS`; ``batch`` is the
            reference's BatchNorm over points, or over edges inside EdgeConv).
        act: activation name (:data:`~fathom.nn.activations.ACTIVATIONS`).
        bias: biases in every 1x1 conv.
        dropout: dropout before the last 1x1 conv of the prediction block.
        fusion_channels: width of the fusion block's 1x1 conv (1024 in the reference).
        memory: ``plain``, ``checkpoint`` or ``reversible`` (``block="res"`` only).
        groups: channel groups of a reversible block (``hidden`` must divide by it).
        order: ``act-norm`` (the reference's) or ``norm-act``: where every 1x1 conv puts its
            normalisation (:data:`~fathom.nn.point_convs.ORDERS`).

    Attributes:
        graphs: one :class:`DynamicGraph` per backbone block (``graphs[i].dilation``).
        backbone: the blocks, called as ``block(x, edge_index)``; a forward pre-hook on one
            sees the graph it was given.

    Shapes:
        x: ``[N, in_channels]``, pos: ``[N, 3]``, batch: ``[N]`` sorted or ``None`` (one
        cloud) -> ``[N, num_classes]``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        conv: str = "edge",
        hidden: int = 64,
        depth: int = 28,
        block: str = "res",
        k: int = 16,
        dilation: str = "linear",
        stochastic: bool = True,
        epsilon: float = 0.2,
        norm: str = "batch",
        act: str = "relu",
        bias: bool = True,
        dropout: float = 0.3,
        fusion_channels: int = 1024,
        memory: str = "plain",
        groups: int = 2,
        order: str = "act-norm",
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ConfigError(f"unknown DeepGCN block {block!r}; choose one of: plain, res, dense")
        if dilation not in DILATIONS:
            raise ConfigError(f"unknown dilation {dilation!r}; choose one of: linear, none")
        if memory not in MEMORY_MODES:
            raise ConfigError(
                f"unknown memory mode {memory!r}; choose one of: {', '.join(MEMORY_MODES)}"
            )
        if depth < 1:
            raise ConfigError(f"DeepGCN depth must be >= 1, got {depth}")
        if memory == "reversible" and block != "res":
            raise ConfigError(f"memory 'reversible' needs the res backbone, got block {block!r}")
        if memory == "reversible" and (groups < 2 or hidden % groups):
            raise ConfigError(
                f"memory 'reversible' needs groups >= 2 dividing hidden ({hidden}), got {groups}"
            )
        self.block, self.memory, self.depth = block, memory, depth
        parts = {"norm": norm, "act": act, "bias": bias, "order": order}
        c = hidden

        self.head_graph = DynamicGraph(k, 1)
        self.head = build_point_conv(conv, in_channels, c, **parts)

        graphs, blocks, widths = [], [], [c]
        for i in range(depth - 1):
            if block == "plain":
                graphs.append(DynamicGraph(k, 1))
            else:
                d = 1 + i if dilation == "linear" else 1
                graphs.append(DynamicGraph(k, d, stochastic=stochastic, epsilon=epsilon))
            if block == "dense":
                body: nn.Module = DenseDynBlock(build_point_conv(conv, c * (i + 1), c, **parts))
                widths.append(c * (i + 2))
            elif memory == "reversible":
                body = _reversible_block(conv, c, groups, parts)
                widths.append(c)
            else:
                cls = ResDynBlock if block == "res" else PlainDynBlock
                body = cls(build_point_conv(conv, c, c, **parts))
                widths.append(c)
            blocks.append(Checkpointed(body) if memory == "checkpoint" else body)
        self.graphs = nn.ModuleList(graphs)
        self.backbone = nn.ModuleList(blocks)

        fusion_dims = sum(widths)
        self.fusion = BasicConv(fusion_dims, fusion_channels, **parts)
        self.prediction = nn.Sequential(
            BasicConv(fusion_dims + fusion_channels, 512, **parts),
            BasicConv(512, 256, **parts),
            nn.Dropout(dropout),
            BasicConv(256, num_classes, norm=None, act=None, bias=bias, order=order),
        )

    @property
    def dilations(self) -> list[int]:
        """Dilation of every backbone block's graph."""
        return [g.dilation for g in self.graphs]  # type: ignore[misc]

    def forward(self, x: Tensor, pos: Tensor, batch: Tensor | None = None) -> Tensor:
        h = self.head(x, self.head_graph(pos, batch))
        feats = [h]
        # a reversible block releases the storage of its input when that is another
        # reversible block's output (the backward pass rebuilds it); the fusion needs every
        # layer's output, so it keeps copies, taken before the next block runs
        releases = self.memory == "reversible" and self.training and torch.is_grad_enabled()
        for graph, block in zip(self.graphs, self.backbone, strict=True):
            h = block(h, graph(h, batch))
            feats.append(h.clone() if releases else h)
        features = torch.cat(feats, dim=1)  # [N, fusion_dims]
        del feats, h

        fused = self.fusion(features)  # [N, fusion_channels]
        if batch is None:
            pooled = fused.amax(dim=0, keepdim=True).expand_as(fused)
        else:
            pooled = scatter(fused, batch, dim=0, reduce="max")[batch]  # per cloud, repeated
        return self.prediction(torch.cat([pooled, features], dim=1))


def _reversible_block(
    conv: str, channels: int, groups: int, parts: dict[str, Any]
) -> ReversibleGroups:
    """RevGNN's grouped coupling of ``groups`` point convs of width ``channels / groups``."""
    width = channels // groups
    return ReversibleGroups([build_point_conv(conv, width, width, **parts) for _ in range(groups)])


_BACKBONES = {"none": "plain", "res": "res", "dense": "dense"}


def point_backbone(skip: str) -> str:
    """The DeepGCN backbone of a ``model.skip``: none -> plain, res -> res, dense -> dense."""
    return _BACKBONES[skip]


def check_point_model(conv: str, skip: str, memory: str) -> None:
    """Raise ConfigError unless ``conv`` is a point conv, ``skip`` has a backbone and
    ``memory`` fits it (reversible needs the residual backbone)."""
    if conv not in POINT_CONVS:
        raise ConfigError(
            f"unknown model.conv (--conv) {conv!r} for task 'segmentation'; choose one of: "
            f"{', '.join(POINT_CONVS.names())}"
        )
    if skip not in _BACKBONES:
        raise ConfigError(
            f"model.skip (--skip) must be none (PlainGCN), res (ResGCN) or dense (DenseGCN) "
            f"for task 'segmentation', got {skip!r}"
        )
    if memory not in MEMORY_MODES:
        raise ConfigError(
            f"model.memory (--memory) must be one of {', '.join(MEMORY_MODES)}, got {memory!r}"
        )
    if memory == "reversible" and skip != "res":
        raise ConfigError(
            f"model.memory (--memory) 'reversible' needs model.skip 'res' for task "
            f"'segmentation', got {skip!r}"
        )
