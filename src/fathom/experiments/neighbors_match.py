r"""Tree-NeighborsMatch runner: training accuracy against problem radius (over-squashing).

Reproduces Figure 3 of Alon & Yahav, `"On the Bottleneck of Graph Neural Networks and its
Practical Implications" <https://arxiv.org/abs/2006.05205>`_ (ICLR 2021), following the official
code (``tech-srl/bottleneck``: ``models/graph_model.py``, ``common.py``, ``experiment.py``,
``main.py`` and ``run-{gcn,gat,ggnn,gin}-2-8.py``).

The run is ``task: neighbors-match`` (:mod:`fathom.tasks.neighbors_match`) trained by the one
pipeline (:func:`~fathom.experiments.run.train_one`, :func:`~fathom.train.loop.fit`); this
module holds the official settings and the sweep over models, radii and seeds.

Model (:func:`model_config`, built by the zoo with the ``root`` head): key and value
embeddings (two ``nn.Embedding(L + 1, 32)``) summed; ``r + 1`` blocks; the root's final state
-> ``Linear(32, L + 1, bias=False)``. Each block computes ``h' = conv(h)``, then optionally
``relu``, ``h = h + h'`` (residual) or ``h = h'``, then optionally ``LayerNorm``
(``model.post_norm``). Per-architecture flags of the run scripts:

- ``gcn``: ``GCNConv(32, 32)``; relu, residual, LayerNorm.
- ``gin``: ``GINConv(Lin-BN-ReLU-Lin-BN-ReLU)`` (``eps = 0``, fixed: the zoo's ``gin0``); relu,
  residual, LayerNorm.
- ``gat``: ``GATConv(32, 8, heads=4)`` (heads concatenated); no activation; residual, LayerNorm.
- ``ggnn``: ``GatedGraphConv(32, num_layers=1)``; no activation, no residual, no LayerNorm.

Protocol (:func:`train_neighbors_match`): 80/20 stratified train/test split; Adam (lr 1e-3);
``ReduceLROnPlateau(mode="max", factor=0.5, patience=10, threshold 1e-4 absolute)`` on the
training accuracy. Training runs in *evaluation rounds* of ``eval_every`` shuffled passes over
the training set (one DataLoader over ``eval_every`` copies); the training accuracy of a round is
the running accuracy of the predictions made while training on it (train mode). Training stops
when a round reaches training accuracy 1.0, after ``patience`` rounds without a training-accuracy
gain above 1e-4, or after ``max_epochs`` passes; the result is the best round's training
accuracy (Figure 3 plots this) and the test accuracy of that round. Official per-radius batch
sizes (:data:`OFFICIAL_SETTINGS`): 64 for r = 2, 3 (and ``eval_every = 1000`` at r = 2), 1024
for r = 4 … 6, an effective 2048 for r = 7, 8 (gradient accumulation for GGNN/GIN at r = 7 and
all at r = 8).

Deviations from the official code: the seed (official: 11 for everything; here ``seed`` seeds
the data, the split, the shuffling and the model), the data and split random streams (NumPy
``Generator`` instead of ``random``/``np.random``/scikit-learn; same sizes and stratification),
batches are built by offsetting one tree's ``edge_index`` instead of PyG collation (same graphs),
and ``time_limit_s`` (not in the official code) can end a run early.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from fathom.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from fathom.data.neighbors_match import MAX_RADIUS, MIN_RADIUS
from fathom.devices import resolve_device
from fathom.errors import ConfigError
from fathom.experiments.references import load_references
from fathom.files import atomic_path  # a file utility (atomic writes), not reporting
from fathom.tasks.neighbors_match import DATASET, NeighborsMatchConfig

__all__ = [
    "ARCH_FLAGS",
    "MODELS",
    "OFFICIAL_SETTINGS",
    "PUBLISHED",
    "ZOO_CONVS",
    "capped",
    "model_config",
    "results_document",
    "run_neighbors_match",
    "train_neighbors_match",
]

MODELS = ("gcn", "gin", "gat", "ggnn")
"""The architectures of Figure 3."""

ARCH_FLAGS: dict[str, dict[str, bool]] = {
    "gcn": {"layer_norm": True, "activation": True, "residual": True},
    "gin": {"layer_norm": True, "activation": True, "residual": True},
    "gat": {"layer_norm": True, "activation": False, "residual": True},
    "ggnn": {"layer_norm": False, "activation": False, "residual": False},
}
"""Per-architecture layer flags of the official ``run-*-2-8.py`` scripts."""

GAT_HEADS = 4

ZOO_CONVS = {"gcn": "gcn", "gin": "gin0", "gat": "gat", "ggnn": "gated"}
"""The zoo conv (``fathom.nn.convs.CONVS``) of each architecture of Figure 3."""


def _official_settings() -> dict[tuple[str, int], dict[str, int]]:
    table: dict[tuple[str, int], dict[str, int]] = {}
    for model in MODELS:
        for r in range(MIN_RADIUS, MAX_RADIUS + 1):
            s = {"batch_size": 1024, "eval_every": 100, "accum_grad": 1}
            if r in (2, 3):
                s["batch_size"] = 64
            if r == 2:
                s["eval_every"] = 1000
            if r == 7:
                s.update(
                    {"batch_size": 2048}
                    if model in ("gcn", "gat")
                    else {"batch_size": 1024, "accum_grad": 2}
                )
            if r == 8:
                s.update(
                    {"batch_size": 1024, "accum_grad": 2}
                    if model in ("gcn", "gat")
                    else {"batch_size": 512, "accum_grad": 4}
                )
            table[(model, r)] = s
    return table


OFFICIAL_SETTINGS: dict[tuple[str, int], dict[str, int]] = _official_settings()
"""``(model, radius) -> {"batch_size", "eval_every", "accum_grad"}`` of the run scripts."""

_FIGURE_3 = load_references("neighbors-match")

PUBLISHED: dict[tuple[str, int], float] = {
    (f.model, f.radius): f.value
    for f in _FIGURE_3.figures
    if f.radius is not None and f.value is not None
}
"""Training accuracy of Figure 3 / the official README, ``(model, radius) -> accuracy``
(``presets/references/neighbors-match.yaml``; GIN has no r = 7, 8 entry)."""

Progress = Callable[[str], None]


def _check_model(model: object) -> str:
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    return str(model)


def _check_radius(radius: object) -> int:
    if isinstance(radius, bool) or not isinstance(radius, int):
        raise ConfigError(f"radius must be an int in {MIN_RADIUS}..{MAX_RADIUS}, got {radius!r}")
    if not MIN_RADIUS <= radius <= MAX_RADIUS:
        raise ConfigError(f"radius must be in {MIN_RADIUS}..{MAX_RADIUS}, got {radius}")
    return radius


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")
    return value


def model_config(
    model: str, radius: int, *, hidden: int = 32, num_layers: int | None = None
) -> ModelConfig:
    """The zoo model of ``model`` as the official run scripts set it up (:data:`ARCH_FLAGS`):
    ``num_layers`` (default ``r + 1``) blocks of width ``hidden``, ``h = norm(skip(act(conv(h))))``
    with LayerNorm, ReLU and residual where the flags say so; GIN is GIN-0 with the reference
    MLP (``gin0``), GAT concatenates 4 heads, GGNN is one GRU step per block (``gated``)."""
    model = _check_model(model)
    radius = _check_radius(radius)
    hidden = _positive_int("hidden", hidden)
    if model == "gat" and hidden % GAT_HEADS:
        raise ConfigError(f"hidden must be divisible by {GAT_HEADS} for gat, got {hidden}")
    depth = radius + 1 if num_layers is None else _positive_int("num_layers", num_layers)
    flags = ARCH_FLAGS[model]
    return ModelConfig(
        conv=ZOO_CONVS[model],
        depth=depth,
        hidden=hidden,
        heads=GAT_HEADS,
        attn_dropout=0.0,
        dropout=0.0,
        skip="res" if flags["residual"] else "none",
        norm="layer" if flags["layer_norm"] else "none",
        act="relu" if flags["activation"] else "identity",
        post_norm=True,
        head="none",
    )


def train_neighbors_match(
    model: str,
    radius: int,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    max_epochs: int = 50000,
    patience: int = 20,
    batch_size: int | None = None,
    eval_every: int | None = None,
    accum_grad: int | None = None,
    num_examples: int | None = None,
    num_layers: int | None = None,
    hidden: int = 32,
    lr: float = 1e-3,
    train_fraction: float = 0.8,
    time_limit_s: float | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train one model on Tree-NeighborsMatch at one radius with the official protocol:
    ``task: neighbors-match`` (:mod:`fathom.tasks.neighbors_match`) through
    :func:`~fathom.experiments.run.train_one`, with the official per-(model, radius) settings.

    Args:
        model: one of :data:`MODELS`.
        radius: tree depth ``r`` in 2..8.
        seed: seeds the data, split, shuffling (local generators) and the model; the same
            seed gives the same numbers on CPU.
        device: torch device (``"cpu"``, ``"cuda"``).
        max_epochs: most passes over the training set (official 50000).
        patience: evaluation rounds (of ``eval_every`` passes) without a training-accuracy gain
            before stopping (official 20).
        batch_size, eval_every, accum_grad: :obj:`None` gives the official per-(model, radius)
            value (:data:`OFFICIAL_SETTINGS`; ``eval_every`` is passes per evaluation round,
            ``accum_grad`` batches per optimiser step).
        num_examples: dataset size; :obj:`None` gives the official count (96 / 8000 / 16000 /
            32000 for r = 2 / 3 / 4 / >= 5).
        num_layers: GNN layers; :obj:`None` gives the official ``r + 1``.
        hidden: width (official 32).
        lr: Adam learning rate (official 1e-3).
        train_fraction: share of examples used for training (official 0.8).
        time_limit_s: stop after the batch (or round) that passes this wall time; not official.
        progress: called with a one-line message at the start and after every evaluation
            round.

    Returns:
        ``model``, ``radius``, ``depth`` (GNN layers), ``train_acc`` (best round),
        ``test_acc`` (at that round), ``epochs`` (passes run; a round cut short by
        ``time_limit_s`` counts in full), ``best_epoch``, ``time_s`` (data generation included),
        ``num_examples``, ``num_train``, ``seed``, ``batch_size``, ``eval_every``,
        ``accum_grad``, ``stop_reason`` (``"solved"``, ``"patience"``, ``"max_epochs"`` or
        ``"time_limit"``), ``final_lr`` and ``device``.
    """
    from fathom.experiments.run import train_one
    from fathom.tasks import get_task

    model = _check_model(model)
    radius = _check_radius(radius)
    official = OFFICIAL_SETTINGS[(model, radius)]
    batch_size = _positive_int(
        "batch_size", official["batch_size"] if batch_size is None else batch_size
    )
    eval_every = _positive_int(
        "eval_every", official["eval_every"] if eval_every is None else eval_every
    )
    accum_grad = _positive_int(
        "accum_grad", official["accum_grad"] if accum_grad is None else accum_grad
    )
    max_epochs = _positive_int("max_epochs", max_epochs)
    patience = _positive_int("patience", patience)
    if max_epochs < eval_every:
        raise ConfigError(
            f"max_epochs ({max_epochs}) must be >= eval_every ({eval_every}), the passes per round"
        )
    if time_limit_s is not None and not time_limit_s > 0:
        raise ConfigError(f"time_limit_s must be > 0 or None, got {time_limit_s!r}")
    dev = resolve_device(str(device))
    start_time = time.perf_counter()
    cfg = ExperimentConfig(
        data=DataConfig(name=DATASET),
        model=model_config(model, radius, hidden=hidden, num_layers=num_layers),
        train=TrainConfig(
            epochs=max_epochs // eval_every,
            lr=lr,
            weight_decay=0.0,
            patience=patience,
            batch_size=batch_size,
            accumulate=accum_grad,
        ),
        task="neighbors-match",
        neighbors_match=NeighborsMatchConfig(
            radius=radius,
            num_examples=num_examples,
            eval_every=eval_every,
            train_fraction=train_fraction,
        ),
        seed=seed,
        device=str(dev),
    ).validate()
    spec = get_task(cfg.task)
    data = spec.load(cfg)
    deadline = None if time_limit_s is None else start_time + time_limit_s
    best = {"train_acc": 0.0}

    def on_round(record: dict[str, float]) -> bool:
        rnd = int(record["epoch"])
        new_best = record["train_acc"] > best["train_acc"] + 1e-4
        if new_best:
            best["train_acc"] = record["train_acc"]
        if progress is not None:
            progress(
                f"{model} r={radius} epoch {rnd * eval_every}: loss {record['loss']:.4f}, "
                f"train acc {record['train_acc']:.4f}, test acc {record['test_acc']:.4f}"
                + (" (new best)" if new_best else "")
            )
        return deadline is not None and time.perf_counter() > deadline

    objectives: list[Any] = []

    def with_deadline(plan: Any) -> Any:
        # the task's plan holds the split: announce it, and give its objective the deadline
        objective = plan.objective
        if progress is not None:
            progress(
                f"{model} r={radius}: {objective.train_idx.numel()} train / "
                f"{objective.test_idx.numel()} test trees, batch {batch_size}"
                + (f"×{accum_grad}" if accum_grad > 1 else "")
                + f", {eval_every} passes per round, at most {max_epochs} passes, on {dev}"
            )
        objective.deadline = deadline
        objectives.append(objective)
        return plan

    result = train_one(cfg, data, [on_round], plan_hook=with_deadline)
    timed_out = any(o.timed_out for o in objectives)
    stop_reason = (
        "time_limit"
        if timed_out or result.stop_reason == "callback"
        else {"objective": "solved", "patience": "patience"}.get(result.stop_reason, "max_epochs")
    )
    return {
        "model": model,
        "radius": radius,
        "depth": cfg.model.depth,
        "train_acc": result.metrics.get("train_acc", 0.0),
        "test_acc": result.metrics.get("test_acc", 0.0),
        "epochs": result.epochs * eval_every,
        "best_epoch": result.best_epoch * eval_every,
        "time_s": time.perf_counter() - start_time,
        "num_examples": len(data),
        "num_train": int(objectives[0].train_idx.numel()),
        "seed": seed,
        "batch_size": batch_size,
        "eval_every": eval_every,
        "accum_grad": accum_grad,
        "stop_reason": stop_reason,
        "final_lr": result.final_lr,
        "device": str(dev),
    }


def results_document(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The JSON document of a run's rows (``neighbors-match.json``): the task, the paper, the
    metric, the published values and ``rows``."""
    return {
        "task": "tree-neighbors-match",
        "paper": _FIGURE_3.sources["figure-3"],
        "metric": "train_acc",
        "published": [{"model": m, "radius": r, "train_acc": v} for (m, r), v in PUBLISHED.items()],
        "rows": list(rows),
    }


def _write_rows(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(results_document(rows), indent=2) + "\n")
    return Path(path)


def run_neighbors_match(
    models: Iterable[str],
    radii: Iterable[int],
    *,
    seeds: int | Sequence[int] = 1,
    device: str | torch.device = "cpu",
    json_path: str | Path | None = None,
    progress: Progress | None = None,
    **train_kwargs: Any,
) -> list[dict[str, Any]]:
    """Train every model at every radius for every seed (:func:`train_neighbors_match`).

    Args:
        models: names from :data:`MODELS`.
        radii: radii in 2..8.
        seeds: a count ``k`` (seeds ``0 … k-1``) or explicit seeds.
        device: torch device.
        json_path: when given, the rows so far are rewritten there (atomically) after each run,
            in the format of ``neighbors-match.json``.
        progress: called with one-line messages (per evaluation round and per run).
        **train_kwargs: passed to :func:`train_neighbors_match` (``max_epochs``,
            ``num_examples``, ``time_limit_s`` …).

    Returns:
        One row per (model, radius, seed): the dict of :func:`train_neighbors_match` plus
        ``published`` (the Figure 3 value or :obj:`None`).
    """
    models = [_check_model(m) for m in models]
    radii = [_check_radius(r) for r in radii]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seed_list = list(range(_positive_int("seeds", seeds)))
    else:
        seed_list = [int(s) for s in seeds]
        if not seed_list:
            raise ConfigError("seeds must name at least one seed, got an empty list")
    rows: list[dict[str, Any]] = []
    for m in models:
        for r in radii:
            for s in seed_list:
                row = train_neighbors_match(
                    m, r, seed=s, device=device, progress=progress, **train_kwargs
                )
                row["published"] = PUBLISHED.get((m, r))
                rows.append(row)
                if progress is not None:
                    pub = "–" if row["published"] is None else f"{row['published']:.2f}"
                    progress(
                        f"done {m} r={r} seed={s}: train acc {row['train_acc']:.4f} "
                        f"(published {pub}), test acc {row['test_acc']:.4f}, "
                        f"{row['epochs']} epochs, {row['time_s']:.1f} s ({row['stop_reason']})"
                    )
                if json_path is not None:
                    _write_rows(json_path, rows)
    return rows


def capped(max_epochs: int | None = None, time_limit_s: float | None = None) -> dict[str, Any]:
    """The :func:`train_neighbors_match` keyword arguments of a run capped at ``max_epochs``
    passes over the data (evaluated at least every 100 passes: the official rounds are 100 or
    1000 passes) and ``time_limit_s`` seconds; empty for an uncapped (official) run."""
    kwargs: dict[str, Any] = {}
    if max_epochs:
        kwargs["max_epochs"] = max_epochs
        kwargs["eval_every"] = min(max_epochs, 100)
    if time_limit_s:
        kwargs["time_limit_s"] = time_limit_s
    return kwargs
