"""Hostile data inputs to ``fathom train``: each is refused with exit 2, one line, nothing
written, inputs byte-identical (:func:`hostile.assert_refused`) — or, for a forged cache,
rebuilt without ever running what it holds."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from hostile import Payload, assert_refused


def _real_cora() -> Path | None:
    """The canonical Cora raw files' folder: under ``$FATHOM_DATA`` (where the real-data tests
    find them, as ``.ci/run`` sets it), else in the user's cache; ``None`` where neither has
    them."""
    roots = [os.environ.get("FATHOM_DATA"), Path.home() / ".cache" / "fathom" / "datasets"]
    for root in filter(None, roots):
        raw = Path(root).expanduser() / "Planetoid" / "Cora" / "raw"
        if all((raw / f"ind.cora.{n}").is_file() for n in ("x", "graph", "test.index")):
            return raw
    return None


REAL_CORA = _real_cora()
N = 30
TRAIN = ["--epochs", "1", "--seeds", "1"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FATHOM_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "cache"


def _ring(**change: np.ndarray) -> dict[str, np.ndarray]:
    src = np.arange(N)
    arrays = {
        "edge_index": np.stack([np.r_[src, (src + 1) % N], np.r_[(src + 1) % N, src]]),
        "x": np.random.default_rng(0).normal(size=(N, 4)).astype(np.float32),
        "y": (np.arange(N) % 3).astype(np.int64),
    }
    arrays.update(change)
    return arrays


def _npz(path: Path, **change: np.ndarray) -> Path:
    np.savez(path, **_ring(**change))
    return path


def test_missing_explicit_data_dir(tmp_path: Path) -> None:
    watch = [tmp_path / "nonexistent", tmp_path / "cache"]
    assert_refused(
        ["train", "--dataset", "cora", "--data-dir", str(tmp_path / "nonexistent"), *TRAIN],
        watch,
        "does not exist",
        "nonexistent",
    )


def test_explicit_data_dir_does_not_fall_back_to_fathom_data(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    shared = tmp_path / "shared" / "Planetoid" / "Cora" / "raw"
    shared.mkdir(parents=True)
    for name in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"):
        (shared / f"ind.cora.{name}").write_bytes(b"")
    assert_refused(
        ["train", "--dataset", "cora", "--data-dir", str(tmp_path / "empty"), *TRAIN],
        [tmp_path / "empty", tmp_path / "shared", tmp_path / "cache"],
        "only place looked",
        env={"FATHOM_DATA": str(tmp_path / "shared")},
    )


def test_cache_path_that_is_a_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "Planetoid" / "Cora" / "raw").mkdir(parents=True)
    for name in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"):
        (data / "Planetoid" / "Cora" / "raw" / f"ind.cora.{name}").write_bytes(b"0")
    cache = tmp_path / "cachefile"
    cache.write_text("a file")
    assert_refused(
        ["train", "--dataset", "cora", "--data-dir", str(data), *TRAIN],
        [data, cache],
        "is a file, not a folder",
        "FATHOM_CACHE",
        env={"FATHOM_CACHE": str(cache)},
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"y": np.where(np.arange(N) == 4, 10**9, 0)}, ["label 1000000000", "30 nodes"]),
        ({"y": np.where(np.arange(N) == 4, -3, 0)}, ["negative labels"]),
        ({"x": np.zeros((N, 0), np.float32)}, ["zero feature columns"]),
    ],
)
def test_graph_file_labels_and_features(tmp_path: Path, change: dict, words: list[str]) -> None:
    path = _npz(tmp_path / "g.npz", **change)
    assert_refused(["train", "--dataset", str(path), *TRAIN], [path, tmp_path], *words)


@pytest.mark.parametrize("compress", [False, True])
def test_npz_header_claiming_terabytes(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / "huge.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**7, 10**6)}
    )
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as zf:
        for key, value in _ring().items():
            member = io.BytesIO()
            np.save(member, value)
            zf.writestr(f"{key}.npy", member.getvalue() if key != "x" else header.getvalue())
    assert path.stat().st_size < 4096
    assert_refused(["train", "--dataset", str(path), *TRAIN], [tmp_path], "'x' claims shape")


def test_npz_over_the_memory_budget(tmp_path: Path) -> None:
    path = _npz(tmp_path / "g.npz")
    assert_refused(
        ["train", "--dataset", str(path), *TRAIN],
        [tmp_path],
        "memory budget",
        env={"FATHOM_MEMORY_BUDGET": "1K"},
    )


# --------------------------------------------------------------------------------------------
# The severe defect: a forged processed cache must never run
# --------------------------------------------------------------------------------------------

needs_cora = pytest.mark.skipif(
    REAL_CORA is None,
    reason="the canonical Cora raw files are neither under $FATHOM_DATA nor in ~/.cache/fathom",
)


def _forge(processed: Path, pwned: Path) -> None:
    """Malicious pickles for every processed file and a marker that matches them."""
    import hashlib

    for name in ("data.pt", "pre_transform.pt", "pre_filter.pt"):
        torch.save(Payload(pwned), processed / name)
    marker = json.loads((processed / "fathom-complete.json").read_text())
    marker["processed_sha256"] = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(processed.iterdir())
        if p.name != "fathom-complete.json"
    }
    (processed / "fathom-complete.json").write_text(json.dumps(marker))


@pytest.fixture
def forged_cora(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A data dir with the real Cora files and a cache whose processed folder is forged."""
    from fathom.data.datasets import load_dataset

    data = tmp_path / "data" / "Planetoid" / "Cora" / "raw"
    data.mkdir(parents=True)
    for f in REAL_CORA.iterdir():
        shutil.copyfile(f, data / f.name)
    load_dataset("cora", data_dir=tmp_path / "data")
    processed = tmp_path / "cache" / "datasets" / "Planetoid" / "Cora" / "processed"
    pwned = tmp_path / "pwned"
    _forge(processed, pwned)
    return tmp_path / "data", processed, pwned


@needs_cora
def test_forged_cache_is_rebuilt_and_never_runs(
    forged_cora: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from fathom.cli import main

    data, processed, pwned = forged_cora
    assert main(["train", "--dataset", "cora", "--data-dir", str(data), *TRAIN]) == 0
    assert not pwned.exists()
    # The rebuilt file is plain data again: it loads weights-only.
    assert isinstance(torch.load(processed / "data.pt", weights_only=True), tuple)


@needs_cora
def test_forged_cache_that_cannot_be_rebuilt_is_refused(
    forged_cora: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fathom.data.datasets as D

    data, _, pwned = forged_cora
    cache = tmp_path / "cache"
    # A read-only cache (chmod does not stop root, so say so as the OS would).
    monkeypatch.setattr(D.os, "access", lambda p, mode: False)
    assert_refused(
        ["train", "--dataset", "cora", "--data-dir", str(data), *TRAIN],
        [data, cache],
        "not writable",
    )
    assert not pwned.exists()
    assert os.path.isdir(cache)
