"""IncepGCN: a GCN whose hidden block runs branches of every depth side by side."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import dropout_edge

from fathom.nn.convs import build_conv
from fathom.nn.dropouts import Dropout
from fathom.nn.layerwise import ChunkedGraph, apply_conv
from fathom.nn.norms import build_norm

__all__ = ["IncepGCN"]


class IncepGCN(nn.Module):
    """IncepGCN from `"DropEdge: Towards Deep Graph Convolutional Networks on Node
    Classification" <https://arxiv.org/abs/1907.10903>`_ (Rong et al., ICLR 2020), as in
    the authors' ``InecptionGCNBlock`` (DropEdge/DropEdge, ``src/layers.py``).

    An input GCN layer, one inception block whose branch :math:`j` is a stack of :math:`j`
    GCN layers on the input layer's output, and an output GCN layer on the concatenation:

    .. math::
        H &= \\mathrm{drop}(\\mathrm{ReLU}(\\mathrm{GCN}_{in}(X))), \\\\
        B_j &= (\\mathrm{drop} \\circ \\mathrm{ReLU} \\circ \\mathrm{GCN}_{j,j}) \\circ \\dots
        \\circ (\\mathrm{drop} \\circ \\mathrm{ReLU} \\circ \\mathrm{GCN}_{j,1})(H),
        \\quad j = 1, \\dots, L - 2, \\\\
        \\hat Y &= \\mathrm{GCN}_{out}(H \\,\\Vert\\, B_1 \\,\\Vert \\dots \\Vert\\, B_{L-2}),

    where :math:`L` is ``depth`` (the longest path has ``depth`` GCN layers). Every branch
    starts from :math:`H`, so the block holds :math:`\\sum_j j = (L-2)(L-1)/2` GCN layers:
    parameters and compute grow quadratically with depth, as in the original (a 64-deep
    IncepGCN has 1953 hidden layers). Every layer is a GCN (``conv: gcn``'s factory): by
    default Kipf & Welling's (:class:`~fathom.nn.convs.CachedGCNConv`, normalising the
    adjacency once per graph); the original's options are ``root_weight`` (a separate
    self-feature weight, ``--withloop``), ``adj_norm`` (``--normalization``) and ``norm``
    after every hidden layer, with ``head_norm`` after the output layer too (``--withbn``:
    ``norm="batch", head_norm=True``).

    ``edge_index`` may be a :class:`~fathom.nn.layerwise.ChunkedGraph` (layer-wise
    inference in eval mode): each GCN layer then runs by chunks of target nodes; the branch
    outputs are kept whole until the output layer reads their concatenation.

    Args:
        in_channels: input feature size.
        hidden_channels: width of every hidden GCN layer.
        out_channels: number of classes.
        depth: length of the longest input-to-output path, ``>= 2`` (``2``: no branches,
            a 2-layer GCN).
        dropout: dropout probability after the input layer and after every branch layer.
        root_weight: add a self-feature term to every GCN layer.
        adj_norm: propagation matrix of every GCN layer
            (:data:`~fathom.nn.propagation.ADJ_NORMS`).
        norm: normalisation (:data:`~fathom.nn.norms.NORMS`) after every hidden GCN layer,
            before its activation.
        head_norm: apply ``norm`` to the output layer's output too.
        drop_edge: DropEdge probability: in training mode each edge is removed with this
            probability at every forward pass (every epoch), the same sample for every layer.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, out_channels]``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        depth: int,
        dropout: float = 0.5,
        *,
        root_weight: bool = False,
        adj_norm: str = "sym",
        norm: str = "none",
        head_norm: bool = False,
        drop_edge: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"IncepGCN depth must be >= 2, got {depth}")
        self.depth = depth
        self.drop_edge = drop_edge

        def gcn(i: int, o: int) -> nn.Module:
            return build_conv("gcn", i, o, root_weight=root_weight, adj_norm=adj_norm)

        self.input_conv = gcn(in_channels, hidden_channels)
        self.branches = nn.ModuleList(
            nn.ModuleList(gcn(hidden_channels, hidden_channels) for _ in range(j))
            for j in range(1, depth - 1)
        )
        self.output_conv = gcn(hidden_channels * (depth - 1), out_channels)
        self.input_norm = build_norm(norm, hidden_channels)
        self.branch_norms = nn.ModuleList(
            nn.ModuleList(build_norm(norm, hidden_channels) for _ in range(j))
            for j in range(1, depth - 1)
        )
        self.output_norm = build_norm(norm if head_norm else "none", out_channels)
        self.dropout = Dropout(dropout)

    def reset_parameters(self) -> None:
        self.input_conv.reset_parameters()
        for branch in self.branches:
            for conv in branch:
                conv.reset_parameters()
        self.output_conv.reset_parameters()
        for norm in (
            self.input_norm,
            *(n for ns in self.branch_norms for n in ns),
            self.output_norm,
        ):
            if hasattr(norm, "reset_parameters"):
                norm.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor | ChunkedGraph) -> Tensor:
        if self.training and self.drop_edge > 0 and isinstance(edge_index, Tensor):
            edge_index = dropout_edge(edge_index, p=self.drop_edge)[0]
        h = self.dropout(self.input_norm(apply_conv(self.input_conv, x, edge_index)).relu())
        outs = [h]
        for branch, norms in zip(self.branches, self.branch_norms, strict=True):
            b = h
            for conv, norm in zip(branch, norms, strict=True):
                b = self.dropout(norm(apply_conv(conv, b, edge_index)).relu())
            outs.append(b)
        # no activation or dropout before the output layer, as in the original
        # in: [N, hidden * (depth - 1)]
        return self.output_norm(apply_conv(self.output_conv, torch.cat(outs, dim=-1), edge_index))
