"""Node outputs of a whole graph, three ways: one forward pass, layer-wise, or on sampled
subgraphs (``train.eval_mode``).

:func:`sampled_inference` is the alternative to layer-wise inference
(:func:`fathom.models.inference.layerwise_inference`, whose module docstring tabulates what
each mode computes exactly): the target nodes are evaluated in chunks, each on the subgraph
that :func:`~fathom.loaders.neighbor.sample_neighbors` draws around it, as deep as the
model's receptive field (:func:`~fathom.models.inference.receptive_field`: one hop more when a
conv normalises by its source nodes' degrees, so that those degrees are whole). With fan-out
-1 (every in-neighbour) the subgraph is the exact k-hop in-neighbourhood and the outputs are
exact for every node-wise computation; fixed fan-outs give GraphSAGE's sampled estimate.

It lives here, above :mod:`fathom.loaders` (whose sampler and CSR it uses), while the
layer-wise engine lives in :mod:`fathom.models` (plain torch), below the loaders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from fathom.config import EVAL_MODES
from fathom.loaders.csr import to_csr
from fathom.loaders.neighbor import sample_neighbors
from fathom.models.inference import DEFAULT_CHUNK, layerwise_inference, receptive_field, unwrap
from fathom.nn.trim import trim_kwargs

__all__ = ["EVAL_MODES", "NodeEvaluation", "node_outputs", "sampled_inference"]


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def sampled_inference(
    model: nn.Module,
    x: Tensor,
    edge_index: Tensor,
    *,
    nodes: Tensor | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    fanouts: Sequence[int] = (-1,),
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Tensor:
    """The eval-mode outputs of ``model`` at ``nodes``, each chunk of ``chunk_size`` of them
    computed on its sampled neighbourhood (module docstring).

    The neighbourhood has :attr:`~fathom.models.inference.ReceptiveField.sampled_hops` hops;
    hop ``i`` draws ``fanouts[i]`` in-neighbours per node (the last entry repeats for further
    hops; -1: all, which makes the outputs exact). Draws come from a generator seeded with
    ``seed``, so the same call gives the same subgraphs. The model is put in eval mode for
    the call (and back after) and run without autograd; each chunk's subgraph and features
    are moved to ``device``.

    Args:
        model: a node model with a known receptive field.
        x: node features.
        edge_index: the whole graph.
        nodes: the nodes to evaluate (default: all), distinct.
        chunk_size: target nodes per subgraph.
        fanouts: in-neighbours per node and hop, first hop first.
        seed: seed of the sampler's generator.
        device: where to compute (default: the model's device).

    Raises:
        ValueError: a model whose receptive field is not known.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]``, nodes: ``[n]`` ->
        ``[n, out_channels]`` on ``device``, in the order of ``nodes``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if not fanouts:
        raise ValueError("fanouts: expected at least one entry")
    model = unwrap(model)
    hops = receptive_field(model).sampled_hops
    per_hop = [fanouts[min(i, len(fanouts) - 1)] for i in range(hops)]
    device = torch.device(device) if device is not None else _model_device(model)
    num_nodes = x.size(0)
    csr = to_csr(edge_index, num_nodes)
    if nodes is None:
        nodes = torch.arange(num_nodes, device=csr.device)
    nodes = nodes.to(csr.device)
    generator = torch.Generator(device=csr.device).manual_seed(seed)
    node_map = torch.full((num_nodes,), -1, dtype=torch.long, device=csr.device)
    empty = torch.empty(2, 0, dtype=torch.long, device=device)
    outs: list[Tensor] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for seeds in nodes.split(chunk_size):
                trim: dict[str, list[int]] = {}
                if hops == 0:  # a node-wise model: the seeds alone
                    n_id, sub_edges, batch_size = seeds, empty, seeds.numel()
                else:
                    sub = sample_neighbors(
                        csr, seeds, per_hop, generator=generator, node_map=node_map
                    )
                    n_id, sub_edges, batch_size = sub.n_id, sub.edge_index, sub.batch_size
                    trim = trim_kwargs(model, sub)  # only the rows the seeds read
                x_sub = x.index_select(0, n_id.to(x.device)).to(device)
                outs.append(model(x_sub, sub_edges.to(device), **trim)[:batch_size])
    finally:
        model.train(was_training)
    if not outs:
        raise ValueError("nodes: expected at least one node to evaluate")
    return torch.cat(outs)


def node_outputs(
    model: nn.Module,
    x: Tensor,
    edge_index: Tensor,
    *,
    mode: str,
    chunk_size: int = DEFAULT_CHUNK,
    fanouts: Sequence[int] = (-1,),
    seed: int = 0,
    nodes: Tensor | None = None,
) -> Tensor:
    """Eval-mode outputs ``[num_nodes, out_channels]`` of ``model`` by ``mode``: ``full``
    (one forward pass), ``layerwise`` (:func:`~fathom.models.inference.layerwise_inference`)
    or ``sampled`` (:func:`sampled_inference` at ``nodes``; the other rows are zero).

    Raises:
        ValueError: an unknown ``mode``, or a model the mode cannot run.
    """
    if mode == "full":
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return model(x, edge_index)
        finally:
            model.train(was_training)
    if mode == "layerwise":
        return layerwise_inference(model, x, edge_index, chunk_size=chunk_size)
    if mode == "sampled":
        if nodes is None:
            nodes = torch.arange(x.size(0), device=x.device)
        out = sampled_inference(
            model, x, edge_index, nodes=nodes, chunk_size=chunk_size, fanouts=fanouts, seed=seed
        )
        full = out.new_zeros((x.size(0), *out.shape[1:]))
        full[nodes.to(out.device)] = out
        return full
    raise ValueError(f"eval mode must be one of {', '.join(EVAL_MODES)}, got {mode!r}")


@dataclass(frozen=True)
class NodeEvaluation:
    """How a node objective computes the outputs it scores (``train.eval_mode`` and its
    options): :func:`node_outputs` over the whole graph, in sampled mode at the nodes of the
    graph's train / val / test masks.

    Args:
        mode: ``full``, ``layerwise`` or ``sampled``.
        chunk_size: target nodes per chunk (``train.eval_chunk``).
        fanouts: in-neighbours per node and hop of sampled mode (``train.eval_fanouts``).
        seed: seed of sampled mode's generator (the same subgraphs every evaluation).
    """

    mode: str = "full"
    chunk_size: int = DEFAULT_CHUNK
    fanouts: tuple[int, ...] = (-1,)
    seed: int = 0

    def outputs(self, model: nn.Module, data: Data) -> Tensor:
        """The model's eval-mode outputs on ``data`` (``x``, ``edge_index``, masks).

        Shapes:
            -> ``[num_nodes, out_channels]`` (sampled: zero rows outside the masks).
        """
        nodes = None
        if self.mode == "sampled":
            masks = [data[f"{s}_mask"] for s in ("train", "val", "test") if f"{s}_mask" in data]
            if masks:
                union = masks[0].clone()
                for mask in masks[1:]:
                    union |= mask
                nodes = union.nonzero().view(-1)
        return node_outputs(
            model,
            data.x,
            data.edge_index,
            mode=self.mode,
            chunk_size=self.chunk_size,
            fanouts=self.fanouts,
            seed=self.seed,
            nodes=nodes,
        )
