"""The subcommands of ``fathom``: their names, one-line help and declared paths."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["COMMANDS", "add_command"]

COMMANDS: dict[str, str] = {
    "train": "train a model over seeds and print the results",
    "diagnose": "measure over-smoothing and over-squashing: graph structure, per-layer metrics",
    "presets": "list the published configurations (presets)",
    "reproduce": "run a reproduction suite: ours vs published, side by side",
    "datasets": "list datasets, where they are and their size",
    "demo": "depth study on a generated graph: plain vs residual GCN",
    "sweep": "run a sweep spec into a results store (resumable)",
    "runs": "list the runs in a results store",
    "export": "write a store's runs as JSON or CSV",
    "import": "read JSON exports of runs into a store (never replacing a stored result)",
    "report": "tables and plots (Markdown, HTML, PNG) from a store",
}
"""Every subcommand and its one-line help, in the order ``fathom --help`` lists them."""


def add_command(
    sub: Any,
    name: str,
    *,
    outputs: dict[str, str] | None = None,
    inputs: dict[str, str] | None = None,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` (help from :data:`COMMANDS`) and declare its paths:
    ``outputs`` maps an option's dest to ``"file"`` or ``"dir"`` (named ``--dest`` in
    messages), ``inputs`` the dests of the files it reads to their names in messages. Both
    are checked before the command runs (:func:`fathom.cli.check_paths`): every output
    writable, none of them an input or another output."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=COMMANDS[name], **kwargs)
    parser.set_defaults(outputs=outputs or {}, inputs=inputs or {})
    return parser
