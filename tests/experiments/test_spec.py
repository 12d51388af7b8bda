"""Tests of fathom.experiments.spec: sweep spec parsing, validation and expansion."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fathom.config import config_hash
from fathom.errors import ConfigError
from fathom.experiments.spec import SweepSpec, describe, expand, load_spec, spec_from_dict

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _points(configs, *keys):
    out = []
    for cfg in configs:
        row = []
        for key in keys:
            value = cfg
            for part in key.split("."):
                value = getattr(value, part)
            row.append(value)
        out.append(tuple(row))
    return out


def test_grid_is_a_product_in_written_order_last_axis_fastest() -> None:
    spec = spec_from_dict(
        {
            "name": "g",
            "base": {"train": {"epochs": 5}},
            "grid": {"model.depth": [2, 4, 8], "model.skip": ["none", "res"], "seed": "range(2)"},
        }
    )
    configs = expand(spec)
    assert len(configs) == 12
    assert _points(configs, "model.depth", "model.skip", "seed")[:5] == [
        (2, "none", 0),
        (2, "none", 1),
        (2, "res", 0),
        (2, "res", 1),
        (4, "none", 0),
    ]
    assert all(c.train.epochs == 5 and c.seeds == 1 for c in configs)
    assert expand(spec) == configs  # deterministic
    assert spec.axes == ["model.depth", "model.skip", "seed"]


def test_zip_groups_vary_together_after_the_grid() -> None:
    spec = spec_from_dict(
        {
            "name": "z",
            "grid": {"model.depth": [2, 4]},
            "zip": [{"model.norm": ["none", "batch"], "model.dropout": [0.5, 0.1]}],
        }
    )
    configs = expand(spec)
    assert _points(configs, "model.depth", "model.norm", "model.dropout") == [
        (2, "none", 0.5),
        (2, "batch", 0.1),
        (4, "none", 0.5),
        (4, "batch", 0.1),
    ]
    info = describe(spec)
    assert info["axes"] == ["model.depth", "model.norm", "model.dropout"]
    assert (info["points"], info["runs"]) == (4, 4)


def test_two_zip_groups_and_no_grid() -> None:
    spec = spec_from_dict(
        {
            "name": "zz",
            "zip": [
                {"model.depth": [2, 4, 8], "model.hidden": [16, 32, 64]},
                {"model.skip": ["none", "res"]},
            ],
        }
    )
    assert _points(expand(spec), "model.depth", "model.hidden", "model.skip") == [
        (2, 16, "none"),
        (2, 16, "res"),
        (4, 32, "none"),
        (4, 32, "res"),
        (8, 64, "none"),
        (8, 64, "res"),
    ]


def test_a_zip_position_is_checked_as_a_whole() -> None:
    # model.head_norm is only valid with a model.norm: the two keys must be applied together.
    spec = spec_from_dict(
        {
            "name": "bn",
            "zip": [{"model.norm": ["none", "batch"], "model.head_norm": [False, True]}],
        }
    )
    assert _points(expand(spec), "model.norm", "model.head_norm") == [
        ("none", False),
        ("batch", True),
    ]
    with pytest.raises(ConfigError, match=r"zip\[0\] position 0 \(model\.norm='none', "):
        spec_from_dict(
            {
                "name": "bad",
                "zip": [{"model.norm": ["none", "batch"], "model.head_norm": [True, True]}],
            }
        )


def test_exclude_drops_matching_points_after_resolution() -> None:
    spec = spec_from_dict(
        {
            "name": "x",
            "grid": {
                "model.depth": [2, 4, 8],
                "model.skip": ["none", "res"],
                "model.dropout": [0, 0.5],
                "seed": "range(2)",
            },
            # 0 resolves to 0.0 (model.dropout is a float): the entry matches dropout 0.0
            "exclude": [{"model.skip": "res", "model.depth": 2}, {"model.dropout": 0}],
        }
    )
    configs = expand(spec)
    assert len(configs) == (3 * 2 - 1) * 1 * 2
    assert all(c.model.dropout == 0.5 for c in configs)
    assert not any(c.model.skip == "res" and c.model.depth == 2 for c in configs)
    info = describe(spec)
    assert (info["points"], info["runs"]) == (24, 10)
    assert info["exclude"] == [{"model.skip": "res", "model.depth": 2}, {"model.dropout": 0.0}]


def test_exclude_compares_exponent_strings_as_numbers() -> None:
    spec = spec_from_dict(
        {"name": "lr", "grid": {"train.lr": [0.01, 0.001]}, "exclude": [{"train.lr": "1e-3"}]}
    )
    assert [c.train.lr for c in expand(spec)] == [0.01]


def test_range_strings() -> None:
    spec = spec_from_dict(
        {
            "name": "r",
            "grid": {
                "model.depth": "range(1, 4)",
                "model.hidden": "range(8, 33, 8)",
                "seed": " range( 2 ) ",
            },
        }
    )
    assert spec.grid == {
        "model.depth": (1, 2, 3),
        "model.hidden": (8, 16, 24, 32),
        "seed": (0, 1),
    }
    assert len(expand(spec)) == 3 * 4 * 2


def test_seeds_expand_to_single_seed_runs_and_duplicates_are_removed() -> None:
    spec = spec_from_dict(
        {"name": "s", "base": {"seed": 10, "seeds": 3}, "grid": {"model.depth": [2, 4]}}
    )
    configs = expand(spec)
    assert _points(configs, "model.depth", "seed") == [
        (2, 10),
        (2, 11),
        (2, 12),
        (4, 10),
        (4, 11),
        (4, 12),
    ]
    assert all(c.seeds == 1 for c in configs)
    # seeds 2 from seed 0 and from seed 1 overlap at seed 1: kept once, first occurrence
    overlap = spec_from_dict({"name": "o", "base": {"seeds": 2}, "grid": {"seed": [0, 1]}})
    assert [c.seed for c in expand(overlap)] == [0, 1, 2]
    # an exclude on seed applies to the expanded runs; on seeds, to the point's count
    drop = spec_from_dict({"name": "d", "base": {"seeds": 3}, "exclude": [{"seed": 1}]})
    assert [c.seed for c in expand(drop)] == [0, 2]
    drop_all = {"name": "d", "base": {"seeds": 3}, "grid": {"model.depth": [2, 4]}}
    drop_all["exclude"] = [{"seeds": 3, "model.depth": 2}]
    assert _points(expand(spec_from_dict(drop_all)), "model.depth") == [(4,)] * 3


def test_equal_values_written_differently_are_one_run() -> None:
    spec = spec_from_dict({"name": "dup", "grid": {"model.dropout": [0.5, "5e-1", 0.1, 0.5]}})
    configs = expand(spec)
    assert [c.model.dropout for c in configs] == [0.5, 0.1]
    assert len({config_hash(c) for c in configs}) == 2


def test_no_axes_is_one_run_of_the_base() -> None:
    configs = expand(spec_from_dict({"name": "one", "base": {"model": {"depth": 3}}}))
    assert len(configs) == 1 and configs[0].model.depth == 3


def test_load_spec_with_config_file_relative_to_the_spec(tmp_path: Path) -> None:
    _write(
        tmp_path / "base.yaml",
        """
        model: {conv: gcn, depth: 4, hidden: 16}
        train: {epochs: 7, lr: 5e-3}
        """,
    )
    path = _write(
        tmp_path / "sweeps" / "spec.yaml",
        """
        name: from-file
        config: ../base.yaml
        base:
          model: {hidden: 32}
        grid:
          model.skip: [none, res]
        """,
    )
    spec = load_spec(path)
    assert isinstance(spec, SweepSpec) and spec.source == path
    assert spec.base.model.depth == 4 and spec.base.model.hidden == 32
    assert spec.base.train.lr == 0.005 and spec.base.train.epochs == 7
    assert [c.model.skip for c in expand(spec)] == ["none", "res"]


def test_repository_sweep_specs_load() -> None:
    for path in sorted((REPO / "configs" / "sweeps").glob("*.yaml")):
        spec = load_spec(path)
        assert expand(spec), path
    csbm = REPO / "configs" / "sweeps" / "csbm-depth.yaml"
    if csbm.is_file():
        assert describe(load_spec(csbm))["runs"] == 30


# --------------------------------------------------------------------------- errors

VALID = "name: ok\ngrid:\n  model.depth: [2, 4]\n"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("- 1\n- 2\n", ["must be a mapping"]),
        ("", ["must be a mapping", "empty file"]),
        ("grid: {model.depth: [2]}\n", ["'name'"]),
        ("name: a b\n", ["name", "'a b'"]),
        ("name: 12\n", ["name", "12"]),
        ("name: n\ngrids: {model.depth: [2]}\n", ["'grids'", "valid fields", "grid"]),
        ("name: n\ngrid: [model.depth]\n", ["grid must be a mapping"]),
        ("name: n\ngrid: {model.depth: 3}\n", ["grid axis 'model.depth'", "list"]),
        ("name: n\ngrid: {model.depth: four}\n", ["grid axis 'model.depth'", "'four'"]),
        ("name: n\ngrid: {model.depth: []}\n", ["grid axis 'model.depth'", "empty"]),
        ("name: n\ngrid: {seed: range(0)}\n", ["grid axis 'seed'", "empty"]),
        ("name: n\ngrid: {seed: range(a)}\n", ["grid axis 'seed'", "malformed range"]),
        ("name: n\ngrid: {seed: 'range(3'}\n", ["grid axis 'seed'", "malformed range"]),
        ("name: n\ngrid: {seed: 'range(0, 4, 0)'}\n", ["grid axis 'seed'", "STEP"]),
        ("name: n\ngrid: {seed: range(1, 2, 3, 4)}\n", ["grid axis 'seed'", "malformed"]),
        ("name: n\ngrid: {model.depth: [[2]]}\n", ["grid axis 'model.depth'", "scalars"]),
        ("name: n\ngrid: {model.dept: [2]}\n", ["'model.dept'", "valid keys under model"]),
        ("name: n\ngrid: {depth: [2]}\n", ["'depth'", "valid keys"]),
        ("name: n\ngrid: {model.depth: [2, two]}\n", ["model.depth", "integer", "'two'"]),
        ("name: n\ngrid: {model.depth: [2, 0]}\n", ["model.depth", ">= 1", "0"]),
        ("name: n\ngrid: {model.skip: [none, bogus]}\n", ["model.skip", "'bogus'"]),
        (
            "name: n\nzip:\n  - {model.norm: [none, batch], model.dropout: [0.5]}\n",
            ["zip[0]", "equal lengths", "model.norm has 2", "model.dropout has 1"],
        ),
        ("name: n\nzip: {model.norm: [none]}\n", ["zip must be a list"]),
        ("name: n\nzip: [[1, 2]]\n", ["zip[0]", "mapping"]),
        (
            "name: n\ngrid: {model.depth: [2]}\nzip:\n  - {model.depth: [4]}\n",
            ["zip[0] axis 'model.depth'", "already swept by grid axis 'model.depth'"],
        ),
        (
            "name: n\nzip:\n  - {seed: [1]}\n  - {seed: [2]}\n",
            ["zip[1] axis 'seed'", "already swept by zip[0]"],
        ),
        ("name: n\nexclude: [res]\n", ["exclude[0]", "mapping", "'res'"]),
        ("name: n\nexclude: {model.skip: res}\n", ["exclude must be a list"]),
        ("name: n\nexclude: [{model.skp: res}]\n", ["exclude[0]", "'model.skp'"]),
        ("name: n\nexclude: [{model.depth: [2]}]\n", ["exclude[0]", "single value"]),
        ("name: n\nbase: {model: {dept: 2}}\n", ["base", "'model.dept'"]),
        ("name: n\nbase: {model: {depth: two}}\n", ["base", "model.depth", "'two'"]),
        ("name: n\nbase: [1]\n", ["base must be a mapping"]),
        ("name: n\nconfig: missing.yaml\n", ["config 'missing.yaml'", "not found"]),
        ("name: n\nconfig: 3\n", ["config must be", "3"]),
        (
            "name: n\ngrid: {model.skip: [none, res]}\nexclude: [{model.depth: 2}]\n",
            ["zero runs", "exclude"],
        ),
        ("name: n\ngrid:\n  model.depth: [2]\n  model.depth: [4]\n", ["line 4", "duplicate key"]),
        ("name: n\ngrid: {model.depth: [2, 4}\n", ["not valid YAML", "line 2"]),
    ],
)
def test_invalid_specs_raise_one_line_errors_naming_the_field(
    tmp_path: Path, text: str, needles: list[str]
) -> None:
    path = _write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as info:
        expand(load_spec(path))
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sweep spec not found: .*nope\.yaml"):
        load_spec(tmp_path / "nope.yaml")


def test_valid_text_of_the_error_table_loads(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path / "ok.yaml", VALID))
    assert [c.model.depth for c in expand(spec)] == [2, 4]


def test_spec_from_dict_without_a_source_names_the_sweep_spec() -> None:
    with pytest.raises(ConfigError, match=r"^sweep spec: grid axis 'model\.depth' must not be"):
        spec_from_dict({"name": "n", "grid": {"model.depth": []}})


# --------------------------------------------------------------------------- grid size


@pytest.mark.parametrize(
    ("grid", "words"),
    [
        # 10**9 points: counted from the axis lengths, nothing built (this took 90 s, then
        # MemoryError)
        (
            "{seed: range(1000), model.hidden: 'range(1, 1001)', train.epochs: 'range(1, 1001)'}",
            ["1,000,000,000 points", "limit of 10,000 runs", "--max-runs"],
        ),
        ("{seed: 'range(0, 1000000000000)'}", ["grid axis 'seed'", "1,000,000,000,000 values"]),
        ("{seed: 'range(0, 99999999999999999999999)'}", ["beyond 64 bits"]),
        ("{seed: range(10001)}", ["10,001", "--max-runs"]),
    ],
)
def test_huge_grids_are_refused_before_anything_is_built(
    tmp_path: Path, grid: str, words: list[str]
) -> None:
    import time

    path = _write(tmp_path / "huge.yaml", f"name: huge\ngrid: {grid}\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, message


def test_max_runs_raises_and_lowers_the_limit(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "s.yaml", "name: s\ngrid: {model.depth: [2, 4, 8]}\nbase: {seeds: 4}\n"
    )
    spec = load_spec(path)
    assert len(expand(spec)) == 12
    # points x seeds are counted before any run is built
    with pytest.raises(ConfigError, match=r"more than the limit of 10 runs.*--max-runs"):
        expand(spec, max_runs=10)
    with pytest.raises(ConfigError, match="limit of 2 runs"):
        load_spec(path, max_runs=2)
    assert describe(load_spec(path, max_runs=12))["runs"] == 12
    with pytest.raises(ConfigError, match=r"max_runs \(--max-runs\) must be an integer >= 1"):
        load_spec(path, max_runs=0)


def test_spec_yaml_goes_through_the_bounded_reader(tmp_path: Path) -> None:
    bomb = "name: b\nl0: &l0 [1, 1]\n" + "".join(
        f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]\n" for i in range(1, 40)
    )
    with pytest.raises(ConfigError, match="alias"):
        load_spec(_write(tmp_path / "bomb.yaml", bomb))
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: x\x00\n")
    with pytest.raises(ConfigError, match="NUL"):
        load_spec(binary)
