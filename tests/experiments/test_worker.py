"""Tests of fathom.experiments.worker: one run trained into the record a store keeps, the
same whichever executor calls it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fathom.config import ExperimentConfig, config_to_dict
from fathom.experiments.store import RunStore
from fathom.experiments.worker import RunOutcome, failed_outcome, train_record


def _config(**data: object) -> dict:
    base = ExperimentConfig()
    cfg = replace(
        base,
        train=replace(base.train, epochs=3, patience=0),
        model=replace(base.model, hidden=4),
        data=replace(
            base.data,
            synthetic=replace(base.data.synthetic, num_nodes=60, feature_dim=4),
            **data,
        ),
    )
    return config_to_dict(cfg)


def test_a_run_gives_its_metrics_history_and_provenance_and_is_deterministic() -> None:
    outcome = train_record(_config(), provenance={"executor": "test"})
    assert isinstance(outcome, RunOutcome) and outcome.status == "done"
    assert outcome.error is None and outcome.metrics["epochs"] == 3
    assert 0.0 <= outcome.metrics["test_acc"] <= 1.0
    assert len(outcome.history) == 3 and outcome.time_s > 0 and outcome.peak_mem_mb > 0
    versions = outcome.versions
    assert versions["executor"] == "test" and versions["hostname"]
    assert versions["device"] == "cpu" and "torch" in versions and "threads" in versions
    again = train_record(_config(), device="cpu")
    assert again.metrics == outcome.metrics  # same config and seed, same numbers
    assert "executor" not in again.versions


def test_bad_input_is_a_failed_outcome_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "graph.npz"
    outcome = train_record(_config(name=str(missing)))
    assert outcome.status == "failed" and outcome.metrics == {} and outcome.history == []
    assert outcome.error == f"graph file {missing} not found"
    lost = failed_outcome("ray: the node\n died", provenance={"executor": "ray"})
    assert (lost.status, lost.error, lost.versions["executor"]) == (
        "failed",
        "ray: the node died",
        "ray",
    )


def test_an_outcome_is_what_the_store_finishes_a_run_with(tmp_path: Path) -> None:
    config = _config()
    outcome = train_record(config)
    with RunStore(tmp_path / "runs.db") as st:
        st.register("s", [("k", config)])
        assert st.claim("k")
        st.finish("k", **outcome.finish_kwargs())
        record = st.get("k")
    assert record is not None and record["status"] == "done"
    assert record["metrics"] == outcome.metrics and record["versions"] == outcome.versions
