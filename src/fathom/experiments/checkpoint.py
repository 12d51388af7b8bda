"""Model checkpoints: a trained model's weights with the config that built it.

A checkpoint is a ``torch.save`` d dict of plain types and tensors (loaded with
``weights_only=True``)::

    {"format": "fathom-checkpoint", "version": 1, "config": {...}, "state_dict": {...},
     "num_features": F, "num_classes": C, "seed": s, "metrics": {...}}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fathom.config import ExperimentConfig, config_from_dict, config_to_dict
from fathom.errors import ConfigError, DataNotFoundError, FathomError
from fathom.files import atomic_path

__all__ = ["build_from_checkpoint", "load_checkpoint", "save_checkpoint"]

FORMAT = "fathom-checkpoint"


def save_checkpoint(
    path: str | Path,
    cfg: ExperimentConfig,
    model: nn.Module,
    *,
    num_features: int,
    num_classes: int,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Write ``model``'s weights and ``cfg`` to ``path`` atomically."""
    payload = {
        "format": FORMAT,
        "version": 1,
        "config": config_to_dict(cfg),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "num_features": int(num_features),
        "num_classes": int(num_classes),
        "seed": int(cfg.seed),
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:200] if text else "") or type(exc).__name__


def _count(payload: Mapping[str, Any], key: str, p: Path) -> int:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FathomError(
            f"checkpoint {p}: {key} must be a positive integer, got {type(value).__name__}"
            + ("" if value is None else f" {str(value)[:40]}")
        )
    return value


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; ``config`` is returned as an
    :class:`~fathom.config.ExperimentConfig`.

    The file is loaded with ``weights_only=True`` (nothing in it can execute) and checked
    before use: a folder, a truncated or non-torch file, a torch file that is not a fathom
    checkpoint, or one missing (or with a wrong type of) its config, weights, feature or
    class count is refused in one line naming the file and what is wrong.

    Raises:
        DataNotFoundError: no such file.
        FathomError: anything else wrong with the file (one line).
    """
    p = Path(path)
    if str(path) == "":
        raise FathomError("--checkpoint needs a file name, got an empty string")
    if p.is_dir():
        raise FathomError(f"checkpoint {p} is a folder, not a checkpoint file")
    if not p.is_file():
        raise DataNotFoundError(f"checkpoint file {p} not found")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is bad input
        raise FathomError(f"cannot read checkpoint {p}: {_first_line(exc)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise FathomError(
            f"{p} is not a fathom checkpoint (written by `fathom train --checkpoint`)"
        )
    missing = [
        k for k in ("config", "state_dict", "num_features", "num_classes") if k not in payload
    ]
    if missing:
        raise FathomError(f"checkpoint {p} is missing {', '.join(missing)}")
    if not isinstance(payload["config"], dict):
        raise FathomError(
            f"checkpoint {p}: config must be a mapping, got {type(payload['config']).__name__}"
        )
    weights = payload["state_dict"]
    if not isinstance(weights, dict) or not weights:
        raise FathomError(
            f"checkpoint {p}: state_dict must be a non-empty mapping of tensors, got "
            f"{type(weights).__name__}"
        )
    for name, value in weights.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise FathomError(
                f"checkpoint {p}: state_dict entry {str(name)[:60]!r} is "
                f"{type(value).__name__}, not a tensor"
            )
    _count(payload, "num_features", p)
    _count(payload, "num_classes", p)
    metrics = payload.get("metrics", {})
    if not isinstance(metrics, dict):
        raise FathomError(
            f"checkpoint {p}: metrics must be a mapping, got {type(metrics).__name__}"
        )
    payload = dict(payload)
    try:
        payload["config"] = config_from_dict(payload["config"])
    except FathomError as exc:
        raise FathomError(f"checkpoint {p}: bad config: {exc}") from None
    return payload


def build_from_checkpoint(
    payload: dict[str, Any], num_features: int | None = None, num_classes: int | None = None
) -> nn.Module:
    """Rebuild the model of a loaded checkpoint and load its weights (evaluation mode).

    ``num_features`` / ``num_classes`` of the graph it will run on are checked against
    the checkpoint's.
    """
    from fathom.models.build import build_model

    cfg: ExperimentConfig = payload["config"]
    f, c = payload["num_features"], payload["num_classes"]
    if num_features is not None and num_features != f:
        raise ConfigError(
            f"the checkpoint's model takes {f} input features, the graph has {num_features}"
        )
    if num_classes is not None and num_classes != c:
        raise ConfigError(
            f"the checkpoint's model predicts {c} classes, the graph has {num_classes}"
        )
    model = build_model(cfg.model, f, c)
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, ValueError) as exc:
        raise FathomError(
            f"checkpoint weights do not fit its config: {str(exc).splitlines()[0]}"
        ) from None
    return model.eval()
