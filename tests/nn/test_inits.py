"""model.init: parameter initialisations applied after a model is built (fathom.nn.inits)."""

from __future__ import annotations

import math

import pytest
import torch

from fathom.config import ExperimentConfig, ModelConfig, apply_overrides
from fathom.errors import ConfigError
from fathom.models.build import build_model
from fathom.nn.inits import INITS, apply_init, gcn_layers


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_default_redraws_nothing() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(depth=4, hidden=16), 7, 3)
    before = _params(model)
    state = torch.random.get_rng_state()
    assert apply_init(model, "default") == 0
    assert torch.equal(state, torch.random.get_rng_state())  # draws no random numbers
    assert all(torch.equal(before[k], v) for k, v in _params(model).items())


@pytest.mark.parametrize("root_weight", [False, True])
def test_uniform_out_draws_every_gcn_parameter_within_its_bound(root_weight: bool) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(depth=4, hidden=64, norm="batch", root_weight=root_weight)
    model = build_model(cfg, 300, 5)
    layers = gcn_layers(model)
    assert len(layers) == 4 and apply_init(model, "uniform-out") == 4
    for layer in layers:
        bound = 1.0 / math.sqrt(layer.out_channels)
        params = list(layer.parameters())
        assert len(params) == (3 if root_weight else 2)  # weight (+ self weight) and bias
        for p in (p.detach() for p in params):
            assert p.abs().max() <= bound
            # spread over the interval (a uniform's std is bound / sqrt(3)), biases included
            assert p.std() == pytest.approx(bound / math.sqrt(3), rel=0.35)
    # batch norm is the norm's own
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert norms and all(torch.equal(n.weight, torch.ones_like(n.weight)) for n in norms)


def test_the_config_option_reinitialises_the_built_model_reproducibly() -> None:
    cfg = ModelConfig(depth=3, hidden=32, init="uniform-out")
    torch.manual_seed(1)
    a = build_model(cfg, 10, 4)
    torch.manual_seed(1)
    b = build_model(cfg, 10, 4)
    torch.manual_seed(1)
    glorot = build_model(ModelConfig(depth=3, hidden=32), 10, 4)
    pa, pb, pg = _params(a), _params(b), _params(glorot)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    # the zero biases of Glorot's init are drawn too
    bias = next(k for k in pg if k.endswith("bias"))
    assert torch.equal(pg[bias], torch.zeros_like(pg[bias])) and pa[bias].abs().sum() > 0
    assert pa[bias].abs().max() <= 1 / math.sqrt(32)


def test_incep_layers_are_reinitialised() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="incep", depth=4, hidden=8, init="uniform-out"), 6, 3)
    layers = gcn_layers(model)
    assert layers and all(
        p.abs().max() <= 1 / math.sqrt(layer.out_channels)
        for layer in layers
        for p in layer.parameters()
    )


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"model.init": "kaiming"}, "choose one of: default, uniform-out"),
        ({"model.conv": "gat", "model.init": "uniform-out"}, "applies to GCN and GCNII layers"),
        ({"model.arch": "sgc", "model.init": "uniform-out"}, "applies to GCN and GCNII layers"),
    ],
)
def test_init_refused_where_it_does_not_apply(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(ExperimentConfig(), overrides)
    assert fragment in str(info.value) and "model.init (--init)" in str(info.value)


def test_registry_names() -> None:
    assert INITS.names() == ["default", "uniform-out"]


def test_uniform_out_reaches_gcnii_layers_and_leaves_the_linear_ones() -> None:
    cfg = ModelConfig(conv="gcn2-star-code", depth=2, hidden=64, encoder="linear", head="linear")
    torch.manual_seed(0)
    plain = build_model(cfg, 10, 3)
    torch.manual_seed(0)
    model = build_model(ModelConfig(**{**cfg.__dict__, "init": "uniform-out"}), 10, 3)
    layers = gcn_layers(model)
    assert len(layers) == 2
    for layer in layers:
        w = torch.cat([layer.weight1.detach(), layer.weight2.detach()])
        assert w.abs().max() <= 1 / 8 and w.std() == pytest.approx(1 / 8 / math.sqrt(3), rel=0.2)
    # the linear encoder is drawn before the convs, so it is the same as without model.init
    assert torch.equal(model.encoder.weight, plain.encoder.weight)
