"""The first layer's :math:`XW` on sparse input features (bag-of-words), on the CPU.

Planetoid's features are 0.9-1.3 % non-zero (Cora, CiteSeer). A dense ``X @ W`` there spends
almost all its time multiplying zeros: through a CSR copy of ``X`` the product and its weight
gradient are 5-12x faster on one CPU core (benchmarks/dgi_speed.py). The result is the same
product summed over the non-zero terms only, so it agrees with the dense one up to float
rounding (not bit for bit). Dense features (above :data:`SPARSE_INPUT_MAX_DENSITY`), GPUs and
inputs that are not plain 2-D tensors keep the dense product.
"""

from __future__ import annotations

import warnings
import weakref

import torch
from torch import Tensor

from fathom.nn.convs import GraphCachedGCNConv

__all__ = ["SPARSE_INPUT_MAX_DENSITY", "SparseInput", "SparseInputGCNConv"]

SPARSE_INPUT_MAX_DENSITY = 0.02
"""Largest fraction of non-zero input features for which :math:`XW` is a sparse-dense
product on CPU (measured crossover: about 4 %; PubMed's TF-IDF features, 10 %, stay dense)."""


class SparseInput:
    """A CSR copy of the last input features, kept while the input is unchanged.

    The copy is keyed on the tensor's identity and version (an in-place change of the
    features makes a new copy); ``None`` when the input is too dense, not on the CPU, not a
    strided 2-D tensor or needs a gradient itself (learned features). Holds no reference
    to the input itself.

    Args:
        max_density: largest fraction of non-zeros for which a CSR copy is made.
    """

    def __init__(self, max_density: float = SPARSE_INPUT_MAX_DENSITY) -> None:
        self.max_density = max_density
        self._source: tuple[weakref.ref[Tensor], int] | None = None
        self.csr: Tensor | None = None

    def of(self, x: Tensor) -> Tensor | None:
        """The CSR copy of ``x``, or ``None`` where the dense product is the one to use."""
        if x.device.type != "cpu" or x.layout != torch.strided or x.dim() != 2 or x.requires_grad:
            return None
        source = self._source
        if source is None or source[0]() is not x or source[1] != x._version:
            dense = int(torch.count_nonzero(x)) > self.max_density * x.numel()
            with warnings.catch_warnings():  # torch: "Sparse CSR tensor support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                self.csr = None if dense else x.to_sparse_csr()
            self._source = (weakref.ref(x), x._version)
        return self.csr

    def linear(self, x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        """:math:`X W^\\top + b` (``torch.nn.functional.linear``), through the CSR copy
        where there is one.

        Shapes:
            x: ``[N, in]``, weight: ``[out, in]``, bias: ``[out]`` -> ``[N, out]``.
        """
        csr = self.of(x)
        if csr is None:
            return torch.nn.functional.linear(x, weight, bias)
        out = torch.sparse.mm(csr, weight.t())
        return out if bias is None else out + bias


class SparseInputGCNConv(GraphCachedGCNConv):
    """:class:`~torch_geometric.nn.GCNConv` whose :math:`XW` runs through a CSR copy of
    sparse input features on the CPU (:class:`SparseInput`); the propagation is GCNConv's
    own (message passing over ``edge_index``), its ``gcn_norm`` computed once per graph
    (:class:`~fathom.nn.convs.GraphCachedGCNConv`).

    For a model's first layer on bag-of-words features. Same arguments, parameters and
    initialisation as GCNConv; dense features, GPUs and a weight with a lazy input size
    take the dense :math:`XW` (bit for bit GCNConv's).

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, num_edges]``
        -> ``[num_nodes, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, **kwargs: object) -> None:
        super().__init__(in_channels, out_channels, **kwargs)  # type: ignore[arg-type]
        self._sparse_input = SparseInput()

    def transform(self, x: Tensor) -> Tensor:
        """:math:`X\\Theta`, through the CSR copy of ``x`` where there is one."""
        if self.lin.in_channels <= 0:
            return self.lin(x)
        return self._sparse_input.linear(x, self.lin.weight, self.lin.bias)
