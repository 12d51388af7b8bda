"""Graph autoencoders: reconstruct the training graph's adjacency (GAE / VGAE), optionally
denoising. Same edge split, metrics and evaluation as link prediction (:mod:`.link`)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from fathom.config import ExperimentConfig
from fathom.errors import ConfigError
from fathom.tasks.link import LinkPrediction, LinkSplit, LinkTask, NonEdgeSampler
from fathom.tasks.spec import TASKS

__all__ = ["DENSE_MAX_NODES", "AutoencoderTask", "GraphAutoencoder", "reconstruction_loss"]

DENSE_MAX_NODES = 5000
"""Largest graph whose reconstruction loss is computed over all ``N^2`` pairs (an ``N x N``
logit matrix: 100 MB at 5,000 nodes; Cora's 2,708 take 29 MB). Larger graphs, and decoders
without a dense form (``mlp``), use sampled negatives."""


def reconstruction_loss(
    decoder: nn.Module,
    z: Tensor,
    edge_index: Tensor,
    num_nodes: int,
    *,
    dense: bool = True,
    neg_ratio: float = 1.0,
    non_edges: NonEdgeSampler | None = None,
) -> Tensor:
    r"""Kipf & Welling's weighted adjacency-reconstruction loss.

    From `"Variational Graph Auto-Encoders" <https://arxiv.org/abs/1611.07308>`_ (Kipf &
    Welling 2016; reference code tkipf/gae). Targets are :math:`A + I` (the reference code
    reconstructs self loops too); with :math:`E` the number of (directed) edges of
    :math:`A`, positives are up-weighted so that edges and non-edges weigh alike:

    .. math::
        \mathcal{L} = \frac{\text{norm}}{N^2} \sum_{i,j}
            \Bigl[ w^+ a_{ij} \log\sigma(s_{ij}) + (1 - a_{ij}) \log(1 - \sigma(s_{ij}))\Bigr],
        \quad w^+ = \frac{N^2 - E}{E}, \quad \text{norm} = \frac{N^2}{2(N^2 - E)}

    (negated). ``dense=True`` sums all :math:`N^2` pairs (``decoder.dense(z)``); otherwise
    every positive is scored and the non-edge sum is estimated without bias from
    ``neg_ratio`` times as many uniformly sampled non-edges (torch's global generator), in
    random orientation.

    Args:
        decoder: pair decoder; ``dense=True`` needs a ``dense(z) -> [N, N]`` method.
        z: node embeddings.
        edge_index: the graph to reconstruct (both directions, no self loops).
        num_nodes: ``N``.
        dense: all pairs, or sampled non-edges.
        neg_ratio: sampled non-edges per positive (sampled mode).
        non_edges: the sampler of ``edge_index``'s non-edges (sampled mode; default: one
            built at each call).

    Shapes:
        z: ``[N, d]``, edge_index: ``[2, E]`` -> scalar.
    """
    n2 = float(num_nodes) ** 2
    num_edges = edge_index.size(1)
    pos_weight = (n2 - num_edges) / num_edges
    norm = n2 / (2 * (n2 - num_edges))
    if dense:
        logits = decoder.dense(z)  # [N, N]
        target = torch.zeros_like(logits)
        target[edge_index[0], edge_index[1]] = 1.0
        target.fill_diagonal_(1.0)
        weight = torch.tensor(pos_weight, dtype=logits.dtype, device=logits.device)
        return norm * F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)
    loops = torch.arange(num_nodes, device=edge_index.device).repeat(2, 1)
    pos = torch.cat([edge_index, loops], dim=1)
    num_neg = max(1, round(neg_ratio * pos.size(1)))
    # drawn on the CPU (the same pairs on every device), then moved to the embeddings
    if non_edges is None:
        non_edges = NonEdgeSampler(edge_index, num_nodes)
    neg = non_edges.sample(num_neg)
    # the dense matrix holds both orientations; a random one keeps asymmetric decoders honest
    flip = torch.rand(num_neg, device=neg.device) < 0.5
    neg = torch.where(flip, neg.flip(0), neg).to(z.device)
    pos_logits, neg_logits = decoder(z, pos), decoder(z, neg)
    pos_sum = F.softplus(-pos_logits).sum()  # -log sigmoid(s)
    neg_mean = F.softplus(neg_logits).mean()  # -log(1 - sigmoid(s))
    num_non_edges = n2 - num_edges - num_nodes
    return norm / n2 * (pos_weight * pos_sum + num_non_edges * neg_mean)


class GraphAutoencoder(LinkPrediction):
    """GAE / VGAE training objective (Kipf & Welling 2016), optionally denoising.

    :meth:`loss` = :func:`reconstruction_loss` of the training graph (dense over all pairs
    when the decoder has a dense form and ``N <= dense_max_nodes``), plus ``KL / N`` when the
    encoder is variational (``encoder.variational``, :class:`~fathom.models.autoencoder.
    VGAEEncoder`), plus ``feature_weight`` times the MSE of ``model.feature_decoder(z)``
    against the clean features. Denoising (training steps only, fresh every step): the
    encoder sees the training graph with a ``corrupt_edges`` fraction of its undirected
    edges hidden and features with a ``corrupt_features`` fraction of entries zeroed, while
    the loss reconstructs the uncorrupted training graph and features. Evaluation is
    :meth:`LinkPrediction.evaluate` (uncorrupted, eval mode).

    Args:
        split: the edge split (:func:`~fathom.tasks.link.split_edges`).
        neg_ratio: sampled non-edges per positive when the loss is not dense.
        hits_k: K of Hits@K.
        corrupt_edges: fraction of message-passing edges hidden per training step.
        corrupt_features: fraction of feature entries zeroed per training step.
        feature_weight: weight of the feature-reconstruction MSE (needs
            ``model.feature_decoder``).
        dense_max_nodes: largest ``N`` reconstructed densely.
    """

    def __init__(
        self,
        split: LinkSplit,
        neg_ratio: float = 1.0,
        hits_k: int = 20,
        *,
        corrupt_edges: float = 0.0,
        corrupt_features: float = 0.0,
        feature_weight: float = 0.0,
        dense_max_nodes: int = DENSE_MAX_NODES,
    ) -> None:
        super().__init__(split, neg_ratio, hits_k)
        for name, value in (
            ("corrupt_edges", corrupt_edges),
            ("corrupt_features", corrupt_features),
        ):
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"link.{name} must be in [0, 1), got {value!r}")
        if feature_weight < 0:
            raise ConfigError(f"link.feature_weight must be >= 0, got {feature_weight!r}")
        self.corrupt_edges, self.corrupt_features = corrupt_edges, corrupt_features
        self.feature_weight, self.dense_max_nodes = feature_weight, dense_max_nodes

    def corrupt(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The encoder's noisy input ``(x, edge_index)`` for one training step."""
        edge_index = self.split.train_edge_index
        if self.corrupt_edges > 0:
            edges = self.split.train_pos
            num_hidden = int(self.corrupt_edges * edges.size(1))
            kept = edges[:, torch.randperm(edges.size(1))[num_hidden:]]
            edge_index = to_undirected(kept, num_nodes=self.split.num_nodes)
        if self.corrupt_features > 0:
            x = x * (torch.rand_like(x) >= self.corrupt_features)
        return x, edge_index

    def loss(self, model: nn.Module, data: Data) -> Tensor:
        """Training loss (model in train mode)."""
        self._check(data)
        split = self.split
        z = model.encode(*self.corrupt(data.x))
        dense = hasattr(model.decoder, "dense") and split.num_nodes <= self.dense_max_nodes
        loss = reconstruction_loss(
            model.decoder,
            z,
            split.train_edge_index,
            split.num_nodes,
            dense=dense,
            neg_ratio=self.neg_ratio,
            non_edges=self.non_edges,
        )
        if getattr(model.encoder, "variational", False):
            loss = loss + model.encoder.kl_loss() / split.num_nodes
        if self.feature_weight > 0:
            if model.feature_decoder is None:
                raise ConfigError(
                    f"link.feature_weight {self.feature_weight} needs a model with a feature "
                    "decoder"
                )
            loss = loss + self.feature_weight * F.mse_loss(model.feature_decoder(z), data.x)
        return loss


class AutoencoderTask(LinkTask):
    """``task: autoencoder``: the link task's split, model and evaluation, trained by
    :class:`GraphAutoencoder` (with ``model.arch: gae`` / ``vgae``, Kipf & Welling's GAE /
    VGAE); ``link.reconstruction: sampled`` samples non-edges at any size;
    ``link.corrupt_edges`` / ``corrupt_features`` / ``feature_weight`` make it
    denoising."""

    name = "autoencoder"
    description = "graph autoencoder (GAE / VGAE adjacency reconstruction, optionally denoising)"

    loaders = ("full",)  # the reconstruction loss reads the whole training graph

    def objective(self, cfg: ExperimentConfig, split: LinkSplit, train_data: Data) -> Any:
        lk = cfg.link
        return GraphAutoencoder(
            split,
            lk.neg_ratio,
            lk.hits_k,
            corrupt_edges=lk.corrupt_edges,
            corrupt_features=lk.corrupt_features,
            feature_weight=lk.feature_weight,
            dense_max_nodes=0 if lk.reconstruction == "sampled" else DENSE_MAX_NODES,
        )

    def reconstructs_features(self, cfg: ExperimentConfig) -> bool:
        return cfg.link.feature_weight > 0


TASKS.add("autoencoder", AutoencoderTask())
