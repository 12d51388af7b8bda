"""Ranking metrics of binary scores: ROC-AUC, average precision and Hits@K, in plain torch;
and segmentation metrics from a confusion matrix: overall accuracy, per-class and mean IoU,
mean class accuracy.

The ranking metrics score link prediction (``task: link`` / ``task: autoencoder``): positives
are held-out edges, negatives sampled non-edges. scikit-learn is not a dependency, so the
definitions below reproduce ``sklearn.metrics.roc_auc_score`` / ``average_precision_score``
and OGB's ``Evaluator`` (``hits@K``) exactly, ties included. The segmentation metrics score
per-point classification of point clouds (``task: segmentation``, S3DIS's usual evaluation).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fathom.errors import DataError

__all__ = [
    "auc_and_ap",
    "average_precision",
    "confusion_matrix",
    "hits_at_k",
    "iou_per_class",
    "mean_class_accuracy",
    "mean_iou",
    "overall_accuracy",
    "roc_auc",
    "segmentation_scores",
]


def _check(scores: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    scores, labels = scores.detach().flatten(), labels.detach().flatten()
    if scores.numel() != labels.numel():
        raise DataError(
            f"scores and labels must have the same size, got {scores.numel()} and {labels.numel()}"
        )
    positives = int((labels != 0).sum())
    negatives = labels.numel() - positives
    if positives == 0 or negatives == 0:
        raise DataError(
            f"labels need both classes, got {positives} positives and {negatives} negatives"
        )
    # float64 so that rank sums of large sets stay exact
    return scores.to(torch.float64), labels != 0


def _runs(scores: Tensor, positive: Tensor) -> tuple[Tensor, Tensor]:
    """One ascending sort of ``scores``: for each run of equal scores, lowest first, how many
    scores and how many positives it holds (both float64, exact integers)."""
    ordered, order = torch.sort(scores)
    last = torch.ones_like(ordered, dtype=torch.bool)
    last[:-1] = ordered[1:] != ordered[:-1]
    ends = torch.nonzero(last).flatten()
    counts = torch.diff(ends, prepend=ends.new_full((1,), -1)).to(torch.float64)
    positives_through = torch.cumsum(positive[order].to(torch.float64), 0)[ends]
    return counts, torch.diff(positives_through, prepend=positives_through.new_zeros(1))


def _auc(counts: Tensor, run_positives: Tensor) -> float:
    # tied scores share the mean of the ranks they span: (first + last) / 2; every term is
    # a multiple of 1/2, so the float64 sums are exact
    first_rank = torch.cumsum(counts, 0) - counts + 1
    rank_sum = (run_positives * (first_rank + (counts - 1) / 2)).sum().item()
    n_pos = float(run_positives.sum())
    n_neg = float(counts.sum()) - n_pos
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _ap(counts: Tensor, run_positives: Tensor) -> float:
    # thresholds from the highest score down: one per run of equal scores
    tps = torch.cumsum(run_positives.flip(0), 0)
    fps = torch.cumsum((counts - run_positives).flip(0), 0)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    steps = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((steps * precision).sum())


def roc_auc(scores: Tensor, labels: Tensor) -> float:
    r"""Area under the ROC curve, by ranks (Mann–Whitney U).

    .. math::
        \mathrm{AUC} = \frac{\sum_{i \in P} r_i - |P|(|P|+1)/2}{|P|\,|N|}

    where :math:`r_i` is the rank of score :math:`i` among all scores (1 = lowest; tied scores
    get the mean of their ranks), :math:`P` the positives and :math:`N` the negatives. Equals
    the probability that a random positive outscores a random negative, ties counting 1/2
    (``sklearn.metrics.roc_auc_score``).

    Args:
        scores: higher means more likely positive (logits or probabilities).
        labels: 1 (or any non-zero) for positives, 0 for negatives.

    Raises:
        DataError: sizes differ, or one class is missing.

    Shapes:
        scores, labels: ``[n]`` (any shape, flattened).
    """
    return _auc(*_runs(*_check(scores, labels)))


def average_precision(scores: Tensor, labels: Tensor) -> float:
    r"""Average precision, as ``sklearn.metrics.average_precision_score``.

    .. math::
        \mathrm{AP} = \sum_n (R_n - R_{n-1}) P_n

    over the distinct score thresholds in decreasing order, where :math:`P_n` and :math:`R_n`
    are precision and recall when everything scored at least the n-th threshold is predicted
    positive (:math:`R_0 = 0`). Tied scores enter at the same threshold, so a tie between a
    positive and a negative shares one precision value (no interpolation).

    Args:
        scores: higher means more likely positive.
        labels: 1 (or any non-zero) for positives, 0 for negatives.

    Raises:
        DataError: sizes differ, or one class is missing.

    Shapes:
        scores, labels: ``[n]`` (any shape, flattened).
    """
    return _ap(*_runs(*_check(scores, labels)))


def auc_and_ap(scores: Tensor, labels: Tensor) -> tuple[float, float]:
    """:func:`roc_auc` and :func:`average_precision` of the same scores from one sort (the
    same two numbers, bit for bit).

    Raises:
        DataError: sizes differ, or one class is missing.

    Shapes:
        scores, labels: ``[n]`` (any shape, flattened).
    """
    runs = _runs(*_check(scores, labels))
    return _auc(*runs), _ap(*runs)


def hits_at_k(pos_scores: Tensor, neg_scores: Tensor, k: int) -> float:
    r"""Hits@K as OGB's link-prediction ``Evaluator`` defines it.

    .. math::
        \mathrm{Hits@}K = \frac{1}{|P|} \bigl|\{\, i \in P : s_i > s^{(K)}_{neg} \,\}\bigr|

    the fraction of positives scored *strictly* above the K-th highest negative score
    :math:`s^{(K)}_{neg}` (a positive tied with it is a miss). With fewer than ``k`` negatives
    every positive counts as a hit (1.0), as in OGB.

    Args:
        pos_scores: scores of the positive (held-out) edges.
        neg_scores: scores of the negative edges.
        k: rank of the negative threshold (``k >= 1``).

    Raises:
        DataError: ``k < 1`` or no positives.

    Shapes:
        pos_scores: ``[p]``; neg_scores: ``[n]``.
    """
    if k < 1:
        raise DataError(f"hits_at_k needs k >= 1, got {k}")
    pos_scores, neg_scores = pos_scores.detach().flatten(), neg_scores.detach().flatten()
    if pos_scores.numel() == 0:
        raise DataError("hits_at_k needs at least one positive score, got 0")
    if neg_scores.numel() < k:
        return 1.0
    threshold = torch.topk(neg_scores, k).values[-1]
    return float((pos_scores > threshold).to(torch.float64).mean())


# --------------------------------------------------------------------------- segmentation


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    r"""Confusion matrix of class predictions: entry :math:`(t, p)` counts the points of true
    class :math:`t` predicted as :math:`p`.

    Rows are the truth, so row sums are the class sizes and the diagonal holds the true
    positives. Matrices of several batches add up to the matrix of their union.

    Args:
        pred: predicted class of every point (e.g. ``logits.argmax(-1)``).
        target: true class of every point.
        num_classes: :math:`C`; every value must lie in ``[0, C)``.

    Raises:
        DataError: sizes differ, or a class index is out of range.

    Shapes:
        pred, target: ``[n]`` (any shape, flattened) -> ``[C, C]`` int64 on ``pred``'s device.
    """
    pred, target = pred.detach().flatten().long(), target.detach().flatten().long()
    if pred.numel() != target.numel():
        raise DataError(
            f"pred and target must have the same size, got {pred.numel()} and {target.numel()}"
        )
    if num_classes < 1:
        raise DataError(f"confusion_matrix needs num_classes >= 1, got {num_classes}")
    for name, values in (("pred", pred), ("target", target)):
        if values.numel() == 0:
            continue
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise DataError(f"{name} has class {bad} outside [0, {num_classes})")
    # one bin per (truth, prediction) pair, row-major
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes)


def overall_accuracy(confusion: Tensor) -> float:
    r"""Overall accuracy (OA): the fraction of points classified right,
    :math:`\mathrm{OA} = \sum_c TP_c / \sum_{t,p} M_{tp}`; ``nan`` for an empty matrix.

    Shapes:
        confusion: ``[C, C]`` (rows = truth).
    """
    confusion = confusion.to(torch.float64)
    total = float(confusion.sum())
    return float(confusion.diagonal().sum()) / total if total else float("nan")


def iou_per_class(confusion: Tensor) -> Tensor:
    r"""Intersection over union of every class:

    .. math::
        \mathrm{IoU}_c = \frac{TP_c}{TP_c + FP_c + FN_c}

    with :math:`TP_c = M_{cc}`, :math:`FP_c = \sum_{t \ne c} M_{tc}` (column) and
    :math:`FN_c = \sum_{p \ne c} M_{cp}` (row). A class neither present nor predicted
    (:math:`TP_c + FP_c + FN_c = 0`) has no IoU: ``nan``.

    Shapes:
        confusion: ``[C, C]`` (rows = truth) -> ``[C]`` float64.
    """
    confusion = confusion.to(torch.float64)
    tp = confusion.diagonal()
    # row sum + column sum counts TP twice: TP + FN + FP = row + col - TP
    union = confusion.sum(1) + confusion.sum(0) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_iou(confusion: Tensor) -> float:
    r"""Mean IoU (mIoU), the headline metric of S3DIS segmentation (Armeni et al., CVPR 2016;
    DeepGCNs, Li et al., ICCV 2019): :func:`iou_per_class` averaged over the classes with
    :math:`TP_c + FP_c + FN_c > 0`; ``nan`` for an empty matrix.

    A class absent from both the truth and the predictions has no IoU and is left out. The
    DeepGCN reference code (``lightaime/deep_gcns_torch``, ``sem_seg_dense/test.py``) counts
    it as 1 instead, which inflates the mean of a split lacking some classes; on a whole
    S3DIS test area every class is present and the two agree.

    Shapes:
        confusion: ``[C, C]`` (rows = truth).
    """
    iou = iou_per_class(confusion)
    defined = iou[~iou.isnan()]
    return float(defined.mean()) if defined.numel() else float("nan")


def mean_class_accuracy(confusion: Tensor) -> float:
    r"""Mean class accuracy (mAcc): the recall :math:`TP_c / (TP_c + FN_c)` averaged over the
    classes present in the truth (non-empty rows); ``nan`` for an empty matrix.

    Shapes:
        confusion: ``[C, C]`` (rows = truth).
    """
    confusion = confusion.to(torch.float64)
    support = confusion.sum(1)
    present = support > 0
    if not bool(present.any()):
        return float("nan")
    return float((confusion.diagonal()[present] / support[present]).mean())


def segmentation_scores(confusion: Tensor) -> dict[str, float]:
    """``{"oa", "miou", "macc"}`` of a confusion matrix: :func:`overall_accuracy`,
    :func:`mean_iou` and :func:`mean_class_accuracy`.

    Shapes:
        confusion: ``[C, C]`` (rows = truth).
    """
    return {
        "oa": overall_accuracy(confusion),
        "miou": mean_iou(confusion),
        "macc": mean_class_accuracy(confusion),
    }
