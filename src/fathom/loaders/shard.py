"""Sharding a loader's epoch over the ranks of a multi-process run, and a loader's random
state (to resume an interrupted run exactly).

Every rank holds the whole graph and builds the same loader with its ``rank`` and the
``world_size``; each epoch, every rank draws the same permutation of the epoch's units
(seed nodes, groups of partitions) from the shared seed and keeps every ``world_size``-th
one from position ``rank``, as :class:`torch.utils.data.DistributedSampler` does: the
shards are disjoint, cover the epoch, and are padded (with the permutation's first units)
to equal length, so every rank yields the same number of batches and no collective waits
on a rank that has run out. What each rank samples around its units (neighbours, random
walks) comes from a stream of its own (:func:`~fathom.seeding.derive_seed`).

``rank`` / ``world_size`` left ``None`` are those of the initialised process group (as
``DistributedSampler``'s ``rank`` / ``num_replicas``), one process without one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor
from torch.utils.data import DistributedSampler
from torch_geometric.data import Data
from torch_geometric.loader import NodeLoader

from fathom.errors import ConfigError

__all__ = [
    "EpochDistributedSampler",
    "load_loader_state",
    "loader_state",
    "resolve_shard",
    "shard",
    "sharded_neighbor_loader",
]

T = TypeVar("T")


def resolve_shard(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: the given values, else the process group's (``(0, 1)``
    without one).

    Raises:
        ConfigError: ``world_size < 1`` or ``rank`` outside ``[0, world_size)``.
    """
    from fathom import distributed

    world = distributed.world_size() if world_size is None else int(world_size)
    rank_ = distributed.rank() if rank is None else int(rank)
    if world < 1 or not 0 <= rank_ < world:
        raise ConfigError(f"rank must lie in [0, world_size), got rank {rank_} of {world}")
    return rank_, world


def shard(units: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Rank ``rank``'s share of one epoch's ``units`` (already in the epoch's order, the
    same on every rank): ``units[rank::world_size]`` after padding ``units`` with its
    first entries to a multiple of ``world_size`` (``DistributedSampler``'s rule), so every
    rank gets ``ceil(len / world_size)``; ``[]`` for no units."""
    units = list(units)
    if world_size == 1 or not units:
        return units
    total = math.ceil(len(units) / world_size) * world_size
    padded = (units * math.ceil(total / len(units)))[:total]
    return padded[rank:total:world_size]


class EpochDistributedSampler(DistributedSampler[int]):
    """:class:`~torch.utils.data.DistributedSampler` that moves to the next epoch by itself:
    each ``iter`` is one epoch, shuffled with ``seed + epoch`` (the same on every rank),
    then ``epoch`` advances (``DistributedSampler`` needs ``set_epoch`` before each epoch;
    inside :func:`~fathom.train.loop.fit` nobody would call it). ``epoch`` is the loader's
    whole state: set it (``set_epoch``) to resume."""

    def __iter__(self) -> Iterator[int]:
        indices = super().__iter__()
        self.epoch += 1
        return indices


def sharded_neighbor_loader(
    data: Data,
    num_neighbors: Sequence[int],
    *,
    input_nodes: Tensor,
    batch_size: int,
    seed: int,
    rank: int,
    world_size: int,
    **kwargs: Any,
) -> NodeLoader:
    """Rank ``rank``'s neighbour loader (:func:`~fathom.loaders.neighbor.neighbor_loader`)
    over its shard of ``input_nodes``.

    The seed nodes of each epoch are shuffled with ``seed + epoch`` and sharded by an
    :class:`EpochDistributedSampler` (padded: every rank takes ``ceil(n / world_size)``
    seeds, so ``ceil(ceil(n / world_size) / batch_size)`` batches); the neighbours are
    sampled from the rank's own stream ``derive_seed(seed, "rank", rank)``.

    Args:
        input_nodes: the seed nodes, as indices or a boolean mask.
        kwargs: passed on to ``neighbor_loader`` (``num_workers``, ``replace`` …).
    """
    from fathom.loaders.neighbor import neighbor_loader
    from fathom.seeding import derive_seed

    num_inputs = int(input_nodes.sum()) if input_nodes.dtype == torch.bool else input_nodes.numel()
    sampler = EpochDistributedSampler(
        range(num_inputs), num_replicas=world_size, rank=rank, shuffle=True, seed=seed
    )
    return neighbor_loader(
        data,
        num_neighbors,
        input_nodes=input_nodes,
        batch_size=batch_size,
        shuffle=False,
        seed=derive_seed(seed, "rank", rank),
        sampler=sampler,
        # the DataLoader draws each epoch's worker base seed from this generator, not from
        # torch's global one (which dropout draws from)
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    )


def _generators(loader: Any) -> dict[str, torch.Generator]:
    """The random streams of a loader: its own ``generator`` (fathom's loaders; a
    DataLoader's shuffle and worker seeds) and its ``node_sampler``'s (PyG's NodeLoader)."""
    out: dict[str, torch.Generator] = {}
    for name, owner in (("generator", loader), ("sampler", getattr(loader, "node_sampler", None))):
        gen = getattr(owner, "generator", None)
        if isinstance(gen, torch.Generator):
            out[name] = gen
    return out


def loader_state(loader: Any) -> dict[str, Any]:
    """The random state of ``loader`` (its generators' states, a distributed sampler's
    epoch): what makes its next epoch the one an uninterrupted run would have drawn. ``{}``
    for ``None`` (full batch) or a loader without random state."""
    if loader is None:
        return {}
    state: dict[str, Any] = {name: g.get_state() for name, g in _generators(loader).items()}
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, EpochDistributedSampler):
        state["epoch"] = sampler.epoch
    return state


def load_loader_state(loader: Any, state: dict[str, Any]) -> None:
    """Restore a state :func:`loader_state` took of a loader built the same way.

    Raises:
        ConfigError: the state names a stream ``loader`` does not have.
    """
    if loader is None:
        if state:
            raise ConfigError("the saved loader state is for a sampling loader, not full batch")
        return
    generators = _generators(loader)
    for name, value in state.items():
        if name == "epoch":
            sampler = getattr(loader, "sampler", None)
            if not isinstance(sampler, EpochDistributedSampler):
                raise ConfigError("the saved loader state is of a distributed loader")
            sampler.set_epoch(int(value))
        elif name in generators:
            generators[name].set_state(value)
        else:
            raise ConfigError(f"the saved loader state names a stream {name!r} it does not have")
