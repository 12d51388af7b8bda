"""Accuracy against depth for several model variants on one graph: the basic deep-GNN study."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch_geometric.data import Data

from fathom.config import ExperimentConfig, apply_overrides, config_to_dict
from fathom.experiments.run import ExperimentResult, run_experiment
from fathom.train.loop import EpochCallback

__all__ = ["depth_study"]

RunCallback = Callable[[str, int, int, dict[str, Any]], None]


def depth_study(
    base: ExperimentConfig,
    variants: Mapping[str, Mapping[str, Any]],
    depths: Sequence[int],
    data: Data | None = None,
    on_run_end: RunCallback | None = None,
    callbacks: list[EpochCallback] | None = None,
) -> list[dict[str, Any]]:
    """Train every variant at every depth over ``base.seeds`` seeds on the same graph.

    Args:
        base: the shared config (dataset, training, seeds).
        variants: name -> dotted overrides, e.g. ``{"ResGCN": {"model.skip": "res"}}``.
        depths: values of ``model.depth``.
        data: the graph; built from ``base.data`` with ``base.seed`` when omitted.
        on_run_end: called as ``(variant, depth, seed, run)`` after each training run.
        callbacks: epoch callbacks of every run (:func:`~fathom.experiments.run.run_experiment`),
            e.g. to show progress within a run.

    Returns:
        One row per (variant, depth): ``model``, ``depth``, the aggregate over seeds
        (``test_acc_mean``, ``test_acc_std``, ``n`` …), the resolved ``config`` and the
        per-seed ``runs`` (without per-epoch history).
    """
    if data is None:
        from fathom.data.build import build_dataset

        data = build_dataset(base.data, seed=base.seed)
    rows = []
    for name, overrides in variants.items():
        for depth in depths:
            cfg = apply_overrides(base, {**overrides, "model.depth": depth})

            def report(
                seed: int, run: dict[str, Any], name: str = name, depth: int = depth
            ) -> None:
                if on_run_end is not None:
                    on_run_end(name, depth, seed, run)

            result: ExperimentResult = run_experiment(
                cfg, data, on_run_end=report, callbacks=callbacks
            )
            runs = [{k: v for k, v in r.items() if k != "history"} for r in result.runs]
            rows.append(
                {
                    "model": name,
                    "depth": depth,
                    **result.aggregate,
                    "config": config_to_dict(cfg),
                    "runs": runs,
                }
            )
    return rows
