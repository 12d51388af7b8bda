"""Tests of fathom.config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fathom.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    SyntheticConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_override,
    with_seed,
)
from fathom.errors import ConfigError
from fathom.models.build import ARCHS, ENCODERS, HEADS
from fathom.nn.activations import ACTIVATIONS
from fathom.nn.convs import CONVS
from fathom.nn.norms import NORMS
from fathom.nn.skips import SKIPS
from fathom.tasks import TASKS


def _choices(registry) -> str:
    """The choice list a validation error shows for ``registry``."""
    return f"choose one of: {', '.join(registry.names())}"


def _error(fn, *args) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args)
    msg = str(info.value)
    assert "\n" not in msg, f"message is not one line: {msg!r}"
    return msg


# --------------------------------------------------------------------------- defaults


def test_defaults_validate() -> None:
    cfg = ExperimentConfig()
    assert cfg.validate() is cfg
    assert cfg.model == ModelConfig(
        conv="gcn",
        depth=2,
        hidden=64,
        skip="none",
        norm="none",
        dropout=0.5,
        act="relu",
        encoder="none",
        head="conv",
    )
    assert cfg.train == TrainConfig(
        epochs=200, lr=0.01, weight_decay=5e-4, patience=100, monitor="auto"
    )
    m = cfg.model
    assert (m.arch, m.aggr, m.alpha, m.theta, m.cheb_k, m.msg_norm, m.jk) == (
        "deep",
        None,
        0.1,
        0.5,
        2,
        False,
        "cat",
    )
    assert (m.norm_scale, m.norm_groups, m.input_dropout) == (1.0, 10, None)
    assert (m.drop_edge, m.drop_node, m.share_weights) == (0.0, 0.0, False)
    t = cfg.train
    assert (t.label_smoothing, t.conv_weight_decay, t.layerwise) == (0.0, None, 0)
    assert cfg.data.name == "csbm"
    assert cfg.data.synthetic == SyntheticConfig()
    assert (cfg.task, cfg.seed, cfg.seeds) == ("node", 0, 1)


def test_config_is_frozen() -> None:
    cfg = ExperimentConfig()
    with pytest.raises(AttributeError):
        cfg.seed = 3  # type: ignore[misc]


def test_empty_dict_gives_defaults() -> None:
    assert config_from_dict({}) == ExperimentConfig()


def test_with_seed() -> None:
    cfg = ExperimentConfig(seed=2, seeds=5)
    assert with_seed(cfg, 4) == ExperimentConfig(seed=4, seeds=1)


# --------------------------------------------------------------------------- YAML


def test_load_yaml_with_nested_synthetic(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(
        "data:\n"
        "  name: csbm\n"
        "  synthetic:\n"
        "    num_nodes: 300\n"
        "    homophily: 0.9\n"
        "model:\n"
        "  conv: gat\n"
        "  depth: 4\n"
        "  hidden: 16\n"
        "  heads: 4\n"
        "train:\n"
        "  lr: 0.005\n"
        "  weight_decay: 5e-4\n"
        "seed: 7\n"
    )
    cfg = load_config(path)
    assert cfg.data.synthetic == SyntheticConfig(num_nodes=300, homophily=0.9)
    assert cfg.model == ModelConfig(conv="gat", depth=4, hidden=16, heads=4)
    assert cfg.train == TrainConfig(lr=0.005, weight_decay=5e-4)
    assert cfg.seed == 7
    # Untouched sections keep their defaults.
    assert cfg.data.split == 0


@pytest.mark.parametrize("text", ["", "# only a comment\n", "null\n", "---\n"])
def test_load_empty_yaml_is_refused(tmp_path: Path, text: str) -> None:
    # an empty file used to give the defaults silently (a truncated config trained csbm)
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    msg = _error(load_config, path)
    assert str(path) in msg and "empty" in msg and "\n" not in msg


def test_load_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  depth: [1, 2\n")
    msg = _error(load_config, path)
    assert "not valid YAML" in msg
    assert str(path) in msg


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    msg = _error(load_config, path)
    assert msg == f"config file not found: {path}"


def test_load_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    msg = _error(load_config, path)
    assert "mapping" in msg and "list" in msg


def test_load_yaml_with_invalid_value(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("model:\n  depth: 0\n")
    msg = _error(load_config, path)
    assert "model.depth" in msg and "--depth" in msg


# --------------------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model.depth=16", ("model.depth", 16)),
        ("model.dropout=0.5", ("model.dropout", 0.5)),
        ("data.data_dir=null", ("data.data_dir", None)),
        ("model.conv=gat", ("model.conv", "gat")),
        ("data.normalize_features=true", ("data.normalize_features", True)),
        ("--model.depth=3", ("model.depth", 3)),
        (" seed = 4", ("seed", 4)),
        ("data.name=", ("data.name", "")),
        ("data.name=a=b", ("data.name", "a=b")),
    ],
)
def test_parse_override(text: str, expected: tuple) -> None:
    key, value = parse_override(text)
    assert (key, value) == expected
    assert type(value) is type(expected[1])


@pytest.mark.parametrize("text", ["model.depth", "=3", ""])
def test_parse_override_malformed(text: str) -> None:
    msg = _error(parse_override, text)
    assert "section.key=value" in msg


def test_apply_overrides_nested_and_typed() -> None:
    pairs = [
        parse_override(t)
        for t in (
            "model.depth=16",
            "model.dropout=0.25",
            "data.data_dir=null",
            "data.synthetic.num_nodes=50",
            "train.lr=1e-3",
            "seeds=3",
        )
    ]
    cfg = apply_overrides(ExperimentConfig(data=DataConfig(data_dir="/x")), pairs)
    assert cfg.model.depth == 16
    assert cfg.model.dropout == 0.25
    assert cfg.data.data_dir is None
    assert cfg.data.synthetic.num_nodes == 50
    assert cfg.train.lr == 1e-3 and isinstance(cfg.train.lr, float)
    assert cfg.seeds == 3
    # Everything else is unchanged.
    assert cfg.model.conv == "gcn" and cfg.data.synthetic.num_classes == 3


def test_apply_overrides_accepts_a_mapping_and_later_wins() -> None:
    cfg = apply_overrides(ExperimentConfig(), {"model.hidden": 32})
    assert cfg.model.hidden == 32
    cfg = apply_overrides(ExperimentConfig(), [("model.hidden", 32), ("model.hidden", 8)])
    assert cfg.model.hidden == 8


def test_int_is_accepted_for_float() -> None:
    cfg = apply_overrides(ExperimentConfig(), {"train.lr": 1})
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)


def test_exponent_literal_without_dot_is_a_float(tmp_path: Path) -> None:
    # PyYAML reads "5e-4" as a string; it must still be accepted for float keys.
    assert parse_override("train.weight_decay=5e-4") == ("train.weight_decay", "5e-4")
    cfg = apply_overrides(ExperimentConfig(), [parse_override("train.weight_decay=1e-5")])
    assert cfg.train.weight_decay == 1e-5
    path = tmp_path / "cfg.yaml"
    path.write_text("train:\n  lr: 2E-3\n")
    assert load_config(path).train.lr == 2e-3


def test_unknown_override_keys() -> None:
    msg = _error(apply_overrides, ExperimentConfig(), {"model.depht": 3})
    assert "model.depht" in msg and "depth" in msg  # names the key and lists valid keys
    msg = _error(apply_overrides, ExperimentConfig(), {"modle.depth": 3})
    assert "'modle'" in msg
    msg = _error(apply_overrides, ExperimentConfig(), {"data.synthetic.nodes": 3})
    assert "data.synthetic.nodes" in msg and "num_nodes" in msg
    msg = _error(apply_overrides, ExperimentConfig(), {"model.depth.x": 3})
    assert "model.depth" in msg
    msg = _error(apply_overrides, ExperimentConfig(), {"epochs": 3})
    assert "'epochs'" in msg and "the top level" in msg


# --------------------------------------------------------------------------- invalid values

INVALID = [
    # (key, value, flag or None, fragment of the message)
    ("model.depth", 0, "--depth", ">= 1"),
    ("model.depth", -3, "--depth", ">= 1"),
    ("model.depth", "abc", "--depth", "integer"),
    ("model.depth", 2.5, "--depth", "integer"),
    ("model.depth", True, "--depth", "integer"),
    ("model.hidden", 0, "--hidden", ">= 1"),
    ("model.dropout", 1.0, "--dropout", "[0, 1)"),
    ("model.dropout", -0.1, "--dropout", "[0, 1)"),
    ("model.dropout", "half", "--dropout", "number"),
    ("model.dropout", False, "--dropout", "number"),
    ("model.attn_dropout", 1.0, None, "[0, 1)"),
    ("model.arch", "gcnii", "--arch", _choices(ARCHS)),
    ("model.conv", "gin2", "--conv", _choices(CONVS)),
    ("model.skip", "highway", "--skip", _choices(SKIPS)),
    ("model.norm", "instance", "--norm", _choices(NORMS)),
    ("model.act", "swish", "--act", _choices(ACTIVATIONS)),
    ("model.encoder", "mlp", None, _choices(ENCODERS)),
    ("model.head", "mlp", None, _choices(HEADS)),
    ("model.heads", 0, None, ">= 1"),
    ("model.out_heads", 0, None, ">= 1"),
    ("model.aggr", "max", "--aggr", "gcn has a fixed aggregation (sum)"),
    ("model.aggr", "median", "--aggr", "fixed aggregation"),
    ("model.alpha", -0.1, "--alpha", "[0, 1]"),
    ("model.alpha", 1.5, "--alpha", "[0, 1]"),
    ("model.theta", 0.0, "--theta", "> 0"),
    ("model.cheb_k", 0, None, ">= 1"),
    ("model.msg_norm", "yes", None, "true or false"),
    ("model.jk", "sum", "--jk", "cat, max or lstm"),
    ("model.norm_scale", 0.0, None, "> 0"),
    ("model.norm_groups", 0, None, ">= 1"),
    ("model.input_dropout", 1.0, None, "[0, 1)"),
    ("model.input_dropout", -0.5, None, "[0, 1)"),
    ("model.drop_edge", 1.0, "--drop-edge", "[0, 1)"),
    ("model.drop_node", -0.1, "--drop-node", "[0, 1)"),
    ("model.share_weights", 1, None, "true or false"),
    ("train.label_smoothing", 1.0, "--label-smoothing", "[0, 1)"),
    ("train.label_smoothing", -0.1, "--label-smoothing", "[0, 1)"),
    ("train.conv_weight_decay", -0.01, None, ">= 0"),
    ("train.layerwise", -1, None, ">= 0"),
    ("train.layerwise", 1.5, None, "integer"),
    ("train.lr", 0.0, "--lr", "> 0"),
    ("train.lr", -0.01, "--lr", "> 0"),
    ("train.lr", float("nan"), "--lr", "finite"),
    # every float field must be finite, every int field fit in 64 bits; specific maxima
    ("train.lr", float("inf"), "--lr", "finite"),
    ("train.lr", "1e400", "--lr", "finite"),
    ("train.weight_decay", float("inf"), "--weight-decay", "finite"),
    ("train.weight_decay", -1e-4, "--weight-decay", ">= 0"),
    ("model.dropout", float("nan"), "--dropout", "finite"),
    ("model.alpha", float("-inf"), "--alpha", "finite"),
    ("train.lr_decay", float("nan"), None, "finite"),
    ("data.synthetic.avg_degree", float("inf"), None, "finite"),
    ("link.val_fraction", float("nan"), None, "finite"),
    ("graph.pool_ratio", float("inf"), None, "finite"),
    ("points.epsilon", float("nan"), None, "finite"),
    ("train.patience", 2**70, "--patience", "64 bits"),
    ("train.batch_size", -(2**64), "--batch-size", "64 bits"),
    ("train.epochs", 10**7, "--epochs", "<= 1,000,000"),
    ("model.depth", 100_000, "--depth", "<= 10,000"),
    ("train.num_workers", 100_000, None, "<= 256"),
    ("seed", 2**64, "--seed", "< 2**63"),
    ("seed", 2**63, "--seed", "< 2**63"),
    ("seed", -1, "--seed", ">= 0"),
    ("seeds", 0, "--seeds", ">= 1"),
    ("seeds", 10**6, "--seeds", "<= 10,000"),
    ("train.epochs", 0, "--epochs", ">= 1"),
    ("train.weight_decay", -1e-4, "--weight-decay", ">= 0"),
    ("train.patience", -1, "--patience", ">= 0"),
    (
        "train.monitor",
        "val_f1",
        "--monitor",
        "auto, val_loss, val_acc, val_train_mode_loss for task 'node'",
    ),
    ("train.batch_size", 0, "--batch-size", ">= 1"),
    ("train.lr_decay_every", -1, None, ">= 0"),
    ("train.lr_decay", 0.0, None, "(0, 1]"),
    ("task", "tracking", "--task", f"one of {', '.join(TASKS.names())}"),  # sorted
    ("model.memory", "offload", "--memory", "plain, checkpoint, reversible"),
    ("model.groups", 1, None, ">= 2"),
    ("points.num_points", 1, None, ">= 2"),
    ("points.num_scenes", 0, None, ">= 1"),
    ("points.test_area", 7, None, "1..6"),
    ("points.k", 0, "--k", ">= 1"),
    ("points.dilation", "exp", None, "linear or none"),
    ("points.epsilon", 1.5, None, "[0, 1]"),
    ("points.fusion_channels", 0, None, ">= 1"),
    ("points.order", "act-act", None, "act-norm or norm-act"),
    ("graph.readout", "median", "--readout", "sum, mean, max or attention"),
    ("graph.readout_layers", "first", None, "last or all"),
    ("graph.pool", "diff", "--pool", "none, topk or sag"),
    ("graph.pool_ratio", 0.0, None, "(0, 1]"),
    ("graph.pool_every", 0, None, ">= 1"),
    ("graph.folds", 1, "--folds", ">= 2"),
    ("graph.val_fraction", 1.0, None, "(0, 1)"),
    ("link.decoder", "cosine", "--decoder", "dot, hadamard or mlp"),
    ("link.embedding_dim", 0, None, ">= 1"),
    ("link.val_fraction", 0.0, None, "(0, 1)"),
    ("link.test_fraction", 1.0, None, "(0, 1)"),
    ("link.neg_ratio", 0.0, None, "> 0"),
    ("link.hits_k", 0, None, ">= 1"),
    ("link.corrupt_edges", 1.0, "--corrupt-edges", "[0, 1)"),
    ("link.corrupt_features", -0.1, "--corrupt-features", "[0, 1)"),
    ("link.feature_weight", -1.0, None, ">= 0"),
    ("data.synthetic.num_graphs", 1, None, ">= 2"),
    ("seed", -1, "--seed", ">= 0"),
    ("seeds", 0, "--seeds", ">= 1"),
    ("data.name", "", "--dataset", "empty"),
    ("data.split", -1, None, ">= 0"),
    ("data.normalize_features", "yes", None, "true or false"),
    ("data.to_undirected", 1, None, "true or false"),
    ("data.synthetic.num_nodes", 1, None, ">= 2"),
    ("data.synthetic.num_classes", 1, None, ">= 2"),
    ("data.synthetic.feature_dim", 0, None, ">= 1"),
    ("data.synthetic.avg_degree", 0, None, "> 0"),
    ("data.synthetic.homophily", 1.5, None, "[0, 1]"),
    ("data.synthetic.separation", -1.0, None, ">= 0"),
    ("model", 3, None, "mapping"),
]


SEG = {"task": "segmentation", "data.name": "scenes", "model.conv": "edge"}


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"task": "link", "train.monitor": "val_acc"}, "for task 'link'"),
        ({"task": "graph", "train.monitor": "val_auc"}, "for task 'graph'"),
        ({"task": "graph", "data.inductive": True}, "task 'node' only"),
        ({"data.reverse_edges": True}, "needs data.to_undirected: false"),
        ({"link.val_fraction": 0.5, "link.test_fraction": 0.5}, "must be < 1"),
        ({"model.arch": "gae"}, "use it with task link or autoencoder"),
        ({"task": "link", "model.arch": "vgae", "model.depth": 3}, "must be 2"),
        ({"task": "graph", "model.arch": "sgc"}, "must be 'deep' for task 'graph'"),
        ({"task": "segmentation"}, "scenes, s3dis for task 'segmentation'"),
        ({"data.name": "scenes"}, "must be 'segmentation' for the point-cloud dataset"),
        ({**SEG, "model.conv": "gcn"}, "choose one of: edge"),
        ({**SEG, "model.skip": "jk"}, "PlainGCN"),
        ({**SEG, "model.arch": "sgc"}, "must be 'deep' for task 'segmentation'"),
        ({**SEG, "train.monitor": "val_auc"}, "val_miou for task 'segmentation'"),
        ({"train.monitor": "val_miou"}, "for task 'node'"),
        ({**SEG, "train.diagnose_every": 5}, "each layer has its own k-NN graph"),
        ({**SEG, "model.skip": "res", "model.depth": 28, "points.k": 40}, "largest dilation (27)"),
        ({**SEG, "model.memory": "reversible", "model.skip": "none"}, "needs model.skip 'res'"),
        ({"model.memory": "checkpoint", "model.arch": "sgc"}, "needs model.arch 'deep'"),
        ({"model.memory": "reversible", "model.hidden": 63}, "divisible by model.groups"),
        ({"model.memory": "reversible"}, "must be 'linear' for model.memory 'reversible'"),
        (
            {"model.memory": "reversible", "model.encoder": "linear", "model.skip": "jk"},
            "must be none or res for model.memory",
        ),
        ({"task": "graph", "model.memory": "checkpoint"}, "graph classification reads"),
    ],
)
def test_task_combinations_rejected(overrides: dict, fragment: str) -> None:
    assert fragment in _error(apply_overrides, ExperimentConfig(), overrides)


def test_segmentation_config_validates_with_dilation_within_the_clouds() -> None:
    cfg = apply_overrides(
        ExperimentConfig(),
        {
            **SEG,
            "model.skip": "res",
            "model.depth": 151,
            "points.k": 3,
            "model.memory": "reversible",
        },
    )
    assert (cfg.points.k * 150, cfg.points.num_points, cfg.model.groups) == (450, 1024, 2)
    assert cfg.points.dilation == "linear" and cfg.train.monitor == "auto"


def test_task_sections_default_and_validate() -> None:
    cfg = apply_overrides(
        ExperimentConfig(), {"task": "link", "link.decoder": "mlp", "train.monitor": "val_ap"}
    )
    assert (cfg.task, cfg.link.decoder, cfg.graph.folds, cfg.link.embedding_dim) == (
        "link",
        "mlp",
        10,
        16,
    )


@pytest.mark.parametrize(("key", "value", "flag", "fragment"), INVALID)
def test_invalid_value_rejected(key: str, value: object, flag: str | None, fragment: str) -> None:
    msg = _error(apply_overrides, ExperimentConfig(), {key: value})
    assert key in msg
    if flag is not None:
        assert f"{key} ({flag})" in msg
    assert fragment in msg


@pytest.mark.parametrize(("key", "value", "flag", "fragment"), INVALID)
def test_invalid_value_rejected_from_dict(
    key: str, value: object, flag: str | None, fragment: str
) -> None:
    raw: dict = {}
    node = raw
    *sections, last = key.split(".")
    for part in sections:
        node = node.setdefault(part, {})
    node[last] = value
    msg = _error(config_from_dict, raw)
    assert key in msg and fragment in msg


def test_seed_range_counts_every_seed_of_the_run() -> None:
    top = 2**63 - 1
    assert apply_overrides(ExperimentConfig(), {"seed": top}).seed == top
    msg = _error(apply_overrides, ExperimentConfig(), {"seed": top, "seeds": 2})
    assert "seed (--seed)" in msg and "2**63" in msg


def test_errors_show_bounded_values() -> None:
    huge = 7 * 10**4000  # 4,001 digits: printing it whole would fill a terminal
    msg = _error(apply_overrides, ExperimentConfig(), {"seed": huge})
    assert len(msg) < 300 and "\n" not in msg
    msg = _error(apply_overrides, ExperimentConfig(), {"model.depth": list(range(10**5))})
    assert len(msg) < 300 and "..." in msg


def test_unknown_keys_from_dict() -> None:
    msg = _error(config_from_dict, {"modle": {}})
    assert "'modle'" in msg and "the top level" in msg
    msg = _error(config_from_dict, {"data": {"synthetic": {"size": 3}}})
    assert "'data.synthetic.size'" in msg and "valid keys under data.synthetic" in msg


def test_config_from_dict_rejects_non_mapping() -> None:
    msg = _error(config_from_dict, [1, 2])
    assert "mapping" in msg


@pytest.mark.parametrize(
    ("key", "registry"),
    [
        ("model.arch", ARCHS),
        ("model.conv", CONVS),
        ("model.skip", SKIPS),
        ("model.norm", NORMS),
        ("model.act", ACTIVATIONS),
        ("model.encoder", ENCODERS),
        ("model.head", HEADS),
    ],
)
def test_every_registered_name_is_accepted(key: str, registry) -> None:
    assert len(registry) > 0
    section, field_name = key.split(".")
    for name in registry.names():
        # the link-prediction encoders only make sense with a link task
        task = {"task": "link"} if key == "model.arch" and name in ("gae", "vgae") else {}
        cfg = apply_overrides(ExperimentConfig(), {**task, key: name})
        assert getattr(getattr(cfg, section), field_name) == name


def test_new_registry_entries_are_choices() -> None:
    # The zoo's names reach validation (a name missing from a registry would be rejected).
    assert {"deep", "sgc", "gfnn", "appnp", "sign", "incep", "dgi", "gae", "vgae"} <= set(
        ARCHS.names()
    )
    assert {"gatv2", "sage", "gin", "gcn2", "gcn2-star", "gen", "gated"} <= set(CONVS.names())
    assert {"transformer", "cheb", "mlp"} <= set(CONVS.names())
    assert {"res+", "dense", "initial", "jk"} <= set(SKIPS.names())
    assert {"pair", "pair-si", "pair-scs", "node", "mean", "group", "graph"} <= set(NORMS.names())


def test_aggr_checked_against_the_conv() -> None:
    cfg = apply_overrides(ExperimentConfig(), {"model.conv": "sage", "model.aggr": "max"})
    assert cfg.model.aggr == "max"
    msg = _error(
        apply_overrides, ExperimentConfig(), {"model.conv": "sage", "model.aggr": "softmax"}
    )
    assert "model.aggr (--aggr)" in msg and "mean, max, sum, min" in msg
    cfg = apply_overrides(ExperimentConfig(), {"model.conv": "gen", "model.aggr": "softmax"})
    assert cfg.model.aggr == "softmax"


def test_optional_fields_accept_null() -> None:
    cfg = apply_overrides(
        ExperimentConfig(),
        [parse_override("model.input_dropout=0.8"), parse_override("train.conv_weight_decay=0.01")],
    )
    assert (cfg.model.input_dropout, cfg.train.conv_weight_decay) == (0.8, 0.01)
    cfg = apply_overrides(
        cfg,
        [
            parse_override("model.input_dropout=null"),
            parse_override("train.conv_weight_decay=null"),
        ],
    )
    assert (cfg.model.input_dropout, cfg.train.conv_weight_decay) == (None, None)


def test_registered_names_are_case_insensitive() -> None:
    cfg = apply_overrides(ExperimentConfig(), {"model.conv": "GCN", "model.skip": "Res"})
    assert cfg.model.conv == "GCN"


# --------------------------------------------------------------------------- round trip


def test_config_to_dict_round_trip(tmp_path: Path) -> None:
    cfg = ExperimentConfig(
        data=DataConfig(
            name="ring",
            data_dir="/data",
            normalize_features=False,
            synthetic=SyntheticConfig(num_nodes=40, homophily=0.5),
        ),
        model=ModelConfig(conv="gat", depth=8, hidden=32, heads=4, skip="res", norm="batch"),
        train=TrainConfig(epochs=10, lr=1e-5, weight_decay=0.0, monitor="val_loss"),
        seed=3,
        seeds=2,
    )
    raw = config_to_dict(cfg)
    assert raw["data"]["synthetic"]["num_nodes"] == 40
    assert raw["model"]["depth"] == 8
    assert config_from_dict(raw) == cfg
    path = tmp_path / "dump.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_config(path) == cfg


def test_unknown_yaml_key_that_is_not_a_string() -> None:
    msg = _error(config_from_dict, {"model": {1: 2}})
    assert "'model.1'" in msg


def test_dropedge_model_options_leave_existing_run_keys_unchanged() -> None:
    from fathom import config as config_module
    from fathom.config import config_hash

    new = {"root_weight": False, "adj_norm": "sym", "skip_every": 1, "head_norm": False}
    defaults = ModelConfig()
    for name, value in new.items():
        assert getattr(defaults, name) == value
        assert config_module._UNKEYED_AT_DEFAULT[("model", name)] == value
    # the key of a config that does not use them is the key computed without them
    cfg = apply_overrides(ExperimentConfig(), {"model.skip": "res", "model.norm": "batch"})
    base = config_hash(cfg)
    raw = config_to_dict(cfg)
    for name in new:
        del raw["model"][name]
    assert config_hash(config_from_dict(raw)) == base
    # set away from its default, each one is part of the key
    changed = {
        "model.root_weight": True,
        "model.adj_norm": "rw",
        "model.skip_every": 2,
        "model.head_norm": True,
    }
    keys = {config_hash(apply_overrides(cfg, {key: value})) for key, value in changed.items()}
    assert len(keys | {base}) == 1 + len(changed)


def test_reverse_edges_leaves_existing_run_keys_unchanged() -> None:
    from fathom import config as config_module
    from fathom.config import config_hash

    assert config_module._UNKEYED_AT_DEFAULT[("data", "reverse_edges")] is False
    cfg = apply_overrides(ExperimentConfig(), {"data.to_undirected": False})
    raw = config_to_dict(cfg)
    del raw["data"]["reverse_edges"]
    assert config_hash(config_from_dict(raw)) == config_hash(cfg)
    reversed_cfg = apply_overrides(cfg, {"data.reverse_edges": True})
    assert config_hash(reversed_cfg) != config_hash(cfg)
