"""Turn a :class:`~fathom.config.DataConfig` into a validated PyG ``Data``: the one place
dataset names are resolved (named datasets, synthetic generators, or a user's file)."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Data
from torch_geometric.transforms import NormalizeFeatures
from torch_geometric.utils import to_undirected

from fathom.config import DataConfig
from fathom.data.datasets import DATASETS, GRAPH_FILE_SUFFIXES, load_dataset, load_graph_file
from fathom.data.ogb_datasets import (
    OGB_DATASETS,
    load_ogb_link,
    load_ogb_node,
    ogb_kind,
    ogb_meta,
)
from fathom.data.synthetic import GENERATORS, make_synthetic
from fathom.data.validate import validate_graph
from fathom.errors import ConfigError

__all__ = ["build_dataset", "check_data", "dataset_kind"]


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
    left alone; OGB features are used as published).

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
        data = make_synthetic(cfg.name, seed=seed, **_generator_kwargs(cfg))
    else:
        data = load_graph_file(cfg.name, seed=seed)
    published_undirected = kind == "ogb" and ogb_meta(cfg.name)["add_inverse_edge"] == "True"
    if cfg.to_undirected and not published_undirected:
        data.edge_index = to_undirected(data.edge_index, num_nodes=data.num_nodes)
    if cfg.rewire != "none":
        from fathom.transforms.rewiring import build_rewiring

        data = build_rewiring(cfg.rewire, iterations=cfg.rewire_iterations, seed=seed)(data)
    normalize = cfg.normalize_features
    if normalize is None:
        normalize = kind != "ogb" and bool((data.x >= 0).all())
    if normalize:
        data = NormalizeFeatures()(data)
    data.x = data.x.to(torch.float32)
    validate_graph(data, require_labels=not link, require_masks=not link)
    return data


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
