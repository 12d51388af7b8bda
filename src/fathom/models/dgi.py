"""Deep Graph Infomax: unsupervised node embeddings, evaluated by a linear probe."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import DeepGraphInfomax

from fathom.nn.convs import CachedGCNConv
from fathom.nn.sparse_input import SparseInput

__all__ = ["DGI", "GCNEncoder", "corrupt", "summarize"]


class GCNEncoder(nn.Module):
    """DGI's transductive encoder: one GCN layer with a PReLU,
    :math:`\\mathcal{E}(X, A) = \\mathrm{PReLU}(S X W + b)`,
    :math:`S = \\hat D^{-1/2} (A + I) \\hat D^{-1/2}`.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, hidden_channels]``.
    """

    def __init__(self, in_channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.conv = CachedGCNConv(in_channels, hidden_channels)
        self.act = nn.PReLU(hidden_channels)

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        self.act.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.act(self.conv(x, edge_index))


def corrupt(x: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
    """DGI's corruption :math:`\\mathcal{C}`: shuffle the rows of ``x`` (every node gets
    another node's features), keep the graph.

    Shapes:
        x: ``[num_nodes, channels]`` -> same; edge_index unchanged.
    """
    return x[torch.randperm(x.size(0), device=x.device)], edge_index


def summarize(z: Tensor, *args: object, **kwargs: object) -> Tensor:
    """DGI's readout :math:`\\mathcal{R}`: :math:`s = \\sigma(\\frac1N \\sum_i z_i)`.

    Extra arguments (PyG passes the encoder's inputs too) are ignored.

    Shapes:
        z: ``[num_nodes, hidden]`` -> ``[hidden]``.
    """
    return torch.sigmoid(z.mean(dim=0))


class DGI(nn.Module):
    """Deep Graph Infomax from `"Deep Graph Infomax" <https://arxiv.org/abs/1809.10341>`_
    (Veličković et al., ICLR 2019), transductive setup: a one-layer GCN encoder trained to
    tell true node embeddings from those of a row-shuffled graph, given the graph summary,

    .. math::
        Z = \\mathrm{PReLU}(S X W), \\quad \\tilde Z = \\mathrm{PReLU}(S X_{\\pi} W), \\quad
        s = \\sigma\\big(\\tfrac1N \\textstyle\\sum_i z_i\\big), \\quad
        D(z, s) = z^\\top \\mathbf{W}_D\\, s,

    .. math::
        \\mathcal{L} = -\\frac{1}{2N} \\sum_{i=1}^{N} \\big[\\log \\sigma(D(z_i, s))
        + \\log(1 - \\sigma(D(\\tilde z_i, s)))\\big]

    (binary cross-entropy on logits over the :math:`N` positive and :math:`N` negative
    pairs, as in the authors' code). Built on :class:`torch_geometric.nn.DeepGraphInfomax`
    (its bilinear discriminator and corruption plumbing); :meth:`forward` returns the
    embeddings :math:`Z` so probes and diagnostics see an ordinary ``model(x, edge_index)``.
    Trained by :class:`fathom.tasks.node.DGIObjective` through :func:`fathom.train.loop.fit`
    (``model.arch: dgi``).

    Args:
        in_channels: input feature size.
        hidden_channels: embedding size (paper: ``512``).

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, hidden_channels]``.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 512) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self._sparse_input = SparseInput()
        self.infomax = DeepGraphInfomax(
            hidden_channels,
            encoder=GCNEncoder(in_channels, hidden_channels),
            summary=summarize,
            corruption=corrupt,
        )

    @property
    def encoder(self) -> nn.Module:
        return self.infomax.encoder

    def reset_parameters(self) -> None:
        self.infomax.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Node embeddings :math:`Z`."""
        encoder = self.infomax.encoder
        if not self._one_product(edge_index):
            return encoder(x, edge_index)
        return encoder.act(encoder.conv.propagate_transformed(self._xw(x), edge_index))

    def _one_product(self, edge_index: Tensor) -> bool:
        """Whether the encoder's layer can take a precomputed :math:`XW` (its normalised
        propagation of an ``edge_index``; else the plain encoder runs, as PyG's would)."""
        return bool(self.infomax.encoder.conv.normalize) and edge_index.layout == torch.strided

    def _xw(self, x: Tensor) -> Tensor:
        """:math:`XW` of the encoder's GCN layer; on CPU, through a CSR copy of ``x`` when
        at most :data:`~fathom.nn.sparse_input.SPARSE_INPUT_MAX_DENSITY` of it is non-zero
        (bag-of-words features: Cora 1.3 %, CiteSeer 0.9 %; 5-12x faster than the dense
        product there, benchmarks/dgi_speed.py)."""
        lin = self.infomax.encoder.conv.lin
        return self._sparse_input.linear(x, lin.weight, lin.bias)

    def loss(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """The DGI objective on one fresh corruption of ``x`` (a scalar).

        The corruption shuffles the rows of ``x``, so the corrupted view's :math:`X_{\\pi} W`
        is taken as the rows of :math:`XW` in the same order (one product per step, not two;
        the same random permutation as :func:`corrupt` draws)."""
        encoder = self.infomax.encoder
        if not self._one_product(edge_index):
            pos_z, neg_z, summary = self.infomax(x, edge_index)
            return self._bce(pos_z, neg_z, summary)
        xw = self._xw(x)
        pos_z = encoder.act(encoder.conv.propagate_transformed(xw, edge_index))
        perm = torch.randperm(x.size(0), device=x.device)
        neg_z = encoder.act(encoder.conv.propagate_transformed(xw[perm], edge_index))
        return self._bce(pos_z, neg_z, summarize(pos_z))

    def _bce(self, pos_z: Tensor, neg_z: Tensor, summary: Tensor) -> Tensor:
        """Binary cross-entropy of the discriminator on the true and corrupted embeddings."""
        pos = self.infomax.discriminate(pos_z, summary, sigmoid=False)  # [num_nodes]
        neg = self.infomax.discriminate(neg_z, summary, sigmoid=False)
        logits = torch.cat([pos, neg])
        labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
        return F.binary_cross_entropy_with_logits(logits, labels)
