"""The executor flags of ``fathom sweep`` and ``fathom reproduce`` (fathom.cli.executors):
every bad combination is one line on stderr, exit status 2, before any work (no store is
created). The Ray executor itself runs on a local cluster in
tests/experiments/test_ray_executor.py."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from hostile import assert_refused

SPEC = """\
name: flags
base:
  data: {synthetic: {num_nodes: 60, feature_dim: 4}}
  model: {hidden: 4}
  train: {epochs: 2, patience: 0}
grid:
  seed: range(2)
"""

try:
    import ray  # noqa: F401

    HAVE_RAY = True
except ImportError:
    HAVE_RAY = False
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed: pip install '.[ray]'")


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(SPEC))
    return path


def _commands(spec: Path, db: Path) -> dict[str, list[str]]:
    return {
        "sweep": ["sweep", str(spec), "--store", str(db)],
        "reproduce": ["reproduce", "planetoid", "--models", "gcn", "--store", str(db)],
    }


@pytest.mark.parametrize("command", ["sweep", "reproduce"])
def test_without_ray_the_ray_executor_is_one_line_saying_how_to_install_it(
    command: str, spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    db = tmp_path / "runs.db"
    line = assert_refused(
        [*_commands(spec, db)[command], "--executor", "ray"],
        [db],
        "--executor ray needs Ray",
        "pip install 'fathom-gnn[ray]'",
    )
    assert line.startswith(f"fathom {command}: error:")


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--address", "auto"], ["--address applies to --executor ray only"]),
        (["--cpus-per-run", "2", "--gpus-per-run", "1"], ["--cpus-per-run, --gpus-per-run"]),
        (["--executor", "dask"], ["--executor", "'dask'"]),
        (["--executor", "ray", "--cpus-per-run", "0"], ["--cpus-per-run", "'0'"]),
        (["--executor", "ray", "--gpus-per-run", "-1"], ["--gpus-per-run", "'-1'"]),
        (["--executor", "ray", "--gpus-per-run", "nan"], ["--gpus-per-run", "'nan'"]),
    ],
)
@pytest.mark.parametrize("command", ["sweep", "reproduce"])
def test_a_flag_of_the_other_executor_or_a_bad_value_is_refused(
    command: str, flags: list[str], words: list[str], spec: Path, tmp_path: Path
) -> None:
    db = tmp_path / "runs.db"
    assert_refused([*_commands(spec, db)[command], *flags], [db], *words)


@needs_ray
@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--workers", "2"], ["--workers applies to --executor local"]),
        (["--threads", "2"], ["--threads applies to --executor local", "--cpus-per-run"]),
        (["--device", "cuda"], ["--device cuda with --executor ray needs --gpus-per-run"]),
        # nothing listens on port 1: refused at once, never Ray's endless wait for a head
        (["--address", "127.0.0.1:1"], ["cannot reach the Ray cluster's head", "ray start"]),
        (["--address", "no-port"], ["--address no-port", "ray start"]),
    ],
)
@pytest.mark.parametrize("command", ["sweep", "reproduce"])
def test_bad_input_for_the_ray_executor_is_refused_before_any_work(
    command: str, flags: list[str], words: list[str], spec: Path, tmp_path: Path
) -> None:
    db = tmp_path / "runs.db"
    assert_refused([*_commands(spec, db)[command], "--executor", "ray", *flags], [db], *words)


@needs_ray
@pytest.mark.parametrize("suite", ["oversmoothing", "neighbors-match"])
def test_suites_with_their_own_runner_refuse_the_ray_executor(suite: str, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    assert_refused(
        ["reproduce", suite, "--store", str(db), "--executor", "ray"],
        [db],
        f"--executor ray applies to the suites trained through the store; {suite}",
    )
