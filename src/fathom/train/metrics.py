"""Ranking metrics of binary scores: ROC-AUC, average precision and Hits@K, in plain torch.

They score link prediction (``task: link`` / ``task: autoencoder``): positives are held-out
edges, negatives sampled non-edges. scikit-learn is not a dependency, so the definitions
below reproduce ``sklearn.metrics.roc_auc_score`` / ``average_precision_score`` and OGB's
``Evaluator`` (``hits@K``) exactly, ties included.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fathom.errors import DataError

__all__ = ["average_precision", "hits_at_k", "roc_auc"]


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
    scores, positive = _check(scores, labels)
    _, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    counts = counts.to(torch.float64)
    # tied scores share the mean of the ranks they span: (first + last) / 2
    first_rank = torch.cumsum(counts, 0) - counts + 1
    ranks = (first_rank + (counts - 1) / 2)[inverse]
    n_pos = float(positive.sum())
    n_neg = float(positive.numel()) - n_pos
    u = ranks[positive].sum().item() - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


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
    scores, positive = _check(scores, labels)
    order = torch.argsort(scores, descending=True, stable=True)
    scores, hit = scores[order], positive[order].to(torch.float64)
    tps = torch.cumsum(hit, 0)
    fps = torch.cumsum(1 - hit, 0)
    # one threshold per distinct score: the last position of each run of equal scores
    last = torch.ones_like(scores, dtype=torch.bool)
    last[:-1] = scores[1:] != scores[:-1]
    tps, fps = tps[last], fps[last]
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    steps = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((steps * precision).sum())


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
