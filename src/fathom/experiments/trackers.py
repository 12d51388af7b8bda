"""Mirror fathom's runs into an experiment tracker (``--tracker mlflow``).

The results store (and ``--json``) stays the source of truth: a tracker is a write-only
copy of what a command ran, for the dashboards people already use. Each fathom run (one
seed of ``fathom train``, one run of ``sweep`` or ``reproduce``) becomes one MLflow run,
nested under a parent run for the command, in an MLflow experiment named by the caller
(the config or preset name, the sweep's name, ``reproduce-<suite>``). A run gets:

- params: the flattened resolved config (``model.depth``, ``train.lr``, …, ``seed``);
- metrics: the final values under their own names (``test_acc``, ``val_loss``,
  ``best_epoch``, ``epochs``, ``time_s`` …); the per-epoch history as ``epoch/<name>`` with
  ``step`` = epoch; the per-layer diagnostics of the trained model as ``diag/<metric>`` with
  ``step`` = layer (0 = input) and, when training measured them every few epochs,
  ``diag/layer_<k>/<metric>`` with ``step`` = epoch;
- tags: ``fathom.run_key`` (the config hash, the store's key), ``fathom.command``,
  ``fathom.store``, ``fathom.version``, ``fathom.status``, ``fathom.seed``;
- artefact ``run.json``: the run's record as fathom keeps it.

The parent run holds the command's own files (``--json``, a report folder) and aggregate
metrics given to :meth:`MlflowTracker.finish`.

Importing this module does not import MLflow: :func:`open_tracker` does, and refuses with
one line saying how to install it when it is missing. Once training has started, a tracker
that fails (a full disk, a server that went away) prints one warning line and stops
tracking; the command goes on and its results are stored as usual.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from fathom.errors import ConfigError
from fathom.version import __version__

__all__ = [
    "TRACKERS",
    "MlflowTracker",
    "TrackedRun",
    "Tracker",
    "open_tracker",
    "resolve_tracking_uri",
    "tracked_run",
]

TRACKERS = ("mlflow",)
"""The values ``--tracker`` accepts."""

DEFAULT_MLFLOW_DIR = "mlruns"
"""Where MLflow runs go when neither ``--tracking-uri`` nor ``MLFLOW_TRACKING_URI`` says:
this folder under the current directory (MLflow's own default folder name)."""

INSTALL_HINT = {"mlflow": "pip install 'fathom-gnn[mlflow]'"}

_MAX_PARAMS_PER_BATCH = 100  # MLflow's log_batch limits
_MAX_METRICS_PER_BATCH = 1000
_MAX_PARAM_VALUE = 6000
_FINAL_EXTRA = ("best_epoch", "epochs", "time_s", "wall_s", "peak_mem_mb")
_STATUS = {"done": "FINISHED", "diverged": "FINISHED", "failed": "FAILED"}


class Tracker(Protocol):
    """What a command calls: :meth:`log_run` after each run, :meth:`finish` at the end."""

    name: str

    def log_run(self, run: Mapping[str, Any], *, config: Any = None) -> None:
        """Mirror one finished run (a run of ``run_experiment`` or a store record)."""

    def finish(
        self,
        artifacts: Iterable[str | Path] = (),
        metrics: Mapping[str, Any] | None = None,
        status: str = "FINISHED",
    ) -> None:
        """Attach the command's files and aggregate metrics; end the command's run."""


# --------------------------------------------------------------------------- a run's view


class TrackedRun:
    """What a tracker records of one run, from either shape fathom keeps a run in.

    ``run`` is a run of :func:`~fathom.experiments.run.run_experiment` (``seed``, flat
    ``train_*``/``val_*``/``test_*`` metrics, ``history``, ``diagnostics`` as per-epoch
    records) or a results-store record (``run_key``, ``config``, ``metrics``, ``history``,
    ``diagnostics`` as ``{metric: [per layer]}``). ``config`` (an
    :class:`~fathom.config.ExperimentConfig` or its dict) is the config of a run that does
    not carry its own; the run's seed replaces its ``seed`` (and ``seeds`` becomes 1).
    """

    def __init__(self, run: Mapping[str, Any], config: Any = None) -> None:
        from fathom.config import config_to_dict

        self.record = dict(run)
        stored = "metrics" in run and isinstance(run.get("metrics"), Mapping)
        raw_config = run.get("config", config)
        cfg = config_to_dict(raw_config) if _is_config(raw_config) else raw_config
        cfg = dict(cfg) if isinstance(cfg, Mapping) else None
        seed = run.get("seed", cfg.get("seed") if cfg else None)
        if cfg is not None and not stored and seed is not None:
            cfg = {**cfg, "seed": seed, "seeds": 1}
        self.config: dict[str, Any] | None = cfg
        self.seed: int | None = None if seed is None else int(seed)
        self.fold: int | None = run.get("fold")
        self.key: str | None = run.get("run_key") or _config_key(cfg)
        self.status: str = str(run.get("status", "done"))
        self.message: str = str(run.get("error") or run.get("message") or "")
        source = run["metrics"] if stored else run
        self.metrics: dict[str, float] = {
            k: float(v)
            for k, v in source.items()
            if (k.startswith(("train_", "val_", "test_")) or k in _FINAL_EXTRA) and _is_number(v)
        }
        if stored:
            self.metrics.update(
                {k: float(run[k]) for k in _FINAL_EXTRA if k in run and _is_number(run[k])}
            )
        self.history: list[Mapping[str, Any]] = list(run.get("history") or [])
        self.layers, self.layer_epochs = _diagnostics(run.get("diagnostics"))

    @property
    def name(self) -> str:
        """A short run name: dataset, model, depth, seed (and fold)."""
        parts: list[str] = []
        if self.config:
            data, model = self.config.get("data", {}), self.config.get("model", {})
            arch = model.get("arch")
            what = model.get("conv") if arch in (None, "deep") else arch
            parts += [str(data.get("name", "")), str(what or ""), f"depth {model.get('depth')}"]
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        if self.fold is not None:
            parts.append(f"fold {self.fold}")
        return " ".join(p for p in parts if p) or "run"

    def params(self) -> dict[str, str]:
        """The flattened config (dotted keys) as MLflow params (strings)."""
        from fathom.config import flatten

        flat = flatten(self.config) if self.config else {}
        if self.seed is not None:
            flat["seed"] = self.seed
        if self.fold is not None:
            flat["fold"] = self.fold
        return {k: str(v)[:_MAX_PARAM_VALUE] for k, v in flat.items()}

    def series(self) -> list[tuple[str, float, int]]:
        """Every metric point as ``(key, value, step)``: final values (step 0), the history
        (``epoch/<name>``, step = epoch), per-layer diagnostics (``diag/<metric>``, step =
        layer; ``diag/layer_<k>/<metric>``, step = epoch)."""
        points = [(k, v, 0) for k, v in self.metrics.items()]
        for entry in self.history:
            epoch = entry.get("epoch")
            if not _is_number(epoch):
                continue
            points += [
                (f"epoch/{k}", float(v), int(epoch))
                for k, v in entry.items()
                if k != "epoch" and _is_number(v)
            ]
        for metric, values in self.layers.items():
            points += [(f"diag/{metric}", v, layer) for layer, v in enumerate(values)]
        for epoch, layers in self.layer_epochs:
            for layer, values in enumerate(layers):
                points += [(f"diag/layer_{layer}/{m}", v, epoch) for m, v in values.items()]
        return points

    def to_json(self) -> str:
        """The run's record as JSON (``config`` included), the ``run.json`` artefact."""
        record = {**self.record}
        if self.config is not None:
            record.setdefault("config", self.config)
        return json.dumps(record, indent=1, default=str, allow_nan=True)


def _is_config(value: Any) -> bool:
    from fathom.config import ExperimentConfig

    return isinstance(value, ExperimentConfig)


def _config_key(cfg: Mapping[str, Any] | None) -> str | None:
    """The store's key of a run's config (:func:`~fathom.config.config_hash`)."""
    if not cfg:
        return None
    from fathom.config import config_from_dict, config_hash

    try:
        return config_hash(config_from_dict(cfg))
    except Exception:  # a config of an older schema: the run is still worth mirroring
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _diagnostics(
    raw: Any,
) -> tuple[dict[str, list[float]], list[tuple[int, list[dict[str, float]]]]]:
    """``({metric: [per layer]} of the trained model, [(epoch, per-layer metrics)] measured
    during training)`` from a run's ``diagnostics`` in either shape."""
    if isinstance(raw, Mapping):  # a store record: the final series only
        return (
            {
                str(k): [float(x) for x in v if _is_number(x)]
                for k, v in raw.items()
                if isinstance(v, list)
            },
            [],
        )
    if not isinstance(raw, list) or not raw:
        return {}, []
    from fathom.diagnostics.tracking import layer_series

    skip = ("layer", "name", "channels")
    epochs = [
        (
            int(entry["epoch"]),
            [
                {k: float(v) for k, v in layer.items() if k not in skip and _is_number(v)}
                for layer in entry.get("layers", [])
            ],
        )
        for entry in raw
        if isinstance(entry, Mapping) and not entry.get("final") and _is_number(entry.get("epoch"))
    ]
    return layer_series(raw), epochs


def tracked_run(run: Mapping[str, Any], config: Any = None) -> TrackedRun:
    """:class:`TrackedRun` of ``run`` (see there)."""
    return TrackedRun(run, config)


# --------------------------------------------------------------------------- opening


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``uri`` (``--tracking-uri``), else ``MLFLOW_TRACKING_URI``, else ``./mlruns``; a
    plain path becomes a ``file://`` URI of its absolute form."""
    chosen = uri if uri is not None else os.environ.get("MLFLOW_TRACKING_URI") or None
    if chosen is None:
        chosen = DEFAULT_MLFLOW_DIR
    if chosen.strip() == "":
        raise ConfigError("--tracking-uri needs a folder or URI, got an empty string")
    if "://" not in chosen and not chosen.startswith(("file:", "sqlite:")):
        return Path(chosen).expanduser().absolute().as_uri()
    return chosen


def _local_path(uri: str) -> tuple[str, Path] | None:
    """``("folder", path)`` of a ``file:`` URI, ``("file", path)`` of a ``sqlite:`` one;
    None for any other (a server)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return "folder", Path(unquote(parsed.path))
    if parsed.scheme == "sqlite":
        return "file", Path(unquote(uri[len("sqlite:///") :]))
    return None


def _check_local(uri: str) -> None:
    """A local tracking folder or SQLite file that could not be written, refused now."""
    from fathom.files import check_output_dir, check_output_file

    local = _local_path(uri)
    if local is None:
        return
    kind, path = local
    (check_output_dir if kind == "folder" else check_output_file)(path, "--tracking-uri")


_DATABASES = ("sqlite", "postgresql", "mysql", "mssql")


def _check_database_client(uri: str) -> None:
    """A database tracking URI needs SQLAlchemy, which the full ``mlflow`` package brings
    and ``mlflow-skinny`` (the extra) does not."""
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme not in _DATABASES:
        return
    try:
        import sqlalchemy  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"--tracking-uri {scheme}: needs the full MLflow package (SQLAlchemy), not only "
            "the mlflow-skinny client: pip install mlflow"
        ) from None


def _import_mlflow() -> Any:
    # MLflow logs at INFO by default (e.g. "Creating initial MLflow database tables" for a
    # new SQLite store): keep its warnings and errors only, unless the environment says
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mlflow
    except ImportError:
        raise ConfigError(
            f"--tracker mlflow needs MLflow, which is not installed: {INSTALL_HINT['mlflow']}"
        ) from None
    return mlflow


def open_tracker(
    kind: str,
    *,
    experiment: str,
    command: str,
    uri: str | None = None,
    store: str | Path | None = None,
    config: Any = None,
) -> Tracker:
    """The tracker ``--tracker kind`` names, checked before any work: the library is
    installed and a local tracking folder (or SQLite file) can be written; nothing is
    written yet (the first run logged creates the experiment).

    Args:
        kind: one of :data:`TRACKERS`.
        experiment: the MLflow experiment the runs go to (created if missing).
        command: what ran (``fathom train …``), a tag of every run.
        uri: ``--tracking-uri`` (a folder, ``file:``, ``sqlite:`` or server URI); default
            ``MLFLOW_TRACKING_URI``, else ``./mlruns``.
        store: the results store the runs are in (a tag), if any.
        config: the config of runs that do not carry one (``fathom train``'s runs).

    Raises:
        ConfigError: an unknown tracker, a missing library (with the line that installs
            it), an empty experiment name, a tracking folder that cannot be written.
    """
    if kind not in TRACKERS:
        raise ConfigError(f"--tracker must be one of {', '.join(TRACKERS)}, got {kind!r}")
    if not experiment or not experiment.strip():
        raise ConfigError("the tracking experiment needs a name, got an empty string")
    resolved = resolve_tracking_uri(uri)
    _check_local(resolved)
    _import_mlflow()
    _check_database_client(resolved)
    return MlflowTracker(
        resolved, experiment=experiment, command=command, store=store, config=config
    )


# --------------------------------------------------------------------------- MLflow


class MlflowTracker:
    """Mirrors runs into MLflow through :class:`mlflow.tracking.MlflowClient` (no global
    active run, so it never touches a run the caller's own code may have started).

    MLflow's file store is in maintenance mode in MLflow 3 and refused unless
    ``MLFLOW_ALLOW_FILE_STORE`` is set: a ``file:`` URI sets it (unless the environment
    already says). Telemetry, the run links MLflow prints to stdout for servers and its INFO
    log lines are off unless the environment asks for them (``MLFLOW_DISABLE_TELEMETRY``,
    ``MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT``, ``MLFLOW_LOGGING_LEVEL``).
    """

    name = "mlflow"

    def __init__(
        self,
        uri: str,
        *,
        experiment: str,
        command: str,
        store: str | Path | None = None,
        config: Any = None,
    ) -> None:
        self.uri, self.experiment, self.command = uri, experiment, command
        self.store = None if store is None else str(store)
        self.config = config
        self.runs: list[str] = []
        """MLflow run ids of the runs logged (not the parent)."""
        self.parent: str | None = None
        self.stopped = False
        self.finished = False
        self._client: Any = None
        self._experiment_id: str | None = None

    # -- connection

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        if urlparse(self.uri).scheme == "file":
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        mlflow = _import_mlflow()
        client = mlflow.tracking.MlflowClient(tracking_uri=self.uri)
        found = client.get_experiment_by_name(self.experiment)
        if found is not None and found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        self._experiment_id = (
            found.experiment_id if found is not None else client.create_experiment(self.experiment)
        )
        self._client = client
        return client

    def _tags(self) -> dict[str, str]:
        tags = {"fathom.command": self.command, "fathom.version": __version__}
        if self.store is not None:
            tags["fathom.store"] = str(Path(self.store).absolute())
        return tags

    def _parent(self) -> str:
        client = self._connect()
        if self.parent is None:
            run = client.create_run(
                self._experiment_id, run_name=self.command[:250], tags=self._tags()
            )
            self.parent = run.info.run_id
        return self.parent

    def _guard(self, what: str, action: Any) -> None:
        """Run ``action``; on any failure say so in one line and stop tracking."""
        if self.stopped:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                action()
        except Exception as exc:
            self.stopped = True
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            sys.stderr.write(
                f"fathom: warning: mlflow tracking stopped ({what}: {reason}); "
                "results are stored as usual\n"
            )

    # -- the protocol

    def log_run(self, run: Mapping[str, Any], *, config: Any = None) -> None:
        """Mirror one finished run (see :class:`TrackedRun` for the shapes accepted) as a
        child of the command's run."""
        self._guard("logging a run", lambda: self._log_run(run, config))

    def _log_run(self, run: Mapping[str, Any], config: Any) -> None:
        from mlflow.entities import Metric, Param, RunTag

        view = TrackedRun(run, config if config is not None else self.config)
        client = self._connect()
        parent = self._parent()
        tags = {
            **self._tags(),
            "mlflow.parentRunId": parent,
            "fathom.status": view.status,
        }
        if view.key:
            tags["fathom.run_key"] = view.key
        if view.seed is not None:
            tags["fathom.seed"] = str(view.seed)
        if view.message:
            tags["fathom.message"] = view.message[:5000]
        mlrun = client.create_run(self._experiment_id, run_name=view.name, tags=tags)
        run_id = mlrun.info.run_id
        try:
            now = int(time.time() * 1000)
            params = [Param(k, v) for k, v in view.params().items()]
            for i in range(0, len(params), _MAX_PARAMS_PER_BATCH):
                client.log_batch(run_id, params=params[i : i + _MAX_PARAMS_PER_BATCH])
            metrics = [Metric(k, v, now, step) for k, v, step in view.series()]
            for i in range(0, len(metrics), _MAX_METRICS_PER_BATCH):
                client.log_batch(run_id, metrics=metrics[i : i + _MAX_METRICS_PER_BATCH])
            client.log_batch(run_id, tags=[RunTag("fathom.logged", "complete")])
            client.log_text(run_id, view.to_json(), "run.json")
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, _STATUS.get(view.status, "FINISHED"))
        self.runs.append(run_id)

    def finish(
        self,
        artifacts: Iterable[str | Path] = (),
        metrics: Mapping[str, Any] | None = None,
        status: str = "FINISHED",
    ) -> None:
        """Attach ``artifacts`` (files, or folders logged under their own name; missing ones
        are skipped) and the numbers of ``metrics`` (e.g. the aggregate over seeds) to the
        command's run and end it with ``status`` (``FINISHED``, ``FAILED``, ``KILLED``)."""
        if self.finished:
            return
        self.finished = True
        if self.stopped:  # already warned: end the command's run if the backend lets us
            with contextlib.suppress(Exception):
                if self.parent is not None:
                    self._client.set_terminated(self.parent, "FAILED")
            return
        paths = [Path(p) for p in artifacts]
        values = {k: float(v) for k, v in (metrics or {}).items() if _is_number(v)}
        if self.parent is None and not paths and not values and not self.runs:
            return  # nothing ran: leave no empty run behind
        self._guard("finishing", lambda: self._finish(paths, values, status))

    def _finish(self, paths: Sequence[Path], values: Mapping[str, float], status: str) -> None:
        from mlflow.entities import Metric

        client = self._connect()
        parent = self._parent()
        try:
            if values:
                now = int(time.time() * 1000)
                client.log_batch(parent, metrics=[Metric(k, v, now, 0) for k, v in values.items()])
            for path in paths:
                if path.is_dir():
                    client.log_artifacts(parent, str(path), artifact_path=path.name)
                elif path.is_file():
                    client.log_artifact(parent, str(path))
        finally:
            client.set_terminated(parent, status)

    def close(self, status: str = "FINISHED") -> None:
        """:meth:`finish` with nothing more to attach."""
        self.finish(status=status)

    def __enter__(self) -> MlflowTracker:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        self.finish(status=status)
