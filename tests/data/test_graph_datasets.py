"""Tests of fathom.data.graph_datasets: TU loading through the data-dir/cache machinery, the
``motifs`` generator, validation and description."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

import fathom.data.datasets as D
from fathom.config import DataConfig, SyntheticConfig
from fathom.data.graph_datasets import (
    GRAPH_DATASETS,
    describe_graph_dataset,
    is_graph_dataset,
    load_graph_dataset,
    motif_graphs,
    validate_graphs,
)
from fathom.errors import ConfigError, DataError, DataNotFoundError


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FATHOM_DATA", raising=False)
    # the fake TU files written here are not the canonical bytes the checksum table knows
    monkeypatch.setattr(D, "known_checksums", lambda: {})
    return tmp_path / "cache"


def _write_tu(root: Path, name: str, node_labels: bool = True) -> Path:
    """A tiny TU-format dataset: graph 1 a triangle (nodes 1-3), graph 2 a path 4-5-6-7,
    graph 3 an edge 8-9; graph labels -1, 1, 1 (TU's MUTAG convention)."""
    raw = root / "TUDataset" / name / "raw"
    raw.mkdir(parents=True)
    pairs = [(1, 2), (2, 3), (3, 1), (4, 5), (5, 6), (6, 7), (8, 9)]
    edges = [e for a, b in pairs for e in ((a, b), (b, a))]
    (raw / f"{name}_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in edges))
    (raw / f"{name}_graph_indicator.txt").write_text("1\n1\n1\n2\n2\n2\n2\n3\n3\n")
    (raw / f"{name}_graph_labels.txt").write_text("-1\n1\n1\n")
    if node_labels:
        (raw / f"{name}_node_labels.txt").write_text("0\n1\n2\n0\n0\n1\n1\n2\n0\n")
        (raw / f"{name}_edge_labels.txt").write_text("0\n" * len(edges))
    return raw


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_fake_tu_dataset_loads_from_the_data_dir_and_processes_only_in_the_cache(
    tmp_path: Path, cache: Path
) -> None:
    data_dir = tmp_path / "data"
    _write_tu(data_dir, "MUTAG")
    before = _tree(data_dir)
    graphs = load_graph_dataset(DataConfig(name="mutag", data_dir=str(data_dir)))
    assert [g.num_nodes for g in graphs] == [3, 4, 2]
    assert [g.num_edges for g in graphs] == [6, 6, 2]
    assert [g.y.tolist() for g in graphs] == [[0], [1], [1]]  # -1 / 1 remapped to 0 / 1
    # One-hot node labels are the features (GIN's input).
    assert graphs[0].x.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert graphs[0].x.dtype == torch.float32
    assert _tree(data_dir) == before  # the data dir is never written to
    assert (cache / "datasets/TUDataset/MUTAG/raw/MUTAG_A.txt").is_file()
    assert (cache / "datasets/TUDataset/MUTAG/processed/fathom-complete.json").is_file()
    # Second load reuses the processed cache and gives the same graphs.
    again = load_graph_dataset(DataConfig(name="mutag", data_dir=str(data_dir)))
    assert all(torch.equal(a.x, b.x) for a, b in zip(graphs, again, strict=True))
    assert describe_graph_dataset(graphs) == {
        "num_graphs": 3,
        "num_classes": 2,
        "num_features": 3,
        "avg_nodes": 3.0,
        "avg_edges": 14 / 3,
        "class_counts": [1, 2],
    }


def test_dataset_without_node_labels_gets_one_hot_degrees(tmp_path: Path, cache: Path) -> None:
    _write_tu(tmp_path / "data", "IMDB-BINARY", node_labels=False)
    graphs = load_graph_dataset(DataConfig(name="imdb-binary", data_dir=str(tmp_path / "data")))
    # Maximum degree 2 (triangle, path middle): features are one-hot degrees 0..2.
    assert graphs[0].x.tolist() == [[0, 0, 1]] * 3
    assert graphs[1].x.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0]]


def test_fathom_data_is_searched_after_the_data_dir(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_tu(tmp_path / "env", "MUTAG")
    monkeypatch.setenv("FATHOM_DATA", str(tmp_path / "env"))
    assert len(load_graph_dataset(DataConfig(name="mutag"))) == 3


def test_checksum_mismatch_is_a_one_line_data_error(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_tu(tmp_path / "data", "MUTAG")
    rel = "TUDataset/MUTAG/raw/MUTAG_A.txt"
    monkeypatch.setattr(D, "known_checksums", lambda: {rel: "0" * 64})
    with pytest.raises(DataError) as info:
        load_graph_dataset(DataConfig(name="mutag", data_dir=str(tmp_path / "data")))
    assert rel in str(info.value) and "0" * 64 in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_dataset_names_every_place_looked_in(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        load_graph_dataset(DataConfig(name="proteins", data_dir=str(tmp_path / "nowhere")))
    assert "nowhere does not exist" in str(info.value)  # an explicit data dir must exist
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError) as info:
        load_graph_dataset(DataConfig(name="proteins", data_dir=str(tmp_path / "empty")))
    text = str(info.value)
    assert "proteins" in text and "data dir" in text and "\n" not in text
    assert "only place looked" in text  # no download, no fallback to FATHOM_DATA or the cache


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        load_graph_dataset(DataConfig(name="cora"))
    assert "'cora'" in str(info.value) and "mutag" in str(info.value)
    assert "motifs" in str(info.value)


def test_is_graph_dataset() -> None:
    assert is_graph_dataset("mutag") and is_graph_dataset("IMDB-BINARY")
    assert is_graph_dataset("motifs")
    assert not is_graph_dataset("cora") and not is_graph_dataset("csbm")
    assert set(GRAPH_DATASETS.names()) == {"mutag", "proteins", "enzymes", "imdb-binary"}


@pytest.mark.dataset
def test_real_mutag_statistics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = os.environ.get("FATHOM_DATA")
    if not root:
        pytest.skip("FATHOM_DATA not set: real-dataset tests need the shared datasets")
    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cache"))
    graphs = load_graph_dataset(DataConfig(name="mutag"))
    info = describe_graph_dataset(graphs)
    assert (info["num_graphs"], info["num_classes"], info["num_features"]) == (188, 2, 7)
    assert info["class_counts"] == [63, 125]
    assert sum(g.num_nodes for g in graphs) == 3371
    assert sum(g.num_edges for g in graphs) == 7442
    assert all(bool((g.x.sum(1) == 1).all()) for g in graphs)  # one-hot atom types


# ------------------------------------------------------------------------------ motifs


def test_motifs_are_seeded_balanced_and_shaped() -> None:
    a = motif_graphs(num_graphs=30, num_classes=3, feature_dim=5, num_nodes=20, seed=1)
    b = motif_graphs(num_graphs=30, num_classes=3, feature_dim=5, num_nodes=20, seed=1)
    c = motif_graphs(num_graphs=30, num_classes=3, feature_dim=5, num_nodes=20, seed=2)
    for g, h in zip(a, b, strict=True):
        assert torch.equal(g.x, h.x) and torch.equal(g.edge_index, h.edge_index)
        assert torch.equal(g.y, h.y)
    assert any(not torch.equal(g.edge_index, h.edge_index) for g, h in zip(a, c, strict=True))
    validate_graphs(a)
    assert describe_graph_dataset(a)["class_counts"] == [10, 10, 10]
    for g in a:
        assert 16 <= g.num_nodes <= 24 and g.x.shape == (g.num_nodes, 5)
        assert bool((g.x.sum(1) == 1).all())
        src, dst = g.edge_index
        assert not bool((src == dst).any())
        # Undirected, and connected as a tree plus motifs: edges >= 2 (n - 1).
        assert g.num_edges >= 2 * (g.num_nodes - 1)
        pairs = set(zip(src.tolist(), dst.tolist(), strict=True))
        assert all((j, i) in pairs for i, j in pairs)


def test_motifs_are_built_from_the_synthetic_config() -> None:
    cfg = DataConfig(
        name="motifs",
        synthetic=SyntheticConfig(num_graphs=12, num_classes=4, feature_dim=3, num_nodes=180),
    )
    graphs = load_graph_dataset(cfg, seed=5)
    info = describe_graph_dataset(graphs)
    assert (info["num_graphs"], info["num_classes"], info["num_features"]) == (12, 4, 3)
    # num_nodes is the total: 15 per graph on average. Class 3 plants 3x3 grids: two copies
    # and a tree node need 19 nodes, so 15 +- 20% is
    # raised to 19 for every class (sizes must not depend on the class).
    assert info["avg_nodes"] == 19.0


def test_mean_features_do_not_reveal_the_class() -> None:
    """A logistic regression on mean node features (an MLP's best input without structure)
    stays near chance on held-out graphs."""
    graphs = motif_graphs(num_graphs=300, num_classes=3, feature_dim=8, num_nodes=20, seed=0)
    x = torch.stack([g.x.mean(0) for g in graphs])
    y = torch.cat([g.y for g in graphs])
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 3)
    opt = torch.optim.Adam(lin.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(x[:200]), y[:200]).backward()
        opt.step()
    acc = (lin(x[200:]).argmax(1) == y[200:]).float().mean().item()
    assert acc < 0.45  # chance is 1/3


def test_motif_parameters_are_checked() -> None:
    with pytest.raises(ConfigError, match="num_classes"):
        motif_graphs(num_classes=8)
    with pytest.raises(ConfigError, match="num_graphs"):
        motif_graphs(num_graphs=2, num_classes=3)
    with pytest.raises(ConfigError, match="feature_dim"):
        motif_graphs(feature_dim=0)


# ------------------------------------------------------------------------------ validation


def _graph(**kw: object) -> Data:
    fields: dict[str, object] = {
        "x": torch.zeros(3, 2),
        "edge_index": torch.tensor([[0, 1], [1, 2]]),
        "y": torch.tensor([1]),
    }
    fields.update(kw)
    return Data(**fields)


@pytest.mark.parametrize(
    ("graphs", "words"),
    [
        ([], ["empty"]),
        ([_graph(), _graph(edge_index=torch.tensor([[0, 3], [1, 2]]))], ["graph 1", "3", "[0, 3)"]),
        ([_graph(edge_index=torch.tensor([[-1], [0]]))], ["graph 0", "-1"]),
        ([_graph(x=torch.tensor([[0.0, float("nan")]] * 3))], ["graph 0", "NaN"]),
        ([_graph(), _graph(x=torch.zeros(3, 4))], ["graph 1", "4 features"]),
        ([_graph(x=torch.zeros(3, 2, dtype=torch.long))], ["graph 0", "float"]),
        ([_graph(y=torch.tensor([0, 1]))], ["graph 0", "one", "[0, 1]"]),
        ([_graph(y=torch.tensor([-1]))], ["graph 0", "[-1]"]),
        ([Data(x=torch.zeros(2, 1), edge_index=torch.zeros(2, 0, dtype=torch.long))], ["y"]),
    ],
)
def test_bad_graphs_raise_one_line_data_errors(graphs: list[Data], words: list[str]) -> None:
    with pytest.raises(DataError) as info:
        validate_graphs(graphs)
    text = str(info.value)
    assert "\n" not in text
    assert all(w in text for w in words), text
