"""Tests of fathom.models.deep_gnn's memory modes (plain, checkpoint, reversible) as built by
fathom.models.build.build_deep_gnn."""

from __future__ import annotations

import copy
import weakref
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fathom.config import ModelConfig
from fathom.data.synthetic import csbm
from fathom.errors import ConfigError
from fathom.models.build import build_deep_gnn
from fathom.models.deep_gnn import DeepGNN, GCNGroup, GroupBlock
from fathom.nn.activations import build_activation
from fathom.nn.convs import build_conv
from fathom.nn.dropouts import Dropout
from fathom.nn.norms import build_norm
from fathom.nn.reversible import ReversibleGroups
from fathom.nn.skips import build_skip

GRAPH = csbm(120, 3, feature_dim=6, avg_degree=6.0, separation=2.0, seed=0)
BASE = ModelConfig(
    depth=6, hidden=8, encoder="linear", skip="res", norm="batch", dropout=0.3, conv="gcn"
)


def _build(cfg: ModelConfig, seed: int = 0) -> DeepGNN:
    torch.manual_seed(seed)
    return build_deep_gnn(cfg, GRAPH.num_features, 3)


def _train(model: nn.Module, x: Tensor, steps: int, seed: int = 1) -> tuple[list[float], list]:
    """Losses of ``steps`` Adam steps and the gradients of the last one."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x, GRAPH.edge_index), GRAPH.y)
        loss.backward()
        losses.append(loss.item())
        grads = [p.grad.clone() for p in model.parameters()]
        optimizer.step()
    return losses, grads


def test_checkpoint_and_plain_give_identical_losses_and_gradients() -> None:
    plain = _build(BASE)
    checkpointed = _build(replace(BASE, memory="checkpoint"))
    assert checkpointed.memory == "checkpoint"
    # same parameters, same names: checkpointing changes no module
    assert plain.state_dict().keys() == checkpointed.state_dict().keys()
    losses, grads = _train(plain, GRAPH.x, steps=3)
    losses_ck, grads_ck = _train(checkpointed, GRAPH.x, steps=3)
    assert losses == losses_ck
    for g, g_ck in zip(grads, grads_ck, strict=True):
        assert torch.equal(g, g_ck)
    for b, b_ck in zip(plain.buffers(), checkpointed.buffers(), strict=True):
        assert torch.equal(b, b_ck)  # BatchNorm statistics moved once per step in both


def test_reversible_model_is_built_of_grouped_couplings() -> None:
    model = _build(replace(BASE, memory="reversible", groups=2, conv="sage"))
    assert model.memory == "reversible" and model.num_layers == 6
    assert len(model.blocks) == 5
    for block in model.blocks:
        assert isinstance(block, ReversibleGroups) and block.groups == 2
        for fn in block.fns:
            assert isinstance(fn, GroupBlock)
            assert (fn.conv.in_channels, fn.conv.out_channels) == (4, 4)
            assert type(fn.skip).__name__ == "NoSkip"


def test_reversible_gcn_groups_are_single_modules() -> None:
    model = _build(replace(BASE, memory="reversible", groups=2, depth=5))
    fns = [fn for block in model.blocks for fn in block.fns]
    assert len(fns) == 8 and all(isinstance(fn, GCNGroup) for fn in fns)  # 4 blocks + head
    assert all(fn.weight.shape == (4, 4) and fn.has_norm for fn in fns)
    # one parameter per group: W (16), b, BN scale and shift (4 each)
    assert [name for name, _ in fns[0].named_parameters()] == ["flat"]
    assert fns[0].flat.numel() == 16 + 3 * 4
    # the stateless activation and dropout are one module each for the whole model
    assert len({id(fn.act) for fn in fns}) == 1 and len({id(fn.dropout) for fn in fns}) == 1
    # a GCN group holds its own parameters; no nested conv / norm modules
    assert all(len(list(fn.children())) == 2 for fn in fns)


def _group_block_like(fn: GCNGroup, norm: bool, act: str, p: float) -> GroupBlock:
    """The GroupBlock (PyG-based conv, torch norm) with ``fn``'s parameters and buffers."""
    conv = build_conv("gcn", fn.channels, fn.channels)
    block = GroupBlock(
        conv,
        build_norm("batch" if norm else "none", fn.channels),
        build_activation(act),
        build_skip("none", fn.channels, layer=1, history_widths=[fn.channels]),
        dropout=p,
    )
    p = fn.named_views(fn.flat.detach())
    with torch.no_grad():
        conv.lin.weight.copy_(p["weight"])
        conv.bias.copy_(p["bias"])
        if norm:
            block.norm.weight.copy_(p["norm_weight"])
            block.norm.bias.copy_(p["norm_bias"])
    return block


@pytest.mark.parametrize("norm", [True, False])
def test_gcn_group_equals_the_group_block_it_replaces(norm: bool) -> None:
    torch.manual_seed(0)
    p = 0.3
    fn = GCNGroup(4, norm=norm, act=build_activation("elu"), dropout=Dropout(p))
    with torch.no_grad():  # move every parameter off its initial value
        for t in fn.parameters():
            t.add_(0.1 * torch.randn_like(t))
    block = _group_block_like(fn, norm, "elu", p)
    x = torch.randn(GRAPH.num_nodes, 4, dtype=torch.float64)
    fn, block = fn.double(), block.double()
    for step in range(2):  # training mode: same dropout masks, same gradients, same statistics
        xs = [x.clone().requires_grad_() for _ in range(2)]
        torch.manual_seed(10 + step)
        out = fn(xs[0], GRAPH.edge_index)
        torch.manual_seed(10 + step)
        ref = block(xs[1], GRAPH.edge_index)
        torch.testing.assert_close(out, ref)
        (out * ref.detach()).sum().backward()
        (ref * ref.detach()).sum().backward()
        torch.testing.assert_close(xs[0].grad, xs[1].grad)
    grads = fn.named_views(fn.flat.grad)
    torch.testing.assert_close(grads["weight"], block.conv.lin.weight.grad)
    torch.testing.assert_close(grads["bias"], block.conv.bias.grad)
    if norm:
        torch.testing.assert_close(fn.running_mean, block.norm.running_mean)
        torch.testing.assert_close(fn.running_var, block.norm.running_var)
        assert int(fn.num_batches_tracked) == int(block.norm.num_batches_tracked) == 2
        torch.testing.assert_close(grads["norm_weight"], block.norm.weight.grad)
        torch.testing.assert_close(grads["norm_bias"], block.norm.bias.grad)
    fn.eval(), block.eval()
    with torch.no_grad():
        torch.testing.assert_close(fn(x, GRAPH.edge_index), block(x, GRAPH.edge_index))


def test_reversible_model_trains() -> None:
    model = _build(replace(BASE, memory="reversible", dropout=0.1))
    losses, _ = _train(model, GRAPH.x, steps=40)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0]


def test_reversible_matches_the_ordinarily_computed_model() -> None:
    cfg = replace(BASE, memory="reversible", depth=10)
    model = _build(cfg).double()
    reference = copy.deepcopy(model)
    x = GRAPH.x.double()

    torch.manual_seed(5)
    out = model(x, GRAPH.edge_index)
    F.cross_entropy(out, GRAPH.y).backward()
    # the same model computed with ordinary autograd: node_states runs every coupling plainly
    torch.manual_seed(5)
    states = reference.node_states(x, GRAPH.edge_index)
    out_ref = reference.head(reference.dropout(states[-1]), GRAPH.edge_index)
    F.cross_entropy(out_ref, GRAPH.y).backward()

    torch.testing.assert_close(out, out_ref, rtol=0, atol=0)
    for p, p_ref in zip(model.parameters(), reference.parameters(), strict=True):
        assert p.grad is not None and p_ref.grad is not None
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-9, atol=1e-11)
    for b, b_ref in zip(model.buffers(), reference.buffers(), strict=True):
        assert torch.equal(b, b_ref)


def test_reversible_node_states_and_eval_forward() -> None:
    model = _build(replace(BASE, memory="reversible")).eval()
    states = model.node_states(GRAPH.x, GRAPH.edge_index)
    assert len(states) == 6 and all(s.shape == (120, 8) for s in states)
    with torch.no_grad():
        out = model(GRAPH.x, GRAPH.edge_index)
    torch.testing.assert_close(out, model.head(states[-1], GRAPH.edge_index))
    # eval with grad enabled (a Jacobian diagnostic, say) takes the reversible path and agrees
    x = GRAPH.x.clone().requires_grad_()
    out_grad = model(x, GRAPH.edge_index)
    torch.testing.assert_close(out_grad.detach(), out, rtol=1e-5, atol=1e-6)
    out_grad.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_reversible_training_is_deterministic() -> None:
    cfg = replace(BASE, memory="reversible")
    first = _train(_build(cfg), GRAPH.x, steps=3)
    second = _train(_build(cfg), GRAPH.x, steps=3)
    assert first[0] == second[0]
    for g, h in zip(first[1], second[1], strict=True):
        assert torch.equal(g, h)


def test_plain_default_is_unchanged() -> None:
    model = _build(ModelConfig(depth=3, hidden=8))
    assert model.memory == "plain"
    assert all(type(b).__name__ == "GNNBlock" for b in model.blocks)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"encoder": "none"}, r"model\.memory .*'reversible' needs model\.encoder 'linear'"),
        ({"skip": "dense"}, r"model\.skip .*'dense' cannot be combined with model\.memory"),
        ({"skip": "jk"}, r"model\.skip .*'jk'"),
        ({"skip": "initial"}, r"model\.skip .*'initial'"),
        ({"skip": "res+"}, r"model\.skip .*'res\+'"),
        ({"hidden": 9, "groups": 2}, r"model\.hidden .*9 must be divisible by model\.groups"),
        ({"conv": "gcn2"}, r"model\.conv .*'gcn2' cannot be combined"),
    ],
)
def test_reversible_config_errors(changes: dict, match: str) -> None:
    cfg = replace(BASE, memory="reversible", **changes)
    with pytest.raises(ConfigError, match=match) as info:
        build_deep_gnn(cfg, GRAPH.num_features, 3)
    assert "\n" not in str(info.value)


def test_unknown_memory_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match="plain, checkpoint, reversible"):
        build_deep_gnn(replace(BASE, memory="swap"), GRAPH.num_features, 3)
    with pytest.raises(ValueError, match="memory must be one of"):
        DeepGNN([], nn.Linear(2, 2), head_is_conv=False, memory="swap")


@pytest.mark.parametrize(("skip", "alive"), [("res", 0), ("initial", 0), ("dense", 3)])
def test_forward_drops_states_no_block_reads_again(skip: str, alive: int) -> None:
    model = _build(replace(BASE, skip=skip, depth=6)).eval()
    outputs: list = []
    seen: list[int] = []

    def record(module: nn.Module, args: tuple, output: Tensor) -> None:
        outputs.append(weakref.ref(output))

    def count(module: nn.Module, args: tuple) -> None:
        # when the last block starts: which outputs of the blocks before its input live on
        seen.append(sum(ref() is not None for ref in outputs[:-1]))

    for block in model.blocks:
        block.register_forward_hook(record)
    model.blocks[-1].register_forward_pre_hook(count)
    with torch.no_grad():
        model(GRAPH.x, GRAPH.edge_index)
    assert seen == [alive]


def test_checkpoint_with_dense_skip_recomputes_with_the_history_it_saw() -> None:
    cfg = replace(BASE, skip="dense", depth=4)
    losses, grads = _train(_build(cfg), GRAPH.x, steps=2)
    losses_ck, grads_ck = _train(_build(replace(cfg, memory="checkpoint")), GRAPH.x, steps=2)
    assert losses == losses_ck
    for g, g_ck in zip(grads, grads_ck, strict=True):
        assert torch.equal(g, g_ck)
