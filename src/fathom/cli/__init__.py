"""The ``fathom`` command: thin typed subcommands over the Python API.

One module per command (:mod:`~fathom.cli.train`, :mod:`~fathom.cli.diagnose`,
:mod:`~fathom.cli.reproduce`, :mod:`~fathom.cli.demo`, :mod:`~fathom.cli.experiments` for
sweep / runs / export / report, :mod:`~fathom.cli.info` for datasets / presets); the config
flags are generated from the config (:mod:`~fathom.cli.flags`). Bad input (a
:class:`~fathom.errors.FathomError`, or a bad flag) prints one line to stderr and exits with
status 2; ``--debug`` shows the traceback instead. Every output path a command declares is
checked before it starts (:func:`check_paths`). ``fathom``, ``fathom --help`` and
``fathom --version`` are answered without importing torch.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from fathom.cli.parser import EXIT_BAD_INPUT, build_parser
from fathom.errors import FathomError

__all__ = ["check_paths", "main"]

EXIT_INTERRUPTED = 130
_COMMON = frozenset({"--debug", "-q", "--quiet", "-v", "--verbose"})


def _speaks() -> bool:
    """Whether this process prints errors: any process but a torchrun worker of local rank
    > 0 (every rank meets the same bad input; one line per machine is enough)."""
    from fathom import distributed

    try:
        launch = distributed.from_env()
    except FathomError:
        return True
    return launch is None or launch.speaks


def _top_level_only(argv: Sequence[str]) -> bool:
    """No subcommand yet, or a top-level ``--help`` / ``--version`` before it: the answer
    needs only :data:`~fathom.cli.parser.COMMANDS`."""
    for token in argv:
        if token in ("-h", "--help", "--version"):
            return True
        if token not in _COMMON:
            return False
    return True


def check_paths(args: argparse.Namespace) -> None:
    """The command's declared outputs (``args.outputs``: dest → ``"file"`` / ``"dir"``) can be
    written, and none is one of its inputs (``args.inputs``) or another output: checked before
    any work, so results are never computed and then lost, nor written over their sources."""
    from fathom.files import check_not_input, check_output_dir, check_output_file

    given_inputs = {
        f"the {label} input": value
        for dest, label in args.inputs.items()
        if isinstance(value := getattr(args, dest, None), str) and value
    }
    outputs = [
        (f"--{dest.replace('_', '-')}", getattr(args, dest), kind)
        for dest, kind in args.outputs.items()
        if getattr(args, dest, None) is not None
    ]
    store = getattr(args, "store", None) if "store" in {**args.inputs, **args.outputs} else None
    for i, (what, path, kind) in enumerate(outputs):
        (check_output_file if kind == "file" else check_output_dir)(path, what)
        others = {f"the {name} output": p for name, p, _ in outputs[i + 1 :]}
        check_not_input(path, what, {**given_inputs, **others})
        if store and what != "--store":  # nor its journal files (-wal, -shm, -journal)
            from fathom.experiments.store import check_not_store

            check_not_store(path, store, what)


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
    *,
    command: str = "fathom",
) -> None:
    text = " ".join(str(message).split())
    (file or sys.stderr).write(f"fathom {command}: warning: {text}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fathom`` console script; returns the exit status.

    Dotted config overrides (``model.depth=4``) may appear anywhere among the flags of the
    commands that build a config (``train``, ``diagnose``); ``--threads N`` is applied first.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    # Before torch loads OpenMP: idle threads sleep instead of spinning, so two fathom
    # processes (or one beside other work) on a small machine do not slow each other down
    # several times over (benchmarks/contention.py). $OMP_WAIT_POLICY set by the user wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser(commands_only=_top_level_only(argv))
    args, extras = parser.parse_known_args(argv)
    from fathom.cli.flags import split_extras

    overrides, unknown = split_extras(extras)
    if unknown or (overrides and not args.overrides_ok):
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    args.overrides = overrides
    args.argv = argv  # recorded by commands that write what they ran
    from fathom.report.console import set_verbosity

    set_verbosity(0 if args.quiet else 2 if args.verbose else 1)
    show = warnings.showwarning
    warnings.showwarning = lambda *a, **k: _one_line_warning(*a, **k, command=args.command)
    try:
        check_paths(args)
        if hasattr(args, "threads"):  # a command that trains or measures
            from fathom.devices import flush_denormals, set_threads

            flush_denormals()  # before torch starts its thread pool, which inherits the mode
            set_threads(args.threads)
        return int(args.run(args))
    except FathomError as exc:
        if args.debug:
            raise
        if _speaks():
            sys.stderr.write(f"fathom {args.command}: error: {' '.join(str(exc).split())}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write(f"fathom {args.command}: interrupted\n")
        return EXIT_INTERRUPTED
    finally:
        warnings.showwarning = show
