"""``fathom train --resume FILE``: a run's state between epochs and seeds, so a run that
died (a rank killed, a machine lost, Ctrl-C) continues where it was when the same command
is run again.

The file is one ``torch.save`` d dict of plain types and tensors (read back with
``weights_only=True``), written atomically (:func:`fathom.files.atomic_path`) by rank 0
alone::

    {"format": "fathom-resume", "version": 1, "config_hash": ..., "world_size": W,
     "runs": {seed: {"run": <run record>, "model": <state_dict or None>}},
     "fit": {"seed": s, "shared": <fit state>, "local": [<rank 0's>, <rank 1's>, ...]}}

``runs`` are the seeds already trained (reused as they are); ``fit`` is the seed in
progress, saved every ``every`` epochs by :class:`~fathom.train.loop.FitCheckpoint`:
model, optimiser, early stopping, history (``shared``) and each rank's random state
(``local``: torch's generator, its loader's shard and sampling streams), gathered to rank 0
before it writes. Only rank 0 reads the file; it broadcasts the state to every rank, so
the other machines of a multi-machine run need no copy. A state written for another config
(its run key, :func:`~fathom.config.config_hash`) or another number of processes is
refused in one line rather than silently mixed in. The file is removed when the run ends
(done or diverged, its results written): it holds a run in progress, never a result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fathom import distributed
from fathom.config import ExperimentConfig, config_hash
from fathom.errors import FathomError
from fathom.files import atomic_path

__all__ = ["FORMAT", "RunResume"]

FORMAT = "fathom-resume"


class RunResume:
    """The resume file of one run of ``cfg`` (every seed) on the current process group.

    Args:
        path: the file (read if it exists, else created at the first save).
        cfg: the run's config (its key must match the file's).
        every: save the seed in progress every this many epochs.

    Raises:
        FathomError: the file is unreadable, not a resume file, or of another config or
            number of processes (checked on rank 0, raised on every rank).
    """

    def __init__(self, path: str | Path, cfg: ExperimentConfig, every: int = 1) -> None:
        if every < 1:
            raise FathomError(f"--resume-every must be >= 1, got {every}")
        self.path = Path(path)
        self.every = every
        self.key = config_hash(cfg)
        self.world_size = distributed.world_size()
        loaded: dict[str, Any] | str | None = None
        if distributed.is_main():
            try:
                loaded = self._read()
            except FathomError as exc:
                loaded = str(exc)
        loaded = distributed.broadcast_object(loaded)
        if isinstance(loaded, str):
            raise FathomError(loaded)
        self.resumed = loaded is not None
        self.state: dict[str, Any] = loaded or {
            "format": FORMAT,
            "version": 1,
            "config_hash": self.key,
            "world_size": self.world_size,
            "runs": {},
            "fit": None,
        }

    def _read(self) -> dict[str, Any] | None:
        if self.path.is_dir():
            raise FathomError(f"resume file {self.path} is a folder, not a file")
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any unreadable file is bad input
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise FathomError(f"cannot read the resume file {self.path}: {first}") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise FathomError(f"{self.path} is not a resume file of `fathom train --resume`")
        kinds = {"config_hash": str, "world_size": int, "runs": dict}
        for key, kind in kinds.items():
            if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
                got = "missing" if key not in state else type(state[key]).__name__
                raise FathomError(
                    f"resume file {self.path}: {key} must be a {kind.__name__}, got {got}"
                )
        fit = state.get("fit")
        if fit is not None and not (
            isinstance(fit, dict)
            and isinstance(fit.get("seed"), int)
            and isinstance(fit.get("shared"), dict)
            and isinstance(fit.get("local"), list)
        ):
            raise FathomError(
                f"resume file {self.path}: fit must be None or a mapping with seed, shared "
                "and local"
            )
        for seed, done in state["runs"].items():
            if not isinstance(seed, int) or not isinstance(done, dict) or "run" not in done:
                raise FathomError(f"resume file {self.path}: malformed entry for seed {seed!r}")
        if state["config_hash"] != self.key:
            raise FathomError(
                f"{self.path} holds the state of another config; rerun that config, or "
                "remove the file to start this one"
            )
        if state["world_size"] != self.world_size:
            raise FathomError(
                f"{self.path} was written by a run on {state['world_size']} process(es), this "
                f"one has {self.world_size}; rerun with --nproc {state['world_size']} (or the "
                "same torchrun world size), or remove the file to start over"
            )
        return state

    # ----------------------------------------------------------------------- seeds

    @property
    def progress(self) -> str:
        """Where the saved state stands, for messages: ``"seed 0 epoch 4"`` etc."""
        fit = self.state["fit"]
        done = sorted(self.state["runs"])
        parts = [f"seeds done: {', '.join(map(str, done))}"] if done else []
        if fit is not None:
            parts.append(f"seed {fit['seed']} at epoch {fit['shared']['epoch']}")
        return "; ".join(parts) or "nothing saved yet"

    def completed(self, seed: int) -> dict[str, Any] | None:
        """The saved ``{"run": record, "model": state_dict | None}`` of a seed already
        trained, else ``None``."""
        return self.state["runs"].get(seed)

    def complete(
        self, seed: int, run: dict[str, Any], model: dict[str, torch.Tensor] | None = None
    ) -> None:
        """Record a finished seed (and its trained weights, if kept) and save."""
        weights = None if model is None else {k: v.detach().cpu() for k, v in model.items()}
        self.state["runs"][seed] = {"run": run, "model": weights}
        self.state["fit"] = None
        self._write()

    def checkpoint(self, seed: int) -> SeedCheckpoint:
        """The :class:`~fathom.train.loop.FitCheckpoint` of ``seed``'s fit."""
        return SeedCheckpoint(self, seed)

    def finish(self) -> None:
        """The run ended and its results are written: remove the file (rank 0)."""
        if distributed.is_main():
            self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        if not distributed.is_main():
            return
        with atomic_path(self.path) as tmp:
            torch.save(self.state, tmp)


class SeedCheckpoint:
    """The :class:`~fathom.train.loop.FitCheckpoint` of one seed of a :class:`RunResume`."""

    def __init__(self, owner: RunResume, seed: int) -> None:
        self.owner, self.seed = owner, seed

    def load(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The saved state of this seed's fit: shared, and this rank's own."""
        fit = self.owner.state["fit"]
        if fit is None or fit["seed"] != self.seed:
            return None
        return fit["shared"], fit["local"][distributed.rank()]

    def save(
        self,
        epoch: int,
        shared: Callable[[], dict[str, Any]],
        local: Callable[[], dict[str, Any]],
    ) -> None:
        """Every ``every`` epochs: gather each rank's random state to every rank, and rank 0
        writes the file."""
        if epoch % self.owner.every:
            return
        locals_ = distributed.all_gather_objects(local())
        if distributed.is_main():
            self.owner.state["fit"] = {"seed": self.seed, "shared": shared(), "local": locals_}
            self.owner._write()
