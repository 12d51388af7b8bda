"""Link prediction on one undirected graph: edge split, edge decoders, task and entry point.

Protocol (Kipf & Welling 2016, "Variational Graph Auto-Encoders"; PyG's
``RandomLinkSplit``): a random fraction of the undirected edges is held out for validation
and for test and *removed from the message-passing graph*; each held-out set is paired with
as many node pairs that are not edges of the full graph. The model encodes nodes on the
training graph only and scores pairs with a decoder; metrics are ROC-AUC, average precision
and Hits@K (:mod:`fathom.train.metrics`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from fathom.config import ExperimentConfig, register_section, require
from fathom.data.ogb_datasets import OGB_DATASETS, ogb_kind
from fathom.errors import ConfigError, DataError
from fathom.loaders.link import LINK_LOADERS, build_link_loader
from fathom.models.build import Head
from fathom.tasks.spec import TASKS, FitPlan, TaskSpec
from fathom.train.evaluators import OGBEvaluator, ogb_evaluator
from fathom.train.metrics import auc_and_ap, hits_at_k

__all__ = [
    "LinkPrediction",
    "LinkSplit",
    "LinkTask",
    "LinkTaskConfig",
    "NonEdgeSampler",
    "link_metrics",
    "official_split",
    "sample_non_edges",
    "split_edges",
    "undirected_edges",
]


@dataclass(frozen=True)
class LinkTaskConfig:
    """Link prediction and graph autoencoders (``task: link`` / ``task: autoencoder``)."""

    decoder: str = "dot"
    """Edge score from node embeddings: ``dot`` (inner product, GAE), ``hadamard`` (a linear
    layer on h_i * h_j) or ``mlp`` (a 2-layer MLP on [h_i, h_j]); a sigmoid gives the
    probability."""
    embedding_dim: int = 16
    """Width of the node embeddings the decoder scores (GAE's latent size)."""
    val_fraction: float = 0.05
    """Fraction of edges held out for validation (removed from the message-passing graph)."""
    test_fraction: float = 0.10
    """Fraction of edges held out for test (removed from the message-passing graph)."""
    neg_ratio: float = 1.0
    """Negative (non-)edges sampled per positive training edge, freshly every epoch."""
    hits_k: int = 20
    """K of the Hits@K metric (``*_hits``): the fraction of held-out edges scored above the
    K-th highest held-out negative."""
    corrupt_edges: float = 0.0
    """Denoising autoencoder: fraction of the message-passing edges hidden from the encoder
    at every training step (the decoder must still reconstruct them)."""
    corrupt_features: float = 0.0
    """Denoising autoencoder: fraction of feature entries zeroed at every training step."""
    feature_weight: float = 0.0
    """Weight of a feature-reconstruction loss (MSE of a linear decoder from the
    embeddings to the clean features; autoencoder task). 0: edges only."""
    reconstruction: str = "auto"
    """Autoencoder task's adjacency-reconstruction loss: ``auto``, Kipf & Welling's over all
    N^2 node pairs when the decoder has a dense form and the graph has at most 5,000 nodes
    (sampled non-edges otherwise); ``sampled``, every training edge and ``neg_ratio`` freshly
    sampled non-edges per edge at each step, the unbiased estimate of the same loss in O(E)
    instead of O(N^2) (the work of PyG's ``GAE.recon_loss``)."""

    def head(self, reconstruct_features: bool = False) -> Head:
        """The edge decoder (and, for a feature loss, the feature decoder) on the encoder."""
        return Head.of("link", decoder=self.decoder, reconstruct_features=reconstruct_features)


def check_link_section(lk: LinkTaskConfig) -> None:
    """Value ranges of the ``link`` section."""
    require(
        lk.decoder in ("dot", "hadamard", "mlp"),
        "link.decoder",
        "must be dot, hadamard or mlp",
        lk.decoder,
    )
    require(lk.embedding_dim >= 1, "link.embedding_dim", "must be >= 1", lk.embedding_dim)
    require(0.0 < lk.val_fraction < 1.0, "link.val_fraction", "must be in (0, 1)", lk.val_fraction)
    require(
        0.0 < lk.test_fraction < 1.0, "link.test_fraction", "must be in (0, 1)", lk.test_fraction
    )
    require(
        lk.val_fraction + lk.test_fraction < 1.0,
        "link.val_fraction",
        "plus link.test_fraction must be < 1",
        lk.val_fraction + lk.test_fraction,
    )
    require(lk.neg_ratio > 0, "link.neg_ratio", "must be > 0", lk.neg_ratio)
    require(lk.hits_k >= 1, "link.hits_k", "must be >= 1", lk.hits_k)
    require(
        0.0 <= lk.corrupt_edges < 1.0, "link.corrupt_edges", "must be in [0, 1)", lk.corrupt_edges
    )
    require(
        0.0 <= lk.corrupt_features < 1.0,
        "link.corrupt_features",
        "must be in [0, 1)",
        lk.corrupt_features,
    )
    require(lk.feature_weight >= 0, "link.feature_weight", "must be >= 0", lk.feature_weight)
    require(
        lk.reconstruction in ("auto", "sampled"),
        "link.reconstruction",
        "must be auto or sampled",
        lk.reconstruction,
    )


register_section(
    "link",
    LinkTaskConfig,
    check_link_section,
    keyed_at_default=True,
    unkeyed_at_default=("reconstruction",),
)

SPLITS = ("train", "val", "test")

# Below this many forbidden pairs per candidate pair, rejection sampling is cheap; above it
# (dense graphs) enumerating every pair is both faster and guaranteed to terminate.
_ENUMERATE_ABOVE_DENSITY = 0.5

# Largest bitmap of forbidden pairs (one bit per key ``i * N + j``) a sampler keeps for its
# membership test: N <= 23,170 nodes (PubMed's 19,717 take 46 MiB); larger graphs search the
# sorted keys instead.
_BITMAP_MAX_BYTES = 64 << 20


# --------------------------------------------------------------------------- edge sets


def undirected_edges(edge_index: Tensor) -> Tensor:
    """Each undirected edge once, as ``(i, j)`` with ``i < j``, sorted; self loops dropped.

    A directed edge ``(j, i)`` without its reverse counts as the undirected edge ``{i, j}``.

    Shapes:
        edge_index: ``[2, num_edges]`` -> ``[2, num_undirected_edges]``.
    """
    row, col = edge_index
    keep = row != col
    low, high = torch.minimum(row, col)[keep], torch.maximum(row, col)[keep]
    # one int64 key per pair, ordered as the pairs are lexicographically: a 1-D unique is
    # about 45x faster than unique(dim=1) on the pairs (Cora's training graph: 2.6 vs 119 ms)
    n = int(high.max()) + 1 if high.numel() else 1
    keys = torch.unique(low * n + high)
    return torch.stack([keys // n, keys % n])


def _keys(pairs: Tensor, num_nodes: int) -> Tensor:
    """One integer per canonical pair ``(i, j)``: ``i * N + j``."""
    return pairs[0] * num_nodes + pairs[1]


class NonEdgeSampler:
    """Draws uniformly random distinct node pairs that are not edges of one graph: negative
    examples (:func:`sample_non_edges`), with the graph's forbidden pairs found once, not at
    every draw (a training loop draws from the same graph at every step).

    Pairs are canonical ``(i, j)`` with ``i < j`` (no self loops), none an edge of
    ``edge_index`` in either direction nor a pair of ``exclude``. Plain torch, so the draws
    follow ``generator`` (or the global torch seed when it is ``None``); rejection sampling,
    or enumeration of all pairs when most pairs are forbidden.

    Args:
        edge_index: edges whose pairs may not be drawn.
        num_nodes: number of nodes ``N``.
        exclude: further forbidden pairs (any orientation).
        bitmap: keep a bitmap of the forbidden pairs (up to :data:`_BITMAP_MAX_BYTES`) for
            a faster membership test at every draw; ``False`` for a sampler drawn from once,
            where building it (46 MiB for a PubMed-sized graph) costs more than it saves.
            The draws are the same either way.

    Shapes:
        edge_index: ``[2, E]``, exclude: ``[2, E']``.
    """

    def __init__(
        self,
        edge_index: Tensor,
        num_nodes: int,
        *,
        exclude: Tensor | None = None,
        bitmap: bool = True,
    ) -> None:
        forbidden_pairs = edge_index if exclude is None else torch.cat([edge_index, exclude], 1)
        self.num_nodes = num_nodes
        # drawn on the CPU from the CPU generator, so a seed gives the same pairs on every device
        self.forbidden = _keys(undirected_edges(forbidden_pairs.cpu()), num_nodes)  # sorted
        self.total = num_nodes * (num_nodes - 1) // 2
        self.available = self.total - self.forbidden.numel()
        self._empty = edge_index.new_empty((2, 0))
        # one bit per key: a lookup instead of a binary search (14K keys on a Cora-sized
        # graph, 1 thread: 0.08 against 0.92 ms)
        self._bitmap: Tensor | None = None
        size = (num_nodes * num_nodes + 7) // 8
        if bitmap and self.forbidden.numel() and size <= _BITMAP_MAX_BYTES:
            table = torch.zeros(size, dtype=torch.uint8)
            # the keys are distinct, so summing each byte's bits sets them
            bits = (1 << (self.forbidden & 7)).to(torch.uint8)
            self._bitmap = table.index_add_(0, self.forbidden >> 3, bits)

    def _allowed(self, keys: Tensor) -> Tensor:
        """Which ``keys`` (in ``[0, N^2)``) are not forbidden (``~torch.isin(keys,
        forbidden)``): a bitmap lookup, or a binary search in the sorted forbidden keys without
        a bitmap (``bitmap=False``, or one that would exceed :data:`_BITMAP_MAX_BYTES`)."""
        if self.forbidden.numel() == 0:
            return torch.ones_like(keys, dtype=torch.bool)
        if self._bitmap is not None:
            return (self._bitmap[keys >> 3] >> (keys & 7).to(torch.uint8)) & 1 == 0
        at = torch.searchsorted(self.forbidden, keys).clamp_(max=self.forbidden.numel() - 1)
        return self.forbidden[at] != keys

    def sample(self, num_samples: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``num_samples`` distinct non-edges, on ``edge_index``'s device.

        Raises:
            DataError: fewer than ``num_samples`` non-edges exist.

        Shapes:
            -> ``[2, num_samples]``.
        """
        num_nodes = self.num_nodes
        if num_samples > self.available:
            raise DataError(
                f"cannot sample {num_samples} non-edges: the graph of {num_nodes} nodes has only "
                f"{self.available} node pairs that are not edges"
            )
        if num_samples <= 0:
            return self._empty
        if self.forbidden.numel() > _ENUMERATE_ABOVE_DENSITY * self.total:
            candidates = _keys(torch.triu_indices(num_nodes, num_nodes, 1), num_nodes)
            candidates = candidates[self._allowed(candidates)]
        else:
            candidates = self.forbidden.new_empty(0)
            while candidates.numel() < num_samples:
                missing = num_samples - candidates.numel()
                # oversample so one round nearly always suffices
                draw = int(1.2 * missing * self.total / self.available) + 16
                i = torch.randint(num_nodes, (draw,), generator=generator)
                j = torch.randint(num_nodes, (draw,), generator=generator)
                keys = torch.minimum(i, j) * num_nodes + torch.maximum(i, j)
                keys = keys[(i != j) & self._allowed(keys)]
                candidates = torch.unique(torch.cat([candidates, keys]))
        # a uniformly random subset of the candidates (unique() sorted them)
        keys = candidates[torch.randperm(candidates.numel(), generator=generator)[:num_samples]]
        return torch.stack([keys // num_nodes, keys % num_nodes]).to(self._empty.device)


def sample_non_edges(
    edge_index: Tensor,
    num_nodes: int,
    num_samples: int,
    *,
    exclude: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Uniformly random distinct node pairs that are not edges: negative examples (one draw
    of a :class:`NonEdgeSampler`; build the sampler once to draw from a graph repeatedly).

    Args:
        edge_index: edges whose pairs may not be drawn.
        num_nodes: number of nodes ``N``.
        num_samples: pairs to draw.
        exclude: further forbidden pairs (any orientation).
        generator: random source; ``None``: torch's global generator.

    Raises:
        DataError: fewer than ``num_samples`` non-edges exist.

    Shapes:
        edge_index: ``[2, E]``, exclude: ``[2, E']`` -> ``[2, num_samples]``.
    """
    sampler = NonEdgeSampler(edge_index, num_nodes, exclude=exclude, bitmap=False)
    return sampler.sample(num_samples, generator=generator)


@dataclass
class LinkSplit:
    """Edges of one graph split for link prediction (pairs canonical, ``i < j``).

    ``train_edge_index`` is the message-passing graph: both directions of the training
    edges, nothing else. ``*_pos`` are edges, ``*_neg`` non-edges of the full graph (val, test
    and train-evaluation negatives pairwise disjoint). ``train_eval_pos`` is a fixed sample
    of the training edges (as many as test edges) scored against ``train_eval_neg`` for the
    ``train_*`` metrics.
    """

    num_nodes: int
    train_edge_index: Tensor
    train_pos: Tensor
    val_pos: Tensor
    val_neg: Tensor
    test_pos: Tensor
    test_neg: Tensor
    train_eval_pos: Tensor
    train_eval_neg: Tensor

    def pairs(self, split: str) -> tuple[Tensor, Tensor]:
        """``(positives, negatives)`` scored for the metrics of ``split`` (train/val/test)."""
        if split == "train":
            return self.train_eval_pos, self.train_eval_neg
        return getattr(self, f"{split}_pos"), getattr(self, f"{split}_neg")

    def sizes(self) -> dict[str, int]:
        """Number of undirected edges / negative pairs per part."""
        return {
            "train_edges": self.train_pos.size(1),
            "val_edges": self.val_pos.size(1),
            "test_edges": self.test_pos.size(1),
            "val_negatives": self.val_neg.size(1),
            "test_negatives": self.test_neg.size(1),
        }

    def train_data(self, data: Data) -> Data:
        """``data``'s node features on the training graph (what the encoder may see)."""
        return Data(x=data.x, edge_index=self.train_edge_index, num_nodes=self.num_nodes)

    def to(self, device: torch.device | str) -> LinkSplit:
        """This split with every edge set on ``device`` (itself when already there)."""
        if self.train_edge_index.device == torch.device(device):
            return self
        return dataclasses.replace(
            self,
            **{
                f.name: getattr(self, f.name).to(device)
                for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), Tensor)
            },
        )


def split_edges(
    data: Data, val_fraction: float = 0.05, test_fraction: float = 0.10, seed: int = 0
) -> LinkSplit:
    """Randomly split the undirected edges of ``data`` into train / val / test.

    Each undirected edge is counted once (self loops are dropped). ``floor(fraction * E)``
    edges (at least one) go to validation and to test and are removed from the
    message-passing graph; the rest train. Validation and test each get as many negatives,
    drawn from pairs that are not edges of the full graph, without self loops or duplicates
    and disjoint between the splits (Kipf & Welling's ``mask_test_edges``). A local generator
    seeded with ``seed`` makes the split reproducible without touching the global seed.

    Args:
        data: an undirected graph (``edge_index`` with both directions, or either).
        val_fraction: fraction of edges held out for validation.
        test_fraction: fraction of edges held out for test.
        seed: seed of the split.

    Raises:
        DataError: the graph has no edges, or too few non-edges for the negatives.
        ConfigError: fractions out of range or leaving no training edge.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < value < 1.0:
            raise ConfigError(f"link.{name} must be in (0, 1), got {value!r}")
    num_nodes = int(data.num_nodes)
    edges = undirected_edges(data.edge_index)
    num_edges = edges.size(1)
    if num_edges == 0:
        raise DataError(f"link prediction needs edges, got a graph of {num_nodes} nodes and none")
    num_val = max(1, math.floor(val_fraction * num_edges))
    num_test = max(1, math.floor(test_fraction * num_edges))
    num_train = num_edges - num_val - num_test
    if num_train < 1:
        raise ConfigError(
            f"link.val_fraction {val_fraction} and link.test_fraction {test_fraction} leave no "
            f"training edge of {num_edges}"
        )
    generator = torch.Generator().manual_seed(seed)
    edges = edges[:, torch.randperm(num_edges, generator=generator)]
    val_pos, test_pos = edges[:, :num_val], edges[:, num_val : num_val + num_test]
    train_pos = edges[:, num_val + num_test :]
    num_train_eval = min(num_train, num_test)
    # one draw for all negatives keeps them distinct across splits
    neg = sample_non_edges(
        edges, num_nodes, num_val + num_test + num_train_eval, generator=generator
    )
    return LinkSplit(
        num_nodes=num_nodes,
        train_edge_index=to_undirected(train_pos, num_nodes=num_nodes),
        train_pos=train_pos,
        val_pos=val_pos,
        val_neg=neg[:, :num_val],
        test_pos=test_pos,
        test_neg=neg[:, num_val : num_val + num_test],
        # train_pos is in random order, so its head is a random sample
        train_eval_pos=train_pos[:, :num_train_eval],
        train_eval_neg=neg[:, num_val + num_test :],
    )


def official_split(data: Data, seed: int = 0) -> LinkSplit:
    """The published split of an OGB link dataset (``data.split_edges``, ogbl-collab).

    The message-passing graph is ``data.edge_index`` (OGB's training graph, both
    directions); positives and negatives of validation and test are OGB's own. The
    ``train_*`` metrics score a seeded sample of the training edges (as many as test edges)
    against as many pairs that are edges of no split.

    Raises:
        DataError: ``data`` has no ``split_edges`` or lacks one of its parts.
    """
    parts = getattr(data, "split_edges", None)
    needed = ("train", "valid", "test", "valid_neg", "test_neg")
    if not isinstance(parts, dict) or any(k not in parts for k in needed):
        raise DataError(f"an official link split needs data.split_edges with {', '.join(needed)}")
    num_nodes = int(data.num_nodes)
    train_pos = parts["train"]
    num_eval = min(train_pos.size(1), parts["test"].size(1))
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randperm(train_pos.size(1), generator=generator)[:num_eval]
    known = torch.cat([train_pos, parts["valid"], parts["test"]], dim=1)
    return LinkSplit(
        num_nodes=num_nodes,
        train_edge_index=data.edge_index,
        train_pos=train_pos,
        val_pos=parts["valid"],
        val_neg=parts["valid_neg"],
        test_pos=parts["test"],
        test_neg=parts["test_neg"],
        train_eval_pos=train_pos[:, sample],
        train_eval_neg=sample_non_edges(known, num_nodes, num_eval, generator=generator),
    )


# --------------------------------------------------------------------------- task


def link_metrics(pos_logits: Tensor, neg_logits: Tensor, hits_k: int) -> dict[str, float]:
    """``{auc, ap, hits, loss}`` of positive vs negative pair logits (loss: mean BCE)."""
    logits = torch.cat([pos_logits, neg_logits])
    labels = torch.cat([torch.ones_like(pos_logits), torch.zeros_like(neg_logits)])
    auc, ap = auc_and_ap(logits, labels)
    return {
        "auc": auc,
        "ap": ap,
        "hits": hits_at_k(pos_logits, neg_logits, hits_k),
        "loss": F.binary_cross_entropy_with_logits(logits, labels).item(),
    }


class LinkPrediction:
    """Binary cross-entropy on training edges vs fresh negatives; AUC / AP / Hits@K.

    The encoder always sees ``split.train_edge_index`` (held-out edges never pass messages)
    and the node features ``data.x``. Full batch, each :meth:`loss` draws ``neg_ratio``
    times as many non-edges of the training graph as training edges from torch's global
    generator (so a seeded run repeats). With a ``loader``
    (:func:`fathom.loaders.link.build_link_loader`), one step per mini-batch of the training
    graph: the encoder sees the batch's subgraph and the loss scores its
    ``edge_label_index`` against ``edge_label`` (training edges and the loader's random
    negatives, PyG's link-level batch format). :meth:`evaluate` scores each split's fixed
    positives and negatives on the whole training graph.

    Args:
        split: the edge split (:func:`split_edges`).
        neg_ratio: negatives per training edge and step.
        hits_k: K of Hits@K.
        loader: an iterable of link mini-batches (one pass per epoch); ``None``: full batch.
        evaluator: the dataset's official evaluator (an OGB link dataset): ``*_hits`` is its
            Hits@K (ogbl-collab: K = 50) instead of fathom's.
    """

    default_monitor = "val_auc"

    def __init__(
        self,
        split: LinkSplit,
        neg_ratio: float = 1.0,
        hits_k: int = 20,
        loader: Iterable[Data] | None = None,
        evaluator: OGBEvaluator | None = None,
    ) -> None:
        self.split, self.neg_ratio, self.hits_k = split, neg_ratio, hits_k
        self.loader, self.evaluator = loader, evaluator

    @functools.cached_property
    def non_edges(self) -> NonEdgeSampler:
        """The training graph's non-edges, drawn on the CPU; built at the first full-batch
        step that samples (mini-batch steps and dense reconstruction never do)."""
        return NonEdgeSampler(self.split.train_edge_index.cpu(), self.split.num_nodes)

    def batches(self, data: Data) -> Iterator[tuple[Data, float]]:
        """The epoch's batches, each weighted by its positive supervision edges (the whole
        training graph once, weight 1, without a loader)."""
        if self.loader is None:
            yield data, 1.0
            return
        for batch in self.loader:
            yield batch, float(batch.edge_label.sum())

    def _check(self, data: Data) -> None:
        if int(data.num_nodes) != self.split.num_nodes:
            raise DataError(
                f"data has {data.num_nodes} nodes but the edge split was made for "
                f"{self.split.num_nodes}"
            )
        # the split follows the data to its device (once: ``to`` returns it when there)
        self.split = self.split.to(data.x.device)

    def loss(self, model: nn.Module, data: Data) -> Tensor:
        """Training loss (model in train mode)."""
        if "edge_label_index" in data:  # a mini-batch: its subgraph and supervision pairs
            z = model.encode(data.x, data.edge_index)
            logits = model.decode(z, data.edge_label_index)
            return F.binary_cross_entropy_with_logits(logits, data.edge_label.to(logits.dtype))
        self._check(data)
        split = self.split
        z = model.encode(data.x, split.train_edge_index)
        pos = split.train_pos
        num_neg = max(1, round(self.neg_ratio * pos.size(1)))
        neg = self.non_edges.sample(num_neg).to(pos.device)
        logits = model.decode(z, torch.cat([pos, neg], dim=1))
        labels = torch.cat([logits.new_ones(pos.size(1)), logits.new_zeros(num_neg)])
        return F.binary_cross_entropy_with_logits(logits, labels)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Data) -> dict[str, float]:
        """``{train,val,test}_{auc,ap,hits,loss}`` from one eval-mode encoding."""
        self._check(data)
        was_training = model.training
        model.eval()
        z = model.encode(data.x, self.split.train_edge_index)
        metrics: dict[str, float] = {}
        for name in SPLITS:
            pos, neg = self.split.pairs(name)
            pos_logits, neg_logits = model.decode(z, pos), model.decode(z, neg)
            scores = link_metrics(pos_logits, neg_logits, self.hits_k)
            if self.evaluator is not None:
                scores["hits"] = self.evaluator.score_links(pos_logits, neg_logits)
            metrics.update({f"{name}_{k}": v for k, v in scores.items()})
        model.train(was_training)
        return metrics


# --------------------------------------------------------------------------- task spec


class LinkTask(TaskSpec):
    """``task: link``: split one graph's edges (``cfg.seed``), encode nodes on the training
    graph, score pairs with the ``link.decoder``; AUC / AP / Hits@K, ``val_auc`` by default."""

    name = "link"
    description = "link prediction (held-out edges, AUC / AP / Hits@K)"
    monitors = ("val_loss", "val_auc", "val_ap", "val_hits")
    refused_archs = ("dgi",)  # a self-supervised model of its own, not a link encoder
    loaders = LINK_LOADERS

    def check(self, cfg: ExperimentConfig) -> None:
        super().check(cfg)
        name = cfg.data.name
        if ogb_kind(name) is None:
            return
        require(
            ogb_kind(name) == "link",
            "task",
            f"must be 'node' or 'graph' for the OGB dataset {name!r}",
            cfg.task,
        )
        lk, default = cfg.link, LinkTaskConfig()
        for key in ("val_fraction", "test_fraction"):
            require(
                getattr(lk, key) == getattr(default, key),
                f"link.{key}",
                f"does not apply to {name!r} (its published split is used)",
                getattr(lk, key),
            )
        k = int(OGB_DATASETS.get(name).eval_metric.split("@")[1])
        require(
            lk.hits_k in (k, default.hits_k),
            "link.hits_k",
            f"is {k} for {name!r} (its official evaluator's Hits@{k})",
            lk.hits_k,
        )

    def objective(self, cfg: ExperimentConfig, split: LinkSplit, train_data: Data) -> Any:
        """The training objective on ``split`` (:class:`LinkPrediction`), on mini-batches of
        ``train_data`` (the training graph) from ``train.loader``."""
        loader = build_link_loader(
            cfg.train.loader,
            train_data,
            split.train_pos,
            seed=cfg.seed,
            neg_ratio=cfg.link.neg_ratio,
            options=dataclasses.asdict(cfg.train),
        )
        return LinkPrediction(
            split,
            cfg.link.neg_ratio,
            cfg.link.hits_k,
            loader=loader,
            evaluator=ogb_evaluator(cfg.data.name),
        )

    def reconstructs_features(self, cfg: ExperimentConfig) -> bool:
        """Whether the model gets a feature decoder (autoencoders with a feature loss)."""
        return False

    def describe(self, data: Any) -> dict[str, Any]:
        """The graph's size; with a published split (no labels) its edges per part."""
        if "split_edges" not in data:
            return super().describe(data)
        parts = data.split_edges
        return {
            "name": getattr(data, "name", None),
            "num_nodes": data.num_nodes,
            "num_edges": data.num_edges,
            "num_features": data.num_features,
            **{f"{part}_edges": int(parts[part].size(1)) for part in ("train", "valid", "test")},
        }

    def plan(self, cfg: ExperimentConfig, data: Any) -> Iterator[FitPlan]:
        lk = cfg.link
        if "split_edges" in data:  # a published split (ogbl-collab)
            split = official_split(data, seed=cfg.seed)
        else:
            split = split_edges(data, lk.val_fraction, lk.test_fraction, seed=cfg.seed)
        train_data = split.train_data(data)
        yield FitPlan(
            seed=cfg.seed,
            data=train_data,
            in_channels=data.num_features,
            out_channels=lk.embedding_dim,
            objective=self.objective(cfg, split, train_data),
            head=lk.head(self.reconstructs_features(cfg)),
            # per-layer metrics of the encoder on the training (message-passing) graph
            diagnose=train_data,
            probe=lambda model: model.encoder,
        )


TASKS.add("link", LinkTask())
