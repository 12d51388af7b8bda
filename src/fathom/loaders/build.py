"""How ``fit`` gets its batches on one large graph: the loaders by name (``train.loader``).

Each :class:`LoaderSpec` names the ``train.*`` options it reads; a task's config check refuses
an option set for a loader that does not read it (:func:`unused_options`), and
:func:`build_loader` turns a name and plain values into an iterable of mini-batch ``Data``
(one pass per epoch). ``full`` is no loader: the whole graph is one batch.

A loader that ``shards`` splits each epoch over the ranks of a multi-process run (``rank``,
``world_size``; :mod:`fathom.loaders.shard`): disjoint seed nodes or groups of partitions
per rank, the same number of batches on every rank.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torch_geometric.data import Data

from fathom.registry import Registry

__all__ = ["LOADERS", "LoaderSpec", "build_loader", "parse_fanouts", "unused_options"]

Builder = Callable[..., Iterable[Data]]


@dataclass(frozen=True)
class LoaderSpec:
    """A loader: what it reads (``train.<option>`` names) and how it is built."""

    name: str
    description: str
    options: tuple[str, ...]
    build: Builder | None
    shards: bool = False
    """Whether ``build`` takes ``rank`` / ``world_size`` and gives each rank its share of
    every epoch (multi-process training needs it)."""


LOADERS: Registry[LoaderSpec] = Registry("train.loader (--loader)")


def parse_fanouts(text: str) -> list[int]:
    """``"15,10"`` -> ``[15, 10]`` (first hop first; -1: every neighbour)."""
    return [int(f) for f in text.replace(" ", "").split(",")]


def _neighbor(
    data: Data,
    *,
    seed: int,
    fanouts: str,
    batch_size: int,
    num_workers: int,
    rank: int = 0,
    world_size: int = 1,
) -> Any:
    from fathom.loaders.neighbor import neighbor_loader

    if world_size > 1:
        from fathom.loaders.shard import sharded_neighbor_loader

        return sharded_neighbor_loader(
            data,
            parse_fanouts(fanouts),
            input_nodes=data.train_mask,
            batch_size=batch_size,
            seed=seed,
            rank=rank,
            world_size=world_size,
            num_workers=num_workers,
        )
    return neighbor_loader(
        data,
        parse_fanouts(fanouts),
        input_nodes=data.train_mask,
        batch_size=batch_size,
        shuffle=True,
        seed=seed,
        num_workers=num_workers,
    )


def _metis(
    data: Data,
    *,
    seed: int,
    num_parts: int,
    parts_per_batch: int,
    num_workers: int,
    rank: int = 0,
    world_size: int = 1,
) -> Any:
    from fathom.loaders.partition import PartitionLoader, metis_partition

    part = metis_partition(data.edge_index, data.num_nodes, num_parts, seed=seed)
    return PartitionLoader(
        data, part, parts_per_batch=parts_per_batch, seed=seed, rank=rank, world_size=world_size
    )


def _random_partition(
    data: Data,
    *,
    seed: int,
    num_parts: int,
    parts_per_batch: int,
    num_workers: int,
    rank: int = 0,
    world_size: int = 1,
) -> Any:
    from fathom.loaders.partition import PartitionLoader

    # num_parts without a fixed partition: a new random partition every epoch, as the
    # DeeperGCN / RevGNN ogbn-proteins recipe draws it
    return PartitionLoader(
        data,
        num_parts=num_parts,
        parts_per_batch=parts_per_batch,
        seed=seed,
        rank=rank,
        world_size=world_size,
    )


def _saint(
    data: Data,
    *,
    seed: int,
    batch_size: int,
    walk_length: int,
    sample_coverage: int,
    num_workers: int,
    rank: int = 0,
    world_size: int = 1,
) -> Any:
    from fathom.loaders.saint import GraphSAINTRandomWalkLoader

    # as many batches per epoch as it takes the walks to visit about every node once
    num_steps = max(1, math.ceil(data.num_nodes / (batch_size * (walk_length + 1))))
    return GraphSAINTRandomWalkLoader(
        data,
        num_roots=batch_size,
        walk_length=walk_length,
        num_steps=num_steps,
        sample_coverage=sample_coverage,
        seed=seed,
        rank=rank,
        world_size=world_size,
    )


LOADERS.add("full", LoaderSpec("full", "the whole graph, one step per epoch", (), None))
LOADERS.add(
    "neighbor",
    LoaderSpec(
        "neighbor",
        "GraphSAGE neighbour sampling (Hamilton et al. 2017), PyG's NodeLoader format",
        ("fanouts", "batch_size", "num_workers"),
        _neighbor,
        shards=True,
    ),
)
LOADERS.add(
    "cluster",
    LoaderSpec(
        "cluster",
        "METIS partitions, several per batch (Cluster-GCN, Chiang et al. 2019)",
        ("num_parts", "parts_per_batch", "num_workers"),
        _metis,
        shards=True,
    ),
)
LOADERS.add(
    "random-partition",
    LoaderSpec(
        "random-partition",
        "random node partitions (the DeeperGCN / RevGNN ogbn-proteins recipe)",
        ("num_parts", "parts_per_batch", "num_workers"),
        _random_partition,
        shards=True,
    ),
)
LOADERS.add(
    "saint",
    LoaderSpec(
        "saint",
        "GraphSAINT random-walk subgraphs with loss normalisation (Zeng et al. 2020)",
        ("batch_size", "walk_length", "sample_coverage", "num_workers"),
        _saint,
        shards=True,
    ),
)


def build_loader(
    name: str,
    data: Data,
    *,
    seed: int,
    options: Mapping[str, Any],
    rank: int | None = None,
    world_size: int | None = None,
) -> Iterable[Data] | None:
    """The loader ``name`` over ``data``, with the values in ``options`` of the options it
    reads (others are ignored; e.g. the ``train`` section as a dict); ``None`` for ``full``.

    ``rank`` / ``world_size`` (default: the initialised process group's, one process
    without one, as ``DistributedSampler``'s): with several processes, a loader that
    :attr:`~LoaderSpec.shards` yields this rank's share of every epoch.

    Raises:
        ConfigError: several processes and a loader that does not shard.
    """
    from fathom.errors import ConfigError
    from fathom.loaders.shard import resolve_shard

    spec = LOADERS.get(name)
    rank, world_size = resolve_shard(rank, world_size)
    if world_size > 1 and not spec.shards:
        sharding = ", ".join(n for n in LOADERS.names() if LOADERS.get(n).shards)
        raise ConfigError(
            f"train.loader (--loader) {name!r} cannot be split over {world_size} processes; "
            f"loaders that can: {sharding}"
        )
    if spec.build is None:
        return None
    shard = {"rank": rank, "world_size": world_size} if world_size > 1 else {}
    return spec.build(data, seed=seed, **{k: options[k] for k in spec.options}, **shard)


def unused_options(name: str, given: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[str]:
    """The loader options in ``given`` set away from ``defaults`` that loader ``name`` does not
    read (every loader option is one of some loader's)."""
    reads = set(LOADERS.get(name).options)
    every = {option for loader in LOADERS for option in LOADERS.get(loader).options}
    return [
        key
        for key in sorted(every - reads)
        if key in given and given[key] != defaults.get(key, given[key])
    ]
