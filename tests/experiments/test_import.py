"""fathom.experiments.export.import_runs and RunStore.add_results: exports read back."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fathom.config import ExperimentConfig, config_hash, config_to_dict
from fathom.errors import FathomError
from fathom.experiments.export import export_store, import_runs
from fathom.experiments.store import RunStore
from fathom.experiments.sweep import run_configs
from hostile import assert_refused, snapshot


def _configs(n: int) -> list[ExperimentConfig]:
    base = ExperimentConfig()
    cfg = replace(
        base,
        train=replace(base.train, epochs=2),
        data=replace(
            base.data, synthetic=replace(base.data.synthetic, num_nodes=60, feature_dim=4)
        ),
    )
    return [replace(cfg, seed=s) for s in range(n)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("export")
    store = tmp / "src.db"
    summary = run_configs("study", _configs(3), store, threads=1)
    assert summary.ran == 3
    path = tmp / "runs.json"
    export_store(store, path)
    return path, json.loads(path.read_text())


def _fields(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    keep = ("run_key", "status", "config", "metrics", "history", "time_s", "host", "ended_at")
    return sorted(tuple(json.dumps(r[k], sort_keys=True) for k in keep) for r in records)


def test_round_trip_keeps_every_result(tmp_path: Path, exported: tuple[Path, list]) -> None:
    path, records = exported
    db = tmp_path / "new.db"
    assert import_runs([path], db) == {"added": 3, "filled": 0, "kept": 0, "skipped": 0}
    with RunStore(db) as st:
        again = st.runs()
        assert st.runs(sweep="study") == again
    assert _fields(again) == _fields(records)
    assert all(r["pid"] is None for r in again)
    # importing again (or the same file twice) adds nothing, duplicates nothing
    assert import_runs([path, path], db) == {"added": 0, "filled": 0, "kept": 3, "skipped": 0}
    with RunStore(db) as st:
        assert _fields(st.runs()) == _fields(records)


def test_fills_pending_runs_and_never_replaces_a_result(
    tmp_path: Path, exported: tuple[Path, list]
) -> None:
    path, _ = exported
    db = tmp_path / "mixed.db"
    cfgs = _configs(4)
    keyed = [(config_hash(c), config_to_dict(c)) for c in cfgs]
    with RunStore(db) as st:
        st.register("other", keyed)  # all four pending
        st.claim(keyed[0][0])
        st.finish(keyed[0][0], status="done", metrics={"test_acc": -1.0}, history=[])
    counts = import_runs([path], db)
    assert counts == {"added": 0, "filled": 2, "kept": 1, "skipped": 0}
    with RunStore(db) as st:
        by_key = {r["run_key"]: r for r in st.runs()}
        assert by_key[keyed[0][0]]["metrics"] == {"test_acc": -1.0}  # kept
        for key, _ in keyed[1:3]:
            assert by_key[key]["status"] == "done"
            assert by_key[key]["sweeps"] == ["other", "study"]
        assert by_key[keyed[3][0]]["status"] == "pending"


def test_unfinished_records_are_skipped(tmp_path: Path, exported: tuple[Path, list]) -> None:
    _, records = exported
    path = tmp_path / "partial.json"
    path.write_text(json.dumps([{**records[0], "status": "pending"}, records[1]]))
    db = tmp_path / "p.db"
    assert import_runs([path], db) == {"added": 1, "filled": 0, "kept": 0, "skipped": 1}


def _broken(records: list[dict[str, Any]], how: str) -> Any:
    first = dict(records[0])
    if how == "key":
        first["run_key"] = "0" * 64
    elif how == "config":
        first["config"] = {**first["config"], "model": {"depth": -3}}
    elif how == "metrics":
        first["metrics"] = [1, 2]
    elif how == "status":
        first["status"] = "finished"
    elif how == "not-a-list":
        return {"runs": records}
    return [records[1], first]


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("key", "is not its config's key"),
        ("config", "config is not valid"),
        ("metrics", "metrics"),
        ("status", "status"),
        ("not-a-list", "not a JSON export"),
    ],
)
def test_a_bad_record_writes_nothing(
    tmp_path: Path, exported: tuple[Path, list], how: str, words: str
) -> None:
    _, records = exported
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_broken(records, how)))
    db = tmp_path / "target.db"
    with pytest.raises(FathomError, match=words):
        import_runs([path], db)
    with RunStore(db) as st:  # created empty, never half-filled
        assert st.runs() == []


def test_cli_import_and_refusals(tmp_path: Path, exported: tuple[Path, list]) -> None:
    from fathom.cli import main

    path, _ = exported
    db = tmp_path / "cli.db"
    assert main(["import", str(path), "--store", str(db)]) == 0
    with RunStore(db) as st:
        assert len(st.runs()) == 3
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    before = snapshot(db)
    assert_refused(["import", str(garbage), "--store", str(db)], [db], "not a JSON export")
    assert snapshot(db) == before
    assert_refused(["import", str(db), "--store", str(db)], [db], "store")
    assert_refused(["import", str(tmp_path / "missing.json"), "--store", str(db)], [db], "read")
