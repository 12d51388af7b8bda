"""Diagnose a configured experiment (what ``fathom diagnose`` runs): the graph's structure and
over-squashing, and the per-layer over-smoothing of the config's model — freshly built, loaded
from a checkpoint, or trained (first seed) and measured before and after.

Built on :mod:`fathom.diagnostics.diagnose`, which measures given models and graphs; this
module builds them from an :class:`~fathom.config.ExperimentConfig`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from torch_geometric.data import Data

from fathom.config import ExperimentConfig, config_to_dict, with_seed
from fathom.errors import FathomError

__all__ = [
    "check_diagnosable",
    "diagnose_config",
    "diagnose_config_model",
    "grid_reference",
    "input_features",
    "model_name",
]

Progress = Callable[[str], None]


def _noop(message: str) -> None:
    return None


def check_diagnosable(cfg: ExperimentConfig) -> None:
    """Raise unless ``cfg`` trains a transductive node-classification model (what the
    per-layer diagnosis measures)."""
    from fathom.tasks import get_task

    if not get_task(cfg.task).saves_models or cfg.data.inductive:
        raise FathomError(
            f"fathom diagnose measures transductive node-classification models, not task "
            f"{cfg.task!r}{' (inductive)' if cfg.data.inductive else ''}"
        )


def model_name(cfg: ExperimentConfig) -> str:
    """A short name of the config's model: ``gcn x8 skip=res norm=pair`` or ``sgc K=4``."""
    m = cfg.model
    if m.arch != "deep":
        return f"{m.arch} K={m.depth}"
    return (
        f"{m.conv} x{m.depth}"
        + (f" skip={m.skip}" if m.skip != "none" else "")
        + (f" norm={m.norm}" if m.norm != "none" else "")
    )


def input_features(cfg: ExperimentConfig) -> str:
    """What the diagnosed input features are: ``data.x`` as training prepares it for
    ``cfg`` (:func:`~fathom.data.build.build_dataset`'s ``data.normalize_features`` rule),
    so a metric read here compares with training's, not with raw features."""
    rule = {
        True: "row-normalised",
        False: "not normalised",
        None: "row-normalised when every feature is non-negative, else as given",
    }[cfg.data.normalize_features]
    setting = {True: "true", False: "false", None: "auto"}[cfg.data.normalize_features]
    return f"data.x as training prepares it: {rule} (data.normalize_features {setting})"


def grid_reference(num_nodes: int, hops: int, seed: int) -> dict[str, Any]:
    """The structure report of a square grid with about ``num_nodes`` nodes, by name (the
    plots' contrast: a lattice's receptive field grows quadratically, a small world's
    exponentially)."""
    from fathom.data.synthetic import make_synthetic
    from fathom.diagnostics.structure import structure_report

    side = max(2, round(math.sqrt(num_nodes)))
    grid = make_synthetic("grid", height=side, width=side, seed=seed)
    report = structure_report(grid.edge_index, grid.num_nodes, max_hops=hops, seed=seed)
    return {f"grid {side}x{side}": report.to_dict()}


def diagnose_config_model(
    cfg: ExperimentConfig,
    data: Data,
    *,
    checkpoint: Mapping[str, Any] | None = None,
    train: bool = False,
    metrics: str = "all",
    targets: int = 16,
    sensitivity: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Per-layer metrics (and Jacobian sensitivity) of the model of ``cfg`` on ``data``.

    The model is the one in ``checkpoint`` (a :func:`~fathom.experiments.checkpoint.
    load_checkpoint` payload) when given, else the config's freshly initialised model; with
    ``train``, that model is measured untrained (``untrained``, without sensitivity), trained
    on the first seed and measured again. Returns ``model_name``, ``config``, ``training``
    (the run's metrics, where a model was trained) and :func:`~fathom.diagnostics.diagnose.
    diagnose_model`'s keys.
    """
    from fathom.diagnostics.diagnose import diagnose_model
    from fathom.experiments.run import initial_model, train_one

    say = progress or _noop
    name = model_name(cfg)
    common: dict[str, Any] = {
        "metrics": metrics,
        "targets": targets,
        "sensitivity": sensitivity,
        "seed": cfg.seed,
        "progress": say,
        "input_features": input_features(cfg),
    }
    out: dict[str, Any] = {"model_name": name, "config": config_to_dict(cfg)}
    if checkpoint is not None:
        from fathom.experiments.checkpoint import build_from_checkpoint

        num_classes = int(data.y.max()) + 1
        model = build_from_checkpoint(dict(checkpoint), data.num_features, num_classes)
        out["training"] = checkpoint.get("metrics", {})
        out.update(diagnose_model(model, data, **common))
        return out
    model = initial_model(cfg, data)
    if not train:
        out.update(diagnose_model(model, data, **common))
        return out
    out["untrained"] = diagnose_model(model, data, **{**common, "sensitivity": False})
    say(f"training {name}")
    trained: dict[str, Any] = {}
    # trained on cfg.device; diagnosed where the untrained model and the graph are (the CPU)
    fitted = train_one(
        with_seed(cfg, cfg.seed), data, on_model=lambda mdl: trained.update(model=mdl.cpu())
    )
    out["training"] = {k: v for k, v in fitted.to_dict().items() if k != "history"}
    out.update(diagnose_model(trained["model"], data, **common))
    return out


def diagnose_config(
    cfg: ExperimentConfig,
    data: Data,
    *,
    model: bool = True,
    checkpoint: Mapping[str, Any] | None = None,
    train: bool = False,
    metrics: str = "all",
    targets: int = 16,
    hops: int = 8,
    quick: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The whole diagnosis: ``dataset`` (name and size), the graph's (:func:`~fathom.
    diagnostics.diagnose.diagnose_graph`: structure; curvature and effective resistance
    unless ``quick``) and, with ``model``, :func:`diagnose_config_model`'s (Jacobian
    sensitivity unless ``quick``); ``timings_s`` of both merged."""
    from fathom.diagnostics.diagnose import diagnose_graph

    result: dict[str, Any] = {
        "dataset": {"name": cfg.data.name, "num_nodes": data.num_nodes, "num_edges": data.num_edges}
    }
    result.update(
        diagnose_graph(
            data,
            max_hops=hops,
            curvature=not quick,
            resistance=not quick,
            seed=cfg.seed,
            progress=progress or _noop,
        )
    )
    if model:
        part = diagnose_config_model(
            cfg,
            data,
            checkpoint=checkpoint,
            train=train,
            metrics=metrics,
            targets=targets,
            sensitivity=not quick,
            progress=progress,
        )
        timings = {**result["timings_s"], **part.pop("timings_s", {})}
        result.update(part, timings_s=timings)
    return result
