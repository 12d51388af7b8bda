"""Tests of fathom.train.optim: Adam parameter groups and conv-specific weight decay."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.nn.conv import MessagePassing

from fathom.config import ModelConfig, TrainConfig
from fathom.models.build import build_model
from fathom.train.optim import build_optimizer, parameter_groups

IN, OUT = 5, 3


def _ids(params) -> set[int]:
    return {id(p) for p in params}


def _model(**kw) -> nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(depth=3, hidden=8, norm="batch", encoder="linear", head="linear", **kw)
    return build_model(cfg, IN, OUT)


def _conv_and_dense(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    conv = [p for b in model.blocks for p in b.conv.parameters()]
    dense = [
        *model.encoder.parameters(),
        *(p for b in model.blocks for p in b.norm.parameters()),
        *model.head.parameters(),
    ]
    return conv, dense


def test_single_group_when_conv_weight_decay_is_none() -> None:
    model = _model()
    groups = parameter_groups(model, 5e-4, None)
    assert len(groups) == 1
    assert groups[0]["weight_decay"] == 5e-4
    assert [id(p) for p in groups[0]["params"]] == [id(p) for p in model.parameters()]


def test_conv_params_split_from_linear_and_norm_params() -> None:
    model = _model()
    conv, dense = _conv_and_dense(model)
    # GCNConv: lin.weight and bias per block; dense: encoder, 3 BatchNorms, head (2 each)
    assert (len(conv), len(dense)) == (6, 10)
    groups = parameter_groups(model, 5e-4, 0.01)
    assert [g["weight_decay"] for g in groups] == [0.01, 5e-4]
    assert _ids(groups[0]["params"]) == _ids(conv)
    assert _ids(groups[1]["params"]) == _ids(dense)
    assert len(groups[0]["params"]) == 6 and len(groups[1]["params"]) == 10
    # every trainable parameter is in exactly one group
    all_ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(all_ids) == sorted(id(p) for p in model.parameters())


def test_conv_head_counts_as_a_conv() -> None:
    model = build_model(ModelConfig(depth=3, hidden=8), IN, OUT)
    groups = parameter_groups(model, 5e-4, 0.01)
    # no encoder, no norm, conv head: every parameter is in a MessagePassing module
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.01
    assert _ids(groups[0]["params"]) == _ids(model.parameters())


def test_submodules_of_a_message_passing_layer_are_conv_params() -> None:
    # GIN's MLP is made of plain nn.Linear layers inside the GINConv; the dense skip's
    # projection is a Linear outside any conv.
    model = _model(conv="gin", skip="dense")
    groups = parameter_groups(model, 5e-4, 0.01)
    conv_ids = _ids(groups[0]["params"])
    for block in model.blocks:
        assert isinstance(block.conv, MessagePassing)
        assert _ids(block.conv.nn.parameters()) <= conv_ids
        assert id(block.conv.eps) in conv_ids  # the learnt epsilon
        assert _ids(block.skip.parameters()).isdisjoint(conv_ids)
    assert _ids(model.encoder.parameters()).isdisjoint(conv_ids)


def test_frozen_params_are_left_out() -> None:
    model = _model()
    model.encoder.requires_grad_(False)
    model.blocks[0].requires_grad_(False)
    frozen = _ids(model.encoder.parameters()) | _ids(model.blocks[0].parameters())
    for cwd in (None, 0.01):
        groups = parameter_groups(model, 5e-4, cwd)
        seen = [id(p) for g in groups for p in g["params"]]
        assert frozen.isdisjoint(seen)
        assert sorted(seen) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    groups = parameter_groups(model, 5e-4, 0.01)
    assert len(groups[0]["params"]) == 4  # blocks 2 and 3's convs
    assert len(groups[1]["params"]) == 6  # blocks 2 and 3's norms, head


def test_empty_groups_are_dropped() -> None:
    model = _model()
    for block in model.blocks:
        block.conv.requires_grad_(False)
    groups = parameter_groups(model, 5e-4, 0.01)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 5e-4
    model = build_model(ModelConfig(conv="mlp", depth=2, hidden=8), IN, OUT)  # no MessagePassing
    groups = parameter_groups(model, 5e-4, 0.01)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 5e-4


def test_shared_conv_parameters_appear_once() -> None:
    model = _model(share_weights=True)
    groups = parameter_groups(model, 5e-4, 0.01)
    assert len(groups[0]["params"]) == 2  # one shared GCNConv: lin.weight and bias
    all_ids = [id(p) for g in groups for p in g["params"]]
    assert len(all_ids) == len(set(all_ids))


@pytest.mark.parametrize("conv_weight_decay", [None, 0.0, 0.01])
def test_build_optimizer_uses_the_groups(conv_weight_decay: float | None) -> None:
    model = _model()
    cfg = TrainConfig(lr=0.05, weight_decay=5e-4, conv_weight_decay=conv_weight_decay)
    optimizer = build_optimizer(model, cfg)
    assert isinstance(optimizer, torch.optim.Adam)
    decays = [g["weight_decay"] for g in optimizer.param_groups]
    assert decays == ([5e-4] if conv_weight_decay is None else [conv_weight_decay, 5e-4])
    assert all(g["lr"] == 0.05 for g in optimizer.param_groups)
