"""Transductive node classification: one graph, train / val / test node masks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

__all__ = ["NodeClassification"]

SPLITS = ("train", "val", "test")


class NodeClassification:
    """Cross-entropy on the training nodes; accuracy and loss on every split.

    Full batch: one forward pass over the whole graph per step.

    Args:
        label_smoothing: label smoothing of the training loss (Szegedy et al. 2016; one of
            the Bag-of-Tricks remedies); evaluation losses are never smoothed.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = label_smoothing

    def loss(self, model: nn.Module, data: Data) -> Tensor:
        """Training loss (model in train mode, dropout active)."""
        out = model(data.x, data.edge_index)
        mask = data.train_mask
        return F.cross_entropy(out[mask], data.y[mask], label_smoothing=self.label_smoothing)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Data) -> dict[str, float]:
        """``{train,val,test}_{acc,loss}`` from one forward pass in eval mode."""
        was_training = model.training
        model.eval()
        out = model(data.x, data.edge_index)
        model.train(was_training)
        pred = out.argmax(dim=-1)
        metrics: dict[str, float] = {}
        for split in SPLITS:
            mask = data[f"{split}_mask"]
            metrics[f"{split}_loss"] = F.cross_entropy(out[mask], data.y[mask]).item()
            metrics[f"{split}_acc"] = (pred[mask] == data.y[mask]).float().mean().item()
        return metrics
