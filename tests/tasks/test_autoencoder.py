"""Tests of fathom.tasks.autoencoder: Kipf & Welling's loss, KL, denoising, presets, runs."""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from fathom.config import ExperimentConfig, ModelConfig, TrainConfig
from fathom.data.synthetic import make_synthetic
from fathom.errors import ConfigError
from fathom.experiments.run import train_one
from fathom.models.autoencoder import VGAEEncoder
from fathom.models.link import DotDecoder, LinkModel
from fathom.models.presets import load_preset
from fathom.tasks.autoencoder import GraphAutoencoder, reconstruction_loss
from fathom.tasks.link import LinkTaskConfig, split_edges

REAL_DATA = os.environ.get("FATHOM_DATA") or None

# path 0-1-2-3 plus edge 1-3: E = 8 directed edges on N = 4 nodes
EDGE_INDEX = torch.tensor([[0, 1, 1, 2, 2, 3, 1, 3], [1, 0, 2, 1, 3, 2, 3, 1]])


def _communities(num_nodes: int = 160) -> Data:
    # 8 dense communities: a random non-edge lies inside one with probability ~1/8, so a
    # model that learns the communities can reach an AUC near 1 - 1/16
    return make_synthetic(
        "csbm", num_nodes=num_nodes, num_classes=8, feature_dim=16, avg_degree=8.0,
        homophily=1.0, seed=0,
    )  # fmt: skip


def test_dense_loss_at_zero_logits_has_the_closed_form() -> None:
    n, e = 4, 8
    pos_weight = (n * n - e) / e
    norm = n * n / (2 * (n * n - e))
    # targets A + I: e + n positives weighted pos_weight, the rest plain; every term is log 2
    expected = norm * math.log(2) * (pos_weight * (e + n) + (n * n - e - n)) / (n * n)
    loss = reconstruction_loss(DotDecoder(), torch.zeros(n, 3), EDGE_INDEX, n)
    assert loss.item() == pytest.approx(expected)


def test_dense_loss_matches_the_weighted_bce_written_out() -> None:
    torch.manual_seed(0)
    z = torch.randn(4, 3)
    s = z @ z.t()
    target = torch.eye(4)
    target[EDGE_INDEX[0], EDGE_INDEX[1]] = 1.0
    pos_weight, norm = (16 - 8) / 8, 16 / (2 * (16 - 8))
    terms = pos_weight * target * F.softplus(-s) + (1 - target) * F.softplus(s)
    loss = reconstruction_loss(DotDecoder(), z, EDGE_INDEX, 4)
    assert loss.item() == pytest.approx(norm * terms.mean().item(), rel=1e-6)


def test_sampled_loss_equals_dense_when_every_non_edge_is_drawn() -> None:
    torch.manual_seed(0)
    n = 7
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0, 1, 2, 3, 4]])
    z = torch.randn(n, 3)
    non_edges = n * (n - 1) // 2 - 5  # canonical pairs
    ratio = non_edges / (edge_index.size(1) + n)
    dense = reconstruction_loss(DotDecoder(), z, edge_index, n)
    sampled = reconstruction_loss(DotDecoder(), z, edge_index, n, dense=False, neg_ratio=ratio)
    assert sampled.item() == pytest.approx(dense.item(), rel=1e-5)


class Recorder(nn.Module):
    """Fixed learnable embeddings; records its inputs and mode."""

    def __init__(self, z: Tensor) -> None:
        super().__init__()
        self.z = nn.Parameter(z.clone())
        self.calls: list[tuple[Tensor, Tensor, bool]] = []

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        self.calls.append((x, edge_index, self.training))
        return self.z


def _pairs(t: Tensor) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in t.t()}


def test_denoising_corrupts_only_training_steps_and_reconstructs_the_clean_graph() -> None:
    data = _communities(80)
    split = split_edges(data, 0.1, 0.1, seed=0)
    torch.manual_seed(0)
    encoder = Recorder(torch.randn(80, 4))
    model = LinkModel(encoder, DotDecoder())
    task = GraphAutoencoder(split, corrupt_edges=0.5, corrupt_features=0.3)
    train_data = split.train_data(data)
    loss = task.loss(model, train_data)
    x, edge_index, training = encoder.calls[-1]
    num_train = split.train_pos.size(1)
    assert training
    assert edge_index.size(1) == 2 * (num_train - num_train // 2)
    assert _pairs(edge_index) < _pairs(split.train_edge_index)
    zeroed = (x == 0) & (data.x != 0)
    assert 0.2 < zeroed.float().mean().item() < 0.4
    assert torch.equal(x[~zeroed], data.x[~zeroed])
    # the target is the uncorrupted training graph
    clean = reconstruction_loss(DotDecoder(), encoder.z, split.train_edge_index, 80)
    assert loss.item() == pytest.approx(clean.item())
    task.evaluate(model, train_data)
    x, edge_index, training = encoder.calls[-1]
    assert not training
    assert torch.equal(x, data.x) and torch.equal(edge_index, split.train_edge_index)


def test_vgae_loss_adds_kl_over_num_nodes() -> None:
    data = _communities(80)
    split = split_edges(data, 0.1, 0.1, seed=0)
    torch.manual_seed(0)
    model = LinkModel(VGAEEncoder(16, 8, 4), DotDecoder())
    task = GraphAutoencoder(split)
    torch.manual_seed(5)
    loss = task.loss(model, split.train_data(data))
    torch.manual_seed(5)  # the same reparameterisation noise
    z = model.encode(data.x, split.train_edge_index)
    kl = model.encoder.kl_loss()
    recon = reconstruction_loss(model.decoder, z, split.train_edge_index, 80)
    assert math.isfinite(kl.item()) and kl.item() > 0
    assert loss.item() == pytest.approx((recon + kl / 80).item(), rel=1e-6)


def test_feature_reconstruction_adds_weighted_mse() -> None:
    data = _communities(80)
    split = split_edges(data, 0.1, 0.1, seed=0)
    torch.manual_seed(0)
    encoder = Recorder(torch.randn(80, 4))
    model = LinkModel(encoder, DotDecoder(), feature_decoder=nn.Linear(4, 16))
    loss = GraphAutoencoder(split, feature_weight=0.5).loss(model, split.train_data(data))
    recon = reconstruction_loss(DotDecoder(), encoder.z, split.train_edge_index, 80)
    mse = F.mse_loss(model.feature_decoder(encoder.z), data.x)
    assert loss.item() == pytest.approx((recon + 0.5 * mse).item(), rel=1e-6)
    with pytest.raises(ConfigError, match="feature decoder"):
        GraphAutoencoder(split, feature_weight=0.5).loss(
            LinkModel(encoder, DotDecoder()), split.train_data(data)
        )


def test_bad_corruption_raises_a_one_line_config_error() -> None:
    split = split_edges(_communities(80), 0.1, 0.1)
    with pytest.raises(ConfigError, match=r"link\.corrupt_edges") as info:
        GraphAutoencoder(split, corrupt_edges=1.0)
    assert "\n" not in str(info.value)


def _cfg(arch: str, **link: object) -> ExperimentConfig:
    return ExperimentConfig(
        model=ModelConfig(arch=arch, hidden=32, dropout=0.0),
        train=TrainConfig(epochs=30, lr=0.01, weight_decay=0.0, patience=0),
        task="autoencoder",
        link=replace(LinkTaskConfig(val_fraction=0.1, test_fraction=0.2), **link),
        seed=0,
    ).validate()


@pytest.mark.parametrize("arch", ["gae", "vgae"])
def test_autoencoder_learns_communities_in_a_few_epochs(arch: str) -> None:
    data = _communities()
    result = train_one(_cfg(arch), data)
    assert result.status == "done" and result.epochs == 30
    assert result.metrics["test_auc"] > 0.88
    assert result.metrics["test_auc"] > result.history[0]["test_auc"] + 0.1
    assert result.metrics["test_ap"] > 0.85


def test_autoencoder_run_is_deterministic_with_denoising() -> None:
    data = _communities(80)
    cfg = _cfg("vgae", corrupt_edges=0.2, corrupt_features=0.1, feature_weight=0.1)
    a, b = train_one(cfg, data), train_one(cfg, data)
    assert a.metrics == b.metrics
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert train_one(replace(cfg, seed=1), data).metrics != a.metrics


def test_sampled_reconstruction_trains_too() -> None:
    data = _communities(80)
    cfg = _cfg("gae", decoder="mlp")  # no dense form: sampled non-edges
    result = train_one(cfg, data)
    assert result.status == "done"
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_reconstruction_sampled_never_builds_the_dense_matrix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``link.reconstruction: sampled`` samples non-edges even where the dense loss fits (80
    nodes, dot decoder), learns, and is its own run key; ``auto`` there is dense."""
    from fathom.config import config_from_dict, config_hash, config_to_dict

    calls: list[int] = []
    dense = DotDecoder.dense

    def counted(self: DotDecoder, z: Tensor) -> Tensor:
        calls.append(z.size(0))
        return dense(self, z)

    monkeypatch.setattr(DotDecoder, "dense", counted)
    data = _communities(80)
    sampled = _cfg("gae", reconstruction="sampled")
    result = train_one(sampled, data)
    assert calls == [] and result.status == "done"
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.metrics["test_auc"] > 0.75
    train_one(replace(_cfg("gae"), train=replace(sampled.train, epochs=1)), data)
    assert calls == [80]
    assert config_hash(sampled) != config_hash(_cfg("gae"))
    raw = config_to_dict(_cfg("gae"))  # at its default the field leaves stored keys as they were
    del raw["link"]["reconstruction"]
    assert config_hash(config_from_dict(raw)) == config_hash(_cfg("gae"))


def test_bad_reconstruction_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"link\.reconstruction.*auto or sampled") as info:
        _cfg("gae", reconstruction="dense")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["gae-cora", "vgae-cora"])
def test_presets_have_kipfs_hyper_parameters(name: str) -> None:
    cfg = load_preset(name)
    m, t, lk = cfg.model, cfg.train, cfg.link
    assert cfg.task == "autoencoder" and cfg.data.name == "cora"
    assert cfg.data.normalize_features is False
    assert (m.arch, m.hidden, m.dropout) == (name.split("-")[0], 32, 0.0)
    assert (lk.embedding_dim, lk.decoder, lk.val_fraction, lk.test_fraction) == (
        16, "dot", 0.05, 0.10,
    )  # fmt: skip
    assert (t.epochs, t.lr, t.weight_decay, t.patience) == (200, 0.01, 0.0, 0)


@pytest.mark.dataset
@pytest.mark.skipif(REAL_DATA is None, reason="FATHOM_DATA not set: real-dataset test skipped")
def test_gae_on_cora_beats_chance_quickly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fathom.data.build import build_dataset

    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path))
    cfg = load_preset("gae-cora")
    cfg = replace(cfg, train=replace(cfg.train, epochs=20))
    data = build_dataset(cfg.data)
    assert data.num_nodes == 2708
    result = train_one(cfg, data)
    assert result.metrics["test_auc"] > 0.8
    link = train_one(replace(cfg, task="link"), data)
    assert link.metrics["test_auc"] > 0.6
