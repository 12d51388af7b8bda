"""The DropEdge paper's cells run by the authors' own code, beside fathom's reproduction.

fathom's depth table (``fathom reproduce depth``) reads several cells far from the DropEdge
paper (Rong et al., ICLR 2020). Whether fathom's models or the published figures are the
outlier is a measurement: this script runs the authors' training script
(DropEdge/DropEdge ``src/train_new.py``, a checkout given by ``--code``; it is not part of
fathom and not vendored) on chosen cells, at the setting fathom's cell ran with (searched on
validation or the authors' script's), one process per run, one thread each, and writes the
test accuracies it prints next to fathom's cell and the published figure.

Each run's full output is kept under ``--logs`` as ``<cell>-s<seed>.log``; a run whose log
already ends with the script's result line is read, not run again, so the script resumes. The
``--json`` file is the record that outlives the logs: a run it already holds (same cell, seed
and flags) is taken from it, not run again, and its rows of cells and seeds outside this
invocation are written back unchanged.

The checkout needs ``data/`` holding Planetoid's raw files (``ind.cora.x`` …) and runs under
``--python`` (an interpreter with torch, numpy, scipy, networkx and tensorboardX). With NumPy
2 one edit is needed: ``np.Inf`` -> ``np.inf`` in ``src/earlystopping.py`` (the same value).

Usage::

    .venv/bin/python benchmarks/authors_dropedge.py --code /tmp/dropedge \\
        --python /tmp/dropedge/venv/bin/python --logs /tmp/authors --seeds 42,1 \\
        --json docs/results/dropedge-authors-code.json --md docs/results/dropedge-authors-code.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from fathom.files import write_json

COMMON = [
    "--datapath",
    "data//",
    "--hidden",
    "128",
    "--epochs",
    "400",
    "--early_stopping",
    "400",
    "--sampling_percent",
    "1",
    "--task_type",
    "semi",
    "--no_tensorboard",
    "1",
]
"""Flags of every run (the authors' semi-supervised scripts'); a cell's own flags follow and,
argparse keeping the last occurrence, override them (``--sampling_percent`` for DropEdge)."""


@dataclass(frozen=True)
class Cell:
    """One run configuration of the authors' script for one cell of fathom's depth table."""

    name: str
    dataset: str
    model: str
    depth: int
    setting: str  # which fathom setting the flags mirror
    flags: list[str] = field(default_factory=list)


def _block(kind: str, depth: int) -> list[str]:
    """``--type`` and the one block of ``depth - 2`` hidden layers (input and output layers
    around it), as every script of the authors runs its models."""
    return ["--type", kind, "--nhiddenlayer", "1", "--nbaseblocklayer", str(depth - 2)]


def _cora(dropout: str, depth: int, kind: str) -> list[str]:
    if kind == "resgcn":  # the cora GCN script's setting (fathom preset depth-resgcn-cora)
        rest = ["--lr", "0.007", "--weight_decay", "1e-5", "--normalization", "AugNormAdj"]
    elif kind == "inceptiongcn":  # script/semi-supervised/cora_IncepGCN_nodrop.sh
        rest = ["--lr", "0.004", "--weight_decay", "5e-5", "--normalization", "AugRWalk"]
    else:  # densegcn: script/semi-supervised/cora_JKNet_nodrop.sh
        rest = ["--lr", "0.001", "--weight_decay", "5e-4", "--normalization", "AugRWalk"]
    return ["--dataset", "cora", *_block(kind, depth), *rest, "--dropout", dropout]


def _citeseer(dropout: str, depth: int, kind: str) -> list[str]:
    # the citeseer GCN script's setting (fathom presets depth-{gcn,resgcn}-citeseer)
    rest = ["--lr", "0.01", "--weight_decay", "5e-4", "--normalization", "AugNormAdj"]
    return ["--dataset", "citeseer", *_block(kind, depth), *rest, "--dropout", dropout]


def _pubmed(
    dropout: str, depth: int, kind: str, normalization: str, *extra: str, lr: str = "0.003"
) -> list[str]:
    # weight decay of every pubmed script; the learning rate of the GCN and IncepGCN ones
    # (fathom's presets depth-resgcn-pubmed and depth-incepgcn-pubmed) unless ``lr`` is given
    rest = ["--lr", lr, "--weight_decay", "0.005", "--dropout", dropout]
    return [
        "--dataset",
        "pubmed",
        *_block(kind, depth),
        *rest,
        "--normalization",
        normalization,
        *extra,
    ]


def cells() -> list[Cell]:
    """The cells of fathom's depth tables more than 3 points from the paper with no cause
    found in fathom's own runs when they were added (docs/results/reproduce-depth.md,
    depth-citeseer/, depth-pubmed/; PubMed JKNet-32 was +3.4 at two seeds, +3.0 at three),
    each at the dropout fathom's cell chose on validation (``searched``: the
    rest of the flags are those of the script fathom's preset takes them from) and, where it
    differs, the script's dropout; ``script``: a published script's flags verbatim;
    ``preset``: the untuned setting of the PubMed cells, fathom's preset at that depth."""
    out = []
    for depth, chosen in ((8, "0.1"), (16, "0.1"), (32, "0.5"), (64, "0.1")):
        for dropout in (chosen, "0.8"):
            name = f"resgcn{depth}-do{dropout}"
            setting = "searched" if dropout == chosen else "script's dropout"
            out.append(
                Cell(name, "cora", "ResGCN", depth, setting, _cora(dropout, depth, "resgcn"))
            )
    for depth in (4, 8):
        for dropout, setting in (("0.5", "searched"), ("0.3", "script's dropout")):
            flags = _cora(dropout, depth, "inceptiongcn")
            out.append(Cell(f"incep{depth}-do{dropout}", "cora", "IncepGCN", depth, setting, flags))
    flags = _cora("0.8", 64, "densegcn")
    out.append(Cell("jknet64-do0.8", "cora", "JKNet", 64, "searched = script", flags))
    # script/semi-supervised/citeseer_JKNet.sh as published (16 layers, DropEdge 0.5)
    script = [
        "--dataset",
        "citeseer",
        *_block("densegcn", 16),
        "--lr",
        "0.006",
        "--weight_decay",
        "0.001",
        "--dropout",
        "0.8",
        "--normalization",
        "AugNormAdj",
        "--withloop",
        "--sampling_percent",
        "0.5",
    ]
    out.append(Cell("cs-jknetde16-script", "citeseer", "JKNet + DropEdge", 16, "script", script))
    for dropout, setting in (("0.8", "searched"), ("0.3", "script's dropout")):
        flags = _citeseer(dropout, 4, "mutigcn")
        out.append(Cell(f"cs-gcn4-do{dropout}", "citeseer", "GCN", 4, setting, flags))
    for depth in (8, 16, 32, 64):
        flags = _citeseer("0.8", depth, "resgcn")
        out.append(Cell(f"cs-resgcn{depth}-do0.8", "citeseer", "ResGCN", depth, "searched", flags))
    flags = [*_citeseer("0.5", 64, "resgcn"), "--sampling_percent", "0.3"]
    out.append(
        Cell("cs-resgcnde64-do0.5-keep0.3", "citeseer", "ResGCN + DropEdge", 64, "searched", flags)
    )
    flags = [*_citeseer("0.1", 64, "mutigcn"), "--sampling_percent", "0.7"]
    out.append(
        Cell("cs-gcnde64-do0.1-keep0.7", "citeseer", "GCN + DropEdge", 64, "searched", flags)
    )
    # the PubMed ResGCN preset (depth-resgcn-pubmed: the pubmed GCN script's setting)
    for depth in (16, 32, 64):
        flags = _pubmed("0.5", depth, "resgcn", "AugRWalk", "--withloop")
        out.append(Cell(f"pm-resgcn{depth}-do0.5", "pubmed", "ResGCN", depth, "preset", flags))
    # script/semi-supervised/pubmed_IncepGCN_nodrop.sh with 14 branches (fathom preset
    # depth-incepgcn-pubmed at depth 16)
    flags = _pubmed("0.3", 16, "inceptiongcn", "AugNormAdj")
    out.append(Cell("pm-incep16-do0.3", "pubmed", "IncepGCN", 16, "preset", flags))
    # script/semi-supervised/pubmed_JKNet_nodrop.sh as published (32 layers; fathom preset
    # depth-jknet-pubmed)
    flags = _pubmed("0.8", 32, "densegcn", "AugNormAdj", lr="0.001")
    out.append(Cell("pm-jknet32-script", "pubmed", "JKNet", 32, "script", flags))
    # script/semi-supervised/pubmed_GCN_nodrop.sh with 30 and 62 hidden layers (fathom
    # preset depth-gcn-pubmed at depths 32 and 64)
    for depth in (32, 64):
        flags = _pubmed("0.5", depth, "mutigcn", "AugRWalk", "--withloop")
        out.append(Cell(f"pm-gcn{depth}-preset", "pubmed", "GCN", depth, "preset", flags))
    # script/semi-supervised/pubmed_GCN.sh (DropEdge: 0.7 of the edges kept) with 30 and 62
    # hidden layers (fathom preset depth-gcn-dropedge-pubmed at depths 32 and 64)
    for depth in (32, 64):
        flags = _pubmed(
            "0.5", depth, "mutigcn", "AugRWalk", "--withloop", "--sampling_percent", "0.7"
        )
        name = f"pm-gcnde{depth}-preset"
        out.append(Cell(name, "pubmed", "GCN + DropEdge", depth, "preset", flags))
    return out


REPORTS = (
    "docs/results/reproduce-depth.json",
    "docs/results/depth-citeseer/reproduce-depth.json",
    "docs/results/depth-pubmed/reproduce-depth.json",
)
"""fathom's depth reports (``fathom reproduce depth --json``), relative to the repository."""


def fathom_cells(root: Path) -> dict[tuple[str, str, int], dict]:
    """fathom's rows of the depth reports by (dataset, model, depth)."""
    found = {}
    for name in REPORTS:
        path = root / name
        if path.is_file():
            for row in json.loads(path.read_text())["rows"]:
                found[(row["dataset"], row["model"], row["depth"])] = row
    return found


def result_line(log: Path) -> list[float] | None:
    """The script's last line ``loss_train loss_val loss_test acc_train acc_val acc_test``
    (tab-separated), or ``None`` when the run did not finish."""
    if not log.is_file():
        return None
    lines = log.read_text(errors="replace").strip().splitlines()
    if not lines:
        return None
    fields = lines[-1].split("\t")
    if len(fields) != 6:
        return None
    try:
        return [float(f) for f in fields]
    except ValueError:
        return None


Result = tuple[float, float]
"""A run's test and training accuracy (%)."""


def _percent(line: list[float] | None) -> Result | None:
    return None if line is None else (100 * line[5], 100 * line[3])


def stored_results(path: Path) -> tuple[dict[tuple[str, int], dict], str | None]:
    """The rows of a previous ``--json`` by (cell, seed), and a one-line problem when the
    file exists but is not this script's report (``{}`` when it does not exist)."""
    if not path.exists():
        return {}, None
    try:
        rows = json.loads(path.read_text())["rows"]
        found = {(r["name"], int(r["seed"])): r for r in rows}
        for r in rows:
            for key in ("test_acc", "train_acc"):
                if r[key] is not None:
                    float(r[key])
            list(r["flags"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {}, f"--json {path} is not a report of this script ({type(exc).__name__}: {exc})"
    return found, None


def run_cell(
    cell: Cell, seed: int, args: argparse.Namespace, stored: dict[tuple[str, int], dict]
) -> tuple[Result | None, float]:
    """The cell's result for ``seed``: read from its log, else from the previous ``--json``
    (the same flags only), else run (one thread)."""
    log = Path(args.logs) / f"{cell.name}-s{seed}.log"
    found = _percent(result_line(log))
    if found is not None:
        return found, 0.0
    row = stored.get((cell.name, seed))
    if row is not None and row["flags"] == cell.flags and row["test_acc"] is not None:
        return (float(row["test_acc"]), float(row["train_acc"])), 0.0
    if args.no_run:
        return None, 0.0
    cmd = [args.python, "src/train_new.py", *COMMON, "--seed", str(seed), *cell.flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    with log.open("w") as out:
        subprocess.run(cmd, cwd=args.code, stdout=out, stderr=subprocess.STDOUT, env=env)
    remove_checkpoint(log, Path(args.code))
    return _percent(result_line(log)), time.perf_counter() - start


def remove_checkpoint(log: Path, code: Path) -> None:
    """Delete the checkpoint (up to 131 MB) that the run of ``log`` saved under ``code``, and
    only that one: runs side by side in one checkout keep theirs until they reload them."""
    prefix = "Model is saving to: "
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(prefix):
            path = code / line[len(prefix) :].strip()
            if path.parent.name == "tmpmodel" and path.is_file():
                path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", required=True, help="a checkout of DropEdge/DropEdge")
    parser.add_argument("--python", default=sys.executable, help="interpreter for it")
    parser.add_argument("--logs", required=True, help="folder of the runs' outputs")
    parser.add_argument("--seeds", default="42", help="comma-separated (the scripts': 42)")
    parser.add_argument("--cells", default="", help="comma-separated names (default: all)")
    parser.add_argument("--no-run", action="store_true", help="only read finished logs")
    parser.add_argument("--json", required=True)
    parser.add_argument("--md", required=True)
    args = parser.parse_args(argv)
    if not (Path(args.code) / "src" / "train_new.py").is_file():
        print(f"error: {args.code} holds no src/train_new.py", file=sys.stderr)
        return 2
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        print(
            f"error: --seeds must be comma-separated integers, got {args.seeds!r}", file=sys.stderr
        )
        return 2
    chosen = cells()
    if args.cells:
        wanted = args.cells.split(",")
        unknown = sorted(set(wanted) - {c.name for c in chosen})
        if unknown:
            print(f"error: unknown cells: {', '.join(unknown)}", file=sys.stderr)
            return 2
        chosen = [c for c in chosen if c.name in wanted]
    stored, problem = stored_results(Path(args.json))
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    Path(args.logs).mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in seeds:
        for cell in chosen:
            found, seconds = run_cell(cell, seed, args, stored)
            test, train = (None, None) if found is None else found
            print(
                f"{cell.name} seed {seed}: test {test} train {train} ({seconds:.0f} s)", flush=True
            )
            rows.append({**cell.__dict__, "seed": seed, "test_acc": test, "train_acc": train})
    covered = {(r["name"], r["seed"]) for r in rows}
    kept = [r for key, r in stored.items() if key not in covered]  # other cells' and seeds'
    payload = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "common_flags": COMMON,
        "machine": platform.processor() or platform.machine(),
        "rows": rows + kept,
    }
    write_json(args.json, payload)  # atomically: never a half-written record
    lines = [
        "# The DropEdge paper's cells run by the authors' code",
        "",
        f"Command: `python benchmarks/{payload['command']}`",
        "",
        "Test accuracy (%) printed by DropEdge/DropEdge `src/train_new.py` (the checkpoint of its",
        "lowest training-mode validation loss), one run per seed, 1 thread. Flags of every run: "
        f"`{' '.join(COMMON)}`; each cell's own below.",
        "",
        "`train`: the script's last line, the last epoch's training accuracy in training mode",
        "(dropout and DropEdge on), averaged over seeds. `fathom`: fathom's cell (mean ± std",
        "over its seeds, at its own chosen setting) and `published` the paper's figure, both",
        "from fathom's depth reports.",
        "",
        "| dataset | model | depth | setting | runs | test (each seed) | mean | train | fathom | "
        "published | flags |",
        "|---|---|---:|---|---:|---|---:|---:|---|---:|---|",
    ]
    ours = fathom_cells(Path(__file__).resolve().parent.parent)
    for cell in chosen:
        row = ours.get((cell.dataset, cell.model, cell.depth))
        fathom = (
            f"{row['ours_mean']:.1f} ± {row['ours_std']:.1f} ({row['n']})"
            if row and row["n"]
            else "–"
        )
        published = f"{row['published']}" if row and row["published"] is not None else "–"
        mine = [r for r in rows if r["name"] == cell.name and r["test_acc"] is not None]
        tests = [r["test_acc"] for r in mine]
        each = ", ".join(f"{t:.1f} (s{r['seed']})" for t, r in zip(tests, mine, strict=True))
        mean = f"{statistics.fmean(tests):.1f}" if tests else "–"
        train = f"{statistics.fmean(r['train_acc'] for r in mine):.0f}" if mine else "–"
        lines.append(
            f"| {cell.dataset} | {cell.model} | {cell.depth} | {cell.setting} | {len(tests)} | "
            f"{each or 'not run'} | {mean} | {train} | {fathom} | {published} | "
            f"`{' '.join(cell.flags)}` |"
        )
    Path(args.md).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
