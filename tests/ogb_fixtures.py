"""Writers of tiny datasets in OGB's exact on-disk layout, shared by the tests.

Headerless gzip CSVs with OGB's column conventions under ``<root>/<dir>/raw`` and
``<root>/<dir>/split/<split>/`` (``torch.save``'d dicts of NumPy arrays for ogbl-collab's
split), as the ``ogb`` package downloads and unpacks them; each writer returns what it wrote.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "ATOM_DIMS",
    "OGB_WRITERS",
    "write_arxiv",
    "write_collab",
    "write_csv",
    "write_molhiv",
    "write_ogb_root",
    "write_products",
    "write_proteins",
]

ATOM_DIMS = [119, 5, 12, 12, 10, 6, 6, 2, 2]  # ogb.utils.features.get_atom_feature_dims()


def write_csv(path: Path, rows: np.ndarray) -> None:
    """A headerless gzip CSV, one row per line, as OGB publishes them (ints as ints)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.asarray(rows)
    if rows.ndim == 1:
        rows = rows[:, None]
    fmt = "%d" if rows.dtype.kind in "iub" else "%.6f"
    with gzip.open(path, "wt") as f:
        for row in rows:
            f.write(",".join(fmt % v for v in row) + "\n")


def _undirected_edges(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """``m`` distinct undirected pairs (each once, no self-loops) as ``[m, 2]``."""
    pairs = {(0, 1)}
    while len(pairs) < m:
        a, b = sorted(int(v) for v in rng.choice(n, 2, replace=False))
        pairs.add((a, b))
    return np.array(sorted(pairs), dtype=np.int64)


def _write_split(folder: Path, split: str, parts: dict[str, np.ndarray]) -> None:
    for name, idx in parts.items():
        write_csv(folder / "split" / split / f"{name}.csv.gz", np.asarray(idx, dtype=np.int64))


def _node_split(n: int) -> dict[str, np.ndarray]:
    idx = np.arange(n)
    return {"train": idx[: n // 2], "valid": idx[n // 2 : 3 * n // 4], "test": idx[3 * n // 4 :]}


def write_arxiv(root: Path, n: int = 16, feat: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """ogbn_arxiv: directed edges, float features, labels, node_year, split/time."""
    rng = np.random.default_rng(seed)
    folder = root / "ogbn_arxiv"
    edges = _undirected_edges(rng, n, 2 * n)
    x = rng.normal(size=(n, feat)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    write_csv(folder / "raw" / "edge.csv.gz", edges)
    write_csv(folder / "raw" / "node-feat.csv.gz", x)
    write_csv(folder / "raw" / "node-label.csv.gz", y)
    write_csv(folder / "raw" / "num-node-list.csv.gz", np.array([n]))
    write_csv(folder / "raw" / "num-edge-list.csv.gz", np.array([len(edges)]))
    write_csv(folder / "raw" / "node_year.csv.gz", 2000 + np.arange(n))
    split = _node_split(n)
    _write_split(folder, "time", split)
    return {"edges": edges, "x": x, "y": y, **split}


def write_products(root: Path, n: int = 14, feat: int = 4, seed: int = 1) -> dict[str, np.ndarray]:
    """ogbn_products: undirected (inverse edges added by ogb), split/sales_ranking."""
    rng = np.random.default_rng(seed)
    folder = root / "ogbn_products"
    edges = _undirected_edges(rng, n, 2 * n)
    x = rng.normal(size=(n, feat)).astype(np.float32)
    y = rng.integers(0, 4, size=n)
    write_csv(folder / "raw" / "edge.csv.gz", edges)
    write_csv(folder / "raw" / "node-feat.csv.gz", x)
    write_csv(folder / "raw" / "node-label.csv.gz", y)
    write_csv(folder / "raw" / "num-node-list.csv.gz", np.array([n]))
    write_csv(folder / "raw" / "num-edge-list.csv.gz", np.array([len(edges)]))
    split = {"train": np.arange(3), "valid": np.arange(3, 5), "test": np.arange(5, n)}
    _write_split(folder, "sales_ranking", split)
    return {"edges": edges, "x": x, "y": y, **split}


def write_proteins(root: Path, n: int = 24, seed: int = 2) -> dict[str, np.ndarray]:
    """ogbn_proteins: 8-dim edge features, no node features, 112 binary tasks, species."""
    rng = np.random.default_rng(seed)
    folder = root / "ogbn_proteins"
    edges = _undirected_edges(rng, n, 3 * n)
    edge_feat = rng.integers(1, 1000, size=(len(edges), 8)) / 1000.0
    labels = rng.integers(0, 2, size=(n, 112))
    split = _node_split(n)
    for idx in split.values():  # both classes of every task in every split
        labels[idx[0]], labels[idx[1]] = 0, 1
    write_csv(folder / "raw" / "edge.csv.gz", edges)
    write_csv(folder / "raw" / "edge-feat.csv.gz", edge_feat)
    write_csv(folder / "raw" / "node-label.csv.gz", labels)
    write_csv(folder / "raw" / "num-node-list.csv.gz", np.array([n]))
    write_csv(folder / "raw" / "num-edge-list.csv.gz", np.array([len(edges)]))
    write_csv(folder / "raw" / "node_species.csv.gz", np.full(n, 3702))
    _write_split(folder, "species", split)
    return {"edges": edges, "edge_feat": edge_feat, "y": labels, **split}


def write_molhiv(root: Path, graphs: int = 24, seed: int = 3) -> dict[str, np.ndarray]:
    """ogbg_molhiv: per-graph local edges, 9 categorical atom features, 3 bond features,
    one binary label per graph, split/scaffold."""
    rng = np.random.default_rng(seed)
    folder = root / "ogbg_molhiv"
    sizes = rng.integers(3, 7, size=graphs)
    edges, counts, atoms = [], [], []
    for n in sizes:
        e = _undirected_edges(rng, int(n), int(n) - 1)
        edges.append(e)
        counts.append(len(e))
        atoms.append(np.stack([rng.integers(0, d, size=n) for d in ATOM_DIMS], axis=1))
    labels = np.arange(graphs) % 2
    write_csv(folder / "raw" / "edge.csv.gz", np.concatenate(edges))
    write_csv(folder / "raw" / "edge-feat.csv.gz", rng.integers(0, 3, size=(sum(counts), 3)))
    write_csv(folder / "raw" / "node-feat.csv.gz", np.concatenate(atoms))
    write_csv(folder / "raw" / "num-node-list.csv.gz", sizes)
    write_csv(folder / "raw" / "num-edge-list.csv.gz", np.array(counts))
    write_csv(folder / "raw" / "graph-label.csv.gz", labels)
    idx = rng.permutation(graphs)
    split = {"train": np.sort(idx[:14]), "valid": np.sort(idx[14:19]), "test": np.sort(idx[19:])}
    for part in split.values():  # both classes in every split
        assert len(set(labels[part])) == 2
    _write_split(folder, "scaffold", split)
    return {"sizes": sizes, "edges": edges, "counts": np.array(counts), "atoms": atoms,
            "y": labels, **split}  # fmt: skip


def write_collab(
    root: Path, n: int = 20, seed: int = 4, num_neg: int = 30
) -> dict[str, np.ndarray]:
    """ogbl_collab: the training graph with edge_weight / edge_year, and split/time/*.pt,
    torch-saved dicts of NumPy arrays (``edge`` [E, 2], ``weight``, ``year``, ``edge_neg``)."""
    rng = np.random.default_rng(seed)
    folder = root / "ogbl_collab"
    pairs = _undirected_edges(rng, n, 3 * n)
    train, valid, test = pairs[: 2 * n], pairs[2 * n : 2 * n + 10], pairs[2 * n + 10 :]
    weight = rng.integers(1, 4, size=len(train))
    year = rng.integers(1990, 2018, size=len(train))
    write_csv(folder / "raw" / "edge.csv.gz", train)
    write_csv(folder / "raw" / "node-feat.csv.gz", rng.normal(size=(n, 5)).astype(np.float32))
    write_csv(folder / "raw" / "num-node-list.csv.gz", np.array([n]))
    write_csv(folder / "raw" / "num-edge-list.csv.gz", np.array([len(train)]))
    write_csv(folder / "raw" / "edge_weight.csv.gz", weight)
    write_csv(folder / "raw" / "edge_year.csv.gz", year)
    split_dir = folder / "split" / "time"
    split_dir.mkdir(parents=True, exist_ok=True)
    out = {"train": train, "valid": valid, "test": test, "weight": weight, "year": year}
    torch.save({"edge": train, "weight": weight.astype(np.float64), "year": year},
               split_dir / "train.pt")  # fmt: skip
    for name, edges in (("valid", valid), ("test", test)):
        neg = rng.integers(0, n, size=(num_neg, 2))
        out[f"{name}_neg"] = neg
        torch.save(
            {"edge": edges, "weight": np.ones(len(edges)), "year": np.full(len(edges), 2018),
             "edge_neg": neg},
            split_dir / f"{name}.pt",
        )  # fmt: skip
    return out


OGB_WRITERS = {
    "ogbn-arxiv": write_arxiv,
    "ogbn-products": write_products,
    "ogbn-proteins": write_proteins,
    "ogbg-molhiv": write_molhiv,
    "ogbl-collab": write_collab,
}
"""The writer of each OGB dataset fathom reads, by name."""


def write_ogb_root(root: Path) -> Path:
    """All five datasets in OGB's layout under ``root`` (returned)."""
    for write in OGB_WRITERS.values():
        write(root)
    return root
