"""The official OGB evaluators behind fathom's metric names.

:class:`OGBEvaluator` wraps ``ogb.nodeproppred.Evaluator`` / ``ogb.graphproppred.Evaluator``
/ ``ogb.linkproppred.Evaluator`` (imported through
:func:`fathom.data.ogb_datasets.import_ogb`, so without ``ogb``'s update check) for the metric
OGB reports on a dataset (its ``master.csv``): ``acc`` for ogbn-arxiv / ogbn-products,
``rocauc`` for ogbn-proteins / ogbg-molhiv, ``hits@50`` for ogbl-collab. The tasks report it
under fathom's usual names (:data:`METRIC_NAMES`): ``{split}_acc``, ``{split}_auc`` (ROC-AUC,
as link prediction's ``val_auc``), ``{split}_hits``; so ``train.monitor``, the results
tables and the aggregates read them as they read every other run's.

The node and graph tasks choose it by the dataset's name (:func:`ogb_evaluator`: None for a
dataset that is not OGB's). ROC-AUC is OGB's: the mean over tasks of scikit-learn's
``roc_auc_score`` on the labelled nodes / graphs, over the tasks that have both a positive
and a negative there.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from fathom.data.ogb_datasets import OGB_DATASETS, import_ogb
from fathom.errors import DataError

__all__ = ["METRIC_NAMES", "OGBEvaluator", "mean_task_roc_auc", "metric_name", "ogb_evaluator"]

METRIC_NAMES = {"acc": "acc", "rocauc": "auc", "hits": "hits"}
"""OGB's metric (``hits@K`` as ``hits``) -> the suffix fathom reports it under."""

_MODULES = {"node": "ogb.nodeproppred", "graph": "ogb.graphproppred", "link": "ogb.linkproppred"}


def metric_name(ogb_metric: str) -> str:
    """fathom's suffix of an OGB metric: ``acc`` -> ``acc``, ``rocauc`` -> ``auc``,
    ``hits@50`` -> ``hits``."""
    base = ogb_metric.split("@", 1)[0]
    if base not in METRIC_NAMES:
        raise DataError(f"fathom does not report OGB's metric {ogb_metric!r}")
    return METRIC_NAMES[base]


def _numpy_ready(t: Tensor) -> Tensor:
    """Detached, on the CPU, float32 for floating types (NumPy has no bfloat16)."""
    t = t.detach().cpu()
    return t.float() if t.dtype.is_floating_point else t


class OGBEvaluator:
    """OGB's official ``Evaluator`` of one dataset.

    Args:
        name: an OGB dataset fathom reads (``ogbn-arxiv`` …).

    Attributes:
        name: the dataset.
        metric: OGB's metric (``acc``, ``rocauc``, ``hits@50``).
        key: fathom's name for it (:func:`metric_name`: ``acc``, ``auc``, ``hits``).
        num_tasks: the tasks OGB scores (node and graph datasets; 1 for link datasets).

    Raises:
        ConfigError: ``name`` is not an OGB dataset fathom reads.
    """

    def __init__(self, name: str) -> None:
        spec = OGB_DATASETS.get(name)
        self.name = name
        self._evaluator: Any = import_ogb(_MODULES[spec.kind]).Evaluator(name)
        self.metric: str = str(self._evaluator.eval_metric)
        self.key = metric_name(self.metric)
        self.num_tasks = int(getattr(self._evaluator, "num_tasks", 1))

    def _eval(self, inputs: dict[str, Tensor]) -> float:
        try:
            return float(self._evaluator.eval(inputs)[self.metric])
        except (RuntimeError, ValueError) as exc:
            text = " ".join(str(exc).split())
            raise DataError(
                f"OGB's evaluator of {self.name} cannot score {self.metric}: {text}"
            ) from None

    def score(self, y_true: Tensor, y_pred: Tensor) -> float:
        """The metric of predictions of nodes or graphs (OGB's ``{'y_true', 'y_pred'}``).

        Args:
            y_true: labels, ``[n, num_tasks]`` (a ``[n]`` vector is one task).
            y_pred: for ``acc`` the predicted class, for ``rocauc`` scores (logits), same
                shape as ``y_true``.

        Raises:
            DataError: OGB's evaluator refuses them (shapes, or no task with both classes
                for ROC-AUC).
        """
        y_true, y_pred = _numpy_ready(y_true), _numpy_ready(y_pred)
        if y_true.dim() == 1:
            y_true, y_pred = y_true.unsqueeze(1), y_pred.unsqueeze(1)
        return self._eval({"y_true": y_true, "y_pred": y_pred})

    def score_links(self, pos: Tensor, neg: Tensor) -> float:
        """The metric of link scores (OGB's ``{'y_pred_pos', 'y_pred_neg'}``): Hits@K of the
        positive edges' scores against the negatives' (ogbl-collab: K = 50).

        Shapes:
            pos: ``[P]``; neg: ``[Q]``.
        """
        return self._eval({"y_pred_pos": _numpy_ready(pos), "y_pred_neg": _numpy_ready(neg)})

    def __repr__(self) -> str:
        return f"OGBEvaluator({self.name!r}: {self.metric} as *_{self.key})"


def ogb_evaluator(name: str) -> OGBEvaluator | None:
    """The official evaluator of dataset ``name``; None when it is not an OGB dataset."""
    return OGBEvaluator(name) if name in OGB_DATASETS else None


def mean_task_roc_auc(y_true: Tensor, scores: Tensor) -> float:
    """ROC-AUC averaged over the tasks (columns) that have both classes, as OGB's
    evaluators average it, in plain torch (:func:`fathom.train.metrics.roc_auc`); for
    multi-label data that is not OGB's."""
    from fathom.train.metrics import roc_auc

    y_true, scores = y_true.reshape(len(y_true), -1), scores.reshape(len(scores), -1)
    values = [
        roc_auc(scores[:, t], y_true[:, t])
        for t in range(y_true.size(1))
        if 0 < int((y_true[:, t] == 1).sum()) < y_true.size(0)
    ]
    if not values:
        raise DataError("ROC-AUC needs a task with both positive and negative labels, got none")
    return float(torch.tensor(values, dtype=torch.float64).mean())
