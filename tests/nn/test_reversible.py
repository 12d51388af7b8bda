"""Tests of fathom.nn.reversible: exact gradients of checkpointed and reversible blocks."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from fathom.nn.convs import build_conv
from fathom.nn.reversible import (
    MEMORY_MODES,
    Checkpointed,
    ReversibleGroups,
    checkpoint_call,
    seed_group_rng,
)

# a 6-node ring plus a chord, both directions
EDGE_INDEX = torch.tensor(
    [[0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 3], [1, 2, 3, 4, 5, 0, 5, 0, 1, 2, 3, 4, 3, 0]]
)


class GroupFn(nn.Module):
    """``dropout(relu(bn(gcn(x))))``: a graph conv, a buffer-holding norm and dropout."""

    def __init__(self, channels: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv = build_conv("gcn", channels, channels)
        self.norm = nn.BatchNorm1d(channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.dropout(torch.relu(self.norm(self.conv(x, edge_index))))


def by_hand(fns: nn.ModuleList, x: Tensor, edge_index: Tensor) -> Tensor:
    """RevGNN's coupling written out with ordinary autograd (the reference), each function
    run from a seed drawn as a training block draws it."""
    xs = x.chunk(len(fns), dim=-1)
    y = xs[1]
    for t in xs[2:]:
        y = y + t
    ys = []
    for fn, x_i in zip(fns, xs, strict=True):
        seed_group_rng(x.device)
        y = x_i + fn(y, edge_index)
        ys.append(y)
    return torch.cat(ys, dim=-1)


def _grads(module: nn.Module) -> list[Tensor]:
    return [p.grad.clone() for p in module.parameters() if p.grad is not None]


@pytest.fixture(autouse=True)
def _double() -> object:
    # float64 makes reconstruction errors negligible, so comparisons can be tight
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_memory_modes_are_the_three_documented() -> None:
    assert MEMORY_MODES == ("plain", "checkpoint", "reversible")


@pytest.mark.parametrize(
    ("groups", "device"),
    [(2, "cpu"), (3, "cpu"), pytest.param(2, "cuda", marks=pytest.mark.gpu)],
)
def test_reversible_matches_the_coupling_computed_by_hand(groups: int, device: str) -> None:
    # on CUDA, dropout draws from the device's generator, which the block must replay too
    torch.manual_seed(0)
    rev = ReversibleGroups([GroupFn(4) for _ in range(groups)]).to(device)
    ref = copy.deepcopy(rev)
    x = torch.randn(6, 4 * groups, device=device)
    x_rev, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    weight = torch.randn(6, 4 * groups, device=device)
    edge_index = EDGE_INDEX.to(device)

    torch.manual_seed(1)
    out = rev(x_rev, edge_index)
    (out * weight).sum().backward()
    state_after_rev = torch.get_rng_state()
    torch.manual_seed(1)
    out_ref = by_hand(ref.fns, x_ref, edge_index)
    (out_ref * weight).sum().backward()

    # dropout drew the same masks in the backward recomputation, or the gradients would differ
    torch.testing.assert_close(out, out_ref, rtol=0, atol=0)
    assert x_rev.grad is not None and x_ref.grad is not None
    torch.testing.assert_close(x_rev.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
    for g, g_ref in zip(_grads(rev), _grads(ref), strict=True):
        torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-12)
    # the backward pass replays random states without consuming the global stream
    assert torch.equal(state_after_rev, torch.get_rng_state())
    # BatchNorm statistics moved once, by the forward pass, as in the reference
    for (name, b), b_ref in zip(rev.named_buffers(), ref.buffers(), strict=True):
        assert torch.equal(b, b_ref), name
    assert all(fn.norm.num_batches_tracked.item() == 1 for fn in rev.fns)


def test_dropout_masks_actually_differ_between_calls() -> None:
    # guards the test above: with dropout active, two calls do draw different masks
    torch.manual_seed(0)
    fn = GroupFn(4)
    x = torch.randn(6, 4)
    assert not torch.equal(fn(x, EDGE_INDEX), fn(x, EDGE_INDEX))


def test_stack_of_20_blocks_matches_and_releases_inner_activations() -> None:
    torch.manual_seed(0)
    encoder = nn.Linear(3, 8)
    stack = nn.ModuleList([ReversibleGroups([GroupFn(4, 0.2), GroupFn(4, 0.2)]) for _ in range(20)])
    encoder_ref, stack_ref = copy.deepcopy(encoder), copy.deepcopy(stack)
    x = torch.randn(6, 3)

    torch.manual_seed(3)
    # the first block's input comes from ReLU, which keeps it for its own backward pass: it
    # must not be released
    h = torch.relu(encoder(x))
    first_input = h
    outputs = []
    for block in stack:
        h = block(h, EDGE_INDEX)
        outputs.append(h)
    # every block output that fed another reversible block has given its storage back
    assert all(o.untyped_storage().nbytes() == 0 for o in outputs[:-1])
    assert first_input.untyped_storage().nbytes() == first_input.numel() * 8
    assert outputs[-1].untyped_storage().nbytes() == outputs[-1].numel() * 8
    h.square().sum().backward()

    torch.manual_seed(3)
    h_ref = torch.relu(encoder_ref(x))
    for block in stack_ref:
        h_ref = block.coupling(h_ref, EDGE_INDEX)
    h_ref.square().sum().backward()

    torch.testing.assert_close(outputs[-1], h_ref, rtol=0, atol=0)
    for g, g_ref in zip(
        _grads(encoder) + _grads(stack), _grads(encoder_ref) + _grads(stack_ref), strict=True
    ):
        torch.testing.assert_close(g, g_ref, rtol=1e-8, atol=1e-10)


def test_float32_stack_matches_within_float_tolerance() -> None:
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    stack = nn.ModuleList([ReversibleGroups([GroupFn(4, 0.0), GroupFn(4, 0.0)]) for _ in range(8)])
    ref = copy.deepcopy(stack)
    x = torch.randn(6, 8, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    h, h_ref = x, x_ref
    for block, block_ref in zip(stack, ref, strict=True):
        h, h_ref = block(h, EDGE_INDEX), block_ref.coupling(h_ref, EDGE_INDEX)
    h.square().sum().backward()
    h_ref.square().sum().backward()
    assert x.grad is not None and x_ref.grad is not None
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-3, atol=1e-3)
    for g, g_ref in zip(_grads(stack), _grads(ref), strict=True):
        torch.testing.assert_close(g, g_ref, rtol=1e-3, atol=1e-3)


def test_inverse_reconstructs_the_input() -> None:
    torch.manual_seed(0)
    rev = ReversibleGroups([GroupFn(2), GroupFn(2), GroupFn(2)]).eval()
    x = torch.randn(6, 6)
    with torch.no_grad():
        torch.testing.assert_close(rev.inverse(rev(x, EDGE_INDEX), EDGE_INDEX), x)


def test_no_grad_and_frozen_parameters_compute_ordinarily() -> None:
    torch.manual_seed(0)
    rev = ReversibleGroups([GroupFn(2, 0.0), GroupFn(2, 0.0)])
    x = torch.randn(6, 4, requires_grad=True)
    h = rev(x, EDGE_INDEX)  # a coupling's output: another coupling with grad would release it
    with torch.no_grad():
        out = rev(h, EDGE_INDEX)
    assert h.untyped_storage().nbytes() == h.numel() * 8  # nothing released without backward
    torch.testing.assert_close(out, rev.coupling(h, EDGE_INDEX).detach())
    rev.requires_grad_(False)
    frozen = rev(h.detach(), EDGE_INDEX)
    assert frozen.grad_fn is None
    torch.testing.assert_close(frozen, out)


def test_two_backward_passes_through_a_chain() -> None:
    torch.manual_seed(0)
    stack = nn.ModuleList([ReversibleGroups([GroupFn(2, 0.0), GroupFn(2, 0.0)]) for _ in range(3)])
    x = torch.randn(6, 4, requires_grad=True)
    h = x
    for block in stack:
        h = block(h, EDGE_INDEX)
    h.sum().backward(retain_graph=True)
    assert x.grad is not None
    first = x.grad.clone()
    h.sum().backward()
    torch.testing.assert_close(x.grad, 2 * first)


def test_reversible_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="at least 2 groups"):
        ReversibleGroups([GroupFn(2)])
    rev = ReversibleGroups([GroupFn(2), GroupFn(2)])
    with pytest.raises(ValueError, match="5 channels do not split into 2 groups"):
        rev(torch.randn(6, 5, requires_grad=True), EDGE_INDEX)
    with pytest.raises(ValueError, match="requires grad"):
        rev(torch.randn(6, 4), torch.ones(3, requires_grad=True))


# --------------------------------------------------------------------------- checkpoint


def test_checkpointed_gives_identical_gradients_and_statistics() -> None:
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5))
    wrapped = Checkpointed(copy.deepcopy(plain))
    x = torch.randn(6, 4)

    torch.manual_seed(7)
    plain(x).square().sum().backward()
    torch.manual_seed(7)
    wrapped(x).square().sum().backward()

    for g, g_ref in zip(_grads(wrapped), _grads(plain), strict=True):
        torch.testing.assert_close(g, g_ref, rtol=0, atol=0)
    # recomputation in the backward pass left the running statistics alone
    for b, b_ref in zip(wrapped.buffers(), plain.buffers(), strict=True):
        assert torch.equal(b, b_ref)
    assert wrapped.module[1].num_batches_tracked.item() == 1


def test_checkpointing_keeps_only_the_inputs() -> None:
    torch.manual_seed(0)
    block = nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.Tanh()) for _ in range(4)])
    x = torch.randn(6, 8, requires_grad=True)

    def saved_bytes(run: object) -> int:
        total = 0

        def pack(t: Tensor) -> Tensor:
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            run()  # type: ignore[operator]
        return total

    plain = saved_bytes(lambda: block(x))
    checkpointed = saved_bytes(lambda: checkpoint_call(block, x))
    assert checkpointed < plain / 4


def test_checkpoint_call_is_a_plain_call_in_eval_and_under_no_grad() -> None:
    block = nn.Linear(3, 3)
    x = torch.randn(2, 3)
    with torch.no_grad():
        assert torch.equal(checkpoint_call(block, x), block(x))
    block.eval()
    assert checkpoint_call(block, x).grad_fn is not None  # a plain call, differentiable


def test_an_output_consumed_by_one_reversible_block_cannot_feed_another() -> None:
    torch.manual_seed(0)
    a, b, c = (ReversibleGroups([GroupFn(2, 0.0), GroupFn(2, 0.0)]) for _ in range(3))
    h = a(torch.randn(6, 4, requires_grad=True), EDGE_INDEX)
    b(h, EDGE_INDEX)
    with pytest.raises(RuntimeError, match="released by another reversible block"):
        c(h, EDGE_INDEX)
