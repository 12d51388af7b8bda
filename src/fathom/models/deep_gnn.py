"""The deep GNN every fathom node model is built from."""

from __future__ import annotations

from torch import Tensor, nn

from fathom.nn.block import GNNBlock
from fathom.nn.dropouts import Dropout

__all__ = ["DeepGNN"]


class DeepGNN(nn.Module):
    """``encoder -> blocks -> head``: a stack of :class:`~fathom.nn.block.GNNBlock` between an
    optional input encoder and an output head.

    With ``encoder=None`` the first block's conv maps input features to the hidden width, and
    with a conv ``head`` the last message-passing layer maps to the output classes, so a
    2-layer GCN is exactly Kipf & Welling's model (and PyG's ``GCN(in, hidden, 2, out)``).

    Args:
        blocks: the hidden layers, applied in order.
        head: maps the last hidden representation to outputs; either a message-passing
            module called as ``head(x, edge_index)`` (``head_is_conv=True``) or a plain
            module called as ``head(x)``.
        encoder: optional module applied to the input features first (``encoder(x)``).
        dropout: dropout probability on the head's input and on the encoder's input.
        head_is_conv: whether ``head`` takes ``edge_index``.
        encoder_act: activation after the encoder.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]`` ->
        ``[num_nodes, out_channels]``.
    """

    def __init__(
        self,
        blocks: list[GNNBlock],
        head: nn.Module,
        *,
        encoder: nn.Module | None = None,
        dropout: float = 0.0,
        head_is_conv: bool = True,
        encoder_act: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoder_act = encoder_act if encoder_act is not None else nn.Identity()
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        self.head_is_conv = head_is_conv
        self.dropout = Dropout(dropout)

    @property
    def num_layers(self) -> int:
        """Number of message-passing layers (blocks, plus the head when it is a conv)."""
        return len(self.blocks) + int(self.head_is_conv)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        if self.encoder is not None:
            x = self.encoder_act(self.encoder(self.dropout(x)))
        history = [x]
        for block in self.blocks:
            x = block(x, edge_index, history)
            history.append(x)
        x = self.dropout(x)
        return self.head(x, edge_index) if self.head_is_conv else self.head(x)

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
