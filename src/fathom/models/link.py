"""Link-prediction models: a node encoder plus an edge decoder (GAE's inner product, a
linear layer on the Hadamard product, or an MLP), built by
:func:`fathom.models.build.build_model` with a ``Head("link", …)``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from fathom.nn.aggregations import gather_rows
from fathom.registry import Registry

__all__ = ["DECODERS", "DotDecoder", "HadamardDecoder", "LinkModel", "MLPDecoder", "build_decoder"]


class DotDecoder(nn.Module):
    r"""Inner-product decoder (GAE): :math:`s_{ij} = h_i^\top h_j`.

    Shapes:
        z: ``[N, d]``, pairs: ``[2, P]`` -> ``[P]`` logits; :meth:`dense`: ``[N, N]``.
    """

    def forward(self, z: Tensor, pairs: Tensor) -> Tensor:
        return (gather_rows(z, pairs[0]) * gather_rows(z, pairs[1])).sum(dim=-1)

    def dense(self, z: Tensor) -> Tensor:
        """Logits of all ``N^2`` ordered pairs: ``Z Z^T``."""
        return z @ z.t()


class HadamardDecoder(nn.Module):
    r"""A linear layer on the Hadamard product: :math:`s_{ij} = w^\top (h_i \odot h_j) + b`.

    Args:
        channels: embedding size ``d``.

    Shapes:
        z: ``[N, d]``, pairs: ``[2, P]`` -> ``[P]`` logits; :meth:`dense`: ``[N, N]``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.lin = nn.Linear(channels, 1)

    def forward(self, z: Tensor, pairs: Tensor) -> Tensor:
        return self.lin(gather_rows(z, pairs[0]) * gather_rows(z, pairs[1])).squeeze(-1)

    def dense(self, z: Tensor) -> Tensor:
        """Logits of all ``N^2`` ordered pairs: ``Z diag(w) Z^T + b``."""
        return (z * self.lin.weight) @ z.t() + self.lin.bias


class MLPDecoder(nn.Module):
    r"""A 2-layer MLP on the concatenation: :math:`s_{ij} = W_2\,\mathrm{ReLU}(W_1 [h_i, h_j])`.

    Not symmetric in ``i, j``; pairs are scored in the orientation given.

    Args:
        channels: embedding size ``d`` (the hidden layer has ``d`` units too).

    Shapes:
        z: ``[N, d]``, pairs: ``[2, P]`` -> ``[P]`` logits.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * channels, channels), nn.ReLU(), nn.Linear(channels, 1)
        )

    def forward(self, z: Tensor, pairs: Tensor) -> Tensor:
        return self.mlp(
            torch.cat([gather_rows(z, pairs[0]), gather_rows(z, pairs[1])], dim=-1)
        ).squeeze(-1)


DECODERS: Registry[Callable[[int], nn.Module]] = Registry("link.decoder (--decoder)")
DECODERS.add("dot", lambda channels: DotDecoder())
DECODERS.add("hadamard", HadamardDecoder)
DECODERS.add("mlp", MLPDecoder)


def build_decoder(name: str, channels: int) -> nn.Module:
    """The edge decoder ``name`` (``dot``/``hadamard``/``mlp``) for ``channels``-dim embeddings."""
    return DECODERS.get(name)(channels)


class LinkModel(nn.Module):
    """Node encoder + edge decoder: ``logits = decoder(encoder(x, edge_index), pairs)``.

    Args:
        encoder: any node model called as ``encoder(x, edge_index) -> [N, d]``.
        decoder: scores pairs of embeddings, ``decoder(z, pairs) -> [P]`` logits (a sigmoid
            gives probabilities).
        feature_decoder: optional ``[N, d] -> [N, F]`` map reconstructing node features
            (denoising autoencoder), trained with the rest.

    Shapes:
        x: ``[N, F]``, edge_index: ``[2, E]``, pairs: ``[2, P]`` -> ``[P]``.
    """

    def __init__(
        self, encoder: nn.Module, decoder: nn.Module, feature_decoder: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.encoder, self.decoder, self.feature_decoder = encoder, decoder, feature_decoder

    def encode(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.encoder(x, edge_index)

    def decode(self, z: Tensor, pairs: Tensor) -> Tensor:
        return self.decoder(z, pairs)

    def forward(self, x: Tensor, edge_index: Tensor, pairs: Tensor) -> Tensor:
        return self.decode(self.encode(x, edge_index), pairs)
