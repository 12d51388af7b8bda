"""One hidden layer of a deep GNN, composed of injected parts."""

from __future__ import annotations

from torch import Tensor, nn

from fathom.nn.dropouts import Dropout
from fathom.nn.layerwise import ChunkedGraph, apply_conv
from fathom.nn.trim import TrimmedLayer

__all__ = ["GNNBlock"]


class GNNBlock(nn.Module):
    """One message-passing layer with its normalisation, activation, dropout and skip.

    Post-activation (the default, Kipf & Welling; ResGCN)::

        x_l = skip(act(norm(conv(dropout(x_{l-1})))), history)

    Pre-activation, when the skip says so (``skip.pre_activation``; the ``res+`` block of
    DeeperGCN, Li et al. 2020)::

        x_l = skip(conv(dropout(act(norm(x_{l-1})))), history)

    Post-norm, with ``post_norm=True`` (the original Transformer's order; Alon & Yahav's
    NeighborsMatch model)::

        x_l = norm(skip(act(conv(dropout(x_{l-1}))), history))

    ``history = [x_0, …, x_{l-1}]`` holds the representations that entered the blocks so
    far. A conv with ``needs_x0`` (GCNII) is called as ``conv(x, x_0, edge_index)``. With a
    :class:`~fathom.nn.layerwise.ChunkedGraph` for ``edge_index`` (layer-wise inference) the
    conv runs over the whole graph by chunks of target nodes and everything else on the
    whole layer. With a :class:`~fathom.nn.trim.TrimmedLayer` (a neighbour-sampled batch
    trimmed to what the seeds read) the block computes that layer's output rows only, from
    its input rows, with the untrimmed layer's dropout mask.

    Args:
        conv: message-passing operator called as ``conv(x, edge_index)``.
        norm: normalisation module (over the conv's output channels, or over the input
            channels in pre-activation order).
        act: activation module.
        skip: skip module called as ``skip(h, history)``.
        dropout: dropout probability on the conv's input.
        post_norm: normalise after the skip instead of before the activation.

    Shapes:
        x: ``[num_nodes, in_channels]`` -> ``[num_nodes, out_channels]``.
    """

    def __init__(
        self,
        conv: nn.Module,
        norm: nn.Module,
        act: nn.Module,
        skip: nn.Module,
        dropout: float = 0.0,
        *,
        post_norm: bool = False,
    ) -> None:
        super().__init__()
        self.conv, self.norm, self.act, self.skip = conv, norm, act, skip
        self.dropout = Dropout(dropout)
        self.pre_activation = bool(getattr(skip, "pre_activation", False))
        if post_norm and self.pre_activation:
            raise ValueError("post_norm cannot be combined with a pre-activation skip")
        self.post_norm = post_norm
        self.needs_x0 = bool(getattr(conv, "needs_x0", False))

    def _conv(
        self, x: Tensor, edge_index: Tensor | ChunkedGraph | TrimmedLayer, history: list[Tensor]
    ) -> Tensor:
        return apply_conv(self.conv, x, edge_index, history[0] if self.needs_x0 else None)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor | ChunkedGraph | TrimmedLayer,
        history: list[Tensor],
    ) -> Tensor:
        if isinstance(edge_index, TrimmedLayer):
            # the untrimmed layer's dropout mask (its leading rows); the skip reads the
            # output rows of every earlier state
            rows, keep = edge_index.num_rows, edge_index.num_out
            history = [t[:keep] for t in history]

            def drop(t: Tensor) -> Tensor:
                return self.dropout(t, rows)
        else:
            drop = self.dropout
        if self.pre_activation:
            h = self._conv(drop(self.act(self.norm(x))), edge_index, history)
        elif self.post_norm:
            h = self.act(self._conv(drop(x), edge_index, history))
            return self.norm(self.skip(h, history))
        else:
            h = self.act(self.norm(self._conv(drop(x), edge_index, history)))
        return self.skip(h, history)

    def reset_parameters(self) -> None:
        for module in (self.conv, self.norm, self.skip):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
