"""Turn a :class:`~fathom.config.DataConfig` into a validated PyG ``Data``: the one place
dataset names are resolved (named datasets, synthetic generators, or a user's file)."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import weakref
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from fathom.config import DataConfig
from fathom.data.datasets import (
    DATASETS,
    GRAPH_FILE_SUFFIXES,
    load_dataset,
    load_graph_file,
    normalize_features,
)
from fathom.data.ogb_datasets import (
    OGB_DATASETS,
    load_ogb_link,
    load_ogb_node,
    ogb_kind,
    ogb_meta,
)
from fathom.data.splits import stratified_split
from fathom.data.synthetic import GENERATORS, make_synthetic
from fathom.data.validate import validate_graph
from fathom.errors import ConfigError, DataError
from fathom.limits import check_bytes

__all__ = [
    "build_dataset",
    "check_data",
    "dataset_kind",
    "is_prepared",
    "prepare_graph",
    "prepare_user_graph",
]

_MASKS = ("train_mask", "val_mask", "test_mask")


def dataset_kind(name: str) -> str:
    """``named``, ``ogb``, ``synthetic`` or ``file`` for a ``data.name`` value (else
    ConfigError; an OGB graph-property dataset too: it is for ``--task graph``)."""
    if name in DATASETS:
        return "named"
    if ogb_kind(name) in ("node", "link"):
        return "ogb"
    if name in GENERATORS:
        return "synthetic"
    if Path(name).suffix in GRAPH_FILE_SUFFIXES or Path(name).exists():
        return "file"
    from fathom.data.graph_datasets import is_graph_dataset

    if is_graph_dataset(name):
        raise ConfigError(
            f"data.name (--dataset) {name!r} is a graph-classification dataset: use it with "
            "--task graph"
        )
    ogb = [n for n in OGB_DATASETS.names() if ogb_kind(n) != "graph"]
    raise ConfigError(
        f"unknown data.name (--dataset) {name!r}; choose a dataset "
        f"({', '.join([*DATASETS.names(), *ogb])}), a generator "
        f"({', '.join(GENERATORS.names())}) or a path to a .npz/.pt graph file"
    )


def build_dataset(cfg: DataConfig, seed: int = 0) -> Data:
    """Load or generate the graph described by ``cfg`` and prepare it for training.

    ``seed`` seeds generated graphs, random splits and stochastic rewiring (``cfg.rewire``).
    Features are row-normalised when ``cfg.normalize_features`` is true, or, when it is None,
    when every feature is non-negative (bag-of-words datasets; Gaussian CSBM features are
    left alone; OGB features are used as published). The preparation is
    :func:`prepare_graph`'s.

    OGB datasets (:mod:`fathom.data.ogb_datasets`): node datasets come with their official
    split as masks, ``ogbl-collab`` with ``split_edges`` and no labels or masks; a graph OGB
    publishes undirected (``add_inverse_edge``) is kept as OGB builds it (so edge attributes
    stay aligned), ``cfg.to_undirected`` symmetrises the others (ogbn-arxiv).
    """
    kind = dataset_kind(cfg.name)
    link = False
    if kind == "named":
        data = load_dataset(cfg.name, data_dir=cfg.data_dir, split=cfg.split, seed=seed)
    elif kind == "ogb":
        link = ogb_kind(cfg.name) == "link"
        loader = load_ogb_link if link else load_ogb_node
        data = loader(cfg.name, cfg.data_dir)
    elif kind == "synthetic":
        _check_synthetic_size(cfg)
        data = make_synthetic(cfg.name, seed=seed, **_generator_kwargs(cfg))
    else:
        data = load_graph_file(cfg.name, seed=seed)
    published_undirected = kind == "ogb" and ogb_meta(cfg.name)["add_inverse_edge"] == "True"
    return prepare_graph(
        data,
        cfg,
        seed,
        symmetrise=not published_undirected,
        auto_normalize=kind != "ogb",
        labelled=not link,
    )


# Graphs prepare_graph returned (id -> weak reference): run_experiment prepares a graph it
# is handed only if it is not one of these (rewiring is not idempotent).
_PREPARED: dict[int, weakref.ref[Data]] = {}


def is_prepared(data: Any) -> bool:
    """Whether ``data`` is a graph :func:`build_dataset` / :func:`prepare_graph` returned."""
    ref = _PREPARED.get(id(data))
    return ref is not None and ref() is data


def prepare_graph(
    data: Data,
    cfg: DataConfig,
    seed: int = 0,
    *,
    symmetrise: bool = True,
    auto_normalize: bool = True,
    labelled: bool = True,
) -> Data:
    """Prepare a loaded graph for training, as every node-level path does: symmetrise it
    (``cfg.to_undirected``, unless ``symmetrise`` is false) or reverse its edges
    (``cfg.reverse_edges``), rewire it (``cfg.rewire``, with
    ``seed``), row-normalise features (:func:`~fathom.data.datasets.normalize_features`
    with ``cfg.normalize_features``; ``None`` decides by sign only if ``auto_normalize``),
    cast ``x`` to float32 and validate it (labels and masks required if ``labelled``).

    ``data`` may be modified in place (a freshly loaded graph); the result is remembered as
    prepared (:func:`is_prepared`).
    """
    if cfg.to_undirected and symmetrise:
        data.edge_index = to_undirected(data.edge_index, num_nodes=data.num_nodes)
    elif cfg.reverse_edges:
        data.edge_index = data.edge_index.flip(0)
    if cfg.rewire != "none":
        from fathom.transforms.rewiring import build_rewiring

        data = build_rewiring(cfg.rewire, iterations=cfg.rewire_iterations, seed=seed)(data)
    normalize = cfg.normalize_features
    if normalize is None and not auto_normalize:
        normalize = False
    data, _ = normalize_features(data, normalize)
    data.x = data.x.to(torch.float32)
    validate_graph(data, require_labels=labelled, require_masks=labelled)
    key = id(data)
    _PREPARED[key] = weakref.ref(data, lambda _, key=key: _PREPARED.pop(key, None))
    return data


def prepare_user_graph(data: Data, cfg: DataConfig, seed: int = 0) -> Data:
    """A user's own ``Data`` (the Python API's ``run_experiment(cfg, data=...)``) prepared as
    a graph file is: validated first (one-line DataError), ``x`` cast to float32, a
    stratified 60/20/20 split drawn with ``seed`` when it has no masks (all three masks or
    none), then :func:`prepare_graph`. ``data`` itself is not modified (a shallow copy is).
    """
    if not isinstance(data, Data):
        raise DataError(f"data must be a torch_geometric.data.Data, got {type(data).__name__}")
    data = copy.copy(data)
    x = getattr(data, "x", None)
    if isinstance(x, torch.Tensor) and not (x.dtype.is_floating_point or x.dtype.is_complex):
        data.x = x.to(torch.float32)
    present = [m for m in _MASKS if getattr(data, m, None) is not None]
    if present and len(present) < len(_MASKS):
        absent = [m for m in _MASKS if m not in present]
        raise DataError(
            f"data has {', '.join(present)} but not {', '.join(absent)}; give all three masks "
            "or none (then a stratified split is drawn)"
        )
    validate_graph(data, require_masks=False)
    if not present:
        splits = stratified_split(data.y, seed=seed)
        for name, mask in zip(_MASKS, splits, strict=True):
            data[name] = mask
    return prepare_graph(data, cfg, seed)


def _check_synthetic_size(cfg: DataConfig) -> None:
    """Refuse, before generating it, a graph whose features and edges alone exceed the
    memory budget (float32 features; int64 edges both ways, and a copy while they are built)."""
    s = cfg.synthetic
    nbytes = s.num_nodes * (s.feature_dim * 4 + s.avg_degree * 2 * 8 * 2)
    check_bytes(
        nbytes,
        f"a generated {cfg.name} graph of {s.num_nodes:,} nodes",
        hint="; lower data.synthetic.num_nodes, feature_dim or avg_degree",
    )


def _generator_kwargs(cfg: DataConfig) -> dict[str, Any]:
    """The ``data.synthetic`` fields the chosen generator takes (CSBM takes them all); a
    ``None`` field leaves the generator's own default."""
    accepted = inspect.signature(GENERATORS.get(cfg.name)).parameters
    return {
        k: v
        for k, v in dataclasses.asdict(cfg.synthetic).items()
        if k in accepted and v is not None
    }


def check_data(cfg: DataConfig) -> None:
    """Registered names of a data config (the rewiring); a task's config check calls it."""
    from fathom.transforms.rewiring import REWIRINGS

    if cfg.rewire not in REWIRINGS:
        raise ConfigError(
            f"unknown data.rewire (--rewire) {cfg.rewire!r}; "
            f"choose one of: {', '.join(REWIRINGS.names())}"
        )
