"""The ``fathom`` command: thin typed subcommands over the Python API.

One module per command (:mod:`~fathom.cli.train`, :mod:`~fathom.cli.diagnose`,
:mod:`~fathom.cli.reproduce`, :mod:`~fathom.cli.demo`, :mod:`~fathom.cli.experiments` for
sweep / runs / export / report, :mod:`~fathom.cli.info` for datasets / presets); the config
flags are generated from the config (:mod:`~fathom.cli.flags`). Bad input (a
:class:`~fathom.errors.FathomError`, or a bad flag) prints one line to stderr and exits with
status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from fathom.cli.flags import split_extras
from fathom.cli.parser import EXIT_BAD_INPUT, build_parser
from fathom.devices import set_threads
from fathom.errors import FathomError

__all__ = ["main"]

EXIT_INTERRUPTED = 130


def _speaks() -> bool:
    """Whether this process prints errors: any process but a torchrun worker of local rank
    > 0 (every rank meets the same bad input; one line per machine is enough)."""
    from fathom import distributed

    try:
        launch = distributed.from_env()
    except FathomError:
        return True
    return launch is None or launch.speaks


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fathom`` console script; returns the exit status.

    Dotted config overrides (``model.depth=4``) may appear anywhere among the flags of the
    commands that build a config (``train``, ``diagnose``); ``--threads N`` is applied first.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    overrides, unknown = split_extras(extras)
    if unknown or (overrides and not args.overrides_ok):
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    args.overrides = overrides
    args.argv = argv  # recorded by commands that write what they ran
    try:
        set_threads(args.threads)
        return int(args.run(args))
    except FathomError as exc:
        if args.debug:
            raise
        if _speaks():
            sys.stderr.write(f"fathom {args.command}: error: {exc}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write(f"fathom {args.command}: interrupted\n")
        return EXIT_INTERRUPTED
