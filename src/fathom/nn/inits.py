"""Parameter initialisations a model can be given after it is built (``model.init``).

``default`` keeps each layer's own (PyG's Glorot weights and zero biases for GCN layers).
``uniform-out`` re-draws every parameter of every GCN and GCNII layer uniformly in
:math:`\\pm 1/\\sqrt{d_{out}}`, weights *and* biases: Kipf's original ``pygcn`` layer,
DropEdge's ``GraphConvolutionBS`` (DropEdge/DropEdge ``src/layers.py``, whose optional
self-feature weight of ``--withloop`` is drawn the same way) and GCNII's ``GraphConvolution``
(chennnM/GCNII ``model.py``). Its weights have a third of Glorot's variance at a square layer,
so a deep plain stack starts with smaller signals. Other layers (linear encoders and heads,
norms) keep their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch_geometric.nn import GCN2Conv, GCNConv

from fathom.nn.propagation import DropEdgeGCNConv
from fathom.registry import Registry

__all__ = ["INITS", "apply_init", "gcn_layers"]

Init = Callable[[nn.Module], int]
INITS: Registry[Init] = Registry("parameter initialisation")


_LAYERS = (GCNConv, DropEdgeGCNConv, GCN2Conv)


def gcn_layers(model: nn.Module) -> list[nn.Module]:
    """The GCN and GCNII layers of ``model`` (PyG's :class:`~torch_geometric.nn.GCNConv`,
    :class:`~torch_geometric.nn.GCN2Conv` and their subclasses,
    :class:`~fathom.nn.propagation.DropEdgeGCNConv`), in module order."""
    return [m for m in model.modules() if isinstance(m, _LAYERS)]


def _out_channels(layer: nn.Module) -> int:
    return int(layer.channels if isinstance(layer, GCN2Conv) else layer.out_channels)


@INITS.register("default")
def _default(model: nn.Module) -> int:
    """Each layer's own initialisation (nothing is re-drawn)."""
    return 0


@INITS.register("uniform-out")
def _uniform_out(model: nn.Module) -> int:
    """Every parameter of every GCN and GCNII layer uniform in ``±1/sqrt(out_channels)``."""
    layers = gcn_layers(model)
    with torch.no_grad():
        for layer in layers:
            bound = 1.0 / math.sqrt(_out_channels(layer))
            for param in layer.parameters():
                param.uniform_(-bound, bound)
    return len(layers)


def apply_init(model: nn.Module, kind: str) -> int:
    """Re-initialise ``model`` in place as ``kind`` (a name of :data:`INITS`) from the
    current torch random state; returns how many layers were re-drawn."""
    return INITS.get(kind)(model)
