"""Tests of fathom.loaders.neighbor: the sampler's structure, its randomness, and PyG's loader."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import NodeLoader
from torch_geometric.nn import GraphSAGE

from fathom.errors import ConfigError, DataError
from fathom.loaders.csr import CSR, to_csr
from fathom.loaders.neighbor import (
    NeighborSampler,
    SampledSubgraph,
    neighbor_loader,
    sample_neighbors,
)


def _random_graph(num_nodes: int, num_edges: int, seed: int) -> Tensor:
    """A simple directed graph: no self-loops, no repeated (source, target) pair."""
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    key = torch.unique(ei[0] * num_nodes + ei[1])
    return torch.stack([key // num_nodes, key % num_nodes])


def _in_neighbours(edge_index: Tensor, num_nodes: int) -> list[set[int]]:
    out: list[set[int]] = [set() for _ in range(num_nodes)]
    for s, t in edge_index.t().tolist():
        out[t].add(s)
    return out


def _check_structure(
    sub: SampledSubgraph,
    edge_index: Tensor,
    seeds: Tensor,
    fanouts: list[int],
    *,
    replace: bool,
) -> None:
    """Every structural promise of :func:`sample_neighbors`, checked naively on the CPU."""
    n_id, local, e_id = sub.n_id.cpu(), sub.edge_index.cpu(), sub.e_id.cpu()
    edge_index, seeds = edge_index.cpu(), seeds.cpu()
    num_nodes = int(edge_index.max()) + 1
    deg = torch.bincount(edge_index[1], minlength=num_nodes)

    # Seeds first, every node once, counts add up (PyG's per-hop convention).
    assert sub.batch_size == seeds.numel()
    assert torch.equal(n_id[: sub.batch_size], seeds)
    assert n_id.unique().numel() == n_id.numel()
    assert len(sub.num_sampled_nodes) == len(fanouts) + 1
    assert len(sub.num_sampled_edges) == len(fanouts)
    assert sub.num_sampled_nodes[0] == sub.batch_size
    assert sum(sub.num_sampled_nodes) == n_id.numel()
    assert sum(sub.num_sampled_edges) == e_id.numel() == local.size(1)

    # Sampled edges are real edges, and e_id points at them.
    assert torch.equal(edge_index[:, e_id], n_id[local])

    node_start = [0]
    for c in sub.num_sampled_nodes:
        node_start.append(node_start[-1] + c)
    seen = set(seeds.tolist())
    e0 = 0
    for hop, fanout in enumerate(fanouts):
        e1 = e0 + sub.num_sampled_edges[hop]
        src, dst = local[0, e0:e1], local[1, e0:e1]
        # Targets of hop l are exactly the nodes first reached at hop l - 1 (seeds at 0).
        lo, hi = node_start[hop], node_start[hop + 1]
        assert bool(((dst >= lo) & (dst < hi)).all())
        got = torch.bincount(dst - lo, minlength=hi - lo) if hi > lo else torch.zeros(0)
        d = deg[n_id[lo:hi]]
        if fanout == -1:
            want = d
        elif replace:
            want = torch.where(d > 0, fanout, 0)
        else:
            want = d.clamp(max=fanout)
        assert got.tolist() == want.tolist(), f"hop {hop}"
        if not replace:
            pairs = set(zip(src.tolist(), dst.tolist(), strict=True))
            assert len(pairs) == src.numel(), f"hop {hop} repeats a draw"
            assert e_id[e0:e1].unique().numel() == e1 - e0
        # New nodes: the hop's unseen sources, in order of first discovery.
        new: list[int] = []
        for v in n_id[src].tolist():
            if v not in seen:
                seen.add(v)
                new.append(v)
        assert n_id[node_start[hop + 1] : node_start[hop + 2]].tolist() == new, f"hop {hop}"
        e0 = e1


# --- sample_neighbors --------------------------------------------------------------------

EI = _random_graph(300, 3000, seed=0)  # mean in-degree ~10, a spread of degrees
CSR_EI = to_csr(EI, 300)


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("fanouts", [[3], [5, 2], [10, 4, 2], [-1, 3]])
def test_sample_structure(fanouts: list[int], replace: bool) -> None:
    seeds = torch.randperm(300, generator=torch.Generator().manual_seed(1))[:40]
    g = torch.Generator().manual_seed(2)
    sub = sample_neighbors(CSR_EI, seeds, fanouts, replace=replace, generator=g)
    _check_structure(sub, EI, seeds, fanouts, replace=replace)


def test_hand_built_graph() -> None:
    # 0 <- 1, 2; 1 <- 3; 2 <- 3, 4; 4 <- 0. Full fan-out from 0 over two hops.
    ei = torch.tensor([[1, 2, 3, 3, 4, 0], [0, 0, 1, 2, 2, 4]])
    sub = sample_neighbors(to_csr(ei, 5), torch.tensor([0]), [-1, -1])
    assert sub.n_id.tolist() == [0, 1, 2, 3, 4]
    assert sub.num_sampled_nodes == [1, 2, 2]
    assert sub.num_sampled_edges == [2, 3]
    # Hop 1: 1->0, 2->0; hop 2: 3->1, then 2's in-edges 3->2, 4->2.
    assert sub.edge_index.tolist() == [[1, 2, 3, 3, 4], [0, 0, 1, 2, 2]]
    assert sub.e_id.tolist() == [0, 1, 2, 3, 4]


def _k_hop_in(edge_index: Tensor, num_nodes: int, seeds: list[int], k: int) -> set[int]:
    nbrs = _in_neighbours(edge_index, num_nodes)
    reached, frontier = set(seeds), set(seeds)
    for _ in range(k):
        frontier = {u for v in frontier for u in nbrs[v]} - reached
        reached |= frontier
    return reached


@pytest.mark.parametrize("fanout", [-1, 1000])
@pytest.mark.parametrize("hops", [1, 2, 3])
def test_full_fanout_is_the_k_hop_in_neighbourhood(fanout: int, hops: int) -> None:
    ei = _random_graph(200, 500, seed=3)  # sparse, so 3 hops do not cover the graph
    seeds = torch.tensor([5, 17, 42])
    sub = sample_neighbors(to_csr(ei, 200), seeds, [fanout] * hops)
    assert set(sub.n_id.tolist()) == _k_hop_in(ei, 200, seeds.tolist(), hops)
    # and every in-edge of every node expanded (those reached before the last hop)
    expanded = sub.n_id[: sum(sub.num_sampled_nodes[:-1])].tolist()
    nbrs = _in_neighbours(ei, 200)
    assert sub.edge_index.size(1) == sum(len(nbrs[v]) for v in expanded)


def test_same_seed_same_subgraph_other_seed_other_subgraph() -> None:
    seeds = torch.arange(0, 300, 7)

    def run(seed: int) -> SampledSubgraph:
        return sample_neighbors(
            CSR_EI, seeds, [5, 3], generator=torch.Generator().manual_seed(seed)
        )

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a.n_id, b.n_id)
    assert torch.equal(a.edge_index, b.edge_index)
    assert torch.equal(a.e_id, b.e_id)
    assert not torch.equal(a.e_id, c.e_id)

    s1, s2 = NeighborSampler(EI, [5, 3], num_nodes=300), NeighborSampler(EI, [5, 3], num_nodes=300)
    for _ in range(3):  # the generators advance in step
        assert torch.equal(s1.sample(seeds).e_id, s2.sample(seeds).e_id)
    other = NeighborSampler(EI, [5, 3], num_nodes=300, seed=1).sample(seeds)
    assert not torch.equal(s1.sample(seeds).e_id, other.e_id)


def _stars(num_stars: int, degree: int) -> tuple[Tensor, Tensor]:
    """``num_stars`` disjoint stars; centre ``c * (degree + 1)`` has leaves at +1..+degree."""
    centres = torch.arange(num_stars) * (degree + 1)
    leaves = centres.unsqueeze(1) + torch.arange(1, degree + 1)
    ei = torch.stack([leaves.reshape(-1), centres.repeat_interleave(degree)])
    return ei, centres


@pytest.mark.parametrize("replace", [False, True])
def test_draws_are_uniform(replace: bool) -> None:
    # 4000 nodes of degree 10, fan-out 3: each leaf is drawn with probability 0.3 per draw.
    ei, centres = _stars(4000, 10)
    csr = to_csr(ei, int(ei.max()) + 1)
    g = torch.Generator().manual_seed(0)
    sub = sample_neighbors(csr, centres, [3], replace=replace, generator=g)
    src, dst = sub.n_id[sub.edge_index[0]], sub.n_id[sub.edge_index[1]]
    leaf = src - dst - 1  # 0..9
    freq = torch.bincount(leaf, minlength=10).double() / centres.numel()
    # sd of each frequency ~ sqrt(0.3 * 0.7 / 4000) ~ 0.007
    assert torch.allclose(freq, torch.full((10,), 0.3, dtype=torch.double), atol=0.03), freq
    if not replace:
        # A uniform 3-subset holds a given pair with probability 3/10 * 2/9 = 1/15.
        chosen = torch.zeros(centres.numel(), 10)
        chosen[dst // 11, leaf] = 1
        pair = (chosen.t() @ chosen / centres.numel()).masked_select(~torch.eye(10).bool())
        assert torch.allclose(pair, torch.full_like(pair, 1 / 15), atol=0.02), pair


def test_replace_draws_exactly_fanout_even_beyond_the_degree() -> None:
    ei, centres = _stars(3, 2)
    sub = sample_neighbors(
        to_csr(ei, 9), centres, [5], replace=True, generator=torch.Generator().manual_seed(0)
    )
    assert sub.num_sampled_edges == [15]
    assert torch.bincount(sub.edge_index[1]).tolist() == [5, 5, 5]


def test_isolated_seeds_and_empty_frontiers() -> None:
    ei = torch.tensor([[1], [0]])
    sub = sample_neighbors(to_csr(ei, 4), torch.tensor([2, 3]), [4, 4, 4])
    assert sub.n_id.tolist() == [2, 3]
    assert sub.edge_index.shape == (2, 0)
    assert sub.num_sampled_nodes == [2, 0, 0, 0]
    assert sub.num_sampled_edges == [0, 0, 0]


@pytest.mark.parametrize("fanouts", [[], [0], [3, -2], [2.5], 3])
def test_bad_fanouts(fanouts: object) -> None:
    with pytest.raises(ConfigError, match="num_neighbors"):
        sample_neighbors(CSR_EI, torch.tensor([0]), fanouts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seeds", "match"),
    [
        (torch.tensor([0, 300]), "lie in"),
        (torch.tensor([-1]), "lie in"),
        (torch.tensor([4, 7, 4]), "distinct"),
        (torch.tensor([[0, 1]]), "1-D integer"),
        (torch.tensor([0.0]), "1-D integer"),
    ],
)
def test_bad_seeds(seeds: Tensor, match: str) -> None:
    sampler = NeighborSampler(EI, [2], num_nodes=300)
    with pytest.raises(DataError, match=match):
        sampler.sample(seeds)
    # The reusable node map is clean again after a refused batch.
    assert bool((sampler.node_map == -1).all())


def test_node_map_is_reset_after_each_batch() -> None:
    sampler = NeighborSampler(EI, [10, 5], num_nodes=300)
    for start in range(0, 300, 50):
        sub = sampler.sample(torch.arange(start, start + 50))
        assert sub.n_id.numel() > 50
        assert bool((sampler.node_map == -1).all())


# --- PyG's NodeLoader ---------------------------------------------------------------------


def _two_communities(num_nodes: int = 240, seed: int = 0) -> Data:
    """Two classes; edges mostly within a class; features a weak class signal plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(num_nodes) % 2
    ei = torch.randint(0, num_nodes, (2, num_nodes * 8), generator=g)
    keep = (y[ei[0]] == y[ei[1]]) | (torch.rand(ei.size(1), generator=g) < 0.1)
    ei = ei[:, keep & (ei[0] != ei[1])]
    x = torch.randn(num_nodes, 8, generator=g) + 0.7 * (2 * y - 1).unsqueeze(1).float()
    train_mask = torch.rand(num_nodes, generator=g) < 0.5
    return Data(
        x=x,
        y=y,
        edge_index=ei,
        edge_attr=torch.arange(ei.size(1), dtype=torch.float).unsqueeze(1),
        train_mask=train_mask,
    )


def test_node_loader_epoch() -> None:
    data = _two_communities()
    loader = NodeLoader(
        data,
        node_sampler=NeighborSampler(data, [10, 5]),
        input_nodes=data.train_mask,
        batch_size=16,
        shuffle=True,
    )
    train = data.train_mask.nonzero().view(-1)
    seen = []
    for batch in loader:
        assert isinstance(batch, Data)
        bs = batch.batch_size
        assert bs == batch.input_id.numel() <= 16
        assert torch.equal(batch.n_id[:bs], batch.input_id)  # a mask's input ids are node ids
        assert torch.equal(batch.x, data.x[batch.n_id])
        assert torch.equal(batch.y, data.y[batch.n_id])
        assert torch.equal(data.edge_index[:, batch.e_id], batch.n_id[batch.edge_index])
        assert torch.equal(batch.edge_attr, data.edge_attr[batch.e_id])
        assert batch.num_sampled_nodes[0] == bs
        seen.append(batch.n_id[:bs])
    assert torch.equal(torch.sort(torch.cat(seen)).values, train)


def test_neighbor_loader_is_deterministic_under_a_seed() -> None:
    data = _two_communities()

    def epoch(seed: int) -> list[Tensor]:
        loader = neighbor_loader(
            data, [5, 5], input_nodes=data.train_mask, batch_size=32, shuffle=True, seed=seed
        )
        return [b.e_id for b in loader]

    a, b, c = epoch(0), epoch(0), epoch(1)
    assert len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not all(torch.equal(u, v) for u, v in zip(a, c, strict=False))


def test_graphsage_trains_on_the_batches() -> None:
    torch.manual_seed(0)
    data = _two_communities()
    loader = neighbor_loader(
        data, [10, 5], input_nodes=data.train_mask, batch_size=32, shuffle=True, seed=0
    )
    model = GraphSAGE(8, 16, num_layers=2, out_channels=2)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(8):
        total, count = 0.0, 0
        for batch in loader:
            opt.zero_grad()
            out = model(batch.x, batch.edge_index)[: batch.batch_size]
            loss = F.cross_entropy(out, batch.y[: batch.batch_size])
            loss.backward()
            opt.step()
            total += loss.item() * batch.batch_size
            count += batch.batch_size
        losses.append(total / count)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.7 * losses[0], losses


def test_sampler_interface_refusals() -> None:
    sampler = NeighborSampler(EI, [2], num_nodes=300)
    assert sampler.edge_permutation is None
    with pytest.raises(ConfigError, match="num_nodes"):
        NeighborSampler(EI, [2])


# --- CUDA ---------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("replace", [False, True])
def test_sample_on_cuda(replace: bool) -> None:
    ei = EI.cuda()
    csr = to_csr(ei, 300)
    assert isinstance(csr, CSR) and csr.device.type == "cuda"
    seeds = torch.arange(0, 300, 5, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    sub = sample_neighbors(csr, seeds, [10, 4, -1], replace=replace, generator=g)
    assert sub.n_id.is_cuda and sub.edge_index.is_cuda and sub.e_id.is_cuda
    _check_structure(sub, EI, seeds, [10, 4, -1], replace=replace)
    again = sample_neighbors(
        csr, seeds, [10, 4, -1], replace=replace, generator=torch.Generator("cuda").manual_seed(0)
    )
    assert torch.equal(sub.e_id, again.e_id)


@pytest.mark.gpu
def test_neighbor_loader_on_cuda() -> None:
    data = _two_communities()
    loader = neighbor_loader(
        data, [10, 5], input_nodes=data.train_mask, batch_size=32, shuffle=True, device="cuda"
    )
    seen = []
    for batch in loader:
        assert torch.equal(batch.x, data.x[batch.n_id.cpu()])
        assert torch.equal(data.edge_index[:, batch.e_id.cpu()], batch.n_id.cpu()[batch.edge_index])
        seen.append(batch.n_id[: batch.batch_size].cpu())
    assert torch.equal(torch.sort(torch.cat(seen)).values, data.train_mask.nonzero().view(-1))
