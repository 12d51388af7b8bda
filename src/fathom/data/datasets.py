"""Named benchmark datasets and user graph files, loaded as one validated PyG ``Data``.

Data-dir policy
---------------
Benchmark datasets are read from *raw files in their original published formats*, laid out
exactly as PyTorch Geometric expects them (``<root>/Planetoid/Cora/raw/ind.cora.x``,
``<root>/WikipediaNetwork/chameleon/geom_gcn/raw/...``, ``<root>/Amazon/Computers/raw/...npz``).
For each dataset fathom looks for *all* of its raw files in these places, in order, and uses the
first one that has them:

1. ``data_dir`` (the CLI's ``--data-dir``), labelled ``"data dir"``;
2. ``$FATHOM_DATA``, labelled ``"FATHOM_DATA"``;
3. the cache, ``cache_dir() / "datasets"``, labelled ``"cache"``.

A data dir is **never written to** (it may be read-only or shared). The raw files are copied
into the cache under the same relative layout, and PyG's ``processed/`` folder is written only
there. :func:`cache_dir` is ``$FATHOM_CACHE`` if set, else ``$XDG_CACHE_HOME/fathom``, else
``~/.cache/fathom``.

With ``verify=True`` every raw file with a known sha256 (``checksums.sha256`` beside this
module) is checked before it is copied; a mismatch is a :class:`~fathom.errors.DataError`
naming the file and both hashes. A cached copy that already verifies (or, for files without a
known hash, equals its source) is not copied again.

If no place has the raw files and ``download=True``, the PyG class downloads them into the
cache (needs internet); otherwise a :class:`~fathom.errors.DataNotFoundError` names every place
looked in.

Crash safety: raw files are written to a temporary name and renamed into place; PyG processes
in a private staging folder inside the cache, and the finished ``processed/`` folder, with a
``fathom-complete.json`` marker recording the raw files' hashes and the PyG version, is renamed
into place in one step. An interrupted run therefore never leaves a cache that later loads as
valid; a ``processed/`` folder without a matching marker is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from fathom.data.splits import per_class_split, stratified_split
from fathom.data.validate import validate_graph
from fathom.errors import ConfigError, DataError, DataNotFoundError
from fathom.registry import Registry

__all__ = [
    "DATASETS",
    "SPLIT_KINDS",
    "DatasetSpec",
    "cache_dir",
    "data_dir_candidates",
    "known_checksums",
    "list_datasets",
    "load_dataset",
    "load_graph_file",
    "normalize_features",
]

SPLIT_KINDS = ("public", "geom-gcn", "random", "folds", "official")
"""``public``: Planetoid's fixed masks; ``geom-gcn``: 10 fixed splits (``split`` picks one);
``random``: no published masks, a per-class split (20 train / 30 val per class) from ``seed``;
``folds``: a graph-classification dataset (many graphs, no masks), evaluated by stratified
cross-validation (:mod:`fathom.data.graph_datasets`, :func:`fathom.tasks.graph.fold_plans`);
``official``: an OGB dataset's published split (:mod:`fathom.data.ogb_datasets`)."""

NUM_GEOM_GCN_SPLITS = 10
GRAPH_FILE_SUFFIXES = (".npz", ".pt", ".pth")

_MARKER = "fathom-complete.json"
_STAGING = ".staging"
_STALE_STAGE_S = 24 * 3600
_PYG_CHATTER = frozenset({"Processing...", "Done!"})
_MASKS = ("train_mask", "val_mask", "test_mask")


# --------------------------------------------------------------------------------------------
# Dataset specs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """Everything fathom knows about a named benchmark dataset.

    Args:
        name: fathom's name (``"cora"``).
        pyg_class: class name in :mod:`torch_geometric.datasets` (``"Planetoid"``).
        pyg_kwargs: constructor keyword arguments besides ``root`` (``{"name": "Cora"}``).
        root: the PyG ``root`` argument, relative to a data root (``"Planetoid"``).
        subdir: the folder holding ``raw/`` (and, in the cache, ``processed/``), relative to a
            data root (``"Planetoid/Cora"``).
        raw_files: file names expected in ``<subdir>/raw/``.
        num_nodes, num_edges, num_features, num_classes: known statistics (edges are directed
            entries of ``edge_index``, as PyG counts them).
        split: one of :data:`SPLIT_KINDS`.
        description: one line.
        citation: the paper to cite.
        split_sizes: known (train, val, test) sizes of the public split or of geom-gcn split 0;
            None for ``random``.
    """

    name: str
    pyg_class: str
    pyg_kwargs: Mapping[str, Any] = field(hash=False)
    root: str
    subdir: str
    raw_files: tuple[str, ...]
    num_nodes: int
    num_edges: int
    num_features: int
    num_classes: int
    split: str
    description: str
    citation: str
    split_sizes: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.split not in SPLIT_KINDS:
            raise ValueError(f"split must be one of {SPLIT_KINDS}, got {self.split!r}")
        object.__setattr__(self, "pyg_kwargs", MappingProxyType(dict(self.pyg_kwargs)))

    @property
    def raw_dir(self) -> str:
        """``<subdir>/raw``, relative to a data root."""
        return f"{self.subdir}/raw"

    @property
    def raw_paths(self) -> tuple[str, ...]:
        """Every raw file, relative to a data root (the keys of ``checksums.sha256``)."""
        return tuple(f"{self.raw_dir}/{f}" for f in self.raw_files)

    def dataset_class(self) -> type:
        """The PyG dataset class (imported lazily)."""
        import torch_geometric.datasets as pyg_datasets

        return getattr(pyg_datasets, self.pyg_class)


DATASETS: Registry[DatasetSpec] = Registry("dataset")

_PLANETOID_CITE = (
    "Z. Yang, W. W. Cohen, R. Salakhutdinov. Revisiting Semi-Supervised Learning with Graph "
    "Embeddings. ICML 2016 (arXiv:1603.08861)"
)
_SHCHUR_CITE = (
    "O. Shchur, M. Mumme, A. Bojchevski, S. Günnemann. Pitfalls of Graph Neural Network "
    "Evaluation. Relational Representation Learning Workshop, NeurIPS 2018 (arXiv:1811.05868)"
)
_GEOM_GCN_CITE = (
    "H. Pei, B. Wei, K. C.-C. Chang, Y. Lei, B. Yang. Geom-GCN: Geometric Graph Convolutional "
    "Networks. ICLR 2020"
)


def _geom_gcn_files(prefix: str) -> tuple[str, ...]:
    return (
        "out1_node_feature_label.txt",
        "out1_graph_edges.txt",
        *(f"{prefix}_split_0.6_0.2_{i}.npz" for i in range(NUM_GEOM_GCN_SPLITS)),
    )


_SEN = "P. Sen et al. Collective Classification in Network Data. AI Magazine 29(3), 2008"
_CRAVEN = (
    "M. Craven et al. Learning to Extract Symbolic Knowledge from the World Wide Web. AAAI 1998"
)
_ROZEMBERCZKI = (
    "B. Rozemberczki, C. Allen, R. Sarkar. Multi-scale Attributed Node Embedding. "
    "J. Complex Networks 2021"
)


def _planetoid(name: str, pyg: str, stats: tuple[int, ...], sizes: tuple[int, int, int],
               description: str, data: str) -> None:  # fmt: skip
    names = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
    DATASETS.add(name, DatasetSpec(
        name=name, pyg_class="Planetoid", pyg_kwargs={"name": pyg}, root="Planetoid",
        subdir=f"Planetoid/{pyg}", raw_files=tuple(f"ind.{pyg.lower()}.{n}" for n in names),
        num_nodes=stats[0], num_edges=stats[1], num_features=stats[2], num_classes=stats[3],
        split="public", description=description,
        citation=f"{_PLANETOID_CITE}; data: {data}", split_sizes=sizes,
    ))  # fmt: skip


def _shchur(name: str, cls: str, pyg: str, file: str, stats: tuple[int, ...],
            description: str) -> None:  # fmt: skip
    DATASETS.add(name, DatasetSpec(
        name=name, pyg_class=cls, pyg_kwargs={"name": pyg}, root=cls, subdir=f"{cls}/{pyg}",
        raw_files=(file,),
        num_nodes=stats[0], num_edges=stats[1], num_features=stats[2], num_classes=stats[3],
        split="random", description=description, citation=_SHCHUR_CITE,
    ))  # fmt: skip


def _geom_gcn(name: str, cls: str, kwargs: dict[str, Any], subdir: str, prefix: str,
              stats: tuple[int, ...], sizes: tuple[int, int, int], description: str,
              data: str) -> None:  # fmt: skip
    DATASETS.add(name, DatasetSpec(
        name=name, pyg_class=cls, pyg_kwargs=kwargs, root=subdir.split("/")[0], subdir=subdir,
        raw_files=_geom_gcn_files(prefix),
        num_nodes=stats[0], num_edges=stats[1], num_features=stats[2], num_classes=stats[3],
        split="geom-gcn", description=description,
        citation=f"{_GEOM_GCN_CITE}; data: {data}", split_sizes=sizes,
    ))  # fmt: skip


# name, PyG name, (nodes, directed edges, features, classes), public split sizes, description.
_planetoid("cora", "Cora", (2708, 10556, 1433, 7), (140, 500, 1000),
           "Cora citation graph: ML papers, bag-of-words features, 7 topics (homophilous)",
           _SEN)  # fmt: skip
_planetoid("citeseer", "CiteSeer", (3327, 9104, 3703, 6), (120, 500, 1000),
           "CiteSeer citation graph: CS papers, bag-of-words features, 6 areas (homophilous)",
           _SEN)  # fmt: skip
_planetoid("pubmed", "PubMed", (19717, 88648, 500, 3), (60, 500, 1000),
           "PubMed citation graph: diabetes papers, TF-IDF features, 3 classes (homophilous)",
           "G. Namata et al. Query-driven Active Surveying for Collective Classification. "
           "MLG 2012")  # fmt: skip

_shchur("amazon-computers", "Amazon", "Computers", "amazon_electronics_computers.npz",
        (13752, 491722, 767, 10),
        "Amazon co-purchases of computer products, bag-of-words reviews, 10 classes")  # fmt: skip
_shchur("amazon-photo", "Amazon", "Photo", "amazon_electronics_photo.npz",
        (7650, 238162, 745, 8),
        "Amazon co-purchases of photo products, bag-of-words reviews, 8 categories")  # fmt: skip
_shchur("coauthor-cs", "Coauthor", "CS", "ms_academic_cs.npz",
        (18333, 163788, 6805, 15),
        "Microsoft Academic co-authorship (computer science), keywords, 15 fields")  # fmt: skip
_shchur("coauthor-physics", "Coauthor", "Physics", "ms_academic_phy.npz",
        (34493, 495924, 8415, 5),
        "Microsoft Academic co-authorship (physics), keywords, 5 fields")  # fmt: skip

# Geom-GCN format; split sizes are those of split 0. Directed, with self-loops, as PyG gives them.
for _name, _stats, _sizes in [
    ("cornell", (183, 298, 1703, 5), (87, 59, 37)),
    ("texas", (183, 325, 1703, 5), (87, 59, 37)),
    ("wisconsin", (251, 515, 1703, 5), (120, 80, 51)),
]:
    _geom_gcn(_name, "WebKB", {"name": _name}, f"WebKB/{_name}", _name, _stats, _sizes,
              f"WebKB {_name.capitalize()} web pages: hyperlinks, bag-of-words, 5 page types "
              "(heterophilous, tiny)", _CRAVEN)  # fmt: skip
for _name, _stats, _sizes in [
    ("chameleon", (2277, 36101, 2325, 5), (1092, 729, 456)),
    ("squirrel", (5201, 217073, 2089, 5), (2496, 1664, 1041)),
]:
    _geom_gcn(_name, "WikipediaNetwork", {"name": _name, "geom_gcn_preprocess": True},
              f"WikipediaNetwork/{_name}/geom_gcn", _name, _stats, _sizes,
              f"Wikipedia {_name} page-page links, Geom-GCN features, 5 traffic classes "
              "(heterophilous)", _ROZEMBERCZKI)  # fmt: skip
_geom_gcn("actor", "Actor", {}, "Actor", "film", (7600, 30019, 932, 5), (3648, 2432, 1520),
          "Actor co-occurrence on Wikipedia film pages, keyword features, 5 classes "
          "(heterophilous)",
          "J. Tang, J. Sun, C. Wang, Z. Yang. Social Influence Analysis in Large-scale "
          "Networks. KDD 2009")  # fmt: skip


# --------------------------------------------------------------------------------------------
# Where data lives
# --------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """fathom's cache: ``$FATHOM_CACHE``, else ``$XDG_CACHE_HOME/fathom``, else ``~/.cache/fathom``.

    Empty environment variables count as unset. The folder is not created here.
    """
    env = os.environ.get("FATHOM_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "fathom"
    return Path.home() / ".cache" / "fathom"


def data_dir_candidates(data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """Data roots to search, in order, labelled for messages.

    An explicit ``data_dir`` (``--data-dir``) is the *only* place looked:
    ``[("data dir", data_dir)]``; it must be an existing folder. Without it:
    ``("FATHOM_DATA", $FATHOM_DATA)`` when set, then ``("cache", cache_dir() / "datasets")``
    (a root listed twice is kept once, with its first label).

    Raises:
        ConfigError: ``data_dir`` is an empty string (leave it unset instead).
        DataNotFoundError: ``data_dir`` does not exist.
        DataError: ``data_dir`` is not a folder.
    """
    if data_dir is not None:
        if str(data_dir).strip() == "":
            raise ConfigError(
                "data.data_dir (--data-dir) is empty; give a folder, or leave it unset to "
                "search $FATHOM_DATA and the cache"
            )
        path = Path(data_dir).expanduser()
        if not path.exists():
            raise DataNotFoundError(f"data dir (--data-dir) {path} does not exist")
        if not path.is_dir():
            raise DataError(f"data dir (--data-dir) {path} is not a folder")
        return [("data dir", path)]
    out: list[tuple[str, Path]] = []
    env = os.environ.get("FATHOM_DATA")
    if env:
        out.append(("FATHOM_DATA", Path(env).expanduser()))
    out.append(("cache", cache_dir() / "datasets"))
    seen: set[str] = set()
    unique = []
    for label, path in out:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            unique.append((label, path))
    return unique


def check_cache_writable(path: Path) -> None:
    """Refuse, in one line, a cache folder ``path`` that cannot be created or written: its
    nearest existing ancestor is a regular file, or a folder this process may not write.

    Raises:
        DataError: naming the cache and saying to set ``FATHOM_CACHE``.
    """
    probe = Path(os.path.abspath(path))
    while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
        probe = probe.parent
    where = f"fathom's cache {cache_dir()}"
    fix = "set FATHOM_CACHE to a writable folder"
    if not probe.is_dir():
        raise DataError(f"{where} cannot be used: {probe} is a file, not a folder; {fix}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise DataError(f"{where} is not writable ({probe} is read-only); {fix}")


@contextlib.contextmanager
def cache_writes(path: Path) -> Iterator[None]:
    """Check that ``path`` (in the cache) is writable, and turn any OSError of the writes
    inside the block into one line naming the cache (read-only file systems, full disks,
    a cache path that is a file)."""
    check_cache_writable(path)
    try:
        yield
    except OSError as exc:
        raise DataError(
            f"could not write fathom's cache {cache_dir()}: {_one_line(exc)}; set "
            "FATHOM_CACHE to a writable folder"
        ) from None


@lru_cache(maxsize=1)
def known_checksums() -> Mapping[str, str]:
    """Known sha256 of canonical raw files, keyed by path relative to a data root."""
    text = resources.files("fathom.data").joinpath("checksums.sha256").read_text("utf-8")
    table: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, _, rel = line.partition(" ")
        table[rel.strip().lstrip("*")] = digest.lower()
    return MappingProxyType(table)


def _missing_raw(spec: DatasetSpec, base: Path) -> list[str]:
    return [f for f in spec.raw_files if not (base / spec.raw_dir / f).is_file()]


def _locate(
    spec: DatasetSpec, candidates: list[tuple[str, Path]]
) -> tuple[tuple[str, Path] | None, list[str]]:
    """First candidate holding every raw file, and a description of each place looked in."""
    looked = []
    for label, base in candidates:
        missing = _missing_raw(spec, base)
        if not missing:
            return (label, base), looked
        if len(missing) == len(spec.raw_files):
            what = "no raw files"
        else:
            what = f"missing {missing[0]}" + (
                f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            )
        looked.append(f"{label} {base / spec.raw_dir} ({what})")
    return None, looked


# --------------------------------------------------------------------------------------------
# Files: hashing, atomic copies, quiet PyG
# --------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tmp_name(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _copy_hashed(src: Path, dst: Path) -> tuple[Path, str]:
    """Copy ``src`` to a temporary file beside ``dst``; return it and the sha256 of the bytes."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(dst)
    h = hashlib.sha256()
    try:
        with open(src, "rb") as fi, open(tmp, "wb") as fo:
            for chunk in iter(lambda: fi.read(1 << 20), b""):
                h.update(chunk)
                fo.write(chunk)
            fo.flush()
            os.fsync(fo.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, h.hexdigest()


def _mismatch(rel: str, path: Path, expected: str, actual: str, hint: str) -> DataError:
    return DataError(
        f"sha256 mismatch for {rel} ({path}): expected {expected}, got {actual}; {hint}"
    )


def _sync_raw(spec: DatasetSpec, src_base: Path, cache_base: Path, verify: bool) -> dict[str, str]:
    """Mirror the raw files from ``src_base`` into the cache; return {file name: sha256}.

    Never writes under ``src_base`` unless it *is* the cache.
    """
    known = known_checksums() if verify else {}
    hashes: dict[str, str] = {}
    for fname, rel in zip(spec.raw_files, spec.raw_paths, strict=True):
        src, dst = src_base / rel, cache_base / rel
        expected = known.get(rel)
        in_cache = dst.is_file()
        if in_cache and os.path.samefile(src, dst):
            digest = _sha256(dst)
            if expected and digest != expected:
                raise _mismatch(
                    rel,
                    dst,
                    expected,
                    digest,
                    "the cached copy is not the canonical file: delete it or pass verify=False",
                )
            hashes[fname] = digest
            continue
        if in_cache:
            digest = _sha256(dst)
            if digest == (expected or _sha256(src)):
                hashes[fname] = digest  # the cached copy already verifies
                continue
        with cache_writes(cache_base):
            tmp, digest = _copy_hashed(src, dst)
            if expected and digest != expected:
                tmp.unlink(missing_ok=True)
                raise _mismatch(
                    rel,
                    src,
                    expected,
                    digest,
                    "the file is corrupt or not the canonical version (pass verify=False to "
                    "use it anyway)",
                )
            os.replace(tmp, dst)
        hashes[fname] = digest
    return hashes


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


@contextlib.contextmanager
def _quiet_pyg() -> Iterator[None]:
    """Swallow PyG's "Processing..." / "Done!" lines; pass anything else through afterwards."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        for stream, buf in ((sys.stdout, out), (sys.stderr, err)):
            kept = [
                line
                for line in buf.getvalue().splitlines(keepends=True)
                if line.strip() not in _PYG_CHATTER
            ]
            if kept:
                stream.write("".join(kept))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _instantiate(spec: DatasetSpec, base: Path) -> Any:
    """Run the PyG class on ``base`` (used only on a private staging folder that fathom
    created and filled with verified raw files: it processes them there)."""
    cls = spec.dataset_class()
    with _quiet_pyg():
        return cls(root=str(base / spec.root), **spec.pyg_kwargs)


def _download_raw(spec: DatasetSpec, stage: Path) -> None:
    """Let PyG download the raw files into ``stage`` *without processing them*: they are
    checked against ``checksums.sha256`` before anything reads them."""
    cls = spec.dataset_class()
    download_only = type(
        cls.__name__,
        (cls,),
        {"_process": lambda self: None, "load": lambda self, *args, **kwargs: None},
    )
    try:
        with _quiet_pyg():
            download_only(root=str(stage / spec.root), **spec.pyg_kwargs)
    except Exception as exc:
        # TUDataset reads its processed file itself after downloading; only a missing raw
        # file means the download failed.
        if _missing_raw(spec, stage):
            raise _DownloadFailedError(_one_line(exc)) from exc


def _marker(spec: DatasetSpec, hashes: Mapping[str, str]) -> dict[str, Any]:
    import torch_geometric

    return {
        "dataset": spec.name,
        "pyg_class": spec.pyg_class,
        "pyg_kwargs": dict(spec.pyg_kwargs),
        "torch_geometric": torch_geometric.__version__,
        "raw_sha256": dict(sorted(hashes.items())),
    }


def _folder_hashes(folder: Path) -> dict[str, str] | None:
    """sha256 of every file of ``folder`` but the marker; None if it holds anything other
    than regular files (a link, a sub-folder)."""
    out = {}
    for entry in sorted(folder.iterdir()):
        if entry.name == _MARKER:
            continue
        if entry.is_symlink() or not entry.is_file():
            return None
        out[entry.name] = _sha256(entry)
    return out


def _processed_ok(spec: DatasetSpec, cache_base: Path, hashes: Mapping[str, str]) -> bool:
    """Whether the cache's ``processed/`` folder was published by fathom from exactly these
    raw files, with this PyG, and holds exactly the files (by sha256) it recorded."""
    folder = cache_base / spec.subdir / "processed"
    try:
        marker = json.loads((folder / _MARKER).read_text("utf-8"))
        if not isinstance(marker, dict):
            return False
        recorded = marker.pop("processed_sha256", None)
        if marker != _marker(spec, hashes) or not isinstance(recorded, dict) or not recorded:
            return False
        return _folder_hashes(folder) == recorded
    except (OSError, ValueError):
        return False


# What InMemoryDataset.save / TUDataset.process write to processed/data.pt.
_PROCESSED_FILE = "data.pt"


class _ProcessedDataset:
    """The graphs of a processed ``data.pt``, indexable like PyG's dataset (``len``,
    ``[i]``), built without running the PyG class."""

    def __init__(self, data: Data, slices: dict[str, Any] | None) -> None:
        from torch_geometric.data import InMemoryDataset

        self._inner = InMemoryDataset(log=False)
        self._inner._data = data
        self._inner.slices = slices

    def __len__(self) -> int:
        return len(self._inner)

    def __getitem__(self, idx: int) -> Data:
        return self._inner[idx]


def _load_processed(spec: DatasetSpec, cache_base: Path) -> _ProcessedDataset:
    """Read ``processed/data.pt`` weights-only (tensors, dicts and PyG's ``Data`` classes;
    nothing in the file runs) and rebuild the dataset as the PyG class would (TUDataset's
    node/edge attribute columns dropped unless asked for). ``pre_transform.pt`` and
    ``pre_filter.pt`` are never read."""
    path = cache_base / spec.subdir / "processed" / _PROCESSED_FILE
    refuse = f"refusing to load the processed cache {path}: not a plain PyG data file"
    out = safe_torch_load(path, _pyg_safe_globals(), refuse)
    tu = spec.pyg_class == "TUDataset"
    if not isinstance(out, tuple) or len(out) != (4 if tu else 3):
        raise DataError(f"{refuse} (unexpected layout)")
    stored, slices, data_cls = out[0], out[1], out[-1]
    sizes = out[2] if tu else {}
    if (
        data_cls is not Data
        or not isinstance(stored, dict)
        or not (slices is None or isinstance(slices, dict))
        or not isinstance(sizes, dict)
    ):
        raise DataError(f"{refuse} (unexpected layout)")
    data = Data.from_dict(stored)
    if tu:
        for key, size in (("x", "num_node_attributes"), ("edge_attr", "num_edge_attributes")):
            use = spec.pyg_kwargs.get(f"use_{'node' if key == 'x' else 'edge'}_attr", False)
            if getattr(data, key, None) is not None and not use:
                data[key] = data[key][:, int(sizes.get(size, 0)) :]
    return _ProcessedDataset(data, slices)


def _new_stage(cache_base: Path, spec: DatasetSpec) -> Path:
    parent = cache_base / _STAGING
    parent.mkdir(parents=True, exist_ok=True)
    # Leftovers of killed runs (never read: only a published processed/ counts).
    cutoff = time.time() - _STALE_STAGE_S
    for old in parent.iterdir():
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{spec.name}-", dir=parent))


def _publish_processed(
    spec: DatasetSpec, stage: Path, cache_base: Path, hashes: Mapping[str, str]
) -> None:
    """Rename the finished ``processed/`` folder from ``stage`` into the cache in one step,
    with a marker recording the raw files' and every processed file's sha256."""
    src = stage / spec.subdir / "processed"
    if not src.is_dir():
        raise RuntimeError(f"PyG wrote no {src}: the spec of {spec.name!r} is wrong")
    processed = _folder_hashes(src)
    if not processed or _PROCESSED_FILE not in processed:
        raise RuntimeError(f"PyG wrote no {src / _PROCESSED_FILE}")
    marker = {**_marker(spec, hashes), "processed_sha256": processed}
    (src / _MARKER).write_text(json.dumps(marker, indent=1), "utf-8")
    dst = cache_base / spec.subdir / "processed"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():  # stale, forged, or another PyG version
        trash = dst.with_name(f".processed.stale-{uuid.uuid4().hex[:8]}")
        with contextlib.suppress(FileNotFoundError):
            os.replace(dst, trash)
        if trash.is_symlink():
            trash.unlink()
        else:
            shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(src, dst)
    except OSError:
        if not _processed_ok(spec, cache_base, hashes):  # a concurrent run published first?
            raise


def _build_processed(spec: DatasetSpec, cache_base: Path, hashes: Mapping[str, str]) -> None:
    """Process the cached raw files in a private staging folder and publish the result.

    The raw files are *copied* into the stage and each copy's sha256 compared with
    ``hashes`` (what was verified), so PyG only ever reads the bytes that were checked.
    """
    stage = _new_stage(cache_base, spec)
    try:
        raw = stage / spec.raw_dir
        raw.mkdir(parents=True)
        for fname in spec.raw_files:
            tmp, digest = _copy_hashed(cache_base / spec.raw_dir / fname, raw / fname)
            if digest != hashes[fname]:
                raise DataError(
                    f"the cached raw file {cache_base / spec.raw_dir / fname} changed while "
                    f"{spec.name!r} was being prepared (sha256 {digest}, was "
                    f"{hashes[fname]}); run again"
                )
            os.replace(tmp, raw / fname)
        try:
            _instantiate(spec, stage)
        except Exception as exc:
            raise DataError(
                f"could not process dataset {spec.name!r} from {cache_base / spec.raw_dir}: "
                f"{_one_line(exc)}"
            ) from exc
        _publish_processed(spec, stage, cache_base, hashes)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _download(spec: DatasetSpec, cache_base: Path, verify: bool) -> dict[str, str]:
    """Let PyG download the raw files into a staging folder, check them, and move them into
    the cache (processing happens afterwards, from the cache, like for any other source)."""
    stage = _new_stage(cache_base, spec)
    try:
        _download_raw(spec, stage)
        known = known_checksums() if verify else {}
        hashes = {}
        for fname, rel in zip(spec.raw_files, spec.raw_paths, strict=True):
            digest = _sha256(stage / rel)
            expected = known.get(rel)
            if expected and digest != expected:
                raise _mismatch(
                    rel,
                    Path(f"<download of {spec.raw_dir}/{fname}>"),
                    expected,
                    digest,
                    "the downloaded file differs from the canonical version",
                )
            hashes[fname] = digest
        for rel in spec.raw_paths:
            dst = cache_base / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, dst)
        return hashes
    finally:
        shutil.rmtree(stage, ignore_errors=True)


class _DownloadFailedError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _check_split(spec: DatasetSpec, split: int) -> None:
    if (
        isinstance(split, bool)
        or not isinstance(split, int)
        or not (0 <= split < NUM_GEOM_GCN_SPLITS)
    ):
        raise ConfigError(
            f"split must be an integer in 0..{NUM_GEOM_GCN_SPLITS - 1} (the fixed geom-gcn "
            f"splits), got {split!r} for dataset {spec.name!r}"
        )


def open_pyg_dataset(
    spec: DatasetSpec,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    verify: bool = True,
) -> Any:
    """The graphs of ``spec`` (``len`` and ``[i]`` like a PyG dataset), processed in the
    cache (see :func:`load_dataset` for where raw files are looked for, checked, copied,
    downloaded and processed).

    Nothing from the cache runs: the processed ``data.pt`` is read weights-only (tensors and
    PyG's ``Data`` classes only) after its sha256 matched the completion marker; a folder
    that does not match, or that does not load weights-only, is rebuilt from the raw files.

    Raises:
        DataNotFoundError: the raw files are nowhere and could not be downloaded.
        DataError: a checksum mismatch, a processing failure or an unusable cache.
    """
    cache_base = cache_dir() / "datasets"
    found, looked = _locate(spec, data_dir_candidates(data_dir))
    if found is not None:
        hashes = _sync_raw(spec, found[1], cache_base, verify)
    else:
        reason = "not downloaded (download=False)"
        hashes = None
        if data_dir is not None:
            reason = "an explicit data dir is the only place looked"
        elif download:
            try:
                with cache_writes(cache_base):
                    hashes = _download(spec, cache_base, verify)
            except _DownloadFailedError as exc:
                reason = f"download failed ({exc})"
        if hashes is None:
            raise DataNotFoundError(
                f"dataset {spec.name!r} not found: looked in {'; '.join(looked)}; {reason}. "
                f"Set --data-dir or FATHOM_DATA to a folder laid out like PyG's (with "
                f"{spec.raw_dir}/{spec.raw_files[0]} and the other raw files), or run once on a "
                f"machine with internet to download it into {cache_base}"
            )
    if not _processed_ok(spec, cache_base, hashes):
        with cache_writes(cache_base):
            _build_processed(spec, cache_base, hashes)
    try:
        return _load_processed(spec, cache_base)
    except DataError:
        pass  # a forged or foreign data.pt: it was not unpickled; rebuild it from raw
    with cache_writes(cache_base):
        _build_processed(spec, cache_base, hashes)
    return _load_processed(spec, cache_base)


def _normalize_features(data: Data, normalize: bool | None) -> tuple[Data, bool]:
    """Row-normalise ``data.x`` (PyG's ``NormalizeFeatures``: each row sums to one) when
    ``normalize`` is true, or, when it is None, when every feature is non-negative (the rule
    training uses: bag-of-words features are normalised, Gaussian ones are not). Returns the
    graph and whether it was normalised."""
    if normalize is None:
        normalize = bool((data.x >= 0).all())
    if normalize:
        from torch_geometric.transforms import NormalizeFeatures

        data = NormalizeFeatures()(data)
    return data, bool(normalize)


normalize_features = _normalize_features


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    split: int = 0,
    seed: int = 0,
    download: bool = True,
    verify: bool = True,
    normalize_features: bool | None = False,
) -> Data:
    """Load a named benchmark dataset as one validated ``Data`` with 1-D boolean masks.

    See the module docstring for where files are looked for and what is written where.

    Args:
        name: a registered name (see ``DATASETS.names()``); unknown names raise ConfigError.
        data_dir: an explicit data root (``--data-dir``), searched before ``$FATHOM_DATA``.
        split: which of the 10 fixed geom-gcn splits to use (0..9). Validated for every
            dataset but only used by ``geom-gcn`` datasets: Planetoid has one public split and
            ``random`` datasets draw theirs from ``seed``.
        seed: seed of the per-class split (20 train / 30 val per class, rest test) of
            ``random`` datasets (Amazon, Coauthor); unused otherwise.
        download: let PyG download missing raw files into the cache (needs internet). Not
            with an explicit ``data_dir``, which is the only place looked.
        verify: check raw files against the known sha256 table before anything reads them.
            Planetoid's raw files are Python pickles that PyG unpickles: with
            ``verify=False`` a tampered raw file can run code when the dataset is processed,
            so only turn it off for files you trust.
        normalize_features: ``False`` (default): features as published (Cora's raw 0/1
            bag of words). ``True``: row-normalised (each row sums to one). ``None``: what
            training, ``fathom diagnose`` and :func:`fathom.data.build.build_dataset` use by
            default: row-normalised when every feature is non-negative (all these datasets).
            Measurements on features differ between the two (Cora's Dirichlet energy is
            about 118 raw, 0.48 row-normalised).

    Returns:
        ``Data`` with ``x``, ``edge_index``, ``y``, ``train_mask``/``val_mask``/``test_mask``
        (``[N]`` bool) and ``name``. Graphs are returned as PyG gives them: WebKB, Wikipedia
        and Actor graphs are directed and contain self-loops. Nothing on the ``Data``
        records the feature preprocessing: it is what ``normalize_features`` asked for.

    Raises:
        ConfigError: unknown name or bad ``split``.
        DataNotFoundError: the raw files are nowhere and could not be downloaded.
        DataError: a checksum mismatch, a processing failure or an invalid graph.
    """
    spec = DATASETS.get(name)
    _check_split(spec, split)
    data = open_pyg_dataset(spec, data_dir, download=download, verify=verify)[0]

    if spec.split == "geom-gcn":
        for m in _MASKS:
            mask = data[m]
            if mask.dim() != 2 or mask.size(1) != NUM_GEOM_GCN_SPLITS:
                raise DataError(
                    f"{spec.name}: expected {m} of shape [N, 10], got {tuple(mask.shape)}"
                )
            data[m] = mask[:, split].bool().clone()
    elif spec.split == "random":
        train, val, test = per_class_split(data.y, train_per_class=20, val_per_class=30, seed=seed)
        data.train_mask, data.val_mask, data.test_mask = train, val, test
    else:
        for m in _MASKS:
            data[m] = data[m].bool()
    data.name = spec.name
    validate_graph(data)
    if normalize_features is not False:
        data, _ = _normalize_features(data, normalize_features)
    return data


def list_datasets(
    data_dir: str | Path | None = None, registry: Registry[Any] | None = None
) -> list[dict[str, Any]]:
    """Every dataset of ``registry`` (default: the node-classification :data:`DATASETS`;
    ``fathom.data.graph_datasets.GRAPH_DATASETS`` for graph classification) with its known
    statistics and where its raw files are.

    Nothing is loaded: only the presence of the raw files is checked. Each dict has ``name``,
    ``description``, ``nodes``, ``edges``, ``features``, ``classes``, ``split`` (kind),
    ``citation``, ``availability`` (``"data dir"``, ``"FATHOM_DATA"``, ``"cache"`` or
    ``"missing"``) and ``path`` (the ``raw/`` folder found, or None); graph-classification
    datasets also ``graphs`` (nodes and edges are then totals over all graphs).
    """
    candidates = data_dir_candidates(data_dir)
    registry = DATASETS if registry is None else registry
    rows = []
    for name in registry.names():
        spec = registry.get(name)
        found, _ = _locate(spec, candidates)
        rows.append(
            {
                "name": spec.name,
                **({"graphs": spec.num_graphs} if hasattr(spec, "num_graphs") else {}),
                "description": spec.description,
                "nodes": spec.num_nodes,
                "edges": spec.num_edges,
                "features": spec.num_features,
                "classes": spec.num_classes,
                "split": spec.split,
                "citation": spec.citation,
                "availability": found[0] if found else "missing",
                "path": str(found[1] / spec.raw_dir) if found else None,
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# User graph files
# --------------------------------------------------------------------------------------------


def _pyg_safe_globals() -> list[Any]:
    """PyG classes a pickled ``Data`` needs that are not yet allowed for ``weights_only`` loads.

    PyG registers ``Data`` itself. ``torch.serialization.safe_globals`` *removes* its globals on
    exit, so passing one that was already registered would unregister it for everyone.
    """
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    registered = torch.serialization.get_safe_globals()
    needed = [Data, DataEdgeAttr, DataTensorAttr, GlobalStorage]
    return [g for g in needed if g not in registered]


def load_graph_file(path: str | Path, *, seed: int = 0) -> Data:
    """Load a user's graph from ``.npz`` or ``.pt``/``.pth`` and validate it.

    ``.npz`` (read with ``allow_pickle=False``): ``edge_index`` [2, E] int, ``x`` [N, F],
    ``y`` [N] int, optionally ``train_mask``/``val_mask``/``test_mask`` (bool or 0/1; all three
    or none). Other arrays (``edge_weight``, ``edge_attr``, ...) are kept as tensors.

    ``.pt``/``.pth``: a ``torch_geometric.data.Data`` or a ``dict`` of tensors with the same
    keys, saved with ``torch.save``. It is read with ``torch.load(weights_only=True)``, allowing
    only PyG's ``Data`` storage classes, so a file holding anything else is refused and
    nothing in it runs.

    Without masks, a stratified 60/20/20 split is drawn with ``seed``. ``x`` is cast to
    float32. ``data.name`` is the file's stem.

    Raises:
        DataNotFoundError: no such file.
        DataError: unsupported extension, unreadable or unsafe file, missing key, bad shape or
            dtype, NaN features, or any other :func:`validate_graph` failure.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataNotFoundError(f"graph file {p} not found")
    if not p.is_file():
        raise DataError(f"graph file {p} is not a regular file")
    ext = p.suffix.lower()
    if ext == ".npz":
        mapping = _read_npz(p)
    elif ext in (".pt", ".pth"):
        mapping = _read_torch(p)
    else:
        raise DataError(
            f"unsupported graph file extension {ext or '(none)'!r} for {p}; supported: "
            f"{', '.join(GRAPH_FILE_SUFFIXES)}"
        )
    data = _graph_from_mapping(mapping, p, seed)
    data.name = p.stem
    try:
        validate_graph(data)
    except DataError as exc:
        raise DataError(f"{p}: {exc}") from None
    return data


def _read_npz(p: Path) -> dict[str, Any]:
    try:
        loaded = np.load(p, allow_pickle=False)
    except ValueError as exc:  # a pickle, or something numpy cannot parse
        raise DataError(
            f"refusing to load {p}: not a plain .npz archive ({_one_line(exc)})"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"could not read {p} as .npz: {_one_line(exc)}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{p} is a single .npy array, not an .npz archive of named arrays")
    with loaded:
        check_npz_sizes(p, loaded.zip)
        out = {}
        for key in loaded.files:
            try:
                out[key] = loaded[key]
            except ValueError as exc:  # object arrays need pickle
                raise DataError(
                    f"refusing to load {p}: array {key!r} holds Python objects, which need "
                    f"pickle ({_one_line(exc)}); save plain numeric arrays"
                ) from None
            except (OSError, EOFError, zipfile.BadZipFile) as exc:
                raise DataError(f"could not read array {key!r} of {p}: {_one_line(exc)}") from None
    return out


def _npy_header(f: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the header of the ``.npy`` stream ``f`` (nothing else read)."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:  # 3.0: utf-8 field names; same layout as 2.0
        from numpy.lib import _format_impl

        shape, _, dtype = _format_impl._read_array_header(f, version)
    return tuple(int(d) for d in shape), dtype


def check_npz_sizes(p: Path, archive: zipfile.ZipFile, hint: str = "") -> None:
    """Refuse, before any array of the ``.npz`` ``archive`` (the file ``p``) is read, one
    whose ``.npy`` header claims more bytes than its archive member holds, or arrays that
    together need more than :func:`fathom.limits.memory_budget`.

    Raises:
        DataError: one line naming the array, its claimed shape and size.
    """
    from fathom.limits import check_bytes, human_bytes

    total = 0
    for info in archive.infolist():
        key = info.filename.removesuffix(".npy")
        try:
            with archive.open(info) as f:
                shape, dtype = _npy_header(f)
                header = f.tell()
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, SyntaxError) as exc:
            raise DataError(f"could not read the header of array {key!r} of {p}: "
                            f"{_one_line(exc)}") from None  # fmt: skip
        if dtype.hasobject:
            continue  # refused when read (needs pickle)
        if any(d < 0 for d in shape):
            raise DataError(f"{p}: array {key!r} has a negative dimension in {list(shape)}")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > info.file_size - header:
            raise DataError(
                f"refusing to load {p}: array {key!r} claims shape {list(shape)} of {dtype} "
                f"({human_bytes(nbytes)}) but its archive member holds only "
                f"{human_bytes(max(info.file_size - header, 0))}"
            )
        total += nbytes
    check_bytes(total, f"the arrays of {p}", error=DataError, hint=hint)


def safe_torch_load(p: Path, allowed: list[Any], refuse: str, hint: str = "") -> Any:
    """``torch.load(p, weights_only=True)`` allowing only the globals ``allowed``: nothing in
    the file runs. A file that needs anything else is a one-line DataError ``refuse (it needs
    X)hint``; an unreadable one names ``p``."""
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"it needs {found.group(1)}" if found else _one_line(exc)
        raise DataError(f"{refuse} ({what}){hint}") from None
    except Exception as exc:
        raise DataError(f"could not read {p} as a torch file: {_one_line(exc)}") from None


def _read_torch(p: Path) -> dict[str, Any]:
    from fathom.limits import check_bytes

    # A .pt's tensors are stored uncompressed: loading it needs about its size.
    check_bytes(p.stat().st_size, f"graph file {p}", error=DataError)
    refuse = f"refusing to load {p}: not a plain tensor/Data file"
    obj = safe_torch_load(p, _pyg_safe_globals(), refuse, "; save a PyG Data or a dict of tensors")
    if type(obj) is Data:
        return {key: value for key, value in obj.items()}
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return dict(obj)
    raise DataError(
        f"{refuse} (it holds a {type(obj).__name__}); save a PyG Data or a dict of tensors"
    )


def _as_tensor(value: Any, key: str, p: Path) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach().cpu()
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"dtype {arr.dtype}")
        return torch.from_numpy(np.ascontiguousarray(arr))
    except (TypeError, ValueError) as exc:
        raise DataError(f"{p}: {key} must be a numeric array, got {_one_line(exc)}") from None


def _is_int(t: Tensor) -> bool:
    return not (t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool)


def _graph_from_mapping(mapping: Mapping[str, Any], p: Path, seed: int) -> Data:
    missing = [k for k in ("edge_index", "x", "y") if k not in mapping or mapping[k] is None]
    if missing:
        present = ", ".join(sorted(mapping)) or "none"
        raise DataError(
            f"{p}: missing required key {', '.join(repr(k) for k in missing)} (keys present: "
            f"{present}); a graph file needs edge_index [2, E], x [N, F] and y [N]"
        )
    edge_index = _as_tensor(mapping["edge_index"], "edge_index", p)
    x = _as_tensor(mapping["x"], "x", p)
    y = _as_tensor(mapping["y"], "y", p)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise DataError(f"{p}: edge_index must have shape [2, E], got {list(edge_index.shape)}")
    if not _is_int(edge_index):
        raise DataError(f"{p}: edge_index must have an integer dtype, got {edge_index.dtype}")
    if x.dim() != 2:
        raise DataError(f"{p}: x must have shape [N, F], got {list(x.shape)}")
    if y.dim() != 1 or y.size(0) != x.size(0):
        raise DataError(f"{p}: y must have shape [N] = [{x.size(0)}], got {list(y.shape)}")
    if not _is_int(y):
        raise DataError(f"{p}: y must have an integer dtype, got {y.dtype}")
    fields: dict[str, Any] = {
        "edge_index": edge_index.long(),
        "x": x.to(torch.float32),
        "y": y.long(),
    }

    present = [m for m in _MASKS if mapping.get(m) is not None]
    if present and len(present) < len(_MASKS):
        absent = [m for m in _MASKS if m not in present]
        raise DataError(
            f"{p}: has {', '.join(present)} but not {', '.join(absent)}; give all three masks "
            f"or none (then a stratified split is drawn)"
        )
    if present:
        for m in _MASKS:
            fields[m] = _mask(_as_tensor(mapping[m], m, p), m, x.size(0), p)
    else:
        # Labels checked before the split is drawn: it sizes per-class work by max(y) + 1.
        try:
            validate_graph(Data(**fields), require_masks=False)
        except DataError as exc:
            raise DataError(f"{p}: {exc}") from None
        fields.update(zip(_MASKS, stratified_split(fields["y"], seed=seed), strict=True))

    for key, value in mapping.items():
        if key in fields or key in _MASKS or key == "name":
            continue
        fields[key] = (
            torch.from_numpy(np.ascontiguousarray(value))
            if isinstance(value, np.ndarray)
            else value
        )
    return Data(**fields)


def _mask(t: Tensor, key: str, n: int, p: Path) -> Tensor:
    if t.dim() != 1 or t.size(0) != n:
        raise DataError(f"{p}: {key} must have shape [N] = [{n}], got {list(t.shape)}")
    if t.dtype != torch.bool:
        if not bool(((t == 0) | (t == 1)).all()):
            bad = t[(t != 0) & (t != 1)][:5].tolist()
            raise DataError(f"{p}: {key} must be bool or 0/1, found values {bad}")
        t = t != 0
    return t
