"""Tests of fathom.loaders.csr."""

from __future__ import annotations

import pytest
import torch

from fathom.errors import DataError
from fathom.loaders.csr import CSR, expand_segments, induced_subgraph, to_csr

# Edges (source -> target), deliberately not sorted by target; node 4 has no in-edge and
# node 5 no edge at all.
EDGES = torch.tensor(
    [
        [1, 0, 2, 3, 0, 2, 1],
        [0, 1, 0, 0, 3, 1, 2],
    ]
)


def test_to_csr_exact_layout() -> None:
    csr = to_csr(EDGES, 6)
    # Target 0 <- 1, 2, 3 (edges 0, 2, 3); 1 <- 0, 2 (edges 1, 5); 2 <- 1 (edge 6);
    # 3 <- 0 (edge 4); 4, 5 <- nothing. Within a row, original edge order (stable sort).
    assert csr.rowptr.tolist() == [0, 3, 5, 6, 7, 7, 7]
    assert csr.col.tolist() == [1, 2, 3, 0, 2, 1, 0]
    assert csr.perm is not None
    assert csr.perm.tolist() == [0, 2, 3, 1, 5, 6, 4]
    assert csr.num_nodes == 6
    assert csr.num_edges == 7
    assert csr.degree().tolist() == [3, 2, 1, 1, 0, 0]


def test_perm_maps_back_to_the_edges() -> None:
    g = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, 50, (2, 400), generator=g)
    csr = to_csr(edge_index, 50)
    assert csr.perm is not None
    targets = torch.repeat_interleave(torch.arange(50), csr.degree())
    assert torch.equal(edge_index[0, csr.perm], csr.col)
    assert torch.equal(edge_index[1, csr.perm], targets)
    assert torch.equal(torch.sort(csr.perm).values, torch.arange(400))
    assert torch.equal(csr.edge_ids(torch.arange(400)), csr.perm)


def test_to_csr_empty_graph_and_device_copy() -> None:
    csr = to_csr(torch.empty(2, 0, dtype=torch.long), 3)
    assert csr.rowptr.tolist() == [0, 0, 0, 0]
    assert csr.col.numel() == 0
    assert csr.to("cpu") is csr


@pytest.mark.parametrize(
    ("edge_index", "num_nodes"),
    [
        (torch.tensor([[0, 1, 2]]), 3),  # not [2, E]
        (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), 2),  # floats
        (torch.tensor([[0, 3], [1, 0]]), 3),  # id >= num_nodes
        (torch.tensor([[0, -1], [1, 0]]), 3),  # negative id
    ],
)
def test_to_csr_refuses_malformed_edge_index(edge_index: torch.Tensor, num_nodes: int) -> None:
    with pytest.raises(DataError, match="edge_index"):
        to_csr(edge_index, num_nodes)


def test_expand_segments() -> None:
    pos, seg, rank = expand_segments(torch.tensor([5, 0, 9]), torch.tensor([2, 0, 3]))
    assert pos.tolist() == [5, 6, 9, 10, 11]
    assert seg.tolist() == [0, 0, 2, 2, 2]
    assert rank.tolist() == [0, 1, 0, 1, 2]


def _naive_induced(edge_index: torch.Tensor, nodes: list[int]) -> tuple[list, list]:
    local = {v: k for k, v in enumerate(nodes)}
    pairs, ids = [], []
    for e, (s, t) in enumerate(edge_index.t().tolist()):
        if s in local and t in local:
            pairs.append((local[s], local[t]))
            ids.append(e)
    return pairs, ids


@pytest.mark.parametrize("as_csr", [True, False])
def test_induced_subgraph_matches_naive(as_csr: bool) -> None:
    g = torch.Generator().manual_seed(1)
    edge_index = torch.randint(0, 40, (2, 300), generator=g)
    nodes = torch.randperm(40, generator=g)[:15]
    graph = to_csr(edge_index, 40) if as_csr else edge_index
    ei, ids = induced_subgraph(graph, nodes, num_nodes=40)
    pairs, naive_ids = _naive_induced(edge_index, nodes.tolist())
    assert ids.tolist() == naive_ids
    assert [tuple(p) for p in ei.t().tolist()] == pairs


def test_induced_subgraph_refuses_repeated_nodes() -> None:
    with pytest.raises(DataError, match="distinct"):
        induced_subgraph(to_csr(EDGES, 6), torch.tensor([0, 1, 0]))
    with pytest.raises(DataError, match="nodes"):
        induced_subgraph(EDGES, torch.tensor([0, 9]), num_nodes=6)


def test_csr_is_frozen() -> None:
    csr = to_csr(EDGES, 6)
    assert isinstance(csr, CSR)
    with pytest.raises(AttributeError):
        csr.num_nodes = 7  # type: ignore[misc]
