"""One hidden layer of a deep GNN, composed of injected parts."""

from __future__ import annotations

from torch import Tensor, nn

from fathom.nn.dropouts import Dropout

__all__ = ["GNNBlock"]


class GNNBlock(nn.Module):
    """``x_l = skip(act(norm(conv(dropout(x_{l-1})))), history)``.

    Args:
        conv: message-passing operator called as ``conv(x, edge_index)``.
        norm: normalisation module over the conv's output channels.
        act: activation module.
        skip: skip module called as ``skip(h, history)``.
        dropout: dropout probability on the block's input.
        same_width: whether input and output widths match; a skip that needs matching
            widths (``skip.needs_same_width``) is bypassed otherwise.

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
        same_width: bool = True,
    ) -> None:
        super().__init__()
        self.conv, self.norm, self.act, self.skip = conv, norm, act, skip
        self.dropout = Dropout(dropout)
        self.use_skip = same_width or not getattr(skip, "needs_same_width", False)

    def forward(self, x: Tensor, edge_index: Tensor, history: list[Tensor]) -> Tensor:
        h = self.act(self.norm(self.conv(self.dropout(x), edge_index)))
        return self.skip(h, history) if self.use_skip else h

    def reset_parameters(self) -> None:
        for module in (self.conv, self.norm):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
