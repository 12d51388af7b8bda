"""Tests of fathom.data.ogb_datasets and the OGB paths of the node and graph tasks.

Every test writes tiny files in OGB's exact on-disk layout (headerless gzip CSVs with OGB's
column conventions, ``torch.save``'d dicts of NumPy arrays for ogbl-collab's split) into
``tmp_path`` and reads them by name, through the ``ogb`` package's own reader and evaluators.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from fathom.data.ogb_datasets import (
    OGB_DATASETS,
    load_numpy_dict,
    load_ogb_graphs,
    load_ogb_link,
    load_ogb_node,
    ogb_meta,
)
from fathom.errors import ConfigError, DataError, DataNotFoundError
from ogb_fixtures import (
    ATOM_DIMS,
    write_arxiv,
    write_collab,
    write_csv,
    write_molhiv,
    write_products,
    write_proteins,
)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private cache per test; no FATHOM_DATA or XDG_CACHE_HOME leaking in from outside."""
    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FATHOM_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A data dir holding all five datasets in OGB's layout."""
    data = tmp_path / "data"
    for write in (write_arxiv, write_products, write_proteins, write_molhiv, write_collab):
        write(data)
    return data


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Specs agree with the ogb package
# --------------------------------------------------------------------------------------------


def test_the_five_datasets_agree_with_ogbs_master_csv() -> None:
    assert OGB_DATASETS.names() == [
        "ogbg-molhiv", "ogbl-collab", "ogbn-arxiv", "ogbn-products", "ogbn-proteins",
    ]  # fmt: skip
    for name in OGB_DATASETS.names():
        spec, meta = OGB_DATASETS.get(name), ogb_meta(name)
        assert spec.subdir == name.replace("-", "_")
        assert meta["split"] == spec.split_name and meta["eval metric"] == spec.eval_metric
        assert meta["url"] == spec.url
        if "num tasks" in meta:
            assert int(meta["num tasks"]) == spec.num_tasks
        extra = [f for k in ("additional node files", "additional edge files")
                 for f in meta[k].split(",") if f != "None"]  # fmt: skip
        assert all(f"raw/{f}.csv.gz" in spec.raw_files for f in extra)
        assert sum(spec.split_sizes or ()) in (spec.num_graphs or spec.num_nodes, 1285465)
    assert OGB_DATASETS.get("ogbn-proteins").multi_label
    assert not OGB_DATASETS.get("ogbn-arxiv").multi_label


# --------------------------------------------------------------------------------------------
# Loading each dataset by name
# --------------------------------------------------------------------------------------------


def test_arxiv_is_read_as_published_with_the_time_split(root: Path) -> None:
    w = write_arxiv(root)  # same seed: the same files again
    data = load_ogb_node("ogbn-arxiv", root)
    assert data.name == "ogbn-arxiv" and data.num_nodes == 16
    torch.testing.assert_close(data.x, torch.from_numpy(w["x"]), atol=1e-6, rtol=0)
    # directed as published (add_inverse_edge False): OGB's edge list, transposed
    assert data.edge_index.tolist() == w["edges"].T.tolist()
    assert data.y.tolist() == w["y"].tolist() and data.y.dtype == torch.long
    for mask, part in (("train_mask", "train"), ("val_mask", "valid"), ("test_mask", "test")):
        assert data[mask].nonzero().view(-1).tolist() == w[part].tolist()
    assert [int(data[m].sum()) for m in ("train_mask", "val_mask", "test_mask")] == [8, 4, 4]
    assert data.node_year.tolist() == list(range(2000, 2016))


def test_products_gets_ogbs_inverse_edges_and_the_sales_ranking_split(root: Path) -> None:
    w = write_products(root)
    data = load_ogb_node("ogbn-products", root)
    e = w["edges"].T
    assert data.edge_index.shape == (2, 2 * e.shape[1])
    assert data.edge_index[:, 0::2].tolist() == e.tolist()  # OGB's order: (u, v), (v, u), ...
    assert data.edge_index[:, 1::2].tolist() == e[::-1].tolist()
    assert [int(data[m].sum()) for m in ("train_mask", "val_mask", "test_mask")] == [3, 2, 9]


def test_proteins_node_features_are_the_summed_incoming_edge_features(root: Path) -> None:
    w = write_proteins(root)
    data = load_ogb_node("ogbn-proteins", root)
    expected = np.zeros((24, 8))
    for (u, v), f in zip(w["edges"], w["edge_feat"], strict=True):
        expected[u] += f  # each undirected edge comes into both of its ends once
        expected[v] += f
    torch.testing.assert_close(data.x.double(), torch.from_numpy(expected), atol=1e-5, rtol=0)
    assert data.y.shape == (24, 112) and data.y.tolist() == w["y"].tolist()
    assert data.edge_index.shape == (2, 2 * len(w["edges"]))
    assert "edge_attr" not in data and data.node_species.tolist() == [3702] * 24
    assert [int(data[m].sum()) for m in ("train_mask", "val_mask", "test_mask")] == [12, 6, 6]


def test_molhiv_graphs_have_one_hot_atoms_and_the_scaffold_split(root: Path) -> None:
    w = write_molhiv(root)
    graphs, split = load_ogb_graphs("ogbg-molhiv", root)
    assert len(graphs) == 24
    assert {k: v.tolist() for k, v in split.items()} == {
        k: w[k].tolist() for k in ("train", "valid", "test")
    }
    offsets = np.cumsum([0, *ATOM_DIMS[:-1]])
    for g, n, edges, atoms, y in zip(graphs, w["sizes"], w["edges"], w["atoms"], w["y"],
                                     strict=True):  # fmt: skip
        assert g.x.shape == (n, sum(ATOM_DIMS)) == (n, 174)
        assert g.x.sum(1).tolist() == [9.0] * int(n)  # one hot per categorical feature
        assert g.x.nonzero()[:, 1].view(int(n), 9).tolist() == (atoms + offsets).tolist()
        assert g.edge_index[:, 0::2].tolist() == edges.T.tolist()  # local indices, both ways
        assert g.edge_index[:, 1::2].tolist() == edges.T[::-1].tolist()
        assert g.y.tolist() == [int(y)]


def test_a_linear_layer_on_the_one_hot_atoms_is_ogbs_atom_encoder(root: Path) -> None:
    from fathom.data.ogb_datasets import import_ogb

    graphs, _ = load_ogb_graphs("ogbg-molhiv", root)
    torch.manual_seed(0)
    encoder = import_ogb("ogb.graphproppred.mol_encoder").AtomEncoder(emb_dim=7)
    linear = torch.nn.Linear(174, 7, bias=False)
    with torch.no_grad():  # W = [E_1; ...; E_9]^T: a row of the one-hot picks one row per table
        linear.weight.copy_(torch.cat([e.weight for e in encoder.atom_embedding_list]).t())
    for g in graphs[:5]:
        atoms = g.x.nonzero()[:, 1].view(g.num_nodes, 9) - torch.tensor(
            np.cumsum([0, *ATOM_DIMS[:-1]])
        )
        torch.testing.assert_close(linear(g.x), encoder(atoms))


def test_collab_carries_its_official_split_edges(root: Path) -> None:
    w = write_collab(root)
    data = load_ogb_link("ogbl-collab", root)
    assert "y" not in data and "train_mask" not in data and data.name == "ogbl-collab"
    train = w["train"].T
    assert data.edge_index[:, 0::2].tolist() == train.tolist()
    assert data.edge_index[:, 1::2].tolist() == train[::-1].tolist()
    # edge attributes aligned with edge_index (each edge's value twice, OGB's order)
    assert data.edge_weight.tolist() == np.repeat(w["weight"], 2).astype(float).tolist()
    assert data.edge_year.tolist() == np.repeat(w["year"], 2).tolist()
    assert data.edge_weight.dtype == torch.float32 and data.edge_year.dtype == torch.long
    s = data.split_edges
    assert sorted(s) == sorted([
        "train", "valid", "test", "valid_neg", "test_neg", "train_weight", "valid_weight",
        "test_weight", "train_year", "valid_year", "test_year",
    ])  # fmt: skip
    for part in ("train", "valid", "test"):
        assert s[part].dtype == torch.long and s[part].tolist() == w[part].T.tolist()
        assert s[f"{part}_weight"].shape == s[f"{part}_year"].shape == (w[part].shape[0],)
    assert s["valid_neg"].tolist() == w["valid_neg"].T.tolist()
    assert s["test_neg"].shape == (2, 30)
    assert s["train_year"].tolist() == w["year"].tolist()


def test_load_numpy_dict_reads_numpy1_files_and_refuses_anything_else(tmp_path: Path) -> None:
    arrays = {"edge": np.arange(6).reshape(3, 2), "weight": np.ones(3, dtype=np.float32)}
    path = tmp_path / "old.pt"
    torch.save(arrays, path, _use_new_zipfile_serialization=False)
    # as saved by NumPy 1 (the published files): numpy.core instead of numpy._core
    path.write_bytes(path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    loaded = load_numpy_dict(path)
    assert loaded["edge"].tolist() == arrays["edge"].tolist()
    assert loaded["weight"].dtype == np.float32

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[Callable[..., object], tuple[str, str]]:
            return (os.rename, (str(path), str(marker)))

    evil = tmp_path / "evil.pt"
    torch.save({"edge": Payload()}, evil)
    with pytest.raises(DataError, match=r"refusing to load .*evil\.pt.*rename"):
        load_numpy_dict(evil)
    assert path.exists() and not marker.exists()  # nothing in the file ran
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(DataError, match="holds a list"):
        load_numpy_dict(tmp_path / "list.pt")


def test_the_wrong_kind_of_ogb_dataset_is_refused(root: Path) -> None:
    with pytest.raises(ConfigError, match="link-prediction dataset"):
        load_ogb_node("ogbl-collab", root)
    with pytest.raises(ConfigError, match="ogbn-nope"):
        load_ogb_node("ogbn-nope", root)


# --------------------------------------------------------------------------------------------
# Where files are looked for; the parsed copy
# --------------------------------------------------------------------------------------------


def test_missing_data_names_every_place_and_what_to_put_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FATHOM_DATA", str(tmp_path / "shared"))
    write_arxiv(tmp_path / "partial")
    (tmp_path / "partial" / "ogbn_arxiv" / "raw" / "node_year.csv.gz").unlink()
    with pytest.raises(DataNotFoundError) as info:
        load_ogb_node("ogbn-arxiv", tmp_path / "partial")
    message = str(info.value)
    assert "\n" not in message
    assert f"data dir {tmp_path / 'partial' / 'ogbn_arxiv'} (missing raw/node_year.csv.gz)" in (
        message
    )
    assert f"FATHOM_DATA {tmp_path}" not in message  # an explicit data dir is the only place looked
    with pytest.raises(DataNotFoundError) as info:
        load_ogb_node("ogbn-arxiv")
    message = str(info.value)
    assert f"FATHOM_DATA {tmp_path / 'shared' / 'ogbn_arxiv'} (no raw files)" in message
    assert f"cache {tmp_path / 'cache' / 'datasets' / 'ogbn_arxiv'}" in message
    assert "--data-dir" in message and "ogbn_arxiv/raw/edge.csv.gz" in message
    assert "ogbn_arxiv/split/time/test.csv.gz" in message
    assert "http://snap.stanford.edu/ogb/data/nodeproppred/arxiv.zip" in message
    assert "does not download" in message


def test_files_are_found_in_fathom_data_then_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_products(tmp_path / "shared")
    monkeypatch.setenv("FATHOM_DATA", str(tmp_path / "shared"))
    assert load_ogb_node("ogbn-products").num_nodes == 14
    write_products(tmp_path / "cache" / "datasets", n=9)
    monkeypatch.delenv("FATHOM_DATA")
    assert load_ogb_node("ogbn-products").num_nodes == 9


def test_the_parsed_copy_is_reused_bound_to_the_files_and_the_data_dir_untouched(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fathom.data.ogb_datasets as O

    before = _snapshot(root)
    first = load_ogb_node("ogbn-proteins", root)
    parsed = tmp_path / "cache" / "datasets" / "ogbn_proteins" / "processed" / O.PARSED_FILE
    assert parsed.is_file()
    with np.load(parsed, allow_pickle=False) as npz:  # plain arrays, and the marker
        marker = json.loads(str(npz["__marker__"]))
    assert marker["dataset"] == "ogbn-proteins"
    assert set(marker["files"]) == set(OGB_DATASETS.get("ogbn-proteins").raw_files)

    calls = []
    real_parse = O._parse
    monkeypatch.setattr(O, "_parse", lambda *a: calls.append(a) or real_parse(*a))
    again = load_ogb_node("ogbn-proteins", root)
    assert calls == []  # read from the parsed copy
    assert _snapshot(root) == before  # nothing in the data dir was written, renamed or added
    torch.testing.assert_close(again.x, first.x)
    assert again.y.tolist() == first.y.tolist()

    write_proteins(root, seed=5)  # new contents: the copy no longer matches
    changed = load_ogb_node("ogbn-proteins", root)
    assert len(calls) == 1 and not torch.equal(changed.x, first.x)

    parsed.write_bytes(b"not a zip")  # a damaged copy is parsed again
    load_ogb_node("ogbn-proteins", root)
    assert len(calls) == 2

    # A copy with its marker intact but an array header claiming terabytes is parsed again,
    # never allocated.
    import io
    import zipfile

    with zipfile.ZipFile(parsed) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    huge = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        huge, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    members[next(n for n in members if n != "__marker__.npy")] = huge.getvalue()
    with zipfile.ZipFile(parsed, "w") as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    load_ogb_node("ogbn-proteins", root)
    assert len(calls) == 3
    assert not list(parsed.parent.glob(".*.tmp"))  # no temporary file left behind
    assert not list((tmp_path / "cache" / "datasets" / ".staging").iterdir())


def test_a_read_only_data_dir_is_enough(root: Path) -> None:
    for p in root.rglob("*"):
        p.chmod(0o555 if p.is_dir() else 0o444)
    root.chmod(0o555)
    try:
        assert load_ogb_node("ogbn-arxiv", root).num_nodes == 16
        assert len(load_ogb_graphs("ogbg-molhiv", root)[0]) == 24
    finally:
        for p in [root, *root.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_an_inconsistent_file_is_a_one_line_data_error(root: Path) -> None:
    write_csv(root / "ogbn_arxiv" / "split" / "time" / "test.csv.gz", np.array([3, 99]))
    with pytest.raises(DataError, match=r"test.csv.gz: index 99 is outside \[0, 16\)"):
        load_ogb_node("ogbn-arxiv", root)
    write_csv(root / "ogbg_molhiv" / "raw" / "graph-label.csv.gz", np.arange(3))
    with pytest.raises(DataError, match="3 labels for 24 graphs"):
        load_ogb_graphs("ogbg-molhiv", root)


# --------------------------------------------------------------------------------------------
# The official evaluators
# --------------------------------------------------------------------------------------------


def test_the_evaluator_wraps_ogbs_for_the_reported_metric() -> None:
    from sklearn.metrics import roc_auc_score

    from fathom.train.evaluators import OGBEvaluator, metric_name, ogb_evaluator
    from fathom.train.metrics import hits_at_k

    assert ogb_evaluator("cora") is None
    got = {n: (e.metric, e.key) for n in OGB_DATASETS.names() if (e := ogb_evaluator(n))}
    assert got == {
        "ogbn-arxiv": ("acc", "acc"), "ogbn-products": ("acc", "acc"),
        "ogbn-proteins": ("rocauc", "auc"), "ogbg-molhiv": ("rocauc", "auc"),
        "ogbl-collab": ("hits@50", "hits"),
    }  # fmt: skip
    assert metric_name("hits@100") == "hits"

    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (40, 112), generator=gen)
    y[:, 5] = 0  # a task without positives is left out of the mean, as OGB does
    scores = torch.randn(40, 112, generator=gen)
    expected = np.mean([roc_auc_score(y[:, t], scores[:, t]) for t in range(112) if t != 5])
    proteins = OGBEvaluator("ogbn-proteins")
    assert proteins.num_tasks == 112
    assert proteins.score(y, scores) == pytest.approx(expected)
    half = scores.to(torch.bfloat16)  # NumPy has no bfloat16: scored as float32
    rounded = [roc_auc_score(y[:, t], half[:, t].float()) for t in range(112) if t != 5]
    assert proteins.score(y, half) == pytest.approx(np.mean(rounded))
    with pytest.raises(DataError, match="ogbn-proteins cannot score rocauc"):
        proteins.score(torch.zeros(4, 112, dtype=torch.long), torch.randn(4, 112))

    labels, pred = torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2])
    assert OGBEvaluator("ogbn-arxiv").score(labels, pred) == 0.75

    pos, neg = torch.randn(30, generator=gen), torch.randn(200, generator=gen)
    collab = OGBEvaluator("ogbl-collab")
    assert collab.score_links(pos, neg) == hits_at_k(pos, neg, 50)
    assert collab.score_links(pos + 10, neg) == 1.0


# --------------------------------------------------------------------------------------------
# The node task: accuracy (arxiv, products) and multi-label ROC-AUC (proteins)
# --------------------------------------------------------------------------------------------


def _cfg(name: str, root: Path, task: str = "node", **over: object) -> object:
    import fathom.tasks  # noqa: F401  (registers the tasks and their checks)
    from fathom.config import ExperimentConfig, apply_overrides

    base = {"task": task, "data.name": name, "data.data_dir": str(root), "model.hidden": 8,
            "train.epochs": 2, "train.patience": 0}  # fmt: skip
    return apply_overrides(ExperimentConfig(), {**base, **over})


def test_build_dataset_keeps_ogb_features_and_ogbs_undirected_graphs(root: Path) -> None:
    from fathom.data.build import build_dataset

    products = build_dataset(_cfg("ogbn-products", root).data)  # type: ignore[attr-defined]
    raw = load_ogb_node("ogbn-products", root)
    assert torch.equal(products.edge_index, raw.edge_index)  # not re-sorted by to_undirected
    assert torch.equal(products.x, raw.x)  # not row-normalised
    proteins = build_dataset(_cfg("ogbn-proteins", root).data)  # type: ignore[attr-defined]
    assert torch.equal(proteins.x, load_ogb_node("ogbn-proteins", root).x)  # >= 0, kept as is
    arxiv = build_dataset(_cfg("ogbn-arxiv", root).data)  # type: ignore[attr-defined]
    assert arxiv.edge_index.size(1) == 2 * 32  # symmetrised (to_undirected, the default)
    collab = build_dataset(_cfg("ogbl-collab", root, task="link").data)  # type: ignore[attr-defined]
    assert "split_edges" in collab and torch.equal(collab.x, load_ogb_link("ogbl-collab", root).x)


def test_arxiv_accuracy_comes_from_ogbs_evaluator(root: Path) -> None:
    from fathom.experiments.run import build_task_data, run_experiment
    from fathom.tasks.node import NodeClassification, NodeTask
    from fathom.train.evaluators import OGBEvaluator

    cfg = _cfg("ogbn-arxiv", root, **{"train.epochs": 3})
    data = build_task_data(cfg)  # type: ignore[arg-type]
    objective = NodeTask().objective(cfg, data)  # type: ignore[arg-type]
    assert type(objective) is NodeClassification
    assert isinstance(objective.evaluator, OGBEvaluator) and objective.evaluator.metric == "acc"
    models = []
    result = run_experiment(cfg, data, on_model=lambda seed, m: models.append(m))  # type: ignore[arg-type]
    run = result.runs[0]
    models[0].eval()
    with torch.no_grad():
        pred = models[0](data.x, data.edge_index).argmax(-1)
    for split, mask in (("train", data.train_mask), ("val", data.val_mask),
                        ("test", data.test_mask)):  # fmt: skip
        assert run[f"{split}_acc"] == (pred[mask] == data.y[mask]).double().mean().item()


def test_proteins_trains_multi_label_and_reports_ogbs_roc_auc(root: Path) -> None:
    from sklearn.metrics import roc_auc_score

    from fathom.experiments.run import build_task_data, run_experiment
    from fathom.tasks.node import MultiLabelNodeClassification, NodeTask

    cfg = _cfg("ogbn-proteins", root, **{"train.epochs": 2})
    data = build_task_data(cfg)  # type: ignore[arg-type]
    plan = next(iter(NodeTask().plan(cfg, data)))  # type: ignore[arg-type]
    assert plan.out_channels == 112 and plan.in_channels == 8
    assert isinstance(plan.objective, MultiLabelNodeClassification)

    # the loss: BCE with logits over every task of the training nodes
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 112)

    def model(x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return lin(x)

    mask = data.train_mask
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        lin(data.x)[mask], data.y[mask].float()
    )
    torch.testing.assert_close(plan.objective.loss(model, data), expected)  # type: ignore[arg-type]

    models = []
    result = run_experiment(cfg, data, on_model=lambda seed, m: models.append(m))  # type: ignore[arg-type]
    run = result.runs[0]
    assert "test_acc" not in run and {"train_auc", "val_auc", "test_auc", "test_loss"} <= set(run)
    # val_auc picked the epoch (monitor auto)
    assert run["val_auc"] == max(h["val_auc"] for h in run["history"])
    models[0].eval()
    with torch.no_grad():
        out = models[0](data.x, data.edge_index)
    for split, m in (("val", data.val_mask), ("test", data.test_mask)):
        y, s = data.y[m].numpy(), out[m].numpy()
        tasks = [t for t in range(112) if 0 < y[:, t].sum() < len(y)]
        assert run[f"{split}_auc"] == pytest.approx(
            np.mean([roc_auc_score(y[:, t], s[:, t]) for t in tasks]), abs=1e-6
        )


def test_proteins_trains_one_epoch_from_the_cli_with_random_partitions(
    root: Path, tmp_path: Path
) -> None:
    from fathom.cli import main

    out = tmp_path / "run.json"
    argv = ["train", "--dataset", "ogbn-proteins", "--data-dir", str(root), "--epochs", "1",
            "--hidden", "8", "--loader", "random-partition", "--num-parts", "2",
            "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(out.read_text())
    (run,) = result["runs"]
    assert run["epochs"] == 1 and 0.0 <= run["test_auc"] <= 1.0
    assert result["aggregate"]["test_auc_mean"] == run["test_auc"]
    assert result["dataset"]["num_features"] == 8


@pytest.mark.parametrize(
    ("name", "over", "words"),
    [
        ("ogbn-proteins", {"train.monitor": "val_acc"}, ["train.monitor", "val_acc"]),
        ("ogbn-proteins", {"train.label_smoothing": 0.1}, ["train.label_smoothing", "multi"]),
        ("ogbn-proteins", {"data.inductive": True}, ["data.inductive", "ogbn-proteins"]),
        ("ogbn-arxiv", {"train.monitor": "val_auc"}, ["train.monitor", "val_auc"]),
        ("ogbl-collab", {}, ["task", "'link'", "ogbl-collab"]),
    ],
)
def test_node_task_refuses_what_an_ogb_dataset_does_not_report(
    name: str, over: dict[str, object], words: list[str], root: Path
) -> None:
    with pytest.raises(ConfigError) as info:
        _cfg(name, root, **over)
    assert all(w in str(info.value) for w in words), str(info.value)


# --------------------------------------------------------------------------------------------
# The graph task on molhiv's scaffold split
# --------------------------------------------------------------------------------------------


def test_molhiv_trains_on_the_scaffold_split_with_ogbs_roc_auc(root: Path) -> None:
    from sklearn.metrics import roc_auc_score

    from fathom.data.graph_datasets import OfficialSplit
    from fathom.experiments.run import build_task_data, run_experiment
    from fathom.models.build import build_model
    from fathom.tasks.graph import GraphBinaryClassification, GraphTask
    from fathom.train.loop import fit

    w = write_molhiv(root)
    cfg = _cfg("ogbg-molhiv", root, task="graph",
               **{"model.conv": "gin", "train.batch_size": 8, "train.epochs": 3})  # fmt: skip
    graphs = build_task_data(cfg)  # type: ignore[arg-type]
    assert isinstance(graphs, OfficialSplit) and len(graphs) == 24
    plans = list(GraphTask().plan(cfg, graphs))  # type: ignore[arg-type]
    assert len(plans) == 1  # no cross-validation folds
    (plan,) = plans
    assert isinstance(plan.objective, GraphBinaryClassification)
    assert plan.out_channels == 1 and plan.in_channels == 174
    for part, key in (("train", "train"), ("val", "valid"), ("test", "test")):
        assert [g.y.item() for g in getattr(plan.data, part)] == w["y"][w[key]].tolist()
        assert all(g is graphs[i] for g, i in zip(getattr(plan.data, part), w[key], strict=True))

    # the objective's test_auc is OGB's ROC-AUC of the model's logits on the test graphs
    torch.manual_seed(0)
    model = build_model(cfg.model, 174, 1, head=plan.head)  # type: ignore[attr-defined]
    fitted = fit(model, plan.objective, plan.data, cfg.train)  # type: ignore[attr-defined]
    model.eval()
    with torch.no_grad():
        scores = [model(g.x, g.edge_index, torch.zeros(g.num_nodes, dtype=torch.long)).item()
                  for g in plan.data.test]  # fmt: skip
    labels = [g.y.item() for g in plan.data.test]
    assert fitted.metrics["test_auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)

    result = run_experiment(cfg, graphs)  # type: ignore[arg-type]
    (run,) = result.runs
    assert "fold" not in run and not result.cross_validation
    assert {"val_auc", "test_auc", "test_loss"} <= set(run) and "test_acc" not in run
    assert run["val_auc"] == max(h["val_auc"] for h in run["history"])


def test_graph_task_refuses_folds_and_accuracy_on_molhiv(root: Path) -> None:
    with pytest.raises(ConfigError, match=r"graph\.folds.*official split"):
        _cfg("ogbg-molhiv", root, task="graph", **{"graph.folds": 5})
    with pytest.raises(ConfigError, match=r"train\.monitor"):
        _cfg("ogbg-molhiv", root, task="graph", **{"train.monitor": "val_acc"})
    with pytest.raises(ConfigError, match="val_auc"):
        _cfg("mutag", root, task="graph", **{"train.monitor": "val_auc"})


# --------------------------------------------------------------------------------------------
# The CLI without the data; no network
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--dataset", "ogbn-arxiv"], ["ogbn-arxiv", "not found", "ogbn_arxiv/raw/edge.csv.gz"]),
        (["--task", "graph", "--dataset", "ogbg-molhiv"], ["ogbg_molhiv/split/scaffold"]),
        (["--task", "link", "--dataset", "ogbl-collab"], ["ogbl_collab/split/time/test.pt"]),
        (["--dataset", "ogbg-molhiv"], ["--task", "'graph'", "ogbg-molhiv"]),
    ],
)
def test_cli_without_the_data_is_one_line_and_exit_2(
    argv: list[str], words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fathom.cli import main

    (tmp_path / "empty").mkdir()  # an explicit --data-dir must exist
    code = main(["train", *argv, "--data-dir", str(tmp_path / "empty"), "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("fathom") and all(w in err for w in words), err


_PROBE = r"""
import json, socket, sys, threading
connects, threads = [], []
def refuse(self, *args, **kwargs):
    connects.append(repr(args))
    raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
start = threading.Thread.start
def record(self):
    target = getattr(self, "_target", None)
    threads.append(f"{getattr(target, '__module__', None)}.{getattr(target, '__name__', None)}")
    return start(self)
threading.Thread.start = record
if sys.argv[1] == "fathom":
    import fathom, fathom.cli, fathom.tasks
    imported = "ogb" in sys.modules
    from fathom.data.ogb_datasets import load_ogb_node
    from fathom.train.evaluators import OGBEvaluator
    data = load_ogb_node("ogbn-arxiv", sys.argv[2])
    OGBEvaluator("ogbg-molhiv").score(data.train_mask[:, None].long(), data.x[:, :1])
    import ogb.version
    print(json.dumps({"ogb_at_import": imported, "connects": connects, "threads": threads,
                      "check": ogb.version.check_outdated is None,
                      "outdated": sys.modules.get("outdated", "absent") is not None}))
else:
    import ogb
    print(json.dumps({"connects": connects, "threads": threads}))
"""


def test_no_network_at_import_or_at_run_time(root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path), "FATHOM_CACHE": str(tmp_path / "cache")}

    def probe(mode: str) -> dict[str, object]:
        done = subprocess.run([sys.executable, "-c", _PROBE, mode, str(root)], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    # the probe sees ogb's check when ogb is imported plainly ...
    plain = probe("ogb")
    assert "ogb.version.check" in plain["threads"]  # type: ignore[operator]
    # ... and none through fathom: importing fathom does not even import ogb
    through = probe("fathom")
    assert through["ogb_at_import"] is False
    assert through["connects"] == []
    assert not [t for t in through["threads"] if t.startswith("ogb")]  # type: ignore[union-attr]
    assert through["check"] is True and through["outdated"] is True


def test_fathom_datasets_lists_the_ogb_datasets_and_where_they_are(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fathom.cli import main

    (root / "ogbn_products" / "split" / "sales_ranking" / "test.csv.gz").unlink()
    out = tmp_path / "d.json"
    assert main(["datasets", "--data-dir", str(root), "--json", str(out)]) == 0
    rows = {r["name"]: r for r in json.loads(out.read_text())["ogb_datasets"]}
    assert set(rows) == set(OGB_DATASETS.names())
    assert rows["ogbn-arxiv"]["availability"] == "data dir"
    assert rows["ogbn-arxiv"]["path"] == str(root / "ogbn_arxiv")
    assert rows["ogbn-products"]["availability"] == "missing"  # a split file is missing
    assert rows["ogbg-molhiv"]["graphs"] == 41127 and "graphs" not in rows["ogbn-arxiv"]
    assert {r["split"] for r in rows.values()} == {"official"}
    assert "OGB, official splits" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# The link task on ogbl-collab's published split, Hits@50 from OGB's evaluator
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loader", ["full", "neighbor"])
def test_collab_trains_on_its_published_split_with_ogbs_hits(root: Path, loader: str) -> None:
    from fathom.experiments.run import build_task_data, run_experiment
    from fathom.tasks.link import LinkTask
    from fathom.train.evaluators import OGBEvaluator

    over = {"train.epochs": 3, "link.embedding_dim": 4, "train.loader": loader}
    if loader == "neighbor":
        over.update({"train.fanouts": "3,3", "train.batch_size": 16})
    # more negatives than K = 50, so that OGB's Hits@50 is not 1 by definition
    w = write_collab(root, n=40, num_neg=120)
    cfg = _cfg("ogbl-collab", root, task="link", **over)
    data = build_task_data(cfg)  # type: ignore[arg-type]
    plan = next(iter(LinkTask().plan(cfg, data)))  # type: ignore[arg-type]
    split = plan.objective.split
    assert split.val_pos.tolist() == w["valid"].T.tolist()
    assert split.test_neg.tolist() == w["test_neg"].T.tolist()
    assert torch.equal(split.train_edge_index, data.edge_index)  # OGB's training graph only
    assert split.train_eval_pos.size(1) == split.train_eval_neg.size(1) == len(w["test"])
    assert isinstance(plan.objective.evaluator, OGBEvaluator)
    from fathom.models.build import build_model

    result = run_experiment(cfg, data)  # type: ignore[arg-type]
    assert result.runs[0]["status"] == "done" and 0 <= result.runs[0]["test_hits"] <= 1
    # the reported *_hits is OGB's Hits@50 of the model's scores
    torch.manual_seed(0)
    model = build_model(cfg.model, plan.in_channels, plan.out_channels, plan.head).eval()  # type: ignore[attr-defined]
    metrics = plan.objective.evaluate(model, plan.data)
    evaluator = OGBEvaluator("ogbl-collab")
    with torch.no_grad():
        z = model.encode(data.x, split.train_edge_index)
        for name, (pos, neg) in (("val", (split.val_pos, split.val_neg)),
                                 ("test", (split.test_pos, split.test_neg))):  # fmt: skip
            expected = evaluator.score_links(model.decode(z, pos), model.decode(z, neg))
            assert metrics[f"{name}_hits"] == expected
    assert {metrics["val_hits"], metrics["test_hits"]} != {1.0}


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"link.val_fraction": 0.2}, ["link.val_fraction", "published split"]),
        ({"link.hits_k": 10}, ["link.hits_k", "Hits@50"]),
        ({"task": "node"}, ["task", "'link'"]),
    ],
)
def test_link_task_refuses_what_collab_does_not_take(
    root: Path, over: dict[str, object], words: list[str]
) -> None:
    task = str(over.pop("task", "link"))
    with pytest.raises(ConfigError) as err:
        _cfg("ogbl-collab", root, task=task, **over).validate()  # type: ignore[attr-defined]
    assert all(w in str(err.value) for w in words), str(err.value)
