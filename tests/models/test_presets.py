"""Tests of fathom.models.presets: the shipped published configurations (no training)."""

from __future__ import annotations

import pytest

from fathom.errors import ConfigError
from fathom.experiments.reproduce import SUITES, build_cells
from fathom.models.presets import (
    PRESETS_DIR,
    SETTINGS,
    list_presets,
    load_preset,
    preset_path,
    preset_setting,
    preset_source,
)


def test_presets_are_listed_sorted_from_the_yaml_files() -> None:
    names = list_presets()
    assert names == sorted(names)
    assert names == sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
    assert {"gcn-cora", "gcnii-cora", "depth-gcn", "hetero-mlp"} <= set(names)


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_validates_and_cites_its_source(name: str) -> None:
    cfg = load_preset(name)
    assert cfg.model.depth >= 1
    source = preset_source(name)
    assert source, f"preset {name} has no source"
    lines = preset_path(name).read_text().splitlines()
    source_lines = [line for line in lines if line.startswith("# Source:")]
    assert len(source_lines) == 1
    assert source_lines[0].removeprefix("# Source:").strip() == source


def test_gcnii_cora_has_the_published_setting() -> None:
    cfg = load_preset("gcnii-cora")
    m, t = cfg.model, cfg.train
    assert cfg.data.name == "cora"
    assert (m.conv, m.depth, m.hidden, m.alpha, m.theta, m.dropout) == (
        "gcn2",
        64,
        64,
        0.1,
        0.5,
        0.6,
    )
    assert (m.encoder, m.head) == ("linear", "linear")
    assert (t.conv_weight_decay, t.weight_decay, t.lr) == (0.01, 5e-4, 0.01)
    assert (t.monitor, t.patience, t.epochs) == ("val_loss", 100, 1500)
    assert "ICML 2020" in preset_source("gcnii-cora")


def test_unknown_preset_raises_config_error_listing_the_choices() -> None:
    for call in (load_preset, preset_path, preset_source):
        with pytest.raises(ConfigError) as info:
            call("nosuch")
        text = str(info.value)
        assert "nosuch" in text and "--preset" in text
        assert "gcn-cora" in text and "gcnii-cora" in text
        assert "\n" not in text


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_every_suite_cell_refers_to_existing_presets(suite: str) -> None:
    cells = build_cells(suite, seeds=1)
    s = SUITES[suite]
    assert cells
    assert {c.dataset for c in cells} == set(s.datasets)
    assert {c.key for c in cells} >= set(s.models)
    assert all(len(c.configs) == 1 for c in cells)


@pytest.mark.parametrize(
    ("name", "skip", "depth", "k"),
    [
        ("resgcn-28", "res", 28, 16),
        ("resgcn-56", "res", 56, 8),
        ("resgcn-151", "res", 151, 3),
        ("plaingcn-28", "none", 28, 16),
        ("densegcn-28", "dense", 28, 16),
    ],
)
def test_deepgcn_presets_have_the_published_setting(
    name: str, skip: str, depth: int, k: int
) -> None:
    cfg = load_preset(name)
    m, t, p = cfg.model, cfg.train, cfg.points
    assert (cfg.task, cfg.data.name) == ("segmentation", "scenes")
    assert (m.conv, m.skip, m.depth, m.hidden, m.norm, m.dropout) == (
        "edge",
        skip,
        depth,
        64,
        "batch",
        0.3,
    )
    assert (p.k, p.dilation, p.stochastic, p.epsilon, p.fusion_channels) == (
        k,
        "linear",
        True,
        0.2,
        1024,
    )
    assert (t.lr, t.weight_decay, t.lr_decay_every, t.lr_decay, t.batch_size) == (
        0.001,
        0.0,
        20,
        0.5,
        4,
    )
    assert (p.num_points, p.num_scenes, t.epochs) == (512, 24, 25)  # sized for a CPU
    # every block's dilated neighbourhood fits in a cloud
    assert p.k * (depth - 1) <= p.num_points


@pytest.mark.parametrize("name", ["", "   ", "../presets/gcn-cora", "/etc/passwd", "gcn-cora.yaml"])
def test_empty_names_and_paths_are_not_presets(name: str) -> None:
    # an empty name used to fall through to the defaults; a path must never read a file
    for call in (load_preset, preset_path, preset_source):
        with pytest.raises(ConfigError) as info:
            call(name)
        text = str(info.value)
        assert "--preset" in text and "gcn-cora" in text and "\n" not in text


# The semi-supervised scripts of DropEdge/DropEdge (script/semi-supervised/<dataset>_<Model>.sh;
# the _nodrop scripts are the same with --sampling_percent 1), transcribed:
# (dataset, model) -> (depth = nbaseblocklayer + 2, lr, weight_decay, dropout,
#                      normalization, withloop, sampling_percent); all: hidden 128, 400 epochs.
DROPEDGE_SCRIPTS = {
    ("cora", "gcn"): (2, 0.007, 1e-5, 0.8, "sym", False, 0.4),
    ("cora", "jknet"): (4, 0.001, 5e-4, 0.8, "rw", False, 0.4),
    ("cora", "incepgcn"): (64, 0.004, 5e-5, 0.3, "rw", False, 0.4),
    ("citeseer", "gcn"): (2, 0.01, 5e-4, 0.3, "sym", False, 0.2),
    ("citeseer", "jknet"): (16, 0.006, 1e-3, 0.8, "sym", True, 0.5),
    ("citeseer", "incepgcn"): (4, 0.005, 1e-3, 0.8, "sym", False, 0.05),
    ("pubmed", "gcn"): (2, 0.003, 5e-3, 0.5, "rw", True, 0.7),
    ("pubmed", "jknet"): (32, 0.001, 5e-3, 0.8, "sym", False, 0.7),
    ("pubmed", "incepgcn"): (4, 0.003, 5e-3, 0.3, "sym", False, 0.8),
}
SCRIPT_NAMES = {"gcn": "GCN", "jknet": "JKNet", "incepgcn": "IncepGCN"}


@pytest.mark.parametrize("dropedge", [False, True])
@pytest.mark.parametrize(("dataset", "model"), sorted(DROPEDGE_SCRIPTS))
def test_dropedge_presets_have_the_published_script_setting(
    dataset: str, model: str, dropedge: bool
) -> None:
    name = f"depth-{model}{'-dropedge' if dropedge else ''}-{dataset}"
    cfg = load_preset(name)
    depth, lr, wd, dropout, adj, loop, keep = DROPEDGE_SCRIPTS[(dataset, model)]
    m, t = cfg.model, cfg.train
    assert cfg.data.name == dataset
    assert (m.depth, m.hidden, m.dropout, m.adj_norm, m.root_weight) == (
        depth,
        128,
        dropout,
        adj,
        loop,
    )
    assert m.drop_edge == pytest.approx(1 - keep if dropedge else 0.0)
    assert (t.lr, t.weight_decay, t.epochs) == (lr, wd, 400)
    assert (m.norm, m.head_norm) == ("none", False)  # no --withbn in any script
    assert m.arch == ("incep" if model == "incepgcn" else "deep")
    if model != "incepgcn":
        assert (m.input_dropout, m.encoder, m.head) == (0.0, "none", "conv")
        assert m.skip == ("jk" if model == "jknet" else "none")
    script = f"{dataset}_{SCRIPT_NAMES[model]}{'' if dropedge else '_nodrop'}.sh"
    assert f"script/semi-supervised/{script}" in preset_source(name)
    assert preset_setting(name) == "published"


@pytest.mark.parametrize("dataset", ["cora", "citeseer", "pubmed"])
@pytest.mark.parametrize("dropedge", [False, True])
def test_resgcn_presets_say_their_setting_is_not_published(dataset: str, dropedge: bool) -> None:
    name = f"depth-resgcn{'-dropedge' if dropedge else ''}-{dataset}"
    cfg = load_preset(name)
    assert preset_setting(name) == "fathom default"
    assert "no published setting" in preset_source(name)
    # the model: the paper's residual GCN (no BatchNorm), the dataset's GCN script setting
    gcn = load_preset(f"depth-gcn{'-dropedge' if dropedge else ''}-{dataset}")
    # one shortcut around the hidden stack, as the scripts run it (one block)
    assert (cfg.model.skip, cfg.model.norm, cfg.model.skip_every) == ("res", "none", 0)
    for field in ("hidden", "dropout", "input_dropout", "adj_norm", "root_weight", "drop_edge"):
        assert getattr(cfg.model, field) == getattr(gcn.model, field), field
    assert (cfg.train.lr, cfg.train.weight_decay) == (gcn.train.lr, gcn.train.weight_decay)


def test_every_depth_preset_says_where_its_setting_comes_from() -> None:
    for name in list_presets():
        if name.startswith("depth-") or name in ("gcnii-cora", "gcnii-citeseer", "gcnii-pubmed"):
            assert preset_setting(name) in SETTINGS, name
    assert preset_setting("gcnii-cora") == "published"  # the depth table's GCNII rows
    assert preset_setting("gcnii-texas") == ""  # presets without the line
    assert preset_setting("depth-resgcn") == "fathom default"  # fathom's BatchNorm variant
    assert load_preset("depth-resgcn").model.norm == "batch"
