"""fathom: build, train, diagnose and benchmark deep graph neural networks."""

# the task modules register their config sections and checks: import them before anything
# builds a config
from fathom import tasks  # noqa: F401, I001
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
from fathom.data.graph_datasets import load_graph_dataset
from fathom.data.inductive import inductive_views
from fathom.data.synthetic import make_synthetic
from fathom.data.validate import GraphReport, validate_graph
from fathom.errors import ConfigError, DataError, DataNotFoundError, FathomError
from fathom.experiments.depth_study import depth_study
from fathom.experiments.run import ExperimentResult, build_task_data, run_experiment, train_one
from fathom.experiments.store import RunStore
from fathom.experiments.sweep import SweepSummary, run_configs, sweep
from fathom.models.build import build_model
from fathom.models.deep_gnn import DeepGNN
from fathom.models.build import Head
from fathom.models.graph_classifier import GraphClassifier
from fathom.models.presets import list_presets, load_preset
from fathom.tasks import TASKS, TaskSpec, get_task
from fathom.tasks.graph import GraphClassification, GraphTaskConfig
from fathom.tasks.link import LinkPrediction, LinkTaskConfig, split_edges
from fathom.tasks.node import InductiveNodeClassification, NodeClassification
from fathom.tasks.segmentation import PointsConfig
from fathom.train.loop import FitResult, fit

__version__ = "0.1.0"

__all__ = [
    "TASKS",
    "ConfigError",
    "DataConfig",
    "DataError",
    "DataNotFoundError",
    "DeepGNN",
    "ExperimentConfig",
    "ExperimentResult",
    "FathomError",
    "FitResult",
    "GraphClassification",
    "GraphClassifier",
    "GraphReport",
    "GraphTaskConfig",
    "Head",
    "InductiveNodeClassification",
    "LinkPrediction",
    "LinkTaskConfig",
    "ModelConfig",
    "NodeClassification",
    "PointsConfig",
    "RunStore",
    "SweepSummary",
    "SyntheticConfig",
    "TaskSpec",
    "TrainConfig",
    "__version__",
    "apply_overrides",
    "build_dataset",
    "build_model",
    "build_task_data",
    "depth_study",
    "fit",
    "get_task",
    "inductive_views",
    "list_datasets",
    "list_presets",
    "load_config",
    "load_dataset",
    "load_graph_dataset",
    "load_graph_file",
    "load_preset",
    "make_synthetic",
    "report",
    "run_configs",
    "run_experiment",
    "split_edges",
    "sweep",
    "train_one",
    "validate_graph",
]
