"""The registry of per-layer metrics: every record's batched form equals its pure function."""

from __future__ import annotations

import pytest
import torch

from fathom.diagnostics import oversmoothing as om
from fathom.diagnostics.layer_metrics import ProbeGraph, measure_layers, measure_one
from fathom.diagnostics.metrics import (
    DEFAULT_METRICS,
    LAYER_METRICS,
    METRICS,
    TRAINING_METRICS,
    LayerMetric,
    metric_names,
    metric_records,
    resolve_metrics,
    series_label,
)
from fathom.errors import ConfigError, DataError

# float32 Gram matrix and eigensolve in the batched ranks (the pure functions solve in float64)
REL = {"effective_rank": 1e-3, "numerical_rank": 1e-3}


def _random_graph() -> tuple[torch.Tensor, torch.Tensor, int]:
    """A 30-node ring (pairs up to 15 hops apart: MADGap has remote pairs) beside a random
    10-node component (uneven degrees; a second component for the dominant subspace), with
    random labels over 3 classes, one node unlabelled."""
    gen = torch.Generator().manual_seed(0)
    ring = torch.stack([torch.arange(30), (torch.arange(30) + 1) % 30])
    src, dst = torch.triu_indices(10, 10, offset=1)
    keep = torch.rand(src.numel(), generator=gen) < 0.4
    keep[:9] = True  # node 0 joined to all others: connected
    blob = torch.stack([src[keep], dst[keep]]) + 30
    edges = torch.cat([ring, blob], 1)
    edge_index = torch.cat([edges, edges.flip(0)], 1)
    y = torch.randint(0, 3, (40,), generator=gen)
    y[5] = -1
    return edge_index, y, 40


def _layers(edge_index: torch.Tensor, n: int) -> list[torch.Tensor]:
    """Random features, the same smoothed 4 times, nearly collapsed ones and all zeros."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, 6, generator=gen)
    adj = torch.zeros(n, n).index_put_(tuple(edge_index), torch.ones(edge_index.size(1)))
    walk = (adj + torch.eye(n)) / (adj + torch.eye(n)).sum(1, keepdim=True)
    smooth = torch.linalg.matrix_power(walk, 4) @ x
    collapsed = torch.ones(n, 1) * torch.randn(1, 6, generator=gen)
    collapsed += 1e-2 * torch.randn(n, 6, generator=gen)
    return [x, smooth, collapsed, torch.zeros(n, 6)]


@pytest.fixture(scope="module")
def case() -> tuple[ProbeGraph, dict[str, torch.Tensor], list[torch.Tensor]]:
    edge_index, y, n = _random_graph()
    graph = ProbeGraph(edge_index, n, y=y, max_nodes=None, max_edges=None, max_pairs=None)
    near, far = graph.pairs
    assert near.size(1) > 0 and far.size(1) > 0
    inputs = {
        "edge_index": edge_index,
        "labels": y,
        "neighbor_pairs": near,
        "remote_pairs": far,
    }
    return graph, inputs, _layers(edge_index, n)


@pytest.mark.parametrize("name", metric_names())
def test_batched_form_equals_the_pure_function(name: str, case) -> None:
    graph, inputs, layers = case
    record = LAYER_METRICS.get(name)
    # one metric alone: its layout holds just the parts it declares it gathers
    for x in layers:
        expected = record.compute(x, **inputs)
        got = measure_one(x, graph, (name,))[name]
        assert got == pytest.approx(expected, rel=REL.get(name, 1e-4), abs=1e-6)


def test_every_metric_at_once_on_a_stack_of_layers(case) -> None:
    graph, inputs, layers = case
    names = metric_names()
    index, slices = graph.layout(names, layers[0].device)
    stack = torch.stack([x.index_select(0, index) for x in layers])
    measured = measure_layers(stack, graph, names, slices)
    assert len(measured) == len(layers)
    for x, values in zip(layers, measured, strict=True):
        assert list(values) == list(names)
        for record in metric_records():
            assert values[record.name] == pytest.approx(
                record.compute(x, **inputs), rel=REL.get(record.name, 1e-4), abs=1e-6
            )


def test_the_registry_is_the_one_list_of_metrics() -> None:
    assert tuple(METRICS) == metric_names()
    assert set(LAYER_METRICS) == set(metric_names())
    assert all(METRICS[m.name] == m.description for m in metric_records())
    assert set(DEFAULT_METRICS) <= set(TRAINING_METRICS) <= set(METRICS)
    assert resolve_metrics("all") == metric_names()
    assert resolve_metrics(" mad, norm ") == ("mad", "norm")
    for record in metric_records():
        assert record.function.__name__ in om.__all__
        assert record.label and record.column and record.description
        assert series_label(record.name) == record.label
    assert series_label("train_acc") == "train acc"


def test_unknown_names_and_missing_inputs_are_errors() -> None:
    with pytest.raises(ConfigError, match="unknown metric 'energy'; choose from dirichlet_energy"):
        resolve_metrics("energy")
    with pytest.raises(ConfigError, match="unknown metric 'energy'"):
        LAYER_METRICS.get("energy")
    with pytest.raises(DataError, match="'class_separation' needs labels"):
        LAYER_METRICS.get("class_separation").compute(torch.ones(3, 2))
    with pytest.raises(ValueError, match="unknown input or part 'y'"):
        LayerMetric("m", "m", "m", "m", om.mad, lambda batch: batch.x, needs=("y",))


def test_class_separation_without_labels_is_nan(case) -> None:
    graph, _, layers = case
    unlabelled = ProbeGraph(graph.edge_index, graph.num_nodes, max_nodes=None, max_edges=None)
    value = measure_one(layers[0], unlabelled, ("class_separation",))["class_separation"]
    assert value != value
