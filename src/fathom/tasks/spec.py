"""What a task is: one :class:`TaskSpec` per task, registered in :data:`TASKS`.

A task spec owns everything specific to a learning task (node classification, graph
classification, link prediction, autoencoding, segmentation …): its config section and
checks, how it turns a dataset into what each training run fits (:meth:`TaskSpec.plan`), the
head / readout / decoder it asks :func:`~fathom.models.build.build_model` for, its objective
(loss, metrics, default monitor) and how it describes its data. The run pipeline
(:mod:`fathom.experiments.run`), the CLI, sweeps and reproduce ask the spec and never branch
on a task's name, as PyG's ``BasicGNN`` asks a conv for ``supports_edge_weight`` instead of
testing its class.

Adding a task = one module ``fathom/tasks/<name>.py`` defining a :class:`TaskSpec` subclass
(and its config section, :func:`fathom.config.register_section`), one line in
``fathom/tasks/__init__.py`` importing it, its tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from torch import nn

from fathom.config import ExperimentConfig, require
from fathom.data.build import check_data
from fathom.models.build import Head, check_model
from fathom.registry import Registry
from fathom.train.loop import FitResult, Objective

__all__ = ["TASKS", "FitPlan", "TaskSpec", "check_task", "get_task"]


@dataclass
class FitPlan:
    """One model to build and fit: what one seed (or one fold of it) trains on.

    Args:
        seed: everything is seeded with it right before the model is built.
        data: what :func:`~fathom.train.loop.fit` iterates (a graph, a link split's training
            graph, a fold's graphs, point clouds).
        in_channels, out_channels: the model's input features and outputs.
        objective: loss, metrics and batches (:class:`~fathom.train.loop.Objective`).
        head: what the task puts on the shared model (``None``: the model's own head).
        diagnose: per-layer diagnostics of this fit (``train.diagnose_every``): the graph
            to probe; ``None``: not measured (e.g. folds after the first).
        probe: the part of the model whose layers are probed (default: the whole model).
    """

    seed: int
    data: Any
    in_channels: int
    out_channels: int
    objective: Objective
    head: Head | None = None
    diagnose: Any = None
    probe: Any = field(default=None, repr=False)

    def probe_module(self, model: nn.Module) -> nn.Module:
        """The module whose layers per-layer diagnostics probe."""
        return model if self.probe is None else self.probe(model)


class TaskSpec:
    """Base class of a task. Subclasses set the class attributes and override the methods
    marked so; everything else has a default that fits single-graph tasks."""

    name: ClassVar[str]
    """Registry name (``cfg.task``)."""
    description: ClassVar[str]
    """One line for ``--help`` and listings."""
    monitors: ClassVar[tuple[str, ...]] = ("val_loss", "val_acc")
    """Validation metrics ``train.monitor`` may name for this task (besides ``auto``)."""
    saves_models: ClassVar[bool] = False
    """Whether a run's trained model can be saved (``--checkpoint``) and diagnosed."""
    distributed: ClassVar[bool] = False
    """Whether the task trains data-parallel on several processes (``fathom train --nproc``,
    torchrun) and resumes (``--resume``): one fit per seed, batches from a loader that
    shards (``LoaderSpec.shards``), no random state but torch's generator and the
    objective's ``loader``'s."""
    archs: ClassVar[tuple[str, ...] | None] = None
    """``model.arch`` values this task accepts (``None``: any but :attr:`refused_archs`)."""
    refused_archs: ClassVar[tuple[str, ...]] = ("gae", "vgae")

    # ------------------------------------------------------------------ config

    def check(self, cfg: ExperimentConfig) -> None:
        """Task rules on a config: registered names (:func:`check_model`), the arch, the
        monitor, data options that only some tasks read. Raise ConfigError."""
        check_data(cfg.data)
        check_model(cfg.model)
        self.check_arch(cfg)
        self.check_common(cfg)

    def check_arch(self, cfg: ExperimentConfig) -> None:
        arch = cfg.model.arch
        if arch in self.refused_archs:
            why = (
                "is a link-prediction encoder: use it with task link or autoencoder"
                if arch in ("gae", "vgae")
                else f"cannot be used with task {cfg.task!r}"
            )
            require(False, "model.arch", why, arch)
        if self.archs is not None:
            require(
                arch in self.archs,
                "model.arch",
                f"must be {' or '.join(repr(a) for a in self.archs)} for task {self.name!r}",
                arch,
            )

    def check_common(self, cfg: ExperimentConfig) -> None:
        """Rules every task shares: the monitor is one of :attr:`monitors`; point-cloud
        datasets and ``data.inductive`` need the tasks that read them."""
        from fathom.data.pointclouds import POINT_CLOUD_DATASETS

        monitors = ("auto", *self.monitors)
        require(
            cfg.train.monitor in monitors,
            "train.monitor",
            f"must be {', '.join(monitors)} for task {cfg.task!r}",
            cfg.train.monitor,
        )
        require(
            cfg.data.name not in POINT_CLOUD_DATASETS or self.reads_point_clouds,
            "task",
            f"must be 'segmentation' for the point-cloud dataset {cfg.data.name!r}",
            cfg.task,
        )
        require(
            not cfg.data.inductive or self.inductive,
            "data.inductive",
            "applies to task 'node' only",
            cfg.data.inductive,
        )
        self.check_loader(cfg)
        self.check_eval_mode(cfg)
        if cfg.train.layerwise:
            m = cfg.model
            require(
                self.grows_blocks,
                "train.layerwise",
                f"is not available for task {cfg.task!r} (no block stack to grow)",
                cfg.train.layerwise,
            )
            require(
                m.arch == "deep",
                "train.layerwise",
                f"needs a block stack to grow (model.arch 'deep'), not model.arch {m.arch!r}",
                cfg.train.layerwise,
            )
            require(
                m.skip != "jk",
                "train.layerwise",
                "cannot be combined with model.skip 'jk' (the head's input width changes as "
                "blocks are added)",
                cfg.train.layerwise,
            )

    reads_point_clouds: ClassVar[bool] = False
    """Whether the task reads point-cloud datasets (``data.name`` ``scenes`` / ``s3dis``)."""
    inductive: ClassVar[bool] = False
    """Whether the task reads ``data.inductive``."""
    grows_blocks: ClassVar[bool] = True
    """Whether its model holds a block stack that ``train.layerwise`` can grow."""
    loaders: ClassVar[tuple[str, ...]] = ("full",)
    """``train.loader`` values the task accepts (``fathom.loaders.LOADERS``)."""
    batches_itself: ClassVar[bool] = False
    """Whether the task trains in mini-batches of its own (graphs, clouds, trees), so
    ``train.batch_size`` applies whatever the loader."""
    eval_modes: ClassVar[tuple[str, ...]] = ("full",)
    """``train.eval_mode`` values the task's evaluation reads (``fathom.config.EVAL_MODES``)."""

    def check_eval_mode(self, cfg: ExperimentConfig) -> None:
        """``train.eval_mode`` is one the task evaluates with, the transductive setting, and
        one the model can run (:func:`~fathom.models.inference.check_eval_mode`)."""
        from fathom.models.inference import check_eval_mode

        mode = cfg.train.eval_mode
        if mode == "full":
            return
        require(
            mode in self.eval_modes,
            "train.eval_mode",
            f"must be {', '.join(self.eval_modes)} for task {cfg.task!r}",
            mode,
        )
        require(
            not cfg.data.inductive,
            "train.eval_mode",
            "must be 'full' with data.inductive (each split is evaluated on its own graph)",
            mode,
        )
        check_eval_mode(cfg.model, mode)

    def check_loader(self, cfg: ExperimentConfig) -> None:
        """``train.loader`` is one the task takes, and no loader option is set that the
        chosen loader (or the task's own batching) does not read."""
        from fathom.config import TrainConfig
        from fathom.loaders.build import LOADERS, unused_options

        t = cfg.train
        require(
            t.loader in self.loaders,
            "train.loader",
            f"must be {', '.join(self.loaders)} for task {cfg.task!r}"
            + ("" if t.loader in LOADERS else f" (loaders: {', '.join(LOADERS.names())})"),
            t.loader,
        )
        unused = unused_options(t.loader, asdict(t), asdict(TrainConfig()))
        if self.batches_itself:
            unused = [u for u in unused if u != "batch_size"]
        if unused:
            key = unused[0]
            readers = [n for n in LOADERS.names() if key in LOADERS.get(n).options]
            require(
                False,
                f"train.{key}",
                f"applies to train.loader {' or '.join(readers)}, not {t.loader!r}",
                getattr(t, key),
            )

    # ------------------------------------------------------------------ data

    def load(self, cfg: ExperimentConfig) -> Any:
        """What the task trains on, built with ``cfg.seed`` (default: one graph)."""
        from fathom.data.build import build_dataset

        return build_dataset(cfg.data, seed=cfg.seed)

    def data_key(self, cfg: ExperimentConfig) -> tuple[Any, ...]:
        """What, besides ``cfg.data`` and the seed, decides what :meth:`load` returns (a
        sweep builds each dataset once per process per key)."""
        return (type(self).load.__qualname__,)

    def describe(self, data: Any) -> dict[str, Any]:
        """Size of what a run trains on (default: one graph's nodes, edges, classes,
        split sizes)."""
        return {
            "name": getattr(data, "name", None),
            "num_nodes": data.num_nodes,
            "num_edges": data.num_edges,
            "num_features": data.num_features,
            "num_classes": int(data.y.max()) + 1,
            **{
                split: int(data[f"{split}_mask"].sum())
                for split in ("train", "val", "test")
                if f"{split}_mask" in data
            },
        }

    def title(self, cfg: ExperimentConfig, described: dict[str, Any]) -> str:
        """The headline ``fathom train`` prints: dataset, task, model, data size."""
        m = cfg.model
        what = (
            f"{m.conv} depth {m.depth}, skip {m.skip}, norm {m.norm}"
            if m.arch == "deep"
            else f"{m.arch} depth {m.depth}"
        )
        setting = " inductive" if cfg.data.inductive else ""
        return f"{cfg.data.name} ({cfg.task}{setting}): {what} ({self.size(cfg, described)})"

    def size(self, cfg: ExperimentConfig, described: dict[str, Any]) -> str:
        """The data-size part of :meth:`title` (default: nodes and edges of one graph)."""
        return f"{described['num_nodes']} nodes, {described['num_edges']} edges"

    def fits_per_seed(self, cfg: ExperimentConfig) -> int:
        """How many models one seed trains (folds of a cross-validation)."""
        return 1

    def summary_lines(self, cfg: ExperimentConfig, result: Any) -> list[str]:
        """Extra lines ``fathom train`` prints under the results table of ``result`` (an
        :class:`~fathom.experiments.run.ExperimentResult`)."""
        return []

    # ------------------------------------------------------------------ training

    def plan(self, cfg: ExperimentConfig, data: Any) -> Iterator[FitPlan]:
        """The fits one seed (``cfg.seed``) runs, in order (override)."""
        raise NotImplementedError

    def combine(self, cfg: ExperimentConfig, results: list[FitResult]) -> FitResult:
        """One seed's result from its fits' (default: the single fit's)."""
        (result,) = results
        return result


TASKS: Registry[TaskSpec] = Registry("task")
"""Every task by name; ``fathom.tasks`` imports the task modules, which register here."""


def get_task(name: str) -> TaskSpec:
    """The spec of task ``name``; an unknown name raises ConfigError listing the tasks."""
    return TASKS.get(name)


def check_task(cfg: ExperimentConfig) -> None:
    """The config check :mod:`fathom.tasks` registers: the task exists, then its rules."""
    require(cfg.task in TASKS, "task", f"must be one of {', '.join(TASKS.names())}", cfg.task)
    get_task(cfg.task).check(cfg)
