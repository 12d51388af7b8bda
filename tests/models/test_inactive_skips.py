"""A skip that cannot act (width change) is reported, never silent; projection is opt-in."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from fathom.config import ModelConfig
from fathom.models.build import build_deep_gnn
from fathom.models.deep_gnn import DeepGNN
from fathom.nn.block import GNNBlock
from fathom.nn.convs import build_conv
from fathom.nn.skips import InactiveSkipWarning, InitialResidual, Residual, build_skip

IN, HIDDEN, OUT = 20, 8, 3


def _build(**kwargs: object) -> tuple[DeepGNN, list[str]]:
    """The model of ``ModelConfig(conv="gcn", hidden=8, **kwargs)`` on 20 -> 3, and the
    messages of the InactiveSkipWarnings its build raised."""
    cfg = ModelConfig(**{"conv": "gcn", "hidden": HIDDEN, **kwargs})  # type: ignore[arg-type]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build_deep_gnn(cfg, IN, OUT)
    return model, [str(w.message) for w in caught if issubclass(w.category, InactiveSkipWarning)]


def test_depth_2_resgcn_warns_and_lists_its_layers() -> None:
    model, messages = _build(depth=2, skip="res")
    assert model.inactive_skips == [1]
    assert messages == [
        f"res skip inactive at layer 1 (width {IN}→{HIDDEN}) and the conv head (layer 2, "
        f"{HIDDEN}→{OUT}) has none: a depth-2 ResGCN is a plain GCN; use depth ≥ 3, "
        "model.encoder linear or model.skip_project (--skip-project)"
    ]
    assert model.skip_note == messages[0]
    status = model.skip_status()
    assert [(r["layer"], r["skip"], r["active"]) for r in status] == [
        (1, "res", False),
        (2, None, False),
    ]
    assert (status[0]["in_width"], status[0]["out_width"]) == (IN, HIDDEN)
    assert (status[1]["in_width"], status[1]["out_width"]) == (HIDDEN, OUT)


@pytest.mark.parametrize("depth", [3, 4, 8])
@pytest.mark.parametrize("skip", ["res", "res+"])
def test_deeper_residual_models_do_not_warn(depth: int, skip: str) -> None:
    model, messages = _build(depth=depth, skip=skip)
    assert messages == []
    assert model.inactive_skips == [1]  # still reported: the first layer changes width
    active = [r["active"] for r in model.skip_status()]
    assert active == [False] + [True] * (depth - 2) + [False]


def test_depth_2_with_a_linear_head_has_an_active_residual() -> None:
    model, messages = _build(depth=2, skip="res", head="linear")
    assert messages == [] and model.inactive_skips == [1]


def test_pre_activation_and_other_convs_say_so_without_naming_resgcn() -> None:
    _, messages = _build(depth=2, skip="res+", conv="sage")
    assert len(messages) == 1
    assert messages[0].startswith(f"res+ skip inactive at layer 1 (width {IN}→{HIDDEN})")
    assert "ResGCN" not in messages[0] and "use depth ≥ 3" in messages[0]


def test_initial_residual_without_encoder_is_inactive_at_every_depth() -> None:
    model, messages = _build(depth=4, skip="initial")
    assert model.inactive_skips == [1, 2, 3]
    assert len(messages) == 1 and "layers 1, 2 and 3" in messages[0]
    assert "model.encoder linear" in messages[0]
    model, messages = _build(depth=4, skip="initial", encoder="linear")
    assert messages == [] and model.inactive_skips == []


@pytest.mark.parametrize("skip", ["none", "dense", "jk"])
def test_skips_without_a_width_condition_never_warn(skip: str) -> None:
    model, messages = _build(depth=2, skip=skip)
    assert messages == [] and model.inactive_skips == []


def test_projection_is_opt_in_and_makes_the_residual_act() -> None:
    torch.manual_seed(0)
    default = build_skip("res", HIDDEN, layer=1, history_widths=[IN])
    assert not default.active and not default.projected
    assert list(default.parameters()) == []  # the default adds nothing (goldens)
    proj = build_skip("res", HIDDEN, layer=1, history_widths=[IN], project=True)
    assert isinstance(proj, Residual) and proj.active and proj.projected
    assert proj.proj is not None and proj.proj.bias is None
    h, x = torch.randn(5, HIDDEN), torch.randn(5, IN)
    torch.testing.assert_close(proj(h, [x]), h + x @ proj.proj.weight.t())
    # equal widths: no projection even when asked for
    same = build_skip("res", HIDDEN, layer=2, history_widths=[IN, HIDDEN], project=True)
    assert same.active and not same.projected and list(same.parameters()) == []

    init = build_skip("initial", HIDDEN, layer=2, history_widths=[IN, HIDDEN], project=True)
    assert isinstance(init, InitialResidual) and init.active and init.projected
    assert init.proj is not None
    torch.testing.assert_close(
        init(h, [x, h]), 0.9 * h + 0.1 * (x @ init.proj.weight.t()), rtol=1e-6, atol=1e-6
    )


def test_a_projected_depth_2_resgcn_is_not_a_plain_gcn_and_does_not_warn() -> None:
    torch.manual_seed(0)
    conv = build_conv("gcn", IN, HIDDEN)
    skip = build_skip("res", HIDDEN, layer=1, history_widths=[IN], project=True)
    blocks = [GNNBlock(conv, nn.Identity(), nn.ReLU(), skip)]
    head = build_conv("gcn", HIDDEN, OUT, final=True, layer=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InactiveSkipWarning)
        model = DeepGNN(blocks, head)
    assert model.inactive_skips == [] and model.skip_note is None
    assert model.skip_status()[0]["projected"]
    plain = DeepGNN(
        [
            GNNBlock(
                conv,
                nn.Identity(),
                nn.ReLU(),
                build_skip("none", HIDDEN, layer=1, history_widths=[IN]),
            )
        ],
        head,
    )
    x = torch.randn(6, IN)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])
    assert not torch.allclose(model(x, edge_index), plain(x, edge_index))
    model.reset_parameters()  # the projection is reset with the block
