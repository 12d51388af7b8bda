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
from fathom.models.deep_gnn import DeepGNN, GroupBlock
from fathom.nn.reversible import ReversibleGroups

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
    model = _build(replace(BASE, memory="reversible", groups=2))
    assert model.memory == "reversible" and model.num_layers == 6
    assert len(model.blocks) == 5
    for block in model.blocks:
        assert isinstance(block, ReversibleGroups) and block.groups == 2
        for fn in block.fns:
            assert isinstance(fn, GroupBlock)
            assert (fn.conv.in_channels, fn.conv.out_channels) == (4, 4)
            assert type(fn.skip).__name__ == "NoSkip"


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
