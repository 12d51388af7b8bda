"""The diagnosis runner: energy decay fit (closed form) and the assembled report."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from fathom.config import ModelConfig
from fathom.data.synthetic import make_synthetic
from fathom.diagnostics.diagnose import diagnose_graph, diagnose_model, energy_decay_rate
from fathom.models.build import build_model


def _layers(energies: list[float]) -> list[dict]:
    return [{"layer": i, "dirichlet_energy": e} for i, e in enumerate(energies)]


def test_energy_decay_rate_recovers_an_exact_exponential() -> None:
    # input and output layers are excluded from the fit; hidden layers follow 5 * 0.5^l.
    energies = [100.0] + [5 * 0.5**layer for layer in range(1, 9)] + [1e-9]
    fit = energy_decay_rate(_layers(energies))
    assert fit["rate"] == pytest.approx(math.log(2))
    assert fit["factor_per_layer"] == pytest.approx(0.5)
    assert fit["r2"] == pytest.approx(1.0)
    assert fit["layers_used"] == 8


def test_energy_decay_rate_of_a_level_energy_is_zero_and_skips_zeros() -> None:
    fit = energy_decay_rate(_layers([1.0, 2.0, 2.0, 0.0, 2.0, 2.0, 1.0]))
    assert fit["rate"] == pytest.approx(0.0) and fit["layers_used"] == 4
    assert math.isnan(energy_decay_rate(_layers([1.0, 2.0, 1.0]))["rate"])


def test_diagnose_graph_and_model_on_a_small_graph() -> None:
    data = make_synthetic("csbm", num_nodes=60, feature_dim=6, num_classes=3, seed=0)
    graph = diagnose_graph(data, max_hops=4)
    assert graph["structure"]["num_nodes"] == 60
    assert graph["curvature"]["min"] <= graph["curvature"]["mean"] <= graph["curvature"]["max"]
    assert len(graph["curvature"]["bottlenecks"]) == 10
    assert graph["resistance"]["method"] == "exact" and graph["resistance"]["edge_mean"] > 0
    torch.manual_seed(0)
    model = build_model(ModelConfig(depth=4, hidden=8, dropout=0.0), 6, 3)
    out = diagnose_model(model, data, targets=4)
    assert [r["layer"] for r in out["layers"]] == [0, 1, 2, 3, 4]
    assert "class_separation" in out["layers"][1]
    assert out["sensitivity"]["hops"][0] == 0
    assert out["sensitivity"]["normalized"][0] == pytest.approx(1.0)
    assert not math.isnan(out["energy_decay"]["rate"])


def test_decoupled_models_are_diagnosed_by_propagation_step() -> None:
    from fathom.diagnostics.oversmoothing import dirichlet_energy
    from fathom.models.decoupled import propagated_features

    data = make_synthetic("csbm", num_nodes=60, feature_dim=6, num_classes=3, seed=0)
    model = build_model(ModelConfig(arch="sgc", depth=6), 6, 3)
    out = diagnose_model(model, data, metrics=("dirichlet_energy", "mad"), targets=2)
    hops = propagated_features(data.x, data.edge_index, 6)
    assert [r["name"] for r in out["layers"]] == [f"S^{k} X" for k in range(7)]
    for record, h in zip(out["layers"], hops, strict=True):
        assert record["dirichlet_energy"] == pytest.approx(
            dirichlet_energy(h, data.edge_index), rel=1e-5
        )
    energies = [r["dirichlet_energy"] for r in out["layers"]]
    assert all(b < a for a, b in itertools.pairwise(energies[1:]))  # S smooths
    assert out["energy_decay"]["rate"] > 0 and "sensitivity" in out
