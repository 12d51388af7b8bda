"""BlockedSoftmaxAggregation against PyG's SoftmaxAggregation: the same forward bits, the
same gradients up to float rounding, on sorted and unsorted messages and across blocks."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch_geometric.nn.aggr import SoftmaxAggregation

import fathom.nn.aggregations as aggregations
from fathom.nn.aggregations import BlockedSoftmaxAggregation, blocked_softmax_aggregate


def _pair(channels: int, t: float) -> tuple[SoftmaxAggregation, BlockedSoftmaxAggregation]:
    ref = SoftmaxAggregation(learn=True, channels=channels)
    new = BlockedSoftmaxAggregation(learn=True, channels=channels)
    with torch.no_grad():
        ref.t.copy_(torch.linspace(t, t + 0.5, channels))
        new.t.copy_(ref.t)
    return ref, new


@pytest.mark.parametrize(
    ("num_nodes", "num_edges", "width", "channels", "sort", "block"),
    [
        (50, 400, 8, 1, True, 1 << 17),
        (300, 3000, 16, 1, False, 1 << 17),
        (300, 3000, 16, 1, True, 64),  # about 4 edges a block: many blocks, some one node
        (120, 900, 8, 8, False, 256),  # a t per channel
        (40, 0, 4, 1, True, 1 << 17),  # no edges
    ],
)
def test_matches_pyg(
    monkeypatch: pytest.MonkeyPatch,
    num_nodes: int,
    num_edges: int,
    width: int,
    channels: int,
    sort: bool,
    block: int,
) -> None:
    monkeypatch.setattr(aggregations, "BLOCK_ENTRIES", block)
    gen = torch.Generator().manual_seed(num_edges + channels)
    index = torch.randint(0, num_nodes, (num_edges,), generator=gen)
    if sort:
        index = index.sort().values
    # GENConv's messages: relu(x_j) + eps
    x = torch.randn(num_edges, width, generator=gen).relu() + 1e-7
    ref, new = _pair(channels, 1.7)
    x_ref, x_new = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref = ref(x_ref, index, dim_size=num_nodes)
    out_new = new(x_new, index, dim_size=num_nodes)
    assert torch.equal(out_ref, out_new)
    weights = torch.randn(num_nodes, width, generator=gen)
    (out_ref * weights).sum().backward()
    (out_new * weights).sum().backward()
    assert x_new.grad is not None and ref.t.grad is not None and new.t.grad is not None
    torch.testing.assert_close(x_new.grad, x_ref.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(new.t.grad, ref.t.grad, rtol=1e-4, atol=1e-5)


def test_blocks_cover_every_edge_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks are consecutive target ranges whose edge ranges tile [0, E), cut at target
    boundaries, each at most a block's rows plus one target's edges."""
    monkeypatch.setattr(aggregations, "BLOCK_ENTRIES", 20)
    counts = torch.tensor([0, 3, 50, 0, 1, 2, 7, 0, 0, 4, 6, 6, 6])
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    blocks = aggregations._blocks(ptr, channels=2)  # 10 edge rows a block
    assert blocks[0][2] == 0 and blocks[-1][3] == int(ptr[-1])
    for (_, b, _, e1), (a, _, e0, _) in itertools.pairwise(blocks):
        assert b <= a and e1 == e0
    for a, b, e0, e1 in blocks:
        assert (int(ptr[a]), int(ptr[b])) == (e0, e1)
        assert e1 - e0 <= 10 + int(counts[a:b].max())
    assert len(blocks) >= 3


def test_double_precision_and_a_fixed_temperature() -> None:
    gen = torch.Generator().manual_seed(0)
    index = torch.randint(0, 30, (200,), generator=gen)
    x = torch.rand(200, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    ref = SoftmaxAggregation(t=0.3)(x, index, dim_size=30)
    new = BlockedSoftmaxAggregation(t=0.3)(x, index, dim_size=30)
    assert new.dtype == torch.float64 and torch.equal(ref, new)
    t = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    per_channel = torch.rand(5, dtype=torch.float64, generator=gen).requires_grad_()
    for temperature in (t, per_channel):
        assert torch.autograd.gradcheck(
            lambda v, tt: blocked_softmax_aggregate(v, tt, index[:40], 30),
            (x[:40].detach().clone().requires_grad_(), temperature),
        )


def test_semi_grad_runs_pygs_computation() -> None:
    agg = BlockedSoftmaxAggregation(t=2.0, semi_grad=True)
    x = torch.rand(10, 3, requires_grad=True)
    index = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 3])
    out = agg(x, index, dim_size=4)
    assert torch.equal(out, SoftmaxAggregation(t=2.0, semi_grad=True)(x, index, dim_size=4))


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_gather_aggregate_is_pygs_gather_scatter_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, reduce: str
) -> None:
    """Forward and backward equal ``scatter(x.index_select(0, source), target)`` exactly,
    across many blocks, with targets that receive no edge (mean 0)."""
    from torch_geometric.utils import scatter

    monkeypatch.setattr(aggregations, "GATHER_BLOCK_ENTRIES", 7 * 16)  # 16 edges a block
    gen = torch.Generator().manual_seed(4)
    source = torch.randint(0, 90, (700,), generator=gen)
    target = torch.randint(0, 60, (700,), generator=gen)
    target[target == 3] = 4  # node 3 gets no message
    x = torch.randn(90, 7, generator=gen)
    weights = torch.randn(70, 7, generator=gen)
    x_ref, x_new = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = scatter(x_ref.index_select(0, source), target, 0, dim_size=70, reduce=reduce)
    out = aggregations.gather_aggregate(x_new, source, target, 70, reduce)
    assert torch.equal(out, ref) and bool((out[3] == 0).all())
    (ref * weights).sum().backward()
    (out * weights).sum().backward()
    assert torch.equal(x_new.grad, x_ref.grad)


def test_gather_aggregate_rejects_other_reductions() -> None:
    with pytest.raises(ValueError, match="sum or mean"):
        aggregations.gather_aggregate(
            torch.ones(2, 2), torch.tensor([0]), torch.tensor([1]), 2, "max"
        )


def test_gathered_messages_match_the_materialised_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """``gathered(x, source, index)`` is ``self(x[source], index)``: the same forward bits,
    and the gradient of ``x`` within rounding, across blocks and unsorted targets."""
    monkeypatch.setattr(aggregations, "BLOCK_ENTRIES", 6 * 32)
    gen = torch.Generator().manual_seed(7)
    source = torch.randint(0, 80, (1000,), generator=gen)
    index = torch.randint(0, 50, (1000,), generator=gen)
    x = torch.rand(80, 6, generator=gen) + 0.1
    agg = BlockedSoftmaxAggregation(learn=True)
    with torch.no_grad():
        agg.t.fill_(1.3)
    x_a, x_b = x.clone().requires_grad_(), x.clone().requires_grad_()
    materialised = agg(x_a[source], index, dim_size=50)
    gathered = agg.gathered(x_b, source, index, 50)
    assert torch.equal(materialised, gathered)
    weights = torch.randn(50, 6, generator=gen)
    (materialised * weights).sum().backward()
    (gathered * weights).sum().backward()
    torch.testing.assert_close(x_b.grad, x_a.grad, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="semi_grad"):
        BlockedSoftmaxAggregation(semi_grad=True).gathered(x, source, index, 50)
