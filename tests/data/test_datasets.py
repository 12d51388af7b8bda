"""Tests of fathom.data.datasets: data-dir policy, cache safety, checksums and graph files.

Everything except the ``real data`` section runs on fixtures the tests write themselves. The
real-data tests read ``$FATHOM_DATA`` (CI points it at the shared datasets) and are skipped,
with a reason, when it is unset.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

import fathom.data.datasets as D
from fathom.data.datasets import (
    DATASETS,
    cache_dir,
    data_dir_candidates,
    known_checksums,
    list_datasets,
    load_dataset,
    load_graph_file,
)
from fathom.errors import ConfigError, DataError, DataNotFoundError
from hostile import Payload

# Read once at import: the autouse fixture below removes FATHOM_DATA from every test's env.
REAL_DATA = os.environ.get("FATHOM_DATA") or None
needs_real_data = pytest.mark.skipif(
    REAL_DATA is None, reason="FATHOM_DATA is not set: real-dataset tests need the shared datasets"
)

NAMES = {
    "cora", "citeseer", "pubmed", "coauthor-cs", "coauthor-physics", "amazon-computers",
    "amazon-photo", "cornell", "texas", "wisconsin", "chameleon", "squirrel", "actor",
}  # fmt: skip


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private cache per test; no FATHOM_DATA or XDG_CACHE_HOME leaking in from outside."""
    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FATHOM_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

N_TRAIN, N_ALLX, N_FEAT, N_CLS = 4, 510, 5, 3
CORA_RAW = Path("Planetoid/Cora/raw")


def write_planetoid(root: Path, *, n_test: int = 6) -> Path:
    """Write a tiny Cora in Planetoid's raw format under ``root``; return ``root``.

    PyG's reader puts nodes ``len(y) .. len(y) + 499`` in the validation mask, so the graph
    needs > 504 nodes: 4 labelled training nodes, 510 ``allx`` rows, ``n_test`` test nodes.
    Edges form a ring (2 N directed entries); node 0 also lists a duplicate and a self-loop,
    which PyG drops.
    """
    raw = root / CORA_RAW
    raw.mkdir(parents=True)
    n = N_ALLX + n_test
    rng = np.random.default_rng(n)
    feats = (rng.random((n, N_FEAT)) < 0.5).astype(np.float32)
    feats[:, 0] = 1.0
    onehot = np.eye(N_CLS, dtype=np.int64)[np.arange(n) % N_CLS]
    test_index = np.arange(N_ALLX, n)[::-1]  # not sorted, as in the real files
    graph = {i: [(i - 1) % n, (i + 1) % n] for i in range(n)}
    graph[0] += [1, 0]
    objects = {
        "x": sp.csr_matrix(feats[:N_TRAIN]),
        "tx": sp.csr_matrix(feats[test_index]),
        "allx": sp.csr_matrix(feats[:N_ALLX]),
        "y": onehot[:N_TRAIN],
        "ty": onehot[test_index],
        "ally": onehot[:N_ALLX],
        "graph": graph,
    }
    for name, obj in objects.items():
        with open(raw / f"ind.cora.{name}", "wb") as f:
            pickle.dump(obj, f, protocol=2)
    (raw / "ind.cora.test.index").write_text("".join(f"{i}\n" for i in test_index))
    return root


def snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``root`` (and ``root`` itself) with is-dir, size and mtime."""
    out = {}
    for p in [root, *sorted(root.rglob("*"))]:
        st = p.lstat()
        out[str(p.relative_to(root))] = (p.is_dir(), st.st_size, st.st_mtime_ns)
    return out


@contextlib.contextmanager
def read_only(root: Path) -> Iterator[None]:
    """chmod ``root`` read-only (dirs 0555, files 0444) and restore it afterwards."""
    paths = [root, *root.rglob("*")]
    try:
        for p in sorted(paths, key=lambda q: len(q.parts), reverse=True):
            p.chmod(0o555 if p.is_dir() else 0o444)
        yield
    finally:
        for p in sorted(paths, key=lambda q: len(q.parts)):
            p.chmod(0o755 if p.is_dir() else 0o644)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ring_graph(n: int = 30, classes: int = 3) -> dict[str, np.ndarray]:
    src = np.arange(n)
    dst = (src + 1) % n
    rng = np.random.default_rng(0)
    return {
        "edge_index": np.stack([np.r_[src, dst], np.r_[dst, src]]).astype(np.int64),
        "x": rng.normal(size=(n, 4)).astype(np.float32),
        "y": (np.arange(n) % classes).astype(np.int64),
    }


def assert_split(data: Data) -> None:
    n = data.num_nodes
    masks = [data.train_mask, data.val_mask, data.test_mask]
    for m in masks:
        assert m.dtype == torch.bool and m.shape == (n,)
    assert not (masks[0] & masks[1]).any()
    assert not (masks[0] & masks[2]).any()
    assert not (masks[1] & masks[2]).any()


# --------------------------------------------------------------------------------------------
# Resolution order and the registry
# --------------------------------------------------------------------------------------------


def test_cache_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_dir() == tmp_path / "cache"  # FATHOM_CACHE from the autouse fixture
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "cache"  # FATHOM_CACHE beats XDG_CACHE_HOME
    monkeypatch.delenv("FATHOM_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "fathom"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "fathom"


def test_data_dir_candidates_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ("cache", tmp_path / "cache" / "datasets")
    assert data_dir_candidates() == [cache]
    monkeypatch.setenv("FATHOM_DATA", str(tmp_path / "env"))
    assert data_dir_candidates() == [("FATHOM_DATA", tmp_path / "env"), cache]
    (tmp_path / "arg").mkdir()
    # An explicit data dir is the only place looked.
    assert data_dir_candidates(str(tmp_path / "arg")) == [("data dir", tmp_path / "arg")]


def test_explicit_data_dir_must_exist_and_not_be_empty(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="does not exist") as info:
        data_dir_candidates(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        data_dir_candidates(tmp_path / "file")
    with pytest.raises(ConfigError, match="empty"):
        data_dir_candidates("")
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_dataset("cora", data_dir=tmp_path / "nope")


def test_load_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arg = write_planetoid(tmp_path / "arg", n_test=6)  # 516 nodes
    env = write_planetoid(tmp_path / "env", n_test=8)  # 518 nodes
    monkeypatch.setenv("FATHOM_DATA", str(env))
    assert load_dataset("cora", data_dir=arg, verify=False).num_nodes == 516  # arg > env
    assert load_dataset("cora", verify=False).num_nodes == 518  # env > cache
    monkeypatch.delenv("FATHOM_DATA")
    assert load_dataset("cora", verify=False).num_nodes == 518  # the cache now has env's copy
    # An explicit data dir missing a raw file is not replaced by FATHOM_DATA or the cache.
    (arg / CORA_RAW / "ind.cora.graph").unlink()
    monkeypatch.setenv("FATHOM_DATA", str(env))
    with pytest.raises(DataNotFoundError, match="only place looked"):
        load_dataset("cora", data_dir=arg, verify=False)
    # Without one, a candidate missing any raw file is skipped for the next complete one.
    (env / CORA_RAW / "ind.cora.graph").unlink()
    assert load_dataset("cora", verify=False).num_nodes == 518  # the cache's copy


def test_registry_names_and_specs() -> None:
    assert set(DATASETS.names()) == NAMES
    table = known_checksums()
    covered = set()
    for name in DATASETS.names():
        spec = DATASETS.get(name)
        assert spec.dataset_class().__name__ == spec.pyg_class
        assert spec.split in D.SPLIT_KINDS and spec.description and spec.citation
        assert min(spec.num_nodes, spec.num_edges, spec.num_features, spec.num_classes) > 0
        assert all(rel in table for rel in spec.raw_paths), name
        covered |= set(spec.raw_paths)
    from fathom.data.graph_datasets import GRAPH_DATASETS

    for name in GRAPH_DATASETS.names():
        covered |= set(GRAPH_DATASETS.get(name).raw_paths)
    assert covered == set(table)  # checksums.sha256 lists exactly the registered raw files
    assert all(len(h) == 64 for h in table.values())
    cora = DATASETS.get("cora")
    assert (cora.num_nodes, cora.num_edges, cora.num_features, cora.num_classes) == (
        2708, 10556, 1433, 7,
    )  # fmt: skip
    assert DATASETS.get("chameleon").pyg_kwargs["geom_gcn_preprocess"] is True
    assert DATASETS.get("amazon-photo").split == "random"
    with pytest.raises(TypeError):
        cora.pyg_kwargs["name"] = "x"  # type: ignore[index]


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(ConfigError, match="cora") as info:
        load_dataset("corra", download=False)
    assert "amazon-photo" in str(info.value) and "corra" in str(info.value)


@pytest.mark.parametrize("split", [10, -1, True, 1.5])
def test_bad_split_is_config_error(split: object) -> None:
    with pytest.raises(ConfigError, match=r"split.*0\.\.9"):
        load_dataset("chameleon", split=split, download=False)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Loading from a data dir: counts, no writes, cache behaviour
# --------------------------------------------------------------------------------------------


def test_load_planetoid_fixture_never_writes_data_dir(tmp_path: Path) -> None:
    data_dir = write_planetoid(tmp_path / "data")
    before = snapshot(data_dir)
    with read_only(data_dir):
        data = load_dataset("cora", data_dir=data_dir, verify=False)
    assert snapshot(data_dir) == before

    assert data.name == "cora"
    assert data.num_nodes == N_ALLX + 6
    assert data.x.shape == (516, N_FEAT)
    assert data.edge_index.shape == (2, 2 * 516)  # ring; duplicate and self-loop dropped
    assert int(data.y.max()) + 1 == N_CLS
    assert_split(data)
    counts = (int(data.train_mask.sum()), int(data.val_mask.sum()), int(data.test_mask.sum()))
    assert counts == (N_TRAIN, 500, 6)

    cache = tmp_path / "cache" / "datasets"
    for f in (data_dir / CORA_RAW).iterdir():
        assert sha256(cache / CORA_RAW / f.name) == sha256(f)
    processed = cache / "Planetoid" / "Cora" / "processed"
    assert (processed / "data.pt").is_file() and (processed / D._MARKER).is_file()
    assert not any((cache / ".staging").iterdir())


def test_second_load_reuses_cache(tmp_path: Path) -> None:
    data_dir = write_planetoid(tmp_path / "data")
    first = load_dataset("cora", data_dir=data_dir, verify=False)
    cached = tmp_path / "cache" / "datasets" / CORA_RAW / "ind.cora.allx"
    processed = tmp_path / "cache" / "datasets" / "Planetoid" / "Cora" / "processed" / "data.pt"
    stamps = (cached.stat().st_mtime_ns, processed.stat().st_mtime_ns)
    second = load_dataset("cora", data_dir=data_dir, verify=False)
    assert (cached.stat().st_mtime_ns, processed.stat().st_mtime_ns) == stamps  # no re-copy
    assert torch.equal(first.edge_index, second.edge_index)
    assert torch.equal(first.x, second.x)


def test_checksum_mismatch_names_file_and_hashes(tmp_path: Path) -> None:
    data_dir = write_planetoid(tmp_path / "data")
    expected = known_checksums()["Planetoid/Cora/raw/ind.cora.x"]
    actual = sha256(data_dir / CORA_RAW / "ind.cora.x")
    with pytest.raises(DataError, match="sha256 mismatch") as info:
        load_dataset("cora", data_dir=data_dir)  # verify=True by default
    message = str(info.value)
    assert "Planetoid/Cora/raw/ind.cora.x" in message
    assert expected in message and actual in message
    cache_raw = tmp_path / "cache" / "datasets" / CORA_RAW
    assert not cache_raw.exists() or not any(cache_raw.iterdir())  # nothing half-copied


def test_verify_with_matching_checksums(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = write_planetoid(tmp_path / "data")
    table = {f"{CORA_RAW}/{f.name}": sha256(f) for f in (data_dir / CORA_RAW).iterdir()}
    monkeypatch.setattr(D, "known_checksums", lambda: table)
    assert load_dataset("cora", data_dir=data_dir, verify=True).num_nodes == 516


def test_interrupted_processing_leaves_no_valid_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torch_geometric.datasets import Planetoid

    data_dir = write_planetoid(tmp_path / "data")

    def crash(self: Planetoid) -> None:
        os.makedirs(self.processed_dir, exist_ok=True)
        Path(self.processed_paths[0]).write_bytes(b"half-written")
        raise RuntimeError("killed mid-processing")

    with monkeypatch.context() as m:
        m.setattr(Planetoid, "process", crash)
        with pytest.raises(DataError, match="killed mid-processing"):
            load_dataset("cora", data_dir=data_dir, verify=False)
    cache = tmp_path / "cache" / "datasets"
    assert not (cache / "Planetoid" / "Cora" / "processed").exists()
    assert not any((cache / ".staging").iterdir())
    assert load_dataset("cora", data_dir=data_dir, verify=False).num_nodes == 516


def test_stale_or_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    data_dir = write_planetoid(tmp_path / "data")
    load_dataset("cora", data_dir=data_dir, verify=False)
    cache = tmp_path / "cache" / "datasets"
    processed = cache / "Planetoid" / "Cora" / "processed"
    # A processed folder without its completion marker is not trusted.
    (processed / D._MARKER).unlink()
    (processed / "data.pt").write_bytes(b"garbage")
    assert load_dataset("cora", data_dir=data_dir, verify=False).num_nodes == 516
    # A truncated cached raw file is re-copied from the source and the data reprocessed.
    cached = cache / CORA_RAW / "ind.cora.graph"
    cached.write_bytes(cached.read_bytes()[:100])
    assert load_dataset("cora", data_dir=data_dir, verify=False).num_edges == 2 * 516
    assert sha256(cached) == sha256(data_dir / CORA_RAW / "ind.cora.graph")


def test_missing_dataset_names_every_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arg, env = tmp_path / "arg", tmp_path / "env"
    arg.mkdir()
    write_planetoid(env)
    (env / CORA_RAW / "ind.cora.ty").unlink()  # an incomplete copy does not count
    monkeypatch.setenv("FATHOM_DATA", str(env))
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("cora", data_dir=arg, download=False)
    assert f"data dir {arg / CORA_RAW}" in str(info.value)
    assert "FATHOM_DATA" not in str(info.value).split(";")[0]
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("cora", download=False)
    message = str(info.value)
    assert "\n" not in message
    for label, root in [
        ("FATHOM_DATA", env),
        ("cache", cache_dir() / "datasets"),
    ]:
        assert f"{label} {root / CORA_RAW}" in message
    assert "ind.cora.ty" in message
    assert "--data-dir" in message and "internet" in message
    assert not (tmp_path / "cache" / "datasets" / CORA_RAW).exists()


def test_list_datasets_availability(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = write_planetoid(tmp_path / "data")
    rows = {r["name"]: r for r in list_datasets(data_dir)}
    assert set(rows) == NAMES
    assert rows["cora"]["availability"] == "data dir"
    assert rows["cora"]["path"] == str(data_dir / CORA_RAW)
    assert rows["citeseer"]["availability"] == "missing" and rows["citeseer"]["path"] is None
    assert (rows["cora"]["nodes"], rows["cora"]["edges"]) == (2708, 10556)
    assert rows["chameleon"]["split"] == "geom-gcn" and rows["cora"]["split"] == "public"
    for key in ("description", "features", "classes", "citation"):
        assert rows["cora"][key]
    assert not (tmp_path / "cache" / "datasets" / "Planetoid").exists()  # nothing loaded

    monkeypatch.setenv("FATHOM_DATA", str(data_dir))
    assert {r["name"]: r for r in list_datasets()}["cora"]["availability"] == "FATHOM_DATA"
    load_dataset("cora", verify=False)
    monkeypatch.delenv("FATHOM_DATA")
    row = {r["name"]: r for r in list_datasets()}["cora"]
    assert row["availability"] == "cache"
    assert row["path"] == str(tmp_path / "cache" / "datasets" / CORA_RAW)


def test_pyg_chatter_is_suppressed(capsys: pytest.CaptureFixture[str]) -> None:
    with D._quiet_pyg():
        print("Processing...")
        print("Done!", file=sys.stderr)
        print("kept line")
    out, err = capsys.readouterr()
    assert out == "kept line\n" and err == ""


# --------------------------------------------------------------------------------------------
# User graph files
# --------------------------------------------------------------------------------------------


def test_npz_round_trip_with_masks(tmp_path: Path) -> None:
    g = ring_graph()
    n = len(g["y"])
    masks = {
        "train_mask": (np.arange(n) < 10).astype(np.int64),  # 0/1 integers are accepted
        "val_mask": (np.arange(n) >= 10) & (np.arange(n) < 20),
        "test_mask": np.arange(n) >= 20,
    }
    path = tmp_path / "mine.npz"
    np.savez(path, **g, **masks)
    data = load_graph_file(path)
    assert data.name == "mine"
    assert torch.equal(data.edge_index, torch.from_numpy(g["edge_index"]))
    assert data.x.dtype == torch.float32 and torch.equal(data.x, torch.from_numpy(g["x"]))
    assert torch.equal(data.y, torch.from_numpy(g["y"]))
    for key, mask in masks.items():
        assert data[key].dtype == torch.bool
        assert torch.equal(data[key], torch.from_numpy(mask.astype(bool)))


def test_npz_without_masks_gets_stratified_split(tmp_path: Path) -> None:
    path = tmp_path / "plain.npz"
    np.savez(path, **ring_graph())
    a, b = load_graph_file(path, seed=0), load_graph_file(path, seed=0)
    c = load_graph_file(path, seed=1)
    assert_split(a)
    assert bool((a.train_mask | a.val_mask | a.test_mask).all())
    assert (int(a.train_mask.sum()), int(a.val_mask.sum()), int(a.test_mask.sum())) == (18, 6, 6)
    assert torch.equal(a.train_mask, b.train_mask)
    assert not torch.equal(a.train_mask, c.train_mask)


def test_pt_data_round_trip(tmp_path: Path) -> None:
    g = {k: torch.from_numpy(v) for k, v in ring_graph().items()}
    n = g["y"].numel()
    data = Data(**g, edge_attr=torch.ones(g["edge_index"].size(1), 2))
    data.train_mask = torch.arange(n) < 10
    data.val_mask = (torch.arange(n) >= 10) & (torch.arange(n) < 20)
    data.test_mask = torch.arange(n) >= 20
    path = tmp_path / "graph.pt"
    torch.save(data, path)
    registered = set(map(str, torch.serialization.get_safe_globals()))
    loaded = load_graph_file(path)
    assert set(map(str, torch.serialization.get_safe_globals())) == registered  # left as found
    assert type(loaded) is Data and loaded.name == "graph"
    for key in ("edge_index", "x", "y", "edge_attr", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(loaded[key], data[key]), key


def test_pt_dict_of_tensors(tmp_path: Path) -> None:
    path = tmp_path / "graph.pth"
    torch.save({k: torch.from_numpy(v) for k, v in ring_graph().items()}, path)
    data = load_graph_file(path)
    assert data.num_nodes == 30
    assert_split(data)


def test_malicious_pt_is_refused_without_running(tmp_path: Path) -> None:
    # The payload is live: ordinary unpickling creates its marker file.
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Payload(probe)))
    assert probe.exists()

    marker = tmp_path / "pwned"
    for i, obj in enumerate([Payload(marker), {"x": Payload(marker)}]):
        path = tmp_path / f"evil{i}.pt"
        torch.save(obj, path)
        with pytest.raises(DataError, match=r"refusing to load .*not a plain tensor/Data file"):
            load_graph_file(path)
        assert not marker.exists()
    legacy = tmp_path / "evil.pth"  # a bare pickle, not torch's zip format
    legacy.write_bytes(pickle.dumps(Payload(marker), protocol=2))
    with pytest.raises(DataError):
        load_graph_file(legacy)
    assert not marker.exists()


def test_pt_of_wrong_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tensor.pt"
    torch.save(torch.ones(3), path)
    with pytest.raises(DataError, match="Tensor"):
        load_graph_file(path)


def test_npz_missing_key_lists_keys(tmp_path: Path) -> None:
    g = ring_graph()
    del g["y"]
    path = tmp_path / "nolabels.npz"
    np.savez(path, **g)
    with pytest.raises(DataError, match=r"'y'.*keys present: edge_index, x"):
        load_graph_file(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"edge_index": np.zeros((3, 5), dtype=np.int64)}, "edge_index"),
        ({"edge_index": np.zeros((2, 5), dtype=np.float32)}, "edge_index.*integer"),
        ({"edge_index": np.array([[0, 99], [1, 0]])}, "out of range"),
        ({"x": np.zeros(30, dtype=np.float32)}, "x must have shape"),
        ({"y": np.arange(29)}, "y must have shape"),
        ({"y": np.zeros(30, dtype=np.float32)}, "y must have an integer dtype"),
        ({"train_mask": np.full(30, 2), "val_mask": np.zeros(30), "test_mask": np.ones(30)},
         "0/1"),
        ({"train_mask": np.ones(30, dtype=bool)}, "all three masks"),
    ],
)  # fmt: skip
def test_npz_bad_contents(tmp_path: Path, change: dict[str, np.ndarray], match: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **{**ring_graph(), **change})
    with pytest.raises(DataError, match=match):
        load_graph_file(path)


def test_npz_nan_feature(tmp_path: Path) -> None:
    g = ring_graph()
    g["x"][3, 1] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, **g)
    with pytest.raises(DataError, match="non-finite") as info:
        load_graph_file(path)
    assert str(path) in str(info.value)


def test_npz_object_array_is_refused(tmp_path: Path) -> None:
    g = ring_graph()
    path = tmp_path / "objects.npz"
    np.savez(path, **g, extra=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="refusing to load"):
        load_graph_file(path)


def test_graph_file_extension_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "graph.csv"
    path.write_text("0,1\n")
    with pytest.raises(DataError, match=r"\.npz.*\.pt"):
        load_graph_file(path)
    with pytest.raises(DataNotFoundError, match=r"nope\.npz"):
        load_graph_file(tmp_path / "nope.npz")


# --------------------------------------------------------------------------------------------
# Real data (CI sets FATHOM_DATA to the shared datasets)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def real_data(monkeypatch: pytest.MonkeyPatch) -> Path:
    assert REAL_DATA is not None
    monkeypatch.setenv("FATHOM_DATA", REAL_DATA)
    return Path(REAL_DATA)


@needs_real_data
@pytest.mark.dataset
def test_real_cora(real_data: Path) -> None:
    before = snapshot(real_data / "Planetoid")
    data = load_dataset("cora")
    assert snapshot(real_data / "Planetoid") == before
    assert data.num_nodes == 2708 and data.num_edges == 10556
    assert data.num_features == 1433 and int(data.y.max()) + 1 == 7
    assert_split(data)
    sizes = (int(data.train_mask.sum()), int(data.val_mask.sum()), int(data.test_mask.sum()))
    assert sizes == (140, 500, 1000)


@needs_real_data
@pytest.mark.dataset
def test_real_citeseer(real_data: Path) -> None:
    data = load_dataset("citeseer")
    assert (data.num_nodes, data.num_edges, data.num_features) == (3327, 9104, 3703)
    assert int(data.y.max()) + 1 == 6
    sizes = (int(data.train_mask.sum()), int(data.val_mask.sum()), int(data.test_mask.sum()))
    assert sizes == (120, 500, 1000)


@needs_real_data
@pytest.mark.dataset
@pytest.mark.slow
def test_real_chameleon_split(real_data: Path) -> None:
    data = load_dataset("chameleon", split=3)
    assert (data.num_nodes, data.num_edges, data.num_features) == (2277, 36101, 2325)
    assert_split(data)
    assert data.train_mask.sum() > 0 and data.val_mask.sum() > 0 and data.test_mask.sum() > 0
    split0 = load_dataset("chameleon", split=0)  # served from the cache
    sizes0 = (int(split0.train_mask.sum()), int(split0.val_mask.sum()), int(split0.test_mask.sum()))
    assert sizes0 == (1092, 729, 456)
    assert not torch.equal(data.train_mask, split0.train_mask)
    assert bool((data.edge_index[0] == data.edge_index[1]).any())  # kept as PyG gives it


@needs_real_data
@pytest.mark.dataset
def test_real_amazon_random_split(real_data: Path) -> None:
    data = load_dataset("amazon-photo", seed=0)
    assert (data.num_nodes, data.num_edges, data.num_features) == (7650, 238162, 745)
    assert_split(data)
    classes = int(data.y.max()) + 1
    assert classes == 8
    assert torch.equal(torch.bincount(data.y[data.train_mask], minlength=classes),
                       torch.full((classes,), 20))  # fmt: skip
    assert torch.equal(torch.bincount(data.y[data.val_mask], minlength=classes),
                       torch.full((classes,), 30))  # fmt: skip
    assert int(data.test_mask.sum()) == 7650 - 50 * classes
    other = load_dataset("amazon-photo", seed=1)
    assert not torch.equal(data.train_mask, other.train_mask)


@needs_real_data
@pytest.mark.dataset
def test_real_list_datasets(real_data: Path) -> None:
    rows = list_datasets()
    assert all(r["availability"] == "FATHOM_DATA" for r in rows), rows


# --------------------------------------------------------------------------------------------
# Nothing in a cache runs
# --------------------------------------------------------------------------------------------


def _forge_processed(processed: Path, payload: object, *, legacy: bool = False) -> None:
    """Replace every processed file by a malicious pickle and write a marker that matches
    them: what someone with write access to a shared cache could do."""
    import json

    for name in ("data.pt", "pre_transform.pt", "pre_filter.pt"):
        path = processed / name
        if legacy:
            path.write_bytes(pickle.dumps(payload, protocol=2))
        else:
            torch.save(payload, path)
    marker = json.loads((processed / D._MARKER).read_text("utf-8"))
    marker["processed_sha256"] = {
        p.name: sha256(p) for p in sorted(processed.iterdir()) if p.name != D._MARKER
    }
    (processed / D._MARKER).write_text(json.dumps(marker), "utf-8")


@pytest.mark.parametrize("legacy", [False, True])
def test_forged_processed_cache_never_runs(tmp_path: Path, legacy: bool) -> None:
    data_dir = write_planetoid(tmp_path / "data")
    first = load_dataset("cora", data_dir=data_dir, verify=False)
    processed = tmp_path / "cache" / "datasets" / "Planetoid" / "Cora" / "processed"
    pwned = tmp_path / "pwned"
    _forge_processed(processed, Payload(pwned), legacy=legacy)
    forged = sha256(processed / "data.pt")
    assert D._processed_ok(
        D.DATASETS.get("cora"),
        processed.parents[2],
        D._sync_raw(D.DATASETS.get("cora"), data_dir, processed.parents[2], False),
    )  # fmt: skip  (the forgery passes the marker check: only weights-only loading stops it)
    again = load_dataset("cora", data_dir=data_dir, verify=False)
    assert not pwned.exists()
    assert torch.equal(again.x, first.x) and torch.equal(again.edge_index, first.edge_index)
    assert sha256(processed / "data.pt") != forged  # rebuilt from the raw files
    assert D._processed_ok(D.DATASETS.get("cora"), processed.parents[2], D._sync_raw(
        D.DATASETS.get("cora"), data_dir, processed.parents[2], False
    ))  # fmt: skip


def test_forged_processed_cache_without_marker_is_rebuilt_not_read(tmp_path: Path) -> None:
    data_dir = write_planetoid(tmp_path / "data")
    load_dataset("cora", data_dir=data_dir, verify=False)
    processed = tmp_path / "cache" / "datasets" / "Planetoid" / "Cora" / "processed"
    pwned = tmp_path / "pwned"
    _forge_processed(processed, Payload(pwned))
    (processed / "pre_transform.pt").write_bytes(pickle.dumps(Payload(pwned)))  # marker stale
    assert load_dataset("cora", data_dir=data_dir, verify=False).num_nodes == 516
    assert not pwned.exists()


def test_processed_file_changed_after_marker_is_rebuilt(tmp_path: Path) -> None:
    data_dir = write_planetoid(tmp_path / "data")
    load_dataset("cora", data_dir=data_dir, verify=False)
    processed = tmp_path / "cache" / "datasets" / "Planetoid" / "Cora" / "processed"
    (processed / "extra.pt").write_bytes(b"not recorded")
    spec = DATASETS.get("cora")
    hashes = D._sync_raw(spec, data_dir, processed.parents[2], False)
    assert not D._processed_ok(spec, processed.parents[2], hashes)
    load_dataset("cora", data_dir=data_dir, verify=False)
    assert not (processed / "extra.pt").exists()
    assert D._processed_ok(spec, processed.parents[2], hashes)


def test_every_registered_raw_file_has_a_known_hash() -> None:
    """Raw files (Planetoid's are pickles PyG unpickles) are only processed after their
    sha256 matched: every dataset fathom names must have one for every raw file."""
    from fathom.data.graph_datasets import GRAPH_DATASETS

    known = known_checksums()
    for registry in (DATASETS, GRAPH_DATASETS):
        for name in registry.names():
            missing = [rel for rel in registry.get(name).raw_paths if rel not in known]
            assert not missing, f"{name}: no sha256 for {missing}"


def test_verify_refuses_a_malicious_raw_pickle_before_processing(tmp_path: Path) -> None:
    data_dir = write_planetoid(tmp_path / "data")
    pwned = tmp_path / "pwned"
    (data_dir / CORA_RAW / "ind.cora.graph").write_bytes(pickle.dumps(Payload(pwned)))
    with pytest.raises(DataError, match="sha256 mismatch"):
        load_dataset("cora", data_dir=data_dir)
    assert not pwned.exists()


def test_download_is_checked_before_processing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download whose files do not verify is refused before PyG reads (unpickles) them."""
    from torch_geometric.datasets import Planetoid

    source = write_planetoid(tmp_path / "source")
    pwned = tmp_path / "pwned"
    (source / CORA_RAW / "ind.cora.graph").write_bytes(pickle.dumps(Payload(pwned)))
    processed: list[str] = []

    def fake_download(self: Planetoid) -> None:
        for f in (source / CORA_RAW).iterdir():
            (Path(self.raw_dir) / f.name).write_bytes(f.read_bytes())

    monkeypatch.setattr(Planetoid, "download", fake_download)
    monkeypatch.setattr(Planetoid, "process", lambda self: processed.append("ran"))
    with pytest.raises(DataError, match="downloaded file differs"):
        load_dataset("cora")
    assert not pwned.exists() and processed == []
    assert not (tmp_path / "cache" / "datasets" / CORA_RAW).exists()


def test_cache_path_that_is_a_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = write_planetoid(tmp_path / "data")
    (tmp_path / "cachefile").write_text("not a folder")
    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cachefile"))
    with pytest.raises(DataError, match=r"is a file, not a folder.*FATHOM_CACHE") as info:
        load_dataset("cora", data_dir=data_dir, verify=False)
    assert "\n" not in str(info.value)
    assert (tmp_path / "cachefile").read_text() == "not a folder"


def test_read_only_cache_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = write_planetoid(tmp_path / "data")
    cache = tmp_path / "cache"
    cache.mkdir()
    real_access = os.access
    # chmod does not stop root (the CI user here), so say the cache is read-only as the OS would.
    monkeypatch.setattr(
        D.os, "access", lambda p, mode: False if Path(p) == cache else real_access(p, mode)
    )
    refused = pytest.raises(DataError, match=r"not writable.*FATHOM_CACHE")
    with read_only(cache), refused as info:
        load_dataset("cora", data_dir=data_dir, verify=False)
    assert "\n" not in str(info.value)
    assert not any(cache.iterdir())


def test_complete_read_only_cache_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = write_planetoid(tmp_path / "data")
    load_dataset("cora", data_dir=data_dir, verify=False)
    monkeypatch.setattr(D.os, "access", lambda p, mode: False)
    with read_only(tmp_path / "cache"):
        assert load_dataset("cora", data_dir=data_dir, verify=False).num_nodes == 516


# --------------------------------------------------------------------------------------------
# Sizes from file headers, before allocation
# --------------------------------------------------------------------------------------------


def _forged_npz(path: Path, shape: tuple[int, ...], *, compress: bool = False) -> Path:
    """An .npz whose ``x.npy`` header claims ``shape`` of float64 but holds 16 bytes."""
    import io
    import zipfile

    buf = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(b"\0" * 16)
    graph = ring_graph()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as zf:
        for key in ("edge_index", "y"):
            member = io.BytesIO()
            np.save(member, graph[key])
            zf.writestr(f"{key}.npy", member.getvalue())
        zf.writestr("x.npy", buf.getvalue())
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_npz_header_claiming_terabytes_is_refused_before_reading(
    tmp_path: Path, compress: bool
) -> None:
    path = _forged_npz(tmp_path / "huge.npz", (10**6, 10**6), compress=compress)
    assert path.stat().st_size < 4096
    with pytest.raises(DataError, match=r"'x' claims shape \[1000000, 1000000\]") as info:
        load_graph_file(path)
    assert "7.3 TB" in str(info.value) and "\n" not in str(info.value)


def test_npz_over_the_memory_budget_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.npz"
    np.savez(path, **ring_graph())
    monkeypatch.setenv("FATHOM_MEMORY_BUDGET", "100")
    with pytest.raises(DataError, match="more than the memory budget"):
        load_graph_file(path)
    torch.save({k: torch.from_numpy(v) for k, v in ring_graph().items()}, tmp_path / "g.pt")
    with pytest.raises(DataError, match="more than the memory budget"):
        load_graph_file(tmp_path / "g.pt")
    monkeypatch.delenv("FATHOM_MEMORY_BUDGET")
    assert load_graph_file(path).num_nodes == 30
