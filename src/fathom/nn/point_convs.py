r"""Graph convolutions of DeepGCN's point-cloud networks, over dynamic k-NN graphs.

These are the dense operators of the DeepGCN reference code (Li et al., "DeepGCNs: Can GCNs
Go as Deep as CNNs?", ICCV 2019; ``lightaime/deep_gcns_torch``, ``gcn_lib/dense/
torch_vertex.py``: ``EdgeConv2d``, ``MRConv2d``, ``GraphSAGE``, ``GINConv2d``) rewritten
for PyG's ``(x, edge_index)`` layout. Every conv is called as ``conv(x, edge_index)`` and
returns ``[num_points, out_channels]``.

Each learnable map is the reference's ``BasicConv`` (``gcn_lib/dense/torch_nn.py``): a 1x1
convolution -- here a :class:`torch.nn.Linear` over points or edges -- followed by the
activation and *then* the normalisation (the reference's order: ``Conv2d -> act -> norm``),
weights initialised with Kaiming-normal and biases with zeros (``BasicConv.
reset_parameters``). Where the reference applies a ``BasicConv`` to edge features
(EdgeConv's :math:`h_\Theta`, GraphSAGE's first map) its BatchNorm statistics are taken
over all edges, before the max over neighbours; so they are here.

**Graph layout.** ``edge_index`` is PyG's: row 0 the neighbour (source) :math:`j`, row 1
the point (target) :math:`i`. The graphs of :func:`fathom.nn.knn.dilated_knn_graph` list
the ``k`` neighbours of each point contiguously, points in order (row 1 is
``arange(N).repeat_interleave(k)``); the convs check for that layout (one comparison over
the edges) and then aggregate by a reshape ``[N, k, C].amax(1)``, which is faster than a
scatter. Any other ``edge_index`` is aggregated with :func:`torch_geometric.utils.scatter`
(a point without in-edges then gets zeros, PyG's convention).

**Cost.** EdgeConv's first layer is linear in :math:`[\mathbf{x}_i, \mathbf{x}_j -
\mathbf{x}_i]`, so it is computed from two per-point projections gathered per edge,
:math:`\mathbf{W}[\mathbf{x}_i, \mathbf{x}_j - \mathbf{x}_i] = (\mathbf{W}_a -
\mathbf{W}_b)\mathbf{x}_i + \mathbf{W}_b\mathbf{x}_j`: :math:`O(NC^2 + EC)` instead of
:math:`O(EC^2)`; GraphSAGE's per-edge map of :math:`\mathbf{x}_j` likewise projects points
first.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from fathom.errors import ConfigError
from fathom.nn.activations import build_activation
from fathom.nn.aggregations import gather_rows
from fathom.nn.norms import build_norm
from fathom.registry import Registry

__all__ = [
    "ORDERS",
    "POINT_CONVS",
    "BasicConv",
    "EdgeConv",
    "GINConv",
    "GraphSAGE",
    "MRConv",
    "PointConvFactory",
    "build_point_conv",
    "neighbours_per_point",
]


def neighbours_per_point(edge_index: Tensor, num_points: int) -> int | None:
    """``k`` when every point's in-edges are ``k`` contiguous columns, points in order
    (``edge_index[1] == arange(num_points).repeat_interleave(k)``, the layout of
    :func:`~fathom.nn.knn.dilated_knn_graph`); otherwise ``None``.

    Shapes:
        edge_index: ``[2, num_edges]``.
    """
    num_edges = edge_index.size(1)
    if num_points == 0 or num_edges == 0 or num_edges % num_points:
        return None
    k = num_edges // num_points
    targets = edge_index[1].view(num_points, k)
    expected = torch.arange(num_points, device=edge_index.device).unsqueeze(1)
    return k if bool((targets == expected).all()) else None


class _NeighbourMax(torch.autograd.Function):
    """``values.amax(1)`` for ``[N, k, C]`` float32 / float64 ``values``, with torch's own
    gradient of ``amax`` (the gradient split evenly over tied maxima,
    ``grad / count * mask``), bit for bit, but with the tie count summed in the values'
    float type: torch sums the tie mask as int64, which on CPU costs more than the rest of
    the backward (measured, 1 thread, 8,192 x 16 x 64 after a ReLU: 128 ms forward +
    backward against 69 ms; a count of at most ``k`` is exact in float32)."""

    @staticmethod
    def forward(ctx: Any, values: Tensor) -> Tensor:
        out = values.amax(dim=1)
        ctx.save_for_backward(values, out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        values, out = ctx.saved_tensors
        mask = (values == out.unsqueeze(1)).to(grad.dtype)
        return grad.unsqueeze(1) / mask.sum(1, keepdim=True) * mask


def _max_over_neighbours(
    edge_values: Tensor, edge_index: Tensor, num_points: int, k: int | None
) -> Tensor:
    """``max_{j -> i}`` of per-edge values ``[E, C]`` -> ``[N, C]``."""
    if k is not None:
        values = edge_values.view(num_points, k, -1)  # [N, k, C] -> [N, C]
        if values.dtype in (torch.float32, torch.float64) and values.requires_grad:
            return _NeighbourMax.apply(values)
        return values.amax(dim=1)
    return scatter(edge_values, edge_index[1], dim=0, dim_size=num_points, reduce="max")


def _sum_over_neighbours(
    edge_values: Tensor, edge_index: Tensor, num_points: int, k: int | None
) -> Tensor:
    """``sum_{j -> i}`` of per-edge values ``[E, C]`` -> ``[N, C]``."""
    if k is not None:
        return edge_values.view(num_points, k, -1).sum(dim=1)
    return scatter(edge_values, edge_index[1], dim=0, dim_size=num_points, reduce="sum")


ORDERS = ("act-norm", "norm-act")
"""Where the normalisation goes in a ``BasicConv``: ``act-norm`` after the activation (the
DeepGCN reference's ``Conv2d -> act -> norm``), ``norm-act`` before it (``Conv -> BN ->
ReLU``, as in ResNet). After a ReLU a channel that is almost never active has a batch
variance near zero, BatchNorm's running variance follows it down, and in evaluation a
point that does fire the channel is scaled by ``1 / sqrt(running_var + eps)``; normalising
the pre-activation avoids that."""


def _check_order(order: str) -> None:
    if order not in ORDERS:
        raise ConfigError(f"unknown act/norm order {order!r}; choose one of: {', '.join(ORDERS)}")


def _act_norm(x: Tensor, act: nn.Module, norm: nn.Module, order: str) -> Tensor:
    return norm(act(x)) if order == "act-norm" else act(norm(x))


def _act(name: str | None) -> nn.Module:
    return nn.Identity() if name is None or name == "none" else build_activation(name)


def _norm(name: str | None, channels: int) -> nn.Module:
    return nn.Identity() if name is None else build_norm(name, channels)


def _kaiming(lin: nn.Linear) -> None:
    # the reference's BasicConv.reset_parameters: kaiming_normal_ (fan_in, ReLU gain), zero bias
    nn.init.kaiming_normal_(lin.weight)
    if lin.bias is not None:
        nn.init.zeros_(lin.bias)


class BasicConv(nn.Module):
    r"""The reference's ``BasicConv`` for one layer: a 1x1 convolution (a Linear over the
    rows), then the activation, then the normalisation,
    :math:`\mathbf{x}' = \mathrm{norm}(\mathrm{act}(\mathbf{W}\mathbf{x} + \mathbf{b}))`
    (or ``act(norm(.))`` with ``order="norm-act"``).

    Args:
        in_channels: input width.
        out_channels: output width.
        norm: a :data:`~fathom.nn.norms.NORMS` name, or ``None`` for none.
        act: an :data:`~fathom.nn.activations.ACTIVATIONS` name, or ``None`` / ``"none"``.
        bias: learn an additive bias.
        order: ``act-norm`` (the reference's) or ``norm-act`` (:data:`ORDERS`).

    Shapes:
        x: ``[rows, in_channels]`` -> ``[rows, out_channels]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        norm: str | None = "batch",
        act: str | None = "relu",
        bias: bool = True,
        order: str = "act-norm",
    ) -> None:
        super().__init__()
        _check_order(order)
        self.order = order
        self.lin = nn.Linear(in_channels, out_channels, bias=bias)
        self.act = _act(act)
        self.norm = _norm(norm, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _kaiming(self.lin)
        if hasattr(self.norm, "reset_parameters"):
            self.norm.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return _act_norm(self.lin(x), self.act, self.norm, self.order)


class EdgeConv(nn.Module):
    r"""EdgeConv from `"Dynamic Graph CNN for Learning on Point Clouds"
    <https://arxiv.org/abs/1801.07829>`_ (Wang et al., TOG 2019), as DeepGCN's
    ``EdgeConv2d``: a ``BasicConv`` on every edge's features, then the max over neighbours,

    .. math::
        \mathbf{x}'_i = \max_{j \in \mathcal{N}(i)} \mathrm{norm}\big(\mathrm{act}(
            \mathbf{W}[\mathbf{x}_i, \mathbf{x}_j - \mathbf{x}_i] + \mathbf{b})\big),

    with the norm's statistics over edges. The linear map is evaluated as
    :math:`(\mathbf{W}_a - \mathbf{W}_b)\mathbf{x}_i + \mathbf{W}_b\mathbf{x}_j + \mathbf{b}`
    (``W = [W_a, W_b]``), two per-point projections gathered per edge; ``self.lin`` holds
    ``W`` exactly as the direct formulation (and PyG's :class:`~torch_geometric.nn.EdgeConv`
    with ``nn = Linear(2 * in_channels, out_channels)``) would.

    Args:
        in_channels: point feature width :math:`C`.
        out_channels: output width.
        norm: normalisation name over edges, or ``None``.
        act: activation name, or ``None``.
        bias: learn :math:`\mathbf{b}`.
        order: ``act-norm`` or ``norm-act`` (:data:`ORDERS`).

    Shapes:
        x: ``[N, in_channels]``, edge_index: ``[2, E]`` -> ``[N, out_channels]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        norm: str | None = "batch",
        act: str | None = "relu",
        bias: bool = True,
        order: str = "act-norm",
    ) -> None:
        super().__init__()
        _check_order(order)
        self.in_channels, self.out_channels, self.order = in_channels, out_channels, order
        self.lin = nn.Linear(2 * in_channels, out_channels, bias=bias)
        self.act = _act(act)
        self.norm = _norm(norm, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _kaiming(self.lin)
        if hasattr(self.norm, "reset_parameters"):
            self.norm.reset_parameters()

    def projections(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""The two per-point projections the edge features are sums of: the centre term
        :math:`(\mathbf{W}_a - \mathbf{W}_b)\mathbf{x}_i + \mathbf{b}` and the neighbour term
        :math:`\mathbf{W}_b\mathbf{x}_j`, from one matmul.

        Shapes:
            x: ``[N, in_channels]`` -> two ``[N, out_channels]``.
        """
        c, out = self.in_channels, self.out_channels
        w_a, w_b = self.lin.weight[:, :c], self.lin.weight[:, c:]
        # both projections in one matmul: [N, 2 * out] = [(W_a - W_b) x_i | W_b x_j]
        proj = x @ torch.cat([w_a - w_b, w_b]).t()
        if self.lin.bias is not None:
            proj = proj + torch.cat([self.lin.bias, self.lin.bias.new_zeros(out)])
        return proj[:, :out], proj[:, out:]

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        n, out = x.size(0), self.out_channels
        center, neighbour = self.projections(x)
        k = neighbours_per_point(edge_index, n)
        if k is not None:
            edges = gather_rows(neighbour, edge_index[0]).view(n, k, out) + center.unsqueeze(1)
        else:
            edges = gather_rows(neighbour, edge_index[0]) + gather_rows(center, edge_index[1])
        edges = _act_norm(edges.reshape(-1, out), self.act, self.norm, self.order)
        return _max_over_neighbours(edges, edge_index, n, k)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"


class MRConv(nn.Module):
    r"""Max-relative graph convolution from `"DeepGCNs: Can GCNs Go as Deep as CNNs?"
    <https://arxiv.org/abs/1904.03751>`_ (Li et al., ICCV 2019), DeepGCN's ``MRConv2d``:

    .. math::
        \mathbf{x}'_i = \mathrm{norm}\big(\mathrm{act}(\mathbf{W}[\mathbf{x}_i,
            \max_{j \in \mathcal{N}(i)} (\mathbf{x}_j - \mathbf{x}_i)] + \mathbf{b})\big).

    The max is taken as :math:`\max_j \mathbf{x}_j - \mathbf{x}_i`, the same number in
    floating point (rounding is monotone) without an ``[E, C]`` difference tensor.

    Args:
        in_channels: point feature width.
        out_channels: output width.
        norm: normalisation name (over points), or ``None``.
        act: activation name, or ``None``.
        bias: learn :math:`\mathbf{b}`.
        order: ``act-norm`` or ``norm-act`` (:data:`ORDERS`).

    Shapes:
        x: ``[N, in_channels]``, edge_index: ``[2, E]`` -> ``[N, out_channels]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        norm: str | None = "batch",
        act: str | None = "relu",
        bias: bool = True,
        order: str = "act-norm",
    ) -> None:
        super().__init__()
        self.nn = BasicConv(
            2 * in_channels, out_channels, norm=norm, act=act, bias=bias, order=order
        )

    def reset_parameters(self) -> None:
        self.nn.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        n = x.size(0)
        k = neighbours_per_point(edge_index, n)
        relative = _max_over_neighbours(gather_rows(x, edge_index[0]), edge_index, n, k) - x
        return self.nn(torch.cat([x, relative], dim=1))


class GraphSAGE(nn.Module):
    r"""DeepGCN's dense ``GraphSAGE`` variant (Hamilton et al., NeurIPS 2017, with a max
    aggregator): a ``BasicConv`` on every neighbour (statistics over edges), the max over
    neighbours, then a ``BasicConv`` on the point's features concatenated with it,

    .. math::
        \mathbf{m}_i = \max_{j \in \mathcal{N}(i)} \mathrm{norm}_1\big(\mathrm{act}(
            \mathbf{W}_1\mathbf{x}_j + \mathbf{b}_1)\big), \qquad
        \mathbf{x}'_i = \mathrm{norm}_2\big(\mathrm{act}(\mathbf{W}_2[\mathbf{x}_i,
            \mathbf{m}_i] + \mathbf{b}_2)\big),

    with :math:`\mathbf{W}_1` of shape ``[in, in]``. :math:`\mathbf{W}_1\mathbf{x}_j` is
    computed per point and gathered per edge.

    Args:
        in_channels: point feature width.
        out_channels: output width.
        norm: normalisation name, or ``None``.
        act: activation name, or ``None``.
        bias: learn the biases.
        order: ``act-norm`` or ``norm-act`` (:data:`ORDERS`).

    Shapes:
        x: ``[N, in_channels]``, edge_index: ``[2, E]`` -> ``[N, out_channels]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        norm: str | None = "batch",
        act: str | None = "relu",
        bias: bool = True,
        order: str = "act-norm",
    ) -> None:
        super().__init__()
        self.nn1 = BasicConv(in_channels, in_channels, norm=norm, act=act, bias=bias, order=order)
        self.nn2 = BasicConv(
            2 * in_channels, out_channels, norm=norm, act=act, bias=bias, order=order
        )

    def reset_parameters(self) -> None:
        self.nn1.reset_parameters()
        self.nn2.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        n = x.size(0)
        k = neighbours_per_point(edge_index, n)
        edges = gather_rows(self.nn1.lin(x), edge_index[0])  # [E, in]
        edges = _act_norm(edges, self.nn1.act, self.nn1.norm, self.nn1.order)
        message = _max_over_neighbours(edges, edge_index, n, k)
        return self.nn2(torch.cat([x, message], dim=1))


class GINConv(nn.Module):
    r"""DeepGCN's dense ``GINConv2d`` (Xu et al., "How Powerful are Graph Neural
    Networks?", ICLR 2019) with a one-layer ``BasicConv`` as the network and a learnable
    :math:`\epsilon` (initially 0):

    .. math::
        \mathbf{x}'_i = \mathrm{norm}\big(\mathrm{act}(\mathbf{W}((1 + \epsilon)\mathbf{x}_i
            + \textstyle\sum_{j \in \mathcal{N}(i)} \mathbf{x}_j) + \mathbf{b})\big).

    A k-NN graph with self-loops (DeepGCN's) counts the point itself in the sum too.

    Args:
        in_channels: point feature width.
        out_channels: output width.
        norm: normalisation name (over points), or ``None``.
        act: activation name, or ``None``.
        bias: learn :math:`\mathbf{b}`.
        order: ``act-norm`` or ``norm-act`` (:data:`ORDERS`).

    Shapes:
        x: ``[N, in_channels]``, edge_index: ``[2, E]`` -> ``[N, out_channels]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        norm: str | None = "batch",
        act: str | None = "relu",
        bias: bool = True,
        order: str = "act-norm",
    ) -> None:
        super().__init__()
        self.nn = BasicConv(in_channels, out_channels, norm=norm, act=act, bias=bias, order=order)
        self.eps = nn.Parameter(torch.zeros(1))

    def reset_parameters(self) -> None:
        self.nn.reset_parameters()
        nn.init.zeros_(self.eps)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        n = x.size(0)
        k = neighbours_per_point(edge_index, n)
        total = _sum_over_neighbours(gather_rows(x, edge_index[0]), edge_index, n, k)
        return self.nn((1 + self.eps) * x + total)


class PointConvFactory(Protocol):
    """``factory(in_channels, out_channels, *, norm, act, bias, order) -> conv``."""

    def __call__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        norm: str | None = ...,
        act: str | None = ...,
        bias: bool = ...,
        order: str = ...,
    ) -> nn.Module: ...


POINT_CONVS: Registry[PointConvFactory] = Registry("point conv")
POINT_CONVS.add("edge", EdgeConv)
POINT_CONVS.add("mr", MRConv)
POINT_CONVS.add("sage", GraphSAGE)
POINT_CONVS.add("gin", GINConv)


def build_point_conv(
    name: str,
    in_channels: int,
    out_channels: int,
    *,
    norm: str | None,
    act: str | None,
    bias: bool = True,
    order: str = "act-norm",
) -> nn.Module:
    """A fresh point-cloud conv ``conv(x, edge_index) -> [N, out_channels]``.

    Args:
        name: a key of :data:`POINT_CONVS` (``edge``, ``mr``, ``sage``, ``gin``); an unknown
            one raises a :class:`~fathom.errors.ConfigError` listing them.
        in_channels: input width.
        out_channels: output width.
        norm: normalisation name (:data:`~fathom.nn.norms.NORMS`), or ``None``.
        act: activation name (:data:`~fathom.nn.activations.ACTIVATIONS`), or ``None``.
        bias: learn biases.
        order: ``act-norm`` (the reference's) or ``norm-act`` (:data:`ORDERS`).
    """
    return POINT_CONVS.get(name)(
        in_channels, out_channels, norm=norm, act=act, bias=bias, order=order
    )
