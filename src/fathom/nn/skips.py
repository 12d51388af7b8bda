r"""Skip connections between blocks, by name.

A skip combines block :math:`l`'s new output :math:`h` with the history of representations
that entered the blocks so far, ``history = [x_0, x_1, …, x_{l-1}]`` (:math:`x_0` is the
input of the first block): :math:`x_l = \mathrm{skip}(h, \mathrm{history})`.

Every entry of :data:`SKIPS` is a factory
``factory(channels, *, layer, history_widths, alpha=0.1, **_) -> nn.Module`` (the skip classes
themselves): ``channels`` is the block's output width, ``layer`` its 1-based index and
``history_widths`` the widths of ``x_0 … x_{l-1}`` when it runs (so ``len(history_widths) ==
layer``). A skip that cannot apply because widths differ (a residual around the first conv of
a model without an input encoder, where :math:`x_0` has the raw feature width) decides so at
construction (``active = False``) and then returns :math:`h` unchanged, unless built with
``project=True``: the shortcut then goes through a learnt bias-free linear map to the block's
width (:math:`x_l = h + W x_{l-1}`, He et al.'s "projection shortcut", option B), and the skip
is active. Projection is opt-in, never the default: the published ResGCN (Li et al. 2019;
DropEdge's code) has none, so a depth-2 ResGCN there is a plain GCN.
:class:`~fathom.models.deep_gnn.DeepGNN` reports (:attr:`~fathom.models.deep_gnn.DeepGNN.
inactive_skips`) and warns (:class:`InactiveSkipWarning`) when no skip of a model can act.

Two class attributes tell the block and the model how to wire the skip:

- ``pre_activation``: the block computes :math:`h = \mathrm{conv}(\mathrm{dropout}(
  \mathrm{act}(\mathrm{norm}(x_{l-1}))))` instead of :math:`\mathrm{act}(\mathrm{norm}(
  \mathrm{conv}(\mathrm{dropout}(x_{l-1}))))`;
- ``jumping``: the model combines all block outputs after the last block (jumping knowledge).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from fathom.registry import Registry

__all__ = [
    "SKIPS",
    "DenseSkip",
    "InactiveSkipWarning",
    "InitialResidual",
    "JumpingKnowledgeSkip",
    "NoSkip",
    "PreActResidual",
    "Residual",
    "Skip",
    "build_skip",
]


class InactiveSkipWarning(UserWarning):
    """A model was built with a skip connection that cannot act in any layer (every layer it
    would join changes width), so the model computes what the same model without skips
    computes."""


class Skip(nn.Module):
    r"""Base of the skips: plain stacking, :math:`x_l = h`.

    Args:
        channels: the block's output width.
        layer: the block's 1-based index :math:`l`.
        history_widths: widths of :math:`x_0, …, x_{l-1}` (``layer`` entries).
        **_: options other skips use (``alpha``, ``project``); ignored.

    Shapes:
        h: ``[num_nodes, channels]``; history: ``layer`` tensors ``[num_nodes, *]``
        -> ``[num_nodes, channels]``.
    """

    pre_activation: bool = False
    jumping: bool = False

    def __init__(
        self, channels: int, *, layer: int, history_widths: Sequence[int], **_: Any
    ) -> None:
        super().__init__()
        if layer < 1 or len(history_widths) != layer:
            raise ValueError(
                f"block {layer} needs {layer} history widths (x_0 … x_{layer - 1}), "
                f"got {list(history_widths)}"
            )
        self.channels, self.layer = channels, layer
        self.history_widths = tuple(history_widths)
        self.active = True
        self.projected = False

    @property
    def source_width(self) -> int | None:
        """Width of the representation the shortcut carries (``None``: no shortcut)."""
        return None

    def forward(self, h: Tensor, history: list[Tensor]) -> Tensor:
        return h

    def extra_repr(self) -> str:
        return f"{self.channels}, layer={self.layer}, active={self.active}" + (
            ", projected" if self.projected else ""
        )


def _projection(skip: Skip, source_width: int, project: bool) -> tuple[bool, nn.Linear | None]:
    """``(active, projection)`` of a shortcut from a ``source_width`` representation."""
    if source_width == skip.channels:
        return True, None
    if project:
        return True, nn.Linear(source_width, skip.channels, bias=False)
    return False, None


class NoSkip(Skip):
    r"""Plain stacking: :math:`x_l = h`."""


class Residual(Skip):
    r"""Identity shortcut from `"Deep Residual Learning for Image Recognition"
    <https://arxiv.org/abs/1512.03385>`_ (He et al. 2016), as ResGCN in `"DeepGCNs: Can GCNs
    Go as Deep as CNNs?" <https://arxiv.org/abs/1904.03751>`_ (Li et al., ICCV 2019):

    .. math::
        x_l = h + x_{l-1}

    Active iff :math:`x_{l-1}` has ``channels`` features; otherwise :math:`x_l = h`, or with
    ``project=True`` :math:`x_l = h + W x_{l-1}` with a learnt bias-free ``W``.

    With ``distance`` :math:`k > 1` the shortcut spans :math:`k` blocks,
    :math:`x_l = h + x_{l-k}`: the residual block of :math:`k` layers of DropEdge's
    ``resgcn`` (``--nbaseblocklayer k``), whose intermediate blocks have no skip (the
    builder gives them :class:`NoSkip`; ``model.skip_every``).

    Args:
        channels, layer, history_widths: as :class:`Skip`.
        project: project a shortcut whose width differs instead of dropping it.
            (default: ``False``, the published ResGCN)
        distance: how many blocks back the shortcut starts, ``1 <= distance <= layer``.
            (default: ``1``)
    """

    def __init__(
        self,
        channels: int,
        *,
        layer: int,
        history_widths: Sequence[int],
        project: bool = False,
        distance: int = 1,
        **_: Any,
    ) -> None:
        super().__init__(channels, layer=layer, history_widths=history_widths)
        if not 1 <= distance <= layer:
            raise ValueError(f"residual distance must be in [1, {layer}], got {distance}")
        self.distance = distance
        self.active, self.proj = _projection(self, self.history_widths[-distance], project)
        self.projected = self.proj is not None

    @property
    def source_width(self) -> int | None:
        return self.history_widths[-self.distance]

    def forward(self, h: Tensor, history: list[Tensor]) -> Tensor:
        if not self.active:
            return h
        x = history[-self.distance]
        return h + (x if self.proj is None else self.proj(x))

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", distance={self.distance}" if self.distance > 1 else "")

    def reset_parameters(self) -> None:
        if self.proj is not None:
            self.proj.reset_parameters()


class PreActResidual(Residual):
    r"""Pre-activation residual ("res+") from `"DeeperGCN: All You Need to Train Deeper GCNs"
    <https://arxiv.org/abs/2006.07739>`_ (Li et al. 2020), after He et al.'s identity
    mappings: the same combine as :class:`Residual`,

    .. math::
        x_l = h + x_{l-1}, \qquad
        h = \mathrm{conv}(\mathrm{dropout}(\mathrm{act}(\mathrm{norm}(x_{l-1})))),

    where ``pre_activation = True`` tells the block to normalise and activate *before* the
    conv, so the shortcut carries :math:`x_{l-1}` un-normalised. Args as :class:`Skip`.
    """

    pre_activation = True


class DenseSkip(Skip):
    r"""Dense connectivity from `"Densely Connected Convolutional Networks"
    <https://arxiv.org/abs/1608.06993>`_ (Huang et al. 2017), as DenseGCN in Li et al. 2019:
    the block output is a learned map of everything computed so far,

    .. math::
        x_l = \mathbf{W} \, [x_0 \,\|\, x_1 \,\|\, \dots \,\|\, x_{l-1} \,\|\, h] + \mathbf{b}.

    DenseGCN lets the width grow with depth; projecting back to ``channels`` keeps every
    block's width constant so blocks compose and other skips and norms apply unchanged.
    Always active. Args as :class:`Skip`.
    """

    def __init__(
        self, channels: int, *, layer: int, history_widths: Sequence[int], **_: Any
    ) -> None:
        super().__init__(channels, layer=layer, history_widths=history_widths)
        self.lin = nn.Linear(sum(self.history_widths) + channels, channels)

    def forward(self, h: Tensor, history: list[Tensor]) -> Tensor:
        return self.lin(torch.cat([*history, h], dim=-1))  # [num_nodes, sum(widths) + channels]

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()


class InitialResidual(Skip):
    r"""Initial residual from `"Predict then Propagate: Graph Neural Networks meet Personalized
    PageRank" <https://arxiv.org/abs/1810.05997>`_ (APPNP, Gasteiger et al., ICLR 2019), as
    used by GCNII (Chen et al., ICML 2020): every block mixes back a fraction of the input,

    .. math::
        x_l = (1 - \alpha) \, h + \alpha \, x_0.

    Active iff :math:`x_0` has ``channels`` features (a model with an input encoder);
    otherwise :math:`x_l = h`, or with ``project=True`` :math:`x_l = (1 - \alpha) h + \alpha
    W x_0` with a learnt bias-free ``W`` per layer.

    Args:
        channels, layer, history_widths: as :class:`Skip`.
        alpha: teleport weight :math:`\alpha \in [0, 1]`. (default: ``0.1``)
        project: project an ``x_0`` whose width differs instead of dropping the skip.
            (default: ``False``)
    """

    def __init__(
        self,
        channels: int,
        *,
        layer: int,
        history_widths: Sequence[int],
        alpha: float = 0.1,
        project: bool = False,
        **_: Any,
    ) -> None:
        super().__init__(channels, layer=layer, history_widths=history_widths)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"initial residual alpha must be in [0, 1], got {alpha}")
        self.alpha = alpha
        self.active, self.proj = _projection(self, self.history_widths[0], project)
        self.projected = self.proj is not None

    @property
    def source_width(self) -> int | None:
        return self.history_widths[0]

    def forward(self, h: Tensor, history: list[Tensor]) -> Tensor:
        if not self.active:
            return h
        x0 = history[0] if self.proj is None else self.proj(history[0])
        return (1 - self.alpha) * h + self.alpha * x0

    def reset_parameters(self) -> None:
        if self.proj is not None:
            self.proj.reset_parameters()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha}"


class JumpingKnowledgeSkip(Skip):
    r"""Jumping knowledge from `"Representation Learning on Graphs with Jumping Knowledge
    Networks" <https://arxiv.org/abs/1806.03536>`_ (Xu et al., ICML 2018): blocks stack plainly,
    :math:`x_l = h`, and ``jumping = True`` tells the model to combine all block outputs
    :math:`x_1, …, x_L` (concatenation, max or LSTM attention) before the head.
    Args as :class:`Skip`.
    """

    jumping = True


SKIPS: Registry[type[Skip]] = Registry("skip")
SKIPS.add("none", NoSkip)
SKIPS.add("res", Residual)
SKIPS.add("res+", PreActResidual)
SKIPS.add("dense", DenseSkip)
SKIPS.add("initial", InitialResidual)
SKIPS.add("jk", JumpingKnowledgeSkip)


def build_skip(
    name: str, channels: int, *, layer: int, history_widths: Sequence[int], **options: Any
) -> nn.Module:
    """A fresh skip module for ``name`` in block ``layer``.

    Args:
        name: a key of :data:`SKIPS` (case-insensitive); an unknown one raises a
            :class:`~fathom.errors.ConfigError` listing the choices.
        channels: the block's output width.
        layer: the block's 1-based index.
        history_widths: widths of :math:`x_0, …, x_{l-1}` when the block runs.
        **options: ``alpha`` (initial residual), ``project`` (residual and initial
            residual: project a shortcut whose width differs), ``distance`` (residual: the
            blocks its shortcut spans); keywords the named skip does not use are ignored.
    """
    return SKIPS.get(name)(channels, layer=layer, history_widths=history_widths, **options)
