"""Node classification on one graph with train / val / test node masks (``task: node``):
transductive (:class:`NodeClassification`), multi-label (:class:`MultiLabelNodeClassification`,
``y`` of shape ``[N, tasks]``: ogbn-proteins), inductive (:class:`InductiveNodeClassification`)
or self-supervised with a linear probe (:class:`DGIObjective`, ``model.arch: dgi``).

On an OGB dataset (:mod:`fathom.data.ogb_datasets`) the metric is OGB's official evaluator's
(:class:`~fathom.train.evaluators.OGBEvaluator`): accuracy as ``{split}_acc`` (ogbn-arxiv,
ogbn-products), ROC-AUC averaged over the tasks as ``{split}_auc`` (ogbn-proteins, which
selects on ``val_auc``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from fathom.config import ExperimentConfig, require
from fathom.data.inductive import InductiveViews, inductive_views
from fathom.data.ogb_datasets import OGB_DATASETS
from fathom.loaders.build import build_loader, parse_fanouts
from fathom.nn.trim import trim_kwargs
from fathom.tasks.spec import TASKS, FitPlan, TaskSpec
from fathom.train.evaluators import OGBEvaluator, mean_task_roc_auc, ogb_evaluator
from fathom.train.inference import NodeEvaluation
from fathom.train.loop import Objective

__all__ = [
    "DGIObjective",
    "InductiveNodeClassification",
    "MultiLabelNodeClassification",
    "NodeClassification",
    "NodeTask",
]

SPLITS = ("train", "val", "test")


class NodeClassification:
    """Cross-entropy on the training nodes; accuracy and loss on every split.

    Full batch by default: one forward pass over the whole graph per step. With a
    ``loader`` (:mod:`fathom.loaders`), one step per sampled subgraph: on its first
    ``batch_size`` nodes (neighbour sampling: the seed nodes, PyG's batch format), or on its
    training nodes (partitions), weighted by ``node_norm`` where the loader gives one
    (GraphSAINT's loss normalisation). Evaluation is on the whole graph: one forward pass,
    or as ``evaluation`` says (layer-wise, or on sampled subgraphs: ``train.eval_mode``).

    Args:
        label_smoothing: label smoothing of the training loss (Szegedy et al. 2016; one of
            the Bag-of-Tricks remedies); evaluation losses are never smoothed.
        loader: an iterable of mini-batch ``Data`` (one pass per epoch); ``None``: full
            batch.
        evaluator: OGB's official evaluator of the dataset, which then scores ``*_acc``
            (``None``: fathom's own accuracy; both are the fraction of argmax hits).
        evaluation: how the evaluated outputs are computed
            (:class:`~fathom.train.inference.NodeEvaluation`); ``None``: one forward pass
            over the whole graph.
        train_val_loss: also report ``val_train_mode_loss``, the validation nodes' loss in the
            epoch's training forward pass (dropout and DropEdge on, the weights before the
            step): what the DropEdge authors' scripts select their epoch on. Full batch only.
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        loader: Iterable[Data] | None = None,
        evaluator: OGBEvaluator | None = None,
        *,
        evaluation: NodeEvaluation | None = None,
        train_val_loss: bool = False,
    ) -> None:
        if train_val_loss and loader is not None:
            raise ValueError("val_train_mode_loss needs full-batch training (no loader)")
        self.label_smoothing = label_smoothing
        self.loader = loader
        self.evaluator = evaluator
        self.evaluation = evaluation
        self.train_val_loss = train_val_loss
        self._val_train_mode_loss: float | None = None
        self._saint_scale = 1.0

    def criterion(self, out: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        """The training loss of logits ``out`` against labels ``y`` (per node with
        ``reduction="none"``): cross-entropy, label-smoothed."""
        return F.cross_entropy(out, y, label_smoothing=self.label_smoothing, reduction=reduction)

    def split_metrics(self, split: str, out: Tensor, y: Tensor, mask: Tensor) -> dict[str, float]:
        """``{split}_loss`` and ``{split}_acc`` of the nodes in ``mask``."""
        return _split_metrics(split, out, y, mask, self.evaluator)

    def batches(self, data: Data) -> Iterator[tuple[Data, float]]:
        """The epoch's batches, each weighted by its training nodes (the whole graph once,
        weight 1, without a loader)."""
        if self.loader is None:
            yield data, 1.0
            return
        # GraphSAINT's normalised sum estimates the loss summed over all nodes / N (PyG's
        # normalisation); N / |train| turns it into the mean over the training nodes
        self._saint_scale = data.num_nodes / max(1, int(data.train_mask.sum()))
        for batch in self.loader:
            seeds = getattr(batch, "batch_size", None)
            yield batch, float(seeds if seeds is not None else batch.train_mask.sum())

    def loss(self, model: nn.Module, data: Data) -> Tensor:
        """Training loss (model in train mode, dropout active). A neighbour-sampled batch is
        trimmed to what its seeds read where the model allows (:mod:`fathom.nn.trim`)."""
        seeds = getattr(data, "batch_size", None)
        trim = trim_kwargs(model, data) if seeds is not None else {}
        out = model(data.x, data.edge_index, **trim)
        if seeds is not None:  # a neighbour-sampled batch: its seed nodes come first
            return self.criterion(out[:seeds], data.y[:seeds])
        mask = data.train_mask
        if self.loader is not None and not bool(mask.any()):
            # a partition or walk without training nodes: nothing to learn from, but a zero
            # loss still runs the backward pass (the ranks of a multi-process run stay in step)
            return out.sum() * 0.0
        if "node_norm" in data:  # GraphSAINT: the normalised sum estimates the mean loss
            per_node = self.criterion(out[mask], data.y[mask], reduction="none")
            return (per_node * data.node_norm[mask]).sum() * self._saint_scale
        if self.train_val_loss:
            with torch.no_grad():  # never smoothed, as every evaluation loss
                val = data.val_mask
                self._val_train_mode_loss = F.cross_entropy(out[val], data.y[val]).item()
        return self.criterion(out[mask], data.y[mask])

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Data) -> dict[str, float]:
        """``{train,val,test}_{acc,loss}`` from one forward pass in eval mode (or the outputs
        of :attr:`evaluation`)."""
        was_training = model.training
        model.eval()
        if self.evaluation is None:
            out = model(data.x, data.edge_index)
        else:
            out = self.evaluation.outputs(model, data)
        model.train(was_training)
        metrics: dict[str, float] = {}
        for split in SPLITS:
            metrics.update(self.split_metrics(split, out, data.y, data[f"{split}_mask"]))
        if self._val_train_mode_loss is not None:  # set by loss() with train_val_loss
            metrics["val_train_mode_loss"] = self._val_train_mode_loss
        return metrics


class MultiLabelNodeClassification(NodeClassification):
    """Multi-label node classification: ``y`` is ``[N, T]`` of 0/1, one binary task per
    column (ogbn-proteins' 112), the model has ``T`` outputs (one logit per task).

    The loss is binary cross-entropy with logits averaged over all tasks of the training
    nodes (``BCEWithLogitsLoss``, as the DeeperGCN / RevGNN ogbn-proteins code trains); with
    a loader it is taken per batch as :class:`NodeClassification` does (GraphSAINT weights a
    node's mean over its tasks). Metrics are ``{split}_loss`` (the same BCE) and
    ``{split}_auc``, ROC-AUC averaged over the tasks having both classes in the split: OGB's
    evaluator when given, else :func:`~fathom.train.evaluators.mean_task_roc_auc` (the same
    definition); ``monitor: auto`` selects on ``val_auc``.

    Args:
        loader, evaluation: as in :class:`NodeClassification`.
        evaluator: OGB's official evaluator of the dataset (ROC-AUC).
    """

    default_monitor = "val_auc"

    def __init__(
        self,
        loader: Iterable[Data] | None = None,
        evaluator: OGBEvaluator | None = None,
        *,
        evaluation: NodeEvaluation | None = None,
    ) -> None:
        super().__init__(0.0, loader, evaluator, evaluation=evaluation)

    def criterion(self, out: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        """Binary cross-entropy with logits over every task (per node: its mean over tasks)."""
        loss = F.binary_cross_entropy_with_logits(out, y.to(out.dtype), reduction="none")
        return loss.mean(dim=-1) if reduction == "none" else loss.mean()

    def split_metrics(self, split: str, out: Tensor, y: Tensor, mask: Tensor) -> dict[str, float]:
        """``{split}_loss`` (BCE) and ``{split}_auc`` (mean ROC-AUC over tasks)."""
        out, y = out[mask].float(), y[mask]
        auc = (
            self.evaluator.score(y, out)
            if self.evaluator is not None
            else mean_task_roc_auc(y, out)
        )
        return {
            f"{split}_loss": F.binary_cross_entropy_with_logits(out, y.to(out.dtype)).item(),
            f"{split}_auc": auc,
        }


# The tensors a view is built from; the cached views are valid while each is the same
# object at the same in-place version.
_VIEW_SOURCES = ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask")


class InductiveNodeClassification:
    r"""Inductive node classification: test nodes are unseen during training.

    The protocol of GraphSAGE (`"Inductive Representation Learning on Large Graphs"
    <https://arxiv.org/abs/1706.02216>`_, Hamilton et al., NeurIPS 2017). With the views of
    :func:`~fathom.data.inductive.inductive_views`,

    - ``loss`` runs the model on :math:`G[V_{train}]`, the subgraph induced by the training
      nodes: validation and test nodes, their features and every edge touching them are
      absent, so no gradient step can depend on them;
    - ``evaluate`` reports ``train_*`` on :math:`G[V_{train}]`, ``val_*`` (model selection)
      on :math:`G[V_{train} \cup V_{val}]` and ``test_*`` on the full graph.

    Same interface as :class:`NodeClassification`; the model is called as
    ``model(x, edge_index)``, so DropEdge / DropNode act inside it on whichever view it gets.

    The views are built on first use and cached for the latest ``data``. The cache is
    checked on every call: it is reused only while ``data`` is the same object and each of
    its ``x``, ``edge_index``, ``y`` and masks is the same tensor at the same in-place
    version (``Tensor._version``), so replacing or editing any of them rebuilds the views
    rather than training on stale ones (an ``id(data)`` key alone could be reused by a new
    object, or miss in-place edits). The cache holds references to those tensors, so their
    identities cannot be recycled while it lives. Reusing the same view objects every epoch
    also lets the per-``edge_index`` adjacency cache (:func:`fathom.nn.adjacency.gcn_adjacency`)
    hit.

    Args:
        label_smoothing: label smoothing of the training loss (as in
            :class:`NodeClassification`); evaluation losses are never smoothed.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = label_smoothing
        self._cache: tuple[Data, list[tuple[Tensor | None, int]], InductiveViews] | None = None

    def views(self, data: Data) -> InductiveViews:
        """The (cached) training / validation / full views of ``data``."""
        # a missing tensor is left for inductive_views to report as a DataError
        tensors = [getattr(data, name, None) for name in _VIEW_SOURCES]
        sources = [(t, -1 if t is None else t._version) for t in tensors]
        if self._cache is not None:
            cached_data, cached_sources, views = self._cache
            if cached_data is data and all(
                t is u and v == w for (t, v), (u, w) in zip(sources, cached_sources, strict=True)
            ):
                return views
        views = inductive_views(data)
        self._cache = (data, sources, views)
        return views

    def loss(self, model: nn.Module, data: Data) -> Tensor:
        """Training loss on the training graph (model in train mode, dropout active)."""
        train = self.views(data).train
        out = model(train.x, train.edge_index)
        # every node of the training graph is a training node
        return F.cross_entropy(out, train.y, label_smoothing=self.label_smoothing)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Data) -> dict[str, float]:
        """``{train,val,test}_{acc,loss}``, each split on its own graph, in eval mode."""
        views = self.views(data)
        was_training = model.training
        model.eval()
        metrics: dict[str, float] = {}
        try:
            for split, view in zip(SPLITS, (views.train, views.val, views.full), strict=True):
                out = model(view.x, view.edge_index)
                metrics.update(_split_metrics(split, out, view.y, view[f"{split}_mask"]))
        finally:
            model.train(was_training)
        return metrics


def _auc_as_auto(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` with ``train.monitor: val_auc`` read as ``auto``, for the checks of every
    dataset (``val_auc`` is a monitor of some datasets only, checked by the task)."""
    if cfg.train.monitor != "val_auc":
        return cfg
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, monitor="auto"))


def _split_metrics(
    split: str, out: Tensor, y: Tensor, mask: Tensor, evaluator: OGBEvaluator | None = None
) -> dict[str, float]:
    """Unsmoothed cross-entropy and accuracy of ``out`` on the nodes in ``mask`` (scored by
    OGB's ``evaluator`` when given)."""
    pred = out[mask].argmax(dim=-1)
    return {
        f"{split}_loss": F.cross_entropy(out[mask], y[mask]).item(),
        f"{split}_acc": (
            evaluator.score(y[mask], pred)
            if evaluator is not None
            else (pred == y[mask]).float().mean().item()
        ),
    }


class DGIObjective:
    """Deep Graph Infomax (Veličković et al., ICLR 2019) trained through ``fit``: the
    self-supervised :meth:`~fathom.models.dgi.DGI.loss` on the whole graph, the best epoch
    chosen by the lowest training loss (the weights that scored it, before the step that
    follows, as in the authors' code), then a linear probe on the frozen embeddings.

    Probe (:meth:`final_metrics`): embed every node once (eval mode, no gradient), train
    logistic regression (``Linear(hidden, num_classes)``, Xavier-uniform weights, zero bias,
    as the authors' LogReg) with Adam on the training nodes for ``probe_epochs`` full-batch
    steps; its accuracy and cross-entropy on every split are the run's metrics. The model is
    left in eval mode. Paper setup (Cora, 82.3%): hidden 512, lr 0.001, no weight decay,
    patience 20; probe lr 0.01, no weight decay, 100 epochs.
    """

    monitor = "loss"
    select_before_step = True

    def __init__(
        self, probe_epochs: int = 100, probe_lr: float = 0.01, probe_weight_decay: float = 0.0
    ) -> None:
        self.probe_epochs, self.probe_lr = probe_epochs, probe_lr
        self.probe_weight_decay = probe_weight_decay

    def loss(self, model: nn.Module, data: Data) -> Tensor:
        """The DGI objective on one fresh corruption of the features."""
        return model.loss(data.x, data.edge_index)

    def evaluate(self, model: nn.Module, data: Data) -> dict[str, float]:
        """Nothing per epoch: a self-supervised run has no validation metric."""
        return {}

    def final_metrics(self, model: nn.Module, data: Data) -> dict[str, float]:
        """``{train,val,test}_{acc,loss}`` of the linear probe on the trained embeddings."""
        model.eval()
        with torch.no_grad():
            z = model(data.x, data.edge_index)
        num_classes = int(data.y.max()) + 1
        probe = nn.Linear(z.size(-1), num_classes).to(z.device)
        nn.init.xavier_uniform_(probe.weight)
        nn.init.zeros_(probe.bias)
        optimizer = torch.optim.Adam(
            probe.parameters(), lr=self.probe_lr, weight_decay=self.probe_weight_decay
        )
        z_train, y_train = z[data.train_mask], data.y[data.train_mask]
        for _ in range(self.probe_epochs):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(probe(z_train), y_train).backward()
            optimizer.step()
        with torch.no_grad():
            out = probe(z)
        metrics: dict[str, float] = {}
        for split in SPLITS:
            metrics.update(_split_metrics(split, out, data.y, data[f"{split}_mask"]))
        return metrics


class NodeTask(TaskSpec):
    """``task: node``: one graph, node masks; transductive, inductive (``data.inductive``)
    or DGI's self-supervised pre-training with a linear probe (``model.arch: dgi``)."""

    name = "node"
    description = "node classification (transductive or inductive)"
    saves_models = True
    inductive = True
    loaders = ("full", "neighbor", "cluster", "random-partition", "saint")
    eval_modes = ("full", "layerwise", "sampled")
    distributed = True
    monitors = ("val_loss", "val_acc", "val_train_mode_loss")

    def check(self, cfg: ExperimentConfig) -> None:
        # val_auc, a monitor of multi-label datasets only, is checked by check_ogb
        super().check(_auc_as_auto(cfg))
        self.check_ogb(cfg)
        if cfg.train.monitor == "val_train_mode_loss":
            for ok, key, value in (
                (cfg.train.loader == "full", "train.loader", cfg.train.loader),
                (cfg.model.arch != "dgi", "model.arch", cfg.model.arch),
                (not cfg.data.inductive, "data.inductive", cfg.data.inductive),
            ):
                require(
                    ok,
                    key,
                    "is not available with train.monitor 'val_train_mode_loss' (the validation "
                    "loss of a full-batch, transductive training forward pass)",
                    value,
                )
        require(
            not (cfg.model.arch == "dgi" and cfg.train.diagnose_every),
            "train.diagnose_every",
            "is not available for model.arch 'dgi' (no layer stack)",
            cfg.train.diagnose_every,
        )
        if cfg.train.loader != "full":
            require(
                cfg.model.arch != "dgi",
                "train.loader",
                "must be 'full' for model.arch 'dgi' (its objective reads the whole graph)",
                cfg.train.loader,
            )
            require(
                not cfg.data.inductive,
                "train.loader",
                "must be 'full' with data.inductive (sampling the training view is not "
                "implemented)",
                cfg.train.loader,
            )

    def check_ogb(self, cfg: ExperimentConfig) -> None:
        """The metric a dataset reports: ``val_auc`` only for multi-label (ROC-AUC) OGB
        datasets, which report no accuracy and take none of the single-label options; OGB
        link and graph datasets belong to other tasks."""
        name = cfg.data.name
        spec = OGB_DATASETS.get(name) if name in OGB_DATASETS else None
        if spec is not None and spec.kind != "node":
            task = "link" if spec.kind == "link" else "graph"
            require(False, "task", f"must be {task!r} for the OGB dataset {name!r}", cfg.task)
        multi = spec is not None and spec.multi_label
        t = cfg.train
        if not multi:
            require(
                t.monitor != "val_auc",
                "train.monitor",
                f"must be auto, {', '.join(self.monitors)} for task {cfg.task!r} with dataset "
                f"{name!r} (val_auc: multi-label datasets, ogbn-proteins)",
                t.monitor,
            )
            return
        require(
            t.monitor not in ("val_acc", "val_train_mode_loss"),
            "train.monitor",
            f"must be auto, val_auc or val_loss for {name!r} (multi-label: ROC-AUC, no accuracy)",
            t.monitor,
        )
        for ok, key, value, why in (
            (cfg.model.arch != "dgi", "model.arch", cfg.model.arch, "its probe is one-label"),
            (not cfg.data.inductive, "data.inductive", cfg.data.inductive, "not implemented"),
            (t.label_smoothing == 0, "train.label_smoothing", t.label_smoothing, "one-label"),
            (not t.diagnose_every, "train.diagnose_every", t.diagnose_every,
             "class separation needs one label per node"),
        ):  # fmt: skip
            require(
                ok, key, f"is not available for the multi-label dataset {name!r} ({why})", value
            )

    def objective(self, cfg: ExperimentConfig, data: Data) -> Objective:
        """DGI's, the inductive, the multi-label (``y`` of shape ``[N, tasks]``) or the
        transductive objective of ``cfg`` (on mini-batches of ``data`` from
        ``train.loader``), scored by OGB's evaluator on an OGB dataset."""
        if cfg.model.arch == "dgi":
            return DGIObjective()
        smoothing = cfg.train.label_smoothing
        if cfg.data.inductive:
            return InductiveNodeClassification(label_smoothing=smoothing)
        # the loader reads its own options (LOADERS names them) from the train section
        loader = build_loader(
            cfg.train.loader, data, seed=cfg.seed, options=dataclasses.asdict(cfg.train)
        )
        evaluator = ogb_evaluator(cfg.data.name)
        t = cfg.train
        evaluation = (
            None
            if t.eval_mode == "full"
            else NodeEvaluation(
                t.eval_mode, t.eval_chunk, tuple(parse_fanouts(t.eval_fanouts)), cfg.seed
            )
        )
        if data.y.dim() == 2:
            return MultiLabelNodeClassification(
                loader=loader, evaluator=evaluator, evaluation=evaluation
            )
        return NodeClassification(
            label_smoothing=smoothing,
            loader=loader,
            evaluator=evaluator,
            evaluation=evaluation,
            train_val_loss=t.monitor == "val_train_mode_loss",
        )

    def plan(self, cfg: ExperimentConfig, data: Any) -> Iterator[FitPlan]:
        yield FitPlan(
            seed=cfg.seed,
            data=data,
            in_channels=data.num_features,
            # one logit per task (multi-label) or per class
            out_channels=data.y.size(1) if data.y.dim() == 2 else int(data.y.max()) + 1,
            objective=self.objective(cfg, data),
            diagnose=data,
        )


TASKS.add("node", NodeTask())
