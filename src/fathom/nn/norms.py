r"""Feature normalisations applied after each hidden conv, by name.

Every entry of :data:`NORMS` is a factory
``factory(channels, *, scale=1.0, groups=10, **_) -> nn.Module`` (keywords a norm does not use
are ignored, so the builder can pass one options dict to whichever norm is named); the module
is called as ``norm(x)`` with ``x`` of shape ``[num_nodes, channels]`` holding one graph.

=========  ===============================================================================
name       normalisation
=========  ===============================================================================
none       identity
batch      BatchNorm over nodes (Ioffe & Szegedy 2015)
layer      LayerNorm over channels (Ba et al. 2016)
pair       PairNorm PN (Zhao & Akoglu 2020), scale ``scale``
pair-si    PairNorm PN-SI: scale-individually
pair-scs   PairNorm PN-SCS: scale-and-center-simultaneously
node       NodeNorm (Zhou et al. 2021)
mean       mean subtraction over nodes (Yang et al. 2020)
group      DiffGroupNorm with ``groups`` groups (Zhou et al. 2020)
graph      GraphNorm (Cai et al. 2021)
=========  ===============================================================================
"""

from __future__ import annotations

from typing import Any, Protocol

import torch_geometric.nn as pyg_nn
from torch import Tensor, nn

from fathom.registry import Registry

__all__ = ["NORMS", "NodeNorm", "NormFactory", "PairNorm", "build_norm"]


class NormFactory(Protocol):
    """``factory(channels, *, scale=1.0, groups=10, **_) -> nn.Module``."""

    def __call__(
        self, channels: int, *, scale: float = 1.0, groups: int = 10, **options: Any
    ) -> nn.Module: ...


class PairNorm(nn.Module):
    r"""PairNorm from `"PairNorm: Tackling Oversmoothing in GNNs"
    <https://arxiv.org/abs/1909.12223>`_ (Zhao & Akoglu, ICLR 2020), in its three variants.

    With the column (over-nodes) mean :math:`\bar{\mathbf{x}} = \frac{1}{n}\sum_i \mathbf{x}_i`
    and centred rows :math:`\mathbf{x}_i^c = \mathbf{x}_i - \bar{\mathbf{x}}`:

    .. math::
        \text{PN:}\quad \mathbf{x}_i' &= s \cdot \frac{\mathbf{x}_i^c}
            {\sqrt{\epsilon + \frac{1}{n}\sum_j \|\mathbf{x}_j^c\|_2^2}} \\
        \text{PN-SI:}\quad \mathbf{x}_i' &= s \cdot
            \frac{\mathbf{x}_i^c}{\epsilon + \|\mathbf{x}_i^c\|_2} \\
        \text{PN-SCS:}\quad \mathbf{x}_i' &= \mathbf{u}_i - \frac{1}{n}\sum_j \mathbf{u}_j,
            \qquad \mathbf{u}_i = s \cdot \frac{\mathbf{x}_i}{\epsilon + \|\mathbf{x}_i\|_2}

    PN keeps the total pairwise squared distance constant (mean squared row norm :math:`s^2`,
    zero column means); PN-SI puts every centred row on the sphere of radius :math:`s`; PN-SCS
    scales every row to norm :math:`s` first and then centres.

    PN and PN-SI are :class:`torch_geometric.nn.PairNorm` (``scale_individually``), which
    computes exactly these formulas. PN-SCS is written here: PyG lacks it, and the authors'
    code subtracts the column mean of the *raw* ``x`` after scaling, which leaves non-zero
    column means; subtracting the mean of the scaled rows centres the output as the paper's
    "center" step intends.

    Args:
        scale: the target row norm :math:`s`. (default: ``1.0``)
        mode: ``"PN"``, ``"PN-SI"`` or ``"PN-SCS"``. (default: ``"PN"``)
        eps: added to the denominators so zero rows stay finite. (default: ``1e-5``)

    Shapes:
        x: ``[num_nodes, channels]`` -> ``[num_nodes, channels]``.
    """

    MODES = ("PN", "PN-SI", "PN-SCS")

    def __init__(self, scale: float = 1.0, mode: str = "PN", eps: float = 1e-5) -> None:
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"PairNorm mode must be one of {', '.join(self.MODES)}, got {mode!r}")
        self.scale, self.mode, self.eps = scale, mode, eps
        self.pyg = (
            None
            if mode == "PN-SCS"
            else pyg_nn.PairNorm(scale, scale_individually=mode == "PN-SI", eps=eps)
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.pyg is not None:
            return self.pyg(x)
        u = self.scale * x / (self.eps + x.norm(dim=-1, keepdim=True))
        return u - u.mean(dim=0, keepdim=True)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, mode={self.mode!r}"


class NodeNorm(nn.Module):
    r"""NodeNorm from `"Understanding and Resolving Performance Degradation in Graph
    Convolutional Networks" <https://arxiv.org/abs/2006.07107>`_ (Zhou et al., CIKM 2021):
    each node's feature vector is standardised over its own channels,

    .. math::
        \mathbf{x}_i' = \frac{\mathbf{x}_i - \mu_i}{\sqrt{\sigma_i^2 + \epsilon}}, \qquad
        \mu_i = \frac{1}{d}\sum_k x_{ik}, \quad \sigma_i^2 = \frac{1}{d}\sum_k (x_{ik} - \mu_i)^2

    (population variance), so every row has mean 0 and standard deviation 1. This is the
    paper's NodeNorm with root power 1; it has no learnable parameters.

    Args:
        eps: added to the variance so constant rows stay finite. (default: ``1e-5``)

    Shapes:
        x: ``[num_nodes, channels]`` -> ``[num_nodes, channels]``.
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, unbiased=False, keepdim=True)
        return (x - mean) / (var + self.eps).sqrt()


NORMS: Registry[NormFactory] = Registry("norm")


@NORMS.register("none")
def _none(channels: int, **_: Any) -> nn.Module:
    """Identity."""
    return nn.Identity()


@NORMS.register("batch")
def _batch(channels: int, **_: Any) -> nn.Module:
    r"""BatchNorm over nodes (Ioffe & Szegedy 2015), as the Bag-of-Tricks benchmark uses it:
    :math:`x'_{ik} = \gamma_k (x_{ik} - \mu_k) / \sqrt{\sigma_k^2 + \epsilon} + \beta_k`
    with batch statistics over the nodes in training and running ones in evaluation.
    """
    return nn.BatchNorm1d(channels)


@NORMS.register("batch-stats")
def _batch_stats(channels: int, **_: Any) -> nn.Module:
    r"""BatchNorm over nodes that normalises with the batch's own statistics in evaluation
    too (``track_running_stats=False``): in full-batch training the evaluation batch is the
    training batch (the whole graph), so the evaluated model is the trained one, where
    ``batch``'s running averages lag the weights (a 32-layer GCN's evaluated training
    accuracy swings by 30-50 points between epochs with them, docs/results/reproduce-depth.md).
    """
    return nn.BatchNorm1d(channels, track_running_stats=False)


@NORMS.register("layer")
def _layer(channels: int, **_: Any) -> nn.Module:
    r"""LayerNorm (Ba et al. 2016): each row standardised over its channels, then an affine map
    :math:`\gamma \odot \cdot + \beta`.
    """
    return nn.LayerNorm(channels)


@NORMS.register("pair")
def _pair(channels: int, *, scale: float = 1.0, **_: Any) -> nn.Module:
    """PairNorm PN (Zhao & Akoglu 2020); see :class:`PairNorm`."""
    return PairNorm(scale, mode="PN")


@NORMS.register("pair-si")
def _pair_si(channels: int, *, scale: float = 1.0, **_: Any) -> nn.Module:
    """PairNorm PN-SI (scale individually); see :class:`PairNorm`."""
    return PairNorm(scale, mode="PN-SI")


@NORMS.register("pair-scs")
def _pair_scs(channels: int, *, scale: float = 1.0, **_: Any) -> nn.Module:
    """PairNorm PN-SCS (scale and center simultaneously); see :class:`PairNorm`."""
    return PairNorm(scale, mode="PN-SCS")


@NORMS.register("node")
def _node(channels: int, **_: Any) -> nn.Module:
    """NodeNorm (Zhou et al., CIKM 2021); see :class:`NodeNorm`."""
    return NodeNorm()


@NORMS.register("mean")
def _mean(channels: int, **_: Any) -> nn.Module:
    r"""Mean subtraction over nodes, :math:`\mathbf{x}_i' = \mathbf{x}_i - \frac{1}{n}
    \sum_j \mathbf{x}_j` (Yang et al., "Revisiting Over-smoothing in Deep GCNs", 2020);
    PyG's :class:`~torch_geometric.nn.norm.MeanSubtractionNorm`.
    """
    return pyg_nn.MeanSubtractionNorm()


@NORMS.register("group")
def _group(channels: int, *, groups: int = 10, **_: Any) -> nn.Module:
    r"""Differentiable group normalisation (Zhou et al., NeurIPS 2020): soft cluster assignment
    :math:`\mathbf{S} = \mathrm{softmax}(\mathbf{X}\mathbf{W})` over ``groups`` groups,
    then :math:`\mathbf{X}' = \mathbf{X} + \lambda \sum_g \mathrm{BatchNorm}(\mathbf{S}_{:,g}
    \odot \mathbf{X})` with :math:`\lambda = 0.01`; PyG's
    :class:`~torch_geometric.nn.norm.DiffGroupNorm`.
    """
    return pyg_nn.DiffGroupNorm(channels, groups)


@NORMS.register("graph")
def _graph(channels: int, **_: Any) -> nn.Module:
    r"""GraphNorm (Cai et al., ICML 2021) over the single graph in ``x``:
    :math:`\mathbf{x}_i' = \gamma \odot (\mathbf{x}_i - \alpha \odot \mu) / \sigma + \beta`
    with learnable mean shift :math:`\alpha`, :math:`\mu` the column mean and
    :math:`\sigma` the column std of the shifted features; PyG's
    :class:`~torch_geometric.nn.norm.GraphNorm` with ``batch=None``.
    """
    return pyg_nn.GraphNorm(channels)


def build_norm(name: str, channels: int, **options: Any) -> nn.Module:
    """A fresh normalisation module for ``name`` over ``channels`` features.

    Args:
        name: a key of :data:`NORMS` (case-insensitive); an unknown one raises a
            :class:`~fathom.errors.ConfigError` listing the choices.
        channels: width of the features the module normalises.
        **options: ``scale`` (PairNorm's :math:`s`), ``groups`` (DiffGroupNorm's group
            count); keywords the named norm does not use are ignored.
    r"""
    return NORMS.get(name)(channels, **options)
