"""Tests of fathom.loaders.build: the loader registry and the refusal of unused options."""

from __future__ import annotations

from typing import Any

import pytest

from fathom.config import config_from_dict
from fathom.errors import ConfigError
from fathom.loaders.build import LOADERS, parse_fanouts, unused_options


def test_every_loader_is_registered_with_the_options_it_reads() -> None:
    assert LOADERS.names() == ["cluster", "full", "neighbor", "random-partition", "saint"]
    assert LOADERS.get("full").options == ()
    assert "fanouts" in LOADERS.get("neighbor").options
    assert parse_fanouts("15, 10,-1") == [15, 10, -1]


def test_unused_options_are_those_set_away_from_their_defaults() -> None:
    defaults = {"fanouts": "10,5", "num_parts": 16, "batch_size": 32}
    given = {"fanouts": "10,5", "num_parts": 8, "batch_size": 32}
    assert unused_options("neighbor", given, defaults) == ["num_parts"]
    assert unused_options("cluster", given, defaults) == []
    assert unused_options("full", {**given, "batch_size": 64}, defaults) == [
        "batch_size",
        "num_parts",
    ]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"train": {"loader": "bogus"}}, ["train.loader", "'bogus'", "neighbor"]),
        ({"train": {"fanouts": "5,5"}}, ["train.fanouts", "neighbor", "'full'"]),
        ({"train": {"batch_size": 64}}, ["train.batch_size", "neighbor or saint", "'full'"]),
        (
            {"train": {"loader": "neighbor", "num_parts": 4}},
            ["train.num_parts", "cluster or random-partition", "'neighbor'"],
        ),
        ({"train": {"loader": "saint", "fanouts": "3"}}, ["train.fanouts", "'saint'"]),
        ({"task": "link", "train": {"loader": "saint"}}, ["train.loader", "'link'"]),
        ({"task": "autoencoder", "train": {"loader": "neighbor"}}, ["train.loader"]),
        (
            {"task": "graph", "data": {"name": "motifs"}, "train": {"loader": "cluster"}},
            ["train.loader", "'graph'"],
        ),
        (
            {"model": {"arch": "dgi"}, "train": {"loader": "neighbor"}},
            ["train.loader", "dgi"],
        ),
        (
            {"data": {"inductive": True}, "train": {"loader": "cluster"}},
            ["train.loader", "inductive"],
        ),
    ],
)
def test_loader_options_that_do_not_apply_are_refused_in_one_line(
    raw: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    message = str(err.value)
    assert len(message.splitlines()) == 1
    for word in words:
        assert word in message, message


def test_tasks_with_their_own_batches_keep_batch_size() -> None:
    cfg = config_from_dict(
        {"task": "graph", "data": {"name": "motifs"}, "train": {"batch_size": 64}}
    )
    assert cfg.train.batch_size == 64
    cfg = config_from_dict({"train": {"loader": "neighbor", "batch_size": 64, "fanouts": "4"}})
    assert cfg.train.loader == "neighbor"
