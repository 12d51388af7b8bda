"""Tests of fathom.nn.skips."""

from __future__ import annotations

import pytest
import torch

from fathom.errors import ConfigError
from fathom.nn.skips import (
    SKIPS,
    DenseSkip,
    InitialResidual,
    JumpingKnowledgeSkip,
    NoSkip,
    PreActResidual,
    Residual,
    Skip,
    build_skip,
)

H = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
A = torch.tensor([[10.0, 20.0], [30.0, 40.0]])
B = torch.tensor([[100.0, 200.0], [300.0, 400.0]])
WIDE = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # raw features of another width

CLASSES = {
    "dense": DenseSkip,
    "initial": InitialResidual,
    "jk": JumpingKnowledgeSkip,
    "none": NoSkip,
    "res": Residual,
    "res+": PreActResidual,
}


def test_names_and_classes() -> None:
    assert SKIPS.names() == ["dense", "initial", "jk", "none", "res", "res+"]
    for name, cls in CLASSES.items():
        skip = build_skip(name.upper(), 2, layer=2, history_widths=[2, 2], alpha=0.5, extra=1)
        assert type(skip) is cls
        assert isinstance(skip, Skip)


def test_wiring_attributes() -> None:
    pre = {name for name, cls in CLASSES.items() if cls.pre_activation}
    jumping = {name for name, cls in CLASSES.items() if cls.jumping}
    assert pre == {"res+"}
    assert jumping == {"jk"}


def test_unknown() -> None:
    msg = "unknown skip 'highway'; choose one of: dense, initial, jk, none, res, res\\+"
    with pytest.raises(ConfigError, match=msg):
        build_skip("highway", 2, layer=1, history_widths=[2])


def test_history_widths_must_match_layer() -> None:
    with pytest.raises(ValueError, match="block 2 needs 2 history widths"):
        build_skip("res", 2, layer=2, history_widths=[2])
    with pytest.raises(ValueError):
        build_skip("none", 2, layer=0, history_widths=[])


def test_none_returns_h() -> None:
    skip = build_skip("none", 2, layer=2, history_widths=[2, 2])
    assert skip(H, [A, B]) is H


def test_residual_adds_last_history_entry() -> None:
    skip = build_skip("res", 2, layer=1, history_widths=[2])
    assert skip.active
    assert torch.equal(skip(H, [A]), H + A)
    skip = build_skip("res", 2, layer=2, history_widths=[2, 2])
    assert torch.equal(skip(H, [A, B]), torch.tensor([[101.0, 202.0], [303.0, 404.0]]))


def test_residual_inactive_when_widths_differ() -> None:
    # first block without an encoder: x_0 has the raw feature width 3, the block outputs 2
    skip = build_skip("res", 2, layer=1, history_widths=[3])
    assert not skip.active
    assert skip(H, [WIDE]) is H
    # the second block's x_1 has the hidden width again, so its residual applies
    assert build_skip("res", 2, layer=2, history_widths=[3, 2]).active


def test_residual_gradient_flows_to_both() -> None:
    h = H.clone().requires_grad_()
    prev = A.clone().requires_grad_()
    build_skip("res", 2, layer=1, history_widths=[2])(h, [prev]).sum().backward()
    assert torch.equal(h.grad, torch.ones_like(H))
    assert torch.equal(prev.grad, torch.ones_like(A))


def test_res_plus_is_a_pre_activation_residual() -> None:
    skip = build_skip("res+", 2, layer=2, history_widths=[2, 2])
    assert skip.pre_activation is True and skip.jumping is False
    assert torch.equal(skip(H, [A, B]), H + B)
    inactive = build_skip("res+", 2, layer=1, history_widths=[3])
    assert not inactive.active and inactive(H, [WIDE]) is H
    assert Residual.pre_activation is False


def test_dense_is_a_linear_map_of_the_concatenation() -> None:
    skip = build_skip("dense", 2, layer=2, history_widths=[3, 2])
    assert skip.active
    assert skip.lin.in_features == 3 + 2 + 2 and skip.lin.out_features == 2
    with torch.no_grad():
        skip.lin.weight.copy_(
            torch.tensor(
                [
                    [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0],
                    [0.0, 2.0, 0.0, 0.0, 0.5, 0.0, -1.0],
                ]
            )
        )
        skip.lin.bias.copy_(torch.tensor([0.5, -0.5]))
    out = skip(H, [WIDE, A])
    # concatenation rows: [1,0,0, 10,20, 1,2] and [0,1,0, 30,40, 3,4]
    expected = torch.tensor(
        [
            [1.0 + 10.0 + 1.0 + 0.5, 0.0 + 10.0 - 2.0 - 0.5],
            [0.0 + 30.0 + 3.0 + 0.5, 2.0 + 20.0 - 4.0 - 0.5],
        ]
    )
    assert torch.equal(out, expected)


def test_dense_reset_parameters() -> None:
    skip = build_skip("dense", 2, layer=1, history_widths=[2])
    with torch.no_grad():
        skip.lin.weight.zero_()
    skip.reset_parameters()
    assert skip.lin.weight.abs().sum() > 0


def test_initial_residual_mixes_in_x0() -> None:
    skip = build_skip("initial", 2, layer=2, history_widths=[2, 2], alpha=0.25)
    assert skip.active and skip.alpha == 0.25
    out = skip(H, [A, B])
    assert torch.equal(out, 0.75 * H + 0.25 * A)
    assert torch.equal(out, torch.tensor([[3.25, 6.5], [9.75, 13.0]]))
    assert build_skip("initial", 2, layer=1, history_widths=[2]).alpha == 0.1  # default


def test_initial_residual_inactive_when_x0_width_differs() -> None:
    skip = build_skip("initial", 2, layer=3, history_widths=[3, 2, 2], alpha=0.5)
    assert not skip.active
    assert skip(H, [WIDE, A, B]) is H


def test_initial_residual_rejects_alpha_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match="alpha"):
        build_skip("initial", 2, layer=1, history_widths=[2], alpha=1.5)


def test_jk_returns_h_and_asks_the_model_to_jump() -> None:
    skip = build_skip("jk", 2, layer=2, history_widths=[2, 2])
    assert skip.jumping is True and skip.pre_activation is False
    assert skip(H, [A, B]) is H


def test_residual_distance_spans_several_blocks() -> None:
    # x_3 = h + x_1: the shortcut of a residual block of two layers (DropEdge's resgcn)
    skip = build_skip("res", 2, layer=3, history_widths=[3, 2, 2], distance=2)
    assert isinstance(skip, Residual) and skip.active and skip.distance == 2
    assert skip.source_width == 2
    assert torch.equal(skip(H, [WIDE, A, B]), H + A)
    assert "distance=2" in repr(skip)
    # its source is the raw input here: a width mismatch, inactive unless projected
    first = build_skip("res", 2, layer=2, history_widths=[3, 2], distance=2)
    assert not first.active and first.source_width == 3
    assert torch.equal(first(H, [WIDE, A]), H)
    projected = build_skip("res", 2, layer=2, history_widths=[3, 2], distance=2, project=True)
    assert projected.active and projected.proj is not None
    assert torch.allclose(projected(H, [WIDE, A]), H + projected.proj(WIDE))
    # distance 1 is the ordinary residual; a distance beyond the history is refused
    one = build_skip("res+", 2, layer=2, history_widths=[2, 2], distance=1)
    assert torch.equal(one(H, [A, B]), H + B) and "distance" not in repr(one)
    for bad in (0, 3):
        with pytest.raises(ValueError, match="distance"):
            build_skip("res", 2, layer=2, history_widths=[2, 2], distance=bad)
    # skips without a shortcut of their own ignore the option
    assert torch.equal(
        build_skip("none", 2, layer=2, history_widths=[2, 2], distance=2)(H, [A, B]), H
    )
