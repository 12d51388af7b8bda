"""Reproduction suites: the published tables, run through the experiment engine, side by side.

A suite is a list of :class:`Cell`\\ s (model × dataset × depth), each with the single-seed
configs to run (built from the shipped presets, see :mod:`fathom.models.presets`) and the
published figure it is compared with, with its source (read from the suite's references file,
:mod:`fathom.experiments.references`). :func:`run_suite` registers every
run in a results store under the sweep ``reproduce-<suite>`` and runs what the store lacks
(so an interrupted reproduction resumes), then :func:`suite_rows` reads the store back into
one row per cell: ``ours_mean ± ours_std`` over seeds (or splits), ``published``, ``diff``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fathom.config import ExperimentConfig, apply_overrides, config_hash, with_seed
from fathom.errors import ConfigError
from fathom.experiments.references import Figure, load_references
from fathom.experiments.spec import DEFAULT_MAX_RUNS
from fathom.experiments.store import RunStore
from fathom.experiments.sweep import (
    EpochProgress,
    ProgressCallback,
    StartCallback,
    SweepSummary,
    run_configs,
)
from fathom.models.presets import load_preset, preset_setting

__all__ = [
    "SUITES",
    "Cell",
    "Suite",
    "build_cells",
    "cap_epochs",
    "check_data",
    "ogb_metric",
    "override_cells",
    "run_meta",
    "run_suite",
    "suite_rows",
    "within_tolerance",
]

PLANETOID = ("cora", "citeseer", "pubmed")
OGB = ("ogbn-arxiv", "ogbn-products", "ogbn-proteins", "ogbl-collab", "ogbg-molhiv")
HETEROPHILY = ("cornell", "texas", "wisconsin", "chameleon", "squirrel", "actor")
DEPTHS = (2, 4, 8, 16, 32, 64)
TOLERANCE = 3.0
"""Cells further than this (points) from the published figure are flagged in reports."""
METRIC_LABELS = {
    "test_acc": "accuracy",
    "test_acc_paper": "accuracy",
    "test_auc": "AUC",
    "test_ap": "AP",
    "test_hits": "Hits@K",
    "test_miou": "mIoU",
}
"""Report names of the stored metrics a cell can compare (a cell's ``metric_label`` wins)."""


@dataclass(frozen=True)
class Published:
    """The published figure a cell compares with (test accuracy, %) and where it comes from
    (a :class:`~fathom.experiments.references.Figure`'s value and source, or why there is
    none)."""

    value: float | None
    source: str


@dataclass(frozen=True)
class Cell:
    """One model × dataset × depth of a suite: the runs to make and the figure to meet."""

    suite: str
    model: str
    """The model's display name (``GCN + DropEdge``)."""
    key: str
    """The model's name in ``--models`` (``gcn-dropedge``)."""
    dataset: str
    depth: int
    configs: tuple[ExperimentConfig, ...]
    """One single-seed config per seed (or per split)."""
    published: Published
    note: str = ""
    """A known difference between fathom's setting and the published one."""
    metric: str = "test_acc"
    """The stored metric compared with the published figure (``test_auc`` for link
    prediction, ``test_acc_paper`` for the GIN paper's protocol, ``test_hits`` for
    ogbl-collab's Hits@50)."""
    metric_label: str = ""
    """How reports name :attr:`metric` (``ROC-AUC``, ``Hits@50``); empty: from the metric's
    name (:data:`METRIC_LABELS`)."""
    tunable: bool = False
    """Its setting is not published (at this depth): ``--tune`` searches it on validation
    (:mod:`fathom.experiments.tuning`)."""


@dataclass(frozen=True)
class Suite:
    """A named reproduction: which models, datasets and depths, and how to build a cell."""

    name: str
    description: str
    models: dict[str, str]
    """``--models`` key -> display name, in table order."""
    datasets: tuple[str, ...]
    depths: tuple[int, ...] | None
    """Default depths; ``None``: each preset's own (published) depth."""
    cell: Callable[[str, str, int | None, int], Cell | None]
    """``(model key, dataset, depth or None, seeds) -> Cell`` (``None``: no such cell)."""
    max_seeds: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    expensive: tuple[tuple[str, int], ...] = ()
    """(model key, depth) cells left out of the default grid for their cost; named
    explicitly with ``--models`` and ``--depths`` they run."""
    default_seeds: int = 10
    """Seeds when ``--seeds`` is not given."""
    on_request: tuple[str, ...] = ()
    """Model keys left out of the default grid (for their cost) that ``--models`` may name."""
    datasets_on_request: tuple[str, ...] = ()
    """Datasets left out of the default grid (not embedded) that ``--datasets`` may name."""


# --------------------------------------------------------------------------- published

NOT_FOUND = "not located in a public text"
"""The source of a cell whose published figure is not in the suite's references file."""


def _published(figure: Figure | None, missing: str = NOT_FOUND) -> Published:
    """The figure a cell compares with (``missing`` as its source when there is none)."""
    return Published(None, missing) if figure is None else Published(figure.value, figure.source)


# --------------------------------------------------------------------------- cells


def _seeded(cfg: ExperimentConfig, seeds: int) -> tuple[ExperimentConfig, ...]:
    return tuple(with_seed(cfg, s) for s in range(seeds))


def _planetoid_cell(key: str, dataset: str, depth: int | None, seeds: int) -> Cell | None:
    cfg = load_preset(f"{key}-{dataset}")
    published = _published(load_references("planetoid").get(key, dataset))
    if depth is not None and depth != cfg.model.depth:
        published = Published(None, f"published at depth {cfg.model.depth} only")
        cfg = apply_overrides(cfg, {"model.depth": depth})
    return Cell(
        "planetoid",
        PLANETOID_MODELS[key],
        key,
        dataset,
        cfg.model.depth,
        _seeded(cfg, seeds),
        published,
    )


def _setting_note(preset: str, depth: int) -> str:
    """Where the hyper-parameters of ``preset`` run at ``depth`` come from, for a cell's
    note: its ``# Setting:`` line (:data:`~fathom.models.presets.SETTINGS`), and for a
    published setting whether it was published at this depth (the preset's own)."""
    setting = preset_setting(preset)
    published_depth = load_preset(preset).model.depth
    if setting == "published" and depth == published_depth:
        return f"setting: published (preset {preset})"
    if setting == "published":
        return (
            f"setting: published at depth {published_depth} only (preset {preset}); "
            "not tuned at this depth"
        )
    if setting == "fathom default":
        return f"setting: fathom default (preset {preset}), not tuned"
    return f"setting: {setting or 'fathom default'} (preset {preset})"


@dataclass(frozen=True)
class DepthVariant:
    """One of fathom's variants of a DropEdge-paper model: a ``reproduce depth`` row run on
    request and compared with the paper's model's figure."""

    preset: str
    """The preset; ``{dataset}`` is replaced by the cell's dataset."""
    figure: str
    """The paper's model (its ``--models`` key) whose published figure the cell is compared with."""
    note: str
    """What the variant changes, for the cell's note."""
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Config overrides on top of the preset."""


_LAYER_SHORTCUT = (
    "fathom's variant: a shortcut around every hidden layer (--nbaseblocklayer 1), not the "
    "scripts' one around the hidden stack"
)
_BATCHNORM = (
    "fathom's variant: BatchNorm after each conv (a bare residual diverges at depth), "
    "hidden 64, dropout 0.5"
)
DROPEDGE_VARIANTS = {
    "resgcn-bn": DepthVariant("depth-resgcn", "resgcn", _BATCHNORM),
    "resgcn-bn-dropedge": DepthVariant("depth-resgcn-dropedge", "resgcn-dropedge", _BATCHNORM),
    "resgcn-layer": DepthVariant(
        "depth-resgcn-{dataset}", "resgcn", _LAYER_SHORTCUT, {"model.skip_every": 1}
    ),
    "resgcn-layer-dropedge": DepthVariant(
        "depth-resgcn-dropedge-{dataset}",
        "resgcn-dropedge",
        _LAYER_SHORTCUT,
        {"model.skip_every": 1},
    ),
}
"""fathom's variants of the DropEdge paper's models (rows on request), by ``--models`` key."""


def _depth_cell(key: str, dataset: str, depth: int | None, seeds: int) -> Cell | None:
    assert depth is not None
    references = load_references("depth")
    variant = DROPEDGE_VARIANTS.get(key)
    figure_key = variant.figure if variant is not None else key
    figure = references.get(figure_key, dataset, depth)
    if key == "gcnii":
        preset = f"gcnii-{dataset}"
        published = _published(figure)
    else:
        if variant is not None:
            preset = variant.preset.format(dataset=dataset)
        elif key in ("pairnorm", "nodenorm"):
            preset = f"depth-{key}"
        else:  # the paper's models: one preset per dataset
            preset = f"depth-{key}-{dataset}"
        # a depth outside DropEdge's table: no figure, but the table's row is still the source
        row = references.select(figure_key, dataset)
        published = _published(figure, row[0].source if row else NOT_FOUND)
    cfg = load_preset(preset)
    note = _setting_note(preset, depth)
    published_here = preset_setting(preset) == "published" and depth == cfg.model.depth
    tunable = key != "gcnii" and not published_here
    if variant is not None:
        note = f"{variant.note}; {note}"
        cfg = apply_overrides(cfg, dict(variant.overrides))
    cfg = apply_overrides(cfg, {"data.name": dataset, "model.depth": depth})
    return Cell(
        "depth",
        DEPTH_MODELS[key],
        key,
        dataset,
        depth,
        _seeded(cfg, seeds),
        published,
        note,
        tunable=tunable,
    )


def _heterophily_cell(key: str, dataset: str, depth: int | None, seeds: int) -> Cell | None:
    gcnii = key in ("gcnii", "gcnii-star")
    name = f"{key}-{dataset}" if gcnii else f"hetero-{key}"
    preset = load_preset(name)
    cfg = apply_overrides(preset, {"data.name": dataset})
    if depth is not None:
        cfg = apply_overrides(cfg, {"model.depth": depth})
    published = _published(load_references("heterophily").get(key, dataset))
    if depth is not None and gcnii and depth != preset.model.depth:
        published = Published(None, "published at the preset's depth only")
    # one run per Geom-GCN split: split i with seed i
    configs = tuple(with_seed(apply_overrides(cfg, {"data.split": i}), i) for i in range(seeds))
    return Cell(
        "heterophily",
        HETEROPHILY_MODELS[key],
        key,
        dataset,
        cfg.model.depth,
        configs,
        published,
    )


PLANETOID_MODELS = {
    "gcn": "GCN",
    "gat": "GAT",
    "sgc": "SGC",
    "appnp": "APPNP",
    "gcnii": "GCNII",
    "jknet": "JKNet",
    "dgi": "DGI",
    "gcnii-star": "GCNII*",
}
DEPTH_MODELS = {
    "gcn": "GCN",
    "gcn-dropedge": "GCN + DropEdge",
    "resgcn": "ResGCN",
    "resgcn-dropedge": "ResGCN + DropEdge",
    "jknet": "JKNet",
    "jknet-dropedge": "JKNet + DropEdge",
    "incepgcn": "IncepGCN",
    "incepgcn-dropedge": "IncepGCN + DropEdge",
    "pairnorm": "GCN + PairNorm",
    "nodenorm": "ResGCN + NodeNorm",
    "gcnii": "GCNII",
    "resgcn-bn": "ResGCN + BatchNorm",
    "resgcn-bn-dropedge": "ResGCN + BatchNorm + DropEdge",
    "resgcn-layer": "ResGCN, per-layer shortcuts",
    "resgcn-layer-dropedge": "ResGCN + DropEdge, per-layer shortcuts",
}
HETEROPHILY_MODELS = {"gcn": "GCN", "gcnii": "GCNII", "gcnii-star": "GCNII*", "mlp": "MLP"}

TU_MODELS = {"gin": "GIN (inner validation)", "gin-paper": "GIN (paper's protocol)"}

GAE_MODELS = {
    "gae-auc": "GAE AUC",
    "gae-ap": "GAE AP",
    "vgae-auc": "VGAE AUC",
    "vgae-ap": "VGAE AP",
}


def _tu_cell(key: str, dataset: str, depth: int | None, seeds: int) -> Cell | None:
    preset = load_preset(f"gin-{dataset}")
    cfg = preset if depth is None else apply_overrides(preset, {"model.depth": depth})
    paper = key == "gin-paper"
    # the inner-validation and the paper's-protocol rows compare with the same GIN figure
    published = _published(load_references("tu").get("gin", dataset))
    if cfg.model.depth != preset.model.depth:
        published = Published(None, "published at the preset's depth only")
    note = (
        "epoch chosen by the mean accuracy on the test folds, as the GIN paper does (optimistic)"
        if paper
        else "epoch chosen on an inner validation split of each training fold"
    )
    return Cell(
        "tu",
        TU_MODELS[key],
        key,
        dataset,
        cfg.model.depth,
        _seeded(cfg, seeds),
        published,
        note,
        metric="test_acc_paper" if paper else "test_acc",
    )


def _gae_cell(key: str, dataset: str, depth: int | None, seeds: int) -> Cell | None:
    model, metric = key.split("-")
    cfg = apply_overrides(load_preset(f"{model}-cora"), {"data.name": dataset})
    if depth is not None:
        cfg = apply_overrides(cfg, {"model.depth": depth})
    return Cell(
        "gae",
        GAE_MODELS[key],
        key,
        dataset,
        cfg.model.depth,
        _seeded(cfg, seeds),
        _published(load_references("gae").get(key, dataset)),
        "each seed draws its own 85/5/10 edge split",
        metric=f"test_{metric}",
    )


DEEPGCN_MODELS = {
    "resgcn-28": "ResGCN-28",
    "plaingcn-28": "PlainGCN-28",
    "resgcn-56": "ResGCN-56",
    "resgcn-151": "ResGCN-151",
    "densegcn-28": "DenseGCN-28",
}


def _deepgcn_cell(key: str, dataset: str, depth: int | None, seeds: int) -> Cell | None:
    preset = load_preset(key)
    overrides: dict[str, Any] = {"data.name": dataset}
    if dataset == "s3dis":
        overrides["points.num_points"] = 4096  # S3DIS blocks as published, not subsampled
    if depth is not None:
        overrides["model.depth"] = depth
    cfg = apply_overrides(preset, overrides)
    published = _published(
        load_references("deepgcn").get(key, dataset),
        "synthetic scenes: no published figure" if dataset == "scenes" else "",
    )
    if cfg.model.depth != preset.model.depth:
        published = Published(None, "published at the preset's depth only")
    return Cell(
        "deepgcn",
        DEEPGCN_MODELS[key],
        key,
        dataset,
        cfg.model.depth,
        _seeded(cfg, seeds),
        published,
        f"k = {cfg.points.k}, {cfg.train.epochs} epochs, {cfg.points.num_points} points per cloud",
        metric="test_miou",
    )


OGB_MODELS = {
    "gcn-arxiv": "GCN",
    "gcnii-arxiv": "GCNII",
    "sage-products": "GraphSAGE (neighbour sampling)",
    "deepergcn-proteins": "DeeperGCN (DyResGEN-112)",
    "revgnn-proteins": "RevGNN-Deep",
    "gcn-collab": "GCN",
    "sage-collab": "GraphSAGE",
    "gin-molhiv": "GIN",
}
"""``--models`` keys of the ``ogb`` suite: the preset names (each on its own dataset)."""

OGB_NOTES = {
    "gcnii-arxiv": "GCNII* layers (gcn2-star) stand in for the reference's GCNIIdenseConv",
    "sage-products": "fathom's own neighbour sampler; every epoch can be selected",
    "deepergcn-proteins": "no edge features or species one-hot in fathom; evaluated on the "
    "whole graph, not on 5 random parts",
    "revgnn-proteins": "no edge features or species one-hot in fathom; post-activation group "
    "functions; evaluated on the whole graph, one view",
    "gcn-collab": "MLP decoder on [h_i, h_j] (the reference: a 3-layer MLP on h_i * h_j); "
    "edge weights not used",
    "sage-collab": "MLP decoder on [h_i, h_j] (the reference: a 3-layer MLP on h_i * h_j)",
    "gin-molhiv": "no bond features in fathom; fathom's GIN MLP (no inner BatchNorm)",
}
"""The main difference of each ``ogb`` cell from its published recipe (all in the preset)."""


def ogb_metric(dataset: str) -> tuple[str, str]:
    """The stored test metric of an OGB dataset's official evaluator and its report name:
    ``("test_acc", "accuracy")``, ``("test_auc", "ROC-AUC")``, ``("test_hits", "Hits@50")``."""
    from fathom.data.ogb_datasets import OGB_DATASETS

    metric = OGB_DATASETS.get(dataset).eval_metric
    if metric == "acc":
        return "test_acc", "accuracy"
    if metric == "rocauc":
        return "test_auc", "ROC-AUC"
    if metric.startswith("hits@"):
        return "test_hits", f"Hits@{metric.split('@')[1]}"
    raise ConfigError(f"no reproduce metric for OGB's {metric!r} ({dataset})")


def _ogb_cell(key: str, dataset: str, depth: int | None, seeds: int) -> Cell | None:
    preset = load_preset(key)
    if preset.data.name != dataset:
        return None  # each recipe is published on its own dataset only
    cfg = preset if depth is None else apply_overrides(preset, {"model.depth": depth})
    figure = load_references("ogb").get(key, dataset)
    published = _published(figure)
    if cfg.model.depth != preset.model.depth:
        published = Published(None, "published at the preset's depth only")
    metric, label = ogb_metric(dataset)
    # the published spread and protocol (the figure's note), then fathom's main difference
    note = "; ".join(n for n in (figure.note if figure else "", OGB_NOTES.get(key, "")) if n)
    return Cell(
        "ogb",
        OGB_MODELS[key],
        key,
        dataset,
        cfg.model.depth,
        _seeded(cfg, seeds),
        published,
        note,
        metric=metric,
        metric_label=label,
    )


SUITES: dict[str, Suite] = {
    "planetoid": Suite(
        "planetoid",
        "Planetoid public split (20 labels per class): each model's published setting",
        {k: v for k, v in PLANETOID_MODELS.items() if k != "gcnii-star"},
        PLANETOID,
        None,
        _planetoid_cell,
        on_request=("gcnii-star",),
    ),
    "depth": Suite(
        "depth",
        "Accuracy by depth on the Planetoid public split (DropEdge's semi-supervised table)",
        {k: v for k, v in DEPTH_MODELS.items() if k not in DROPEDGE_VARIANTS},
        PLANETOID,
        DEPTHS,
        _depth_cell,
        notes=(
            "GCN, ResGCN, JKNet and IncepGCN (± DropEdge) are the DropEdge paper's models "
            "(DropEdge/DropEdge src/models.py: input GCN layer, hidden layers, output GCN "
            "layer; no BatchNorm), one preset per model and dataset (depth-<model>-<dataset>) "
            "with the setting of the authors' script/semi-supervised/ script where there is one. "
            "The scripts publish one depth per model and dataset (none for ResGCN); each "
            "cell's note says whether its setting was published at its depth.",
            "ResGCN is the scripts' one block: one shortcut around the whole hidden stack "
            "(--nhiddenlayer 1, --nbaseblocklayer depth - 2; model.skip_every 0). fathom's "
            "variants run on request: a shortcut around every hidden layer "
            "(--models resgcn-layer,resgcn-layer-dropedge; the ResGCN rows of earlier "
            "reports) and BatchNorm after each conv (--models resgcn-bn,resgcn-bn-dropedge).",
            "IncepGCN's cost is quadratic in depth (1953 GCN layers per forward pass at 64): "
            "its 64-layer cells are not in the default grid (Cora's published IncepGCN "
            "setting is at 64 layers); run them with "
            "`--models incepgcn,incepgcn-dropedge --depths 64`.",
            "With --tune, every cell whose setting is not published at its depth first "
            "searches fathom's declared grid (fathom/presets/search/depth.yaml) on validation "
            "accuracy only, then runs the chosen point over the seeds; its note names the "
            "grid and the choice.",
        ),
        expensive=(("incepgcn", 64), ("incepgcn-dropedge", 64)),
        on_request=tuple(DROPEDGE_VARIANTS),
    ),
    "heterophily": Suite(
        "heterophily",
        "Heterophilous graphs, the 10 Geom-GCN 60/20/20 splits (one run per split)",
        HETEROPHILY_MODELS,
        HETEROPHILY,
        None,
        _heterophily_cell,
        max_seeds=10,
        notes=(
            "GCNII and GCNII* train on the graph as their authors' code builds it (a networkx "
            "DiGraph, D^-1/2 (A + I) D^-1/2 X with A[i, j] = 1 for an edge i -> j): directed, "
            "each node aggregating over the nodes its edges point to (data.reverse_edges). The "
            "matrix is then the authors' but for the nodes with a self-loop in the file, which "
            "weighs 2 in their A + I and 1 in PyG's normalisation (Wisconsin: 16 of 251 "
            "nodes). GCN and MLP use fathom's default, the symmetrised graph.",
            "GCNII* is computed as the authors' model.py computes it (conv gcn2-star-code: its "
            "two weights see P X and X_0 before the alpha mix, where the paper's Eq. 6 and "
            "PyG's GCN2Conv scale them by 1 - alpha and alpha first) and draws its weights as the "
            "authors' GraphConvolution does (model.init uniform-out); GCNII keeps PyG's "
            "Glorot weights.",
        ),
    ),
    "tu": Suite(
        "tu",
        "Graph classification, 10-fold stratified cross-validation (GIN on TU datasets)",
        TU_MODELS,
        ("mutag", "proteins"),
        None,
        _tu_cell,
        notes=(
            "One run is a whole 10-fold cross-validation; ours is the mean ± std over folds "
            "(over seeds when there are several).",
            "The GIN paper picks one epoch for all folds by the best mean test-fold accuracy; "
            "fathom reports that figure beside the one selected on inner validation splits.",
        ),
        default_seeds=1,
    ),
    "gae": Suite(
        "gae",
        "Link prediction with graph autoencoders (test AUC / AP, 85/5/10 edge splits)",
        GAE_MODELS,
        ("cora",),
        None,
        _gae_cell,
    ),
    "deepgcn": Suite(
        "deepgcn",
        "DeepGCN point-cloud segmentation (test mIoU): residual vs plain at 28 layers, and "
        "ResGCN at 56 and 151 layers",
        {k: v for k, v in DEEPGCN_MODELS.items() if k != "densegcn-28"},
        ("scenes",),
        None,
        _deepgcn_cell,
        notes=(
            "The embedded synthetic scenes have no published figure: the check is the "
            "paper's claim that residual connections let 28-151-layer GCNs train where plain "
            "ones degrade. S3DIS (--datasets s3dis) needs the preprocessed .h5 blocks.",
            "DenseGCN-28 (every block's output, itself a concatenation, enters the fusion: "
            "25,984 channels, 43.7M parameters) runs only on request: --models densegcn-28.",
        ),
        default_seeds=3,
        on_request=("densegcn-28",),
        datasets_on_request=("s3dis",),
    ),
    "ogb": Suite(
        "ogb",
        "Open Graph Benchmark, official splits and evaluators (test accuracy, ROC-AUC, "
        "Hits@50): each published recipe on its own dataset",
        {k: v for k, v in OGB_MODELS.items() if k != "revgnn-proteins"},
        OGB,
        None,
        _ogb_cell,
        notes=(
            "Nothing is downloaded: each dataset must be in OGB's own layout (what the ogb "
            "package downloads and unpacks) under --data-dir, $FATHOM_DATA or fathom's cache; "
            "without it fathom reproduce stops before any run and says where it looked.",
            "Ten seeds per cell, as OGB's protocol (mean and std over 10 runs); fathom's std is "
            "the population one, OGB's leaderboards report the unbiased (torch.std) one.",
            "RevGNN-Deep (1001 reversible layers, 2000 epochs; one 32 GB V100 in the paper) "
            "runs only on request: --models revgnn-proteins. DeeperGCN-112 (1000 epochs of 112 "
            "layers on 79M edges) is the costliest cell of the default grid; --models "
            "picks a subset.",
            "Every preset states its differences from the published recipe in its header "
            "(fathom's convs read no edge features, there is no virtual node and no "
            "multi-view test); the main one is in each row's note.",
        ),
        on_request=("revgnn-proteins",),
    ),
}


def _choose(kind: str, wanted: Sequence[Any] | None, known: Sequence[Any]) -> list[Any]:
    if not wanted:
        return list(known)
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ConfigError(
            f"unknown --{kind} {unknown[0]!r} for this suite; choose from: "
            f"{', '.join(map(str, known))}"
        )
    return list(wanted)


def build_cells(
    suite: str,
    *,
    datasets: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    depths: Sequence[int] | None = None,
    seeds: int | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> list[Cell]:
    """The cells of ``suite`` restricted to ``datasets`` / ``models`` / ``depths`` (``None``:
    the suite's defaults), with ``seeds`` runs each (``None``: the suite's
    ``default_seeds``); more than ``max_runs`` runs (cells × seeds, counted before any
    config is built) is a one-line ConfigError naming ``--max-runs``."""
    if suite not in SUITES:
        raise ConfigError(f"unknown reproduce suite {suite!r}; choose one of: {', '.join(SUITES)}")
    s = SUITES[suite]
    if seeds is None:
        seeds = s.default_seeds
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    if s.max_seeds is not None and seeds > s.max_seeds:
        raise ConfigError(
            f"--seeds must be <= {s.max_seeds} for {suite} (one run per fixed split), got {seeds}"
        )
    chosen_models = (
        _choose("models", models, [*s.models, *s.on_request]) if models else list(s.models)
    )
    chosen_datasets = (
        _choose("datasets", datasets, [*s.datasets, *s.datasets_on_request])
        if datasets
        else list(s.datasets)
    )
    if depths is not None and any(d < 1 for d in depths):
        raise ConfigError(f"--depths must be >= 1, got {list(depths)}")
    chosen_depths: list[int | None] = list(depths) if depths else list(s.depths or [None])
    explicit = bool(models) and bool(depths)
    most = len(chosen_datasets) * len(chosen_models) * len(chosen_depths) * seeds
    if most > max_runs:
        raise ConfigError(
            f"reproduce {suite} would run up to {most:,} runs, more than --max-runs "
            f"{max_runs:,}; pass --max-runs {most} to allow it"
        )
    cells = []
    for dataset in chosen_datasets:
        for key in chosen_models:
            for depth in chosen_depths:
                if (key, depth) in s.expensive and not explicit:
                    continue
                cell = s.cell(key, dataset, depth, seeds)
                if cell is not None:
                    cells.append(cell)
    return cells


def run_suite(
    cells: Sequence[Cell],
    store: str | Path,
    *,
    name: str,
    workers: int = 1,
    threads: int | None = None,
    retry_failed: bool = False,
    on_run_end: ProgressCallback | None = None,
    device: str | None = None,
    executor: Any = "local",
    on_epoch: EpochProgress | None = None,
    on_start: StartCallback | None = None,
) -> SweepSummary:
    """Run every run of ``cells`` that ``store`` does not hold yet (sweep ``name``), on
    ``device`` when given (whatever device a stored run was registered with), with
    ``executor`` (a :data:`~fathom.experiments.sweep.Executor`: ``"local"`` processes,
    ``"ray"`` or a configured :class:`~fathom.experiments.ray_executor.RayExecutor`);
    ``on_run_end``, ``on_epoch`` and ``on_start`` as for
    :func:`~fathom.experiments.sweep.run_configs`."""
    # cells may share runs (a suite's AUC and AP rows, or two suites' common cell)
    unique = {config_hash(cfg): cfg for cell in cells for cfg in cell.configs}
    configs = list(unique.values())
    return run_configs(
        name,
        configs,
        store,
        workers=workers,
        threads=threads,
        retry_failed=retry_failed,
        on_run_end=on_run_end,
        device=device,
        executor=executor,
        on_epoch=on_epoch,
        on_start=on_start,
    )


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.pstdev(values)


def suite_rows(cells: Sequence[Cell], store: str | Path) -> list[dict[str, Any]]:
    """One row per cell from what ``store`` holds: ours (mean ± population std over
    finished runs of the cell's metric, times 100: accuracy, AUC, Hits@K or mIoU in %)
    beside the published figure and their difference."""
    keys = [[config_hash(c) for c in cell.configs] for cell in cells]
    with RunStore(store) as st:
        records = {key: st.get(key) for cell_keys in keys for key in cell_keys}
    rows = []
    for cell, cell_keys in zip(cells, keys, strict=True):
        recs = [records[key] for key in cell_keys]
        finished = [r for r in recs if r is not None and r["status"] in ("done", "diverged")]
        # per stored run, so a report can sum training time over runs that cells share
        run_times = {
            key: float(records[key]["time_s"] or 0.0)
            for key in cell_keys
            if records[key] is not None and records[key]["status"] in ("done", "diverged")
        }
        metric = cell.metric
        accs = [
            100 * r["metrics"][metric] for r in finished if r["metrics"].get(metric) is not None
        ]
        mean, std = _mean_std(accs)
        folds = None
        # spread over the folds of one cross-validation (graph classification)
        fold_std = f"{metric}_std" if metric.endswith("_paper") else f"{metric}_fold_std"
        if len(accs) == 1 and finished[0]["metrics"].get(fold_std) is not None:
            # one cross-validation: its spread is over folds
            std = 100 * finished[0]["metrics"][fold_std]
            folds = finished[0]["config"]["graph"]["folds"]
        train_runs = [
            100 * r["metrics"]["train_acc"]
            for r in finished
            if r["metrics"].get("train_acc") is not None
        ]
        train, _ = _mean_std(train_runs)
        by_val_acc = _test_at_best_val_acc(finished) if metric == "test_acc" else []
        epochs, _ = _mean_std([float(r["metrics"].get("epochs", 0)) for r in finished])
        time_s, _ = _mean_std([float(r["time_s"] or 0.0) for r in finished])
        pub = cell.published.value
        rows.append(
            {
                "suite": cell.suite,
                "model": cell.model,
                "model_key": cell.key,
                "dataset": cell.dataset,
                "depth": cell.depth,
                "ours_mean": mean,
                "ours_std": std,
                "metric": metric,
                "metric_label": cell.metric_label or METRIC_LABELS.get(metric, metric),
                "std_over_folds": folds,
                "n": len(accs),
                "n_planned": len(cell.configs),
                "n_diverged": sum(r["status"] == "diverged" for r in finished),
                "n_failed": sum(r is not None and r["status"] == "failed" for r in recs),
                "published": pub,
                "diff": None if mean is None or pub is None else mean - pub,
                "source": cell.published.source,
                "note": cell.note,
                "train_mean": train,
                "train_runs": train_runs,
                "best_epochs": [r["metrics"].get("best_epoch") for r in finished],
                "by_val_acc_runs": by_val_acc,
                "train_max_runs": _max_train_acc(finished),
                "epochs_mean": epochs,
                "time_s_mean": time_s,
                "run_times": run_times,
            }
        )
    return rows


def _test_at_best_val_acc(records: Sequence[Mapping[str, Any]]) -> list[float]:
    """Test accuracy (%) of each run whose epoch was picked by validation loss, at its
    epoch of highest validation accuracy instead (the first such epoch), read from its
    stored history: the same runs under the other validation-only rule. Empty unless every
    run has a history with both accuracies."""
    out = []
    for record in records:
        if record["config"].get("train", {}).get("monitor") != "val_loss":
            return []
        epochs = [
            e
            for e in record.get("history") or []
            if e.get("val_acc") is not None and e.get("test_acc") is not None
        ]
        if not epochs:
            return []
        best = max(epochs, key=lambda e: e["val_acc"])  # max keeps the first of equals
        out.append(100 * best["test_acc"])
    return out


def _max_train_acc(records: Sequence[Mapping[str, Any]]) -> list[float]:
    """The highest training accuracy (%) of each run over its stored history, in the order
    of ``train_runs`` (runs without a training accuracy left out); empty unless every such
    run has one in its history."""
    out = []
    for record in records:
        if record["metrics"].get("train_acc") is None:
            continue
        accs = [
            e["train_acc"] for e in record.get("history") or [] if e.get("train_acc") is not None
        ]
        if not accs:
            return []
        out.append(100 * max(accs))
    return out


def within_tolerance(row: dict[str, Any], tolerance: float = TOLERANCE) -> bool | None:
    """Whether ``row``'s mean is within ``tolerance`` points of its published figure;
    ``None`` when there is nothing to compare."""
    if row["diff"] is None:
        return None
    return abs(row["diff"]) <= tolerance


def override_cells(cells: Sequence[Cell], overrides: Sequence[tuple[str, Any]]) -> list[Cell]:
    """``cells`` with dotted ``overrides`` (``device``, ``train.precision`` …) applied to every
    config; an override that changes a config's key makes it a different run."""
    if not overrides:
        return list(cells)
    return [
        replace(cell, configs=tuple(apply_overrides(c, overrides) for c in cell.configs))
        for cell in cells
    ]


def cap_epochs(cells: Sequence[Cell], cap: int) -> list[Cell]:
    """``cells`` with every config's ``train.epochs`` lowered to ``cap`` where it is larger (a
    quick, shortened reproduction: the runs get new keys, and each cell whose published
    number of epochs is cut says so in its note)."""
    if cap < 1:
        raise ConfigError(f"--epochs must be >= 1, got {cap}")
    out = []
    for cell in cells:
        epochs = {c.train.epochs for c in cell.configs}
        if max(epochs) <= cap:
            out.append(cell)
            continue
        configs = tuple(
            apply_overrides(c, {"train.epochs": min(c.train.epochs, cap)}) for c in cell.configs
        )
        capped = f"epochs capped at {cap} (the recipe trains {max(epochs)})"
        note = f"{cell.note}; {capped}" if cell.note else capped
        out.append(replace(cell, configs=configs, note=note))
    return out


def check_data(cells: Sequence[Cell]) -> None:
    """Fail before anything runs when a dataset of ``cells`` is nowhere on this machine.

    OGB datasets (which fathom never downloads) are looked up in every data root without
    being read (:func:`~fathom.data.ogb_datasets.find_ogb`); other datasets are fetched or
    generated when their runs load them.

    Raises:
        DataNotFoundError: one line naming the places looked in and what to put there.
    """
    from fathom.data.ogb_datasets import find_ogb, is_ogb

    seen: set[tuple[str, str | None]] = set()
    for cell in cells:
        for cfg in cell.configs:
            where = (cfg.data.name, cfg.data.data_dir)
            if where not in seen:
                seen.add(where)
                if is_ogb(cfg.data.name):
                    find_ogb(cfg.data.name, cfg.data.data_dir)


def run_meta(
    suite: str, *, command: str, wall_s: float, runs_executed: int, store: str | Path
) -> dict[str, Any]:
    """What a reproduction report records of how it was made: the suite, the command, wall
    time, runs executed, the store, host and threads, versions, tolerance and the suite's
    notes."""
    import platform

    import torch

    return {
        "suite": suite,
        "command": command,
        "wall_s": wall_s,
        "runs_executed": runs_executed,
        "store": str(store),
        "host": f"{platform.node()} ({torch.get_num_threads()} threads)",
        "versions": f"torch {torch.__version__}, python {platform.python_version()}",
        "tolerance": TOLERANCE,
        "notes": list(SUITES[suite].notes),
    }
