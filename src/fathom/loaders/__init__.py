"""Mini-batch loaders for large graphs, in plain torch behind PyG's sampler/loader interfaces.

PyG's compiled extras (pyg-lib, torch-sparse) are not required: :mod:`fathom.loaders.csr`
builds the target-grouped adjacency with torch ops and :mod:`fathom.loaders.neighbor`
samples GraphSAGE neighbourhoods for :class:`torch_geometric.loader.NodeLoader`;
:mod:`fathom.loaders.partition` gives Cluster-GCN batches of (METIS or random) partitions and
:mod:`fathom.loaders.saint` GraphSAINT random-walk batches with their normalisation.
"""

from fathom.loaders.csr import CSR, expand_segments, induced_subgraph, to_csr
from fathom.loaders.neighbor import (
    NeighborSampler,
    SampledSubgraph,
    neighbor_loader,
    sample_neighbors,
)
from fathom.loaders.partition import PartitionLoader, metis_partition, random_partition
from fathom.loaders.saint import GraphSAINTRandomWalkLoader, random_walk

__all__ = [
    "CSR",
    "GraphSAINTRandomWalkLoader",
    "NeighborSampler",
    "PartitionLoader",
    "SampledSubgraph",
    "expand_segments",
    "induced_subgraph",
    "metis_partition",
    "neighbor_loader",
    "random_partition",
    "random_walk",
    "sample_neighbors",
    "to_csr",
]
