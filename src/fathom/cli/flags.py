"""Flags generated from the config: one table, help from docstrings, choices from registries.

:data:`fathom.config.FLAG_FOR_KEY` lists every config key exposed as a flag, once. For each,
the flag's type is the config field's annotation (``--x/--no-x`` for booleans), its help is
the field's attribute docstring (read from the dataclass source) and, where a registry names
the valid values, the registry's names are listed in the help. Choices are shown, not enforced:
the config's validation stays the one check, with its one-line error naming the flag.
"""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import itertools
import re
import textwrap
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fathom.config import (
    FLAG_FOR_KEY,
    ExperimentConfig,
    config_to_dict,
    flatten,
    section_types,
)
from fathom.errors import FathomError

__all__ = [
    "FLAG_ALIASES",
    "RUNTIME_KEYS",
    "ConfigField",
    "add_config_flags",
    "add_threads",
    "config_field",
    "field_docs",
    "flag_help",
    "given_flags",
    "parse_ints",
    "positive_int",
    "split_extras",
    "threads_per_run",
]

FLAG_ALIASES: dict[str, tuple[str, ...]] = {"--arch": ("--model",)}
"""Extra spellings of a flag (PyG users say "model" for the model family)."""

RUNTIME_KEYS: tuple[str, ...] = ("device", "train.precision")
"""Config keys of where and how a run executes, on every command that trains or measures."""


@dataclass(frozen=True)
class ConfigField:
    """What the config says of one dotted key: its type, docstring and default."""

    key: str
    annotation: Any
    doc: str
    default: Any


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass: the string literal after each field."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = after.value.value
    return docs


def _hints(cls: type) -> dict[str, Any]:
    hints = dict(typing.get_type_hints(cls))
    if cls is ExperimentConfig:
        hints.pop("sections", None)
        hints.update(section_types())
    return hints


@functools.cache
def _defaults() -> dict[str, Any]:
    return flatten(config_to_dict(ExperimentConfig()))


def config_field(key: str) -> ConfigField:
    """The field behind the dotted config ``key`` (``model.depth``, ``graph.folds``, ``seed``).

    Raises:
        KeyError: ``key`` names no config field.
    """
    cls: Any = ExperimentConfig
    *path, name = key.split(".")
    for part in path:
        cls = _hints(cls)[part]
    return ConfigField(key, _hints(cls)[name], field_docs(cls).get(name, ""), _defaults()[key])


def _plain(tp: Any) -> Any:
    """``X | None`` -> ``X`` (a flag cannot say null; a dotted override can)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        options = [t for t in typing.get_args(tp) if t is not type(None)]
        if len(options) == 1:
            return options[0]
    return tp


_ROLE = re.compile(r":\w+:`~?([^`]+)`")


def _clean(doc: str) -> str:
    """A docstring as one line of help: roles and RST quoting dropped, ``%`` escaped."""
    text = _ROLE.sub(r"\1", doc).replace("``", "")
    return " ".join(text.split()).replace("%", "%%")


def _names(registry: Iterable[str]) -> str:
    return ", ".join(registry)


@functools.cache
def _choices() -> dict[str, str]:
    """Valid values of the keys whose values a registry names, as help text."""
    from fathom.config import PRECISIONS
    from fathom.loaders.build import LOADERS
    from fathom.models.build import ARCHS
    from fathom.models.graph_classifier import READOUTS
    from fathom.models.link import DECODERS
    from fathom.nn.activations import ACTIVATIONS
    from fathom.nn.convs import CONVS
    from fathom.nn.norms import NORMS
    from fathom.nn.point_convs import POINT_CONVS
    from fathom.nn.propagation import ADJ_NORMS
    from fathom.nn.reversible import MEMORY_MODES
    from fathom.nn.skips import SKIPS
    from fathom.tasks import TASKS
    from fathom.transforms.rewiring import REWIRINGS

    return {
        "model.conv": f"{_names(CONVS)}; point clouds (--task segmentation): {_names(POINT_CONVS)}",
        "model.skip": _names(SKIPS),
        "model.norm": _names(NORMS),
        "model.adj_norm": _names(ADJ_NORMS),
        "model.act": _names(ACTIVATIONS),
        "model.arch": _names(ARCHS),
        "model.memory": _names(MEMORY_MODES),
        "task": _names(TASKS),
        "data.rewire": _names(REWIRINGS),
        "link.decoder": _names(DECODERS),
        "graph.readout": _names(READOUTS),
        "train.precision": _names(PRECISIONS),
        "train.loader": _names(LOADERS),
    }


def flag_help(key: str) -> str:
    """The help of the flag of ``key``: its docstring, the registry's names, the default."""
    spec = config_field(key)
    text = f"{key}: {_clean(spec.doc)}"
    choices = _choices().get(key)
    if choices:
        text += f" [choices: {choices}]"
    if spec.default is not None:
        shown = str(spec.default).lower() if isinstance(spec.default, bool) else spec.default
        text += f" (default: {shown})"
    return text


def add_config_flags(parser: argparse.ArgumentParser, keys: Iterable[str] | None = None) -> None:
    """Add the flags of ``keys`` (default: every key of ``FLAG_FOR_KEY``) to ``parser``; each
    stores under its config key (``args.<key>``), ``None`` when not given."""
    for key in FLAG_FOR_KEY if keys is None else keys:
        flag = FLAG_FOR_KEY[key]
        names = (flag, *FLAG_ALIASES.get(flag, ()))
        tp = _plain(config_field(key).annotation)
        if tp is bool:
            parser.add_argument(
                *names, action=argparse.BooleanOptionalAction, dest=key, help=flag_help(key)
            )
        elif tp in (int, float, str):
            metavar = key.rpartition(".")[2].upper()
            parser.add_argument(*names, type=tp, dest=key, metavar=metavar, help=flag_help(key))
        else:  # pragma: no cover - a table entry whose field no flag can set
            raise TypeError(f"config key {key!r} of type {tp!r} cannot be a flag")


def given_flags(
    args: argparse.Namespace, keys: Iterable[str] | None = None
) -> list[tuple[str, Any]]:
    """``(config key, value)`` of the config flags given on the command line."""
    keys = FLAG_FOR_KEY if keys is None else keys
    return [(key, getattr(args, key)) for key in keys if getattr(args, key, None) is not None]


def parse_ints(text: str, flag: str = "--depths") -> list[int]:
    """A comma-separated list of integers >= 1 (``2,8,32``); a one-line error naming ``flag``."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise FathomError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise FathomError(f"{flag} must be integers >= 1, got {text!r}")
    return values


def positive_int(text: str) -> int:
    """argparse type of an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def add_threads(parser: argparse.ArgumentParser, *, per_worker: bool = False) -> None:
    """``--threads N``: torch's intra-op threads (set before the command runs)."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="torch threads per run (default: CPU cores // --workers, torch's own with one worker)"
        if per_worker
        else "torch threads (default: torch's own, which honours $OMP_NUM_THREADS)",
    )


def threads_per_run(threads: int | None, workers: int) -> int | None:
    """Torch threads of each run of a sweep or reproduction: ``--threads`` when given; else,
    with several workers, ``None`` (the engine's default, CPU cores // workers, at least 1),
    and with one, torch's own count (which honours ``$OMP_NUM_THREADS``), not every core."""
    if threads is not None or workers > 1:
        return threads
    import torch

    return torch.get_num_threads()


def split_extras(extras: Iterable[str]) -> tuple[list[str], list[str]]:
    """Tokens argparse did not consume: ``(dotted overrides, unknown flags)``; an override is
    any token that is not a flag (``model.depth=4``; a bare word fails as an override)."""
    overrides, unknown = [], []
    for token in extras:
        (unknown if token.startswith("-") else overrides).append(token)
    return overrides, unknown


def add_max_runs(parser: argparse.ArgumentParser) -> None:
    """``--max-runs N``: the most runs a sweep or suite may expand to (counted first)."""
    parser.add_argument(
        "--max-runs",
        type=positive_int,
        metavar="N",
        help="the most runs the command may expand to, counted before any is built "
        "(default 10,000: fathom.experiments.spec.DEFAULT_MAX_RUNS)",
    )


def add_tracker_flags(parser: argparse.ArgumentParser) -> None:
    """``--tracker`` / ``--tracking-uri``: mirror the runs to a tracking service."""
    from fathom.experiments.trackers import TRACKERS

    group = parser.add_argument_group(
        "run tracking", "the results store stays the record; the tracker is a mirror"
    )
    group.add_argument(
        "--tracker",
        choices=TRACKERS,
        help="also log every run (params, per-epoch metrics, per-layer diagnostics, "
        "artefacts) to MLflow (pip install 'fathom-gnn[mlflow]')",
    )
    group.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="a folder, file:, sqlite: or server URI (default $MLFLOW_TRACKING_URI, else ./mlruns)",
    )


def open_tracker_from_args(
    args: argparse.Namespace, experiment: str, *, store: str | None = None, config: Any = None
) -> Any:
    """The tracker ``--tracker`` asks for (checked now, before any work), or None; a
    ``--tracking-uri`` without ``--tracker`` is refused."""
    if args.tracker is None:
        if args.tracking_uri is not None:
            raise FathomError("--tracking-uri needs --tracker")
        return None
    import shlex

    from fathom.experiments.trackers import open_tracker

    return open_tracker(
        args.tracker,
        experiment=experiment,
        command="fathom " + shlex.join(args.argv),
        uri=args.tracking_uri,
        store=getattr(args, "store", None) if store is None else store,
        config=config,
    )
