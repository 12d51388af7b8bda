"""``fathom train``: one config over seeds, any task; and the config arguments it shares with
``fathom diagnose`` (``--config | --preset``, the generated flags, dotted overrides)."""

from __future__ import annotations

import argparse
from typing import Any

from fathom.cli.flags import add_config_flags, add_threads, given_flags
from fathom.config import (
    ExperimentConfig,
    apply_overrides,
    config_to_dict,
    load_config,
    parse_override,
)
from fathom.errors import FathomError

__all__ = ["OVERRIDES_HELP", "add_config_args", "config_from_args", "register", "run"]

OVERRIDES_HELP = (
    "KEY=VALUE: dotted config overrides, anywhere among the flags, applied after them "
    "(e.g. model.norm=batch train.monitor=val_loss)"
)


def add_config_args(parser: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """``--config | --preset`` and every config flag; returns the source group so a command
    can add another source (``diagnose --checkpoint``)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="FILE", help="YAML config file (safe-loaded)")
    source.add_argument(
        "--preset", metavar="NAME", help="a published configuration (see `fathom presets`)"
    )
    add_config_flags(parser)
    parser.set_defaults(overrides_ok=True)
    return source


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """Defaults, then ``--config`` or ``--preset``, then the flags, then dotted overrides."""
    if args.preset:
        from fathom.models.presets import load_preset

        cfg = load_preset(args.preset)
    else:
        cfg = load_config(args.config) if args.config else ExperimentConfig()
    dotted = [parse_override(text) for text in args.overrides]
    return apply_overrides(cfg, [*given_flags(args), *dotted])


def register(sub: Any) -> None:
    """Add ``fathom train``."""
    train = sub.add_parser(
        "train",
        help="train a model over seeds and print the results",
        description="Train one config over seeds: node classification (transductive or "
        "--inductive), graph classification with --folds cross-validation, link prediction, "
        "a graph autoencoder or point-cloud segmentation (--task).",
        epilog=OVERRIDES_HELP,
    )
    add_config_args(train)
    add_threads(train)
    train.add_argument("--json", metavar="PATH", help="write the results as JSON")
    train.add_argument(
        "--history", action="store_true", help="include per-epoch history in the JSON"
    )
    train.add_argument(
        "--print-config", action="store_true", help="print the resolved config as YAML and exit"
    )
    train.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="save the first seed's trained model (weights + config) here, for `fathom diagnose`",
    )
    train.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Train, print the results table, write the JSON and checkpoint asked for."""
    from fathom.devices import resolve_device
    from fathom.experiments.run import build_task_data, describe_data, run_experiment
    from fathom.report.console import console, err_console, progress_bar, results_table
    from fathom.tasks import get_task

    cfg = config_from_args(args)
    spec = get_task(cfg.task)
    if args.print_config:
        import yaml

        console.print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    # a device this machine lacks (or bf16 off CUDA) fails before any data loads
    resolve_device(cfg.device, cfg.train.precision)
    if args.checkpoint and not spec.saves_models:
        raise FathomError(f"--checkpoint saves node-classification models, not task {cfg.task!r}")
    with err_console.status(f"loading {cfg.data.name} …"):
        data = build_task_data(cfg)
    title = spec.title(cfg, describe_data(data, cfg.task))
    # one progress step per epoch of every model trained (graph tasks: every fold)
    per_seed = cfg.train.epochs * spec.fits_per_seed(cfg)
    state = {"seed": cfg.seed, "epochs_before": 0, "done": 0}
    with progress_bar() as progress:
        task = progress.add_task("training", total=cfg.seeds * per_seed)

        def on_epoch(record: dict[str, float]) -> None:
            epoch = int(record["epoch"])
            if epoch == 1 and state["done"]:  # a new fold started
                state["epochs_before"] += cfg.train.epochs
            state["done"] = epoch
            shown = next((k for k in ("val_miou", "val_acc", "val_auc") if k in record), None)
            progress.update(
                task,
                completed=min(state["epochs_before"] + epoch, cfg.seeds * per_seed),
                description=f"seed {state['seed']}: "
                + (
                    f"{shown.replace('_', ' ')} {100 * record[shown]:.1f}%"
                    if shown
                    else f"loss {record['loss']:.3f}"
                ),
            )

        def on_run_end(seed: int, run: dict[str, Any]) -> None:
            state["seed"] = seed + 1
            state["epochs_before"] = (seed + 1 - cfg.seed) * per_seed
            state["done"] = 0
            progress.update(task, completed=state["epochs_before"])

        saved: dict[str, Any] = {}

        def on_model(seed: int, model: Any) -> None:
            if seed == cfg.seed:
                saved["model"] = model

        result = run_experiment(
            cfg,
            data,
            on_run_end=on_run_end,
            callbacks=[on_epoch],
            on_model=on_model if args.checkpoint else None,
        )
    if args.checkpoint and "model" in saved:
        from fathom.config import with_seed
        from fathom.experiments.checkpoint import save_checkpoint

        first = result.runs[0]
        save_checkpoint(
            args.checkpoint,
            with_seed(cfg, cfg.seed),
            saved["model"],
            num_features=data.num_features,
            num_classes=int(data.y.max()) + 1,
            metrics={k: first[k] for k in ("train_acc", "val_acc", "test_acc") if k in first},
        )
        err_console.print(f"wrote checkpoint {args.checkpoint}")
    console.print(results_table(title, result.runs, result.aggregate))
    for line in spec.summary_lines(cfg, result):
        console.print(line)
    for run_ in result.runs:
        if run_["status"] != "done":
            fold = f" fold {run_['fold']}" if "fold" in run_ else ""
            err_console.print(f"seed {run_['seed']}{fold}: {run_['message']}")
    if args.json:
        from fathom.files import write_json

        write_json(args.json, result.to_dict(history=args.history))
        err_console.print(f"wrote {args.json}")
    return 0
