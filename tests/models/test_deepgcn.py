"""DeepGCN: the reference layout (widths, dilations), dynamic graphs per block, stochastic
dilation in training only, per-cloud fusion, memory modes with equal gradients, training."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from fathom.config import ModelConfig
from fathom.errors import ConfigError
from fathom.models.build import build_model
from fathom.models.deepgcn import DeepGCN
from fathom.nn.knn import dilated_knn_graph
from fathom.tasks.segmentation import PointsConfig

SMALL = {"hidden": 8, "k": 4, "fusion_channels": 16}


def _clouds(num_clouds: int = 2, points: int = 40, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(num_clouds * points, 9, generator=g)
    batch = torch.arange(num_clouds).repeat_interleave(points)
    return x, x[:, :3], batch


def _record_graphs(model: DeepGCN) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input, edge_index) each backbone block is called with, in order."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    for block in model.backbone:
        block.register_forward_pre_hook(
            lambda _m, args: seen.append((args[0].detach().clone(), args[1]))
        )
    return seen


def _grads(model: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("block", ["plain", "res", "dense"])
@pytest.mark.parametrize("conv", ["edge", "mr", "sage", "gin"])
def test_output_shape(block: str, conv: str) -> None:
    x, pos, batch = _clouds()
    model = DeepGCN(9, 5, conv=conv, depth=4, block=block, **SMALL)
    assert model(x, pos, batch).shape == (80, 5)
    model.eval()
    assert model(x[:40], pos[:40], None).shape == (40, 5)  # one cloud, no batch vector


def test_widths_follow_the_reference() -> None:
    c, n = 8, 5
    res = DeepGCN(9, 3, depth=n, block="res", **SMALL)
    assert res.fusion.lin.in_features == c * n
    assert res.prediction[0].lin.in_features == c * n + 16
    assert [m.lin.out_features for m in res.prediction if hasattr(m, "lin")] == [512, 256, 3]
    assert isinstance(res.prediction[3].act, nn.Identity)  # logits: no act, no norm
    assert isinstance(res.prediction[3].norm, nn.Identity)
    dense = DeepGCN(9, 3, depth=n, block="dense", **SMALL)
    # block i (0-based) reads C (i + 1) channels and adds C; every output enters the fusion
    assert [b.conv.lin.in_features for b in dense.backbone] == [2 * c * (i + 1) for i in range(4)]
    assert dense.fusion.lin.in_features == c * n * (n + 1) // 2


def test_dilation_per_block_and_graphs_from_each_blocks_input() -> None:
    x, pos, batch = _clouds(points=40)
    model = DeepGCN(9, 3, depth=5, block="res", **SMALL).eval()
    assert model.dilations == [1, 2, 3, 4]
    head_graphs: list[torch.Tensor] = []
    model.head.register_forward_pre_hook(lambda _m, args: head_graphs.append(args[1]))
    seen = _record_graphs(model)
    model(x, pos, batch)
    assert torch.equal(head_graphs[0], dilated_knn_graph(pos, 4, batch))
    assert len(seen) == 4
    for i, (h, edge_index) in enumerate(seen):
        assert torch.equal(edge_index, dilated_knn_graph(h, 4, batch, dilation=1 + i))
    assert not torch.equal(seen[1][1], dilated_knn_graph(seen[1][0], 4, batch))  # dilated


def test_dilation_none_and_plain_backbone_use_dilation_one() -> None:
    assert DeepGCN(9, 3, depth=4, dilation="none", **SMALL).dilations == [1, 1, 1]
    plain = DeepGCN(9, 3, depth=4, block="plain", dilation="linear", **SMALL)
    assert plain.dilations == [1, 1, 1]
    assert not any(g.stochastic for g in plain.graphs)
    dense = DeepGCN(9, 3, depth=4, block="dense", **SMALL)
    assert dense.dilations == [1, 2, 3]


def test_stochastic_dilation_only_in_training() -> None:
    x, pos, batch = _clouds(points=40)
    model = DeepGCN(9, 3, depth=5, block="res", epsilon=1.0, **SMALL)
    seen = _record_graphs(model)
    model.eval()
    model(x, pos, batch)
    for i, (h, edge_index) in enumerate(seen):
        assert torch.equal(edge_index, dilated_knn_graph(h, 4, batch, dilation=1 + i))
    seen.clear()
    model.train()
    torch.manual_seed(0)
    model(x, pos, batch)
    differs = 0
    for i, (h, edge_index) in enumerate(seen):
        d = 1 + i
        candidates = dilated_knn_graph(h, 4 * d, batch)[0].view(80, 4 * d)
        chosen = edge_index[0].view(80, 4)
        # rank of each kept neighbour among the point's k * d nearest: the same for every point
        ranks = (candidates.unsqueeze(1) == chosen.unsqueeze(2)).int().argmax(2)  # [80, 4]
        assert torch.equal(candidates.gather(1, ranks), chosen)
        assert (ranks == ranks[0]).all()
        differs += int(not torch.equal(ranks[0], torch.arange(0, 4 * d, d)))
    assert differs > 0  # with epsilon = 1 some block drew other ranks than every d-th
    never = DeepGCN(9, 3, depth=5, block="res", epsilon=0.0, **SMALL)
    seen = _record_graphs(never)
    never(x, pos, batch)
    for i, (h, edge_index) in enumerate(seen):
        assert torch.equal(edge_index, dilated_knn_graph(h, 4, batch, dilation=1 + i))


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_fusion_pool_is_per_cloud(norm: str) -> None:
    x, pos, batch = _clouds(num_clouds=3, points=30)
    torch.manual_seed(0)
    model = DeepGCN(9, 4, depth=4, block="res", norm=norm, dropout=0.0, **SMALL)
    model(x, pos, batch)  # one training step's worth of BatchNorm running statistics
    # BatchNorm couples clouds in training through the batch statistics: compare in eval;
    # without a norm the training-mode forward is compared too
    modes = [False] if norm == "batch" else [False, True]
    for training in modes:
        model.train(training)
        torch.manual_seed(1)
        before = model(x, pos, batch)
        changed = x.clone()
        changed[30:60] = 10 * torch.rand(30, 9, generator=torch.Generator().manual_seed(5))
        torch.manual_seed(1)
        after = model(changed, changed[:, :3], batch)
        torch.testing.assert_close(after[:30], before[:30], rtol=0, atol=0)
        torch.testing.assert_close(after[60:], before[60:], rtol=0, atol=0)
        assert not torch.allclose(after[30:60], before[30:60])


def test_global_pool_would_leak_between_clouds() -> None:
    """Control for the isolation test: with all points as one cloud, cloud 1's logits move."""
    x, pos, batch = _clouds(num_clouds=2, points=30)
    model = DeepGCN(9, 4, depth=3, block="res", norm="none", **SMALL).eval()
    changed = x.clone()
    changed[30:] = 10 * changed[30:]
    one = torch.zeros_like(batch)
    before, after = model(x, pos, one), model(changed, changed[:, :3], one)
    assert not torch.allclose(after[:30], before[:30])


@pytest.mark.parametrize("block", ["plain", "res", "dense"])
def test_checkpoint_gives_identical_gradients(block: str) -> None:
    x, pos, batch = _clouds(points=40)
    y = torch.randint(0, 3, (80,), generator=torch.Generator().manual_seed(1))
    models = []
    for memory in ("plain", "checkpoint"):
        torch.manual_seed(0)
        models.append(DeepGCN(9, 3, depth=4, block=block, epsilon=0.5, memory=memory, **SMALL))
    plain, ckpt = models
    for a, b in zip(plain.parameters(), ckpt.parameters(), strict=True):
        assert torch.equal(a, b)
    losses = []
    for model in models:
        torch.manual_seed(3)  # same stochastic dilation and dropout draws
        loss = nn.functional.cross_entropy(model(x, pos, batch), y)
        loss.backward()
        losses.append(loss)
    assert torch.equal(losses[0], losses[1])
    for a, b in zip(_grads(plain), _grads(ckpt), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(plain.buffers(), ckpt.buffers(), strict=True):  # running stats: once
        assert torch.equal(a, b)


def test_reversible_gradients_equal_the_ordinary_coupling() -> None:
    x, pos, batch = _clouds(points=40)
    y = torch.randint(0, 3, (80,), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    rev = DeepGCN(9, 3, depth=6, block="res", memory="reversible", groups=2, epsilon=0.5, **SMALL)
    ordinary = copy.deepcopy(rev)
    for block in ordinary.backbone:
        block.forward = block.coupling  # the same coupling, every intermediate kept
    assert [b.groups for b in rev.backbone] == [2] * 5
    assert rev.backbone[0].fns[0].lin.in_features == 2 * 4  # EdgeConv of width hidden / 2
    losses = []
    for model in (rev, ordinary):
        torch.manual_seed(3)
        loss = nn.functional.cross_entropy(model(x, pos, batch), y)
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1])
    for a, b in zip(_grads(rev), _grads(ordinary), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(rev.buffers(), ordinary.buffers(), strict=True):
        torch.testing.assert_close(a, b)
    rev.eval()
    ordinary.eval()
    with torch.no_grad():
        torch.testing.assert_close(rev(x, pos, batch), ordinary(x, pos, batch))


def test_resgcn_28_forward_and_backward() -> None:
    x, pos, batch = _clouds(num_clouds=2, points=128)
    torch.manual_seed(0)
    model = DeepGCN(9, 13, depth=28, block="res", k=4, hidden=16, fusion_channels=64)
    assert model.dilations == list(range(1, 28))  # k * 27 = 108 <= 128 points
    out = model(x, pos, batch)
    nn.functional.cross_entropy(out, torch.zeros(256, dtype=torch.long)).backward()
    assert out.shape == (256, 13)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_same_seed_same_numbers_in_training() -> None:
    x, pos, batch = _clouds()
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        model = DeepGCN(9, 3, depth=4, block="res", epsilon=0.5, **SMALL)
        outs.append(model(x, pos, batch))
    assert torch.equal(outs[0], outs[1])


def test_tiny_model_overfits_one_cloud() -> None:
    g = torch.Generator().manual_seed(0)
    pos = torch.rand(64, 3, generator=g)
    x = torch.cat([pos, torch.rand(64, 6, generator=g)], dim=1)
    y = (pos[:, 0] > 0.5).long() + (pos[:, 1] > 0.5).long()  # 3 classes by position
    torch.manual_seed(0)
    model = DeepGCN(9, 3, depth=3, block="res", hidden=16, k=4, fusion_channels=32, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x, pos), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    model.eval()
    assert (model(x, pos).argmax(1) == y).float().mean() > 0.9


def test_build_from_config() -> None:
    model_cfg = ModelConfig(conv="mr", depth=4, hidden=8, skip="dense", norm="batch", dropout=0.1)
    points = PointsConfig(k=5, dilation="linear", epsilon=0.3, fusion_channels=24)
    model = build_model(model_cfg, 9, 13, head=points.head())
    assert model.block == "dense" and model.dilations == [1, 2, 3]
    assert all(g.k == 5 and g.epsilon == 0.3 and g.stochastic for g in model.graphs)
    assert model.fusion.lin.out_features == 24
    assert model.prediction[2].p == 0.1
    assert model.prediction[3].lin.out_features == 13
    plain = build_model(ModelConfig(conv="edge", depth=3, skip="none"), 9, 2, head=points.head())
    assert plain.block == "plain"
    ckpt = build_model(
        ModelConfig(conv="edge", depth=3, skip="res", memory="checkpoint"), 9, 2, head=points.head()
    )
    assert ckpt.memory == "checkpoint"
    assert all(m.order == "act-norm" for m in model.modules() if hasattr(m, "order"))
    swapped = build_model(model_cfg, 9, 13, head=PointsConfig(k=5, order="norm-act").head())
    orders = [m.order for m in swapped.modules() if hasattr(m, "order")]
    assert len(orders) > 4 and set(orders) == {"norm-act"}  # head, blocks, fusion, prediction


def test_config_errors() -> None:
    points = PointsConfig(k=4)
    with pytest.raises(ConfigError, match="edge, gin, mr, sage"):
        build_model(ModelConfig(conv="gcn", skip="res"), 9, 3, head=points.head())
    with pytest.raises(ConfigError, match="'jk'"):
        build_model(ModelConfig(conv="edge", skip="jk"), 9, 3, head=points.head())
    with pytest.raises(ConfigError, match="reversible"):
        build_model(
            ModelConfig(conv="edge", skip="dense", memory="reversible"), 9, 3, head=points.head()
        )
    with pytest.raises(ConfigError, match="groups"):
        DeepGCN(9, 3, hidden=9, memory="reversible", groups=2)
    with pytest.raises(ConfigError, match="'swap'"):
        DeepGCN(9, 3, memory="swap")
