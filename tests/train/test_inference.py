"""Evaluation on sampled subgraphs (fathom.train.inference): with fan-out -1 the outputs equal
the eval-mode forward pass on the whole graph (float32, ``atol = rtol = 1e-5``), GCN-type
convs thanks to the one extra hop; fixed fan-outs are reproducible; node_outputs' three
modes agree."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from fathom.config import ModelConfig
from fathom.loaders.csr import to_csr
from fathom.loaders.neighbor import sample_neighbors
from fathom.models.build import build_model
from fathom.models.inference import receptive_field
from fathom.train.inference import node_outputs, sampled_inference

N, IN, OUT, CHUNK = 41, 5, 3, 6
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _graph(undirected: bool = False, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, IN, generator=g)
    ei = torch.randint(0, N - 1, (2, 70 if undirected else 120), generator=g)  # N-1 isolated
    if undirected:
        ei = ei[:, ei[0] != ei[1]]
        ei = torch.cat([ei, ei.flip(0)], dim=1)
    return x, ei


def _model(x: Tensor, edge_index: Tensor, **options: object) -> nn.Module:
    torch.manual_seed(0)
    model = build_model(ModelConfig(**{"hidden": 8, "heads": 2, **options}), IN, OUT)
    model.train()
    with torch.no_grad():
        model(x, edge_index)  # running statistics away from their initial values
    return model.eval()


def _full(model: nn.Module, x: Tensor, edge_index: Tensor) -> Tensor:
    with torch.no_grad():
        return model.eval()(x, edge_index)


CASES = [
    {"conv": "sage", "depth": 3, "norm": "batch", "skip": "res"},
    {"conv": "gat", "depth": 3, "norm": "layer"},
    {"conv": "gin0", "depth": 3, "skip": "dense"},
    {"conv": "gen", "depth": 3, "skip": "res+", "norm": "batch"},
    {"conv": "gcn", "depth": 4, "norm": "batch", "skip": "res"},
    {"conv": "gcn", "depth": 3, "skip": "jk", "jk": "max"},
    {"conv": "gcn2", "depth": 3, "encoder": "linear", "head": "linear"},
    {"conv": "gcn", "depth": 3, "memory": "reversible", "encoder": "linear", "norm": "batch"},
    {"conv": "sage", "depth": 3, "memory": "reversible", "encoder": "linear"},
    {"conv": "mlp", "depth": 2},
    {"arch": "appnp", "depth": 4},
    {"arch": "sgc", "depth": 2},
    {"arch": "sign", "depth": 2},
    {"arch": "incep", "depth": 3},
]


@pytest.mark.parametrize("options", CASES, ids=lambda o: "-".join(map(str, o.values())))
def test_full_fanout_is_exact_on_a_directed_graph(options: dict[str, object]) -> None:
    x, edge_index = _graph()
    model = _model(x, edge_index, **options)
    out = sampled_inference(model, x, edge_index, chunk_size=CHUNK)
    torch.testing.assert_close(out, _full(model, x, edge_index), **TOL)


def test_chebyshev_is_exact_on_an_undirected_graph() -> None:
    x, edge_index = _graph(undirected=True)
    for k in (2, 3):
        model = _model(x, edge_index, conv="cheb", cheb_k=k, depth=3, norm="batch")
        assert receptive_field(model).sampled_hops == 3 * (k - 1) + 1
        out = sampled_inference(model, x, edge_index, chunk_size=CHUNK)
        torch.testing.assert_close(out, _full(model, x, edge_index), **TOL)


def test_gcn_needs_the_extra_hop() -> None:
    """``L`` hops leave the outer nodes' in-degrees short, so GCN's normalisation differs;
    ``L + 1`` hops (what sampled_inference draws) make it exact."""
    x, edge_index = _graph(undirected=True, seed=2)
    model = _model(x, edge_index, depth=2)
    full = _full(model, x, edge_index)
    seeds = torch.arange(0, N, 7)
    csr = to_csr(edge_index, N)
    outs = {}
    for hops in (2, 3):
        sub = sample_neighbors(csr, seeds, [-1] * hops)
        with torch.no_grad():
            outs[hops] = model(x[sub.n_id], sub.edge_index)[: sub.batch_size]
    assert not torch.allclose(outs[2], full[seeds], atol=1e-4)
    torch.testing.assert_close(outs[3], full[seeds], **TOL)
    out = sampled_inference(model, x, edge_index, nodes=seeds, chunk_size=2)
    torch.testing.assert_close(out, full[seeds], **TOL)


def test_fixed_fanouts_are_reproducible_and_subsets_in_order() -> None:
    x, edge_index = _graph()
    model = _model(x, edge_index, conv="sage", depth=3)
    nodes = torch.tensor([30, 2, 17, 5])
    a = sampled_inference(model, x, edge_index, nodes=nodes, fanouts=[2, 1], seed=3)
    b = sampled_inference(model, x, edge_index, nodes=nodes, fanouts=[2, 1], seed=3)
    assert a.shape == (4, OUT) and torch.equal(a, b)
    full = _full(model, x, edge_index)
    exact = sampled_inference(model, x, edge_index, nodes=nodes, chunk_size=3)
    torch.testing.assert_close(exact, full[nodes], **TOL)
    assert not torch.allclose(a, full[nodes], atol=1e-4)  # two in-neighbours are not all


def test_the_mode_is_restored() -> None:
    x, edge_index = _graph()
    model = _model(x, edge_index, conv="sage", depth=2, norm="batch").train()
    before = model.blocks[0].norm.running_mean.clone()
    out = sampled_inference(model, x, edge_index)
    assert model.training and not out.requires_grad
    assert torch.equal(model.blocks[0].norm.running_mean, before)


def test_node_outputs_modes_agree() -> None:
    x, edge_index = _graph()
    model = _model(x, edge_index, depth=3, norm="pair", skip="res")  # graph-wide norm
    full = node_outputs(model, x, edge_index, mode="full")
    torch.testing.assert_close(full, _full(model, x, edge_index), rtol=0, atol=0)
    layerwise = node_outputs(model, x, edge_index, mode="layerwise", chunk_size=CHUNK)
    torch.testing.assert_close(layerwise, full, **TOL)
    model = _model(x, edge_index, depth=3, norm="batch", skip="res")
    full = node_outputs(model, x, edge_index, mode="full")
    nodes = torch.tensor([1, 4, 9])
    sampled = node_outputs(model, x, edge_index, mode="sampled", chunk_size=2, nodes=nodes)
    torch.testing.assert_close(sampled[nodes], full[nodes], **TOL)
    others = torch.ones(N, dtype=torch.bool)
    others[nodes] = False
    assert not sampled[others].any()
    with pytest.raises(ValueError, match="eval mode"):
        node_outputs(model, x, edge_index, mode="bogus")
