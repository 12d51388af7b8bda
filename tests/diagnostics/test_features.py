"""A diagnosis states which features it measured (raw or row-normalised input, which layer)."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn.models import GCN
from torch_geometric.transforms import NormalizeFeatures

from fathom.config import ModelConfig
from fathom.data.synthetic import make_synthetic
from fathom.diagnostics.diagnose import describe_features, diagnose_model, feature_scaling
from fathom.diagnostics.oversmoothing import dirichlet_energy
from fathom.models.build import build_model
from fathom.report.diagnose import diagnosis_markdown, diagnosis_tables, features_line


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]), "binary"),
        (torch.tensor([[0.25, 0.75], [0.0, 0.0], [1.0, 0.0]]), "row-normalised"),
        (torch.tensor([[1.0, -1.0], [-1.0, 1.0]]), "standardised"),
        (torch.tensor([[2.0, 3.5], [0.1, 7.0]]), "raw"),
        (torch.empty(3, 0), "empty"),
    ],
)
def test_feature_scaling(x: torch.Tensor, expected: str) -> None:
    assert feature_scaling(x) == expected


def _data(binary: bool = True):  # type: ignore[no-untyped-def]
    data = make_synthetic("csbm", num_nodes=40, feature_dim=6, num_classes=2, seed=0)
    if binary:  # bag-of-words-like raw features, as Cora's
        data.x = (data.x > 0).float()
    return data


def test_the_same_graph_reads_differently_and_the_diagnosis_says_which() -> None:
    raw = _data()
    normalised = NormalizeFeatures()(raw.clone())
    assert dirichlet_energy(raw.x, raw.edge_index) != pytest.approx(
        dirichlet_energy(normalised.x, normalised.edge_index)
    )
    torch.manual_seed(0)
    model = build_model(ModelConfig(depth=3, hidden=8, dropout=0.0), 6, 2)
    metrics = ("dirichlet_energy",)
    a = diagnose_model(model, raw, metrics=metrics, sensitivity=False)
    b = diagnose_model(model, normalised, metrics=metrics, sensitivity=False)
    assert a["layers"][0]["dirichlet_energy"] != pytest.approx(b["layers"][0]["dirichlet_energy"])
    assert a["features"]["input_scaling"] == "binary"
    assert b["features"]["input_scaling"] == "row-normalised"
    assert a["features"]["input_shape"] == [40, 6]
    assert "raw" in a["features"]["input"] and "row-normalised" in b["features"]["input"]
    for out in (a, b):
        assert {"layers", "energy_decay", "timings_s", "features"} <= set(out)  # keys kept
        assert "layer 0: the model's input" in out["features"]["layers"]
        assert "block k" in out["features"]["layers"] and "logits" in out["features"]["layers"]
        assert out["features"]["description"].startswith("input features 40x6: ")


def test_the_caller_states_the_preprocessing() -> None:
    data = NormalizeFeatures()(_data())
    torch.manual_seed(0)
    model = build_model(ModelConfig(depth=2, hidden=8), 6, 2)
    stated = "row-normalised (NormalizeFeatures), as training uses"
    out = diagnose_model(model, data, metrics=("mad",), sensitivity=False, input_features=stated)
    assert out["features"]["input"] == stated
    assert out["features"]["input_scaling"] == "row-normalised"  # detected all the same


def test_layer_descriptions_follow_the_model() -> None:
    x = torch.rand(5, 3)
    sgc = build_model(ModelConfig(arch="sgc", depth=2), 3, 2)
    assert describe_features(sgc, x)["layers"].startswith("layer k: S^k X")
    pyg = GCN(3, 4, num_layers=2, out_channels=2)
    assert "k-th message-passing module" in describe_features(pyg, x)["layers"]
    linear_head = build_model(ModelConfig(depth=2, hidden=4, head="linear"), 3, 2)
    assert "logits" not in describe_features(linear_head, x)["layers"]


def test_the_report_header_states_the_features() -> None:
    data = _data()
    torch.manual_seed(0)
    model = build_model(ModelConfig(depth=2, hidden=8), 6, 2)
    out = diagnose_model(model, data, metrics=("dirichlet_energy",), sensitivity=False)
    from fathom.diagnostics.diagnose import diagnose_graph

    result = {
        "dataset": {"name": "csbm"},
        **diagnose_graph(data, max_hops=2, curvature=False, resistance=False),
        **out,
    }
    line = features_line(result)
    assert line == f"Features: {out['features']['description']}"
    md = diagnosis_markdown(result)
    assert md.splitlines()[2] == line  # under the title
    per_layer = [t for t in diagnosis_tables(result) if "per layer" in str(t.title)]
    assert per_layer and per_layer[0].caption == line
    # a result without the entry (graph only, or an older JSON) renders as before
    assert features_line({"structure": result["structure"]}) is None
