"""fathom: build, train, diagnose and benchmark deep graph neural networks."""

from fathom import report
from fathom.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    SyntheticConfig,
    TrainConfig,
    apply_overrides,
    load_config,
)
from fathom.data.build import build_dataset
from fathom.data.datasets import list_datasets, load_dataset, load_graph_file
from fathom.data.synthetic import make_synthetic
from fathom.data.validate import GraphReport, validate_graph
from fathom.errors import ConfigError, DataError, DataNotFoundError, FathomError
from fathom.experiments.depth_study import depth_study
from fathom.experiments.run import ExperimentResult, run_experiment
from fathom.experiments.store import RunStore
from fathom.experiments.sweep import SweepSummary, run_configs, sweep
from fathom.models.build import build_model
from fathom.models.deep_gnn import DeepGNN
from fathom.models.presets import list_presets, load_preset
from fathom.tasks.node import NodeClassification
from fathom.train.loop import FitResult, fit

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataConfig",
    "DataError",
    "DataNotFoundError",
    "DeepGNN",
    "ExperimentConfig",
    "ExperimentResult",
    "FathomError",
    "FitResult",
    "GraphReport",
    "ModelConfig",
    "NodeClassification",
    "RunStore",
    "SweepSummary",
    "SyntheticConfig",
    "TrainConfig",
    "__version__",
    "apply_overrides",
    "build_dataset",
    "build_model",
    "depth_study",
    "fit",
    "list_datasets",
    "list_presets",
    "load_config",
    "load_dataset",
    "load_graph_file",
    "load_preset",
    "make_synthetic",
    "report",
    "run_configs",
    "run_experiment",
    "sweep",
    "validate_graph",
]
