"""GraphSAINT random-walk sampling and normalisation (fathom.loaders.saint)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import barabasi_albert_graph

from fathom.errors import ConfigError
from fathom.loaders.csr import to_csr
from fathom.loaders.saint import GraphSAINTRandomWalkLoader, random_walk


def _graph(n: int = 40, seed: int = 0) -> Tensor:
    """A Barabási-Albert graph (both directions; hubs, so inclusion probabilities differ)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return barabasi_albert_graph(n, 2)


def _data(edge_index: Tensor, n: int, train: Tensor | None = None, seed: int = 0) -> Data:
    g = torch.Generator().manual_seed(seed)
    return Data(
        x=torch.randn(n, 3, generator=g),
        y=torch.randint(0, 2, (n,), generator=g),
        edge_index=edge_index,
        edge_attr=torch.randn(edge_index.size(1), generator=g),
        train_mask=torch.rand(n, generator=g) < 0.6 if train is None else train,
        num_nodes=n,
    )


def _check_batch(data: Data, batch: Data) -> None:
    """``batch`` is the subgraph of ``data`` induced by ``batch.n_id``, attributes sliced."""
    n_id, e_id = batch.n_id, batch.e_id
    assert torch.equal(n_id, torch.unique(n_id))
    inside = torch.isin(data.edge_index[0], n_id) & torch.isin(data.edge_index[1], n_id)
    assert torch.equal(e_id, inside.nonzero().view(-1))
    assert torch.equal(n_id[batch.edge_index], data.edge_index[:, e_id])  # real edges
    for key in ("x", "y", "train_mask"):
        assert torch.equal(batch[key], data[key][n_id])
    assert torch.equal(batch.edge_attr, data.edge_attr[e_id])


# ---------------------------------------------------------------------------- walks


def test_random_walk_follows_out_edges() -> None:
    edge_index = _graph()
    csr = to_csr(edge_index.flip(0), 40)  # rows: sources
    start = torch.arange(40).repeat(5)
    walk = random_walk(csr.rowptr, csr.col, start, 6, generator=torch.Generator().manual_seed(0))
    assert walk.shape == (200, 7) and torch.equal(walk[:, 0], start)
    edges = set(map(tuple, edge_index.t().tolist()))
    assert all(
        step in edges
        for step in zip(
            walk[:, :-1].reshape(-1).tolist(), walk[:, 1:].reshape(-1).tolist(), strict=True
        )
    )


def test_random_walk_direction_and_dead_ends() -> None:
    # directed path 0 -> 1 -> ... -> 5; node 5 has no out-edge and stays
    edge_index = torch.stack([torch.arange(5), torch.arange(1, 6)])
    csr = to_csr(edge_index.flip(0), 6)
    walk = random_walk(csr.rowptr, csr.col, torch.tensor([0, 3, 5]), 4)
    assert walk.tolist() == [[0, 1, 2, 3, 4], [3, 4, 5, 5, 5], [5, 5, 5, 5, 5]]
    # no edge at all
    walk = random_walk(
        torch.zeros(4, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.tensor([2]), 3
    )
    assert walk.tolist() == [[2, 2, 2, 2]]


def test_loader_walks_along_edge_index_direction() -> None:
    # directed path: a walk from r visits [r, min(r + L, n - 1)] (PyG's direction)
    n, length = 12, 3
    data = Data(edge_index=torch.stack([torch.arange(n - 1), torch.arange(1, n)]), num_nodes=n)
    for batch in GraphSAINTRandomWalkLoader(data, 1, length, num_steps=50, seed=0):
        r = int(batch.n_id[0])
        assert batch.n_id.tolist() == list(range(r, min(r + length, n - 1) + 1))


# ---------------------------------------------------------------------------- batches


def test_batches_are_induced_subgraphs_of_the_walks() -> None:
    data = _data(_graph(), 40)
    roots, length = 4, 3
    loader = GraphSAINTRandomWalkLoader(data, roots, length, num_steps=30, seed=0)
    assert len(loader) == 30
    batches = list(loader)
    assert len(batches) == 30
    for batch in batches:
        assert 1 <= batch.num_nodes <= roots * (length + 1)
        assert "node_norm" not in batch and "edge_norm" not in batch  # sample_coverage=0
        _check_batch(data, batch)


def test_loader_is_seeded() -> None:
    data = _data(_graph(), 40)

    def run(seed: int) -> list[Tensor]:
        loader = GraphSAINTRandomWalkLoader(data, 3, 2, num_steps=5, sample_coverage=5, seed=seed)
        return [b.n_id for b in loader] + [b.node_norm for b in loader] + [loader.edge_norm]

    a, b, c = run(0), run(0), run(1)
    assert all(torch.equal(s, t) for s, t in zip(a, b, strict=True))
    assert not all(s.shape == t.shape and torch.equal(s, t) for s, t in zip(a, c, strict=True))


# ---------------------------------------------------------------------------- normalisation


def test_normalisation_formulas_match_pyg() -> None:
    edge_index = _graph()
    data = _data(edge_index, 40)
    loader = GraphSAINTRandomWalkLoader(data, 3, 2, num_steps=7, sample_coverage=20, seed=0)
    N, M = 40, loader.num_samples
    assert M % 7 == 0 and M > 0  # whole epochs of num_steps batches
    # enough batches: the sampled nodes reach N * sample_coverage
    assert loader.node_count.sum() >= N * 20
    count_v, count_e = loader.node_count, loader.edge_count
    assert torch.allclose(loader.node_norm, M / count_v.clamp(min=0.1) / N)
    expected = (count_v[edge_index[0]] / count_e).clamp(0, 1e4).nan_to_num(0.1)
    assert torch.allclose(loader.edge_norm, expected)
    # C_e of (u, v) equals that of (v, u); C_e <= C_u, so edge_norm >= 1
    key = edge_index[0] * N + edge_index[1]
    rev = torch.searchsorted(key.sort().values, edge_index[1] * N + edge_index[0])
    assert torch.equal(count_e, count_e[key.argsort()][rev])
    assert bool((loader.edge_norm >= 1).all())
    for batch in loader:
        assert torch.equal(batch.node_norm, loader.node_norm[batch.n_id])
        assert torch.equal(batch.edge_norm, loader.edge_norm[batch.e_id])


@pytest.mark.parametrize("all_train", [True, False])
def test_node_norm_makes_the_batch_loss_unbiased(all_train: bool) -> None:
    r"""E[sum_{v in V_s, train} node_norm_v l_v] = sum_{v in train} l_v / N (the train mean
    when every node trains), with hubs and a loss growing with the degree (so an unweighted
    batch mean is biased)."""
    n = 40
    edge_index = _graph(n)
    g = torch.Generator().manual_seed(0)
    train = torch.ones(n, dtype=torch.bool) if all_train else torch.rand(n, generator=g) < 0.6
    deg = torch.bincount(edge_index[0], minlength=n).float()
    loss = torch.rand(n, generator=g) + 2 * deg / deg.max()
    data = _data(edge_index, n, train=train)
    loader = GraphSAINTRandomWalkLoader(data, 3, 2, num_steps=2000, sample_coverage=1000, seed=1)
    est, naive = [], []
    for batch in loader:
        m = batch.train_mask
        est.append((batch.node_norm[m] * loss[batch.n_id][m]).sum())
        naive.append(loss[batch.n_id][m].mean())
    estimate = torch.stack(est).mean()
    target = loss[train].sum() / n
    if all_train:
        assert torch.isclose(target, loss.mean())
    assert abs(float(estimate / target) - 1) < 0.03, (float(estimate), float(target))
    assert float(torch.stack(naive).nanmean() / loss[train].mean()) > 1.1  # without node_norm


# ---------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"num_roots": 0}, "num_roots"),
        ({"walk_length": -1}, "walk_length"),
        ({"num_steps": 0}, "num_steps"),
        ({"sample_coverage": -1}, "sample_coverage"),
        ({"num_roots": 2.5}, "num_roots"),
    ],
)
def test_bad_options(kwargs: dict, option: str) -> None:
    args = {"num_roots": 2, "walk_length": 2} | kwargs
    with pytest.raises(ConfigError, match=option) as info:
        GraphSAINTRandomWalkLoader(_data(_graph(), 40), **args)
    assert "\n" not in str(info.value)


def test_data_with_norms_refused() -> None:
    data = _data(_graph(), 40)
    data.node_norm = torch.ones(40)
    with pytest.raises(ConfigError, match="node_norm"):
        GraphSAINTRandomWalkLoader(data, 2, 2)


@pytest.mark.gpu
def test_loader_on_cuda() -> None:
    data = _data(_graph(), 40)
    cuda = data.to("cuda")
    loader = GraphSAINTRandomWalkLoader(cuda, 4, 3, num_steps=20, sample_coverage=50, seed=0)
    assert loader.node_norm.is_cuda and loader.edge_norm.is_cuda
    batches = list(loader)
    again = list(GraphSAINTRandomWalkLoader(cuda, 4, 3, num_steps=20, sample_coverage=50, seed=0))
    for batch, same in zip(batches, again, strict=True):
        assert batch.x.is_cuda and batch.edge_index.is_cuda and batch.node_norm.is_cuda
        assert torch.equal(batch.n_id, same.n_id)
        assert batch.num_nodes <= 16
        _check_batch(data, batch.to("cpu"))


@pytest.mark.gpu
def test_node_norm_unbiased_on_cuda() -> None:
    n = 40
    edge_index = _graph(n)
    loss = torch.rand(n, generator=torch.Generator().manual_seed(0)).cuda()
    data = _data(edge_index, n, train=torch.ones(n, dtype=torch.bool)).to("cuda")
    loader = GraphSAINTRandomWalkLoader(data, 3, 2, num_steps=2000, sample_coverage=1000, seed=1)
    estimate = torch.stack([(b.node_norm * loss[b.n_id]).sum() for b in loader]).mean()
    assert abs(float(estimate / loss.mean()) - 1) < 0.03
