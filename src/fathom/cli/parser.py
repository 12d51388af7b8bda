"""The ``fathom`` argument parser: one-line errors, one subcommand per module."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

__all__ = ["EXIT_BAD_INPUT", "Parser", "build_parser"]

EXIT_BAD_INPUT = 2


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message`` on one line and exit with status 2."""
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_BAD_INPUT)


def build_parser() -> Parser:
    """The parser of every subcommand; each sets ``args.run`` (the command) and
    ``args.overrides_ok`` (whether ``key=value`` tokens may appear among its flags)."""
    from fathom.cli import demo, diagnose, experiments, info, reproduce, train

    parser = Parser(prog="fathom", description="Build, train, diagnose and benchmark deep GNNs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train.register(sub)
    diagnose.register(sub)
    info.register_presets(sub)
    reproduce.register(sub)
    info.register_datasets(sub)
    demo.register(sub)
    experiments.register(sub)
    for command in sub.choices.values():  # --debug after the command too (SUPPRESS: a
        # subcommand's default would overwrite the top level's --debug)
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser
