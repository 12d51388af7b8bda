"""``fathom diagnose``: a graph's structure and over-squashing, a model's per-layer
over-smoothing (:mod:`fathom.experiments.diagnosis`)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from fathom.cli.commands import add_command
from fathom.cli.flags import add_threads, given_flags, positive_int
from fathom.cli.train import OVERRIDES_HELP, add_config_args, config_from_args
from fathom.config import FLAG_FOR_KEY, ExperimentConfig, apply_overrides, parse_override
from fathom.errors import FathomError

__all__ = ["MODEL_FLAG_KEYS", "register", "run"]

MODEL_FLAG_KEYS = tuple(key for key in FLAG_FOR_KEY if key.startswith("model."))
"""Config flags that describe the model (a checkpoint fixes them)."""


def register(sub: Any) -> None:
    """Add ``fathom diagnose``."""
    diagnose = add_command(
        sub,
        "diagnose",
        outputs={"json": "file", "out": "dir"},
        inputs={"config": "--config", "checkpoint": "--checkpoint", "data.name": "--dataset"},
        description=(
            "Diagnose a graph (structure report, curvature, effective resistance) and, given a "
            "model (--conv/--depth/… flags, --config, --preset or --checkpoint), its per-layer "
            "over-smoothing metrics and Jacobian sensitivity by hop. Writes plots to --out."
        ),
        epilog=OVERRIDES_HELP,
    )
    add_config_args(diagnose).add_argument(
        "--checkpoint", metavar="FILE", help="a trained model saved by `fathom train --checkpoint`"
    )
    add_threads(diagnose)
    diagnose.add_argument(
        "--train",
        action="store_true",
        help="train the model (first seed) and diagnose it before and after",
    )
    from fathom.diagnostics.metrics import METRICS

    diagnose.add_argument(
        "--metrics",
        default="all",
        help=f"per-layer metrics, comma-separated, or 'all' (default): {', '.join(METRICS)}",
    )
    diagnose.add_argument(
        "--targets",
        type=positive_int,
        default=16,
        help="target nodes of the Jacobian sensitivity (default 16)",
    )
    diagnose.add_argument(
        "--hops", type=positive_int, default=8, help="receptive-field hops (default 8)"
    )
    diagnose.add_argument(
        "--quick",
        action="store_true",
        help="skip curvature, effective resistance and Jacobian sensitivity",
    )
    diagnose.add_argument(
        "--out",
        metavar="DIR",
        help="folder for plots and diagnosis.md (default: runs/diagnose/<dataset>)",
    )
    diagnose.add_argument("--json", metavar="PATH", help="write the diagnosis as JSON")
    diagnose.set_defaults(run=run)


def _config(args: argparse.Namespace) -> tuple[ExperimentConfig, dict[str, Any] | None]:
    """The config (and checkpoint payload) the flags describe."""
    if not args.checkpoint:
        return config_from_args(args), None
    from fathom.experiments.checkpoint import load_checkpoint

    payload = load_checkpoint(args.checkpoint)
    flags = given_flags(args)
    if any(key in MODEL_FLAG_KEYS for key, _ in flags):
        raise FathomError("--checkpoint fixes the model; drop the model flags (--conv, --depth, …)")
    dotted = [parse_override(t) for t in args.overrides]
    return apply_overrides(payload["config"], [*flags, *dotted]), payload


def run(args: argparse.Namespace) -> int:
    """Diagnose, print the tables, write the report (and JSON)."""
    from fathom.data.build import build_dataset
    from fathom.devices import resolve_device
    from fathom.diagnostics.probes import resolve_metrics
    from fathom.experiments.diagnosis import check_diagnosable, diagnose_config, grid_reference
    from fathom.files import write_json
    from fathom.report.console import console, err_console
    from fathom.report.diagnose import decay_lines, diagnosis_tables, write_diagnosis_report

    if args.metrics != "all":
        resolve_metrics(args.metrics)  # fail fast on a bad name
    cfg, payload = _config(args)
    resolve_device(cfg.device, cfg.train.precision)
    check_diagnosable(cfg)
    has_model = bool(
        payload is not None
        or args.config
        or args.preset
        or args.train
        or any(getattr(args, key, None) is not None for key in MODEL_FLAG_KEYS)
    )
    with err_console.status(f"loading {cfg.data.name} …"):
        data = build_dataset(cfg.data, seed=cfg.seed)
    result: dict[str, Any] = {"command": "fathom " + shlex.join(args.argv)}
    with err_console.status("diagnosing …") as status:
        result.update(
            diagnose_config(
                cfg,
                data,
                model=has_model,
                checkpoint=payload,
                train=args.train,
                metrics=args.metrics,
                targets=args.targets,
                hops=args.hops,
                quick=args.quick,
                progress=lambda message: status.update(f"{message} …"),
            )
        )
        reference = grid_reference(data.num_nodes, args.hops, cfg.seed)
    out = Path(args.out) if args.out else Path("runs") / "diagnose" / Path(cfg.data.name).stem
    paths = write_diagnosis_report(out, result, reference)
    for table in diagnosis_tables(result):
        console.print(table)
    for line in decay_lines(result):
        console.print(line)
    for p in paths:
        err_console.print(f"wrote {p}")
    if args.json:
        write_json(args.json, result)
        err_console.print(f"wrote {args.json}")
    return 0
