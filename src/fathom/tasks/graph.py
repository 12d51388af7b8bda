r"""Graph classification with stratified k-fold cross-validation.

Protocol (per fold :math:`k` of ``graph.folds``): the fold is the test set; a stratified
``graph.val_fraction`` of the remaining graphs is an inner validation set that picks the
epoch (early-stopping checkpoint); the model trains on the rest in shuffled mini-batches.
The reported ``test_acc`` is the mean over folds of the test accuracy at each fold's
selected epoch: the test folds are never looked at for any choice.

For comparison with the literature the GIN paper's own protocol figure is reported beside it
(Xu et al., "How Powerful are Graph Neural Networks?", ICLR 2019, Sec. 7): train on the whole
training fold, take the single epoch that maximises the test accuracy *averaged over the
folds*, and report that average (``test_acc_paper``) and its std over folds. It selects on
the test folds, so it is optimistic; here it is computed from the same runs (which trained on
the training fold minus the inner validation set), and only the epoch choice differs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from fathom.config import ExperimentConfig
from fathom.data.graph_datasets import validate_graphs
from fathom.errors import ConfigError
from fathom.models.graph_classifier import build_graph_classifier
from fathom.seeding import seed_everything
from fathom.tasks.batches import split_batches
from fathom.train.callbacks import LayerDiagnostics
from fathom.train.loop import EpochCallback, FitResult, fit

__all__ = [
    "GraphClassification",
    "GraphSplits",
    "cross_validate",
    "fold_seed",
    "paper_protocol",
    "stratified_holdout",
    "stratified_kfold",
]


@dataclass
class GraphSplits:
    """The graphs of one cross-validation fold: ``train`` (optimised on), ``val`` (picks the
    epoch) and ``test`` (the held-out fold)."""

    train: list[Data]
    val: list[Data]
    test: list[Data]


class GraphClassification:
    """Cross-entropy over mini-batches of graphs; accuracy and loss on every split.

    Each training epoch visits the training graphs once in a new random order (PyG's
    ``DataLoader`` with a ``torch.Generator`` seeded with ``seed``, so the order is
    reproducible and independent of the global RNG), taking one optimiser step per batch.
    Evaluation runs in eval mode over fixed batches of ``batch_size`` graphs (collated once).

    Args:
        batch_size: graphs per mini-batch.
        seed: seed of the shuffling generator.
        label_smoothing: label smoothing of the training loss (evaluation losses are plain).

    Model interface: ``model(x, edge_index, batch) -> [num_graphs, num_classes]``.
    """

    default_monitor = "val_acc"

    def __init__(self, batch_size: int = 32, seed: int = 0, label_smoothing: float = 0.0) -> None:
        self.batch_size = batch_size
        self.label_smoothing = label_smoothing
        self.generator = torch.Generator().manual_seed(seed)
        self._eval_batches: dict[str, list[Batch]] = {}
        # the splits the batches were collated from: held, so an id is never recycled
        self._eval_of: GraphSplits | None = None

    def loss(self, model: nn.Module, data: GraphSplits) -> Tensor:
        """Training loss over all training graphs in one batch (``fit`` calls
        :meth:`train_epoch` instead; this exists for the ``Task`` protocol)."""
        batch = Batch.from_data_list(data.train)
        out = model(batch.x, batch.edge_index, batch.batch)
        return F.cross_entropy(out, batch.y, label_smoothing=self.label_smoothing)

    def train_epoch(
        self, model: nn.Module, data: GraphSplits, optimizer: torch.optim.Optimizer
    ) -> float:
        """One pass over the shuffled training graphs; the graph-weighted mean batch loss
        (``nan`` as soon as a batch's loss is not finite: no step is taken on it)."""
        model.train()
        loader = DataLoader(
            data.train, batch_size=self.batch_size, shuffle=True, generator=self.generator
        )
        total, count = 0.0, 0
        for batch in loader:
            optimizer.zero_grad(set_to_none=True)
            out = model(batch.x, batch.edge_index, batch.batch)
            loss = F.cross_entropy(out, batch.y, label_smoothing=self.label_smoothing)
            value = loss.item()
            if not math.isfinite(value):
                return float("nan")
            loss.backward()
            optimizer.step()
            total += value * batch.num_graphs
            count += batch.num_graphs
        return total / max(count, 1)

    def _batches(self, data: GraphSplits) -> dict[str, list[Batch]]:
        if self._eval_of is not data:
            self._eval_batches = split_batches(data, self.batch_size)
            self._eval_of = data
        return self._eval_batches

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: GraphSplits) -> dict[str, float]:
        """``{train,val,test}_{acc,loss}`` in eval mode (``nan`` for an empty split)."""
        was_training = model.training
        model.eval()
        metrics: dict[str, float] = {}
        for split, batches in self._batches(data).items():
            correct, loss, n = 0, 0.0, 0
            for batch in batches:
                out = model(batch.x, batch.edge_index, batch.batch)
                loss += F.cross_entropy(out, batch.y, reduction="sum").item()
                correct += int((out.argmax(dim=-1) == batch.y).sum())
                n += batch.num_graphs
            metrics[f"{split}_acc"] = correct / n if n else float("nan")
            metrics[f"{split}_loss"] = loss / n if n else float("nan")
        model.train(was_training)
        return metrics


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


def stratified_kfold(y: Tensor, folds: int, seed: int) -> list[tuple[Tensor, Tensor]]:
    """Stratified k-fold: every graph is in exactly one test fold, and each fold holds
    ``floor`` or ``ceil`` of ``n_c / folds`` graphs of every class ``c``.

    Each class's members are shuffled (a ``torch.Generator`` seeded with ``seed``) and dealt
    round-robin to the folds, each class starting where the previous one stopped, so fold
    sizes differ by at most one.

    Args:
        y: graph labels ``[num_graphs]`` (integers >= 0).
        folds: number of folds, >= 2.
        seed: shuffling seed.

    Returns:
        ``folds`` pairs ``(train_idx, test_idx)`` of sorted int64 indices.

    Raises:
        ConfigError: ``folds < 2``, or a class has fewer graphs than ``folds`` (some test
            fold would miss it; lower ``graph.folds``).
    """
    y = y.view(-1).long()
    if folds < 2:
        raise ConfigError(f"graph.folds (--folds) must be >= 2, got {folds}")
    counts = torch.bincount(y)
    present = counts.nonzero().view(-1)
    smallest = int(counts[present].min())
    if smallest < folds:
        cls = int(present[counts[present].argmin()])
        raise ConfigError(
            f"graph.folds (--folds) {folds} exceeds the {smallest} graphs of class {cls}: "
            f"every fold needs every class; lower graph.folds"
        )
    gen = torch.Generator().manual_seed(seed)
    fold_of = torch.empty_like(y)
    start = 0
    for c in present.tolist():
        members = (y == c).nonzero().view(-1)
        members = members[torch.randperm(members.numel(), generator=gen)]
        fold_of[members] = (start + torch.arange(members.numel())) % folds
        start = (start + members.numel()) % folds
    all_idx = torch.arange(y.numel())
    return [(all_idx[fold_of != k], all_idx[fold_of == k]) for k in range(folds)]


def stratified_holdout(y: Tensor, idx: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Split ``idx`` into (rest, held-out) with ``round(fraction * m_c)`` held-out graphs of
    each class ``c`` with ``m_c`` members in ``idx`` (at least one when ``m_c >= 2``, none
    when ``m_c == 1``). Shuffled with a ``torch.Generator`` seeded with ``seed``.

    Shapes:
        y: ``[num_graphs]``, idx: ``[m]`` -> two sorted index tensors partitioning ``idx``.
    """
    gen = torch.Generator().manual_seed(seed)
    labels = y.view(-1)[idx]
    held = []
    for c in torch.unique(labels).tolist():
        members = idx[labels == c]
        members = members[torch.randperm(members.numel(), generator=gen)]
        m = members.numel()
        k = min(max(round(fraction * m), 1), m - 1) if m >= 2 else 0
        held.append(members[:k])
    held_idx = torch.cat(held).sort().values if held else idx[:0]
    keep = ~torch.isin(idx, held_idx)
    return idx[keep].sort().values, held_idx


def fold_seed(seed: int, fold: int) -> int:
    """The seed of fold ``fold`` of a run with ``seed``: a hash of the pair (NumPy's
    ``SeedSequence``), so no two (seed, fold) pairs share their random streams."""
    return int(np.random.SeedSequence([seed, fold]).generate_state(1)[0])


# --------------------------------------------------------------------------------------------
# Cross-validation
# --------------------------------------------------------------------------------------------


def paper_protocol(curves: Sequence[Sequence[float]]) -> tuple[float, float, int]:
    """The GIN paper's figure from per-fold, per-epoch test accuracies ``curves[k][e]``:
    ``(mean, std, epoch)`` where ``epoch`` (1-based) maximises the mean over folds and
    ``mean`` / ``std`` (population) are over folds at that epoch (the earliest on ties).
    Only epochs every fold reached count; ``(nan, nan, 0)`` if there are none."""
    length = min((len(c) for c in curves), default=0)
    if length == 0:
        return float("nan"), float("nan"), 0
    acc = np.asarray([list(c[:length]) for c in curves], dtype=float)  # [folds, epochs]
    means = acc.mean(axis=0)
    best = int(np.argmax(means))
    return float(means[best]), float(acc[:, best].std()), best + 1


def cross_validate(
    cfg: ExperimentConfig,
    graphs: Sequence[Data],
    callbacks: Sequence[EpochCallback] = (),
    on_fold_end: Callable[[int, dict[str, Any]], None] | None = None,
) -> FitResult:
    """Stratified ``cfg.graph.folds``-fold cross-validation of the graph classifier of
    ``cfg`` (:func:`~fathom.models.graph_classifier.build_graph_classifier`) on ``graphs``.

    Folds come from :func:`stratified_kfold` with ``cfg.seed``; the inner validation split
    of fold ``k`` (:func:`stratified_holdout`, ``cfg.graph.val_fraction``) from
    :func:`fold_seed` ``(cfg.seed, k)``, so splits depend only on the seed and the labels.
    Before fold ``k`` everything is seeded with ``fold_seed(cfg.seed, k)``
    (:func:`~fathom.seeding.seed_everything`, and the batch-shuffling generator), a fresh
    model is built and :func:`~fathom.train.loop.fit` trains it with ``cfg.train``
    (``batch_size``, learning-rate decay, early stopping on ``monitor``) and ``callbacks``.
    ``on_fold_end(k, fold_record)`` is called after each fold.

    Returns:
        A :class:`~fathom.train.loop.FitResult` whose ``metrics`` are the means over folds
        of every fold metric (``test_acc`` …, each fold at its selected epoch) plus
        ``test_acc_fold_std`` (population std over folds), and the GIN paper's protocol
        figure ``test_acc_paper`` / ``test_acc_paper_std`` / ``test_acc_paper_epoch``
        (:func:`paper_protocol`); ``folds`` has one record per fold (``fold``, ``status``,
        ``message``, ``best_epoch``, ``epochs``, ``time_s`` and the fold's metrics);
        ``history`` is fold 0's; ``best_epoch`` the rounded mean of the folds' selected
        epochs, ``epochs`` the most any fold ran, ``time_s`` the total; ``status`` is
        ``diverged`` if any fold diverged.

    Raises:
        DataError: invalid graphs (:func:`~fathom.data.graph_datasets.validate_graphs`).
        ConfigError: a class smaller than ``graph.folds``; a model config that cannot
            classify graphs.
    """
    validate_graphs(graphs)
    graphs = list(graphs)
    y = torch.tensor([int(g.y.view(-1)[0]) for g in graphs])
    num_classes = int(y.max()) + 1
    in_channels = int(graphs[0].x.size(1))
    records: list[dict[str, Any]] = []
    curves: list[list[float]] = []
    first: FitResult | None = None
    for k, (train_idx, test_idx) in enumerate(stratified_kfold(y, cfg.graph.folds, cfg.seed)):
        seed = fold_seed(cfg.seed, k)
        fit_idx, val_idx = stratified_holdout(y, train_idx, cfg.graph.val_fraction, seed)
        data = GraphSplits(
            train=[graphs[i] for i in fit_idx.tolist()],
            val=[graphs[i] for i in val_idx.tolist()],
            test=[graphs[i] for i in test_idx.tolist()],
        )
        seed_everything(seed)
        model = build_graph_classifier(cfg.model, cfg.graph, in_channels, num_classes)
        task = GraphClassification(
            cfg.train.batch_size, seed=seed, label_smoothing=cfg.train.label_smoothing
        )
        tracker = None
        if cfg.train.diagnose_every and k == 0:
            # per-layer metrics of fold 0's model on its validation graphs, as one disjoint
            # union (a graph's smoothing does not depend on the others: no edge joins them)
            tracker = LayerDiagnostics(
                model, Batch.from_data_list(data.val), cfg.train.diagnose_every
            )
        fitted = fit(model, task, data, cfg.train, [*callbacks, *([tracker] if tracker else [])])
        if tracker is not None:
            tracker.finish(fitted)
        first = first or fitted
        curves.append([float(r["test_acc"]) for r in fitted.history])
        record = {
            "fold": k,
            "status": fitted.status,
            "message": fitted.message,
            "best_epoch": fitted.best_epoch,
            "epochs": fitted.epochs,
            "time_s": fitted.time_s,
            **fitted.metrics,
        }
        records.append(record)
        if on_fold_end is not None:
            on_fold_end(k, record)
    assert first is not None
    metrics: dict[str, float] = {}
    keys = list(dict.fromkeys(k for r in records for k in r if k.endswith(("_acc", "_loss"))))
    for key in keys:
        values = [float(r[key]) for r in records if key in r and math.isfinite(float(r[key]))]
        if values:
            metrics[key] = statistics.fmean(values)
    accs = [float(r["test_acc"]) for r in records if "test_acc" in r]
    metrics["test_acc_fold_std"] = statistics.pstdev(accs) if accs else float("nan")
    paper, paper_std, paper_epoch = paper_protocol(curves)
    metrics["test_acc_paper"] = paper
    metrics["test_acc_paper_std"] = paper_std
    metrics["test_acc_paper_epoch"] = float(paper_epoch)
    diverged = [r for r in records if r["status"] != "done"]
    return FitResult(
        status="diverged" if diverged else "done",
        metrics=metrics,
        best_epoch=round(statistics.fmean(r["best_epoch"] for r in records)),
        epochs=max(r["epochs"] for r in records),
        time_s=sum(r["time_s"] for r in records),
        history=first.history,
        message="; ".join(f"fold {r['fold']}: {r['message']}" for r in diverged),
        diagnostics=first.diagnostics,
        folds=records,
    )
