r"""Tree-NeighborsMatch (``task: neighbors-match``): the over-squashing benchmark of Alon &
Yahav, `"On the Bottleneck of Graph Neural Networks and its Practical Implications"
<https://arxiv.org/abs/2006.05205>`_ (ICLR 2021), trained as the official code
(``tech-srl/bottleneck``) does.

Data: :func:`~fathom.data.neighbors_match.tree_neighbors_match` of radius ``r``, split 80/20
stratified by label. Model: :func:`~fathom.models.build.build_model` with the ``root`` head
(key and value embeddings summed, ``model.depth`` blocks, a bias-free linear map of each
root's state). Objective (:class:`NeighborsMatchObjective`): one *epoch* of ``fit`` is one
evaluation round of ``eval_every`` shuffled passes over the training trees; its
``train_acc`` is the running accuracy of the predictions made while training on it; the
round with the best training accuracy (gain above 1e-4) is selected; ``ReduceLROnPlateau``
(factor 0.5, patience 10, absolute threshold 1e-4) on the training accuracy; training stops
when a round reaches training accuracy 1.0 or after ``train.patience`` rounds without gain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fathom.config import ExperimentConfig, register_section, require
from fathom.data.neighbors_match import (
    MAX_RADIUS,
    MIN_RADIUS,
    NeighborsMatchBatch,
    NeighborsMatchData,
    batched_edge_index,
    tree_neighbors_match,
)
from fathom.data.splits import stratified_split_indices
from fathom.models.build import Head
from fathom.tasks.spec import TASKS, FitPlan, TaskSpec

__all__ = [
    "DATASET",
    "NeighborsMatchConfig",
    "NeighborsMatchObjective",
    "NeighborsMatchTask",
    "official_eval_every",
]

DATASET = "tree-neighbors-match"
"""The ``data.name`` of this task."""


def official_eval_every(radius: int) -> int:
    """Passes per evaluation round of the official run scripts: 1000 at r = 2, else 100."""
    return 1000 if radius == 2 else 100


@dataclass(frozen=True)
class NeighborsMatchConfig:
    """Tree-NeighborsMatch (``task: neighbors-match``): the trees and the official protocol."""

    radius: int = 2
    """Tree depth ``r`` (2-8): ``2^r`` leaves, and as many classes."""
    num_examples: int | None = None
    """Dataset size; ``None``: the official 96 / 8000 / 16000 / 32000 for r = 2 / 3 / 4 /
    >= 5."""
    eval_every: int | None = None
    """Passes over the training trees per evaluation round (one ``fit`` epoch); ``None``: the
    official 1000 at r = 2, else 100."""
    train_fraction: float = 0.8
    """Share of the trees trained on (stratified); the rest is the test set."""


def check_neighbors_match_section(c: NeighborsMatchConfig) -> None:
    """Value ranges of the ``neighbors_match`` section."""
    require(
        MIN_RADIUS <= c.radius <= MAX_RADIUS,
        "neighbors_match.radius",
        f"must be in {MIN_RADIUS}..{MAX_RADIUS}",
        c.radius,
    )
    require(
        c.num_examples is None or c.num_examples >= 2,
        "neighbors_match.num_examples",
        "must be >= 2",
        c.num_examples,
    )
    require(
        c.eval_every is None or c.eval_every >= 1,
        "neighbors_match.eval_every",
        "must be >= 1",
        c.eval_every,
    )
    require(
        0.0 < c.train_fraction < 1.0,
        "neighbors_match.train_fraction",
        "must be in (0, 1)",
        c.train_fraction,
    )


register_section("neighbors_match", NeighborsMatchConfig, check_neighbors_match_section)


class NeighborsMatchObjective:
    """Cross-entropy of the roots' logits over rounds of shuffled passes; the official
    NeighborsMatch protocol (module docstring).

    Args:
        train_idx, test_idx: example ids of the two splits.
        batch_size: trees per mini-batch.
        eval_every: passes over the training trees per round (one ``fit`` epoch).
        seed: seed of the shuffling generator (independent of the global RNG).
        deadline: ``time.perf_counter()`` value after which a round stops yielding batches
            (a time limit; not in the official code).

    Model interface: ``model(x, edge_index, root_index) -> [B, num_classes]``.
    """

    monitor = "train_acc"
    min_delta = 1e-4
    baseline = 0.0

    def __init__(
        self,
        train_idx: Tensor,
        test_idx: Tensor,
        batch_size: int,
        eval_every: int,
        seed: int = 0,
        deadline: float | None = None,
    ) -> None:
        self.train_idx, self.test_idx = train_idx, test_idx
        self.batch_size, self.eval_every = batch_size, eval_every
        self.shuffle = torch.Generator().manual_seed(seed)
        self.deadline = deadline
        self.timed_out = False
        self._edges: Tensor | None = None
        self._correct: Tensor | None = None
        self._seen = 0

    def _batch_edges(self, data: NeighborsMatchData) -> Tensor:
        # one disjoint union of batch_size trees, sliced for smaller batches
        if self._edges is None or self._edges.device != data.x.device:
            self._edges = batched_edge_index(data.edge_index, data.num_nodes, self.batch_size)
        return self._edges

    def batches(self, data: NeighborsMatchData) -> Iterator[tuple[NeighborsMatchBatch, float]]:
        """One round: a shuffled pass over ``eval_every`` copies of the training trees (one
        DataLoader over the copies, as the official code builds it)."""
        device = data.x.device
        train_idx = self.train_idx.to(device)
        n = train_idx.numel()
        order = torch.randperm(self.eval_every * n, generator=self.shuffle) % n
        order = train_idx[order.to(device)]
        edges = self._batch_edges(data)
        self._correct = torch.zeros((), dtype=torch.long, device=device)
        self._seen = 0
        for begin in range(0, order.numel(), self.batch_size):
            if self.deadline is not None and begin and time.perf_counter() > self.deadline:
                self.timed_out = True
                return
            batch = data.batch(order[begin : begin + self.batch_size], edges)
            yield batch, float(batch.num_graphs)

    def loss(self, model: nn.Module, batch: NeighborsMatchBatch) -> Tensor:
        """Cross-entropy of one batch; its predictions count toward the round's accuracy."""
        out = model(batch.x, batch.edge_index, batch.root_index)
        if self._correct is not None:
            self._correct += (out.detach().argmax(dim=1) == batch.y).sum()
        self._seen += batch.num_graphs
        return F.cross_entropy(out, batch.y)

    @torch.no_grad()
    def accuracy(self, model: nn.Module, data: NeighborsMatchData, index: Tensor) -> float:
        """Eval-mode accuracy on the trees ``index``."""
        was_training = model.training
        model.eval()
        index = index.to(data.x.device)
        edges = self._batch_edges(data)
        correct = torch.zeros((), dtype=torch.long, device=data.x.device)
        try:
            for start in range(0, index.numel(), self.batch_size):
                b = data.batch(index[start : start + self.batch_size], edges)
                correct += (model(b.x, b.edge_index, b.root_index).argmax(dim=1) == b.y).sum()
        finally:
            model.train(was_training)
        return int(correct.item()) / max(1, index.numel())

    def evaluate(self, model: nn.Module, data: NeighborsMatchData) -> dict[str, float]:
        """``train_acc`` (running, of the round just trained) and ``test_acc``."""
        correct = 0 if self._correct is None else int(self._correct.item())
        return {
            "train_acc": correct / max(1, self._seen),
            "test_acc": self.accuracy(model, data, self.test_idx),
        }

    def lr_schedule(self, optimizer: torch.optim.Optimizer) -> Callable[[dict[str, float]], None]:
        """The official ``ReduceLROnPlateau`` on the training accuracy."""
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", threshold_mode="abs", factor=0.5, patience=10
        )
        return lambda record: scheduler.step(record["train_acc"])

    def done(self, record: dict[str, float], best: bool) -> bool:
        """Solved: a new best round (a gain above 1e-4) reaches training accuracy 1."""
        return best and record["train_acc"] == 1.0


class NeighborsMatchTask(TaskSpec):
    """``task: neighbors-match``: Tree-NeighborsMatch of ``neighbors_match.radius``; selects
    on the training accuracy (the figure of the paper), reports the test accuracy beside it."""

    name = "neighbors-match"
    description = "Tree-NeighborsMatch over-squashing benchmark (Alon & Yahav, ICLR 2021)"
    monitors = ("train_acc",)
    archs = ("deep",)  # the root head wraps a block stack
    batches_itself = True

    def check(self, cfg: ExperimentConfig) -> None:
        require(
            cfg.data.name == DATASET,
            "data.name",
            f"must be {DATASET!r} for task 'neighbors-match'",
            cfg.data.name,
        )
        super().check(cfg)

    def load(self, cfg: ExperimentConfig) -> Any:
        c = cfg.neighbors_match
        return tree_neighbors_match(c.radius, num_examples=c.num_examples, seed=cfg.seed)

    def data_key(self, cfg: ExperimentConfig) -> tuple[Any, ...]:
        c = cfg.neighbors_match
        return (*super().data_key(cfg), c.radius, c.num_examples)

    def describe(self, data: Any) -> dict[str, Any]:
        return {
            "name": DATASET,
            "num_examples": len(data),
            "num_classes": data.num_classes,
            "nodes_per_tree": data.num_nodes,
            "leaves": data.num_leaves,
        }

    def size(self, cfg: ExperimentConfig, described: dict[str, Any]) -> str:
        return (
            f"r = {cfg.neighbors_match.radius}: {described['num_examples']} trees of "
            f"{described['nodes_per_tree']} nodes"
        )

    def eval_every(self, cfg: ExperimentConfig) -> int:
        """Passes per round of ``cfg`` (the section's, or the official one)."""
        c = cfg.neighbors_match
        return official_eval_every(c.radius) if c.eval_every is None else c.eval_every

    def split(self, cfg: ExperimentConfig, data: NeighborsMatchData) -> tuple[Tensor, Tensor]:
        """``(train_idx, test_idx)``, stratified by label with ``cfg.seed``."""
        return stratified_split_indices(
            data.y, train_fraction=cfg.neighbors_match.train_fraction, seed=cfg.seed
        )

    def plan(self, cfg: ExperimentConfig, data: Any) -> Iterator[FitPlan]:
        train_idx, test_idx = self.split(cfg, data)
        yield FitPlan(
            seed=cfg.seed,
            data=data,
            in_channels=data.num_classes,  # the symbols 0 … L, as many as the classes
            out_channels=data.num_classes,
            objective=NeighborsMatchObjective(
                train_idx,
                test_idx,
                cfg.train.batch_size,
                self.eval_every(cfg),
                seed=cfg.seed,
            ),
            head=Head.of("root", columns=2),
        )


TASKS.add("neighbors-match", NeighborsMatchTask())
