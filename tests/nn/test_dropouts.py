"""Tests of fathom.nn.dropouts."""

from __future__ import annotations

import pytest
import torch

from fathom.nn.dropouts import Dropout, dropout_mask


def test_eval_mode_is_identity() -> None:
    drop = Dropout(0.5).eval()
    x = torch.randn(20, 7)
    assert drop(x) is x


def test_p_zero_is_identity_in_training() -> None:
    drop = Dropout(0.0)
    assert drop.training
    x = torch.randn(20, 7)
    assert drop(x) is x


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_kept_fraction_and_scale(p: float) -> None:
    torch.manual_seed(0)
    x = torch.ones(1000, 2000)
    out = Dropout(p)(x)
    kept = out != 0
    frac = kept.float().mean().item()
    # 2M Bernoulli draws: std of the fraction is <= 0.00036; allow > 5 sigma.
    assert abs(frac - (1 - p)) < 0.002
    scale = torch.tensor(1.0 / (1.0 - p), dtype=torch.float32)
    assert torch.equal(out[kept], scale.expand(int(kept.sum())))


def test_scale_applies_to_values() -> None:
    torch.manual_seed(1)
    x = torch.randn(64, 33)
    out = Dropout(0.25)(x)
    kept = out != 0
    assert torch.equal(out[kept], x[kept] * torch.tensor(1.0 / 0.75))
    assert out.shape == x.shape and out.dtype == x.dtype


def test_odd_number_of_entries_and_dtype() -> None:
    torch.manual_seed(0)
    x = torch.ones(3, 5, dtype=torch.float64)  # 15 entries, an odd count
    out = Dropout(0.5)(x)
    assert out.dtype == torch.float64 and out.shape == (3, 5)
    assert set(out.unique().tolist()) <= {0.0, 2.0}


def test_deterministic_under_manual_seed() -> None:
    x = torch.randn(50, 40)
    drop = Dropout(0.5)
    torch.manual_seed(123)
    a = drop(x)
    torch.manual_seed(123)
    b = drop(x)
    c = drop(x)
    assert torch.equal(a, b)
    assert not torch.equal(b, c)


def test_columns_and_rows_independent() -> None:
    # The mask must not repeat across rows (e.g. from reusing random words).
    torch.manual_seed(0)
    out = Dropout(0.5)(torch.ones(200, 64))
    rows = {tuple(r.tolist()) for r in (out != 0)}
    assert len(rows) == 200


def test_gradient_is_the_mask() -> None:
    torch.manual_seed(0)
    x = torch.ones(30, 10, requires_grad=True)
    out = Dropout(0.4)(x)
    out.sum().backward()
    # For x = 1, out is exactly the mask (0 or 1 / (1 - p)).
    assert torch.equal(x.grad, out.detach())
    assert x.grad.unique().tolist() == [0.0, torch.tensor(1 / 0.6).item()]


def test_dropout_mask_values() -> None:
    torch.manual_seed(0)
    mask = dropout_mask(torch.Size([100, 100]), 0.75)
    assert mask.shape == (100, 100) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 4.0}
    assert abs((mask != 0).float().mean().item() - 0.25) < 0.02


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_invalid_p(p: float) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(p)


def test_extra_repr() -> None:
    assert repr(Dropout(0.3)) == "Dropout(p=0.3)"


def test_backward_keeps_only_a_boolean_mask() -> None:
    """What autograd saves for the backward pass is 1 byte per entry, not a float mask."""
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    x = torch.randn(64, 32, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = Dropout(0.5).train()(x)
    assert [t.dtype for t in saved] == [torch.bool]
    y.sum().backward()
    assert torch.equal(x.grad != 0, y != 0)


def test_masks_larger_than_one_chunk_are_drawn_in_full() -> None:
    from fathom.nn import dropouts

    n = dropouts._CHUNK * 2 + 123  # a partial last chunk
    y = Dropout(0.25).train()(torch.ones(n))
    assert abs((y == 0).float().mean().item() - 0.25) < 0.01
    # every chunk got its own draws (no repeated block)
    c = dropouts._CHUNK
    assert not torch.equal(y[:c], y[c : 2 * c])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_mask_application_has_masked_fills_bits_for_every_value(dtype: torch.dtype) -> None:
    from fathom.nn.dropouts import _MaskedScale

    special = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 0.0, -1.5, 3.0])
    x = torch.cat([special, torch.randn(200)]).to(dtype).repeat(2)
    drop = torch.zeros_like(x, dtype=torch.bool)
    drop[x.numel() // 2 :] = True  # the same values once kept, once dropped
    drop[::3] = ~drop[::3]
    scale = 1.0 / (1.0 - 0.3)
    x.requires_grad_(True)
    out = _MaskedScale.apply(x, ~drop, scale)
    expected = x.detach().masked_fill(drop, 0.0).mul_(scale)
    bits = {2: torch.int16, 4: torch.int32, 8: torch.int64}[x.element_size()]
    assert torch.equal(out.detach().view(bits), expected.view(bits))
    grad = torch.cat([special, torch.randn(200)]).to(dtype).repeat(2)
    (x_grad,) = torch.autograd.grad(out, x, grad)
    assert torch.equal(x_grad.view(bits), grad.masked_fill(drop, 0.0).mul_(scale).view(bits))
