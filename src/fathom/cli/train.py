"""``fathom train``: one config over seeds, any task; and the config arguments it shares with
``fathom diagnose`` (``--config | --preset``, the generated flags, dotted overrides)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from fathom.cli.commands import add_command
from fathom.cli.flags import (
    add_config_flags,
    add_threads,
    add_tracker_flags,
    given_flags,
    open_tracker_from_args,
    positive_int,
)
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
    if args.preset is not None:
        from fathom.models.presets import load_preset

        cfg = load_preset(args.preset)
    else:
        cfg = load_config(args.config) if args.config else ExperimentConfig()
    dotted = [parse_override(text) for text in args.overrides]
    return apply_overrides(cfg, [*given_flags(args), *dotted])


def register(sub: Any) -> None:
    """Add ``fathom train``."""
    train = add_command(
        sub,
        "train",
        outputs={"json": "file", "checkpoint": "file", "resume": "file"},
        inputs={"config": "--config", "data.name": "--dataset"},
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
    add_tracker_flags(train)
    train.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="save the first seed's trained model (weights + config) here, for `fathom diagnose`",
    )
    parallel = train.add_argument_group(
        "processes and resuming",
        "Data-parallel training on torch.distributed (DDP): each process holds the graph and "
        "trains on its own share of every epoch's seed nodes or partitions. On one machine: "
        "--nproc N. Across machines: torchrun --nnodes M --nproc-per-node N "
        "--rdzv-backend c10d --rdzv-endpoint HOST:PORT -m fathom.cli train … on each. Rank 0 "
        "alone prints and writes results.",
    )
    parallel.add_argument(
        "--nproc",
        type=positive_int,
        metavar="N",
        help="train on N processes on this machine (gloo on the CPU, NCCL on CUDA with one GPU "
        "each), started as `torchrun --standalone --nproc-per-node N` would; each gets "
        "CPU cores // N threads unless --threads says. Node classification with a sampling "
        "loader (--loader neighbor, cluster, random-partition, saint); train.batch_size is "
        "per process",
    )
    parallel.add_argument(
        "--resume",
        metavar="FILE",
        help="keep the run's progress in FILE (saved every --resume-every epochs by rank 0) "
        "and, when FILE exists, continue from it with the same numbers an uninterrupted run "
        "gives; FILE is removed once the results are written (node classification)",
    )
    parallel.add_argument(
        "--resume-every",
        type=positive_int,
        metavar="N",
        help="epochs between two saves of --resume FILE (default: 1)",
    )
    parallel.add_argument(
        "--dist-timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        help="with several processes, how long a rank waits for the others in a collective "
        "before the run fails (default: 1800, torch's)",
    )
    train.set_defaults(run=run)


def _positive_seconds(text: str) -> float:
    """argparse type of a number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    """Train, print the results table, write the JSON and checkpoint asked for; with
    ``--nproc N`` start N workers that do; as a torchrun worker, train as one rank."""
    from fathom import distributed
    from fathom.devices import resolve_device
    from fathom.experiments.run import check_processes
    from fathom.report.console import console
    from fathom.tasks import get_task

    launch = distributed.from_env()
    if args.nproc is not None and launch is not None:
        raise FathomError(
            "--nproc starts its own workers; under torchrun leave it out (torchrun's "
            "--nnodes / --nproc-per-node set the processes)"
        )
    cfg = config_from_args(args)
    spec = get_task(cfg.task)
    if args.print_config:
        if launch is None or launch.rank == 0:
            import yaml

            console.print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    processes = args.nproc or (launch.world_size if launch is not None else 1)
    check_processes(cfg, processes, resume=args.resume is not None)
    if args.dist_timeout is not None and processes == 1:
        raise FathomError("--dist-timeout applies to runs on several processes (--nproc N)")
    if args.resume_every is not None and args.resume is None:
        raise FathomError("--resume-every applies with --resume FILE")
    # a device this machine lacks (or bf16 off CUDA) fails before any data loads
    device = resolve_device(cfg.device, cfg.train.precision)
    if args.checkpoint and not spec.saves_models:
        raise FathomError(f"--checkpoint saves node-classification models, not task {cfg.task!r}")
    if args.nproc is not None and args.nproc > 1:
        import torch

        if device.type == "cuda" and args.nproc > torch.cuda.device_count():
            raise FathomError(
                f"--nproc {args.nproc} on CUDA needs a GPU per process; this machine has "
                f"{torch.cuda.device_count()}"
            )
        from fathom.cli.launch import launch_workers

        return launch_workers(args.argv, args.nproc, resume=args.resume, command=args.command)
    if launch is not None and launch.world_size > 1:
        return _worker(args, cfg, launch)
    return _train(args, cfg)


def _worker(args: argparse.Namespace, cfg: Any, launch: Any) -> int:
    """One rank of a multi-process run: its threads, its device (``cuda:LOCAL_RANK``), the
    process group; then :func:`_train`. A collective that fails (a peer died, the timeout
    passed) ends this rank with one line and exit status 1."""
    import torch

    from fathom import distributed
    from fathom.cli.launch import EXIT_RUN_FAILED, LAUNCHER_ENV
    from fathom.devices import resolve_device, set_threads, threads_per_process

    if args.threads is None:
        set_threads(threads_per_process(launch.local_world_size))
    device = resolve_device(cfg.device, cfg.train.precision)
    if device.type == "cuda":
        if launch.local_rank >= torch.cuda.device_count():
            raise FathomError(
                f"local rank {launch.local_rank} needs cuda:{launch.local_rank}; this machine "
                f"has {torch.cuda.device_count()} CUDA device(s)"
            )
        device = torch.device("cuda", launch.local_rank)
    timeout = distributed.DEFAULT_TIMEOUT_S if args.dist_timeout is None else args.dist_timeout
    distributed.init(launch, device, timeout)
    try:
        return _train(args, cfg)
    except RuntimeError as exc:
        if not _lost_peers(exc):
            raise
        # under --nproc the launcher names the rank that died, in one line
        if launch.speaks and os.environ.get(LAUNCHER_ENV) != "nproc":
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc)
            sys.stderr.write(
                f"fathom {args.command}: error: rank {launch.rank} lost the other ranks "
                f"({first}); the run failed\n"
            )
        return EXIT_RUN_FAILED
    finally:
        distributed.shutdown()


def _lost_peers(exc: RuntimeError) -> bool:
    """Whether ``exc`` is a collective that failed because a peer died or timed out (gloo
    raises plain RuntimeErrors; torch's DistError subclasses say so)."""
    import torch.distributed as dist

    text = str(exc)
    return isinstance(exc, dist.DistError) or any(
        word in text
        for word in ("gloo", "NCCL", "Connection reset", "Connection closed", "Timed out")
    )


def _train(args: argparse.Namespace, cfg: Any) -> int:
    """The run itself, on one process or as one rank (rank 0 alone prints and writes)."""
    from fathom import distributed
    from fathom.tasks import get_task

    spec = get_task(cfg.task)
    main = distributed.is_main()
    experiment = args.preset or (Path(args.config).stem if args.config else cfg.data.name)
    tracker = open_tracker_from_args(args, experiment, config=cfg) if main else None
    with tracker or contextlib.nullcontext():
        return _train_tracked(args, cfg, spec, main, tracker)


def _train_tracked(args: argparse.Namespace, cfg: Any, spec: Any, main: bool, tracker: Any) -> int:
    """:func:`_train` once the tracker (``--tracker``, rank 0) is open."""
    from fathom import distributed
    from fathom.experiments.resume import RunResume
    from fathom.experiments.run import build_task_data, describe_data, run_experiment
    from fathom.report.console import console, err_console, progress_bar, results_table

    every = 1 if args.resume_every is None else args.resume_every
    resume = None if args.resume is None else RunResume(args.resume, cfg, every)
    if main and resume is not None and resume.resumed:
        err_console.print(f"resuming from {args.resume}: {resume.progress}")
    with (
        distributed.main_first(),
        err_console.status(f"loading {cfg.data.name} …") if main else (contextlib.nullcontext()),
    ):
        data = build_task_data(cfg)
    title = spec.title(cfg, describe_data(data, cfg.task))
    # one progress step per epoch of every model trained (graph tasks: every fold)
    per_seed = cfg.train.epochs * spec.fits_per_seed(cfg)
    state = {"seed": cfg.seed, "epochs_before": 0, "done": 0}
    with progress_bar(disable=not main) as progress:
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
            if tracker is not None:
                tracker.log_run(run)
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
            callbacks=[on_epoch] if main else [],
            on_model=on_model if args.checkpoint and main else None,
            resume=resume,
        )
    if not main:
        return 0
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
    if tracker is not None:
        tracker.finish(
            artifacts=[p for p in (args.json, args.checkpoint) if p], metrics=result.aggregate
        )
    if resume is not None:
        resume.finish()
    return 0
