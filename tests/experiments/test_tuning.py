"""Tests of fathom.experiments.tuning: the declared validation search of ``reproduce --tune``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fathom.config import apply_overrides, config_hash, config_to_dict
from fathom.errors import ConfigError
from fathom.experiments.reproduce import build_cells
from fathom.experiments.store import RunStore
from fathom.experiments.tuning import apply_choices, load_search, plan_searches, wait_for_grids


def _depth_cells(models: str, depths: list[int], seeds: int = 2) -> list[Any]:
    return build_cells(
        "depth", datasets=["cora"], models=models.split(","), depths=depths, seeds=seeds
    )


def test_shipped_depth_search_is_valid_and_searches_dropedge_only_where_set() -> None:
    space = load_search("depth")
    assert space.metric == "val_acc" and space.seeds == 1
    gcn, dropedge, jknet = _depth_cells("gcn,gcn-dropedge,jknet", [8])
    plain_points, de_points = space.points(gcn.configs[0]), space.points(dropedge.configs[0])
    assert len(plain_points) == 6 and len(de_points) == 12
    assert all("model.drop_edge" not in p for p in plain_points)
    # declared order, the last axis fastest; a setting's {} is the preset's own setting
    withbn = {"model.norm": "batch", "model.head_norm": True, "train.weight_decay": 5.0e-4}
    assert de_points[:3] == [
        {"model.dropout": 0.1, "model.drop_edge": 0.3},
        {"model.dropout": 0.1, "model.drop_edge": 0.3, **withbn},
        {"model.dropout": 0.1, "model.drop_edge": 0.7},
    ]
    # withbn is searched for the plain GCNs only (only_if), not for JKNet
    assert [a.key for a in space.axes_for(jknet.configs[0])] == ["model.dropout"]
    assert space.points(jknet.configs[0]) == [{"model.dropout": v} for v in (0.1, 0.5, 0.8)]


def test_a_setting_axis_keeps_the_presets_own_point_unchanged() -> None:
    """The {} value of a setting leaves the cell's config as it is, so the grid points searched
    before the axis was declared keep their keys (their stored runs are reused)."""
    space = load_search("depth")
    (gcn,) = _depth_cells("gcn", [16])
    (search,) = plan_searches([gcn], space).values()
    assert search.axes == ("model.dropout", "withbn")
    base = gcn.configs[0]
    off = search.configs[0][0]
    assert config_hash(off) == config_hash(apply_overrides(base, {"model.dropout": 0.1}))
    on = search.configs[1][0]
    assert (on.model.norm, on.model.head_norm, on.train.weight_decay) == ("batch", True, 5e-4)
    assert on.train.lr == base.train.lr and on.model.depth == 16


def test_only_cells_without_a_setting_published_at_their_depth_are_searched() -> None:
    cells = _depth_cells("gcn,gcnii", [2, 8])
    tunable = {(c.key, c.depth): c.tunable for c in cells}
    # GCN's script is published at depth 2; GCNII has its own published preset
    assert tunable == {
        ("gcn", 2): False,
        ("gcn", 8): True,
        ("gcnii", 2): False,
        ("gcnii", 8): False,
    }
    searches = plan_searches(cells, load_search("depth"))
    assert [cells[i].key + str(cells[i].depth) for i in searches] == ["gcn8"]


def _finish(store: RunStore, cfg: Any, **metrics: float) -> None:
    key = config_hash(cfg)
    store.register("t", [(key, config_to_dict(cfg))])
    assert store.claim(key)
    store.finish(key, status="done", metrics=metrics, history=[])


def test_choice_reads_validation_only_and_keeps_the_first_of_ties(tmp_path: Path) -> None:
    space = load_search("depth")
    cells = _depth_cells("gcn", [8], seeds=3)
    searches = plan_searches(cells, space)
    grid = searches[0]
    db = tmp_path / "runs.db"
    with RunStore(db) as st:
        for j, configs in enumerate(grid.configs):
            # val acc peaks (a tie) at points 1 and 2; test acc peaks elsewhere
            val = 0.8 if j in (1, 2) else 0.5
            for cfg in configs:
                _finish(st, cfg, val_acc=val, test_acc=0.99 if j == 0 else 0.1)
    (tuned,) = apply_choices(cells, searches, space, db)
    chosen = grid.points[1]
    assert len(tuned.configs) == 3
    assert [c.seed for c in tuned.configs] == [0, 1, 2]
    for key, value in chosen.items():
        section, name = key.split(".")
        assert all(getattr(getattr(c, section), name) == value for c in tuned.configs)
    # seed 0 of the cell is the chosen grid run itself (one search seed: seed 0)
    assert config_hash(tuned.configs[0]) == config_hash(grid.configs[1][0])
    assert "tuned on validation (6-point grid over model.dropout, withbn, 1 seed;" in tuned.note
    assert "val_acc 80.0" in tuned.note


def test_incomplete_grid_reports_nothing_as_tuned(tmp_path: Path) -> None:
    space = load_search("depth")
    cells = _depth_cells("gcn", [8])
    searches = plan_searches(cells, space)
    db = tmp_path / "runs.db"
    with RunStore(db) as st:
        for configs in searches[0].configs[:2]:
            for cfg in configs:
                _finish(st, cfg, val_acc=0.5)
    (cell,) = apply_choices(cells, searches, space, db)
    assert cell.configs == ()
    assert "to be tuned on validation" in cell.note and "2 of 6 done" in cell.note


def test_wait_for_grids_waits_for_another_live_process_only(tmp_path: Path) -> None:
    space = load_search("depth")
    searches = plan_searches(_depth_cells("gcn", [8]), space)
    configs = searches[0].all_configs()
    keys = [config_hash(c) for c in configs]
    db = tmp_path / "runs.db"
    here = socket.gethostname()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with RunStore(db) as st:
            st.register("t", [(k, config_to_dict(c)) for k, c in zip(keys, configs, strict=True)])
            assert st.claim(keys[0], pid=other.pid, host=here)  # another live process
            assert st.claim(keys[1], pid=os.getpid(), host=here)  # this one: not waited for
            assert st.claim(keys[2], pid=other.pid, host="elsewhere")  # not waited for
        waits: list[dict[str, int]] = []
        sleeps: list[float] = []

        def other_finishes(seconds: float) -> None:  # the other process ends its run
            sleeps.append(seconds)
            with RunStore(db) as st:
                st.finish(keys[0], status="done", metrics={"val_acc": 0.5}, history=[])

        wait_for_grids(db, searches, poll_s=7.0, on_wait=waits.append, sleep=other_finishes)
        assert waits == [{keys[0]: other.pid}] and sleeps == [7.0]

        # a claim whose process dies ends the wait without a sleep; the run stays unfinished
        with RunStore(db) as st:
            assert st.claim(keys[3], pid=other.pid, host=here)
        other.kill()
        other.wait()
        wait_for_grids(db, searches, on_wait=waits.append, sleep=sleeps.append)
        assert len(waits) == 1 and sleeps == [7.0]
        with RunStore(db) as st:
            assert st.get(keys[3])["status"] == "running"
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("metric: test_acc\naxes: [{key: train.lr, values: [0.1]}]\n", "validation metric"),
        ("metric: val_acc\naxes: []\n", "axes must be a non-empty list"),
        ("metric: val_acc\nseeds: 0\naxes: [{key: train.lr, values: [0.1]}]\n", "seeds"),
        ("metric: val_acc\naxes: [{key: model.dropout, values: [1.5]}]\n", "model.dropout"),
        ("metric: val_acc\naxes: [{key: model.nope, values: [1]}]\n", "model.nope"),
        ("metric: val_acc\ngrid: 1\naxes: [{key: train.lr, values: [0.1]}]\n", "'grid'"),
        ("metric: val_acc\naxes: [{key: train.lr, name: x, values: [0.1]}]\n", "exactly one"),
        ("metric: val_acc\naxes: [{name: bn, values: [batch]}]\n", "mapping of config keys"),
        ("metric: val_acc\naxes: [{name: bn, values: [{model.norm: nope}]}]\n", "model.norm"),
        (
            "metric: val_acc\naxes: [{key: model.norm, values: [none]},"
            " {name: bn, values: [{model.norm: batch}]}]\n",
            "both set model.norm",
        ),
        (
            "metric: val_acc\naxes: [{key: train.lr, values: [0.1], only_if: {model.x: 1}}]\n",
            "only_if",
        ),
    ],
)
def test_malformed_search_file_is_one_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment) as info:
        load_search("depth", path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_suite_without_a_search_is_refused() -> None:
    with pytest.raises(ConfigError, match="no validation search is declared for suite 'tu'"):
        load_search("tu")
