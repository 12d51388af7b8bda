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

A dataset published with its own split (OGB's ``ogbg-molhiv``: the scaffold split, an
:class:`~fathom.data.graph_datasets.OfficialSplit`) is not cross-validated: one model per
seed trains on the official training graphs, selects its epoch on the validation graphs and
is tested on the test graphs (:func:`official_plans`), with OGB's metric from its official
evaluator: ROC-AUC for molhiv's binary task, as ``{split}_auc`` (:class:`GraphBinaryClassification`,
binary cross-entropy on one logit per task, ``val_auc`` selects).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from fathom.config import ExperimentConfig, register_section, require
from fathom.data.graph_datasets import OfficialSplit, validate_graphs
from fathom.data.ogb_datasets import OGB_DATASETS
from fathom.errors import ConfigError
from fathom.models.build import Head
from fathom.tasks.batches import shuffled_batches, split_batches
from fathom.tasks.node import _auc_as_auto
from fathom.tasks.spec import TASKS, FitPlan, TaskSpec
from fathom.train.evaluators import OGBEvaluator, mean_task_roc_auc, ogb_evaluator
from fathom.train.loop import FitResult, model_device, to_device

__all__ = [
    "GraphBinaryClassification",
    "GraphClassification",
    "GraphSplits",
    "GraphTask",
    "GraphTaskConfig",
    "combine_folds",
    "fold_seed",
    "official_plans",
    "paper_protocol",
    "stratified_holdout",
    "stratified_kfold",
]


@dataclass(frozen=True)
class GraphTaskConfig:
    """Graph classification (``task: graph``): node states -> readout -> classifier."""

    readout: str = "sum"
    """Graph readout of node states: ``sum``, ``mean``, ``max`` or ``attention`` (gated
    attention pooling, Li et al. 2016)."""
    readout_layers: str = "last"
    """``last``: read out the last layer; ``all``: read out the input and every layer and
    concatenate (the GIN paper's readout, Xu et al. ICLR 2019)."""
    pool: str = "none"
    """Hierarchical pooling between blocks: ``none``, ``topk`` (Gao & Ji 2019; Cangea et
    al. 2018) or ``sag`` (SAGPool, Lee et al. ICML 2019); the readouts after every pooling
    are summed."""
    pool_ratio: float = 0.5
    """Fraction of nodes kept by each pooling."""
    pool_every: int = 1
    """Pool after every this many blocks."""
    folds: int = 10
    """Stratified cross-validation folds; each fold is the test set once."""
    val_fraction: float = 0.1
    """Inner validation set: this fraction of each training fold (stratified), used to pick
    the epoch; the test fold is never looked at for selection."""

    def head(self) -> Head:
        """The readout (and pooling) this section puts on the node stack."""
        return Head.of(
            "graph",
            readout=self.readout,
            readout_layers=self.readout_layers,
            pool=self.pool,
            pool_ratio=self.pool_ratio,
            pool_every=self.pool_every,
        )


def check_graph_section(g: GraphTaskConfig) -> None:
    """Value ranges of the ``graph`` section."""
    require(
        g.readout in ("sum", "mean", "max", "attention"),
        "graph.readout",
        "must be sum, mean, max or attention",
        g.readout,
    )
    require(
        g.readout_layers in ("last", "all"),
        "graph.readout_layers",
        "must be last or all",
        g.readout_layers,
    )
    require(g.pool in ("none", "topk", "sag"), "graph.pool", "must be none, topk or sag", g.pool)
    require(0.0 < g.pool_ratio <= 1.0, "graph.pool_ratio", "must be in (0, 1]", g.pool_ratio)
    require(g.pool_every >= 1, "graph.pool_every", "must be >= 1", g.pool_every)
    require(g.folds >= 2, "graph.folds", "must be >= 2", g.folds)
    require(0.0 < g.val_fraction < 1.0, "graph.val_fraction", "must be in (0, 1)", g.val_fraction)


register_section("graph", GraphTaskConfig, check_graph_section, keyed_at_default=True)


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

    def batches(self, data: GraphSplits) -> Iterator[tuple[Batch, float]]:
        """One pass over the shuffled training graphs, each batch weighted by its graphs."""
        return shuffled_batches(
            data.train, self.batch_size, self.generator, lambda b: float(b.num_graphs)
        )

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """Cross-entropy of one mini-batch of graphs (model in train mode)."""
        out = model(batch.x, batch.edge_index, batch.batch)
        return F.cross_entropy(out, batch.y, label_smoothing=self.label_smoothing)

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
        device = model_device(model)
        for split, batches in self._batches(data).items():
            correct, loss, n = 0, 0.0, 0
            for batch in batches:
                batch = to_device(batch, device)
                out = model(batch.x, batch.edge_index, batch.batch)
                loss += F.cross_entropy(out, batch.y, reduction="sum").item()
                correct += int((out.argmax(dim=-1) == batch.y).sum())
                n += batch.num_graphs
            metrics[f"{split}_acc"] = correct / n if n else float("nan")
            metrics[f"{split}_loss"] = loss / n if n else float("nan")
        model.train(was_training)
        return metrics


class GraphBinaryClassification(GraphClassification):
    """Binary classification of graphs on ``T`` tasks (OGB's molecule datasets): one logit
    per task, binary cross-entropy with logits over the labelled entries (``y == y``, as
    OGB's examples mask missing labels); ROC-AUC averaged over the tasks.

    Labels ``y`` are read as ``[num_graphs, T]`` 0/1 (``[1]`` per graph for one task).
    ``{split}_loss`` is the mean BCE of the split, ``{split}_auc`` its ROC-AUC by OGB's
    ``evaluator`` when given, else :func:`~fathom.train.evaluators.mean_task_roc_auc` (the
    same definition); ``monitor: auto`` selects on ``val_auc``. Batching as
    :class:`GraphClassification`.

    Args:
        batch_size, seed: as :class:`GraphClassification`.
        evaluator: OGB's official evaluator of the dataset.
    """

    default_monitor = "val_auc"

    def __init__(
        self, batch_size: int = 32, seed: int = 0, evaluator: OGBEvaluator | None = None
    ) -> None:
        super().__init__(batch_size, seed)
        self.evaluator = evaluator

    @staticmethod
    def _bce(out: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        y = y.view(out.shape).to(out.dtype)
        labelled = ~torch.isnan(y)  # NaN marks a missing label
        return F.binary_cross_entropy_with_logits(out[labelled], y[labelled], reduction=reduction)

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """Binary cross-entropy of one mini-batch of graphs (model in train mode)."""
        return self._bce(model(batch.x, batch.edge_index, batch.batch), batch.y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: GraphSplits) -> dict[str, float]:
        """``{train,val,test}_{auc,loss}`` in eval mode (``nan`` for an empty split)."""
        was_training = model.training
        model.eval()
        metrics: dict[str, float] = {}
        device = model_device(model)
        try:
            for split, batches in self._batches(data).items():
                outs, ys = [], []
                for batch in batches:
                    batch = to_device(batch, device)
                    out = model(batch.x, batch.edge_index, batch.batch).float()
                    outs.append(out.cpu())
                    ys.append(batch.y.view(out.shape).cpu())
                if not outs:
                    metrics[f"{split}_auc"] = metrics[f"{split}_loss"] = float("nan")
                    continue
                out, y = torch.cat(outs), torch.cat(ys)
                metrics[f"{split}_auc"] = (
                    self.evaluator.score(y, out)
                    if self.evaluator is not None
                    else mean_task_roc_auc(y, out)
                )
                metrics[f"{split}_loss"] = self._bce(out, y).item()
        finally:
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


def fold_plans(cfg: ExperimentConfig, graphs: Sequence[Data]) -> Iterator[FitPlan]:
    """The fits of one seed's stratified ``cfg.graph.folds``-fold cross-validation.

    Folds come from :func:`stratified_kfold` with ``cfg.seed``; the inner validation split
    of fold ``k`` (:func:`stratified_holdout`, ``cfg.graph.val_fraction``) from
    :func:`fold_seed` ``(cfg.seed, k)``, so splits depend only on the seed and the labels.
    Fold ``k`` is seeded with ``fold_seed(cfg.seed, k)`` (the model's initialisation and the
    batch-shuffling generator). Per-layer diagnostics measure fold 0's model on its
    validation graphs, as one disjoint union (a graph's smoothing does not depend on the
    others: no edge joins them).

    Raises:
        DataError: invalid graphs (:func:`~fathom.data.graph_datasets.validate_graphs`).
        ConfigError: a class smaller than ``graph.folds``.
    """
    validate_graphs(graphs)
    graphs = list(graphs)
    y = torch.tensor([int(g.y.view(-1)[0]) for g in graphs])
    num_classes = int(y.max()) + 1
    in_channels = int(graphs[0].x.size(1))
    g = cfg.graph
    head = g.head()
    for k, (train_idx, test_idx) in enumerate(stratified_kfold(y, g.folds, cfg.seed)):
        seed = fold_seed(cfg.seed, k)
        fit_idx, val_idx = stratified_holdout(y, train_idx, g.val_fraction, seed)
        data = GraphSplits(
            train=[graphs[i] for i in fit_idx.tolist()],
            val=[graphs[i] for i in val_idx.tolist()],
            test=[graphs[i] for i in test_idx.tolist()],
        )
        yield FitPlan(
            seed=seed,
            data=data,
            in_channels=in_channels,
            out_channels=num_classes,
            objective=GraphClassification(
                cfg.train.batch_size, seed=seed, label_smoothing=cfg.train.label_smoothing
            ),
            head=head,
            diagnose=Batch.from_data_list(data.val) if k == 0 else None,
        )


def official_plans(cfg: ExperimentConfig, graphs: OfficialSplit) -> Iterator[FitPlan]:
    """The one fit of a seed on a dataset's official split (OGB's ``ogbg-molhiv``): train on
    its ``train`` graphs, select the epoch on ``valid``, test on ``test``; seeded with
    ``cfg.seed``. The objective is OGB's metric's: :class:`GraphBinaryClassification` (one
    logit per task) for ROC-AUC, :class:`GraphClassification` otherwise, scored by the
    dataset's official evaluator. Per-layer diagnostics measure the validation graphs.

    Raises:
        DataError: invalid graphs (:func:`~fathom.data.graph_datasets.validate_graphs`).
    """
    validate_graphs(graphs)
    train, val, test = graphs.parts()
    data = GraphSplits(train=train, val=val, test=test)
    evaluator = ogb_evaluator(graphs.name)
    objective: GraphClassification
    if evaluator is not None and evaluator.key == "auc":
        objective = GraphBinaryClassification(cfg.train.batch_size, cfg.seed, evaluator)
        out_channels = evaluator.num_tasks
    else:
        objective = GraphClassification(
            cfg.train.batch_size, seed=cfg.seed, label_smoothing=cfg.train.label_smoothing
        )
        out_channels = max(int(g.y.view(-1)[0]) for g in graphs) + 1
    yield FitPlan(
        seed=cfg.seed,
        data=data,
        in_channels=int(graphs[0].x.size(1)),
        out_channels=out_channels,
        objective=objective,
        head=cfg.graph.head(),
        diagnose=Batch.from_data_list(val),
    )


def combine_folds(results: Sequence[FitResult]) -> FitResult:
    """One seed's cross-validation result from its folds' fits.

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
    """
    first = results[0]
    records: list[dict[str, Any]] = []
    curves: list[list[float]] = []
    for k, fitted in enumerate(results):
        curves.append([float(r["test_acc"]) for r in fitted.history])
        records.append(
            {
                "fold": k,
                "status": fitted.status,
                "message": fitted.message,
                "best_epoch": fitted.best_epoch,
                "epochs": fitted.epochs,
                "time_s": fitted.time_s,
                **fitted.metrics,
            }
        )
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


class GraphTask(TaskSpec):
    """``task: graph``: graph classification of a dataset of graphs, with stratified k-fold
    cross-validation (one model per fold), or on the official split of an OGB dataset;
    node stack -> readout (-> pooling) -> classifier."""

    name = "graph"
    description = "graph classification with stratified k-fold cross-validation"
    archs = ("deep",)
    batches_itself = True

    @staticmethod
    def _official(cfg: ExperimentConfig) -> bool:
        """Whether ``cfg``'s dataset has an official split (an OGB graph dataset)."""
        name = cfg.data.name
        return name in OGB_DATASETS and OGB_DATASETS.get(name).kind == "graph"

    def check(self, cfg: ExperimentConfig) -> None:
        # val_auc, a monitor of ROC-AUC datasets only, is checked by check_official
        super().check(_auc_as_auto(cfg))
        self.check_official(cfg)
        require(
            not (cfg.train.layerwise and cfg.graph.readout_layers == "all"),
            "train.layerwise",
            "cannot be combined with graph.readout_layers 'all' (its readouts are fixed to "
            "every block)",
            cfg.train.layerwise,
        )
        require(
            cfg.model.memory == "plain",
            "model.memory",
            "applies to tasks node, link, autoencoder and segmentation (graph classification "
            "reads every layer's states for its readout)",
            cfg.model.memory,
        )
        # the probes measure every layer on the input graph; after a pooling a layer holds
        # only the kept nodes, on a graph the probes do not see
        require(
            not (cfg.train.diagnose_every and cfg.graph.pool != "none"),
            "train.diagnose_every",
            f"cannot be combined with graph.pool (--pool) {cfg.graph.pool!r} (pooled layers "
            "live on graphs the probes do not see)",
            cfg.train.diagnose_every,
        )

    def check_official(self, cfg: ExperimentConfig) -> None:
        """Official splits are not cross-validated (``graph.folds`` / ``graph.val_fraction``
        left at their defaults); ``val_auc`` is for ROC-AUC datasets, which report no
        accuracy."""
        auc = self._official(cfg) and OGB_DATASETS.get(cfg.data.name).multi_label
        monitor = cfg.train.monitor
        require(
            monitor != ("val_acc" if auc else "val_auc"),
            "train.monitor",
            f"must be auto, val_auc or val_loss for {cfg.data.name!r} (ROC-AUC, no accuracy)"
            if auc
            else f"must be auto, {', '.join(self.monitors)} for task {cfg.task!r} with dataset "
            f"{cfg.data.name!r} (val_auc: ROC-AUC datasets, ogbg-molhiv)",
            monitor,
        )
        if not self._official(cfg):
            return
        defaults = GraphTaskConfig()
        for key in ("folds", "val_fraction"):
            value = getattr(cfg.graph, key)
            require(
                value == getattr(defaults, key),
                f"graph.{key}",
                f"applies to cross-validated datasets; {cfg.data.name!r} has an official split",
                value,
            )
        require(
            not (auc and cfg.train.label_smoothing),
            "train.label_smoothing",
            f"is not available for {cfg.data.name!r} (binary tasks)",
            cfg.train.label_smoothing,
        )

    def load(self, cfg: ExperimentConfig) -> Any:
        from fathom.data.graph_datasets import load_graph_dataset

        return load_graph_dataset(cfg.data, seed=cfg.seed)

    def describe(self, data: Any) -> dict[str, Any]:
        from fathom.data.graph_datasets import describe_graph_dataset

        return describe_graph_dataset(data)

    def size(self, cfg: ExperimentConfig, described: dict[str, Any]) -> str:
        protocol = "official split" if self._official(cfg) else f"{cfg.graph.folds}-fold CV"
        return f"{described['num_graphs']} graphs, {protocol}, readout {cfg.graph.readout}"

    def fits_per_seed(self, cfg: ExperimentConfig) -> int:
        return 1 if self._official(cfg) else cfg.graph.folds

    def summary_lines(self, cfg: ExperimentConfig, result: Any) -> list[str]:
        return [
            f"seed {cv['seed']}: {cfg.graph.folds}-fold test accuracy "
            f"{100 * cv['test_acc']:.1f} ± {100 * cv['test_acc_fold_std']:.1f}; "
            f"GIN-paper protocol (epoch chosen on the test folds, optimistic) "
            f"{100 * cv['test_acc_paper']:.1f} ± {100 * cv['test_acc_paper_std']:.1f}"
            for cv in result.cross_validation
        ]

    def plan(self, cfg: ExperimentConfig, data: Any) -> Iterator[FitPlan]:
        if isinstance(data, OfficialSplit):
            return official_plans(cfg, data)
        return fold_plans(cfg, data)

    def combine(self, cfg: ExperimentConfig, results: list[FitResult]) -> FitResult:
        if self._official(cfg):
            (result,) = results
            return result
        return combine_folds(results)


TASKS.add("graph", GraphTask())
