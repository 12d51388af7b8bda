"""Tests of the model checks that run before any layer is built: the parameter-memory
estimate (``check_model_memory``) and options the chosen model never reads
(``check_model_options``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fathom.config import ExperimentConfig, ModelConfig, apply_overrides
from fathom.errors import ConfigError
from fathom.models.build import build_model, estimate_parameters


def test_estimate_is_a_lower_bound_of_the_built_model() -> None:
    for cfg in [
        ModelConfig(depth=4, hidden=16),
        ModelConfig(depth=3, hidden=16, conv="sage", skip="jk", jk="cat"),
        ModelConfig(depth=6, hidden=16, share_weights=True),
        ModelConfig(arch="sign", depth=3, hidden=16),
        ModelConfig(arch="appnp", depth=10, hidden=16),
    ]:
        model = build_model(cfg, 12, 5)
        built = sum(p.numel() for p in model.parameters())
        assert estimate_parameters(cfg, 12, 5) <= built, cfg


@pytest.mark.parametrize(
    ("cfg", "words"),
    [
        (ModelConfig(depth=10_000, hidden=4096), ["depth 10,000", "--depth or --hidden"]),
        (ModelConfig(depth=3, hidden=10**6), ["width 1,000,000", "memory budget"]),
        (ModelConfig(depth=2, hidden=64, head="linear"), ["10,000,000,000 input features"]),
    ],
)
def test_models_over_the_memory_budget_are_refused_before_building(
    monkeypatch: pytest.MonkeyPatch, cfg: ModelConfig, words: list[str]
) -> None:
    monkeypatch.setenv("FATHOM_MEMORY_BUDGET", "4G")
    in_channels = 10**10 if cfg.hidden == 64 else 32
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        build_model(cfg, in_channels, 3)
    assert time.perf_counter() - start < 1  # refused, not built
    message = str(info.value)
    assert "\n" not in message and "needs about" in message
    for word in words:
        assert word in message, message


def test_activations_count_when_the_graph_size_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FATHOM_MEMORY_BUDGET", "4G")
    cfg = ModelConfig(depth=2, hidden=10**6)  # 35M parameters: fits; activations do not
    with pytest.raises(ConfigError, match="activations on 1,000 nodes"):
        build_model(cfg, 32, 3, num_nodes=1000)
    small = ModelConfig(depth=2, hidden=8)
    assert build_model(small, 32, 3, num_nodes=1000) is not None


def test_depth_1000_still_builds_within_a_modest_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FATHOM_MEMORY_BUDGET", "1G")
    model = build_model(ModelConfig(depth=1000, hidden=16, skip="res"), 8, 3)
    assert sum(1 for _ in model.parameters()) > 1000


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"model.heads": 4}, ["model.heads", "gat", "not 'gcn'"]),
        ({"model.attn_dropout": 0.2, "model.conv": "sage"}, ["model.attn_dropout", "'sage'"]),
        ({"model.out_heads": 2, "model.conv": "gat", "model.head": "linear"}, ["out_heads"]),
        ({"model.cheb_k": 3}, ["model.cheb_k", "cheb"]),
        ({"model.theta": 1.5, "model.conv": "gat"}, ["model.theta", "gcn2"]),
        ({"model.msg_norm": True}, ["model.msg_norm", "gen"]),
        ({"model.jk": "max"}, ["model.jk", "applies to model.skip 'jk'"]),
        ({"model.groups": 4}, ["model.groups", "reversible"]),
        ({"model.norm_scale": 2.0, "model.norm": "batch"}, ["model.norm_scale", "pair"]),
        ({"model.norm_groups": 4}, ["model.norm_groups", "group"]),
        ({"model.arch": "sgc", "model.heads": 4}, ["model.heads", "model.arch 'deep'"]),
    ],
)
def test_options_the_model_never_reads_are_refused(
    overrides: dict[str, object], words: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(ExperimentConfig(), overrides)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    "overrides",
    [
        {"model.conv": "gat", "model.heads": 4, "model.out_heads": 2, "model.attn_dropout": 0.1},
        {"model.conv": "cheb", "model.cheb_k": 3},
        {"model.conv": "gcn2", "model.theta": 1.5, "model.alpha": 0.2},
        {"model.skip": "jk", "model.jk": "max"},
        {"model.norm": "pair", "model.norm_scale": 2.0},
        {"model.norm": "group", "model.norm_groups": 4},
        {"model.conv": "gen", "model.msg_norm": True},
        {"model.memory": "reversible", "model.groups": 4, "model.encoder": "linear"},
        {"model.heads": 8, "model.attn_dropout": 0.6},  # the defaults are always fine
    ],
)
def test_options_that_apply_are_accepted(overrides: dict[str, object]) -> None:
    apply_overrides(ExperimentConfig(), overrides)


def test_only_options_a_user_wrote_are_checked(tmp_path: Path) -> None:
    from fathom.config import config_from_dict, config_to_dict, load_config

    # configs built in code or rebuilt from a store / checkpoint load as they were stored
    zoo = ExperimentConfig(model=ModelConfig(heads=4, attn_dropout=0.0)).validate()
    assert config_from_dict(config_to_dict(zoo)) == zoo
    assert apply_overrides(zoo, {"device": "cpu"}).model.heads == 4
    # what a user writes is checked
    with pytest.raises(ConfigError, match=r"model\.heads"):
        apply_overrides(zoo, {"model.heads": 2})
    path = tmp_path / "cfg.yaml"
    path.write_text("model:\n  conv: sage\n  heads: 4\n")
    with pytest.raises(ConfigError, match=r"config file .*cfg\.yaml: model\.heads"):
        load_config(path)
