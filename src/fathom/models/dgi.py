"""Deep Graph Infomax: unsupervised node embeddings, evaluated by a linear probe."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import DeepGraphInfomax

from fathom.nn.convs import CachedGCNConv
from fathom.train.loop import FitResult

__all__ = ["DGI", "GCNEncoder", "corrupt", "fit_dgi", "summarize"]

SPLITS = ("train", "val", "test")


class GCNEncoder(nn.Module):
    """DGI's transductive encoder: one GCN layer with a PReLU,
    :math:`\\mathcal{E}(X, A) = \\mathrm{PReLU}(S X W + b)`,
    :math:`S = \\hat D^{-1/2} (A + I) \\hat D^{-1/2}`.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, hidden_channels]``.
    """

    def __init__(self, in_channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.conv = CachedGCNConv(in_channels, hidden_channels)
        self.act = nn.PReLU(hidden_channels)

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        self.act.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.act(self.conv(x, edge_index))


def corrupt(x: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
    """DGI's corruption :math:`\\mathcal{C}`: shuffle the rows of ``x`` (every node gets
    another node's features), keep the graph.

    Shapes:
        x: ``[num_nodes, channels]`` -> same; edge_index unchanged.
    """
    return x[torch.randperm(x.size(0), device=x.device)], edge_index


def summarize(z: Tensor, *args: object, **kwargs: object) -> Tensor:
    """DGI's readout :math:`\\mathcal{R}`: :math:`s = \\sigma(\\frac1N \\sum_i z_i)`.

    Extra arguments (PyG passes the encoder's inputs too) are ignored.

    Shapes:
        z: ``[num_nodes, hidden]`` -> ``[hidden]``.
    """
    return torch.sigmoid(z.mean(dim=0))


class DGI(nn.Module):
    """Deep Graph Infomax from `"Deep Graph Infomax" <https://arxiv.org/abs/1809.10341>`_
    (Veličković et al., ICLR 2019), transductive setup: a one-layer GCN encoder trained to
    tell true node embeddings from those of a row-shuffled graph, given the graph summary,

    .. math::
        Z = \\mathrm{PReLU}(S X W), \\quad \\tilde Z = \\mathrm{PReLU}(S X_{\\pi} W), \\quad
        s = \\sigma\\big(\\tfrac1N \\textstyle\\sum_i z_i\\big), \\quad
        D(z, s) = z^\\top \\mathbf{W}_D\\, s,

    .. math::
        \\mathcal{L} = -\\frac{1}{2N} \\sum_{i=1}^{N} \\big[\\log \\sigma(D(z_i, s))
        + \\log(1 - \\sigma(D(\\tilde z_i, s)))\\big]

    (binary cross-entropy on logits over the :math:`N` positive and :math:`N` negative
    pairs, as in the authors' code). Built on :class:`torch_geometric.nn.DeepGraphInfomax`
    (its bilinear discriminator and corruption plumbing); :meth:`forward` returns the
    embeddings :math:`Z` so probes and diagnostics see an ordinary ``model(x, edge_index)``.
    Train with :func:`fit_dgi`.

    Args:
        in_channels: input feature size.
        hidden_channels: embedding size (paper: ``512``).

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, hidden_channels]``.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 512) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.infomax = DeepGraphInfomax(
            hidden_channels,
            encoder=GCNEncoder(in_channels, hidden_channels),
            summary=summarize,
            corruption=corrupt,
        )

    @property
    def encoder(self) -> nn.Module:
        return self.infomax.encoder

    def reset_parameters(self) -> None:
        self.infomax.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Node embeddings :math:`Z`."""
        return self.infomax.encoder(x, edge_index)

    def loss(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """The DGI objective on one fresh corruption of ``x`` (a scalar)."""
        pos_z, neg_z, summary = self.infomax(x, edge_index)
        pos = self.infomax.discriminate(pos_z, summary, sigmoid=False)  # [num_nodes]
        neg = self.infomax.discriminate(neg_z, summary, sigmoid=False)
        logits = torch.cat([pos, neg])
        labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
        return F.binary_cross_entropy_with_logits(logits, labels)


def _probe_metrics(probe: nn.Module, z: Tensor, data: Data) -> dict[str, float]:
    with torch.no_grad():
        out = probe(z)
    pred = out.argmax(dim=-1)
    metrics: dict[str, float] = {}
    for split in SPLITS:
        mask = data[f"{split}_mask"]
        metrics[f"{split}_acc"] = (pred[mask] == data.y[mask]).float().mean().item()
        metrics[f"{split}_loss"] = F.cross_entropy(out[mask], data.y[mask]).item()
    return metrics


def fit_dgi(
    model: DGI,
    data: Data,
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    patience: int,
    probe_epochs: int = 100,
    probe_lr: float = 0.01,
    probe_weight_decay: float = 0.0,
    callbacks: Sequence[Callable[[dict[str, float]], None]] = (),
) -> FitResult:
    """Train ``model`` without labels, then score its frozen embeddings with a linear probe.

    Stage 1 (as the authors' code): up to ``epochs`` full-batch Adam steps on
    :meth:`DGI.loss`; the record ``{epoch, loss}`` goes to the history and to each callback.
    Training stops after ``patience`` epochs without a lower training loss (``0``: never)
    and the weights that reached the lowest loss are restored. A non-finite loss stops it
    as ``diverged``; the best weights before it, if any, are restored and probed.

    Stage 2: embed every node once (eval mode, no gradient) and train logistic regression
    (``Linear(hidden, num_classes)``, Adam) on the training nodes for ``probe_epochs`` full-
    batch steps; its accuracy and cross-entropy on every split are the metrics, as
    :meth:`~fathom.tasks.node.NodeClassification.evaluate` reports them. The model is left
    in eval mode with its best weights.

    Paper setup (Cora, 82.3% test accuracy): ``hidden_channels=512, lr=0.001,
    weight_decay=0, patience=20``, probe ``lr=0.01``, no weight decay, 100 epochs.

    Returns:
        :class:`~fathom.train.loop.FitResult` with metrics
        ``{train,val,test}_{acc,loss}`` of the probe (empty if no epoch had a finite loss),
        ``best_epoch`` the epoch of lowest DGI loss, and the unsupervised ``history``.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history: list[dict[str, float]] = []
    status, message = "done", ""
    best_loss, best_epoch, wait = math.inf, 0, 0
    best_state: dict[str, Tensor] | None = None
    start = time.perf_counter()
    model.train()
    for epoch in range(1, epochs + 1):
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(data.x, data.edge_index)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            status, message = "diverged", f"diverged at epoch {epoch} (training loss {loss_value})"
            break
        if loss_value < best_loss:
            # snapshot before the step: these weights are the ones that scored loss_value
            best_loss, best_epoch, wait = loss_value, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            wait += 1
        loss.backward()
        optimizer.step()
        record = {"epoch": float(epoch), "loss": loss_value}
        history.append(record)
        for callback in callbacks:
            callback(record)
        if patience > 0 and wait >= patience:
            break

    metrics: dict[str, float] = {}
    if best_state is not None:
        model.load_state_dict(best_state)
        model.eval()
        with torch.no_grad():
            z = model(data.x, data.edge_index)
        num_classes = int(data.y.max()) + 1
        probe = nn.Linear(z.size(-1), num_classes).to(z.device)
        # the authors' LogReg: Xavier-uniform weights, zero bias
        nn.init.xavier_uniform_(probe.weight)
        nn.init.zeros_(probe.bias)
        probe_opt = torch.optim.Adam(
            probe.parameters(), lr=probe_lr, weight_decay=probe_weight_decay
        )
        z_train, y_train = z[data.train_mask], data.y[data.train_mask]
        for _ in range(probe_epochs):
            probe_opt.zero_grad(set_to_none=True)
            F.cross_entropy(probe(z_train), y_train).backward()
            probe_opt.step()
        metrics = _probe_metrics(probe, z, data)
    return FitResult(
        status=status,
        metrics=metrics,
        best_epoch=best_epoch,
        epochs=len(history),
        time_s=time.perf_counter() - start,
        history=history,
        message=message,
    )
