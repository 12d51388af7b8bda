"""The ``fathom`` argument parser: one-line errors, one subcommand per module.

:data:`~fathom.cli.commands.COMMANDS` is the one list of subcommands and their one-line
help: ``fathom --help`` and ``fathom --version`` are answered from it alone
(:func:`build_parser` with ``commands_only``), without importing torch or any command's
module.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from fathom.cli.commands import COMMANDS, add_command

__all__ = ["EXIT_BAD_INPUT", "Parser", "build_parser"]

EXIT_BAD_INPUT = 2


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message`` on one line and exit with status 2."""
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_BAD_INPUT)


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """--debug, --quiet, --verbose: on the top level and after any command (SUPPRESS below
    the top: a subcommand's default would overwrite the top level's value)."""
    below = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show tracebacks on errors" if top else argparse.SUPPRESS,
        **below,
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress or status lines on stderr (results, warnings and errors only)"
        if top
        else argparse.SUPPRESS,
        **below,
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="a progress line per step (epoch or run) instead of a bar"
        if top
        else argparse.SUPPRESS,
        **below,
    )


def build_parser(*, commands_only: bool = False) -> Parser:
    """The parser of every subcommand; each sets ``args.run`` (the command) and
    ``args.overrides_ok`` (whether ``key=value`` tokens may appear among its flags).

    ``commands_only``: the top level alone (``--help``, ``--version``), listing
    :data:`~fathom.cli.commands.COMMANDS` without importing them."""
    from fathom.version import __version__

    parser = Parser(prog="fathom", description="Build, train, diagnose and benchmark deep GNNs.")
    parser.add_argument("--version", action="version", version=f"fathom {__version__}")
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    if commands_only:
        for name in COMMANDS:
            add_command(sub, name)
        return parser

    import fathom.tasks  # noqa: F401  (registers the config sections the flags are made from)
    from fathom.cli import demo, diagnose, experiments, info, reproduce, train

    train.register(sub)
    diagnose.register(sub)
    info.register_presets(sub)
    reproduce.register(sub)
    info.register_datasets(sub)
    demo.register(sub)
    experiments.register(sub)
    for command in sub.choices.values():
        _add_common(command, top=False)
    return parser
