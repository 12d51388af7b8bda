"""Tests of fathom.tasks.neighbors_match: the task spec and the official protocol's objective."""

from __future__ import annotations

import pytest
import torch

from fathom.config import config_from_dict
from fathom.data.neighbors_match import tree_neighbors_match
from fathom.errors import ConfigError
from fathom.tasks import get_task
from fathom.tasks.neighbors_match import (
    NeighborsMatchObjective,
    official_eval_every,
)


def _cfg(**train: object) -> object:
    return config_from_dict(
        {
            "task": "neighbors-match",
            "data": {"name": "tree-neighbors-match"},
            "model": {"depth": 3, "hidden": 8, "dropout": 0.0, "head": "none"},
            "train": {"epochs": 2, "patience": 0, "batch_size": 8, **train},
            "neighbors_match": {"radius": 2, "num_examples": 40, "eval_every": 3},
        }
    )


def test_official_rounds() -> None:
    assert official_eval_every(2) == 1000
    assert all(official_eval_every(r) == 100 for r in range(3, 9))


def test_a_round_is_eval_every_shuffled_passes_over_the_training_trees() -> None:
    data = tree_neighbors_match(2, num_examples=20, seed=0)
    train_idx, test_idx = torch.arange(12), torch.arange(12, 20)
    objective = NeighborsMatchObjective(train_idx, test_idx, batch_size=5, eval_every=3, seed=1)
    batches = list(objective.batches(data))
    sizes = [int(b.num_graphs) for b, _ in batches]
    assert sizes == [5] * 7 + [1]  # 36 trees: 3 passes over 12
    assert [w for _, w in batches] == [float(n) for n in sizes]
    seen = torch.cat([b.y for b, _ in batches])
    assert seen.numel() == 36
    # the same seed shuffles alike; another seed does not
    again = NeighborsMatchObjective(train_idx, test_idx, 5, 3, seed=1)
    assert [b.root_index.tolist() for b, _ in again.batches(data)] == [
        b.root_index.tolist() for b, _ in batches
    ]
    other = NeighborsMatchObjective(train_idx, test_idx, 5, 3, seed=2)
    assert [b.y.tolist() for b, _ in other.batches(data)] != [b.y.tolist() for b, _ in batches]


def test_train_accuracy_is_the_running_accuracy_of_the_round() -> None:
    data = tree_neighbors_match(2, num_examples=20, seed=0)
    objective = NeighborsMatchObjective(torch.arange(12), torch.arange(12, 20), 6, 1, seed=0)

    class Oracle(torch.nn.Module):
        """Predicts class 1 for every tree: right exactly where y == 1."""

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x, edge_index, root_index):  # type: ignore[no-untyped-def]
            out = torch.zeros(root_index.numel(), data.num_classes) + self.w
            out[:, 1] = 1.0
            return out

    model = Oracle()
    for batch, _ in objective.batches(data):
        objective.loss(model, batch)
    metrics = objective.evaluate(model, data)
    assert metrics["train_acc"] == pytest.approx(float((data.y[:12] == 1).float().mean()))
    assert metrics["test_acc"] == pytest.approx(float((data.y[12:] == 1).float().mean()))


def test_solved_only_on_a_new_best_round_at_accuracy_one() -> None:
    objective = NeighborsMatchObjective(torch.arange(2), torch.arange(2), 1, 1)
    assert objective.done({"train_acc": 1.0}, True)
    assert not objective.done({"train_acc": 1.0}, False)
    assert not objective.done({"train_acc": 0.99}, True)


def test_a_deadline_cuts_the_round_short() -> None:
    data = tree_neighbors_match(2, num_examples=20, seed=0)
    objective = NeighborsMatchObjective(
        torch.arange(12), torch.arange(12, 20), 2, 5, seed=0, deadline=0.0
    )
    assert len(list(objective.batches(data))) == 1  # the first batch, then the time is up
    assert objective.timed_out


def test_the_task_trains_through_the_pipeline_and_repeats() -> None:
    from fathom.experiments.run import build_task_data, train_one

    cfg = _cfg()
    data = build_task_data(cfg)
    a, b = train_one(cfg, data), train_one(cfg, data)
    assert a.history == b.history and len(a.history) == 2
    assert set(a.history[0]) == {"epoch", "loss", "train_acc", "test_acc"}
    assert get_task("neighbors-match").describe(data)["num_examples"] == 40


def test_the_data_key_follows_the_radius() -> None:
    spec = get_task("neighbors-match")
    r2 = _cfg()
    r3 = config_from_dict({**_as_dict(r2), "neighbors_match": {"radius": 3}})
    assert spec.data_key(r2) != spec.data_key(r3)


def _as_dict(cfg: object) -> dict[str, object]:
    from fathom.config import config_to_dict

    return config_to_dict(cfg)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"data": {"name": "cora"}}, ["data.name", "tree-neighbors-match"]),
        ({"model": {"arch": "sgc"}}, ["model.arch", "'deep'"]),
        ({"neighbors_match": {"radius": 9}}, ["neighbors_match.radius", "2..8"]),
        ({"train": {"monitor": "val_acc"}}, ["train.monitor", "train_acc"]),
    ],
)
def test_bad_configs_are_one_line(raw: dict[str, object], words: list[str]) -> None:
    base = {"task": "neighbors-match", "data": {"name": "tree-neighbors-match"}}
    with pytest.raises(ConfigError) as err:
        config_from_dict({**base, **raw})
    assert len(str(err.value).splitlines()) == 1
    for word in words:
        assert word in str(err.value)
