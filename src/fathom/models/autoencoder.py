"""Graph autoencoder encoders: GAE and VGAE (Kipf & Welling, 2016).

From `"Variational Graph Auto-Encoders" <https://arxiv.org/abs/1611.07308>`_ (Kipf & Welling,
NIPS Bayesian Deep Learning workshop 2016; reference code tkipf/gae). Both encode node
features with two GCN layers into latent node embeddings ``Z``; an inner-product decoder
``sigmoid(Z Z^T)`` (:class:`fathom.tasks.link.DotDecoder`) reconstructs the adjacency matrix.
The training objective lives in :mod:`fathom.tasks.autoencoder`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fathom.nn.convs import GraphCachedGCNConv
from fathom.nn.sparse_input import SparseInputGCNConv

__all__ = ["MAX_LOGSTD", "GAEEncoder", "VGAEEncoder", "gaussian_kl"]

MAX_LOGSTD = 10.0
"""Upper clamp of ``log sigma`` (as PyG's ``VGAE``): keeps ``exp(2 log sigma)`` of the KL term
finite early in training; far above any value a trained model reaches."""


def gaussian_kl(mu: Tensor, logstd: Tensor) -> Tensor:
    r"""KL divergence of ``N(mu, sigma^2)`` from the standard normal, averaged over nodes.

    .. math::
        \mathrm{KL} = -\frac{1}{2N} \sum_{i=1}^{N} \sum_{d}
            \bigl(1 + 2\log\sigma_{id} - \mu_{id}^2 - \sigma_{id}^2\bigr)

    (PyG's ``VGAE.kl_loss``). Kipf & Welling's objective adds ``KL / N`` to the mean
    reconstruction loss, which :class:`~fathom.tasks.autoencoder.GraphAutoencoder` does.

    Shapes:
        mu, logstd: ``[num_nodes, latent]`` -> scalar.
    """
    return -0.5 * torch.mean(torch.sum(1 + 2 * logstd - mu**2 - logstd.exp() ** 2, dim=1))


class GAEEncoder(nn.Module):
    r"""GAE encoder: a two-layer GCN, no activation on the embeddings.

    .. math::
        Z = \hat{A}\,\mathrm{ReLU}(\hat{A} X W_0)\, W_1,
        \qquad \hat{A} = D^{-1/2}(A + I)D^{-1/2}

    Args:
        in_channels: input feature size.
        hidden_channels: width of the first layer (paper: 32).
        out_channels: latent size (paper: 16).
        dropout: dropout on the input of each layer in training (paper: 0).
        bias: add a bias to each GCN layer (the paper's layers have none).

    The first layer's :math:`XW` runs through a CSR copy of bag-of-words features on the CPU
    (:class:`~fathom.nn.sparse_input.SparseInputGCNConv`; one copy per input tensor, so a
    new one at every step where dropout is drawn on the features); equal to the dense
    product up to float rounding. Both layers normalise each graph once
    (:class:`~fathom.nn.convs.GraphCachedGCNConv`), bit for bit GCNConv's propagation.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, out_channels]``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 32,
        out_channels: int = 16,
        dropout: float = 0.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.dropout = dropout
        self.conv1 = SparseInputGCNConv(in_channels, hidden_channels, bias=bias)
        self.conv2 = GraphCachedGCNConv(hidden_channels, out_channels, bias=bias)

    def reset_parameters(self) -> None:
        self.conv1.reset_parameters()
        self.conv2.reset_parameters()

    def hidden(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """First layer: ``ReLU(Â X W_0)``."""
        x = F.dropout(x, self.dropout, self.training)
        return F.relu(self.conv1(x, edge_index))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        h = F.dropout(self.hidden(x, edge_index), self.dropout, self.training)
        return self.conv2(h, edge_index)


class VGAEEncoder(GAEEncoder):
    r"""VGAE encoder: a shared first GCN layer, then GCN layers for the mean and log-std.

    .. math::
        H = \mathrm{ReLU}(\hat{A} X W_0), \quad \mu = \hat{A} H W_\mu, \quad
        \log\sigma = \hat{A} H W_\sigma, \quad Z = \mu + \sigma \odot \varepsilon,\;
        \varepsilon \sim \mathcal{N}(0, I)

    In training mode ``forward`` returns a reparameterised sample ``Z``; in eval mode it
    returns ``mu`` (the paper's embeddings). ``mu`` and ``logstd`` of the last call are kept
    for :meth:`kl_loss`.

    Args:
        in_channels: input feature size.
        hidden_channels: width of the shared first layer (paper: 32).
        out_channels: latent size (paper: 16).
        dropout: dropout on the input of each layer in training (paper: 0).
        bias: add a bias to each GCN layer (the paper's layers have none).

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, out_channels]``.
    """

    variational = True
    """Marks encoders whose loss needs the KL term (read by the autoencoder task)."""

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 32,
        out_channels: int = 16,
        dropout: float = 0.0,
        bias: bool = False,
    ) -> None:
        super().__init__(in_channels, hidden_channels, out_channels, dropout, bias)
        # conv2 of the parent is the mean layer; one more layer for log sigma
        self.conv_logstd = GraphCachedGCNConv(hidden_channels, out_channels, bias=bias)
        self.mu: Tensor | None = None
        self.logstd: Tensor | None = None

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.conv_logstd.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        h = F.dropout(self.hidden(x, edge_index), self.dropout, self.training)
        self.mu = self.conv2(h, edge_index)
        self.logstd = self.conv_logstd(h, edge_index).clamp(max=MAX_LOGSTD)
        if not self.training:
            return self.mu
        return self.mu + torch.randn_like(self.mu) * self.logstd.exp()

    def kl_loss(self) -> Tensor:
        """:func:`gaussian_kl` of the last forward pass's ``mu`` and ``logstd``."""
        if self.mu is None or self.logstd is None:
            raise RuntimeError("VGAEEncoder.kl_loss needs a forward pass first")
        return gaussian_kl(self.mu, self.logstd)
