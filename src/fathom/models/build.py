"""Turn a :class:`~fathom.config.ModelConfig` into a model: the one place names become modules."""

from __future__ import annotations

from torch import nn

from fathom.config import ModelConfig
from fathom.models.deep_gnn import DeepGNN
from fathom.nn.activations import build_activation
from fathom.nn.block import GNNBlock
from fathom.nn.convs import build_conv
from fathom.nn.norms import build_norm
from fathom.nn.skips import build_skip
from fathom.registry import Registry

__all__ = ["ENCODERS", "HEADS", "build_model"]

# Encoder / head kinds: kept as registries so validation and error messages list choices.
ENCODERS: Registry[str] = Registry("encoder")
ENCODERS.add("none", "none")
ENCODERS.add("linear", "linear")
HEADS: Registry[str] = Registry("head")
HEADS.add("conv", "conv")
HEADS.add("linear", "linear")


def build_model(cfg: ModelConfig, in_channels: int, out_channels: int) -> DeepGNN:
    """Build the :class:`DeepGNN` described by ``cfg``.

    ``cfg.depth`` counts message-passing layers: with a conv head there are ``depth - 1``
    hidden blocks and the conv head; with a linear head, ``depth`` blocks.
    """
    encoder_is_linear = ENCODERS.get(cfg.encoder) == "linear"
    head_is_conv = HEADS.get(cfg.head) == "conv"
    conv_options = {
        "heads": cfg.heads,
        "out_heads": cfg.out_heads,
        "attn_dropout": cfg.attn_dropout,
    }

    encoder = nn.Linear(in_channels, cfg.hidden) if encoder_is_linear else None
    width = cfg.hidden if encoder is not None else in_channels
    num_blocks = cfg.depth - 1 if head_is_conv else cfg.depth
    blocks = []
    for _ in range(num_blocks):
        conv = build_conv(cfg.conv, width, cfg.hidden, **conv_options)
        blocks.append(
            GNNBlock(
                conv,
                build_norm(cfg.norm, cfg.hidden),
                build_activation(cfg.act),
                build_skip(cfg.skip),
                dropout=cfg.dropout,
                same_width=width == cfg.hidden,
            )
        )
        width = cfg.hidden
    if head_is_conv:
        head = build_conv(cfg.conv, width, out_channels, final=True, **conv_options)
    else:
        head = nn.Linear(width, out_channels)
    return DeepGNN(
        blocks,
        head,
        encoder=encoder,
        dropout=cfg.dropout,
        head_is_conv=head_is_conv,
        encoder_act=build_activation(cfg.act) if encoder is not None else None,
    )
