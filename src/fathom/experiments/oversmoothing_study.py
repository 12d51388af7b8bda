"""Over-smoothing study: per-layer Dirichlet energy of a plain deep GCN against its remedies.

For each model (plain GCN, GCNII, GCN + PairNorm, ResGCN by default), at one depth, on one
graph: the per-layer metrics of the freshly initialised model and of the trained model
(:func:`fathom.diagnostics.diagnose.energy_decay_rate` fits the per-layer decay rate), plus
its accuracy. What Rusch, Bronstein and Mishra (2023) call the defining symptom — the energy
of a plain GCN decays exponentially with depth while remedies keep it bounded away from 0 —
is then visible in one plot and one table (drawn by :mod:`fathom.report.oversmoothing`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from torch_geometric.data import Data

from fathom.config import ExperimentConfig, apply_overrides, with_seed
from fathom.diagnostics.diagnose import energy_decay_rate
from fathom.diagnostics.probes import probe_layers
from fathom.errors import ConfigError

__all__ = [
    "DEFAULT_STUDY_MODELS",
    "STUDY_MODELS",
    "check_study_models",
    "energy_studies",
    "energy_study",
    "study_config",
]

EXACT: dict[str, Any] = {"max_nodes": None, "max_edges": None}
"""Probe settings: every node and edge measured (no sampling)."""
METRICS = ("dirichlet_energy", "normalized_energy", "effective_rank", "numerical_rank", "mad")

STUDY_MODELS: dict[str, str] = {
    "GCN": "depth-gcn",
    "GCNII": "gcnii-cora",
    "GCN+PairNorm": "depth-pairnorm",
    "ResGCN+BN": "depth-resgcn",
    "GCN+NodeNorm": "depth-nodenorm",
    "JKNet": "depth-jknet",
}
"""Models of the study by name -> the preset (``fathom presets``) whose settings they use;
depth, dataset and the epoch cap are set per study."""

DEFAULT_STUDY_MODELS = ("GCN", "GCNII", "GCN+PairNorm", "ResGCN+BN")
"""The models a study compares unless told otherwise: a plain GCN and three remedies."""


def study_config(
    name: str,
    depth: int,
    data_name: str,
    seed: int,
    max_epochs: int | None,
    overrides: Sequence[tuple[str, Any]] = (),
) -> ExperimentConfig:
    """The preset of study model ``name`` at ``depth`` on ``data_name``, epochs capped, with
    dotted ``overrides`` (``device`` …) applied."""
    from fathom.models.presets import load_preset

    if name not in STUDY_MODELS:
        raise ConfigError(f"unknown study model {name!r}; choose from {', '.join(STUDY_MODELS)}")
    cfg = load_preset(STUDY_MODELS[name])
    train = (
        cfg.train
        if max_epochs is None
        else replace(cfg.train, epochs=min(cfg.train.epochs, max_epochs))
    )
    cfg = replace(
        cfg,
        model=replace(cfg.model, depth=depth),
        train=train,
        data=replace(cfg.data, name=data_name),
    )
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return with_seed(cfg, seed)


def energy_study(
    data: Data,
    *,
    models: Sequence[str] = DEFAULT_STUDY_MODELS,
    depth: int = 32,
    max_epochs: int | None = 400,
    seed: int = 0,
    data_name: str = "graph",
    progress: Callable[[str], None] | None = None,
    overrides: Sequence[tuple[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Untrained and trained per-layer metrics of each model; one row per model.

    Models are named in :data:`STUDY_MODELS` and use their preset's settings at ``depth``
    (training capped at ``max_epochs``; dotted ``overrides`` such as ``device`` applied).

    Each row: ``model``, ``depth``, ``untrained`` / ``trained`` (per-layer records),
    ``untrained_decay`` / ``trained_decay`` (:func:`energy_decay_rate`), ``train_acc``,
    ``test_acc``, ``epochs``, ``time_s``, and the resolved ``config``. The untrained model
    is exactly the one training starts from (same seed).
    """
    from fathom.config import config_to_dict
    from fathom.experiments.run import initial_model, train_one

    rows = []
    for name in models:
        cfg = study_config(name, depth, data_name, seed, max_epochs, overrides)
        if progress:
            progress(f"{name} x{depth}: untrained")
        untrained = probe_layers(
            initial_model(cfg, data), data.x, data.edge_index, METRICS, **EXACT
        )
        if progress:
            progress(f"{name} x{depth}: training")
        t0 = time.perf_counter()
        trained_models: list[Any] = []
        # trained on cfg.device, probed on the CPU beside the untrained model and the graph
        fitted = train_one(cfg, data, on_model=trained_models.append)
        trained_models[0].cpu()
        trained = probe_layers(trained_models[0], data.x, data.edge_index, METRICS, **EXACT)
        rows.append(
            {
                "model": name,
                "depth": depth,
                "untrained": untrained,
                "trained": trained,
                "untrained_decay": energy_decay_rate(untrained),
                "trained_decay": energy_decay_rate(trained),
                "train_acc": fitted.metrics.get("train_acc"),
                "test_acc": fitted.metrics.get("test_acc"),
                "epochs": fitted.epochs,
                "status": fitted.status,
                "time_s": time.perf_counter() - t0,
                "config": config_to_dict(cfg),
            }
        )
    return rows


def check_study_models(models: Sequence[str]) -> list[str]:
    """``models`` as a list, or a one-line error naming the first that is not a study model."""
    unknown = [m for m in models if m not in STUDY_MODELS]
    if unknown:
        raise ConfigError(
            f"unknown model {unknown[0]!r} for oversmoothing; choose from {', '.join(STUDY_MODELS)}"
        )
    return list(models)


def energy_studies(
    datasets: Sequence[str],
    depths: Sequence[int],
    *,
    models: Sequence[str] = DEFAULT_STUDY_MODELS,
    max_epochs: int | None = 400,
    overrides: Sequence[tuple[str, Any]] = (),
    progress: Callable[[str], None] | None = None,
) -> Iterator[tuple[str, int, list[dict[str, Any]]]]:
    """:func:`energy_study` of every dataset (built once) at every depth, yielded as
    ``(dataset, depth, rows)`` as each finishes; ``progress`` messages name the dataset."""
    from fathom.config import DataConfig
    from fathom.data.build import build_dataset

    models = check_study_models(models)
    for name in datasets:
        data = build_dataset(DataConfig(name=name))
        for depth in depths:
            rows = energy_study(
                data,
                models=models,
                depth=depth,
                max_epochs=max_epochs,
                data_name=name,
                overrides=overrides,
                progress=None if progress is None else lambda m, n=name: progress(f"{n}: {m}"),
            )
            yield name, depth, rows
