"""Over-squashing metrics: hop distances, Jacobian sensitivity, effective resistance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import shortest_path
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn.models import GCN
from torch_geometric.utils import erdos_renyi_graph, to_undirected
from torch_geometric.utils.influence import total_influence

import fathom.diagnostics.oversquashing as osq
from fathom.config import ModelConfig
from fathom.diagnostics.oversquashing import (
    SensitivityResult,
    effective_resistance,
    hop_distances,
    jacobian_sensitivity,
    sensitivity_matrix,
    total_effective_resistance,
)
from fathom.errors import ConfigError, DataError
from fathom.models.build import build_model


def undirected(pairs: list[tuple[int, int]]) -> Tensor:
    ei = torch.tensor(pairs, dtype=torch.long).t()
    return torch.cat([ei, ei.flip(0)], dim=1)


def path(n: int) -> Tensor:
    return undirected([(i, i + 1) for i in range(n - 1)])


def cycle(n: int) -> Tensor:
    return undirected([(i, (i + 1) % n) for i in range(n)])


def complete(n: int) -> Tensor:
    return undirected([(i, j) for i in range(n) for j in range(i + 1, n)])


def random_graph(n: int, p: float, seed: int) -> Tensor:
    torch.manual_seed(seed)
    return erdos_renyi_graph(n, p)


def scipy_hops(edge_index: Tensor, n: int, sources: Tensor, directed: bool) -> np.ndarray:
    ei = edge_index.numpy()
    adj = sp.csr_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(n, n))
    d = shortest_path(adj, directed=directed, unweighted=True, indices=sources.numpy())
    return np.where(np.isinf(d), -1, d).astype(np.int64)


# ------------------------------------------------------------------------ hop_distances


def test_hop_distances_path_and_cutoff():
    d = hop_distances(path(6), 6, torch.tensor([0, 3]))
    assert d.dtype == torch.long and d.shape == (2, 6)
    assert d.tolist() == [[0, 1, 2, 3, 4, 5], [3, 2, 1, 0, 1, 2]]
    d = hop_distances(path(6), 6, torch.tensor([0, 3]), max_hops=2)
    assert d.tolist() == [[0, 1, 2, -1, -1, -1], [-1, 2, 1, 0, 1, 2]]
    assert hop_distances(path(6), 6, 2, max_hops=0).tolist() == [[-1, -1, 0, -1, -1, -1]]


def test_hop_distances_unreachable_directed_duplicates_and_self_loops():
    # 0 -> 1 -> 2, isolated 3, self-loop on 3, duplicate edge 0 -> 1
    ei = torch.tensor([[0, 0, 1, 3], [1, 1, 2, 3]])
    assert hop_distances(ei, 4, [0, 2, 3]).tolist() == [
        [0, 1, 2, -1],
        [2, 1, 0, -1],
        [-1, -1, -1, 0],
    ]
    directed = hop_distances(ei, 4, [0, 2, 2], directed=True)
    assert directed.tolist() == [[0, 1, 2, -1], [-1, -1, 0, -1], [-1, -1, 0, -1]]


@pytest.mark.parametrize("directed", [False, True])
def test_hop_distances_match_scipy_across_bitset_words_and_chunks(monkeypatch, directed):
    n = 150
    ei = random_graph(n, 0.02, seed=1)
    ei = ei[:, ei[0] < ei[1]] if directed else ei  # a DAG-ish directed graph
    sources = torch.randint(0, n, (140,), generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(osq, "_SOURCE_CHUNK", 100)  # two chunks, the first spanning 2 words
    got = hop_distances(ei, n, sources, directed=directed).numpy()
    want = scipy_hops(ei, n, sources, directed)
    assert want.max() >= 4  # the graph is not trivially shallow
    np.testing.assert_array_equal(got, want)
    capped = hop_distances(ei, n, sources, max_hops=2, directed=directed).numpy()
    np.testing.assert_array_equal(capped, np.where(want > 2, -1, want))


@pytest.mark.parametrize(
    ("edge_index", "sources", "match"),
    [
        (torch.tensor([[0.0, 1.0], [1.0, 2.0]]), [0], "integer dtype"),
        (torch.tensor([0, 1, 2]), [0], r"shape \[2, num_edges\]"),
        (torch.tensor([[0, 5], [1, 2]]), [0], "out of range"),
        (path(3), [0, 3], "sources has 1 entries out of range"),
        (path(3), torch.tensor([0.0]), "sources must have an integer dtype"),
        (path(3), [[0, 1]], "sources must be 1-D"),
    ],
)
def test_hop_distances_bad_input(edge_index, sources, match):
    with pytest.raises(DataError, match=match):
        hop_distances(edge_index, 3, sources)


def test_hop_distances_bad_max_hops():
    with pytest.raises(ConfigError, match="max_hops"):
        hop_distances(path(3), 3, [0], max_hops=-1)


# ------------------------------------------------------------------ Jacobian sensitivity


def tiny_graph() -> tuple[Tensor, Tensor]:
    """7 nodes: a path 0-1-2-3-4 with a triangle 2-5-6-2 hanging on node 2; x is [7, 3]."""
    ei = undirected([(0, 1), (1, 2), (2, 3), (3, 4), (2, 5), (5, 6), (6, 2)])
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    return ei, x


def full_l1_jacobian(model_fn, x: Tensor) -> Tensor:
    """[N, N]: S[i, j] = sum_{c, f} |d h[i, c] / d x[j, f]| via autograd.functional."""
    jac = torch.autograd.functional.jacobian(model_fn, x)  # [N, C, N, F]
    return jac.abs().sum(dim=(1, 3)).double()


@pytest.mark.parametrize("vectorize", [True, False])
def test_sensitivity_matrix_is_exact_for_pyg_gcn(vectorize):
    torch.manual_seed(0)
    ei, x = tiny_graph()
    model = GCN(3, 8, num_layers=2, out_channels=4).eval()
    fn = lambda z: model(z, ei)  # noqa: E731
    want = full_l1_jacobian(fn, x)
    targets = torch.tensor([0, 2, 6, 2])
    got = sensitivity_matrix(fn, x, targets, vectorize=vectorize)
    assert got.shape == (4, 7) and got.dtype == torch.float64
    torch.testing.assert_close(got, want[targets], rtol=1e-5, atol=1e-8)
    # only the first channel
    jac = torch.autograd.functional.jacobian(fn, x)[:, :1]
    one = sensitivity_matrix(fn, x, targets, max_channels=1, vectorize=vectorize)
    torch.testing.assert_close(one, jac.abs().sum(dim=(1, 3)).double()[targets], rtol=1e-5, atol=0)


def test_sensitivity_matrix_is_exact_for_fathom_model_with_custom_autograd():
    torch.manual_seed(0)
    ei, x = tiny_graph()
    model = build_model(ModelConfig(depth=4, hidden=16, dropout=0.0), 3, 2).eval()
    fn = lambda z: model(z, ei)  # noqa: E731
    want = full_l1_jacobian(fn, x)
    for vectorize in (True, False):
        got = sensitivity_matrix(fn, x, torch.arange(7), vectorize=vectorize)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-8)


class _NumpyDouble(torch.autograd.Function):
    """x -> 2x whose backward leaves torch (cannot be vmapped)."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        return torch.from_numpy(2 * grad.numpy())


def test_sensitivity_falls_back_to_loop_when_backward_cannot_be_vmapped():
    ei, x = tiny_graph()
    adj = torch.zeros(7, 7)
    adj[ei[1], ei[0]] = 1.0
    weight = torch.randn(3, 2, generator=torch.Generator().manual_seed(1))
    fn = lambda z: adj @ torch.tanh(adj @ _NumpyDouble.apply(z) @ weight)  # noqa: E731
    xr = x.clone().requires_grad_()
    out = fn(xr)
    with pytest.raises(RuntimeError):  # the premise: vmap over this backward fails
        torch.autograd.grad(out, xr, torch.ones(2, *out.shape), is_grads_batched=True)
    got = sensitivity_matrix(fn, x, torch.arange(7), vectorize=True)
    torch.testing.assert_close(got, full_l1_jacobian(fn, x), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("k", [1, 3])
def test_gcn_sensitivity_vanishes_beyond_its_receptive_field(k):
    torch.manual_seed(k)
    n = 10
    ei = path(n)
    x = torch.randn(n, 4)
    model = GCN(4, 16, num_layers=k, out_channels=3).eval()
    res = jacobian_sensitivity(lambda z: model(z, ei), x, ei, targets=torch.tensor([0, 4, 9]))
    assert res.hops == list(range(10))  # node 0 and 9 see the whole path
    assert all(t > 0 for t in res.total[: k + 1])
    assert all(t == 0.0 for t in res.total[k + 1 :])
    assert all(m == 0.0 for m in res.mean[k + 1 :])
    assert res.beyond == 0.0
    # same for a fathom model (custom sparse autograd), depth k
    fathom_model = build_model(ModelConfig(depth=k, hidden=16, dropout=0.0), 4, 3).eval()
    res = jacobian_sensitivity(lambda z: fathom_model(z, ei), x, ei, targets=torch.tensor([4]))
    assert res.hops == list(range(6))
    assert all(t > 0 for t in res.total[: k + 1])
    assert all(t == 0.0 for t in res.total[k + 1 :])


def test_jacobian_sensitivity_aggregates_exact_jacobian_by_hop():
    torch.manual_seed(0)
    ei, x = tiny_graph()
    model = GCN(3, 8, num_layers=4, out_channels=2).eval()  # reaches hop 4
    fn = lambda z: model(z, ei)  # noqa: E731
    s = full_l1_jacobian(fn, x).numpy()
    targets = [0, 4, 6]
    res = jacobian_sensitivity(fn, x, ei, targets=torch.tensor(targets))
    # distances by hand: path 0-1-2-3-4, triangle 2-5-6
    dist = {0: [0, 1, 2, 3, 4, 3, 3], 4: [4, 3, 2, 1, 0, 3, 3], 6: [3, 2, 1, 2, 3, 1, 0]}
    totals = np.zeros((3, 5))
    counts = np.zeros((3, 5))
    for row, i in enumerate(targets):
        for j, r in enumerate(dist[i]):
            totals[row, r] += s[i, j]
            counts[row, r] += 1
    assert res.hops == [0, 1, 2, 3, 4]
    assert res.targets == targets
    assert res.channels == 2
    assert res.count == pytest.approx(counts.mean(0).tolist())
    assert res.total == pytest.approx(totals.mean(0).tolist(), rel=1e-6)
    assert res.normalized == pytest.approx((totals.mean(0) / totals.mean(0)[0]).tolist(), rel=1e-6)
    # hop 4 exists only for targets 0 and 4; the mean is over those
    per_node = np.where(counts > 0, totals / np.maximum(counts, 1), 0)
    want_mean = per_node.sum(0) / (counts > 0).sum(0)
    assert res.mean == pytest.approx(want_mean.tolist(), rel=1e-6)
    assert res.mean[4] == pytest.approx((s[0, 4] + s[4, 0]) / 2, rel=1e-6)
    assert res.mean[4] > 0
    breadth = np.mean([(totals[r] @ np.arange(5)) / totals[r].sum() for r in range(3)])
    assert res.influence_breadth == pytest.approx(breadth, rel=1e-6)
    d = res.to_dict()
    assert d["hops"] == [0, 1, 2, 3, 4] and isinstance(d["influence_breadth"], float)

    capped = jacobian_sensitivity(fn, x, ei, targets=torch.tensor(targets), max_hops=2)
    assert capped.hops == [0, 1, 2]
    assert capped.total == pytest.approx(res.total[:3], rel=1e-6)
    assert capped.beyond == pytest.approx(sum(res.total[3:]), rel=1e-6)
    assert capped.beyond > 0


def test_jacobian_sensitivity_matches_pyg_total_influence():
    torch.manual_seed(0)
    n = 12
    ei = to_undirected(torch.cat([cycle(n), torch.tensor([[0, 3], [6, 9]])], dim=1))
    x = torch.randn(n, 5)
    model = GCN(5, 8, num_layers=3, out_channels=3).eval()
    data = Data(x=x, edge_index=ei, num_nodes=n)
    # max_hops >= diameter: PyG's k-hop subgraph is the whole graph, so its Jacobian is exact
    pyg_avg, pyg_r = total_influence(model, data, max_hops=n, normalize=True)
    res = jacobian_sensitivity(lambda z: model(z, ei), x, ei, targets=torch.arange(n))
    hops = len(res.hops)
    torch.testing.assert_close(
        torch.tensor(res.normalized, dtype=torch.float32), pyg_avg[:hops], rtol=1e-4, atol=1e-7
    )
    assert pyg_avg[hops:].abs().max() == 0
    assert res.influence_breadth == pytest.approx(pyg_r, rel=1e-4)


def test_jacobian_sensitivity_samples_non_isolated_targets_reproducibly():
    ei = torch.tensor([[0, 1, 1, 2, 5, 6], [1, 0, 2, 1, 5, 7]])  # 3, 4 isolated; 5 self-loop
    n = 8
    x = torch.randn(n, 2)
    weight = torch.randn(2, 2)
    fn = lambda z: z @ weight  # noqa: E731
    res = jacobian_sensitivity(fn, x, ei, targets=3, seed=0)
    assert len(res.targets) == 3 and len(set(res.targets)) == 3
    assert set(res.targets) <= {0, 1, 2, 6, 7}
    assert jacobian_sensitivity(fn, x, ei, targets=3, seed=0).targets == res.targets
    seeds = {tuple(jacobian_sensitivity(fn, x, ei, targets=3, seed=s).targets) for s in range(6)}
    assert len(seeds) > 1
    everything = jacobian_sensitivity(fn, x, ei, targets=100)
    assert sorted(everything.targets) == [0, 1, 2, 6, 7]
    # a node-wise model: all sensitivity at hop 0
    assert everything.total[0] > 0 and all(t == 0 for t in everything.total[1:])
    assert everything.influence_breadth == 0.0
    # no edges at all: every node is a candidate
    none = jacobian_sensitivity(fn, x, torch.empty(2, 0, dtype=torch.long), targets=100)
    assert sorted(none.targets) == list(range(n)) and none.hops == [0]


def test_jacobian_sensitivity_bad_input():
    ei, x = tiny_graph()
    fn = lambda z: z * 2  # noqa: E731
    with pytest.raises(DataError, match="targets has 1 entries out of range"):
        jacobian_sensitivity(fn, x, ei, targets=torch.tensor([0, 7]))
    with pytest.raises(DataError, match="targets is empty"):
        jacobian_sensitivity(fn, x, ei, targets=torch.tensor([], dtype=torch.long))
    with pytest.raises(ConfigError, match="targets must be >= 1"):
        jacobian_sensitivity(fn, x, ei, targets=0)
    with pytest.raises(DataError, match="x must be a floating-point"):
        jacobian_sensitivity(fn, x.long(), ei)
    with pytest.raises(DataError, match="edge_index has 1 entries out of range"):
        jacobian_sensitivity(fn, x, torch.tensor([[0], [7]]))
    with pytest.raises(ConfigError, match="max_channels"):
        jacobian_sensitivity(fn, x, ei, max_channels=0)
    with pytest.raises(ConfigError, match=r"must return \[num_nodes=7, channels\]"):
        jacobian_sensitivity(lambda z: z[:3], x, ei)
    with pytest.raises(ConfigError, match="does not depend on x"):
        jacobian_sensitivity(lambda z: z.detach() * 2, x, ei)
    assert isinstance(jacobian_sensitivity(fn, x, ei, targets=2), SensitivityResult)


# ------------------------------------------------------------------- effective resistance


@pytest.mark.parametrize("method", ["exact", "approx"])
def test_resistance_on_a_path_is_the_hop_distance(method):
    n = 8
    pairs = torch.tensor([[0, 0, 2, 5, 3], [7, 1, 6, 1, 3]])
    got = effective_resistance(path(n), n, pairs, method=method, num_projections=3000)
    want = torch.tensor([7.0, 1.0, 4.0, 4.0, 0.0], dtype=torch.float64)
    if method == "exact":
        torch.testing.assert_close(got, want)
    else:  # relative standard deviation sqrt(2 / 3000) = 2.6%
        assert got[4] == 0.0
        assert float(((got[:4] - want[:4]).abs() / want[:4]).max()) < 0.1


def test_resistance_closed_forms_exact():
    n = 9
    r = torch.arange(1, n)
    got = effective_resistance(cycle(n), n, torch.stack([torch.zeros_like(r), r]), method="exact")
    want = (r * (n - r) / n).double()
    torch.testing.assert_close(got, want)
    k = effective_resistance(complete(6), 6, method="exact")
    torch.testing.assert_close(k, torch.full((30,), 2 / 6, dtype=torch.float64))
    # a tree: R = length of the unique path
    tree = undirected([(0, 1), (0, 2), (1, 3), (1, 4), (2, 5), (5, 6)])
    pairs = torch.tensor([[3, 4, 6, 3], [6, 0, 0, 4]])
    got = effective_resistance(tree, 7, pairs, method="exact")
    torch.testing.assert_close(got, torch.tensor([5.0, 2.0, 3.0, 2.0], dtype=torch.float64))


def test_resistance_default_pairs_are_the_edge_index_columns():
    # triangle 0-1-2 plus a bridge 2-3, given one direction each plus a duplicate and a loop
    ei = torch.tensor([[0, 1, 2, 2, 3, 0, 1], [1, 2, 0, 3, 2, 1, 1]])
    got = effective_resistance(ei, 4, method="exact")
    want = torch.tensor([2 / 3, 2 / 3, 2 / 3, 1.0, 1.0, 2 / 3, 0.0], dtype=torch.float64)
    torch.testing.assert_close(got, want)


def test_resistance_across_components_is_infinite():
    # two paths 0-1-2 and 3-4, node 5 isolated
    ei = undirected([(0, 1), (1, 2), (3, 4)])
    pairs = torch.tensor([[0, 0, 3, 5, 5, 2], [2, 3, 4, 5, 0, 1]])
    for method in ("exact", "approx"):
        got = effective_resistance(ei, 6, pairs, method=method, num_projections=50)
        assert math.isinf(got[1]) and math.isinf(got[4])
        assert got[3] == 0.0
        if method == "exact":
            torch.testing.assert_close(got[[0, 2, 5]], torch.tensor([2.0, 1.0, 1.0]).double())


def test_exact_resistance_obeys_fosters_theorem():
    n = 60
    ei = random_graph(n, 0.08, seed=3)
    res = effective_resistance(ei, n, method="exact")
    from scipy.sparse.csgraph import connected_components

    adj = sp.csr_matrix((np.ones(ei.size(1)), (ei[0].numpy(), ei[1].numpy())), shape=(n, n))
    num_comp, _ = connected_components(adj, directed=False)
    finite = res[torch.isfinite(res)]
    # each undirected edge appears twice in edge_index
    assert float(finite.sum()) / 2 == pytest.approx(n - num_comp, rel=1e-9)
    assert float(res.max()) <= 1.0 + 1e-9 and float(res.min()) > 0  # R <= 1 on an edge


@pytest.mark.parametrize("solver", ["direct", "cg"])
def test_approx_resistance_is_within_15_percent_of_exact(solver):
    n = 200
    ei = random_graph(n, 0.025, seed=0)
    torch.manual_seed(0)
    pairs = torch.randint(0, n, (2, 300))
    pairs = torch.cat([ei, pairs], dim=1)
    exact = effective_resistance(ei, n, pairs, method="exact")
    approx = effective_resistance(
        ei, n, pairs, method="approx", num_projections=4000, solver=solver, seed=1
    )
    assert torch.equal(torch.isinf(exact), torch.isinf(approx))
    ok = torch.isfinite(exact) & (exact > 0)
    assert int(ok.sum()) > 600
    rel = ((approx[ok] - exact[ok]) / exact[ok]).abs()
    assert float(rel.mean()) < 0.05
    assert float(rel.max()) < 0.15
    # the projections are seeded
    again = effective_resistance(ei, n, pairs[:, :20], method="approx", num_projections=64)
    first = effective_resistance(ei, n, pairs[:, :20], method="approx", num_projections=64)
    torch.testing.assert_close(again, first)


def test_auto_method_picks_exact_for_small_graphs():
    # approx with few projections is visibly noisy; auto must give the exact value
    got = effective_resistance(path(5), 5, torch.tensor([[0], [4]]))
    assert float(got[0]) == pytest.approx(4.0, rel=1e-12)


def test_total_effective_resistance_closed_forms():
    n = 7
    assert total_effective_resistance(path(n), n) == pytest.approx((n**3 - n) / 6)
    assert total_effective_resistance(cycle(n), n) == pytest.approx((n**3 - n) / 12)
    assert total_effective_resistance(complete(n), n) == pytest.approx(n - 1)
    assert math.isinf(total_effective_resistance(path(3), 4))
    assert total_effective_resistance(torch.empty(2, 0, dtype=torch.long), 1) == 0.0
    # equals the sum of all pairwise resistances
    ei = random_graph(30, 0.3, seed=2)
    iu = torch.triu_indices(30, 30, offset=1)
    pairwise = effective_resistance(ei, 30, iu, method="exact")
    assert total_effective_resistance(ei, 30) == pytest.approx(float(pairwise.sum()), rel=1e-9)


def test_resistance_bad_input():
    ei = path(4)
    with pytest.raises(ConfigError, match="method must be"):
        effective_resistance(ei, 4, method="dense")
    with pytest.raises(ConfigError, match="solver must be"):
        effective_resistance(ei, 4, method="approx", solver="amg")
    with pytest.raises(ConfigError, match="num_projections"):
        effective_resistance(ei, 4, method="approx", num_projections=0)
    with pytest.raises(DataError, match="pairs has 1 entries out of range"):
        effective_resistance(ei, 4, torch.tensor([[0], [4]]))
    with pytest.raises(DataError, match=r"pairs must have shape \[2, num_edges\]"):
        effective_resistance(ei, 4, torch.tensor([0, 1]))
    with pytest.raises(DataError, match="edge_index must have an integer dtype"):
        effective_resistance(ei.float(), 4)
    with pytest.raises(DataError, match="num_nodes"):
        effective_resistance(ei, -1)
    with pytest.raises(ConfigError, match="refused above 5000 nodes"):
        effective_resistance(ei, 5001, method="exact")
    with pytest.raises(ConfigError, match="refused above 5000 nodes"):
        total_effective_resistance(ei, 5001)
