r"""Classify each graph of a batch by its root node: the Tree-NeighborsMatch model.

Alon & Yahav, `"On the Bottleneck of Graph Neural Networks and its Practical Implications"
<https://arxiv.org/abs/2006.05205>`_ (ICLR 2021), official code ``tech-srl/bottleneck``
(``models/graph_model.py``): node features are integer symbols (a key and a value), embedded
and summed; a stack of message-passing blocks; the logits are a bias-free linear map of each
root's final state.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["RootClassifier"]


class RootClassifier(nn.Module):
    r"""``logits = W gnn(sum_c E_c(x[:, c]))[root_index]``.

    Args:
        embeddings: one ``nn.Embedding`` per integer feature column, all of the stack's
            input width.
        gnn: the node stack (a :class:`~fathom.models.deep_gnn.DeepGNN` without a head),
            called as ``gnn(h, edge_index)``.
        classifier: maps a root's state to logits.

    Shapes:
        x: ``[N, columns]`` int64, edge_index: ``[2, E]``, root_index: ``[B]`` ->
        ``[B, num_classes]``.
    """

    def __init__(
        self, embeddings: Sequence[nn.Embedding], gnn: nn.Module, classifier: nn.Module
    ) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(embeddings)
        self.gnn = gnn
        self.classifier = classifier

    def embed(self, x: Tensor) -> Tensor:
        """The summed embeddings of each node's symbols (``[N, hidden]``)."""
        h = self.embeddings[0](x[:, 0])
        for column, embedding in enumerate(self.embeddings[1:], start=1):
            h = h + embedding(x[:, column])
        return h

    def forward(self, x: Tensor, edge_index: Tensor, root_index: Tensor) -> Tensor:
        return self.classifier(self.gnn(self.embed(x), edge_index)[root_index])
