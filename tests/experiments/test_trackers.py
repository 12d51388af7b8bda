"""Tests of fathom.experiments.trackers: runs mirrored into a local MLflow tracking folder
and read back with MLflow's own client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fathom.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    SyntheticConfig,
    TrainConfig,
    config_hash,
    with_seed,
)
from fathom.errors import ConfigError, FathomError
from fathom.experiments import trackers
from fathom.experiments.trackers import TrackedRun, open_tracker, resolve_tracking_uri

CFG = ExperimentConfig(
    data=DataConfig(
        name="csbm",
        synthetic=SyntheticConfig(num_nodes=60, num_classes=3, feature_dim=8, avg_degree=6.0),
    ),
    model=ModelConfig(depth=2, hidden=8, dropout=0.5),
    train=TrainConfig(epochs=4, lr=0.05, patience=0, diagnose_every=2),
    seed=0,
    seeds=2,
)

# a run as run_experiment records it (flat metrics, per-epoch diagnostics records)
FAKE_RUN: dict[str, Any] = {
    "seed": 3,
    "status": "done",
    "message": "",
    "best_epoch": 2,
    "epochs": 3,
    "time_s": 0.5,
    "train_acc": 0.9,
    "val_acc": 0.8,
    "test_acc": 0.7,
    "history": [{"epoch": float(e), "loss": 1.0 / e, "val_acc": 0.5 + 0.1 * e} for e in (1, 2, 3)],
    "diagnostics": [
        {
            "epoch": e,
            "layers": [
                {
                    "layer": k,
                    "name": f"l{k}",
                    "channels": 8,
                    "mad": 0.1 * k + e,
                    "dirichlet_energy": 2.0,
                }
                for k in range(3)
            ],
            **({"final": True} if final else {}),
        }
        for e, final in ((1, False), (2, False), (2, True))
    ],
}


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's environment as a user's shell has it, restored after the test (the tracker
    sets defaults in os.environ)."""
    for name in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_ALLOW_FILE_STORE",
        "MLFLOW_DISABLE_TELEMETRY",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT",
        "MLFLOW_LOGGING_LEVEL",
    ):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


@pytest.fixture
def mlflow(quiet_env: None) -> Any:
    """MLflow, or a skip saying it is not installed."""
    return pytest.importorskip("mlflow", reason="the mlflow extra is not installed")


def _client(uri: str) -> Any:
    """MLflow's client on ``uri``, to read back what the tracker wrote (after it did: the
    tracker itself must cope with MLflow's environment left as the user has it)."""
    import mlflow

    return mlflow.tracking.MlflowClient(tracking_uri=uri)


def _children(client: Any, experiment: str) -> tuple[Any, list[Any]]:
    """The command's run and its children (oldest first) in ``experiment``."""
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)
    return parents[0], sorted(children, key=lambda r: int(r.data.params.get("seed", -1)))


def _steps(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


# --------------------------------------------------------------------------- no MLflow


def test_importing_trackers_does_not_import_mlflow_or_torch() -> None:
    code = (
        "import sys, fathom.experiments.trackers; "
        "print(sorted(m for m in ('mlflow', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_missing_mlflow_is_one_line_saying_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    with pytest.raises(ConfigError) as info:
        open_tracker("mlflow", experiment="x", command="fathom train", uri=str(tmp_path / "m"))
    message = str(info.value)
    assert "\n" not in message
    assert "pip install 'fathom-gnn[mlflow]'" in message
    assert not (tmp_path / "m").exists()


def test_bad_tracker_arguments_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--tracker must be one of mlflow"):
        open_tracker("wandb", experiment="x", command="c")
    with pytest.raises(ConfigError, match="needs a name"):
        open_tracker("mlflow", experiment=" ", command="c", uri=str(tmp_path / "m"))
    with pytest.raises(ConfigError, match="empty string"):
        open_tracker("mlflow", experiment="x", command="c", uri="")
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    with pytest.raises(FathomError, match=r"--tracking-uri .* is a file, not a folder"):
        open_tracker("mlflow", experiment="x", command="c", uri=str(a_file))
    with pytest.raises(FathomError, match="is a file"):
        open_tracker("mlflow", experiment="x", command="c", uri=str(a_file / "mlruns"))
    assert a_file.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_database_uri_without_sqlalchemy_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mlflow: Any
) -> None:
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # mlflow-skinny alone
    with pytest.raises(ConfigError, match=r"full MLflow package .*: pip install mlflow$"):
        open_tracker("mlflow", experiment="x", command="c", uri=f"sqlite:///{tmp_path}/m.db")
    assert list(tmp_path.iterdir()) == []


def test_tracking_uri_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri() == (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert resolve_tracking_uri() == "http://tracking:5000"
    assert resolve_tracking_uri("runs/ml") == (tmp_path / "runs" / "ml").as_uri()
    assert resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"


def test_tracked_run_of_both_shapes() -> None:
    view = TrackedRun(FAKE_RUN, CFG)
    assert view.seed == 3 and view.config is not None and view.config["seed"] == 3
    assert view.key == config_hash(with_seed(CFG, 3))
    assert view.params()["model.depth"] == "2" and view.params()["seed"] == "3"
    assert view.metrics == {
        "best_epoch": 2.0,
        "epochs": 3.0,
        "time_s": 0.5,
        "train_acc": 0.9,
        "val_acc": 0.8,
        "test_acc": 0.7,
    }
    assert view.layers == {"mad": [2.0, 2.1, 2.2], "dirichlet_energy": [2.0, 2.0, 2.0]}
    assert [e for e, _ in view.layer_epochs] == [1, 2]  # the final record is not an epoch's
    points = view.series()
    assert ("epoch/loss", 0.5, 2) in points and ("diag/mad", 2.2, 2) in points
    assert ("diag/layer_1/mad", 1.1, 1) in points

    record = {  # a results-store record
        "run_key": "abc",
        "config": view.config,
        "status": "failed",
        "error": "boom",
        "metrics": {"test_acc": 0.5, "epochs": 4},
        "history": FAKE_RUN["history"],
        "diagnostics": {"mad": [0.3, 0.2]},
        "time_s": 1.5,
        "peak_mem_mb": 300.0,
    }
    stored = TrackedRun(record)
    assert stored.key == "abc" and stored.seed == 3 and stored.message == "boom"
    assert stored.metrics == {"test_acc": 0.5, "epochs": 4.0, "time_s": 1.5, "peak_mem_mb": 300.0}
    assert stored.layers == {"mad": [0.3, 0.2]} and stored.layer_epochs == []


# --------------------------------------------------------------------------- with MLflow


def test_fake_run_logged_and_read_back(
    tmp_path: Path, mlflow: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    tracker = open_tracker(
        "mlflow",
        experiment="fake",
        command="fathom train --preset x",
        uri=str(tmp_path / "mlruns"),
        store=tmp_path / "runs.db",
        config=CFG,
    )
    assert not (tmp_path / "mlruns").exists()  # nothing written before the first run
    tracker.log_run(FAKE_RUN)
    summary = tmp_path / "results.json"
    summary.write_text('{"aggregate": {}}')
    tracker.finish(artifacts=[summary, tmp_path / "missing.json"], metrics={"test_acc_mean": 0.7})
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""  # MLflow says nothing

    client = _client((tmp_path / "mlruns").as_uri())
    parent, (child,) = _children(client, "fake")
    assert parent.info.status == "FINISHED" and child.info.status == "FINISHED"
    assert parent.data.metrics == {"test_acc_mean": 0.7}
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["results.json"]
    assert child.info.run_name == "csbm gcn depth 2 seed 3"
    tags = child.data.tags
    assert tags["fathom.run_key"] == config_hash(with_seed(CFG, 3))
    assert tags["fathom.command"] == "fathom train --preset x"
    assert tags["fathom.store"] == str(tmp_path / "runs.db")
    assert tags["fathom.status"] == "done" and tags["fathom.version"]
    params = child.data.params
    assert params["seed"] == "3" and params["train.lr"] == "0.05" and params["data.name"] == "csbm"
    assert child.data.metrics["test_acc"] == pytest.approx(0.7)
    run_id = child.info.run_id
    assert _steps(client, run_id, "epoch/val_acc") == [
        (e, pytest.approx(0.5 + 0.1 * e)) for e in (1, 2, 3)
    ]
    assert _steps(client, run_id, "diag/mad") == [
        (0, pytest.approx(2.0)),
        (1, pytest.approx(2.1)),
        (2, pytest.approx(2.2)),
    ]
    assert _steps(client, run_id, "diag/layer_2/mad") == [
        (1, pytest.approx(1.2)),
        (2, pytest.approx(2.2)),
    ]
    [artefact] = client.list_artifacts(run_id)
    assert artefact.path == "run.json"
    saved = json.loads(
        Path(client.download_artifacts(run_id, "run.json", str(tmp_path))).read_text()
    )
    assert saved["test_acc"] == 0.7 and saved["config"]["seed"] == 3


def test_real_train_run_through_on_run_end(tmp_path: Path, mlflow: Any) -> None:
    from fathom.experiments.run import run_experiment

    with open_tracker(
        "mlflow", experiment="tiny", command="fathom train", uri=str(tmp_path / "ml"), config=CFG
    ) as tracker:
        result = run_experiment(CFG, on_run_end=lambda seed, run: tracker.log_run(run))
        tracker.finish(metrics=result.aggregate)

    client = _client((tmp_path / "ml").as_uri())
    parent, children = _children(client, "tiny")
    assert parent.data.metrics["test_acc_mean"] == pytest.approx(result.aggregate["test_acc_mean"])
    assert [c.data.params["seed"] for c in children] == ["0", "1"]
    for child, run in zip(children, result.runs, strict=True):
        run_id = child.info.run_id
        assert child.data.tags["fathom.run_key"] == config_hash(with_seed(CFG, run["seed"]))
        assert child.data.metrics["test_acc"] == pytest.approx(run["test_acc"])
        history = _steps(client, run_id, "epoch/train_loss")
        assert [s for s, _ in history] == [1, 2, 3, 4]  # steps are epochs
        assert [v for _, v in history] == pytest.approx([h["train_loss"] for h in run["history"]])
        energy = _steps(client, run_id, "diag/dirichlet_energy")
        assert [s for s, _ in energy] == [0, 1, 2]  # input, hidden layer, head
        assert [s for s, _ in _steps(client, run_id, "diag/layer_1/mad")] == [1, 2, 4]
        assert [a.path for a in client.list_artifacts(run_id)] == ["run.json"]


def test_sweep_records_from_the_store(tmp_path: Path, mlflow: Any) -> None:
    from fathom.experiments.sweep import run_configs

    store = tmp_path / "runs.db"
    configs = [with_seed(CFG, s) for s in (0, 1)]
    tracker = open_tracker(
        "mlflow",
        experiment="sweep-tiny",
        command="fathom sweep",
        uri=str(tmp_path / "ml"),
        store=store,
    )
    records: list[dict[str, Any]] = []

    def on_run_end(done: int, total: int, record: dict[str, Any]) -> None:
        records.append(record)
        tracker.log_run(record)

    run_configs("sweep-tiny", configs, store, on_run_end=on_run_end)
    tracker.finish()
    client = _client((tmp_path / "ml").as_uri())
    _, children = _children(client, "sweep-tiny")
    assert [c.data.tags["fathom.run_key"] for c in children] == [r["run_key"] for r in records]
    assert [c.data.tags["fathom.run_key"] for c in children] == [config_hash(c) for c in configs]
    for child, record in zip(children, records, strict=True):
        run_id = child.info.run_id
        assert child.data.tags["fathom.store"] == str(store)
        assert child.data.metrics["test_acc"] == pytest.approx(record["metrics"]["test_acc"])
        assert child.data.metrics["peak_mem_mb"] > 0
        assert len(_steps(client, run_id, "epoch/val_acc")) == 4
        assert [s for s, _ in _steps(client, run_id, "diag/mad")] == [0, 1, 2]


def test_tracker_failure_warns_once_and_results_go_on(
    tmp_path: Path,
    mlflow: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracker = open_tracker(
        "mlflow", experiment="e", command="c", uri=str(tmp_path / "ml"), config=CFG
    )
    tracker.log_run(FAKE_RUN)

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(tracker._client), "log_batch", full_disk)
    tracker.log_run(FAKE_RUN)  # fails: warned, not raised
    tracker.log_run(FAKE_RUN)  # tracking is off: nothing more said
    tracker.finish()
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("fathom: warning: mlflow tracking stopped (logging a run:")
    assert "No space left on device" in err and "stored as usual" in err
    monkeypatch.undo()
    client = _client((tmp_path / "ml").as_uri())
    exp = client.get_experiment_by_name("e")
    statuses = sorted(r.info.status for r in client.search_runs([exp.experiment_id]))
    # the first run, then the one that failed and the command's run
    assert statuses == ["FAILED", "FAILED", "FINISHED"]


def test_interrupt_marks_the_command_run_killed(tmp_path: Path, mlflow: Any) -> None:
    with (
        pytest.raises(KeyboardInterrupt),
        open_tracker(
            "mlflow", experiment="e", command="c", uri=str(tmp_path / "ml"), config=CFG
        ) as tracker,
    ):
        tracker.log_run(FAKE_RUN)
        raise KeyboardInterrupt
    client = _client((tmp_path / "ml").as_uri())
    parent, [child] = _children(client, "e")
    assert parent.info.status == "KILLED" and child.info.status == "FINISHED"


def test_nothing_logged_leaves_no_run(tmp_path: Path, mlflow: Any) -> None:
    with open_tracker("mlflow", experiment="e", command="c", uri=str(tmp_path / "ml")):
        pass
    assert not (tmp_path / "ml").exists()


def test_trackers_listed() -> None:
    assert trackers.TRACKERS == ("mlflow",)
