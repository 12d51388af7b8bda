r"""OGB datasets read from OGB's own on-disk layout, with their official splits.

Datasets (fathom's names are OGB's): ``ogbn-arxiv``, ``ogbn-proteins``, ``ogbn-products``
(node property prediction: one ``Data`` with the official split as masks), ``ogbg-molhiv``
(graph property prediction: a list of graphs and the official scaffold split) and
``ogbl-collab`` (link prediction: one ``Data`` with the official split edges attached).
Hu et al., "Open Graph Benchmark: Datasets for Machine Learning on Graphs", NeurIPS 2020.

Layout
------
Exactly what the ``ogb`` package downloads and unpacks (``<root>/<dir>/raw/*.csv.gz`` and
``<root>/<dir>/split/<split>/``), where ``<dir>`` is the OGB name with ``_`` for ``-``::

    <root>/ogbn_arxiv/raw/{edge,node-feat,node-label,num-node-list,num-edge-list,node_year}.csv.gz
    <root>/ogbn_arxiv/split/time/{train,valid,test}.csv.gz
    <root>/ogbn_proteins/raw/{edge,edge-feat,node-label,num-node-list,num-edge-list,
                              node_species}.csv.gz             + split/species/
    <root>/ogbn_products/raw/{edge,node-feat,node-label,num-node-list,num-edge-list}.csv.gz
                                                                + split/sales_ranking/
    <root>/ogbg_molhiv/raw/{edge,edge-feat,node-feat,num-node-list,num-edge-list,
                            graph-label}.csv.gz                 + split/scaffold/
    <root>/ogbl_collab/raw/{edge,node-feat,num-node-list,num-edge-list,edge_weight,
                            edge_year}.csv.gz                   + split/time/{train,valid,test}.pt

The roots searched are those of every named dataset (:func:`~fathom.data.datasets.
data_dir_candidates`: ``--data-dir``, then ``$FATHOM_DATA``, then the cache); the first that
holds *all* of a dataset's files is used. fathom never downloads OGB data and never writes
to a data dir: without the files a :class:`~fathom.errors.DataNotFoundError` names every place
looked in and what to put there (the ``ogb`` package's download, or the zip at the URL in its
``master.csv``, unpacked and renamed to ``<dir>``).

Reading
-------
The graph files are parsed by the ``ogb`` package's own reader
(``ogb.io.read_graph_raw.read_csv_graph_raw``) with the metadata of its ``master.csv``
(``add_inverse_edge``, the additional node / edge files, the number of tasks, the evaluation
metric, the split's name), run on a private folder of links to the raw files (the reader may
rename a file of ogbn-proteins in place; the data dir is never touched). Labels and split
indices are read as ``ogb``'s dataset classes read them (``pandas.read_csv(..., header=None)``).
The ``split/time/*.pt`` files of ogbl-collab are ``torch.save``'d dicts of NumPy arrays; they
are loaded with ``torch.load(weights_only=True)`` allowing only NumPy's array and dtype
reconstruction (:func:`load_numpy_dict`): nothing is unpickled beyond plain arrays, so a file
holding anything else is refused and nothing in it runs.

The ``ogb`` package checks PyPI for a newer version in a background thread when it is
imported (``ogb/version.py``, through the ``outdated`` package). fathom imports ``ogb`` only
through :func:`import_ogb`, which hides ``outdated`` for that import, so neither fathom nor
``ogb`` touches the network, at import or at run time.

Parsed copy (crash safety)
--------------------------
Parsing large CSVs is slow, so the parsed arrays are kept in the cache, in
``cache_dir()/datasets/<dir>/processed/fathom-parsed.npz`` (written with ``np.savez`` to a
temporary name and renamed into place, :func:`fathom.files.atomic_path`; read with
``allow_pickle=False``). The file embeds a marker (array ``__marker__``, JSON) binding it to
the dataset, fathom's parse format, the ``ogb`` version, the folder the files were read from
and every file's size and modification time; a copy whose marker does not match, or that
cannot be read, is parsed again and replaced. An interrupted run therefore never leaves a
parsed copy that later loads as valid.

What each dataset becomes
-------------------------
- ``ogbn-arxiv`` / ``ogbn-products``: ``x`` (float32 node features as published), ``y``
  ``[N]`` int64, the official split (``time`` / ``sales_ranking``) as ``train_mask`` /
  ``val_mask`` / ``test_mask``; arxiv also ``node_year`` ``[N]``. arxiv is directed as
  published (``data.to_undirected``, on by default, symmetrises it, as OGB's GCN / SAGE
  examples do); products is stored with both directions (OGB's ``add_inverse_edge``).
- ``ogbn-proteins``: 112 binary tasks, ``y`` ``[N, 112]`` int64 (multi-label); no node
  features are published, so ``x`` ``[N, 8]`` is the **sum** of the 8-dimensional features of
  every edge coming into the node (``scatter(edge_attr, col, reduce='add')``), the node
  features of the DeeperGCN recipe as PyG's ``examples/ogbn_proteins_deepgcn.py`` builds them
  (Li et al., "DeeperGCN", 2020; RevGNN, Li et al., ICML 2021, uses the same). Each undirected
  edge is stored in both directions (``add_inverse_edge``), so each end receives the edge's
  features once. The edge features themselves are not kept (no fathom conv reads edge
  features); ``node_species`` ``[N]`` is. Split ``species``.
- ``ogbg-molhiv``: a list of molecule graphs with ``y`` ``[1]`` int64 (one binary task) and
  the ``scaffold`` split. The 9 categorical atom features are one-hot encoded and
  concatenated (widths ``ogb.utils.features.get_atom_feature_dims()``, 174 in all), so a
  ``Linear`` layer on ``x`` (``model.encoder: linear``) is exactly OGB's ``AtomEncoder`` (the
  sum of one embedding per feature: ``W [onehot_1; …; onehot_9] = Σ_i E_i[a_i]``) plus a
  bias. Bond features are not used (fathom's convs read no edge features; OGB's GIN example
  adds a ``BondEncoder`` inside each conv).
- ``ogbl-collab``: ``x`` (128 float32 features), ``edge_index`` the *training* graph as OGB
  gives it (both directions, duplicates of a pair in different years kept), ``edge_weight``
  ``[E]`` float32 and ``edge_year`` ``[E]`` int64 aligned with it, and the official ``time``
  split as ``data.split_edges``, a dict of tensors:

  ===============================  ================  =======================================
  key                              shape / dtype     what
  ===============================  ================  =======================================
  ``train``, ``valid``, ``test``   ``[2, E_s]`` int64  positive edges, each undirected pair
                                                     once (OGB's ``edge`` transposed to PyG's
                                                     orientation)
  ``valid_neg``, ``test_neg``      ``[2, E_neg]``    OGB's fixed negative edges (``edge_neg``)
  ``<split>_weight``               ``[E_s]`` float32  the edges' weights (``weight``)
  ``<split>_year``                 ``[E_s]`` int64    the edges' years (``year``)
  ===============================  ================  =======================================

  Its metric is OGB's Hits@50 (:class:`fathom.train.evaluators.OGBEvaluator`).

OGB graphs published undirected (``add_inverse_edge``: proteins, products, molhiv, collab)
are kept as OGB builds them, both directions in OGB's order; ``data.to_undirected`` does not
re-sort them (which would misalign edge attributes). OGB features are used as published:
``data.normalize_features`` left at ``None`` does not row-normalise them.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from fathom.data.datasets import (
    DatasetSpec,
    _locate,
    _one_line,
    cache_dir,
    cache_writes,
    check_npz_sizes,
    data_dir_candidates,
    safe_torch_load,
)
from fathom.errors import ConfigError, DataError, DataNotFoundError, FathomError
from fathom.files import atomic_path
from fathom.registry import Registry

__all__ = [
    "OGB_DATASETS",
    "OGB_KINDS",
    "OGBDatasetSpec",
    "find_ogb",
    "import_ogb",
    "is_ogb",
    "load_numpy_dict",
    "load_ogb_graphs",
    "load_ogb_link",
    "load_ogb_node",
    "ogb_kind",
    "ogb_meta",
]

OGB_KINDS = ("node", "graph", "link")
"""``node``: ogbn-* (node property prediction); ``graph``: ogbg-*; ``link``: ogbl-*."""

PARSED_FILE = "fathom-parsed.npz"
_PARSE_FORMAT = 1  # bump whenever what the parsed copy holds changes
_MARKER_KEY = "__marker__"
_SPLITS = ("train", "valid", "test")
_MASK_OF = {"train": "train_mask", "valid": "val_mask", "test": "test_mask"}
_MASTER_DIR = {"node": "nodeproppred", "graph": "graphproppred", "link": "linkproppred"}


# --------------------------------------------------------------------------------------------
# Importing ogb without its update check
# --------------------------------------------------------------------------------------------

_IMPORT_LOCK = threading.Lock()
_ABSENT = object()


def import_ogb(module: str = "ogb") -> ModuleType:
    """Import ``ogb`` (or one of its modules, ``"ogb.nodeproppred"`` …) without the network.

    ``ogb/version.py`` runs ``from outdated import check_outdated`` when ``ogb`` is first
    imported and, if that works, starts a thread asking PyPI for the latest version. Here
    ``sys.modules["outdated"]`` is ``None`` during that first import, so the ``from outdated
    import`` raises ``ImportError``, which ``ogb`` catches, and no thread starts; afterwards
    ``sys.modules`` and ``$OUTDATED_IGNORE`` (which ``ogb`` sets) are restored. Every import of
    ``ogb`` in fathom goes through this function. (If something else imported ``ogb`` first,
    its check already ran or not; nothing here can change that.)

    Raises:
        DataError: ``ogb`` (a dependency of fathom) is not installed or fails to import.
    """
    if module != "ogb" and not module.startswith("ogb."):
        raise ValueError(f"import_ogb imports ogb and its modules, not {module!r}")
    try:
        with _IMPORT_LOCK:
            if "ogb" not in sys.modules:
                saved = sys.modules.get("outdated", _ABSENT)
                env = os.environ.get("OUTDATED_IGNORE")
                sys.modules["outdated"] = None  # type: ignore[assignment]
                try:
                    importlib.import_module("ogb")
                finally:
                    if saved is _ABSENT:
                        sys.modules.pop("outdated", None)
                    else:
                        sys.modules["outdated"] = saved  # type: ignore[assignment]
                    if env is None:
                        os.environ.pop("OUTDATED_IGNORE", None)
                    else:
                        os.environ["OUTDATED_IGNORE"] = env
            return importlib.import_module(module)
    except ImportError as exc:
        raise DataError(
            f"OGB datasets need the ogb package (pip install ogb): {_one_line(exc)}"
        ) from None


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OGBDatasetSpec(DatasetSpec):
    """A :class:`~fathom.data.datasets.DatasetSpec` of an OGB dataset.

    ``subdir`` is the dataset's folder (``ogbn_arxiv``) and ``raw_files`` are relative to it
    (``raw/edge.csv.gz``, ``split/time/train.csv.gz``), so the data-dir search
    (``_locate``, ``list_datasets``) works unchanged. ``num_edges`` counts directed
    ``edge_index`` entries as fathom builds the graph (both directions where OGB adds inverse
    edges; the training graph for ogbl-collab); ``num_classes`` is 2 for binary tasks.

    Args:
        kind: one of :data:`OGB_KINDS`.
        split_name: the official split's folder (``time``, ``species``, ``sales_ranking``,
            ``scaffold``); must equal ``master.csv``'s ``split``.
        num_tasks: prediction tasks (112 for ogbn-proteins); must equal ``master.csv``'s.
        eval_metric: OGB's metric (``acc``, ``rocauc``, ``hits@50``); must equal
            ``master.csv``'s. (Known here so that configs are checked without importing
            ``ogb``; what is loaded and evaluated reads ``master.csv``.)
        num_graphs: graphs of a graph dataset (0 otherwise).
        url: where OGB publishes the zip (for the not-found message; must equal
            ``master.csv``'s ``url``); it unpacks to a folder named like the zip.
    """

    kind: str = "node"
    split_name: str = ""
    num_tasks: int = 1
    eval_metric: str = "acc"
    num_graphs: int = 0
    url: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in OGB_KINDS:
            raise ValueError(f"kind must be one of {OGB_KINDS}, got {self.kind!r}")

    @property
    def raw_dir(self) -> str:
        """The dataset's folder relative to a data root (its files are relative to it)."""
        return self.subdir

    @property
    def multi_label(self) -> bool:
        """Several binary tasks per node / graph, scored by ROC-AUC."""
        return self.eval_metric == "rocauc"


OGB_DATASETS: Registry[OGBDatasetSpec] = Registry("OGB dataset")
"""Every OGB dataset fathom reads, by name (OGB's: ``ogbn-arxiv`` …)."""

_OGB_CITE = (
    "W. Hu, M. Fey, M. Zitnik, Y. Dong, H. Ren, B. Liu, M. Catasta, J. Leskovec. Open Graph "
    "Benchmark: Datasets for Machine Learning on Graphs. NeurIPS 2020 (arXiv:2005.00687)"
)
_NODE_RAW = ("edge", "node-label", "num-node-list", "num-edge-list")
_SNAP = "http://snap.stanford.edu/ogb/data"


def _ogb(name: str, kind: str, raw: tuple[str, ...], split: str, split_ext: str,
         stats: tuple[int, ...], sizes: tuple[int, int, int], tasks: int, metric: str,
         url: str, description: str, graphs: int = 0) -> None:  # fmt: skip
    folder = name.replace("-", "_")
    files = (
        *(f"raw/{f}.csv.gz" for f in raw),
        *(f"split/{split}/{s}.{split_ext}" for s in _SPLITS),
    )
    OGB_DATASETS.add(name, OGBDatasetSpec(
        name=name, pyg_class="", pyg_kwargs={}, root=folder, subdir=folder, raw_files=files,
        num_nodes=stats[0], num_edges=stats[1], num_features=stats[2], num_classes=stats[3],
        split="official", description=description, citation=_OGB_CITE, split_sizes=sizes,
        kind=kind, split_name=split, num_tasks=tasks, eval_metric=metric, num_graphs=graphs,
        url=url,
    ))  # fmt: skip


# name, kind, raw files, split, (nodes, directed edges, features, classes), split sizes,
# tasks, metric, description.
_ogb("ogbn-arxiv", "node", (*_NODE_RAW, "node-feat", "node_year"), "time", "csv.gz",
     (169343, 1166243, 128, 40), (90941, 29799, 48603), 1, "acc",
     f"{_SNAP}/nodeproppred/arxiv.zip",
     "OGB arXiv CS citation graph (directed), word2vec features, 40 subject areas; "
     "split by year")  # fmt: skip
_ogb("ogbn-proteins", "node", (*_NODE_RAW, "edge-feat", "node_species"), "species", "csv.gz",
     (132534, 79122504, 8, 2), (86619, 21236, 24679), 112, "rocauc",
     f"{_SNAP}/nodeproppred/proteins.zip",
     "OGB protein association graph, 112 binary function tasks; node features = summed "
     "edge features; split by species")  # fmt: skip
_ogb("ogbn-products", "node", (*_NODE_RAW, "node-feat"), "sales_ranking", "csv.gz",
     (2449029, 123718280, 100, 47), (196615, 39323, 2213091), 1, "acc",
     f"{_SNAP}/nodeproppred/products.zip",
     "OGB Amazon co-purchase graph, bag-of-words PCA features, 47 categories; split by "
     "sales rank")  # fmt: skip
_ogb("ogbg-molhiv", "graph",
     ("edge", "edge-feat", "node-feat", "num-node-list", "num-edge-list", "graph-label"),
     "scaffold", "csv.gz", (1049163, 2259376, 174, 2), (32901, 4113, 4113), 1, "rocauc",
     f"{_SNAP}/graphproppred/csv_mol_download/hiv.zip",
     "OGB HIV molecules (MoleculeNet), inhibits HIV or not; one-hot atom features; "
     "scaffold split", graphs=41127)  # fmt: skip
_ogb("ogbl-collab", "link",
     ("edge", "node-feat", "num-node-list", "num-edge-list", "edge_weight", "edge_year"),
     "time", "pt", (235868, 2358104, 128, 0), (1179052, 60084, 46329), 1, "hits@50",
     f"{_SNAP}/linkproppred/collab.zip",
     "OGB author collaboration graph, word2vec features; predict future collaborations "
     "(split by year; sizes are edges)")  # fmt: skip


def is_ogb(name: str) -> bool:
    """Whether ``name`` is an OGB dataset fathom reads (:data:`OGB_DATASETS`)."""
    return name in OGB_DATASETS


def ogb_kind(name: str) -> str | None:
    """``node``, ``graph`` or ``link`` for an OGB dataset; None for any other name."""
    return OGB_DATASETS.get(name).kind if name in OGB_DATASETS else None


@cache
def _master(kind: str) -> Any:
    import pandas as pd

    ogb = import_ogb()
    path = Path(ogb.__file__).parent / _MASTER_DIR[kind] / "master.csv"
    # as ogb's dataset classes read it
    return pd.read_csv(path, index_col=0, keep_default_na=False)


def ogb_meta(name: str) -> dict[str, str]:
    """The column of ``name`` in the ``ogb`` package's ``master.csv`` (its metadata:
    ``add_inverse_edge``, ``num tasks``, ``eval metric``, ``split``, ``additional node
    files`` …), every value a string as ``ogb`` reads it.

    Raises:
        ConfigError: ``name`` is not an OGB dataset fathom reads.
        DataError: the installed ``ogb`` does not know it.
    """
    spec = OGB_DATASETS.get(name)
    master = _master(spec.kind)
    if name not in master:
        raise DataError(f"the installed ogb package does not know {name!r} (master.csv)")
    return {str(k): str(v) for k, v in master[name].items()}


def _files_list(value: str) -> list[str]:
    return [] if value == "None" else value.split(",")


def _check_meta(spec: OGBDatasetSpec, meta: Mapping[str, str]) -> None:
    """What fathom knows of ``spec`` agrees with ``ogb``'s ``master.csv``."""
    raw = {f.removeprefix("raw/").removesuffix(".csv.gz") for f in spec.raw_files}
    wanted = {
        "split": spec.split_name,
        "num tasks": str(spec.num_tasks),
        "eval metric": spec.eval_metric,
        "url": spec.url,
    }
    for key, value in wanted.items():
        if key in meta and meta[key] != value:
            raise DataError(
                f"{spec.name}: the installed ogb package's master.csv has {key} "
                f"{meta[key]!r}, fathom expects {value!r}"
            )
    extra = [
        f
        for key in ("additional node files", "additional edge files")
        for f in _files_list(meta.get(key, "None"))
        if f not in raw
    ]
    if extra:
        raise DataError(f"{spec.name}: ogb's master.csv lists files fathom does not read: {extra}")


# --------------------------------------------------------------------------------------------
# Finding the files
# --------------------------------------------------------------------------------------------


def find_ogb(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder of OGB dataset ``name`` in the first data root holding all of its files,
    without reading them (what a run checks before it starts).

    Raises:
        ConfigError: ``name`` is not an OGB dataset fathom reads.
        DataNotFoundError: its files are in no data root; the one-line message names every
            place looked in and what to put there.
    """
    return _find(OGB_DATASETS.get(name), data_dir)


def _find(spec: OGBDatasetSpec, data_dir: str | Path | None) -> Path:
    """The dataset folder of the first data root holding every file of ``spec``."""
    found, looked = _locate(spec, data_dir_candidates(data_dir))
    if found is None:
        unpacked = spec.url.rsplit("/", 1)[-1].removesuffix(".zip")
        raise DataNotFoundError(
            f"dataset {spec.name!r} not found: looked in {'; '.join(looked)}; fathom does not "
            f"download OGB data. Set --data-dir or FATHOM_DATA to a folder laid out like OGB's "
            f"(with {spec.subdir}/{spec.raw_files[0]}, {spec.subdir}/{spec.raw_files[-1]} and "
            f"the other files: what the ogb package downloads, or {spec.url} unzipped and "
            f"{unpacked}/ renamed to {spec.subdir}/)"
        )
    return found[1] / spec.subdir


# --------------------------------------------------------------------------------------------
# Parsing (with ogb's reader) and the parsed copy
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow ogb's progress lines and tqdm bars (stdout and stderr)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _marker(spec: OGBDatasetSpec, folder: Path, meta: Mapping[str, str]) -> str:
    ogb = import_ogb()
    files = {}
    for rel in spec.raw_files:
        st = (folder / rel).stat()
        files[rel] = [st.st_size, st.st_mtime_ns]
    return json.dumps(
        {
            "dataset": spec.name,
            "format": _PARSE_FORMAT,
            "ogb": ogb.__version__,
            "folder": str(folder.resolve()),
            "files": files,
            "meta": {k: meta.get(k) for k in sorted(meta)},
        },
        sort_keys=True,
    )


def _parsed_path(spec: OGBDatasetSpec) -> Path:
    return cache_dir() / "datasets" / spec.subdir / "processed" / PARSED_FILE


def _read_parsed(path: Path, marker: str) -> dict[str, np.ndarray] | None:
    """The arrays of a parsed copy whose marker is ``marker``; None if absent, stale or
    unreadable."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            check_npz_sizes(path, npz.zip)  # a forged header is re-parsed, never allocated
            if _MARKER_KEY not in npz.files or str(npz[_MARKER_KEY]) != marker:
                return None
            return {k: npz[k] for k in npz.files if k != _MARKER_KEY}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, DataError):
        return None


def _write_parsed(path: Path, marker: str, arrays: Mapping[str, np.ndarray]) -> None:
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays, **{_MARKER_KEY: np.array(marker)})
    except (OSError, FathomError) as exc:
        warnings.warn(
            f"could not keep the parsed copy of {path.parent.parent.name} in {path} "
            f"({_one_line(exc)}); it will be parsed again next time",
            stacklevel=3,
        )


def _parsed(spec: OGBDatasetSpec, data_dir: str | Path | None) -> dict[str, np.ndarray]:
    """The parsed arrays of ``spec``: the cached copy if its marker matches, else parsed now
    (and cached)."""
    folder = _find(spec, data_dir)
    meta = ogb_meta(spec.name)
    _check_meta(spec, meta)
    marker = _marker(spec, folder, meta)
    path = _parsed_path(spec)
    arrays = _read_parsed(path, marker)
    if arrays is None:
        arrays = _parse(spec, folder, meta)
        _write_parsed(path, marker, arrays)
    return arrays


@contextlib.contextmanager
def _staged(spec: OGBDatasetSpec, folder: Path) -> Iterator[Path]:
    """A private folder in the cache with links to the dataset's files, laid out the same.

    ``ogb``'s reader runs there: it may rename a file (``species.csv.gz`` of old ogbn-proteins
    releases), and it reads whatever optional files it finds; here it finds exactly the
    files fathom names, and the data dir is never written to.
    """
    parent = cache_dir() / "datasets" / ".staging"
    with cache_writes(parent):  # a cache path that is a file or read-only: one line
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f"{spec.subdir}-", dir=parent))
    try:
        for rel in spec.raw_files:
            dst = stage / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            src = (folder / rel).resolve()
            try:
                os.symlink(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _read_csv(path: Path) -> np.ndarray:
    """A headerless gzip CSV as ``ogb`` reads it (``pd.read_csv(header=None).values``)."""
    import pandas as pd

    try:
        return pd.read_csv(path, compression="gzip", header=None).values
    except Exception as exc:
        raise DataError(f"could not read OGB file {path}: {_one_line(exc)}") from None


def _int_array(values: np.ndarray, what: str, path: Path) -> np.ndarray:
    if values.dtype.kind not in "iub":
        if values.dtype.kind == "f" and np.isfinite(values).all() and (values % 1 == 0).all():
            return values.astype(np.int64)
        raise DataError(f"{path}: {what} must be integers, got {values.dtype}")
    return values.astype(np.int64)


def _split_indices(spec: OGBDatasetSpec, folder: Path, n: int) -> dict[str, np.ndarray]:
    """``split_<train|valid|test>`` index arrays (node / graph datasets), checked in range."""
    out = {}
    for s in _SPLITS:
        path = folder / "split" / spec.split_name / f"{s}.csv.gz"
        idx = _int_array(_read_csv(path), "split indices", path).reshape(-1)
        if idx.size == 0:
            raise DataError(f"{path}: the {s} split is empty")
        if idx.min() < 0 or idx.max() >= n:
            bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
            raise DataError(f"{path}: index {bad} is outside [0, {n})")
        out[f"split_{s}"] = idx
    return out


def _read_graphs(spec: OGBDatasetSpec, folder: Path, meta: Mapping[str, str]) -> list[dict]:
    reader = import_ogb("ogb.io.read_graph_raw").read_csv_graph_raw
    with _staged(spec, folder) as stage:
        try:
            with _quiet():
                return reader(
                    str(stage / "raw"),
                    add_inverse_edge=meta["add_inverse_edge"] == "True",
                    additional_node_files=_files_list(meta["additional node files"]),
                    additional_edge_files=_files_list(meta["additional edge files"]),
                )
        except Exception as exc:
            raise DataError(
                f"could not read OGB dataset {spec.name!r} from {folder / 'raw'}: {_one_line(exc)}"
            ) from None


def _parse(spec: OGBDatasetSpec, folder: Path, meta: Mapping[str, str]) -> dict[str, np.ndarray]:
    graphs = _read_graphs(spec, folder, meta)
    if spec.kind == "graph":
        return _parse_graphs(spec, folder, graphs)
    if len(graphs) != 1:
        raise DataError(f"{folder / 'raw'}: expected one graph, num-node-list has {len(graphs)}")
    (g,) = graphs
    n = int(g["num_nodes"])
    edge_index = np.ascontiguousarray(g["edge_index"], dtype=np.int64)
    _check_edges(edge_index, n, folder / "raw" / "edge.csv.gz")
    out: dict[str, np.ndarray] = {"num_nodes": np.array(n), "edge_index": edge_index}
    if g.get("node_feat") is not None:
        out["x"] = _rows(np.asarray(g["node_feat"], dtype=np.float32), n, "node-feat", folder)
    for key in _files_list(meta["additional node files"]):
        out[key] = _rows(np.asarray(g[key]), n, key, folder).reshape(n, -1)[:, 0]
    if spec.name == "ogbn-proteins":
        edge_feat = np.asarray(g["edge_feat"], dtype=np.float32)
        if edge_feat.shape[0] != edge_index.shape[1]:
            raise DataError(
                f"{folder / 'raw' / 'edge-feat.csv.gz'}: {edge_feat.shape[0]} rows for "
                f"{edge_index.shape[1]} edges"
            )
        # DeeperGCN's node features: the sum of the features of the edges into each node
        x = torch.zeros(n, edge_feat.shape[1], dtype=torch.float32)
        x.index_add_(0, torch.from_numpy(edge_index[1]), torch.from_numpy(edge_feat))
        out["x"] = x.numpy()
    if spec.kind == "link":
        for key in _files_list(meta["additional edge files"]):
            values = np.asarray(g[key]).reshape(edge_index.shape[1], -1)[:, 0]
            out[key] = values.astype(np.float32 if key == "edge_weight" else np.int64)
        out.update(_link_split(spec, folder, n))
        return out
    path = folder / "raw" / "node-label.csv.gz"
    labels = _int_array(_rows(_read_csv(path), n, "node-label", folder), "labels", path)
    if labels.min() < 0:
        raise DataError(f"{path}: negative label {int(labels.min())}")
    out["y"] = labels[:, 0] if spec.num_tasks == 1 else labels
    out.update(_split_indices(spec, folder, n))
    return out


def _rows(values: np.ndarray, n: int, what: str, folder: Path) -> np.ndarray:
    if values.shape[0] != n:
        raise DataError(
            f"{folder / 'raw'}: {what} has {values.shape[0]} rows, num-node-list says {n} nodes"
        )
    return values


def _check_edges(edge_index: np.ndarray, n: int, path: Path) -> None:
    if edge_index.size and (edge_index.min() < 0 or edge_index.max() >= n):
        bad = int(edge_index.min()) if edge_index.min() < 0 else int(edge_index.max())
        raise DataError(f"{path}: node {bad} is outside [0, {n})")


def _parse_graphs(spec: OGBDatasetSpec, folder: Path, graphs: list[dict]) -> dict[str, np.ndarray]:
    """Concatenated per-graph arrays (edge indices stay local to each graph) and counts."""
    num_nodes = np.array([int(g["num_nodes"]) for g in graphs], dtype=np.int64)
    num_edges = np.array([g["edge_index"].shape[1] for g in graphs], dtype=np.int64)
    for i, g in enumerate(graphs):
        _check_edges(g["edge_index"], int(num_nodes[i]), folder / "raw" / "edge.csv.gz")
    edge_index = np.concatenate([g["edge_index"] for g in graphs], axis=1).astype(np.int64)
    path = folder / "raw" / "node-feat.csv.gz"
    atoms = _int_array(np.concatenate([g["node_feat"] for g in graphs]), "atom features", path)
    path = folder / "raw" / "graph-label.csv.gz"
    labels = _read_csv(path)
    if labels.shape[0] != len(graphs):
        raise DataError(f"{path}: {labels.shape[0]} labels for {len(graphs)} graphs")
    labels = _int_array(labels, "labels", path)
    if labels.min() < 0:
        raise DataError(f"{path}: negative label {int(labels.min())}")
    return {
        "num_nodes": num_nodes,
        "num_edges": num_edges,
        "edge_index": edge_index,
        "atoms": atoms,
        "y": labels,
        **_split_indices(spec, folder, len(graphs)),
    }


# --------------------------------------------------------------------------------------------
# ogbl-collab's split: torch-saved dicts of NumPy arrays, loaded without unpickling
# --------------------------------------------------------------------------------------------


def _numpy_globals() -> list[Any]:
    """What ``torch.load(weights_only=True)`` must allow to rebuild plain NumPy arrays: the
    array reconstructor (under NumPy 1's name ``numpy.core.multiarray`` too, which files
    saved with NumPy 1 name), ``ndarray``, ``dtype`` and the numeric dtype classes.
    Entries already allowed are left out (``safe_globals`` removes its entries on exit)."""
    core = getattr(np, "_core", None) or np.core
    rebuild = core.multiarray._reconstruct
    dtypes = {type(np.dtype(c)) for c in "?bBhHiIlLqQefdgFDG"}
    wanted: list[Any] = [
        np.ndarray,
        np.dtype,
        rebuild,
        (rebuild, "numpy.core.multiarray._reconstruct"),
        (rebuild, "numpy._core.multiarray._reconstruct"),
        *sorted(dtypes - {np.dtype}, key=str),
    ]
    registered = torch.serialization.get_safe_globals()
    return [g for g in wanted if g not in registered]


def load_numpy_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A ``torch.save``'d dict of NumPy arrays (OGB's link splits), loaded with
    ``torch.load(weights_only=True)`` allowing only NumPy array and dtype reconstruction.

    Raises:
        DataError: unreadable, not such a dict, or holding anything else (refused before it
            is built: nothing in the file runs).
    """
    p = Path(path)
    refuse = f"refusing to load {p}: not a plain dict of NumPy arrays"
    obj = safe_torch_load(p, _numpy_globals(), refuse)
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise DataError(f"{refuse} (it holds a {type(obj).__name__})")
    out = {}
    for key, value in obj.items():
        if isinstance(value, Tensor):
            value = value.numpy()
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            raise DataError(f"{refuse} ({key!r} is a {type(value).__name__})")
        out[key] = value
    return out


def _link_split(spec: OGBDatasetSpec, folder: Path, n: int) -> dict[str, np.ndarray]:
    """``<split>_edge`` [E, 2], ``<split>_weight``, ``<split>_year`` and ``<split>_edge_neg``
    (valid / test) arrays from ``split/<name>/{train,valid,test}.pt``."""
    out: dict[str, np.ndarray] = {}
    for s in _SPLITS:
        path = folder / "split" / spec.split_name / f"{s}.pt"
        parts = load_numpy_dict(path)
        required = ["edge", *(["edge_neg"] if s != "train" else [])]
        missing = [k for k in required if k not in parts]
        if missing:
            raise DataError(
                f"{path}: no {', '.join(repr(k) for k in missing)} (keys: {', '.join(parts)})"
            )
        for key, value in parts.items():
            if key in ("edge", "edge_neg"):
                edges = value.astype(np.int64)
                if edges.ndim != 2 or edges.shape[1] != 2:
                    raise DataError(f"{path}: {key!r} must be [E, 2], got {list(edges.shape)}")
                _check_edges(edges, n, path)
                out[f"{s}_{key}"] = edges
            elif key in ("weight", "year"):
                rows = out.get(f"{s}_edge", parts["edge"]).shape[0]
                if value.reshape(-1).shape[0] != rows:
                    raise DataError(f"{path}: {key!r} has {value.size} entries for {rows} edges")
                dtype = np.float32 if key == "weight" else np.int64
                out[f"{s}_{key}"] = value.reshape(-1).astype(dtype)
    return out


# --------------------------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------------------------


def _spec(name: str, kind: str) -> OGBDatasetSpec:
    spec = OGB_DATASETS.get(name)
    if spec.kind != kind:
        raise ConfigError(
            f"{name!r} is an OGB {spec.kind}-prediction dataset, not a {kind}-prediction one"
        )
    return spec


def _tensor(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def load_ogb_node(name: str, data_dir: str | Path | None = None) -> Data:
    """An OGB node-property dataset (``ogbn-*``) as one ``Data``.

    Returns ``x`` (float32), ``edge_index``, ``y`` (``[N]`` int64, or ``[N, T]`` 0/1 int64
    for ogbn-proteins' 112 tasks), the official split as ``train_mask`` / ``val_mask`` /
    ``test_mask`` (OGB's ``train`` / ``valid`` / ``test``), the dataset's additional node
    arrays (``node_year``, ``node_species``) and ``name``; see the module docstring.

    Raises:
        ConfigError: not an OGB node dataset.
        DataNotFoundError: its files are in no data root.
        DataError: a file cannot be read or is inconsistent.
    """
    spec = _spec(name, "node")
    a = _parsed(spec, data_dir)
    n = int(a["num_nodes"])
    data = Data(
        x=_tensor(a["x"]).to(torch.float32),
        edge_index=_tensor(a["edge_index"]).long(),
        y=_tensor(a["y"]).long(),
        num_nodes=n,
    )
    for s in _SPLITS:
        mask = torch.zeros(n, dtype=torch.bool)
        mask[_tensor(a[f"split_{s}"])] = True
        data[_MASK_OF[s]] = mask
    for key in _files_list(ogb_meta(name)["additional node files"]):
        data[key] = _tensor(a[key])
    data.name = name
    return data


def load_ogb_graphs(
    name: str, data_dir: str | Path | None = None
) -> tuple[list[Data], dict[str, Tensor]]:
    """An OGB graph-property dataset (``ogbg-*``) as a list of graphs and its official split.

    Each graph has ``x`` (the one-hot atom features, float32 ``[n, 174]`` for molecules),
    ``edge_index`` (both directions) and ``y`` ``[1]`` int64 (``[1, T]`` with several
    tasks); the split maps ``train`` / ``valid`` / ``test`` to int64 graph indices.

    Raises:
        ConfigError: not an OGB graph dataset.
        DataNotFoundError: its files are in no data root.
        DataError: a file cannot be read or is inconsistent (an atom feature outside its
            vocabulary).
    """
    spec = _spec(name, "graph")
    a = _parsed(spec, data_dir)
    dims = list(import_ogb("ogb.utils.features").get_atom_feature_dims())
    atoms = a["atoms"]
    if atoms.ndim != 2 or atoms.shape[1] != len(dims):
        raise DataError(
            f"{name}: node-feat has {atoms.shape[1] if atoms.ndim == 2 else '?'} columns, "
            f"OGB's atom features are {len(dims)}"
        )
    for i, d in enumerate(dims):
        col = atoms[:, i]
        if col.size and (col.min() < 0 or col.max() >= d):
            raise DataError(f"{name}: atom feature {i} has value {int(col.max())} outside [0, {d})")
    offsets = torch.tensor(np.cumsum([0, *dims[:-1]]), dtype=torch.long)
    x = torch.zeros(atoms.shape[0], sum(dims), dtype=torch.float32)
    x.scatter_(1, _tensor(atoms) + offsets, 1.0)
    xs = torch.split(x, a["num_nodes"].tolist())
    edges = torch.split(_tensor(a["edge_index"]), a["num_edges"].tolist(), dim=1)
    y = _tensor(a["y"]).long()
    graphs = [
        Data(
            x=xi,
            edge_index=ei,
            y=y[i].view(1, -1) if y.size(1) > 1 else y[i].view(1),
            num_nodes=xi.size(0),
        )
        for i, (xi, ei) in enumerate(zip(xs, edges, strict=True))
    ]
    split = {s: _tensor(a[f"split_{s}"]).long() for s in _SPLITS}
    return graphs, split


def load_ogb_link(name: str, data_dir: str | Path | None = None) -> Data:
    """An OGB link-property dataset (``ogbl-*``) as one ``Data`` with its official split.

    ``x``, ``edge_index`` (the training graph as OGB gives it), ``edge_weight`` /
    ``edge_year`` aligned with it, ``split_edges`` (the dict of tensors the module docstring
    tabulates: ``train`` / ``valid`` / ``test`` ``[2, E]``, ``valid_neg`` / ``test_neg``,
    ``<split>_weight``, ``<split>_year``) and ``name``; no ``y`` and no masks.

    Raises:
        ConfigError: not an OGB link dataset.
        DataNotFoundError: its files are in no data root.
        DataError: a file cannot be read, is inconsistent or is not plain arrays.
    """
    spec = _spec(name, "link")
    a = _parsed(spec, data_dir)
    data = Data(
        x=_tensor(a["x"]).to(torch.float32),
        edge_index=_tensor(a["edge_index"]).long(),
        num_nodes=int(a["num_nodes"]),
    )
    for key in _files_list(ogb_meta(name)["additional edge files"]):
        data[key] = _tensor(a[key])
    split: dict[str, Tensor] = {}
    for s in _SPLITS:
        split[s] = _tensor(a[f"{s}_edge"]).long().t().contiguous()
        if f"{s}_edge_neg" in a:
            split[f"{s}_neg"] = _tensor(a[f"{s}_edge_neg"]).long().t().contiguous()
        for key in ("weight", "year"):
            if f"{s}_{key}" in a:
                split[f"{s}_{key}"] = _tensor(a[f"{s}_{key}"])
    data.split_edges = split
    data.name = name
    return data
