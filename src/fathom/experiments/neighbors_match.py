r"""Tree-NeighborsMatch runner: training accuracy against problem radius (over-squashing).

Reproduces Figure 3 of Alon & Yahav, `"On the Bottleneck of Graph Neural Networks and its
Practical Implications" <https://arxiv.org/abs/2006.05205>`_ (ICLR 2021), following the official
code (``tech-srl/bottleneck``: ``models/graph_model.py``, ``common.py``, ``experiment.py``,
``main.py`` and ``run-{gcn,gat,ggnn,gin}-2-8.py``).

Model (:class:`NeighborsMatchNet`): key and value embeddings (two ``nn.Embedding(L + 1, 32)``)
summed; ``r + 1`` GNN layers; the root's final state -> ``Linear(32, L + 1, bias=False)``.
Each layer computes ``h' = conv(h)``, then optionally ``relu``, ``h = h + h'`` (residual) or
``h = h'``, then optionally ``LayerNorm``. Per-architecture flags of the run scripts:

- ``gcn``: ``GCNConv(32, 32)``; relu, residual, LayerNorm.
- ``gin``: ``GINConv(Lin-BN-ReLU-Lin-BN-ReLU)`` (``eps = 0``, fixed); relu, residual, LayerNorm.
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
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GatedGraphConv, GCNConv, GINConv

from fathom.data.neighbors_match import (
    MAX_RADIUS,
    MIN_RADIUS,
    NeighborsMatchData,
    batched_edge_index,
    tree_neighbors_match,
)
from fathom.data.splits import stratified_split_indices
from fathom.errors import ConfigError
from fathom.experiments.references import load_references
from fathom.report.files import atomic_path  # a file utility (atomic writes), not reporting

__all__ = [
    "ARCH_FLAGS",
    "MODELS",
    "OFFICIAL_SETTINGS",
    "PUBLISHED",
    "NeighborsMatchNet",
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


def _make_conv(conv: str, hidden: int) -> nn.Module:
    if conv == "gcn":
        return GCNConv(hidden, hidden)
    if conv == "gin":
        mlp = nn.Sequential(
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
        )
        return GINConv(mlp)
    if conv == "gat":
        return GATConv(hidden, hidden // GAT_HEADS, heads=GAT_HEADS)
    return GatedGraphConv(out_channels=hidden, num_layers=1)


class NeighborsMatchNet(nn.Module):
    r"""The official Tree-NeighborsMatch model (``models/graph_model.py`` of tech-srl/bottleneck).

    ``h = E_key(key) + E_value(value)``; for each of ``num_layers`` layers
    ``h' = conv(h, edge_index)``, ``h' = relu(h')`` if ``activation``, ``h = h + h'`` if
    ``residual`` else ``h = h'``, ``h = LayerNorm(h)`` if ``layer_norm``; logits are
    ``W h_root`` with ``W`` of shape ``[L + 1, hidden]`` (no bias).

    Args:
        conv: one of :data:`MODELS` (``gcn``, ``gin``, ``gat``, ``ggnn``).
        radius: tree depth ``r`` (2..8); sets ``L = 2**r`` keys/values/classes.
        hidden: width (official 32; must be divisible by 4 for ``gat``).
        num_layers: GNN layers; :obj:`None` gives the official ``r + 1``.
        layer_norm, activation, residual: :obj:`None` gives the official per-conv flag
            (:data:`ARCH_FLAGS`).

    Shapes:
        - **input:** x :math:`(N, 2)` int64 (key, value), edge_index :math:`(2, E)`,
          root_index :math:`(B)`
        - **output:** logits :math:`(B, 2^r + 1)`
    """

    def __init__(
        self,
        conv: str,
        radius: int,
        hidden: int = 32,
        *,
        num_layers: int | None = None,
        layer_norm: bool | None = None,
        activation: bool | None = None,
        residual: bool | None = None,
    ) -> None:
        super().__init__()
        conv = _check_model(conv)
        radius = _check_radius(radius)
        hidden = _positive_int("hidden", hidden)
        if conv == "gat" and hidden % GAT_HEADS:
            raise ConfigError(f"hidden must be divisible by {GAT_HEADS} for gat, got {hidden}")
        num_layers = radius + 1 if num_layers is None else _positive_int("num_layers", num_layers)
        flags = ARCH_FLAGS[conv]
        self.conv = conv
        self.radius = radius
        self.num_layers = num_layers
        self.use_layer_norm = flags["layer_norm"] if layer_norm is None else bool(layer_norm)
        self.use_activation = flags["activation"] if activation is None else bool(activation)
        self.use_residual = flags["residual"] if residual is None else bool(residual)
        num_symbols = 2**radius + 1
        self.key_embedding = nn.Embedding(num_symbols, hidden)
        self.value_embedding = nn.Embedding(num_symbols, hidden)
        self.layers = nn.ModuleList(_make_conv(conv, hidden) for _ in range(num_layers))
        self.norms = nn.ModuleList(
            nn.LayerNorm(hidden) for _ in range(num_layers if self.use_layer_norm else 0)
        )
        self.out = nn.Linear(hidden, num_symbols, bias=False)

    def forward(self, x: Tensor, edge_index: Tensor, root_index: Tensor) -> Tensor:
        """Logits of each tree's root (see the class docstring for shapes)."""
        h = self.key_embedding(x[:, 0]) + self.value_embedding(x[:, 1])
        for i, layer in enumerate(self.layers):
            new = layer(h, edge_index)
            if self.use_activation:
                new = F.relu(new)
            h = h + new if self.use_residual else new
            if self.use_layer_norm:
                h = self.norms[i](h)
        return self.out(h[root_index])


def _resolve_device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return dev


@torch.no_grad()
def _accuracy(
    model: NeighborsMatchNet,
    data: NeighborsMatchData,
    index: Tensor,
    edges: Tensor,
    batch_size: int,
) -> float:
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=data.x.device)
    for start in range(0, index.numel(), batch_size):
        b = data.batch(index[start : start + batch_size], edges)
        pred = model(b.x, b.edge_index, b.root_index).argmax(dim=1)
        correct += (pred == b.y).sum()
    return int(correct.item()) / max(1, index.numel())


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
    """Train one model on Tree-NeighborsMatch at one radius with the official protocol.

    Args:
        model: one of :data:`MODELS`.
        radius: tree depth ``r`` in 2..8.
        seed: seeds the data, split, shuffling (local generators) and the model
            (``torch.manual_seed``); the same seed gives the same numbers on CPU.
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
        time_limit_s: stop after the round (or batch) that passes this wall time; not official.
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
    dev = _resolve_device(device)
    start_time = time.perf_counter()

    data = tree_neighbors_match(radius, num_examples=num_examples, seed=seed)
    train_idx, test_idx = stratified_split_indices(data.y, train_fraction=train_fraction, seed=seed)
    data = data.to(dev)
    train_idx, test_idx = train_idx.to(dev), test_idx.to(dev)
    n_train = train_idx.numel()
    edges = batched_edge_index(data.edge_index, data.num_nodes, batch_size)

    torch.manual_seed(seed)
    net = NeighborsMatchNet(model, radius, hidden, num_layers=num_layers).to(dev)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", threshold_mode="abs", factor=0.5, patience=10
    )
    shuffle = torch.Generator().manual_seed(seed)
    if progress is not None:
        progress(
            f"{model} r={radius}: {n_train} train / {test_idx.numel()} test trees, batch "
            f"{batch_size}" + (f"×{accum_grad}" if accum_grad > 1 else "") + f", {eval_every} "
            f"passes per round, at most {max_epochs} passes, on {dev}"
        )

    best_train = best_test = 0.0
    best_round = rounds_run = no_improve = 0
    stop_reason = "max_epochs"
    threshold = 1e-4
    for rnd in range(1, max_epochs // eval_every + 1):
        net.train()
        # one shuffled DataLoader over ``eval_every`` copies of the training set
        order = torch.randperm(eval_every * n_train, generator=shuffle) % n_train
        order = train_idx[order.to(dev)]
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), dtype=torch.long, device=dev)
        seen = 0
        timed_out = False
        optimizer.zero_grad()
        for i, begin in enumerate(range(0, order.numel(), batch_size)):
            b = data.batch(order[begin : begin + batch_size], edges)
            out = net(b.x, b.edge_index, b.root_index)
            loss = F.cross_entropy(out, b.y)
            loss_sum += loss.detach() * b.num_graphs
            correct += (out.detach().argmax(dim=1) == b.y).sum()
            seen += b.num_graphs
            (loss / accum_grad).backward()
            if (i + 1) % accum_grad == 0:
                optimizer.step()
                optimizer.zero_grad()
            if time_limit_s is not None and time.perf_counter() - start_time > time_limit_s:
                timed_out = True
                break
        rounds_run = rnd
        train_acc = int(correct.item()) / seen
        avg_loss = float(loss_sum.item()) / seen
        scheduler.step(train_acc)
        test_acc = _accuracy(net, data, test_idx, edges, batch_size)
        new_best = train_acc > best_train + threshold
        if new_best:
            best_train, best_test, best_round, no_improve = train_acc, test_acc, rnd, 0
        else:
            no_improve += 1
        if progress is not None:
            lr_now = optimizer.param_groups[0]["lr"]
            progress(
                f"{model} r={radius} epoch {rnd * eval_every}: loss {avg_loss:.4f}, "
                f"train acc {train_acc:.4f}, test acc {test_acc:.4f}, lr {lr_now:.2g}"
                + (" (new best)" if new_best else "")
            )
        if new_best and train_acc == 1.0:
            stop_reason = "solved"
            break
        if no_improve >= patience:
            stop_reason = "patience"
            break
        if timed_out or (
            time_limit_s is not None and time.perf_counter() - start_time > time_limit_s
        ):
            stop_reason = "time_limit"
            break

    return {
        "model": model,
        "radius": radius,
        "depth": net.num_layers,
        "train_acc": best_train,
        "test_acc": best_test,
        "epochs": rounds_run * eval_every,
        "best_epoch": best_round * eval_every,
        "time_s": time.perf_counter() - start_time,
        "num_examples": len(data),
        "num_train": int(n_train),
        "seed": seed,
        "batch_size": batch_size,
        "eval_every": eval_every,
        "accum_grad": accum_grad,
        "stop_reason": stop_reason,
        "final_lr": optimizer.param_groups[0]["lr"],
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
