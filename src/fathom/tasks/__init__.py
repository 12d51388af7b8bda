"""Learning tasks: one module per task, each registering a :class:`~fathom.tasks.spec.TaskSpec`
in :data:`TASKS` (and its config section). Importing this package registers them all."""

from fathom.config import register_check
from fathom.tasks import (  # noqa: F401  (each module registers its task)
    autoencoder,
    graph,
    link,
    neighbors_match,
    node,
    segmentation,
)
from fathom.tasks.spec import TASKS, FitPlan, TaskSpec, check_task, get_task

__all__ = ["TASKS", "FitPlan", "TaskSpec", "get_task"]

register_check(check_task)
