"""``--tracker mlflow`` on the command line: ``train`` and ``sweep`` mirror their runs into a
local tracking folder, read back with MLflow's own client; the store stays the record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fathom.cli import main
from hostile import assert_refused

MLFLOW_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_ALLOW_FILE_STORE",
    "MLFLOW_DISABLE_TELEMETRY",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT",
    "MLFLOW_LOGGING_LEVEL",
)


@pytest.fixture
def mlflow(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in MLFLOW_ENV:  # the tracker sets defaults in os.environ: restore them after
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return pytest.importorskip("mlflow", reason="the mlflow extra is not installed")


def _runs(mlflow: Any, uri: Path, experiment: str) -> list[Any]:
    client = mlflow.tracking.MlflowClient(tracking_uri=uri.as_uri())
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, experiment
    return client.search_runs([exp.experiment_id])


def test_train_mirrors_each_seed_with_its_epochs(tmp_path: Path, mlflow: Any) -> None:
    uri, out = tmp_path / "mlruns", tmp_path / "r.json"
    argv = ["train", "--epochs", "4", "--seeds", "2", "--threads", "1", "--json", str(out)]
    assert main([*argv, "--tracker", "mlflow", "--tracking-uri", str(uri), "-q"]) == 0
    runs = _runs(mlflow, uri, "csbm")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) == 3  # the command's run and one per seed
    assert sorted(int(r.data.params["seed"]) for r in children) == [0, 1]
    client = mlflow.tracking.MlflowClient(tracking_uri=uri.as_uri())
    history = client.get_metric_history(children[0].info.run_id, "epoch/val_acc")
    assert sorted(m.step for m in history) == [1, 2, 3, 4]
    assert all(r.data.params["model.depth"] == "2" for r in children)


def test_sweep_mirrors_the_runs_it_executes(tmp_path: Path, mlflow: Any) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: tiny\nbase: {train: {epochs: 2}}\ngrid: {model.depth: [1, 2]}\n")
    uri = tmp_path / "mlruns"
    argv = ["sweep", str(spec), "--store", str(tmp_path / "runs.db"), "--threads", "1", "-q"]
    assert main([*argv, "--tracker", "mlflow", "--tracking-uri", str(uri)]) == 0
    children = [r for r in _runs(mlflow, uri, "tiny") if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.params["model.depth"] for r in children) == ["1", "2"]


def test_a_tracking_uri_without_a_tracker_is_refused(tmp_path: Path) -> None:
    argv = ["train", "--epochs", "1", "--tracking-uri", str(tmp_path / "m")]
    assert_refused(argv, [tmp_path], "--tracking-uri needs --tracker")
