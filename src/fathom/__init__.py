"""fathom: build, train, diagnose and benchmark deep graph neural networks.

The public API below is imported on first use (PEP 562), so ``import fathom`` and the
``fathom`` command's ``--help`` / ``--version`` do not load torch. The task modules, which
register their config sections and checks, are imported before any name of the API is
returned and, whatever was imported, the first time a config is built
(:func:`fathom.config.set_section_loader`).
"""

from __future__ import annotations

import importlib
from typing import Any

from fathom.config import set_section_loader
from fathom.version import __version__ as __version__

# the task modules register their config sections and checks; they load torch, so they are
# imported when a config is first built, not here
set_section_loader(lambda: importlib.import_module("fathom.tasks"))

_API: dict[str, str] = {
    # name: the module that defines it
    "ConfigError": "fathom.errors",
    "DataError": "fathom.errors",
    "DataNotFoundError": "fathom.errors",
    "FathomError": "fathom.errors",
    "DataConfig": "fathom.config",
    "ExperimentConfig": "fathom.config",
    "ModelConfig": "fathom.config",
    "SyntheticConfig": "fathom.config",
    "TrainConfig": "fathom.config",
    "apply_overrides": "fathom.config",
    "load_config": "fathom.config",
    "build_dataset": "fathom.data.build",
    "list_datasets": "fathom.data.datasets",
    "load_dataset": "fathom.data.datasets",
    "load_graph_file": "fathom.data.datasets",
    "load_graph_dataset": "fathom.data.graph_datasets",
    "inductive_views": "fathom.data.inductive",
    "make_synthetic": "fathom.data.synthetic",
    "GraphReport": "fathom.data.validate",
    "validate_graph": "fathom.data.validate",
    "depth_study": "fathom.experiments.depth_study",
    "ExperimentResult": "fathom.experiments.run",
    "build_task_data": "fathom.experiments.run",
    "run_experiment": "fathom.experiments.run",
    "train_one": "fathom.experiments.run",
    "RayExecutor": "fathom.experiments.ray_executor",
    "RunStore": "fathom.experiments.store",
    "SweepSummary": "fathom.experiments.sweep",
    "run_configs": "fathom.experiments.sweep",
    "sweep": "fathom.experiments.sweep",
    "Head": "fathom.models.build",
    "build_model": "fathom.models.build",
    "DeepGNN": "fathom.models.deep_gnn",
    "GraphClassifier": "fathom.models.graph_classifier",
    "list_presets": "fathom.models.presets",
    "load_preset": "fathom.models.presets",
    "TASKS": "fathom.tasks",
    "TaskSpec": "fathom.tasks",
    "get_task": "fathom.tasks",
    "GraphClassification": "fathom.tasks.graph",
    "GraphTaskConfig": "fathom.tasks.graph",
    "LinkPrediction": "fathom.tasks.link",
    "LinkTaskConfig": "fathom.tasks.link",
    "split_edges": "fathom.tasks.link",
    "InductiveNodeClassification": "fathom.tasks.node",
    "NodeClassification": "fathom.tasks.node",
    "PointsConfig": "fathom.tasks.segmentation",
    "FitResult": "fathom.train.loop",
    "fit": "fathom.train.loop",
}
_SUBPACKAGES = ("report", "tasks")

__all__ = sorted([*_API, *_SUBPACKAGES, "__version__"])


def __getattr__(name: str) -> Any:
    """Import the API name ``name`` on first use (after :mod:`fathom.tasks`) and keep it."""
    if name in _API or name in _SUBPACKAGES:
        importlib.import_module("fathom.tasks")  # registers the config sections and checks
        value = (
            importlib.import_module(f"fathom.{name}")
            if name in _SUBPACKAGES
            else getattr(importlib.import_module(_API[name]), name)
        )
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fathom' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
