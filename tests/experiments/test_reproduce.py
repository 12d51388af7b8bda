"""Tests of fathom.experiments.reproduce: suites, cells, rows read back from a results store.

Cells are built from the shipped presets (no data is loaded); the store tests write fake
records by hand, and the one end-to-end test trains a hand-made cell on a tiny generated graph.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fathom.config import ExperimentConfig, apply_overrides, config_hash, config_to_dict
from fathom.errors import ConfigError
from fathom.experiments import reproduce as rp
from fathom.experiments.references import load_references
from fathom.experiments.reproduce import (
    Cell,
    Published,
    build_cells,
    run_suite,
    suite_rows,
    within_tolerance,
)
from fathom.experiments.store import RunStore

KIPF = "Kipf & Welling, ICLR 2017, Table 2"
DROPEDGE = "Rong et al., DropEdge, ICLR 2020 (DropEdge/DropEdge README, semi-supervised table)"


def _one(cells: list[Cell]) -> Cell:
    assert len(cells) == 1, cells
    return cells[0]


# --------------------------------------------------------------------------- build_cells


def test_subsets_of_datasets_models_and_depths() -> None:
    cells = build_cells("depth", datasets=["cora", "pubmed"], models=["gcn", "jknet"], seeds=1)
    assert [(c.dataset, c.key, c.depth) for c in cells] == [
        (ds, key, d) for ds in ("cora", "pubmed") for key in ("gcn", "jknet") for d in rp.DEPTHS
    ]
    cells = build_cells("depth", datasets=["citeseer"], models=["gcn"], depths=[4, 16], seeds=2)
    assert [(c.dataset, c.model, c.depth, len(c.configs)) for c in cells] == [
        ("citeseer", "GCN", 4, 2),
        ("citeseer", "GCN", 16, 2),
    ]
    for c in cells:
        assert all(cfg.data.name == "citeseer" and cfg.model.depth == c.depth for cfg in c.configs)
    cells = build_cells("planetoid", datasets=["cora"], seeds=1)
    assert [c.key for c in cells] == list(rp.SUITES["planetoid"].models)
    assert "gcnii-star" not in rp.SUITES["planetoid"].models  # on request only
    assert {c.dataset for c in cells} == {"cora"}


def test_expensive_cells_run_only_when_named() -> None:
    assert ("incepgcn", 64) in rp.SUITES["depth"].expensive
    default = build_cells("depth", datasets=["cora"], seeds=1)
    assert ("incepgcn", 64) not in {(c.key, c.depth) for c in default}
    assert ("incepgcn", 32) in {(c.key, c.depth) for c in default}
    assert ("gcn", 64) in {(c.key, c.depth) for c in default}
    models_only = build_cells("depth", datasets=["cora"], models=["incepgcn"], seeds=1)
    assert [c.depth for c in models_only] == [2, 4, 8, 16, 32]
    named = build_cells("depth", datasets=["cora"], models=["incepgcn"], depths=[64], seeds=1)
    assert [(c.key, c.depth) for c in named] == [("incepgcn", 64)]


@pytest.mark.parametrize(
    ("suite", "kwargs"),
    [
        ("planetoid", {"datasets": ["cora", "citeseer"]}),
        ("depth", {"datasets": ["cora"], "models": ["gcn", "gcn-dropedge", "gcnii"]}),
        ("heterophily", {"datasets": ["texas", "actor"]}),
    ],
)
def test_configs_are_single_seed_and_distinct(suite: str, kwargs: dict[str, Any]) -> None:
    cells = build_cells(suite, seeds=3, **kwargs)
    hashes = []
    for cell in cells:
        assert len(cell.configs) == 3
        assert [(c.seed, c.seeds) for c in cell.configs] == [(0, 1), (1, 1), (2, 1)]
        hashes += [config_hash(c) for c in cell.configs]
    assert len(set(hashes)) == len(hashes)


def test_a_run_shared_by_two_suites_has_one_key() -> None:
    # GCNII on Cora at 64 layers is both the planetoid cell and the depth suite's 64-layer
    # point: the same config, so a store runs it once for both
    planetoid = _one(build_cells("planetoid", datasets=["cora"], models=["gcnii"], seeds=2))
    depth = _one(build_cells("depth", datasets=["cora"], models=["gcnii"], depths=[64], seeds=2))
    assert [config_hash(c) for c in planetoid.configs] == [config_hash(c) for c in depth.configs]


def test_planetoid_published_figure_only_at_the_published_depth() -> None:
    cell = _one(build_cells("planetoid", datasets=["cora"], models=["gcn"], seeds=2))
    assert (cell.suite, cell.model, cell.depth) == ("planetoid", "GCN", 2)
    assert cell.published == Published(81.5, KIPF)
    assert cell.configs[0].model.hidden == 16  # the gcn-cora preset
    same = _one(build_cells("planetoid", datasets=["cora"], models=["gcn"], depths=[2], seeds=1))
    assert same.published.value == 81.5
    deeper = _one(build_cells("planetoid", datasets=["cora"], models=["gcn"], depths=[8], seeds=1))
    assert deeper.depth == 8 and deeper.configs[0].model.depth == 8
    assert deeper.published.value is None
    assert "depth 2" in deeper.published.source
    star = _one(build_cells("planetoid", datasets=["pubmed"], models=["gcnii-star"], seeds=1))
    assert (star.model, star.published.value) == ("GCNII*", 80.3)
    gat = _one(build_cells("planetoid", datasets=["pubmed"], models=["gat"], seeds=1))
    assert gat.published.value == 79.0 and "ICLR 2018, Table 2" in gat.published.source


@pytest.mark.parametrize(
    ("model", "dataset", "depth", "value"),
    [
        ("gcn", "cora", 64, 28.7),
        ("gcn", "cora", 2, 81.1),
        ("gcn-dropedge", "pubmed", 32, 77.0),
        ("resgcn-dropedge", "cora", 4, 83.3),
        ("resgcn", "cora", 2, None),  # a dash in the published table
        ("incepgcn", "pubmed", 64, None),
        ("jknet-dropedge", "citeseer", 64, 72.2),
        ("gcnii", "cora", 16, 84.69),
        ("gcnii", "cora", 64, 85.5),
        ("gcnii", "citeseer", 64, None),
        ("pairnorm", "cora", 8, None),
        ("gcn", "cora", 3, None),  # not a depth of the table
    ],
)
def test_depth_cells_carry_the_published_value(
    model: str, dataset: str, depth: int, value: float | None
) -> None:
    cell = _one(build_cells("depth", datasets=[dataset], models=[model], depths=[depth], seeds=1))
    assert (cell.suite, cell.key, cell.dataset, cell.depth) == ("depth", model, dataset, depth)
    assert cell.published.value == value
    assert cell.published.source
    cfg = cell.configs[0]
    assert (cfg.data.name, cfg.model.depth) == (dataset, depth)


def test_depth_cells_models_and_notes() -> None:
    cells = build_cells("depth", datasets=["cora"], depths=[4], seeds=1)
    by_key = {c.key: c for c in cells}
    # the default rows: the DropEdge paper's models (and the other papers' comparisons);
    # fathom's BatchNorm ResGCN only on request
    assert list(by_key) == [k for k in rp.DEPTH_MODELS if k not in rp.DROPEDGE_VARIANTS]
    assert list(rp.DROPEDGE_VARIANTS) == [
        "resgcn-bn",
        "resgcn-bn-dropedge",
        "resgcn-layer",
        "resgcn-layer-dropedge",
    ]
    # ResGCN as the scripts run it: one shortcut around the hidden stack
    assert by_key["resgcn"].configs[0].model.skip_every == 0
    # the published Cora GCN script: --sampling_percent 0.4 keeps 40% of the edges
    assert by_key["gcn-dropedge"].configs[0].model.drop_edge == 0.6
    assert by_key["gcn"].configs[0].model.drop_edge == 0.0
    assert by_key["gcnii"].configs[0].model.conv == "gcn2"
    assert by_key["resgcn-dropedge"].model == "ResGCN + DropEdge"
    # the paper's models have no BatchNorm
    for key in ("gcn", "gcn-dropedge", "resgcn", "resgcn-dropedge", "jknet", "jknet-dropedge"):
        assert by_key[key].configs[0].model.norm == "none", key
    assert by_key["incepgcn-dropedge"].configs[0].model.arch == "incep"
    # each cell says where its setting comes from, and whether at its own depth
    assert by_key["jknet"].note == "setting: published (preset depth-jknet-cora)"
    assert by_key["gcn"].note == (
        "setting: published at depth 2 only (preset depth-gcn-cora); not tuned at this depth"
    )
    assert by_key["resgcn"].note == "setting: fathom default (preset depth-resgcn-cora), not tuned"
    # GCNII's settings are the authors' per dataset, published at one depth each
    assert by_key["gcnii"].note == (
        "setting: published at depth 64 only (preset gcnii-cora); not tuned at this depth"
    )
    assert by_key["resgcn-dropedge"].published.source == DROPEDGE
    assert by_key["incepgcn-dropedge"].published.value == 82.9
    assert by_key["gcnii"].published.source == rp.NOT_FOUND
    assert by_key["gcnii"].published.value is None  # GCNII at 4 layers: not published


def test_depth_fathom_batchnorm_variants_on_request() -> None:
    cells = build_cells(
        "depth", datasets=["cora"], models=["resgcn-bn", "resgcn-bn-dropedge"], depths=[8]
    )
    plain, dropped = cells
    assert (plain.model, plain.configs[0].model.norm) == ("ResGCN + BatchNorm", "batch")
    assert "BatchNorm" in plain.note and "fathom default" in plain.note
    # compared with the paper's ResGCN rows
    assert (plain.published.value, dropped.published.value) == (75.6, 82.8)
    assert dropped.configs[0].model.drop_edge == 0.3


@pytest.mark.parametrize("dataset", ["cora", "pubmed"])
def test_depth_per_layer_shortcut_variants_on_request(dataset: str) -> None:
    cells = build_cells(
        "depth",
        datasets=[dataset],
        models=["resgcn", "resgcn-layer", "resgcn-layer-dropedge", "resgcn-dropedge"],
        depths=[16],
        seeds=2,
    )
    block, layer, layer_dropped, block_dropped = cells
    assert layer.model == "ResGCN, per-layer shortcuts"
    assert "every hidden layer" in layer.note and f"preset depth-resgcn-{dataset}" in layer.note
    # the same preset, only the shortcut's span differs; compared with the paper's rows
    assert layer.configs[0].model.skip_every == 1
    assert (
        replace(layer.configs[1], model=replace(layer.configs[1].model, skip_every=0))
        == (block.configs[1])
    )
    assert layer_dropped.configs[0].model.drop_edge == block_dropped.configs[0].model.drop_edge > 0
    assert (layer.published, layer_dropped.published) == (block.published, block_dropped.published)
    # distinct runs in the store
    assert config_hash(layer.configs[0]) != config_hash(block.configs[0])


@pytest.mark.parametrize("dataset", ["cora", "citeseer", "pubmed"])
def test_depth_suite_runs_each_dataset_with_its_own_presets(dataset: str) -> None:
    cells = build_cells("depth", datasets=[dataset], models=["gcn-dropedge", "jknet"], seeds=1)
    assert {c.dataset for c in cells} == {dataset}
    for cell in cells:
        assert cell.configs[0].data.name == dataset
        assert f"depth-{cell.key}-{dataset}" in cell.note
    # every published figure of the dataset has a cell of the default grid (or a listed
    # expensive one): CiteSeer and PubMed are in the suite as Cora is
    grid = {(c.key, c.depth) for c in build_cells("depth", datasets=[dataset], seeds=1)}
    grid |= set(rp.SUITES["depth"].expensive)
    for figure in load_references("depth").figures:
        if figure.dataset == dataset and figure.value is not None:
            assert (figure.model, figure.depth) in grid, figure


@pytest.mark.parametrize("suite", ["planetoid", "depth", "heterophily", "tu", "gae", "deepgcn"])
def test_every_published_figure_reaches_its_cell(suite: str) -> None:
    # the cells read their figures from presets/references/<suite>.yaml, none from code
    for fig in load_references(suite).figures:
        models = ["gin", "gin-paper"] if suite == "tu" else [fig.model]
        depths = None if fig.depth is None else [fig.depth]
        cells = build_cells(suite, datasets=[fig.dataset], models=models, depths=depths, seeds=1)
        assert [c.published for c in cells] == [Published(fig.value, fig.source)] * len(models)


def test_heterophily_cells_use_split_i_with_seed_i() -> None:
    cells = build_cells("heterophily", datasets=["cornell"], seeds=4)
    assert [c.key for c in cells] == ["gcn", "gcnii", "gcnii-star", "mlp"]
    for cell in cells:
        assert [(c.data.split, c.seed, c.seeds) for c in cell.configs] == [
            (i, i, 1) for i in range(4)
        ]
        assert all(c.data.name == "cornell" for c in cell.configs)
    gcnii, star = cells[1], cells[2]
    # the README's figure is the better variant's: compared on GCNII*'s row
    assert gcnii.published.value is None and "GCNII* row" in gcnii.published.source
    assert star.published.value == 76.49
    assert star.configs[0].model.conv == "gcn2-star-code" and gcnii.configs[0].model.conv == "gcn2"
    for cell in (gcnii, star):
        assert cell.depth == cell.configs[0].model.depth == 16
        # the authors' graph: directed, aggregation over the nodes a node's edges point to
        assert all(not c.data.to_undirected and c.data.reverse_edges for c in cell.configs)
    assert cells[0].published.value is None  # GCN on cornell: no figure located
    ten = build_cells("heterophily", datasets=["texas"], models=["gcnii"], seeds=10)
    assert len(_one(ten).configs) == 10
    other = build_cells("heterophily", datasets=["texas"], models=["gcnii"], depths=[3], seeds=1)
    assert _one(other).depth == 3 and _one(other).published.value is None


@pytest.mark.parametrize(
    ("suite", "kwargs", "words"),
    [
        ("nosuch", {}, ["'nosuch'", "planetoid", "depth", "heterophily"]),
        ("depth", {"models": ["nosuch"]}, ["--models", "'nosuch'", "gcn-dropedge", "gcnii"]),
        ("planetoid", {"datasets": ["texas"]}, ["--datasets", "'texas'", "cora, citeseer"]),
        ("heterophily", {"datasets": ["cora"]}, ["--datasets", "cornell", "actor"]),
        ("heterophily", {"models": ["gat"]}, ["--models", "gcn, gcnii, gcnii-star, mlp"]),
        ("heterophily", {"seeds": 11}, ["--seeds", "10", "11"]),
        ("planetoid", {"seeds": 0}, ["--seeds", ">= 1"]),
        ("depth", {"depths": [4, 0]}, ["--depths", ">= 1"]),
    ],
)
def test_bad_selections_raise_one_line_config_errors(
    suite: str, kwargs: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        build_cells(suite, **kwargs)
    text = str(info.value)
    assert "\n" not in text
    for word in words:
        assert word in text, text


# --------------------------------------------------------------------------- suite_rows


def _fill(store: Path, cfg: ExperimentConfig, status: str, acc: float | None, **kw: Any) -> None:
    """Register ``cfg`` and finish it as ``status`` with test accuracy ``acc`` (a fraction)."""
    key = config_hash(cfg)
    with RunStore(store) as st:
        st.register("reproduce-fake", [(key, config_to_dict(cfg))])
        assert st.claim(key)
        metrics = {} if acc is None else {"test_acc": acc, "epochs": kw.get("epochs", 10)}
        st.finish(key, status=status, metrics=metrics, history=[], time_s=kw.get("time_s", 1.0))


@pytest.fixture
def filled(tmp_path: Path) -> tuple[list[Cell], Path]:
    """Four planetoid cells (3 seeds each) and a store holding fake results for them."""
    cells = build_cells("planetoid", datasets=["cora"], models=["gcn", "gat", "sgc"], seeds=3)
    # GCN at 8 layers: no published figure (the planetoid table is at depth 2)
    cells += build_cells("planetoid", datasets=["cora"], models=["gcn"], depths=[8], seeds=3)
    store = tmp_path / "fake.db"
    gcn, gat, _sgc, deeper = cells
    for cfg, acc, epochs in zip(gcn.configs, (0.80, 0.82, 0.84), (10, 20, 30), strict=True):
        _fill(store, cfg, "done", acc, epochs=epochs, time_s=epochs / 10)
    _fill(store, gat.configs[0], "done", 0.70)
    _fill(store, gat.configs[1], "failed", None)  # gat.configs[2]: never run
    # sgc: nothing stored
    _fill(store, deeper.configs[0], "done", 0.75)
    _fill(store, deeper.configs[1], "diverged", 0.25)
    _fill(store, deeper.configs[2], "done", 0.80)
    return cells, store


def test_suite_rows_read_the_store(filled: tuple[list[Cell], Path]) -> None:
    cells, store = filled
    gcn, gat, sgc, deeper = suite_rows(cells, store)

    assert (gcn["suite"], gcn["model"], gcn["model_key"], gcn["dataset"], gcn["depth"]) == (
        "planetoid",
        "GCN",
        "gcn",
        "cora",
        2,
    )
    assert gcn["ours_mean"] == pytest.approx(82.0)
    assert gcn["ours_std"] == pytest.approx(statistics.pstdev([80.0, 82.0, 84.0]))
    assert (gcn["n"], gcn["n_planned"], gcn["n_failed"], gcn["n_diverged"]) == (3, 3, 0, 0)
    assert gcn["published"] == 81.5
    assert gcn["diff"] == pytest.approx(0.5)
    assert gcn["source"] == KIPF
    assert gcn["epochs_mean"] == pytest.approx(20.0)
    assert gcn["time_s_mean"] == pytest.approx(2.0)
    assert within_tolerance(gcn) is True

    assert gat["ours_mean"] == pytest.approx(70.0) and gat["ours_std"] == 0.0
    assert (gat["n"], gat["n_planned"], gat["n_failed"]) == (1, 3, 1)
    assert gat["diff"] == pytest.approx(70.0 - 83.0)
    assert within_tolerance(gat) is False
    assert within_tolerance(gat, tolerance=20.0) is True

    assert sgc["ours_mean"] is None and sgc["ours_std"] is None
    assert (sgc["n"], sgc["n_failed"], sgc["diff"], sgc["published"]) == (0, 0, None, 81.0)
    assert within_tolerance(sgc) is None

    # a diverged run counts (its accuracy too); no published figure: no diff
    assert deeper["n"] == 3 and deeper["n_diverged"] == 1
    assert deeper["ours_mean"] == pytest.approx(60.0)
    assert (deeper["published"], deeper["diff"]) == (None, None)
    assert within_tolerance(deeper) is None


def test_within_tolerance_boundaries() -> None:
    assert within_tolerance({"diff": 3.0}) is True
    assert within_tolerance({"diff": -3.0}) is True
    assert within_tolerance({"diff": -3.01}) is False
    assert within_tolerance({"diff": 0.0}) is True
    assert within_tolerance({"diff": None}) is None
    assert within_tolerance({"diff": 1.0}, tolerance=0.5) is False
    assert rp.TOLERANCE == 3.0


# --------------------------------------------------------------------------- run_suite


def _tiny_cell(depth: int, seeds: int = 2) -> Cell:
    base = apply_overrides(
        ExperimentConfig(),
        {
            "data.name": "csbm",
            "data.synthetic.num_nodes": 60,
            "data.synthetic.feature_dim": 8,
            "model.hidden": 8,
            "model.depth": depth,
            "train.epochs": 3,
            "train.patience": 0,
        },
    )
    configs = tuple(apply_overrides(base, {"seed": s, "seeds": 1}) for s in range(seeds))
    return Cell("tiny", "GCN", "gcn", "csbm", depth, configs, Published(50.0, "made up"))


def test_run_suite_trains_what_the_store_lacks_then_resumes(tmp_path: Path) -> None:
    cells = [_tiny_cell(1), _tiny_cell(2)]
    store = tmp_path / "r.db"
    seen: list[tuple[int, int]] = []
    summary = run_suite(
        cells,
        store,
        name="reproduce-tiny",
        threads=1,
        on_run_end=lambda d, t, r: seen.append((d, t)),
    )
    assert (summary.total, summary.already_done, summary.ran) == (4, 0, 4)
    assert summary.counts["done"] == 4 and not summary.interrupted
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    with RunStore(store) as st:
        runs = st.runs(sweep="reproduce-tiny")
    assert {r["run_key"] for r in runs} == {config_hash(c) for cell in cells for c in cell.configs}
    assert all(r["status"] == "done" and r["attempts"] == 1 for r in runs)

    rows = suite_rows(cells, store)
    for row in rows:
        assert row["n"] == 2 and row["n_failed"] == 0
        assert 0.0 <= row["ours_mean"] <= 100.0
        assert math.isclose(row["diff"], row["ours_mean"] - 50.0)
        assert row["epochs_mean"] == 3.0

    again = run_suite(cells, store, name="reproduce-tiny", threads=1)
    assert (again.total, again.already_done, again.ran) == (4, 4, 0)
    with RunStore(store) as st:
        assert [r["attempts"] for r in st.runs(sweep="reproduce-tiny")] == [1] * 4


# --------------------------------------------------------------------------- tu and gae suites


def test_tu_cells_share_one_cross_validation_per_dataset() -> None:
    cells = build_cells("tu")
    assert [(c.dataset, c.key, c.metric) for c in cells] == [
        ("mutag", "gin", "test_acc"),
        ("mutag", "gin-paper", "test_acc_paper"),
        ("proteins", "gin", "test_acc"),
        ("proteins", "gin-paper", "test_acc_paper"),
    ]
    assert [c.published.value for c in cells] == [89.4, 89.4, 76.2, 76.2]
    mutag, mutag_paper = cells[:2]
    assert len(mutag.configs) == 1  # one seed: one whole 10-fold cross-validation
    assert config_hash(mutag.configs[0]) == config_hash(mutag_paper.configs[0])
    assert (mutag.configs[0].task, mutag.configs[0].graph.folds) == ("graph", 10)


def test_gae_cells_compare_auc_and_ap_of_the_same_runs() -> None:
    cells = build_cells("gae", seeds=2)
    assert [(c.key, c.metric, c.published.value) for c in cells] == [
        ("gae-auc", "test_auc", 91.0),
        ("gae-ap", "test_ap", 92.0),
        ("vgae-auc", "test_auc", 91.4),
        ("vgae-ap", "test_ap", 92.6),
    ]
    assert [config_hash(c) for c in cells[0].configs] == [config_hash(c) for c in cells[1].configs]
    assert cells[2].configs[0].model.arch == "vgae"


def test_suite_rows_of_one_cross_validation_spread_over_folds(tmp_path: Path) -> None:
    honest, paper = build_cells("tu", datasets=["mutag"])
    store = tmp_path / "cv.db"
    cfg = honest.configs[0]
    key = config_hash(cfg)
    metrics = {
        "test_acc": 0.82,
        "test_acc_fold_std": 0.10,
        "test_acc_paper": 0.88,
        "test_acc_paper_std": 0.07,
    }
    with RunStore(store) as st:
        st.register("reproduce-tu", [(key, config_to_dict(cfg))])
        assert st.claim(key)
        st.finish(key, status="done", metrics=metrics, history=[], time_s=1.0)
    rows = suite_rows([honest, paper], store)
    assert [(r["ours_mean"], r["ours_std"], r["std_over_folds"]) for r in rows] == [
        (pytest.approx(82.0), pytest.approx(10.0), 10),
        (pytest.approx(88.0), pytest.approx(7.0), 10),
    ]
    assert rows[1]["diff"] == pytest.approx(88.0 - 89.4)


def test_deepgcn_cells_compare_test_miou_and_keep_s3dis_and_densegcn_on_request() -> None:
    cells = build_cells("deepgcn", seeds=2)
    assert [(c.key, c.depth, c.dataset) for c in cells] == [
        ("resgcn-28", 28, "scenes"),
        ("plaingcn-28", 28, "scenes"),
        ("resgcn-56", 56, "scenes"),
        ("resgcn-151", 151, "scenes"),
    ]
    assert {c.metric for c in cells} == {"test_miou"}
    assert [c.configs[0].points.k for c in cells] == [16, 16, 8, 3]
    assert all(c.published.value is None for c in cells)  # no published synthetic figure
    s3dis = _one(build_cells("deepgcn", datasets=["s3dis"], models=["resgcn-28"], seeds=1))
    assert s3dis.published.value == 52.11
    assert s3dis.configs[0].points.num_points == 4096
    dense = _one(build_cells("deepgcn", models=["densegcn-28"], seeds=1))
    assert dense.configs[0].model.skip == "dense"


def test_rows_read_the_other_selection_rule_and_the_peak_fit_from_histories() -> None:
    from fathom.experiments.reproduce import _max_train_acc, _test_at_best_val_acc

    def record(monitor: str, history: list[dict[str, float]]) -> dict:
        return {
            "config": {"train": {"monitor": monitor}},
            "metrics": {"train_acc": 0.3, "test_acc": 0.4},
            "history": history,
        }

    history = [
        {"train_acc": 0.3, "val_acc": 0.5, "test_acc": 0.4},
        {"train_acc": 1.0, "val_acc": 0.7, "test_acc": 0.66},
        {"train_acc": 0.9, "val_acc": 0.7, "test_acc": 0.1},  # a tie: the first is kept
    ]
    runs = [record("val_loss", history), record("val_loss", history[:1])]
    assert _test_at_best_val_acc(runs) == pytest.approx([66.0, 40.0])
    assert _max_train_acc(runs) == pytest.approx([100.0, 30.0])
    # another monitor already picks by accuracy (or something else): no second reading
    assert _test_at_best_val_acc([record("val_acc", history)]) == []
    # a run without a history (an older store) leaves both readings out
    assert _test_at_best_val_acc([*runs, record("val_loss", [])]) == []
    assert _max_train_acc([*runs, record("val_loss", [])]) == []
