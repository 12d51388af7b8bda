"""Tests of the OGB presets and the ``ogb`` reproduction suite (fathom.experiments.reproduce).

The presets are loaded, validated and trained for one epoch on tiny files in OGB's exact
layout (tests/ogb_fixtures.py); the suite's cells are checked against the published figures
of presets/references/ogb.yaml. No real OGB data is needed (none is on the test machines).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from fathom.config import (
    apply_overrides,
    config_from_dict,
    config_hash,
    config_to_dict,
    load_config,
)
from fathom.data.ogb_datasets import OGB_DATASETS, find_ogb
from fathom.errors import ConfigError, DataNotFoundError
from fathom.experiments import reproduce as rp
from fathom.experiments.references import load_references
from fathom.experiments.reproduce import Published, build_cells, cap_epochs, check_data
from fathom.experiments.run import run_experiment
from fathom.models.presets import list_presets, load_preset, preset_path, preset_source
from ogb_fixtures import OGB_WRITERS, write_ogb_root, write_proteins

OGB_PRESETS = list(rp.OGB_MODELS)

# The run keys of the OGB presets: a stored reproduction stays valid only while they hold
# (change them only with an intended change of a preset, named in the commit).
PRESET_KEYS = {
    "gcn-arxiv": "dde757fdad199ef8973bfdf6ac395d5b0670c84a1740adc8fc3ef28ec9c8b79d",
    "gcnii-arxiv": "98c45d80be6d4be3198340b8ab5cac4266e2bada11656488e3b64e96e5bed6c1",
    "sage-products": "2b7c5505f660ed8226d2508d5e57ed5788047161432471387d6d950d3f32f9f5",
    "deepergcn-proteins": "be67fce065a61d9e4e42058efe6791252d1be71ca093099b098d605a83de8fc4",
    "revgnn-proteins": "8791b4ec9305d526ce6507ccb72fdc67a2394c5a08146eb82ecf26f56b0fe843",
    "gcn-collab": "f4b07c64c005aefacc09f14f4538e5b1ba1668aed35dd4a1cef2df3c5caa2e61",
    "sage-collab": "9fbec70ae43c15fb5e785e697e4e2f211591807e6cb70b8c9cb3ea275b2ba725",
    "gin-molhiv": "f669d90bfa1e21db249b20c2e2bf362c0a93f6383593367065893b83a840b26d",
}

# model key -> (dataset, metric, metric label, published value)
EXPECTED = {
    "gcn-arxiv": ("ogbn-arxiv", "test_acc", "accuracy", 71.74),
    "gcnii-arxiv": ("ogbn-arxiv", "test_acc", "accuracy", 72.74),
    "sage-products": ("ogbn-products", "test_acc", "accuracy", 78.70),
    "deepergcn-proteins": ("ogbn-proteins", "test_auc", "ROC-AUC", 85.80),
    "revgnn-proteins": ("ogbn-proteins", "test_auc", "ROC-AUC", 87.06),
    "gcn-collab": ("ogbl-collab", "test_hits", "Hits@50", 44.75),
    "sage-collab": ("ogbl-collab", "test_hits", "Hits@50", 48.10),
    "gin-molhiv": ("ogbg-molhiv", "test_auc", "ROC-AUC", 75.58),
}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private cache per test; no FATHOM_DATA or XDG_CACHE_HOME leaking in from outside."""
    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FATHOM_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


# --------------------------------------------------------------------------- presets


def test_the_suite_names_every_ogb_preset_and_every_ogb_dataset() -> None:
    assert set(OGB_PRESETS) == set(PRESET_KEYS) == set(EXPECTED)
    assert set(OGB_PRESETS) <= set(list_presets())
    assert set(rp.OGB) == set(OGB_DATASETS.names())
    assert {load_preset(k).data.name for k in OGB_PRESETS} == set(rp.OGB)


@pytest.mark.parametrize("name", OGB_PRESETS)
def test_ogb_presets_load_validate_and_hash_stably(name: str) -> None:
    cfg = load_preset(name)
    assert cfg.data.name == EXPECTED[name][0]
    # the same key from the file, a second load and a round trip through a dict
    again = load_config(preset_path(name))
    roundtrip = config_from_dict(config_to_dict(cfg)).validate()
    assert config_hash(cfg) == config_hash(again) == config_hash(roundtrip) == PRESET_KEYS[name]
    # each header cites its source and states the official setting and the differences
    lines = preset_path(name).read_text().splitlines()
    text = " ".join(line[1:].strip() for line in lines if line.startswith("#"))
    assert preset_source(name) and "Official setting" in text and "Differences" in text
    assert "verified in the source" in text


@pytest.mark.parametrize(
    ("name", "values"),
    [
        (
            "gcn-arxiv",
            {"task": "node", "model.conv": "gcn", "model.depth": 3, "model.hidden": 256,
             "model.norm": "batch", "model.dropout": 0.5, "model.input_dropout": 0.0,
             "train.lr": 0.01, "train.weight_decay": 0.0, "train.epochs": 500,
             "train.patience": 0, "train.monitor": "val_acc", "train.loader": "full"},
        ),
        (
            "gcnii-arxiv",
            {"model.conv": "gcn2-star", "model.depth": 16, "model.hidden": 256,
             "model.alpha": 0.5, "model.dropout": 0.1, "model.skip": "res",
             "model.norm": "batch", "model.encoder": "linear", "model.head": "linear",
             "train.lr": 0.001, "train.epochs": 1000, "train.patience": 200,
             "train.weight_decay": 0.0},
        ),
        (
            "sage-products",
            {"model.conv": "sage", "model.depth": 3, "model.hidden": 256, "model.dropout": 0.5,
             "train.loader": "neighbor", "train.fanouts": "15,10,5", "train.batch_size": 1024,
             "train.lr": 0.003, "train.epochs": 20, "train.eval_mode": "layerwise"},
        ),
        (
            "deepergcn-proteins",
            {"model.conv": "gen", "model.aggr": "softmax", "model.depth": 112,
             "model.hidden": 64, "model.skip": "res+", "model.norm": "layer",
             "model.dropout": 0.1, "train.loader": "random-partition", "train.num_parts": 10,
             "train.parts_per_batch": 1, "train.lr": 0.01, "train.epochs": 1000,
             "train.monitor": "val_auc"},
        ),
        (
            "revgnn-proteins",
            {"model.conv": "gen", "model.aggr": "max", "model.depth": 1001, "model.hidden": 80,
             "model.groups": 2, "model.memory": "reversible", "model.norm": "layer",
             "model.dropout": 0.1, "train.loader": "random-partition", "train.num_parts": 10,
             "train.lr": 0.001, "train.epochs": 2000, "train.monitor": "val_auc"},
        ),
        (
            "gcn-collab",
            {"task": "link", "model.conv": "gcn", "model.depth": 3, "model.hidden": 256,
             "model.dropout": 0.0, "link.decoder": "mlp", "link.embedding_dim": 256,
             "link.hits_k": 50, "train.batch_size": 65536, "train.lr": 0.001,
             "train.epochs": 200, "train.monitor": "val_hits"},
        ),
        (
            "sage-collab",
            {"task": "link", "model.conv": "sage", "model.depth": 3, "model.hidden": 256,
             "link.decoder": "mlp", "train.lr": 0.001, "train.epochs": 200},
        ),
        (
            "gin-molhiv",
            {"task": "graph", "model.conv": "gin", "model.depth": 5, "model.hidden": 300,
             "model.dropout": 0.5, "model.encoder": "linear", "graph.readout": "mean",
             "train.batch_size": 32, "train.lr": 0.001, "train.epochs": 100,
             "train.monitor": "val_auc"},
        ),
    ],
)  # fmt: skip
def test_ogb_presets_have_the_published_setting(name: str, values: dict[str, Any]) -> None:
    cfg = load_preset(name)
    for key, value in values.items():
        node: Any = cfg
        for part in key.split("."):
            node = getattr(node, part)
        assert node == value, key


@pytest.mark.parametrize("name", OGB_PRESETS)
def test_ogb_presets_train_an_epoch_on_ogb_layout_files(name: str, tmp_path: Path) -> None:
    # what the task's checks accept and the loaders, models and evaluators run, on tiny files
    # (the two deep proteins models at a few layers; their depth is checked above)
    dataset = EXPECTED[name][0]
    root = tmp_path / "data"
    if dataset == "ogbn-proteins":
        write_proteins(root, n=200)  # every one of the 10 random parts gets training nodes
    else:
        OGB_WRITERS[dataset](root)
    overrides: dict[str, Any] = {"train.epochs": 1, "data.data_dir": str(root)}
    if dataset == "ogbn-proteins":
        overrides["model.depth"] = 4
    result = run_experiment(apply_overrides(load_preset(name), overrides))
    (run,) = result.runs
    metric = EXPECTED[name][1]
    assert run["status"] == "done", run
    assert 0.0 <= run[metric] <= 1.0


# --------------------------------------------------------------------------- references


def test_ogb_reference_figures_are_percent_with_their_sources() -> None:
    table = load_references("ogb")
    assert table.unit == "percent"
    figures = {(f.model, f.dataset): f for f in table.figures}
    assert {k: (v[0], v[3]) for k, v in EXPECTED.items()} == {
        m: (d, f.value) for (m, d), f in figures.items()
    }
    for fig in table.figures:
        assert fig.source and "±" in fig.note and "verified" in fig.note
    assert "87.74" in figures["revgnn-proteins", "ogbn-proteins"].note  # the 10-view headline


# --------------------------------------------------------------------------- cells


def test_ogb_cells_map_each_model_to_its_dataset_and_metric() -> None:
    cells = build_cells("ogb", seeds=2)
    assert [(c.dataset, c.key) for c in cells] == [
        (EXPECTED[k][0], k) for ds in rp.OGB for k in rp.OGB_MODELS
        if EXPECTED[k][0] == ds and k != "revgnn-proteins"
    ]  # fmt: skip
    for cell in cells:
        dataset, metric, label, value = EXPECTED[cell.key]
        assert (cell.suite, cell.metric, cell.metric_label) == ("ogb", metric, label)
        assert cell.published.value == value
        assert cell.depth == load_preset(cell.key).model.depth
        assert [(c.seed, c.seeds) for c in cell.configs] == [(0, 1), (1, 1)]
        assert all(c.data.name == dataset for c in cell.configs)
        assert "±" in cell.note  # the published spread travels with the cell
    assert rp.SUITES["ogb"].default_seeds == 10  # OGB's protocol: 10 runs


def test_every_ogb_figure_reaches_its_cell() -> None:
    for fig in load_references("ogb").figures:
        (cell,) = build_cells("ogb", datasets=[fig.dataset], models=[fig.model], seeds=1)
        assert cell.published == Published(fig.value, fig.source)


def test_revgnn_runs_on_request_and_a_model_off_its_dataset_has_no_cell() -> None:
    assert rp.SUITES["ogb"].on_request == ("revgnn-proteins",)
    (cell,) = build_cells("ogb", models=["revgnn-proteins"], seeds=1)
    assert (cell.dataset, cell.depth, cell.model) == ("ogbn-proteins", 1001, "RevGNN-Deep")
    assert "one view" in cell.note
    assert build_cells("ogb", datasets=["ogbn-arxiv"], models=["gin-molhiv"], seeds=1) == []
    other = build_cells("ogb", models=["gcn-arxiv"], depths=[5], seeds=1)
    assert [(c.depth, c.published.value) for c in other] == [(5, None)]
    with pytest.raises(ConfigError, match="--models 'gat-arxiv'"):
        build_cells("ogb", models=["gat-arxiv"])


def test_ogb_metric_follows_each_datasets_evaluator() -> None:
    assert rp.ogb_metric("ogbn-arxiv") == ("test_acc", "accuracy")
    assert rp.ogb_metric("ogbn-proteins") == ("test_auc", "ROC-AUC")
    assert rp.ogb_metric("ogbg-molhiv") == ("test_auc", "ROC-AUC")
    assert rp.ogb_metric("ogbl-collab") == ("test_hits", "Hits@50")


# --------------------------------------------------------------------------- data, epochs


def test_check_data_names_where_it_looked_before_anything_runs(tmp_path: Path) -> None:
    cells = build_cells("ogb", models=["gcn-arxiv", "gin-molhiv"], seeds=1)
    with pytest.raises(DataNotFoundError) as info:
        check_data(cells)
    text = str(info.value)
    assert "\n" not in text and "'ogbn-arxiv' not found" in text
    assert str(tmp_path / "cache") in text and "ogbn_arxiv/raw/edge.csv.gz" in text
    root = write_ogb_root(tmp_path / "data")
    placed = [
        apply_overrides(c, {"data.data_dir": str(root)}) for cell in cells for c in cell.configs
    ]
    check_data([dataclasses.replace(cells[0], configs=tuple(placed))])  # found: nothing raised
    assert find_ogb("ogbl-collab", root) == root / "ogbl_collab"
    check_data(build_cells("planetoid", datasets=["cora"], models=["gcn"], seeds=1))  # not OGB


def test_cap_epochs_shortens_runs_and_says_so() -> None:
    cells = build_cells("ogb", models=["gcn-arxiv", "sage-products"], seeds=2)
    capped = cap_epochs(cells, 30)
    assert [c.configs[0].train.epochs for c in capped] == [30, 20]
    assert capped[0].note.endswith("epochs capped at 30 (the recipe trains 500)")
    assert capped[1] == cells[1]  # 20 epochs: nothing to cap
    assert config_hash(capped[0].configs[0]) != config_hash(cells[0].configs[0])
    with pytest.raises(ConfigError, match="--epochs"):
        cap_epochs(cells, 0)
