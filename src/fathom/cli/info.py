"""``fathom datasets`` and ``fathom presets``: what there is to train on and with."""

from __future__ import annotations

import argparse
from typing import Any

from fathom.cli.commands import add_command
from fathom.cli.flags import add_threads

__all__ = ["datasets", "presets", "register_datasets", "register_presets"]


def register_presets(sub: Any) -> None:
    """Add ``fathom presets``."""
    parser = add_command(sub, "presets", outputs={"json": "file"})
    parser.add_argument("--json", metavar="PATH", help="write the list as JSON")
    add_threads(parser)
    parser.set_defaults(run=presets, overrides_ok=False)


def register_datasets(sub: Any) -> None:
    """Add ``fathom datasets``."""
    parser = add_command(sub, "datasets", outputs={"json": "file"})
    parser.add_argument("--data-dir", help="folder laid out like PyG dataset roots")
    parser.add_argument("--json", metavar="PATH", help="write the list as JSON")
    add_threads(parser)
    parser.set_defaults(run=datasets, overrides_ok=False)


def presets(args: argparse.Namespace) -> int:
    """Print the presets (name, dataset, model, depth, source)."""
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
        from fathom.files import write_json

        write_json(args.json, rows)
    return 0


def datasets(args: argparse.Namespace) -> int:
    """Print the datasets (where they are, their size) and the generators."""
    from fathom.data.datasets import list_datasets
    from fathom.data.graph_datasets import GRAPH_DATASETS, GRAPH_GENERATORS
    from fathom.data.ogb_datasets import OGB_DATASETS, ogb_kind
    from fathom.data.synthetic import GENERATORS
    from fathom.report.console import console, datasets_table

    rows = list_datasets(args.data_dir)
    graph_rows = list_datasets(args.data_dir, GRAPH_DATASETS)
    ogb_rows = list_datasets(args.data_dir, OGB_DATASETS)
    for r in ogb_rows:
        if ogb_kind(r["name"]) != "graph":
            r.pop("graphs", None)
    console.print(datasets_table(rows, "node classification / link prediction"))
    console.print(datasets_table(graph_rows, "graph classification (--task graph)"))
    console.print(
        datasets_table(
            ogb_rows,
            "OGB, official splits, never downloaded (ogbn: --task node, ogbg: graph, ogbl: link)",
        )
    )
    console.print(
        f"generated (no download): {', '.join(GENERATORS.names())}; for --task graph: "
        f"{', '.join(GRAPH_GENERATORS.names())}; or pass a .npz / .pt file to --dataset"
    )
    if args.json:
        from fathom.files import write_json

        write_json(
            args.json,
            {
                "datasets": rows,
                "graph_datasets": graph_rows,
                "ogb_datasets": ogb_rows,
                "generators": GENERATORS.names(),
                "graph_generators": GRAPH_GENERATORS.names(),
            },
        )
    return 0
