r"""Point-cloud semantic segmentation: per-point classification of mini-batches of clouds.

The task of DeepGCNs (Li, Müller, Thabet & Ghanem, "DeepGCNs: Can GCNs Go as Deep as CNNs?",
ICCV 2019; code: ``lightaime/deep_gcns_torch``, ``examples/sem_seg_dense``) on S3DIS: every
point of a cloud gets a class, trained with the cross-entropy averaged over the points of a
batch of clouds. Each split is scored from its confusion matrix
:math:`M \in \mathbb{N}^{C \times C}` (rows = truth), accumulated over the whole split:
overall accuracy, mean IoU over the classes with :math:`TP_c + FP_c + FN_c > 0`, mean class
accuracy, and the test split's IoU of every class (:mod:`fathom.train.metrics`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from fathom.config import ExperimentConfig
from fathom.data.pointclouds import PointCloudSplits
from fathom.errors import ConfigError, DataError
from fathom.models.deepgcn import build_deepgcn
from fathom.seeding import seed_everything
from fathom.tasks.batches import SPLITS, split_batches
from fathom.train.loop import EpochCallback, FitResult, fit
from fathom.train.metrics import confusion_matrix, iou_per_class, segmentation_scores

__all__ = ["Segmentation", "class_key", "run_segmentation"]


def class_key(name: str) -> str:
    """The metric-key form of a class name: lower-cased, every character other than an ASCII
    letter or digit replaced by ``_`` (``"Bookcase"`` -> ``bookcase``, ``"table/desk"`` ->
    ``table_desk``), as in ``test_iou_<key>``."""
    return re.sub(r"[^0-9a-z]", "_", name.lower())


def _device(model: nn.Module) -> torch.device:
    # batches follow the model, so a model moved to a GPU trains there unchanged
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


class Segmentation:
    r"""Cross-entropy on every point of mini-batches of clouds; OA / mIoU / mAcc per split.

    Each training epoch visits the training clouds once in a new random order (PyG's
    ``DataLoader`` with a ``torch.Generator`` seeded with ``seed``, so the order is
    reproducible and independent of the global RNG) and takes one optimiser step per batch
    on the mean cross-entropy of its points, as the DeepGCN reference code does.
    :meth:`evaluate` runs in eval mode over fixed batches of ``batch_size`` clouds (collated
    once per ``data``), accumulating each split's confusion matrix, so its metrics are those
    of the whole split, not means over batches.

    Metrics, per split ``s`` in ``train`` / ``val`` / ``test``: ``s_loss`` (mean per-point
    cross-entropy, unsmoothed), ``s_oa`` (overall accuracy; also as ``s_acc`` for reports
    that read accuracy), ``s_miou`` (mean IoU over the classes with
    :math:`TP_c + FP_c + FN_c > 0`), ``s_macc`` (mean class accuracy over the classes present
    in the split); and ``test_iou_<class>`` (:func:`class_key` of each class name) for every
    class with an IoU on the test split (a class neither present nor predicted has none and
    no key, so every reported value is finite).

    Args:
        num_classes: number of point classes :math:`C`.
        class_names: one name per class (for the ``test_iou_*`` keys); empty: ``0 … C-1``.
        batch_size: clouds per mini-batch.
        seed: seed of the shuffling generator.
        label_smoothing: label smoothing of the training loss (evaluation losses are plain).

    Raises:
        DataError: ``class_names`` does not have ``num_classes`` entries, or two names give
            the same key.

    Model interface: ``model(x, pos, batch) -> [N, num_classes]`` per-point logits.

    Shapes:
        data: lists of ``Data`` with ``x [N_i, F]``, ``pos [N_i, 3]``, ``y [N_i]``; a batch
        concatenates them (``batch [N]`` assigns each point its cloud).
    """

    default_monitor = "val_miou"

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str] = (),
        batch_size: int = 16,
        seed: int = 0,
        label_smoothing: float = 0.0,
    ) -> None:
        names = list(class_names) or [str(c) for c in range(num_classes)]
        if len(names) != num_classes:
            raise DataError(f"class_names has {len(names)} names for {num_classes} classes")
        keys = [class_key(name) for name in names]
        if len(set(keys)) != len(keys):
            raise DataError(f"class_names give duplicate metric keys: {keys}")
        self.num_classes = num_classes
        self.class_keys = keys
        self.batch_size = batch_size
        self.label_smoothing = label_smoothing
        self.generator = torch.Generator().manual_seed(seed)
        self._eval_batches: dict[str, list[Batch]] = {}
        # the splits the batches were collated from: held, so an id is never recycled
        self._eval_of: PointCloudSplits | None = None

    def _logits(self, model: nn.Module, batch: Batch | Data) -> Tensor:
        out = model(batch.x, batch.pos, batch.batch)
        if out.dim() != 2 or out.size(1) != self.num_classes:
            raise DataError(
                f"the model must return [num_points, {self.num_classes}] logits, "
                f"got {list(out.shape)}"
            )
        return out

    def loss(self, model: nn.Module, data: PointCloudSplits) -> Tensor:
        """Training loss over all training clouds in one batch (``fit`` calls
        :meth:`train_epoch` instead; this exists for the ``Task`` protocol)."""
        batch = Batch.from_data_list(data.train).to(_device(model))
        out = self._logits(model, batch)
        return F.cross_entropy(out, batch.y, label_smoothing=self.label_smoothing)

    def train_epoch(
        self, model: nn.Module, data: PointCloudSplits, optimizer: torch.optim.Optimizer
    ) -> float:
        """One pass over the shuffled training clouds; the point-weighted mean batch loss
        (``nan`` as soon as a batch's loss is not finite: no step is taken on it)."""
        model.train()
        device = _device(model)
        loader = DataLoader(
            data.train, batch_size=self.batch_size, shuffle=True, generator=self.generator
        )
        total, count = 0.0, 0
        for batch in loader:
            batch = batch.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(
                self._logits(model, batch), batch.y, label_smoothing=self.label_smoothing
            )
            value = loss.item()
            if not math.isfinite(value):
                return float("nan")
            loss.backward()
            optimizer.step()
            total += value * batch.num_nodes
            count += batch.num_nodes
        return total / max(count, 1)

    def _batches(self, data: PointCloudSplits) -> dict[str, list[Batch]]:
        if self._eval_of is not data:
            self._eval_batches = split_batches(data, self.batch_size)
            self._eval_of = data
        return self._eval_batches

    @torch.no_grad()
    def confusion(self, model: nn.Module, batches: Sequence[Batch]) -> tuple[Tensor, float]:
        """``(confusion matrix [C, C], summed per-point cross-entropy)`` of ``model`` (in its
        current mode) over ``batches``."""
        device = _device(model)
        matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
        loss = 0.0
        for batch in batches:
            batch = batch.to(device)
            out = self._logits(model, batch)
            loss += F.cross_entropy(out, batch.y, reduction="sum").item()
            matrix += confusion_matrix(out.argmax(dim=-1), batch.y, self.num_classes).cpu()
        return matrix, loss

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: PointCloudSplits) -> dict[str, float]:
        """``{train,val,test}_{loss,oa,acc,miou,macc}`` and ``test_iou_<class>``, in eval mode
        (``nan`` for an empty split)."""
        was_training = model.training
        model.eval()
        metrics: dict[str, float] = {}
        try:
            for split, batches in self._batches(data).items():
                matrix, loss = self.confusion(model, batches)
                points = int(matrix.sum())
                scores = segmentation_scores(matrix)
                metrics[f"{split}_loss"] = loss / points if points else float("nan")
                metrics[f"{split}_oa"] = scores["oa"]
                metrics[f"{split}_acc"] = scores["oa"]
                metrics[f"{split}_miou"] = scores["miou"]
                metrics[f"{split}_macc"] = scores["macc"]
                if split == "test":
                    for key, iou in zip(
                        self.class_keys, iou_per_class(matrix).tolist(), strict=True
                    ):
                        if not math.isnan(iou):
                            metrics[f"test_iou_{key}"] = iou
        finally:
            model.train(was_training)
        return metrics


def run_segmentation(
    cfg: ExperimentConfig, data: PointCloudSplits, callbacks: Sequence[EpochCallback] = ()
) -> FitResult:
    """Point-cloud segmentation (``task: segmentation``): one seed of ``cfg`` on ``data``.

    Seeds everything with ``cfg.seed``, builds the DeepGCN
    ``build_deepgcn(cfg.model, cfg.points, data.in_channels, data.num_classes)`` and trains
    it with :class:`Segmentation` (``cfg.train.batch_size`` clouds per batch, shuffled by a
    generator seeded with ``cfg.seed``) through :func:`~fathom.train.loop.fit`: Adam with
    ``cfg.train.lr`` / ``weight_decay``, the StepLR decay of ``lr_decay_every`` /
    ``lr_decay``, early stopping on ``cfg.train.monitor`` (``auto``: ``val_miou``). The
    result's metrics are those of the best epoch.

    Raises:
        DataError: a split of ``data`` has no clouds.
        ConfigError: ``cfg.train.diagnose_every`` is set (the per-layer diagnostics probe one
            fixed ``edge_index``; a DeepGCN rebuilds its graph in every layer).
    """
    if cfg.train.diagnose_every:
        raise ConfigError(
            "train.diagnose_every (--diagnose-every) is not available for task 'segmentation' "
            f"(each layer builds its own k-NN graph), got {cfg.train.diagnose_every}"
        )
    for split in SPLITS:
        if not getattr(data, split):
            raise DataError(f"point-cloud dataset {data.name!r} has no {split} clouds")
    seed_everything(cfg.seed)
    model = build_deepgcn(cfg.model, cfg.points, data.in_channels, data.num_classes)
    task = Segmentation(
        data.num_classes,
        data.class_names,
        cfg.train.batch_size,
        seed=cfg.seed,
        label_smoothing=cfg.train.label_smoothing,
    )
    return fit(model, task, data, cfg.train, callbacks)
