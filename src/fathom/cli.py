"""The ``fathom`` command: thin typed subcommands over the Python API.

Bad input (a :class:`~fathom.errors.FathomError`, or a bad flag) prints one line to stderr
and exits with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from fathom.config import (
    FLAG_FOR_KEY,
    ExperimentConfig,
    apply_overrides,
    config_to_dict,
    load_config,
    parse_override,
)
from fathom.errors import FathomError
from fathom.experiments.store import STATUSES

__all__ = ["main"]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_BAD_INPUT)


# --------------------------------------------------------------------------- parser

# flag -> (config key, argparse type, help)
TRAIN_FLAGS: dict[str, tuple[type, str]] = {
    "--dataset": (str, "dataset name (see `fathom datasets`), generator, or .npz/.pt file"),
    "--data-dir": (str, "folder laid out like PyG dataset roots (default: $FATHOM_DATA, cache)"),
    "--rewire": (str, "graph rewiring against over-squashing: none, sdrf, fosr"),
    "--rewire-iterations": (int, "rewiring steps (SDRF loops / FoSR added edges; default 50)"),
    "--arch": (
        str,
        "model family (also --model): deep (blocks), sgc, gfnn, appnp, sign, incep, dgi, gae, vgae",
    ),
    "--conv": (
        str,
        "message-passing operator: gcn, gat, gatv2, sage, gin, gcn2, gcn2-star, gen, gated, "
        "transformer, cheb, mlp; point clouds (--task segmentation): edge, mr, sage, gin",
    ),
    "--depth": (int, "number of message-passing layers (propagation steps for sgc/appnp/…)"),
    "--hidden": (int, "hidden width"),
    "--skip": (str, "skip connection: none, res, res+, dense, initial, jk"),
    "--jk": (str, "jumping-knowledge mode of --skip jk: cat, max, lstm"),
    "--norm": (
        str,
        "normalisation: none, batch, layer, pair, pair-si, pair-scs, node, mean, group, graph",
    ),
    "--aggr": (str, "neighbourhood aggregation where the conv allows it: sum, mean, max, min"),
    "--alpha": (float, "initial-residual / teleport weight (GCNII, APPNP, --skip initial)"),
    "--theta": (float, "GCNII's lambda (identity-mapping strength)"),
    "--dropout": (float, "dropout probability in [0, 1)"),
    "--drop-edge": (float, "DropEdge: fraction of edges dropped each epoch"),
    "--drop-node": (float, "DropNode: probability of dropping a node's input features"),
    "--act": (str, "activation: relu, elu, gelu, leaky_relu, tanh, identity"),
    "--label-smoothing": (float, "label smoothing of the training loss"),
    "--diagnose-every": (
        int,
        "measure per-layer over-smoothing metrics every K epochs and of the final model",
    ),
    "--epochs": (int, "maximum number of epochs"),
    "--lr": (float, "learning rate"),
    "--weight-decay": (float, "weight decay"),
    "--patience": (int, "early-stopping patience in epochs (0: off)"),
    "--seed": (int, "first seed"),
    "--seeds": (int, "number of seeds to train and aggregate"),
    "--monitor": (
        str,
        "validation metric picking the best epoch: auto, val_acc, val_loss, val_auc, val_ap, "
        "val_miou",
    ),
    "--task": (str, "learning task: node, graph, link, autoencoder, segmentation"),
    "--inductive": (bool, "node task: train on the subgraph of training nodes only"),
    "--batch-size": (int, "graphs (graph task) or point clouds (segmentation) per mini-batch"),
    "--folds": (int, "cross-validation folds (graph task; default 10)"),
    "--readout": (str, "graph readout: sum, mean, max, attention"),
    "--pool": (str, "hierarchical pooling between blocks: none, topk, sag"),
    "--decoder": (str, "link decoder: dot, hadamard, mlp"),
    "--corrupt-edges": (float, "denoising autoencoder: fraction of input edges hidden each step"),
    "--corrupt-features": (float, "denoising autoencoder: fraction of feature entries zeroed"),
    "--memory": (
        str,
        "activation memory: plain, checkpoint (recompute per block), reversible (RevGNN blocks)",
    ),
    "--k": (int, "segmentation: neighbours per point of each layer's dynamic k-NN graph"),
}
# extra spellings of a flag (PyG users say "model" for the model family)
FLAG_ALIASES: dict[str, tuple[str, ...]] = {"--arch": ("--model",)}
KEY_FOR_FLAG = {flag: key for key, flag in FLAG_FOR_KEY.items()}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _add_status_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--status",
        choices=STATUSES,
        metavar="STATUS",
        help=f"only runs with this status ({', '.join(STATUSES)})",
    )


def _add_config_args(parser: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """``--config | --preset``, the config flags and dotted overrides (``train``,
    ``diagnose``); returns the source group so a command can add another source."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="FILE", help="YAML config file (safe-loaded)")
    source.add_argument(
        "--preset", metavar="NAME", help="a published configuration (see `fathom presets`)"
    )
    for flag, (typ, text) in TRAIN_FLAGS.items():
        names = (flag, *FLAG_ALIASES.get(flag, ()))
        if typ is bool:
            parser.add_argument(
                *names, action="store_const", const=True, help=text, dest=KEY_FOR_FLAG[flag]
            )
        else:
            parser.add_argument(*names, type=typ, help=text, dest=KEY_FOR_FLAG[flag])
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted config overrides, e.g. model.norm=batch train.monitor=val_loss",
    )
    return source


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fathom", description="Build, train, diagnose and benchmark deep GNNs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser(
        "train",
        help="train a model over seeds and print the results",
        description="Train one config over seeds: node classification (transductive or "
        "--inductive), graph classification with --folds cross-validation, link prediction, "
        "or a graph autoencoder (--task).",
    )
    _add_config_args(train)
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

    diagnose = sub.add_parser(
        "diagnose",
        help="measure over-smoothing and over-squashing: graph structure, per-layer metrics",
        description=(
            "Diagnose a graph (structure report, curvature, effective resistance) and, given a "
            "model (--conv/--depth/… flags, --config, --preset or --checkpoint), its per-layer "
            "over-smoothing metrics and Jacobian sensitivity by hop. Writes plots to --out."
        ),
    )
    _add_config_args(diagnose).add_argument(
        "--checkpoint", metavar="FILE", help="a trained model saved by `fathom train --checkpoint`"
    )
    diagnose.add_argument(
        "--train",
        action="store_true",
        help="train the model (first seed) and diagnose it before and after",
    )
    diagnose.add_argument(
        "--metrics", default="all", help="per-layer metrics, comma-separated, or 'all' (default)"
    )
    diagnose.add_argument(
        "--targets",
        type=_positive_int,
        default=16,
        help="target nodes of the Jacobian sensitivity (default 16)",
    )
    diagnose.add_argument(
        "--hops", type=_positive_int, default=8, help="receptive-field hops (default 8)"
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

    presets = sub.add_parser("presets", help="list the published configurations (presets)")
    presets.add_argument("--json", metavar="PATH", help="write the list as JSON")

    reproduce = sub.add_parser(
        "reproduce",
        help="run a reproduction suite: ours vs published, side by side",
        description="Run the presets of a reproduction suite over seeds through the "
        "experiment engine (resumable store) and compare with the published figures.",
    )
    reproduce.add_argument(
        "suite",
        help="planetoid, depth, heterophily, tu (GIN graph classification, 10-fold CV), gae "
        "(GAE / VGAE link prediction), deepgcn (ResGCN / PlainGCN point-cloud segmentation, "
        "28-151 layers) (trained through the store); oversmoothing "
        "(Dirichlet energy by layer: GCN vs remedies); neighbors-match (Tree-NeighborsMatch)",
    )
    reproduce.add_argument("--datasets", help="comma-separated subset of the suite's datasets")
    reproduce.add_argument("--models", help="comma-separated subset of the suite's models")
    reproduce.add_argument("--depths", help="comma-separated depths (default: the suite's)")
    reproduce.add_argument(
        "--seeds",
        type=_positive_int,
        help="seeds (splits for heterophily; whole cross-validations for tu); default 10, "
        "tu and neighbors-match 1",
    )
    reproduce.add_argument(
        "--store",
        default="runs/reproduce.db",
        help="SQLite results store (default runs/reproduce.db)",
    )
    reproduce.add_argument("--workers", type=_positive_int, default=1, help="worker processes")
    reproduce.add_argument(
        "--threads", type=_positive_int, help="torch threads per run (default cores/workers)"
    )
    reproduce.add_argument("--retry-failed", action="store_true", help="re-run failed runs")
    reproduce.add_argument("--dry-run", action="store_true", help="list the cells, run nothing")
    reproduce.add_argument(
        "--no-run",
        action="store_true",
        help="report what the store holds for these cells, train nothing",
    )
    reproduce.add_argument(
        "--report", metavar="DIR", help="write a Markdown report (and depth plots) here"
    )
    reproduce.add_argument("--json", metavar="PATH", help="write one row per cell as JSON")
    reproduce.add_argument(
        "--epochs",
        type=_positive_int,
        help="cap on training epochs (oversmoothing; neighbors-match: passes over the data, "
        "evaluated every min(100, cap) passes)",
    )
    reproduce.add_argument(
        "--radii", help="neighbors-match: comma-separated tree radii (default 2..6)"
    )
    reproduce.add_argument(
        "--device", default="cpu", help="neighbors-match: torch device (cpu, cuda)"
    )
    reproduce.add_argument(
        "--time-limit",
        type=float,
        metavar="S",
        help="neighbors-match: stop each run after S seconds (it reports the best so far)",
    )

    datasets = sub.add_parser("datasets", help="list datasets, where they are and their size")
    datasets.add_argument("--data-dir", help="folder laid out like PyG dataset roots")
    datasets.add_argument("--json", metavar="PATH", help="write the list as JSON")

    demo = sub.add_parser(
        "demo",
        help="depth study on a generated graph: plain vs residual GCN",
        description="Plain vs residual GCN at several depths on a contextual "
        "stochastic block model graph; prints a table, writes a "
        "plot.",
    )
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument("--depths", default="2,8,32", help="comma-separated depths (default 2,8,32)")
    demo.add_argument("--seeds", type=int, default=2, help="seeds per point (default 2)")
    demo.add_argument("--epochs", type=int, default=100, help="epochs per run (default 100)")
    demo.add_argument(
        "--dropout",
        type=float,
        default=0.1,
        help="dropout before every layer (default 0.1: at 0.5 the noise that 32 "
        "residual layers add up drowns the signal)",
    )
    demo.add_argument("--json", metavar="PATH", help="write the results as JSON")
    sweep = sub.add_parser(
        "sweep",
        help="run a sweep spec into a results store (resumable)",
        description="Expand a sweep spec (base config + grid/zip axes + "
        "exclusions) and run every run the store lacks.",
    )
    sweep.add_argument("spec", help="sweep YAML file")
    sweep.add_argument("--store", default="runs.db", help="SQLite results store (default runs.db)")
    sweep.add_argument("--workers", type=_positive_int, default=1, help="parallel worker processes")
    sweep.add_argument(
        "--threads", type=_positive_int, help="torch threads per run (default cores/workers)"
    )
    sweep.add_argument("--retry-failed", action="store_true", help="re-run runs that failed")
    sweep.add_argument("--dry-run", action="store_true", help="list the runs, run nothing")
    sweep.add_argument("--json", metavar="PATH", help="write the sweep summary as JSON")

    runs = sub.add_parser("runs", help="list the runs in a results store")
    runs.add_argument("store", help="SQLite results store")
    runs.add_argument("--sweep", help="only runs of this sweep")
    _add_status_flag(runs)
    runs.add_argument("--json", metavar="PATH", help="write the listed runs as JSON")

    export = sub.add_parser("export", help="write a store's runs as JSON or CSV")
    export.add_argument("store", help="SQLite results store")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("--sweep", help="only runs of this sweep")
    _add_status_flag(export)
    export.add_argument("--out", metavar="PATH", help="file to write (default: stdout)")
    export.add_argument("--no-history", action="store_true", help="leave out per-epoch history")

    report = sub.add_parser("report", help="tables and plots (Markdown, HTML, PNG) from a store")
    report.add_argument("store", help="SQLite results store")
    report.add_argument("--sweep", help="only runs of this sweep")
    report.add_argument("--out", default="report", help="output folder (default: report)")
    report.add_argument("--json", metavar="PATH", help="write the aggregated groups as JSON")
    return parser


# --------------------------------------------------------------------------- commands


def _train_config(args: argparse.Namespace) -> ExperimentConfig:
    if args.preset:
        from fathom.models.presets import load_preset

        cfg = load_preset(args.preset)
    else:
        cfg = load_config(args.config) if args.config else ExperimentConfig()
    flag_overrides = [
        (key, getattr(args, key))
        for key in KEY_FOR_FLAG.values()
        if getattr(args, key, None) is not None
    ]
    dotted = [parse_override(text) for text in args.overrides]
    return apply_overrides(cfg, [*flag_overrides, *dotted])


def cmd_train(args: argparse.Namespace) -> int:
    from fathom.experiments.run import build_task_data, describe_data, run_experiment
    from fathom.report.console import console, err_console, progress_bar, results_table
    from fathom.tasks import get_task

    cfg = _train_config(args)
    spec = get_task(cfg.task)
    if args.print_config:
        import yaml

        console.print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
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
    for run in result.runs:
        if run["status"] != "done":
            fold = f" fold {run['fold']}" if "fold" in run else ""
            err_console.print(f"seed {run['seed']}{fold}: {run['message']}")
    if args.json:
        from fathom.report.files import write_json

        write_json(args.json, result.to_dict(history=args.history))
        err_console.print(f"wrote {args.json}")
    return 0


MODEL_FLAG_KEYS = tuple(
    KEY_FOR_FLAG[f] for f in TRAIN_FLAGS if KEY_FOR_FLAG[f].startswith("model.")
)


def cmd_diagnose(args: argparse.Namespace) -> int:
    import shlex

    from fathom.data.build import build_dataset
    from fathom.diagnostics.diagnose import diagnose_graph
    from fathom.diagnostics.probes import resolve_metrics
    from fathom.report.console import console, err_console
    from fathom.report.diagnose import decay_lines, diagnosis_tables, write_diagnosis_report
    from fathom.report.files import write_json

    if args.metrics != "all":
        resolve_metrics(args.metrics)  # fail fast on a bad name
    payload = None
    if args.checkpoint:
        from fathom.experiments.checkpoint import load_checkpoint

        payload = load_checkpoint(args.checkpoint)
        flags = [
            (key, getattr(args, key))
            for key in KEY_FOR_FLAG.values()
            if getattr(args, key, None) is not None
        ]
        if any(key in MODEL_FLAG_KEYS for key, _ in flags):
            raise FathomError(
                "--checkpoint fixes the model; drop the model flags (--conv, --depth, …)"
            )
        cfg = apply_overrides(
            payload["config"], [*flags, *(parse_override(t) for t in args.overrides)]
        )
    else:
        cfg = _train_config(args)
    from fathom.tasks import get_task

    if not get_task(cfg.task).saves_models or cfg.data.inductive:
        raise FathomError(
            f"fathom diagnose measures transductive node-classification models, not task "
            f"{cfg.task!r}{' (inductive)' if cfg.data.inductive else ''}"
        )
    has_model = bool(
        payload is not None
        or args.config
        or args.preset
        or args.train
        or any(getattr(args, key, None) is not None for key in MODEL_FLAG_KEYS)
    )
    with err_console.status(f"loading {cfg.data.name} …"):
        data = build_dataset(cfg.data, seed=cfg.seed)
    result: dict[str, Any] = {
        "command": "fathom " + shlex.join(args.argv),
        "dataset": {
            "name": cfg.data.name,
            "num_nodes": data.num_nodes,
            "num_edges": data.num_edges,
        },
    }
    with err_console.status("diagnosing …") as status:

        def say(message: str) -> None:
            status.update(f"{message} …")

        result.update(
            diagnose_graph(
                data,
                max_hops=args.hops,
                curvature=not args.quick,
                resistance=not args.quick,
                seed=cfg.seed,
                progress=say,
            )
        )
        reference = _grid_reference(data.num_nodes, args.hops, cfg.seed)
        if has_model:
            model_part = _diagnose_model(args, cfg, data, payload, say)
            timings = {**result["timings_s"], **model_part.pop("timings_s", {})}
            result.update(model_part, timings_s=timings)
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


def _grid_reference(num_nodes: int, hops: int, seed: int) -> dict[str, Any]:
    """The structure report of a square grid with about ``num_nodes`` nodes (the plot's
    contrast: a lattice's receptive field grows quadratically, a small world's
    exponentially)."""
    import math

    from fathom.data.synthetic import make_synthetic
    from fathom.diagnostics.structure import structure_report

    side = max(2, round(math.sqrt(num_nodes)))
    grid = make_synthetic("grid", height=side, width=side, seed=seed)
    report = structure_report(grid.edge_index, grid.num_nodes, max_hops=hops, seed=seed)
    return {f"grid {side}x{side}": report.to_dict()}


def _diagnose_model(
    args: argparse.Namespace,
    cfg: ExperimentConfig,
    data: Any,
    payload: dict[str, Any] | None,
    say: Any,
) -> dict[str, Any]:
    from fathom.config import with_seed
    from fathom.diagnostics.diagnose import diagnose_model
    from fathom.experiments.run import initial_model, train_one

    num_classes = int(data.y.max()) + 1
    m = cfg.model
    name = (
        f"{m.conv} x{m.depth}"
        + (f" skip={m.skip}" if m.skip != "none" else "")
        + (f" norm={m.norm}" if m.norm != "none" else "")
        if m.arch == "deep"
        else f"{m.arch} K={m.depth}"
    )
    common = {
        "metrics": args.metrics,
        "targets": args.targets,
        "sensitivity": not args.quick,
        "seed": cfg.seed,
        "progress": say,
    }
    out: dict[str, Any] = {"model_name": name, "config": config_to_dict(cfg)}
    if payload is not None:
        from fathom.experiments.checkpoint import build_from_checkpoint

        model = build_from_checkpoint(payload, data.num_features, num_classes)
        out["training"] = payload.get("metrics", {})
        out.update(diagnose_model(model, data, **common))
        return out
    model = initial_model(cfg, data)
    if not args.train:
        out.update(diagnose_model(model, data, **common))
        return out
    out["untrained"] = diagnose_model(model, data, **{**common, "sensitivity": False})
    say(f"training {name}")
    trained: dict[str, Any] = {}
    fitted = train_one(
        with_seed(cfg, cfg.seed), data, on_model=lambda mdl: trained.update(model=mdl)
    )
    out["training"] = {k: v for k, v in fitted.to_dict().items() if k != "history"}
    out.update(diagnose_model(trained["model"], data, **common))
    return out


def cmd_datasets(args: argparse.Namespace) -> int:
    from fathom.data.datasets import list_datasets
    from fathom.data.graph_datasets import GRAPH_DATASETS, GRAPH_GENERATORS
    from fathom.data.synthetic import GENERATORS
    from fathom.report.console import console, datasets_table

    rows = list_datasets(args.data_dir)
    graph_rows = list_datasets(args.data_dir, GRAPH_DATASETS)
    console.print(datasets_table(rows, "node classification / link prediction"))
    console.print(datasets_table(graph_rows, "graph classification (--task graph)"))
    console.print(
        f"generated (no download): {', '.join(GENERATORS.names())}; for --task graph: "
        f"{', '.join(GRAPH_GENERATORS.names())}; or pass a .npz / .pt file to --dataset"
    )
    if args.json:
        from fathom.report.files import write_json

        write_json(
            args.json,
            {
                "datasets": rows,
                "graph_datasets": graph_rows,
                "generators": GENERATORS.names(),
                "graph_generators": GRAPH_GENERATORS.names(),
            },
        )
    return 0


def _parse_depths(text: str, flag: str = "--depths") -> list[int]:
    try:
        depths = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise FathomError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not depths or min(depths) < 1:
        raise FathomError(f"{flag} must be integers >= 1, got {text!r}")
    return depths


def cmd_demo(args: argparse.Namespace) -> int:
    from fathom.data.build import build_dataset
    from fathom.experiments.depth_study import depth_study
    from fathom.report.console import console, depth_table, err_console, progress_bar
    from fathom.report.files import write_json
    from fathom.report.plots import plot_accuracy_vs_depth

    depths = _parse_depths(args.depths)
    base = apply_overrides(
        ExperimentConfig(),
        {
            "seeds": args.seeds,
            "train.epochs": args.epochs,
            "train.patience": 0,
            "model.dropout": args.dropout,
        },
    )
    variants = {"GCN": {"model.skip": "none"}, "ResGCN (residual)": {"model.skip": "res"}}
    out = Path(args.out)
    start = time.perf_counter()
    data = build_dataset(base.data, seed=base.seed)
    s = base.data.synthetic
    err_console.print(
        f"CSBM graph: {data.num_nodes} nodes, {data.num_edges // 2} edges, {s.num_classes} "
        f"classes, homophily {s.homophily}; {len(variants)} models x depths {depths} x "
        f"{args.seeds} seeds"
    )
    total = len(variants) * len(depths) * args.seeds
    with progress_bar() as progress:
        task = progress.add_task("depth study", total=total)

        def on_run_end(name: str, depth: int, seed: int, run: dict[str, Any]) -> None:
            progress.update(
                task,
                advance=1,
                description=f"{name} depth {depth} seed {seed}: test {100 * run['test_acc']:.1f}%",
            )

        rows = depth_study(base, variants, depths, data=data, on_run_end=on_run_end)
    elapsed = time.perf_counter() - start
    chance = float(data.y.bincount().max()) / data.num_nodes
    title = f"CSBM ({data.num_nodes} nodes, homophily {s.homophily}): test accuracy vs depth"
    console.print(depth_table(title, rows))
    plot = plot_accuracy_vs_depth(rows, out / "accuracy_vs_depth.png", title=title, chance=chance)
    payload = {"title": title, "wall_s": elapsed, "rows": rows}
    write_json(out / "results.json", payload)
    if args.json:
        write_json(args.json, payload)
    console.print(f"plot: {plot}   results: {out / 'results.json'}   ({elapsed:.0f} s)")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from fathom.experiments.spec import describe, expand, load_spec
    from fathom.experiments.sweep import sweep
    from fathom.report.console import console, err_console, pct, progress_bar
    from fathom.report.files import write_json

    spec = load_spec(args.spec)
    # every bad input fails here, in one line, before the progress bar draws on stderr: a bad
    # point of the spec, then a store that is not a fathom store of this schema (left as is)
    configs = expand(spec)
    if args.dry_run:
        info = describe(spec)
        console.print(
            f"sweep {spec.name!r}: {len(configs)} runs over axes {', '.join(info.get('axes', []))}"
        )
        for cfg in configs:
            m = cfg.model
            console.print(
                f"  {cfg.data.name} conv={m.conv} depth={m.depth} skip={m.skip} "
                f"norm={m.norm} seed={cfg.seed}"
            )
        if args.json:
            write_json(args.json, {**info, "runs": [config_to_dict(c) for c in configs]})
        return 0
    from fathom.experiments.store import RunStore

    RunStore(args.store).close()
    with progress_bar() as progress:
        task = progress.add_task(f"sweep {spec.name}", total=None)

        def on_run_end(done: int, total: int, record: dict[str, Any]) -> None:
            cfg, met = record["config"], record["metrics"]
            latest = (
                f"depth {cfg['model']['depth']} skip {cfg['model']['skip']} seed "
                f"{cfg['seed']}: {record['status']} test {pct(met.get('test_acc'))}%"
            )
            progress.update(task, total=total, completed=done, description=latest)

        summary = sweep(
            spec,
            args.store,
            workers=args.workers,
            retry_failed=args.retry_failed,
            threads=args.threads,
            on_run_end=on_run_end,
        )
    # one line, however long the store's path (no wrapping) and whatever it holds (no markup)
    err_console.print(summary.line(), soft_wrap=True, markup=False, highlight=False)
    if args.json:
        write_json(args.json, summary.__dict__)
    return 130 if summary.interrupted else 0


def _open_store(path: str) -> Any:
    from fathom.experiments.store import RunStore

    return RunStore(path, create=False)


def cmd_runs(args: argparse.Namespace) -> int:
    from fathom.report.console import console, runs_table

    with _open_store(args.store) as store:
        records = store.runs(sweep=args.sweep, status=args.status)
        counts = store.counts(sweep=args.sweep)
    console.print(runs_table(records))
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()))
    if args.json:
        from fathom.report.files import write_json

        write_json(args.json, [{k: v for k, v in r.items() if k != "history"} for r in records])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from fathom.experiments.export import records_to_csv, records_to_json

    with _open_store(args.store) as store:
        records = store.runs(sweep=args.sweep, status=args.status)
    if args.no_history:
        records = [{**r, "history": []} for r in records]
    text = records_to_json(records) if args.format == "json" else records_to_csv(records)
    if args.out:
        from fathom.report.files import atomic_path

        with atomic_path(args.out) as tmp:
            tmp.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from fathom.report.console import console, err_console
    from fathom.report.files import write_json
    from fathom.report.from_store import report_store
    from fathom.report.tables import depth_pivot_rich, rich_table

    files = report_store(args.store, args.out, sweep=args.sweep)
    title = f"{args.sweep or Path(args.store).name}: results"
    console.print(rich_table(files.groups, title))
    pivot = depth_pivot_rich(files.groups, f"{title}: test accuracy (%) by depth")
    if pivot is not None:
        console.print(pivot)
    err_console.print(f"wrote {files.html}, {files.markdown} and {len(files.plots)} plots")
    if args.json:
        write_json(
            args.json, {"summary": files.summary, "groups": [g.to_dict() for g in files.groups]}
        )
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from rich.table import Table

    from fathom.models.presets import list_presets, load_preset, preset_source
    from fathom.report.console import console

    rows = []
    for name in list_presets():
        cfg = load_preset(name)
        what = cfg.model.conv if cfg.model.arch == "deep" else cfg.model.arch
        rows.append(
            {
                "name": name,
                "dataset": cfg.data.name,
                "model": what,
                "depth": cfg.model.depth,
                "source": preset_source(name),
            }
        )
    table = Table(title="presets (fathom train --preset NAME)", title_justify="left")
    for col in ("name", "dataset", "model", "depth", "source"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["dataset"], r["model"], str(r["depth"]), r["source"])
    console.print(table)
    if args.json:
        from fathom.report.files import write_json

        write_json(args.json, rows)
    return 0


def _csv(text: str | None) -> list[str] | None:
    """A comma-separated flag value as a list (``None`` when not given)."""
    if not text:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def cmd_reproduce(args: argparse.Namespace) -> int:
    import platform
    import shlex

    import torch

    from fathom.experiments import reproduce as rp
    from fathom.experiments.store import RunStore
    from fathom.report.console import console, err_console, pct, progress_bar
    from fathom.report.files import write_json
    from fathom.report.reproduce import reproduce_table, write_reproduce_report

    if args.suite == "oversmoothing":
        return _reproduce_oversmoothing(args)
    if args.suite == "neighbors-match":
        return _reproduce_neighbors_match(args)
    cells = rp.build_cells(
        args.suite,
        datasets=_csv(args.datasets),
        models=_csv(args.models),
        depths=_parse_depths(args.depths) if args.depths else None,
        seeds=args.seeds,
    )
    suite = rp.SUITES[args.suite]
    total = sum(len(c.configs) for c in cells)
    if args.dry_run:
        console.print(f"reproduce {args.suite}: {len(cells)} cells, {total} runs")
        for c in cells:
            console.print(
                f"  {c.dataset} {c.model} depth {c.depth}: {len(c.configs)} runs, "
                f"published {c.published.value if c.published.value is not None else '–'}"
            )
        return 0
    RunStore(args.store).close()  # a bad store fails here, in one line
    start = time.perf_counter()
    summary = None
    with progress_bar(disable=args.no_run) as progress:
        task = progress.add_task(f"reproduce {args.suite}", total=None)

        def on_run_end(done: int, todo: int, record: dict[str, Any]) -> None:
            cfg, met = record["config"], record["metrics"]
            m = cfg["model"]
            what = m["conv"] if m["arch"] == "deep" else m["arch"]
            score = (
                f"test AUC {pct(met.get('test_auc'))}%"
                if "test_auc" in met
                else f"test {pct(met.get('test_acc'))}%"
            )
            latest = (
                f"{cfg['data']['name']} {what} depth {m['depth']} seed {cfg['seed']}: "
                f"{record['status']} {score}"
            )
            progress.update(task, total=todo, completed=done, description=latest)

        if not args.no_run:
            summary = rp.run_suite(
                cells,
                args.store,
                name=f"reproduce-{args.suite}",
                workers=args.workers,
                threads=args.threads,
                retry_failed=args.retry_failed,
                on_run_end=on_run_end,
            )
    wall = time.perf_counter() - start
    rows = rp.suite_rows(cells, args.store)
    console.print(
        reproduce_table(f"reproduce {args.suite}: {suite.description}", rows, rp.TOLERANCE)
    )
    if summary is not None:
        err_console.print(summary.line(), soft_wrap=True, markup=False, highlight=False)
    meta = {
        "suite": args.suite,
        "command": "fathom " + " ".join(shlex.quote(a) for a in args.argv),
        "wall_s": wall,
        "runs_executed": 0 if summary is None else summary.ran,
        "store": str(args.store),
        "host": f"{platform.node()} ({torch.get_num_threads()} threads)",
        "versions": f"torch {torch.__version__}, python {platform.python_version()}",
        "tolerance": rp.TOLERANCE,
        "notes": list(suite.notes),
    }
    if args.report:
        for path in write_reproduce_report(args.report, args.suite, suite.description, rows, meta):
            err_console.print(f"wrote {path}")
    if args.json:
        write_json(args.json, {**meta, "rows": rows})
        err_console.print(f"wrote {args.json}")
    return 130 if summary is not None and summary.interrupted else 0


def _reproduce_oversmoothing(args: argparse.Namespace) -> int:
    import shlex

    from fathom.config import DataConfig
    from fathom.data.build import build_dataset
    from fathom.experiments.oversmoothing_study import STUDY_MODELS, energy_study
    from fathom.report.console import console, err_console
    from fathom.report.files import write_json
    from fathom.report.oversmoothing import write_energy_study

    datasets = _csv(args.datasets) or ["cora"]
    models = _csv(args.models) or ["GCN", "GCNII", "GCN+PairNorm", "ResGCN+BN"]
    unknown = [m for m in models if m not in STUDY_MODELS]
    if unknown:
        raise FathomError(
            f"unknown model {unknown[0]!r} for oversmoothing; choose from {', '.join(STUDY_MODELS)}"
        )
    depths = _parse_depths(args.depths) if args.depths else [32]
    command = "fathom " + shlex.join(args.argv)
    everything: list[dict[str, Any]] = []
    for name in datasets:
        data = build_dataset(DataConfig(name=name))
        for depth in depths:
            if args.dry_run:
                console.print(f"oversmoothing {name} depth {depth}: {', '.join(models)}")
                continue
            with err_console.status("oversmoothing study …") as status:
                rows = energy_study(
                    data,
                    models=models,
                    depth=depth,
                    max_epochs=args.epochs or 400,
                    data_name=name,
                    progress=lambda m, n=name: status.update(f"{n}: {m} …"),
                )
            for r in rows:
                d0, d1 = r["untrained_decay"], r["trained_decay"]
                console.print(
                    f"{name} {r['model']} x{depth}: energy decay rate per layer "
                    f"{d0['rate']:.3f} (init) / {d1['rate']:.3f} (trained); "
                    f"test {100 * (r['test_acc'] or float('nan')):.1f}%"
                )
            if args.report:
                out = (
                    Path(args.report)
                    if len(datasets) * len(depths) == 1
                    else Path(args.report) / f"{name}-{depth}"
                )
                for p in write_energy_study(rows, out, dataset=name, command=command):
                    err_console.print(f"wrote {p}")
            everything += [{"dataset": name, **r} for r in rows]
    if args.json and not args.dry_run:
        write_json(args.json, {"suite": "oversmoothing", "command": command, "rows": everything})
        err_console.print(f"wrote {args.json}")
    return 0


def _reproduce_neighbors_match(args: argparse.Namespace) -> int:
    import shlex

    from fathom.experiments import neighbors_match as nm
    from fathom.report.console import console, err_console
    from fathom.report.files import write_json
    from fathom.report.neighbors_match import neighbors_match_table, write_neighbors_match_report

    models = _csv(args.models) or list(nm.MODELS)
    radii = _parse_depths(args.radii, "--radii") if args.radii else [2, 3, 4, 5, 6]
    if args.dry_run:
        for m in models:
            for r in radii:
                pub = nm.PUBLISHED.get((m, r))
                console.print(f"neighbors-match {m} r={r} ({r + 1} layers): published {pub}")
        return 0
    command = "fathom " + shlex.join(args.argv)
    kwargs: dict[str, Any] = {}
    if args.epochs:
        # a capped run evaluates at least every 100 passes (official rounds: 100 or 1000)
        kwargs["max_epochs"] = args.epochs
        kwargs["eval_every"] = min(args.epochs, 100)
    if args.time_limit:
        kwargs["time_limit_s"] = args.time_limit
    with err_console.status("Tree-NeighborsMatch …") as status:
        rows = nm.run_neighbors_match(
            models,
            radii,
            seeds=args.seeds or 1,
            device=args.device,
            json_path=args.json,
            progress=lambda message: status.update(message),
            **kwargs,
        )
    console.print(neighbors_match_table(rows))
    if args.report:
        for p in write_neighbors_match_report(rows, args.report):
            err_console.print(f"wrote {p}")
    if args.json:
        write_json(args.json, {"suite": "neighbors-match", "command": command, "rows": rows})
        err_console.print(f"wrote {args.json}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "presets": cmd_presets,
    "reproduce": cmd_reproduce,
    "diagnose": cmd_diagnose,
    "datasets": cmd_datasets,
    "demo": cmd_demo,
    "sweep": cmd_sweep,
    "runs": cmd_runs,
    "export": cmd_export,
    "report": cmd_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fathom`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    args.argv = argv  # recorded by commands that write what they ran
    try:
        return COMMANDS[args.command](args)
    except FathomError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"fathom {args.command}: error: {exc}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write(f"fathom {args.command}: interrupted\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
