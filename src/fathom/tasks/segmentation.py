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
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from fathom.config import ExperimentConfig, register_section, require
from fathom.data.build import check_data
from fathom.data.pointclouds import POINT_CLOUD_DATASETS, PointCloudSplits
from fathom.errors import DataError
from fathom.models.build import Head, check_model
from fathom.models.deepgcn import check_point_model
from fathom.nn.point_convs import ORDERS
from fathom.tasks.batches import SPLITS, shuffled_batches, split_batches
from fathom.tasks.spec import TASKS, FitPlan, TaskSpec
from fathom.train.loop import model_device, to_device
from fathom.train.metrics import confusion_matrix, iou_per_class, segmentation_scores

__all__ = ["PointsConfig", "Segmentation", "SegmentationTask", "class_key"]


@dataclass(frozen=True)
class PointsConfig:
    """Point-cloud segmentation (``task: segmentation``): the clouds and DeepGCN's dynamic
    dilated k-NN graphs (Li et al., "DeepGCNs: Can GCNs Go as Deep as CNNs?", ICCV 2019)."""

    num_points: int = 1024
    """Points per cloud: synthetic scenes are generated with this many; S3DIS blocks (4096
    points) are subsampled to it (seeded)."""
    num_scenes: int = 48
    """Synthetic training scenes; validation and test get ``max(1, num_scenes // 4)`` each."""
    test_area: int = 5
    """S3DIS area held out as the test set (1-6)."""
    k: int = 16
    """Neighbours per point of every layer's k-NN graph."""
    dilation: str = "linear"
    """``linear``: backbone block ``i`` (0-based) uses dilation ``1 + i`` (DeepGCN's
    ResGCN/DenseGCN); ``none``: dilation 1 everywhere."""
    stochastic: bool = True
    """Stochastic dilation in training: with probability ``epsilon`` a layer keeps ``k``
    random neighbours of its ``k * d`` nearest instead of every ``d``-th."""
    epsilon: float = 0.2
    """Probability of stochastic dilation per layer and training forward pass."""
    fusion_channels: int = 1024
    """Width of the fusion block's 1x1 conv, whose global max-pool is the cloud feature."""
    order: str = "act-norm"
    """Order of activation and normalisation in every 1x1 conv: ``act-norm`` (the DeepGCN
    reference's ``conv -> act -> norm``) or ``norm-act`` (``conv -> norm -> act``)."""

    def head(self) -> Head:
        """The DeepGCN (k-NN graphs, fusion and prediction blocks) this section describes."""
        return Head.of(
            "points",
            k=self.k,
            dilation=self.dilation,
            stochastic=self.stochastic,
            epsilon=self.epsilon,
            fusion_channels=self.fusion_channels,
            order=self.order,
        )


def check_points_section(p: PointsConfig) -> None:
    """Value ranges of the ``points`` section."""
    require(p.num_points >= 2, "points.num_points", "must be >= 2", p.num_points)
    require(p.num_scenes >= 1, "points.num_scenes", "must be >= 1", p.num_scenes)
    require(1 <= p.test_area <= 6, "points.test_area", "must be in 1..6", p.test_area)
    require(p.k >= 1, "points.k", "must be >= 1", p.k)
    require(
        p.dilation in ("linear", "none"), "points.dilation", "must be linear or none", p.dilation
    )
    require(0.0 <= p.epsilon <= 1.0, "points.epsilon", "must be in [0, 1]", p.epsilon)
    require(p.fusion_channels >= 1, "points.fusion_channels", "must be >= 1", p.fusion_channels)
    require(p.order in ORDERS, "points.order", f"must be {' or '.join(ORDERS)}", p.order)


register_section("points", PointsConfig, check_points_section, keyed_at_default=True)


def class_key(name: str) -> str:
    """The metric-key form of a class name: lower-cased, every character other than an ASCII
    letter or digit replaced by ``_`` (``"Bookcase"`` -> ``bookcase``, ``"table/desk"`` ->
    ``table_desk``), as in ``test_iou_<key>``."""
    return re.sub(r"[^0-9a-z]", "_", name.lower())


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

    def batches(self, data: PointCloudSplits) -> Iterator[tuple[Batch, float]]:
        """One pass over the shuffled training clouds, each batch weighted by its points."""
        return shuffled_batches(
            data.train, self.batch_size, self.generator, lambda b: float(b.num_nodes)
        )

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """Mean per-point cross-entropy of one mini-batch of clouds (model in train mode)."""
        return F.cross_entropy(
            self._logits(model, batch), batch.y, label_smoothing=self.label_smoothing
        )

    def _batches(self, data: PointCloudSplits) -> dict[str, list[Batch]]:
        if self._eval_of is not data:
            self._eval_batches = split_batches(data, self.batch_size)
            self._eval_of = data
        return self._eval_batches

    @torch.no_grad()
    def confusion(self, model: nn.Module, batches: Sequence[Batch]) -> tuple[Tensor, float]:
        """``(confusion matrix [C, C], summed per-point cross-entropy)`` of ``model`` (in its
        current mode) over ``batches``."""
        device = model_device(model)
        # accumulated where the predictions are; one copy to the CPU per split
        matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long, device=device)
        loss = 0.0
        for batch in batches:
            batch = to_device(batch, device)
            out = self._logits(model, batch)
            loss += F.cross_entropy(out, batch.y, reduction="sum").item()
            matrix += confusion_matrix(out.argmax(dim=-1), batch.y, self.num_classes)
        return matrix.cpu(), loss

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


class SegmentationTask(TaskSpec):
    """``task: segmentation``: per-point classification of point clouds by a DeepGCN over
    dynamic dilated k-NN graphs (``points`` section); OA / mIoU / mAcc, ``val_miou`` by
    default."""

    name = "segmentation"
    description = "point-cloud segmentation with a DeepGCN (OA / mIoU / mAcc)"
    monitors = ("val_loss", "val_acc", "val_miou")
    reads_point_clouds = True
    grows_blocks = False  # a DeepGCN's blocks each build their own k-NN graph
    batches_itself = True

    def check(self, cfg: ExperimentConfig) -> None:
        m, p = cfg.model, cfg.points
        require(
            cfg.data.name in POINT_CLOUD_DATASETS,
            "data.name",
            f"must be one of {', '.join(POINT_CLOUD_DATASETS)} for task 'segmentation' (or "
            "start from a preset: --preset resgcn-28)",
            cfg.data.name,
        )
        require(m.arch == "deep", "model.arch", "must be 'deep' for task 'segmentation'", m.arch)
        check_point_model(m.conv, m.skip, m.memory)
        check_model(m, point_cloud=True)
        check_data(cfg.data)
        self.check_common(cfg)
        require(
            not cfg.train.diagnose_every,
            "train.diagnose_every",
            "is not available for task 'segmentation' (each layer has its own k-NN graph)",
            cfg.train.diagnose_every,
        )
        # PlainGCN's blocks are undilated (as in the DeepGCN reference code)
        max_dilation = max(1, m.depth - 1) if p.dilation == "linear" and m.skip != "none" else 1
        require(
            p.k * max_dilation <= p.num_points,
            "points.k",
            f"times the largest dilation ({max_dilation}) must be <= points.num_points "
            f"({p.num_points})",
            p.k,
        )

    def load(self, cfg: ExperimentConfig) -> Any:
        from fathom.data.pointclouds import build_point_clouds

        p = cfg.points
        return build_point_clouds(
            cfg.data.name,
            data_dir=cfg.data.data_dir,
            num_points=p.num_points,
            num_scenes=p.num_scenes,
            test_area=p.test_area,
            seed=cfg.seed,
        )

    def data_key(self, cfg: ExperimentConfig) -> tuple[Any, ...]:
        return (
            *super().data_key(cfg),
            cfg.points.num_points,
            cfg.points.num_scenes,
            cfg.points.test_area,
        )

    def describe(self, data: Any) -> dict[str, Any]:
        return {
            "name": data.name,
            "num_classes": data.num_classes,
            "num_features": data.in_channels,
            "class_names": list(data.class_names),
            **{split: len(getattr(data, split)) for split in SPLITS},
            "points_per_cloud": int(data.train[0].num_nodes) if data.train else 0,
        }

    def size(self, cfg: ExperimentConfig, described: dict[str, Any]) -> str:
        return (
            f"{described['train']}/{described['val']}/{described['test']} clouds of "
            f"{described['points_per_cloud']} points, k {cfg.points.k}, "
            f"memory {cfg.model.memory}"
        )

    def summary_lines(self, cfg: ExperimentConfig, result: Any) -> list[str]:
        per_class = per_class_iou(result.runs)
        if not per_class:
            return []
        return [
            "test IoU per class (mean over runs, %): "
            + ", ".join(f"{name} {100 * iou:.1f}" for name, iou in per_class.items())
        ]

    def plan(self, cfg: ExperimentConfig, data: Any) -> Iterator[FitPlan]:
        """One DeepGCN trained with :class:`Segmentation` (``train.batch_size`` clouds per
        batch, shuffled by a generator seeded with ``cfg.seed``).

        Raises:
            DataError: a split of ``data`` has no clouds.
        """
        for split in SPLITS:
            if not getattr(data, split):
                raise DataError(f"point-cloud dataset {data.name!r} has no {split} clouds")
        yield FitPlan(
            seed=cfg.seed,
            data=data,
            in_channels=data.in_channels,
            out_channels=data.num_classes,
            objective=Segmentation(
                data.num_classes,
                data.class_names,
                cfg.train.batch_size,
                seed=cfg.seed,
                label_smoothing=cfg.train.label_smoothing,
            ),
            head=cfg.points.head(),
        )


def per_class_iou(runs: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Each class's test IoU averaged over the runs that scored it."""
    prefix = "test_iou_"
    names = dict.fromkeys(k for r in runs for k in r if k.startswith(prefix))
    return {
        name.removeprefix(prefix): statistics.fmean(r[name] for r in runs if name in r)
        for name in names
    }


TASKS.add("segmentation", SegmentationTask())
