"""Layer probes on fathom models, PyG BasicGNNs and hand-made stacks of PyG convs."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn
from torch_geometric.nn import GCNConv
from torch_geometric.nn.models import GCN

from fathom.config import ModelConfig
from fathom.data.synthetic import make_synthetic
from fathom.diagnostics.oversmoothing import (
    dirichlet_energy,
    dominant_subspace_distance,
    effective_rank,
    mad,
)
from fathom.diagnostics.probes import LayerProbe, ProbeGraph, find_layers, probe_layers
from fathom.errors import ConfigError
from fathom.models.build import build_model


@pytest.fixture(scope="module")
def graph():
    return make_synthetic("csbm", num_nodes=60, feature_dim=8, num_classes=3, seed=0)


def test_probe_records_every_layer_of_a_pyg_gcn_unchanged(graph) -> None:
    torch.manual_seed(0)
    model = GCN(graph.num_features, 16, num_layers=4, out_channels=3).eval()
    expected = model(graph.x, graph.edge_index)
    with LayerProbe(model, keep=True) as probe:
        out = model(graph.x, graph.edge_index)
    assert torch.equal(out, expected)
    assert not model._forward_hooks and not model._forward_pre_hooks
    assert all(not conv._forward_hooks for conv in model.convs)
    assert [r["name"] for r in probe.records] == [
        "input",
        "convs.0",
        "convs.1",
        "convs.2",
        "convs.3",
    ]
    assert [r["layer"] for r in probe.records] == [0, 1, 2, 3, 4]
    assert torch.equal(probe.states[-1], out)
    for record, state in zip(probe.records, probe.states, strict=True):
        assert record["dirichlet_energy"] == pytest.approx(
            dirichlet_energy(state, graph.edge_index), rel=1e-5
        )
        assert record["mad"] == pytest.approx(mad(state), abs=1e-6)
        # the probe's Gram matrix and eigensolve are float32
        assert record["effective_rank"] == pytest.approx(effective_rank(state), rel=1e-3)


def test_probe_states_equal_the_conv_outputs(graph) -> None:
    torch.manual_seed(0)
    model = GCN(graph.num_features, 16, num_layers=2, out_channels=3).eval()
    with LayerProbe(model, metrics=(), keep=True) as probe:
        model(graph.x, graph.edge_index)
    h1 = model.convs[0](graph.x, graph.edge_index)
    assert torch.allclose(probe.states[1], h1)
    assert set(probe.records[1]) == {"forward", "layer", "name", "channels"}


def test_probe_finds_fathom_blocks_and_the_conv_head(graph) -> None:
    model = build_model(
        ModelConfig(depth=4, hidden=16, skip="res", norm="pair"), graph.num_features, 3
    )
    names = [n for n, _ in find_layers(model)]
    assert names == ["blocks.0", "blocks.1", "blocks.2", "head"]
    records = probe_layers(model, graph.x, graph.edge_index, "all", y=graph.y)
    assert [r["layer"] for r in records] == [0, 1, 2, 3, 4]
    assert records[-1]["channels"] == 3
    assert 0 < records[1]["class_separation"] < float("inf")
    assert model.training  # probe_layers restores the mode


@pytest.mark.parametrize("conv", ["gcn", "sage"])
def test_probe_takes_each_reversible_block_as_one_layer(graph, conv: str) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(depth=4, hidden=8, conv=conv, skip="res", norm="batch", encoder="linear")
    model = build_model(replace(cfg, memory="reversible", groups=2), graph.num_features, 3)
    names = [n for n, _ in find_layers(model)]
    assert names == ["blocks.0", "blocks.1", "blocks.2", "head"]  # not their groups
    records = probe_layers(model, graph.x, graph.edge_index, "all", y=graph.y)
    assert [r["channels"] for r in records] == [graph.num_features, 8, 8, 8, 3]
    assert all(0 <= r["dirichlet_energy"] < float("inf") for r in records)


def test_probe_on_a_users_stack_and_shared_weights(graph) -> None:
    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = GCNConv(graph.num_features, 8)
            self.shared = GCNConv(8, 8)

        def forward(self, x, edge_index):
            x = self.first(x, edge_index).relu()
            for _ in range(3):
                x = self.shared(x, edge_index).relu()
            return x

    model = Stack()
    records = probe_layers(model, graph.x, graph.edge_index, ("dirichlet_energy",))
    assert [r["name"] for r in records] == ["input", "first", "shared", "shared", "shared"]


def test_probe_streams_without_keeping_states(graph) -> None:
    model = GCN(graph.num_features, 16, num_layers=3, out_channels=3)
    with torch.no_grad(), LayerProbe(model) as probe:
        model(graph.x, graph.edge_index)
        model(graph.x, graph.edge_index)
    assert probe.states == []
    assert len(probe.records) == 8 and [r["forward"] for r in probe.last()] == [1] * 4


def test_probe_takes_edge_index_from_the_call_and_rejects_unknown_metrics(graph) -> None:
    model = GCN(graph.num_features, 8, num_layers=2)
    with pytest.raises(ConfigError, match="unknown metric 'energy'"):
        LayerProbe(model, metrics=("energy",))
    with pytest.raises(ConfigError, match="no message-passing layers"):
        LayerProbe(nn.Linear(3, 3))


def test_deep_plain_gcn_energy_decays_while_residual_pairnorm_does_not(graph) -> None:
    torch.manual_seed(0)
    plain = build_model(ModelConfig(depth=24, hidden=16, dropout=0.0), graph.num_features, 3)
    torch.manual_seed(0)
    remedied = build_model(
        ModelConfig(depth=24, hidden=16, dropout=0.0, norm="pair", skip="res"),
        graph.num_features,
        3,
    )
    e_plain = [r["dirichlet_energy"] for r in probe_layers(plain, graph.x, graph.edge_index)]
    e_rem = [r["dirichlet_energy"] for r in probe_layers(remedied, graph.x, graph.edge_index)]
    assert e_plain[20] < 1e-3 * e_plain[1]
    assert e_rem[20] > 0.1 * e_rem[1]


def test_probe_graph_samples_large_graphs_and_estimates_energy() -> None:
    data = make_synthetic("csbm", num_nodes=400, feature_dim=8, num_classes=2, seed=1)
    exact = dirichlet_energy(data.x, data.edge_index)
    g = ProbeGraph(data.edge_index, data.num_nodes, max_nodes=100, max_edges=data.num_edges // 2)
    assert g.sampled and g.nodes is not None and g.nodes.numel() == 100
    from fathom.diagnostics.layer_metrics import measure_one

    def metric(name, x, graph):
        return measure_one(x, graph, (name,))[name]

    estimate = metric("dirichlet_energy", data.x, g)
    assert estimate == pytest.approx(exact, rel=0.15)
    full = ProbeGraph(data.edge_index, data.num_nodes, max_nodes=None, max_edges=None)
    assert not full.sampled
    assert metric("dirichlet_energy", data.x, full) == pytest.approx(exact, rel=1e-5)
    assert metric("dominant_distance", data.x, full) == pytest.approx(
        dominant_subspace_distance(data.x, data.edge_index), rel=1e-5
    )
    assert metric("dominant_distance", data.x, g) == pytest.approx(
        dominant_subspace_distance(data.x, data.edge_index), rel=0.1
    )
    # A representation collapsed onto the dominant subspace measures 0 even when sampled.
    _, weight = full.basis
    collapsed = weight.float().unsqueeze(1) * torch.tensor([[1.0, -2.0, 3.0]])
    assert metric("dominant_distance", collapsed, g) == pytest.approx(0.0, abs=1e-6)


def test_probe_normalized_energy_matches_the_function(graph) -> None:
    from fathom.diagnostics.oversmoothing import normalized_dirichlet_energy

    model = GCN(graph.num_features, 8, num_layers=2)
    with LayerProbe(model, ("normalized_energy",), keep=True) as probe:
        model(graph.x, graph.edge_index)
    for record, state in zip(probe.records, probe.states, strict=True):
        assert record["normalized_energy"] == pytest.approx(
            normalized_dirichlet_energy(state, graph.edge_index), rel=1e-4
        )


def test_probe_class_separation_matches_the_function(graph) -> None:
    from fathom.diagnostics.oversmoothing import class_separation

    model = GCN(graph.num_features, 8, num_layers=2)
    with LayerProbe(model, ("class_separation", "norm"), y=graph.y, keep=True) as probe:
        model(graph.x, graph.edge_index)
    for record, state in zip(probe.records, probe.states, strict=True):
        assert record["class_separation"] == pytest.approx(
            class_separation(state, graph.y), rel=1e-4
        )
        assert record["norm"] == pytest.approx(float(state.norm(dim=1).mean()), rel=1e-5)


def test_probe_mad_gap_matches_the_function_on_the_same_pairs() -> None:
    from fathom.diagnostics.oversmoothing import mad_gap

    n = 40  # a ring: pairs up to 20 hops apart, so both near and remote pairs exist
    ring = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
    ring = torch.cat([ring, ring.flip(0)], 1)
    x = torch.randn(n, 5, generator=torch.Generator().manual_seed(0))
    model = GCN(5, 8, num_layers=3)
    with LayerProbe(model, ("mad_gap",), keep=True) as probe:
        model(x, ring)
    near, far = probe.graph(n).pairs
    assert near.size(1) > 0 and far.size(1) > 0
    for record, state in zip(probe.records, probe.states, strict=True):
        assert record["mad_gap"] == pytest.approx(mad_gap(state, near, far), abs=1e-5)
