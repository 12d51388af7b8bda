"""Tests of fathom.models.dgi: the DGI model, trained by ``fit`` with the node task's
``DGIObjective`` (unsupervised, selection on the training loss, then a linear probe)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch_geometric.data import Data
from torch_geometric.utils import stochastic_blockmodel_graph

from fathom.config import TrainConfig
from fathom.models.dgi import DGI, corrupt, summarize
from fathom.tasks.node import DGIObjective
from fathom.train.loop import FitResult, fit

IN, HIDDEN = 16, 32
METRIC_KEYS = {"train_acc", "val_acc", "test_acc", "train_loss", "val_loss", "test_loss"}


def fit_dgi(
    model: DGI,
    data: Data,
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    patience: int,
    callbacks: Sequence[Callable[[dict[str, float]], None]] = (),
) -> FitResult:
    """DGI pre-training and probe as a run does it: ``fit`` with :class:`DGIObjective`."""
    cfg = TrainConfig(epochs=epochs, lr=lr, weight_decay=weight_decay, patience=patience)
    return fit(model, DGIObjective(), data, cfg, callbacks)


def _sbm(per_block: int = 30, seed: int = 0) -> Data:
    """Two dense blocks, sparse across; features carry a weak class signal under noise."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # stochastic_blockmodel_graph draws from the global generator
    edge_index = stochastic_blockmodel_graph([per_block, per_block], [[0.3, 0.02], [0.02, 0.3]])
    y = torch.arange(2).repeat_interleave(per_block)
    x = torch.randn(2 * per_block, IN, generator=g)
    x[:, 0] += 1.0 * (2 * y - 1)
    perm = torch.randperm(2 * per_block, generator=g)
    masks = {}
    for name, idx in (("train", perm[:10]), ("val", perm[10:30]), ("test", perm[30:])):
        masks[f"{name}_mask"] = torch.zeros(2 * per_block, dtype=torch.bool).index_fill_(
            0, idx, True
        )
    return Data(x=x, edge_index=edge_index, y=y, **masks)


def test_shapes_and_parts() -> None:
    torch.manual_seed(0)
    data = _sbm()
    model = DGI(IN, HIDDEN)
    z = model(data.x, data.edge_index)
    assert z.shape == (60, HIDDEN)
    assert summarize(z).shape == (HIDDEN,)
    assert torch.all((summarize(z) > 0) & (summarize(z) < 1))
    x_c, ei_c = corrupt(data.x, data.edge_index)
    assert ei_c is data.edge_index
    # a row shuffle: the same multiset of rows
    assert torch.equal(x_c.sort(dim=0).values, data.x.sort(dim=0).values)
    loss = model.loss(data.x, data.edge_index)
    assert loss.dim() == 0 and math.isfinite(loss.item())
    # BCE of an uninformed discriminator is about log 2
    assert 0.3 < loss.item() < 1.5
    before = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_loss_decreases() -> None:
    torch.manual_seed(0)
    data = _sbm()
    model = DGI(IN, HIDDEN)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = model.loss(data.x, data.edge_index)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_fit_dgi_probe_beats_chance() -> None:
    torch.manual_seed(0)
    data = _sbm()
    model = DGI(IN, HIDDEN)
    records: list[dict[str, float]] = []
    result = fit_dgi(
        model, data, epochs=60, lr=0.01, weight_decay=0.0, patience=20, callbacks=[records.append]
    )
    assert result.status == "done", result.message
    assert set(result.metrics) == METRIC_KEYS
    assert all(isinstance(v, float) for v in result.metrics.values())
    assert result.metrics["test_acc"] >= 0.85
    assert result.history == records
    assert all(set(r) == {"epoch", "loss"} for r in records)
    assert result.epochs == len(records) and 1 <= result.best_epoch <= result.epochs
    assert result.time_s > 0


def test_early_stopping_restores_best_weights() -> None:
    torch.manual_seed(0)
    data = _sbm()
    model = DGI(IN, HIDDEN)
    # weights in force at epoch e: before training for e = 1, else after epoch e - 1's step
    states = [{k: v.clone() for k, v in model.state_dict().items()}]

    def snapshot(_record: dict[str, float]) -> None:
        states.append({k: v.clone() for k, v in model.state_dict().items()})

    # the loss is noisy (a fresh corruption each epoch), so patience=3 stops it early
    result = fit_dgi(
        model, data, epochs=300, lr=0.01, weight_decay=0.0, patience=3, callbacks=[snapshot]
    )
    losses = [r["loss"] for r in result.history]
    assert result.epochs == result.best_epoch + 3 < 300
    assert result.best_epoch > 1
    assert result.best_epoch == 1 + losses.index(min(losses))
    best = states[result.best_epoch - 1]
    for k, v in model.state_dict().items():
        assert torch.equal(v, best[k]), k


def test_non_finite_loss_is_diverged() -> None:
    data = _sbm()
    data.x = data.x.clone()
    data.x[0, 0] = float("nan")
    result = fit_dgi(DGI(IN, HIDDEN), data, epochs=5, lr=0.01, weight_decay=0.0, patience=0)
    assert result.status == "diverged"
    assert "epoch 1" in result.message
    assert result.metrics == {}


def _two_pass_loss(model: DGI, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """The objective as PyG's DeepGraphInfomax computes it: the encoder run on ``x`` and again
    on the row-shuffled ``x`` (two products with the weight)."""
    pos_z, neg_z, summary = model.infomax(x, edge_index)
    pos = model.infomax.discriminate(pos_z, summary, sigmoid=False)
    neg = model.infomax.discriminate(neg_z, summary, sigmoid=False)
    logits = torch.cat([pos, neg])
    labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)


def test_a_sparse_adjacency_takes_the_encoders_own_path() -> None:
    """An adjacency given as a sparse matrix, not an edge_index: the plain encoder (two
    passes), the same embeddings."""
    data = _sbm()
    torch.manual_seed(0)
    model = DGI(IN, HIDDEN)
    adj = torch.sparse_coo_tensor(
        data.edge_index.flip(0), torch.ones(data.edge_index.size(1)), (60, 60)
    ).to_sparse_csr()
    z = model(data.x, adj)
    assert torch.allclose(z, model.infomax.encoder(data.x, adj))
    torch.manual_seed(1)
    loss = model.loss(data.x, adj)
    torch.manual_seed(1)
    assert torch.equal(loss, _two_pass_loss(model, data.x, adj))


def _bag_of_words(data: Data, density: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(data.num_nodes, 400, generator=g) < density).float()
    return x / x.sum(dim=1, keepdim=True).clamp(min=1)


def test_one_product_per_step_is_the_two_pass_objective() -> None:
    """XW once, the corrupted view as its rows permuted: the same loss and gradients as
    encoding the shuffled features again, drawing the same permutation."""
    data = _sbm()
    for x in (data.x, _bag_of_words(data, 0.01)):  # dense, and through the sparse product
        torch.manual_seed(0)
        model = DGI(x.size(1), HIDDEN)
        torch.manual_seed(1)
        loss = model.loss(x, data.edge_index)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        torch.manual_seed(1)
        ref = _two_pass_loss(model, x, data.edge_index)
        ref_grads = torch.autograd.grad(ref, list(model.parameters()))
        assert torch.allclose(loss, ref, rtol=1e-5, atol=1e-6)
        for a, b in zip(grads, ref_grads, strict=True):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_sparse_input_only_for_sparse_features_and_refreshed_on_change() -> None:
    data = _sbm()
    torch.manual_seed(0)
    sparse_x, dense_x = _bag_of_words(data, 0.01), _bag_of_words(data, 0.5)
    model = DGI(sparse_x.size(1), HIDDEN)
    z = model(sparse_x, data.edge_index)
    assert (
        model._sparse_input.csr is not None and model._sparse_input.csr.layout == torch.sparse_csr
    )
    assert torch.allclose(z, model.infomax.encoder(sparse_x, data.edge_index), atol=1e-6)
    model(dense_x, data.edge_index)
    assert model._sparse_input.csr is None  # 50 % non-zero: the dense product
    # an in-place change of the features is seen (the copy is keyed on the tensor's version)
    model(sparse_x, data.edge_index)
    sparse_x[:, :5] = 0.0
    z = model(sparse_x, data.edge_index)
    assert torch.allclose(z, model.infomax.encoder(sparse_x, data.edge_index), atol=1e-6)
