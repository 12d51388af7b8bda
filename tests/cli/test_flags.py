"""The flags of ``fathom``: one table (``config.FLAG_FOR_KEY``), help from the config's
docstrings, choices from the registries, overrides anywhere, and the flags every command that
trains or measures shares (``--device``, ``--precision``, ``--threads``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fathom.cli import main
from fathom.cli.flags import (
    RUNTIME_KEYS,
    config_field,
    field_docs,
    flag_help,
    split_extras,
    threads_per_run,
)
from fathom.cli.parser import build_parser
from fathom.config import FLAG_FOR_KEY, ExperimentConfig, apply_overrides, section_types
from fathom.errors import ConfigError
from fathom.nn.convs import CONVS
from fathom.nn.point_convs import POINT_CONVS
from fathom.nn.skips import SKIPS
from fathom.tasks import TASKS

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def _run(argv: list[str]) -> int:
    """``main(argv)``'s status, or argparse's (which exits on a bad flag)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _actions(command: str) -> dict[str, argparse.Action]:
    return {
        option: action
        for action in _subparsers()[command]._actions
        for option in action.option_strings
    }


# --------------------------------------------------------------------------- the table


def test_flag_table_has_no_duplicates_and_names_real_config_keys() -> None:
    flags = list(FLAG_FOR_KEY.values())
    assert len(set(flags)) == len(flags)
    assert all(f.startswith("--") for f in flags)
    assert {"device", "train.precision"} <= set(FLAG_FOR_KEY)
    default = ExperimentConfig()
    for key in FLAG_FOR_KEY:
        field = config_field(key)  # KeyError for a key no config field has
        # and the config accepts it as an override (with its own default)
        apply_overrides(default, [(key, field.default)])


def test_every_config_flag_is_generated_with_its_docstring_as_help() -> None:
    actions = _actions("train")
    for key, flag in FLAG_FOR_KEY.items():
        action = actions[flag]
        assert action.dest == key
        doc = " ".join(config_field(key).doc.split())
        assert doc, f"{key} has no docstring"
        assert action.help and action.help.startswith(f"{key}: ")
        # the docstring's first words, whatever the RST quoting it drops
        first = " ".join(doc.replace("``", "").split()[:3])
        assert first in action.help.replace("%%", "%"), (key, action.help)


def test_flag_types_come_from_the_config_annotations() -> None:
    actions = _actions("train")
    assert actions["--depth"].type is int
    assert actions["--lr"].type is float
    assert actions["--dataset"].type is str
    assert actions["--data-dir"].type is str  # str | None: null only as an override
    assert isinstance(actions["--inductive"], argparse.BooleanOptionalAction)
    assert "--no-inductive" in actions


def test_docstrings_are_read_for_every_section() -> None:
    docs = field_docs(ExperimentConfig)
    assert {"task", "seed", "seeds", "device"} <= set(docs)
    for name, cls in section_types().items():
        assert field_docs(cls), name


def test_choices_are_listed_from_the_registries_not_enforced() -> None:
    conv = flag_help("model.conv")
    for name in [*CONVS.names(), *POINT_CONVS.names()]:
        assert name in conv
    assert all(name in flag_help("model.skip") for name in SKIPS.names())
    assert all(name in flag_help("task") for name in TASKS.names())
    assert _actions("train")["--conv"].choices is None  # the config's check names the flag


def test_model_alias_of_arch(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--model", "sgc", "--print-config"]) == 0
    assert "arch: sgc" in capsys.readouterr().out


def test_no_inductive_turns_it_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {inductive: true}\n")
    assert main(["train", "--config", str(cfg), "--print-config"]) == 0
    assert "inductive: true" in capsys.readouterr().out
    assert main(["train", "--config", str(cfg), "--no-inductive", "--print-config"]) == 0
    assert "inductive: false" in capsys.readouterr().out


# --------------------------------------------------------------------------- overrides


def test_dotted_overrides_interleaved_with_flags(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "model.depth=4", "--epochs", "2", "model.hidden=8", "--print-config"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "depth: 4" in out and "hidden: 8" in out and "epochs: 2" in out


def test_overrides_come_after_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "model.depth=4", "--depth", "6", "--print-config"]) == 0
    assert "depth: 4" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "model.depth=4", "--bogus", "3", "model.hidden=8"],
        ["diagnose", "--no-such-flag"],
        ["presets", "model.depth=4"],  # no config to override
        ["sweep", "spec.yaml", "model.depth=4", "--dry-run"],
    ],
)
def test_unknown_flags_are_one_line_exit_2(
    argv: list[str], one_line_error: Callable[..., str]
) -> None:
    assert _run(argv) == 2
    one_line_error("unrecognized arguments")


def test_split_extras() -> None:
    assert split_extras(["a.b=1", "--x", "c=2", "word"]) == (["a.b=1", "c=2", "word"], ["--x"])


# --------------------------------------------------------------------------- devices, threads


def _spec(tmp_path: Path) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: t\nbase:\n  data: {synthetic: {num_nodes: 60}}\n  train: {epochs: 1}\n"
        "grid:\n  model.depth: [1]\n"
    )
    return spec


def _device_argv(command: str, tmp_path: Path) -> list[str]:
    missing = str(tmp_path / "absent.npz")  # the device fails before any data loads
    return {
        "train": ["train", "--dataset", missing],
        "diagnose": ["diagnose", "--dataset", missing],
        "demo": ["demo", "--out", str(tmp_path / "demo"), "--depths", "1", "--epochs", "1"],
        "sweep": ["sweep", str(_spec(tmp_path)), "--store", str(tmp_path / "s.db")],
        "reproduce": ["reproduce", "depth", "--store", str(tmp_path / "r.db")],
    }[command]


TRAINING_COMMANDS = ("train", "diagnose", "demo", "sweep", "reproduce")


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_device_and_precision_on_every_command_that_trains(command: str) -> None:
    actions = _actions(command)
    for key in RUNTIME_KEYS:
        assert actions[FLAG_FOR_KEY[key]].dest == key


@NO_CUDA
@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_device_cuda_without_cuda_is_one_line_exit_2(
    command: str, tmp_path: Path, one_line_error: Callable[..., str]
) -> None:
    assert _run([*_device_argv(command, tmp_path), "--device", "cuda"]) == 2
    one_line_error("--device", "no CUDA device")
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["spec.yaml"])


@NO_CUDA
@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_bf16_off_cuda_is_one_line_exit_2_before_any_data_loads(
    command: str, tmp_path: Path, one_line_error: Callable[..., str]
) -> None:
    argv = [*_device_argv(command, tmp_path), "--device", "cpu", "--precision", "bf16"]
    assert _run(argv) == 2
    one_line_error("--precision", "bf16", "CUDA")
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["spec.yaml"])


@NO_CUDA
def test_reproduce_neighbors_match_device_uses_the_same_check(
    one_line_error: Callable[..., str],
) -> None:
    assert _run(["reproduce", "neighbors-match", "--device", "cuda:1"]) == 2
    one_line_error("--device", "'cuda:1'")


def test_bad_device_name_is_one_line(one_line_error: Callable[..., str]) -> None:
    assert _run(["train", "--device", "tpu"]) == 2
    one_line_error("device (--device)", "'tpu'")


def _threads_argv(command: str, tmp_path: Path) -> list[str]:
    store = str(tmp_path / "absent.db")  # readers of a missing store fail after parsing
    return {
        "train": ["train", "--print-config"],
        "diagnose": ["diagnose", "--metrics", "no-such-metric"],
        "presets": ["presets"],
        "datasets": ["datasets", "--data-dir", str(tmp_path)],
        "demo": ["demo", "--depths", "0"],
        "sweep": ["sweep", str(_spec(tmp_path)), "--dry-run"],
        "reproduce": ["reproduce", "depth", "--dry-run", "--seeds", "1"],
        "runs": ["runs", store],
        "export": ["export", store],
        "import": ["import", str(tmp_path / "none.json"), "--store", str(tmp_path / "i.db")],
        "report": ["report", store, "--out", str(tmp_path / "report")],
    }[command]


def test_threads_cases_cover_every_command() -> None:
    assert set(_subparsers()) == set(ALL_COMMANDS)


ALL_COMMANDS = (
    *TRAINING_COMMANDS,
    *("presets", "datasets", "runs", "export", "import", "report"),
)


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_threads_on_every_command_set_first(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    status = _run([command, *_threads_argv(command, tmp_path)[1:], "--threads", "1"])
    err = capsys.readouterr().err
    assert "--threads" not in err and "unrecognized" not in err, err
    assert status in (0, 2)  # some cases fail on purpose, after the flags were read
    assert calls[:1] == [1]


def test_threads_per_run_of_sweeps() -> None:
    assert threads_per_run(3, 4) == 3
    assert threads_per_run(None, 4) is None  # the engine's default: CPU cores // workers
    assert threads_per_run(None, 1) == torch.get_num_threads()  # torch's own, not every core


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_before_or_after_the_command(where: str) -> None:
    argv = ["train", "--depth", "-1"]
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    with pytest.raises(ConfigError, match=r"model\.depth"):
        main(argv)
