r"""Graph-classification datasets: many small graphs, one label each.

Named datasets are the TU benchmarks (Morris et al., "TUDataset: A collection of benchmark
datasets for learning with graphs", GRL+ 2020) read with PyG's
:class:`~torch_geometric.datasets.TUDataset` through the same data-dir / cache machinery as
the node datasets (:mod:`fathom.data.datasets`): the raw ``<root>/TUDataset/<NAME>/raw/*.txt``
files are looked for under ``--data-dir``, then ``$FATHOM_DATA``, then the cache; they are
copied (and hashed, and checked against ``checksums.sha256`` where it knows them) into the
cache, and PyG's ``processed/`` folder is only ever written there; where they are nowhere,
PyG downloads them into the cache (on a machine with internet).

Node features follow the GIN paper (Xu et al., ICLR 2019, Sec. 7): the one-hot node labels
for the bioinformatics datasets (``use_node_attr=False``: PROTEINS' and ENZYMES' continuous
attributes are not used), and for the social dataset IMDB-BINARY, which has none, the one-hot
node degree up to the dataset's maximum degree (``OneHotDegree``).

The generator ``motifs`` needs no data (see :func:`motif_graphs`).

OGB's graph-property datasets (``ogbg-molhiv``) are read by :mod:`fathom.data.ogb_datasets`
and come as :class:`OfficialSplit`: the list of graphs carrying the official split, which
``task: graph`` uses instead of cross-validation.

Every graph is a PyG ``Data`` with ``x`` float32 ``[n, F]``, ``edge_index`` int64 ``[2, e]``
and ``y`` int64 ``[1]``; :func:`validate_graphs` rejects anything else with a one-line
:class:`~fathom.errors.DataError`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import NormalizeFeatures, OneHotDegree
from torch_geometric.utils import degree, to_undirected

from fathom.config import DataConfig
from fathom.data.datasets import DatasetSpec, open_pyg_dataset
from fathom.data.ogb_datasets import OGB_DATASETS, load_ogb_graphs, ogb_kind, ogb_meta
from fathom.errors import ConfigError, DataError
from fathom.registry import Registry

__all__ = [
    "GRAPH_DATASETS",
    "GRAPH_GENERATORS",
    "MOTIFS",
    "GraphDatasetSpec",
    "OfficialSplit",
    "describe_graph_dataset",
    "is_graph_dataset",
    "load_graph_dataset",
    "motif_graphs",
    "validate_graphs",
]


@dataclass(frozen=True)
class GraphDatasetSpec(DatasetSpec):
    """A :class:`~fathom.data.datasets.DatasetSpec` of a graph-classification dataset.

    ``num_nodes`` / ``num_edges`` are totals over all graphs (directed ``edge_index``
    entries); ``num_features`` is the width of the features fathom gives the nodes.

    Args:
        num_graphs: number of graphs.
        degree_features: the dataset has no node labels; use one-hot degrees as features.
    """

    num_graphs: int = 0
    degree_features: bool = False


GRAPH_DATASETS: Registry[GraphDatasetSpec] = Registry("graph dataset")

_TU_CITE = (
    "C. Morris, N. M. Kriege, F. Bause, K. Kersting, P. Mutzel, M. Neumann. TUDataset: A "
    "collection of benchmark datasets for learning with graphs. GRL+ workshop, ICML 2020"
)


def _tu(name: str, tu: str, files: tuple[str, ...], stats: tuple[int, ...], description: str,
        data: str, degree_features: bool = False) -> None:  # fmt: skip
    GRAPH_DATASETS.add(name, GraphDatasetSpec(
        name=name, pyg_class="TUDataset", pyg_kwargs={"name": tu}, root="TUDataset",
        subdir=f"TUDataset/{tu}", raw_files=tuple(f"{tu}_{f}.txt" for f in files),
        num_graphs=stats[0], num_nodes=stats[1], num_edges=stats[2], num_features=stats[3],
        num_classes=stats[4], split="folds", description=description,
        citation=f"{_TU_CITE}; data: {data}", degree_features=degree_features,
    ))  # fmt: skip


_BASE = ("A", "graph_indicator", "graph_labels")
# name, TU name, raw files, (graphs, nodes, directed edges, features, classes), description.
_tu("mutag", "MUTAG", (*_BASE, "node_labels", "edge_labels"), (188, 3371, 7442, 7, 2),
    "MUTAG: nitroaromatic compounds, mutagenic or not; one-hot atom types (7)",
    "A. K. Debnath et al. J. Med. Chem. 34(2), 1991")  # fmt: skip
_tu("proteins", "PROTEINS", (*_BASE, "node_labels", "node_attributes"),
    (1113, 43471, 162088, 3, 2),
    "PROTEINS: secondary-structure graphs, enzyme or not; one-hot element types (3)",
    "K. M. Borgwardt et al. Bioinformatics 21(Suppl 1), 2005")  # fmt: skip
_tu("enzymes", "ENZYMES", (*_BASE, "node_labels", "node_attributes"),
    (600, 19580, 74564, 3, 6),
    "ENZYMES: protein tertiary structures, 6 EC top-level classes; one-hot element types (3)",
    "K. M. Borgwardt et al. Bioinformatics 21(Suppl 1), 2005")  # fmt: skip
_tu("imdb-binary", "IMDB-BINARY", _BASE, (1000, 19773, 193062, 136, 2),
    "IMDB-BINARY: actor ego-networks, action or romance; one-hot degree features (136)",
    "P. Yanardag, S. V. N. Vishwanathan. Deep Graph Kernels. KDD 2015",
    degree_features=True)  # fmt: skip


GraphGenerator = Callable[..., list[Data]]
GRAPH_GENERATORS: Registry[GraphGenerator] = Registry("graph generator")
NODES_PER_GRAPH = 25
"""Average graph size of a generated graph-classification dataset when ``num_graphs`` is not
given: ``data.synthetic.num_nodes`` (the total) over this many nodes per graph."""


def is_graph_dataset(name: str) -> bool:
    """Whether ``name`` is a graph-classification dataset or generator (for ``task: graph``),
    an OGB graph-property dataset included."""
    return (
        name.lower() in GRAPH_DATASETS
        or name.lower() in GRAPH_GENERATORS
        or ogb_kind(name) == "graph"
    )


class OfficialSplit(list):  # type: ignore[type-arg]
    """A dataset's graphs (a ``list`` of ``Data``: whatever reads a list of graphs reads it)
    with its published split.

    Args:
        graphs: the graphs.
        split: ``train`` / ``valid`` / ``test`` -> int64 indices into ``graphs``.
        name: the dataset (an OGB name: its evaluator and metric).
    """

    def __init__(self, graphs: Sequence[Data], split: dict[str, torch.Tensor], name: str) -> None:
        super().__init__(graphs)
        self.split = split
        self.name = name

    def parts(self) -> tuple[list[Data], list[Data], list[Data]]:
        """The train, valid and test graphs."""
        return tuple(  # type: ignore[return-value]
            [self[i] for i in self.split[s].tolist()] for s in ("train", "valid", "test")
        )


# --------------------------------------------------------------------------------------------
# The ``motifs`` generator
# --------------------------------------------------------------------------------------------


def _cycle(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) for i in range(n)]


def _grid(rows: int, cols: int) -> list[tuple[int, int]]:
    edges = []
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            if c + 1 < cols:
                edges.append((i, i + 1))
            if r + 1 < rows:
                edges.append((i, i + cols))
    return edges


MOTIFS: dict[str, list[tuple[int, int]]] = {
    "house": [(0, 1), (1, 2), (2, 3), (3, 0), (0, 4), (1, 4)],
    "cycle6": _cycle(6),
    "clique4": [(i, j) for i in range(4) for j in range(i + 1, 4)],
    "grid3x3": _grid(3, 3),
    "wheel6": [*((0, i) for i in range(1, 6)), *((i, i % 5 + 1) for i in range(1, 6))],
    "prism": [*_cycle(3), *((a + 3, b + 3) for a, b in _cycle(3)), (0, 3), (1, 4), (2, 5)],
    "bowtie": [(0, 1), (1, 2), (2, 0), (0, 3), (3, 4), (4, 0)],
}
"""Motif edge lists (undirected pairs on nodes ``0 … k-1``); class ``c`` plants ``MOTIFS``'s
``c``-th entry."""


@GRAPH_GENERATORS.register("motifs")
def motif_graphs(
    num_graphs: int = 400,
    num_classes: int = 3,
    feature_dim: int = 32,
    num_nodes: int = 30,
    seed: int = 0,
) -> list[Data]:
    r"""Seeded synthetic graph classification by structure alone: which motif is planted?

    Graph :math:`g` has class :math:`y_g` (balanced: graph :math:`g` gets ``g % num_classes``,
    then the list is shuffled) and :math:`n_g \sim \mathrm{Uniform}\{\lceil 0.8\,n\rceil, …,
    \lfloor 1.2\,n\rfloor\}` nodes (``n = num_nodes``, at least the motifs' size plus one):
    :math:`k \in \{1, 2\}` copies of motif :math:`y_g` (house, 6-cycle, 4-clique, 3x3 grid,
    6-wheel, prism, bowtie, in that order; see :data:`MOTIFS`), each attached by one edge to a
    random node of a random recursive tree (node :math:`i` joins a uniform earlier node) on the
    remaining nodes. The tree has no cycle, so every cycle belongs to a motif.

    Features carry no class information: every node gets a one-hot "atom type" drawn
    uniformly from ``feature_dim`` types, independently of everything else, so the mean (or
    any pooled statistic) of the features has the same distribution in every class and an
    MLP on pooled features is at chance. The node count's distribution does not depend on
    the class either. A GIN separates the classes from the degree structure around the
    motifs (all are 1-WL distinguishable from a tree: each has nodes of degree >= 3 whose
    neighbours close cycles).

    All randomness comes from one ``numpy.random.Generator(seed)``.

    Args:
        num_graphs: number of graphs (>= num_classes).
        num_classes: number of classes, 2 … 7.
        feature_dim: number of atom types (feature width), >= 1.
        num_nodes: average nodes per graph, >= 2 (raised to a motif-dependent minimum).
        seed: random seed.

    Returns:
        ``num_graphs`` graphs with ``x`` ``[n_g, feature_dim]`` float32, an undirected
        ``edge_index`` (both directions, no self-loops) and ``y`` ``[1]``.
    """
    if not 2 <= num_classes <= len(MOTIFS):
        raise ConfigError(
            f"data.synthetic.num_classes must be in 2..{len(MOTIFS)} for 'motifs' (one motif "
            f"per class), got {num_classes!r}"
        )
    if num_graphs < num_classes:
        raise ConfigError(
            f"data.synthetic.num_graphs must be >= num_classes ({num_classes}) for 'motifs', "
            f"got {num_graphs!r}"
        )
    if feature_dim < 1:
        raise ConfigError(f"data.synthetic.feature_dim must be >= 1, got {feature_dim!r}")
    if num_nodes < 2:
        raise ConfigError(f"data.synthetic.num_nodes must be >= 2, got {num_nodes!r}")
    rng = np.random.default_rng(seed)
    motifs = list(MOTIFS.values())[:num_classes]
    # Same node-count range for every class, so the size does not reveal the motif.
    biggest = max(max(max(e) for e in m) + 1 for m in motifs)
    low = max(int(np.ceil(0.8 * num_nodes)), 2 * biggest + 1)
    high = max(int(np.floor(1.2 * num_nodes)), low)
    labels = np.arange(num_graphs) % num_classes
    rng.shuffle(labels)
    graphs = []
    for label in labels:
        motif = motifs[int(label)]
        size = max(max(e) for e in motif) + 1
        n = int(rng.integers(low, high + 1))
        copies = int(rng.integers(1, 3))
        tree_n = n - copies * size
        src = [int(rng.integers(0, i)) for i in range(1, tree_n)]
        edges = list(zip(src, range(1, tree_n), strict=True))
        offset = tree_n
        for _ in range(copies):
            edges += [(a + offset, b + offset) for a, b in motif]
            edges.append((int(rng.integers(0, tree_n)), offset + int(rng.integers(0, size))))
            offset += size
        # Relabel nodes randomly so the motif is not always at the end of the node list.
        perm = torch.from_numpy(rng.permutation(n))
        pairs = torch.tensor(edges, dtype=torch.long).t()
        edge_index = to_undirected(perm[pairs], num_nodes=n)
        types = torch.from_numpy(rng.integers(0, feature_dim, size=n))
        x = torch.nn.functional.one_hot(types, feature_dim).to(torch.float32)
        graphs.append(Data(x=x, edge_index=edge_index, y=torch.tensor([int(label)])))
    return graphs


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _load_tu(spec: GraphDatasetSpec, data_dir: str | None, verify: bool = True) -> list[Data]:
    # same search / checksum / cache / download path as the node datasets
    dataset = open_pyg_dataset(spec, data_dir, verify=verify)
    graphs = [dataset[i] for i in range(len(dataset))]
    if spec.degree_features:
        max_degree = max(
            (int(degree(g.edge_index[0], g.num_nodes).max()) for g in graphs if g.num_edges),
            default=0,
        )
        one_hot = OneHotDegree(max_degree)
        graphs = [one_hot(g) for g in graphs]
    out = []
    for g in graphs:
        # Keep only what the task reads (TU edge labels are not used by the GIN protocol).
        y = g.y.view(-1)[:1].long()
        out.append(Data(x=g.x.to(torch.float32), edge_index=g.edge_index.long(), y=y))
    return out


def load_graph_dataset(cfg: DataConfig, seed: int = 0) -> list[Data]:
    """Load (or generate) the graph-classification dataset ``cfg.name`` as a list of graphs.

    Named TU datasets are read as the module docstring says (``cfg.data_dir`` first); the
    generator ``motifs`` is built from ``cfg.synthetic`` (``num_nodes`` nodes in all, in
    ``num_graphs`` graphs — by default one per :data:`NODES_PER_GRAPH` nodes — of
    ``num_classes`` classes with ``feature_dim`` features) and ``seed``.
    ``cfg.to_undirected`` symmetrises every graph (TU graphs already are), else
    ``cfg.reverse_edges`` reverses their edges;
    ``cfg.normalize_features=True`` row-normalises features (``None``, the default, leaves
    them alone here: they are one-hot); ``cfg.rewire`` rewires every graph with ``seed``.
    ``cfg.split`` and ``cfg.inductive`` do not apply (graph classification is
    cross-validated).

    An OGB graph dataset (``ogbg-molhiv``, :func:`~fathom.data.ogb_datasets.load_ogb_graphs`)
    is returned as an :class:`OfficialSplit`; its graphs, published with both directions of
    every bond, are not re-symmetrised.

    Raises:
        ConfigError: ``cfg.name`` is not a graph dataset or generator, or bad generator
            parameters.
        DataNotFoundError: the raw files are nowhere.
        DataError: checksum mismatch, processing failure or an invalid graph
            (:func:`validate_graphs`).
    """
    name = cfg.name.lower()
    split = None
    if ogb_kind(cfg.name) == "graph":
        graphs, split = load_ogb_graphs(cfg.name, cfg.data_dir)
    elif name in GRAPH_DATASETS:
        graphs = _load_tu(GRAPH_DATASETS.get(name), cfg.data_dir)
    elif name in GRAPH_GENERATORS:
        s = cfg.synthetic
        num_graphs = s.num_graphs or max(s.num_classes, s.num_nodes // NODES_PER_GRAPH)
        graphs = GRAPH_GENERATORS.get(name)(
            num_graphs=num_graphs,
            num_classes=s.num_classes,
            feature_dim=s.feature_dim,
            num_nodes=max(2, round(s.num_nodes / num_graphs)),  # the generator's per-graph mean
            seed=seed,
        )
    else:
        ogb = [n for n in OGB_DATASETS.names() if ogb_kind(n) == "graph"]
        choices = ", ".join([*GRAPH_DATASETS.names(), *ogb, *GRAPH_GENERATORS.names()])
        raise ConfigError(
            f"unknown data.name (--dataset) {cfg.name!r} for task 'graph'; choose one of: {choices}"
        )
    published_undirected = split is not None and ogb_meta(cfg.name)["add_inverse_edge"] == "True"
    if cfg.to_undirected and not published_undirected:
        for g in graphs:
            g.edge_index = to_undirected(g.edge_index, num_nodes=g.num_nodes)
    elif cfg.reverse_edges:
        for g in graphs:
            g.edge_index = g.edge_index.flip(0)
    if cfg.rewire != "none":
        from fathom.transforms.rewiring import build_rewiring

        rewire = build_rewiring(cfg.rewire, iterations=cfg.rewire_iterations, seed=seed)
        graphs = [rewire(g) for g in graphs]
    if cfg.normalize_features:
        graphs = [NormalizeFeatures()(g) for g in graphs]
    validate_graphs(graphs)
    return graphs if split is None else OfficialSplit(graphs, split, cfg.name)


# --------------------------------------------------------------------------------------------
# Validation and description
# --------------------------------------------------------------------------------------------


def validate_graphs(graphs: Sequence[Data]) -> None:
    """Raise a one-line :class:`~fathom.errors.DataError` unless ``graphs`` is a non-empty
    list of graphs with float ``x`` ``[n, F]`` (same ``F`` everywhere, all finite), integer
    ``edge_index`` ``[2, e]`` with entries in ``[0, n)``, and an integer label ``y`` of one
    element (``>= 0``, and below the number of graphs: no more classes than graphs), and at
    least one feature column, naming the first offending graph by index.
    """
    if len(graphs) == 0:
        raise DataError("graph dataset is empty: need at least one graph")
    width = None
    for i, g in enumerate(graphs):
        x, ei, y = getattr(g, "x", None), getattr(g, "edge_index", None), getattr(g, "y", None)
        if x is None or ei is None or y is None:
            missing = [k for k, v in (("x", x), ("edge_index", ei), ("y", y)) if v is None]
            raise DataError(f"graph {i} has no {', '.join(missing)}")
        if x.dim() != 2 or not x.dtype.is_floating_point:
            raise DataError(f"graph {i}: x must be float [n, F], got {x.dtype} {list(x.shape)}")
        if width is None:
            width = x.size(1)
        if x.size(1) != width:
            raise DataError(f"graph {i}: x has {x.size(1)} features, graph 0 has {width}")
        if not bool(torch.isfinite(x).all()):
            raise DataError(f"graph {i}: x has non-finite values (NaN or inf)")
        if ei.dim() != 2 or ei.size(0) != 2 or ei.dtype.is_floating_point:
            raise DataError(
                f"graph {i}: edge_index must be integer [2, e], got {ei.dtype} {list(ei.shape)}"
            )
        n = x.size(0)
        if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= n):
            bad = int(ei.min()) if int(ei.min()) < 0 else int(ei.max())
            raise DataError(f"graph {i}: edge_index holds node {bad}, outside [0, {n})")
        if y.numel() != 1 or y.dtype.is_floating_point or int(y.view(-1)[0]) < 0:
            raise DataError(
                f"graph {i}: y must be one non-negative integer label, got {y.tolist()}"
            )
        if int(y.view(-1)[0]) >= len(graphs):
            # Checked before anything sizes a classifier head by max(y) + 1.
            raise DataError(
                f"graph {i}: label {int(y.view(-1)[0])} means {int(y.view(-1)[0]) + 1} "
                f"classes among only {len(graphs)} graphs; labels must be 0..C-1"
            )
    if width == 0:
        raise DataError("every graph's x has zero feature columns; give at least one feature")


def describe_graph_dataset(graphs: Sequence[Data]) -> dict[str, Any]:
    """Summary of a graph-classification dataset: ``num_graphs``, ``num_classes`` (``max(y) +
    1``), ``num_features``, ``avg_nodes``, ``avg_edges`` (directed ``edge_index`` entries per
    graph), ``class_counts`` (``[count of class 0, 1, …]``)."""
    validate_graphs(graphs)
    labels = [int(g.y.view(-1)[0]) for g in graphs]
    counts = Counter(labels)
    num_classes = max(labels) + 1
    return {
        "num_graphs": len(graphs),
        "num_classes": num_classes,
        "num_features": int(graphs[0].x.size(1)),
        "avg_nodes": float(np.mean([g.num_nodes for g in graphs])),
        "avg_edges": float(np.mean([g.num_edges for g in graphs])),
        "class_counts": [counts.get(c, 0) for c in range(num_classes)],
    }
