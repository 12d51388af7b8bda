r"""Point clouds for semantic segmentation: synthetic indoor scenes and S3DIS blocks.

Two datasets, named in :data:`POINT_CLOUD_DATASETS` and built by :func:`build_point_clouds`:

``scenes``
    :func:`make_scenes`, an embedded, seeded generator of indoor-like scenes: a floor, one or
    two walls and about five labelled primitives (boxes, spheres, cylinders, cones) of random
    size, pose and position, sampled on their surfaces with Gaussian noise. Every object (floor and
    walls included) gets a random colour, so colour separates objects but says nothing about
    their class; a model must use geometry and context (a cone and a cylinder of the same
    height differ only in their neighbourhoods' shape).
``s3dis``
    :func:`load_s3dis`, the Stanford Large-Scale 3D Indoor Spaces dataset (Armeni et al., "3D
    Semantic Parsing of Large-Scale Indoor Spaces", CVPR 2016) in the preprocessed block format
    of PointNet (Qi et al., CVPR 2017), used by DGCNN, DeepGCN (Li et al., "DeepGCNs: Can GCNs
    Go as Deep as CNNs?", ICCV 2019) and PyG's :class:`~torch_geometric.datasets.S3DIS`:
    1 m x 1 m blocks of 4096 points, 13 classes.

Both give clouds in the S3DIS convention, one PyG ``Data`` per cloud:

- ``x`` float32 ``[N, 9]``: xyz (centred in x and y, z the height above the floor), rgb in
  ``[0, 1]``, and xyz normalised to ``[0, 1]`` over the room (S3DIS) or scene (``scenes``);
- ``pos`` float32 ``[N, 3]``: the first three columns of ``x`` (a view of them, not a copy);
- ``y`` int64 ``[N]`` in ``[0, num_classes)``.

PyG's :class:`~torch_geometric.loader.DataLoader` batches them (and adds ``batch``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from fathom.data.datasets import data_dir_candidates
from fathom.errors import ConfigError, DataError, DataNotFoundError

__all__ = [
    "POINT_CLOUD_DATASETS",
    "S3DIS_CLASSES",
    "SCENE_CLASSES",
    "PointCloudSplits",
    "build_point_clouds",
    "load_s3dis",
    "make_scenes",
]

POINT_CLOUD_DATASETS = ("scenes", "s3dis")
"""Datasets of ``task: segmentation``: embedded synthetic scenes of labelled primitives, and
S3DIS in the standard preprocessed ``.h5`` block format."""

SCENE_CLASSES = ("floor", "wall", "box", "sphere", "cylinder", "cone")
"""Classes of the synthetic ``scenes``, in label order."""

S3DIS_CLASSES = (
    "ceiling",
    "floor",
    "wall",
    "beam",
    "column",
    "window",
    "door",
    "table",
    "chair",
    "sofa",
    "bookcase",
    "board",
    "clutter",
)
"""The 13 S3DIS classes, in the label order of the preprocessed blocks."""

IN_CHANNELS = 9
"""Width of ``x``: xyz, rgb, normalised xyz."""

S3DIS_SUBDIRS = (
    "",
    "indoor3d_sem_seg_hdf5_data",
    "raw",
    "S3DIS/raw",
    "S3DIS/raw/indoor3d_sem_seg_hdf5_data",
    "S3DIS/indoor3d_sem_seg_hdf5_data",
)
"""Where, below a root, the S3DIS block files may lie: the unzipped
``indoor3d_sem_seg_hdf5_data`` folder itself, or PyG's layout, whose ``S3DIS/raw`` folder *is*
that folder renamed (``torch_geometric.datasets.S3DIS.download``)."""

S3DIS_HINT = (
    "get indoor3d_sem_seg_hdf5_data.zip (PointNet's preprocessed S3DIS blocks; the "
    "shapenet.cs.stanford.edu URL PyG uses is broken, pyg-team/pytorch_geometric#10577; PyG's "
    "source names https://cvg-data.inf.ethz.ch/s3dis/ as a fallback), unzip it into "
    "<root>/S3DIS/raw/ (the .h5 files and room_filelist.txt directly in it) and pass --data-dir "
    "<root> or set FATHOM_DATA=<root>"
)

_ROOM_LIST = "room_filelist.txt"
_FILE_LIST = "all_files.txt"
_BLOCK_FILE = re.compile(r"ply_data_all_(\d+)\.h5$")
_ROOM = re.compile(r"Area_(\d+)_")
_VAL_FRACTION = 0.1


@dataclass(frozen=True)
class PointCloudSplits:
    """Train / validation / test point clouds of a segmentation dataset.

    Args:
        name: the dataset's name (``"scenes"`` or ``"s3dis"``).
        train, val, test: one ``Data`` per cloud (``x [N, 9]``, ``pos [N, 3]``, ``y [N]``).
        num_classes: number of classes; every ``y`` lies in ``[0, num_classes)``.
        class_names: one name per class, in label order.
    """

    name: str
    train: list[Data]
    val: list[Data]
    test: list[Data]
    num_classes: int
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise DataError(
                f"{self.name}: {len(self.class_names)} class names for num_classes="
                f"{self.num_classes}"
            )

    @property
    def in_channels(self) -> int:
        """Width of ``x`` (9 for both datasets)."""
        for split in (self.train, self.val, self.test):
            if split:
                return int(split[0].x.size(1))
        return IN_CHANNELS


# --------------------------------------------------------------------------------------------
# Synthetic scenes
# --------------------------------------------------------------------------------------------

_FLOOR, _WALL, _BOX, _SPHERE, _CYLINDER, _CONE = range(len(SCENE_CLASSES))
_PRIMITIVES = (_BOX, _SPHERE, _CYLINDER, _CONE)
_ROOM_SIDE = (3.0, 4.0)  # metres, per axis
_WALL_HEIGHT = (1.2, 2.0)
_NUM_OBJECTS = (4, 7)  # inclusive
_COLOUR_NOISE = 0.03
_GAP = 0.1  # between objects, and between an object and the room's edge


@dataclass(frozen=True)
class _Surface:
    """One labelled surface of a scene: its area and a sampler of ``n`` points on it."""

    label: int
    area: float
    kind: str
    params: tuple[float, ...]
    colour: tuple[float, float, float]


def _primitive(label: int, rng: np.random.Generator) -> tuple[tuple[float, ...], float]:
    """Random size and pose parameters of a primitive (without its position) and its footprint
    radius (the radius of a disc around its centre that holds it, seen from above)."""
    if label == _BOX:
        w, d, h = rng.uniform(0.3, 1.0, size=3)
        yaw = rng.uniform(0.0, math.pi / 2)
        return (w, d, h, yaw), 0.5 * math.hypot(w, d)
    if label == _SPHERE:
        r = rng.uniform(0.25, 0.55)
        return (r,), r
    if label == _CYLINDER:
        r, h = rng.uniform(0.2, 0.45), rng.uniform(0.4, 1.2)
        return (r, h), r
    r, h = rng.uniform(0.35, 0.65), rng.uniform(0.6, 1.4)  # cone
    return (r, h), r


def _area(label: int, p: tuple[float, ...]) -> float:
    if label == _BOX:
        w, d, h = p[:3]
        return w * d + 2 * h * (w + d)  # no bottom face: it rests on the floor
    if label == _SPHERE:
        return 4 * math.pi * p[0] ** 2
    if label == _CYLINDER:
        r, h = p
        return 2 * math.pi * r * h + math.pi * r * r  # side and top
    r, h = p
    return math.pi * r * math.hypot(r, h)  # lateral surface of the cone


def _sample_primitive(
    label: int, p: tuple[float, ...], cx: float, cy: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` points uniform over the surface of a primitive standing on the floor at (cx, cy)."""
    if label == _SPHERE:
        (r,) = p
        v = rng.standard_normal((n, 3))
        v /= np.linalg.norm(v, axis=1, keepdims=True).clip(min=1e-12)
        pts = r * v
        pts[:, 2] += r
    elif label == _BOX:
        w, d, h, yaw = p
        faces = np.array([w * d, w * h, w * h, d * h, d * h])  # top, +-y sides, +-x sides
        face = rng.choice(5, size=n, p=faces / faces.sum())
        a, b = rng.random(n) - 0.5, rng.random(n)  # along the face, up the face (or across)
        sign = np.where(face % 2 == 1, -0.5, 0.5)
        pts = np.select(
            [face[:, None] == 0, face[:, None] <= 2],
            [
                np.stack([a * w, (b - 0.5) * d, np.full(n, h)], 1),
                np.stack([a * w, sign * d, b * h], 1),
            ],
            np.stack([sign * w, a * d, b * h], 1),
        )
        c, s = math.cos(yaw), math.sin(yaw)
        pts[:, :2] = pts[:, :2] @ np.array([[c, s], [-s, c]])
    elif label == _CYLINDER:
        r, h = p
        side_area, top_area = 2 * math.pi * r * h, math.pi * r * r
        on_top = rng.random(n) < top_area / (side_area + top_area)
        theta = rng.uniform(0.0, 2 * math.pi, n)
        rad = np.where(on_top, r * np.sqrt(rng.random(n)), r)
        z = np.where(on_top, h, rng.random(n) * h)
        pts = np.stack([rad * np.cos(theta), rad * np.sin(theta), z], 1)
    else:  # cone: the area element grows linearly with the distance t from the apex
        r, h = p
        t = np.sqrt(rng.random(n))
        theta = rng.uniform(0.0, 2 * math.pi, n)
        pts = np.stack([r * t * np.cos(theta), r * t * np.sin(theta), h * (1 - t)], 1)
    pts[:, 0] += cx
    pts[:, 1] += cy
    return pts


def _footprint_contains(label: int, p: tuple[float, ...], cx: float, cy: float,
                        xy: np.ndarray) -> np.ndarray:  # fmt: skip
    """Which floor points lie under a primitive (hidden from any scanner, so not sampled)."""
    dx, dy = xy[:, 0] - cx, xy[:, 1] - cy
    if label == _BOX:
        w, d, _, yaw = p
        c, s = math.cos(yaw), math.sin(yaw)
        # rotate back into the box's frame (the inverse of the sampler's rotation)
        u, v = dx * c + dy * s, -dx * s + dy * c
        return (np.abs(u) <= w / 2) & (np.abs(v) <= d / 2)
    return dx * dx + dy * dy <= p[0] ** 2


def _allocate(areas: Sequence[float], n: int) -> np.ndarray:
    """Split ``n`` points over surfaces in proportion to their areas (largest remainders)."""
    share = n * np.asarray(areas, dtype=np.float64) / float(np.sum(areas))
    counts = np.floor(share).astype(np.int64)
    rest = n - int(counts.sum())
    # stable sort so equal remainders go to the earlier surface, whatever the platform
    counts[np.argsort(-(share - counts), kind="stable")[:rest]] += 1
    return counts


def _scene(num_points: int, noise: float, rng: np.random.Generator) -> Data:
    lx, ly = rng.uniform(*_ROOM_SIDE, size=2)
    height = rng.uniform(*_WALL_HEIGHT)

    objects: list[tuple[int, tuple[float, ...], float, float]] = []  # label, params, cx, cy
    placed: list[tuple[float, float, float]] = []  # cx, cy, footprint radius
    for _ in range(int(rng.integers(_NUM_OBJECTS[0], _NUM_OBJECTS[1] + 1))):
        label = int(rng.choice(_PRIMITIVES))
        params, radius = _primitive(label, rng)
        for _attempt in range(50):  # rejection sampling of a free spot
            cx = rng.uniform(radius + _GAP, lx - radius - _GAP)
            cy = rng.uniform(radius + _GAP, ly - radius - _GAP)
            if all(math.hypot(cx - x, cy - y) > radius + r + _GAP for x, y, r in placed):
                objects.append((label, params, cx, cy))
                placed.append((cx, cy, radius))
                break

    # walls stand on one or two of the room's four edges: (axis along, fixed coordinate)
    edges = [("x", 0.0), ("x", ly), ("y", 0.0), ("y", lx)]
    chosen = rng.choice(4, size=int(rng.integers(1, 3)), replace=False)
    walls = [edges[i] for i in sorted(chosen.tolist())]

    hidden = sum(math.pi * p[0] ** 2 if lab != _BOX else p[0] * p[1] for lab, p, _, _ in objects)
    areas = [lx * ly - hidden]
    areas += [(lx if along == "x" else ly) * height for along, _ in walls]
    areas += [_area(lab, p) for lab, p, _, _ in objects]
    counts = _allocate(areas, num_points)
    colours = rng.random((len(areas), 3))

    chunks: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    n_floor = int(counts[0])
    floor = np.empty((0, 2))
    while len(floor) < n_floor:  # rejection: drop floor points hidden under objects
        cand = rng.random((2 * n_floor + 16, 2)) * np.array([lx, ly])
        keep = np.ones(len(cand), dtype=bool)
        for lab, p, cx, cy in objects:
            keep &= ~_footprint_contains(lab, p, cx, cy, cand)
        floor = np.concatenate([floor, cand[keep]])
    chunks.append(np.concatenate([floor[:n_floor], np.zeros((n_floor, 1))], 1))
    labels.append(np.full(n_floor, _FLOOR))
    for (along, at), n in zip(walls, counts[1 : 1 + len(walls)], strict=True):
        u = rng.random((int(n), 2))
        length = lx if along == "x" else ly
        a, z = u[:, 0] * length, u[:, 1] * height
        fixed = np.full(int(n), at)
        chunks.append(np.stack([a, fixed, z] if along == "x" else [fixed, a, z], 1))
        labels.append(np.full(int(n), _WALL))
    for (lab, p, cx, cy), n in zip(objects, counts[1 + len(walls) :], strict=True):
        chunks.append(_sample_primitive(lab, p, cx, cy, int(n), rng))
        labels.append(np.full(int(n), lab))

    xyz = np.concatenate(chunks)
    xyz = xyz + noise * rng.standard_normal(xyz.shape)
    rgb = np.repeat(colours, counts, axis=0)
    rgb = np.clip(rgb + _COLOUR_NOISE * rng.standard_normal(rgb.shape), 0.0, 1.0)
    y = np.concatenate(labels)
    order = rng.permutation(num_points)  # no label runs in the point order
    xyz, rgb, y = xyz[order], rgb[order], y[order]

    lo, hi = xyz.min(0), xyz.max(0)
    normalised = (xyz - lo) / np.where(hi > lo, hi - lo, 1.0)
    # as in S3DIS blocks: x and y centred on the room's centre, z the height above the floor
    centred = xyz - np.array([lx / 2, ly / 2, 0.0])
    x = torch.from_numpy(np.concatenate([centred, rgb, normalised], 1).astype(np.float32))
    return Data(x=x, pos=x[:, :3], y=torch.from_numpy(y.astype(np.int64)))


def _check_seed(seed: int) -> None:
    # numpy's SeedSequence takes non-negative integers only
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")


def make_scenes(num_scenes: int, num_points: int, *, seed: int, noise: float = 0.01) -> list[Data]:
    r"""Seeded synthetic indoor scenes of labelled primitives (classes :data:`SCENE_CLASSES`).

    Each scene is a rectangular room of 3-4 m per side: the floor (:math:`z = 0`), one or
    two walls (1.2-2 m high) on its edges, and 4-7 primitives (fewer when they do not fit:
    5.0 on average) standing on the floor at non-overlapping random positions, each of a
    uniformly drawn class: boxes (sides 0.3-1 m, random yaw; no bottom face), spheres (radius
    0.25-0.55 m), cylinders (radius 0.2-0.45 m, height 0.4-1.2 m; side and top) and cones
    (radius 0.35-0.65 m, height 0.6-1.4 m; lateral surface). Points are spread over the
    surfaces in proportion to their areas (largest-remainder rounding gives exactly
    ``num_points``; over 48 scenes roughly 37% of points are floor, 28% wall, 7-10% each
    primitive class), uniformly within each surface; floor points hidden under an object are
    not sampled. Every coordinate gets Gaussian noise of standard deviation ``noise`` (metres):

    .. math::
        \mathbf{p}_i = \mathbf{s}_i + \sigma \boldsymbol{\varepsilon}_i,
        \qquad \mathbf{s}_i \sim \mathcal{U}(\text{surfaces}),
        \quad \boldsymbol{\varepsilon}_i \sim \mathcal{N}(\mathbf{0}, \mathbf{I}_3).

    Every object (floor and each wall too) has a uniformly random colour, and each point's
    colour adds :math:`\mathcal{N}(0, 0.03^2)` noise (clipped to ``[0, 1]``): colour separates
    objects but does not reveal their class. Points are shuffled.

    Scene ``i`` depends only on ``seed`` and ``i`` (a :class:`numpy.random.SeedSequence`
    child per scene), so ``make_scenes(n, p, seed=s)[:m] == make_scenes(m, p, seed=s)``.

    Args:
        num_scenes: number of scenes (at least 1).
        num_points: points per scene (at least 1).
        seed: seed of the scenes.
        noise: standard deviation of the coordinate noise in metres (default 0.01).

    Returns:
        ``num_scenes`` ``Data`` with ``x`` (xyz with x and y centred on the room and z the
        height above the floor, rgb in ``[0, 1]``, xyz min-max normalised to ``[0, 1]`` over
        the scene), ``pos`` (the first three columns of ``x``) and ``y``.

    Shapes:
        x: ``[num_points, 9]`` float32, pos: ``[num_points, 3]`` float32,
        y: ``[num_points]`` int64.

    Raises:
        ConfigError: ``num_scenes`` or ``num_points`` below 1, ``seed`` negative, or ``noise``
            negative or not finite.
    """
    for name, value in (("num_scenes", num_scenes), ("num_points", num_points)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    _check_seed(seed)
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise ConfigError(f"noise must be a finite number >= 0, got {noise!r}")
    children = np.random.SeedSequence(seed).spawn(num_scenes)
    return [_scene(num_points, float(noise), np.random.default_rng(c)) for c in children]


# --------------------------------------------------------------------------------------------
# S3DIS
# --------------------------------------------------------------------------------------------


def _holds_s3dis(folder: Path) -> bool:
    return (folder / _ROOM_LIST).is_file()


def _find_s3dis(root: Path) -> Path | None:
    for sub in S3DIS_SUBDIRS:
        folder = root / sub if sub else root
        if _holds_s3dis(folder):
            return folder
    return None


def _block_files(folder: Path) -> list[Path]:
    """The block files in the order of ``room_filelist.txt``: as listed in ``all_files.txt``
    if present, else ``ply_data_all_<i>.h5`` by *numeric* ``i`` (``_10`` after ``_9``)."""
    listing = folder / _FILE_LIST
    if listing.is_file():
        names = [line.strip() for line in listing.read_text("utf-8").splitlines() if line.strip()]
        # entries read "indoor3d_sem_seg_hdf5_data/ply_data_all_0.h5": the folder was renamed
        files = [folder / Path(name).name for name in names]
        for f in files:
            if not f.is_file():
                raise DataError(f"{f}: listed in {listing} but missing")
    else:
        found = [(m, f) for f in folder.iterdir() if (m := _BLOCK_FILE.search(f.name))]
        files = [f for m, f in sorted(found, key=lambda mf: int(mf[0].group(1)))]
    if not files:
        raise DataError(f"{folder}: no ply_data_all_*.h5 block files beside {_ROOM_LIST}")
    return files


def _read_rooms(path: Path) -> list[int]:
    """The area of every block, from ``room_filelist.txt`` (one ``Area_<n>_<room>`` a line)."""
    areas = []
    for i, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        m = _ROOM.match(line.strip())
        if m is None:
            raise DataError(f"{path}: line {i} is {line.strip()!r}, expected Area_<n>_<room>")
        areas.append(int(m.group(1)))
    return areas


def _check_h5_sizes(path: Path, f: Any, keys: Sequence[str]) -> None:
    """Refuse, from the datasets' shapes and dtypes alone (nothing read), arrays that are not
    plain numeric datasets or that together need more than the memory budget."""
    from fathom.limits import check_bytes

    total = 0
    for key in keys:
        ds = f[key]
        shape, dtype = getattr(ds, "shape", None), getattr(ds, "dtype", None)
        if shape is None or dtype is None or dtype.kind not in "biuf":
            raise DataError(f"{path}: {key!r} must be a numeric array, got {type(ds).__name__}"
                            f"{'' if dtype is None else f' of {dtype}'}")  # fmt: skip
        total += math.prod(int(d) for d in shape) * dtype.itemsize
    check_bytes(total, f"the arrays of {path}", error=DataError)


def _read_blocks(path: Path, h5py: Any) -> tuple[Tensor, Tensor]:
    """``data [B, P, 9]`` float32 and ``label [B, P]`` int64 of one block file, checked."""
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("data", "label") if k not in f]
            if missing:
                raise DataError(
                    f"{path}: no {' or '.join(repr(k) for k in missing)} array "
                    f"(keys: {', '.join(sorted(f.keys())) or 'none'})"
                )
            _check_h5_sizes(path, f, ("data", "label"))
            data, label = np.asarray(f["data"][()]), np.asarray(f["label"][()])
    except OSError as exc:
        raise DataError(
            f"{path}: not a readable HDF5 file ({' '.join(str(exc).split())})"
        ) from None
    if data.ndim != 3 or data.shape[2] != IN_CHANNELS:
        raise DataError(f"{path}: data must have shape [B, P, 9], got {list(data.shape)}")
    if label.shape != data.shape[:2]:
        raise DataError(
            f"{path}: label must have shape [B, P] = {list(data.shape[:2])}, got "
            f"{list(label.shape)}"
        )
    if data.dtype.kind != "f" or label.dtype.kind not in "iu":
        raise DataError(
            f"{path}: data must be float and label integer, got {data.dtype} and {label.dtype}"
        )
    if not np.isfinite(data).all():
        raise DataError(f"{path}: data holds NaN or Inf")
    if label.size and (label.min() < 0 or label.max() >= len(S3DIS_CLASSES)):
        bad = label[(label < 0) | (label >= len(S3DIS_CLASSES))][:5].tolist()
        raise DataError(f"{path}: labels must lie in [0, {len(S3DIS_CLASSES)}), found {bad}")
    return torch.from_numpy(data.astype(np.float32)), torch.from_numpy(label.astype(np.int64))


def load_s3dis(
    root: str | Path, *, test_area: int = 5, num_points: int | None = None, seed: int = 0
) -> PointCloudSplits:
    """S3DIS blocks from the preprocessed ``indoor3d_sem_seg_hdf5_data`` folder, split by area.

    The folder (PointNet's preprocessing, Qi et al., CVPR 2017; the raw files of PyG's
    :class:`~torch_geometric.datasets.S3DIS`) holds ``ply_data_all_<i>.h5`` files with ``data``
    ``[B, 4096, 9]`` float (block-centred xyz, rgb in ``[0, 1]``, xyz normalised to the room)
    and ``label`` ``[B, 4096]`` int in ``[0, 13)`` (:data:`S3DIS_CLASSES`), plus
    ``room_filelist.txt``, one ``Area_<n>_<room>`` line per block in file order (files taken
    in the order of ``all_files.txt`` if present, else by their numeric index).

    ``root`` may be that folder or any root it lies under as listed in :data:`S3DIS_SUBDIRS`
    (``<root>/indoor3d_sem_seg_hdf5_data``, PyG's ``<root>/S3DIS/raw``, ...). Nothing is
    written anywhere. All blocks are read into memory (the full dataset is 23,585 blocks,
    about 3.5 GB at 4096 points; ``num_points`` shrinks it as the files are read).

    Blocks of Area ``test_area`` are the test set; the others are for training, of which a
    seeded ~10% of blocks (at least one) is held out for validation. Note that the DeepGCN
    reference code (``examples/sem_seg_dense``) selects models on the test area; fathom does
    not. The validation blocks come from training rooms, so they are correlated with the
    training blocks (neighbouring blocks of the same room).

    With ``num_points``, each block keeps a seeded random subset of that many points (in their
    original order). The standard protocol evaluates every point; subsampled test blocks are
    an approximation of it.

    Args:
        root: the folder, or a root above it.
        test_area: the held-out area (1-6 in S3DIS; Area 5 is the usual single split).
        num_points: points kept per block, or ``None`` for all.
        seed: seed of the validation split and of the subsampling.

    Returns:
        :class:`PointCloudSplits` named ``"s3dis"`` with 13 classes; every ``Data`` has
        ``x [P, 9]`` (the block's nine columns), ``pos = x[:, :3]`` and ``y [P]``.

    Raises:
        DataNotFoundError: no ``room_filelist.txt`` under ``root``.
        DataError: (one line, naming the file) missing block files, an ``.h5`` file without
            ``data``/``label`` or unreadable, shapes other than ``[B, P, 9]`` / ``[B, P]``,
            labels outside ``[0, 13)``, NaN or Inf, a room list whose length differs from the
            number of blocks or with a malformed line, no block of ``test_area``, fewer than
            two training blocks.
        ConfigError: ``num_points`` below 1 or above the points per block.
    """
    base = Path(root).expanduser()
    folder = _find_s3dis(base)
    if folder is None:
        where = ", ".join(str(base / s) if s else str(base) for s in S3DIS_SUBDIRS)
        raise DataNotFoundError(f"S3DIS not found: no {_ROOM_LIST} in {where}; {S3DIS_HINT}")
    if num_points is not None and (
        isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 1
    ):
        raise ConfigError(f"num_points must be an integer >= 1 or None, got {num_points!r}")
    try:
        import h5py
    except ImportError:  # a declared dependency, but an environment may lack it
        raise DataError("reading S3DIS needs h5py: pip install h5py") from None

    files = _block_files(folder)
    areas = _read_rooms(folder / _ROOM_LIST)
    gen = torch.Generator().manual_seed(seed)
    xs: list[Tensor] = []
    ys: list[Tensor] = []
    for path in files:
        data, label = _read_blocks(path, h5py)
        if num_points is not None:
            if num_points > data.size(1):
                raise ConfigError(
                    f"num_points={num_points} exceeds the {data.size(1)} points per block of {path}"
                )
            if num_points < data.size(1):
                keep = (
                    torch.stack(
                        [torch.randperm(data.size(1), generator=gen)[:num_points] for _ in data]
                    )
                    .sort(1)
                    .values
                )  # [B, num_points]
                data = data.gather(1, keep.unsqueeze(-1).expand(-1, -1, data.size(2)))
                label = label.gather(1, keep)
        xs.extend(data.unbind(0))
        ys.extend(label.unbind(0))
    if len(areas) != len(xs):
        raise DataError(
            f"{folder / _ROOM_LIST}: {len(areas)} rooms listed for {len(xs)} blocks in "
            f"{len(files)} .h5 files"
        )

    clouds = [Data(x=x, pos=x[:, :3], y=y) for x, y in zip(xs, ys, strict=True)]
    test = [c for c, a in zip(clouds, areas, strict=True) if a == test_area]
    rest = [c for c, a in zip(clouds, areas, strict=True) if a != test_area]
    if not test:
        present = ", ".join(str(a) for a in sorted(set(areas)))
        raise DataError(
            f"{folder / _ROOM_LIST}: no block of test_area={test_area} (areas present: {present})"
        )
    if len(rest) < 2:
        raise DataError(
            f"{folder / _ROOM_LIST}: {len(rest)} training block(s) outside Area_{test_area}; "
            f"need at least 2 to hold one out for validation"
        )
    num_val = max(1, round(_VAL_FRACTION * len(rest)))
    perm = torch.randperm(len(rest), generator=gen)
    is_val = torch.zeros(len(rest), dtype=torch.bool)
    is_val[perm[:num_val]] = True
    return PointCloudSplits(
        name="s3dis",
        train=[c for c, v in zip(rest, is_val.tolist(), strict=True) if not v],
        val=[c for c, v in zip(rest, is_val.tolist(), strict=True) if v],
        test=test,
        num_classes=len(S3DIS_CLASSES),
        class_names=S3DIS_CLASSES,
    )


# --------------------------------------------------------------------------------------------
# By name
# --------------------------------------------------------------------------------------------


def _split_seed(seed: int, split: int) -> int:
    """A seed per split (0 train, 1 val, 2 test) so the three splits share no scene."""
    return int(np.random.SeedSequence([seed, split]).generate_state(1)[0])


def _locate_s3dis(data_dir: str | Path | None) -> Path:
    looked = []
    for label, base in data_dir_candidates(data_dir):
        folder = _find_s3dis(base)
        if folder is not None:
            return folder
        looked.append(f"{label} {base}")
    raise DataNotFoundError(
        f"S3DIS not found: no {_ROOM_LIST} in {' or '.join(S3DIS_SUBDIRS[1:])} (or directly) "
        f"under {'; '.join(looked)}; {S3DIS_HINT}"
    )


def build_point_clouds(
    name: str,
    *,
    data_dir: str | Path | None,
    num_points: int,
    num_scenes: int,
    test_area: int,
    seed: int,
) -> PointCloudSplits:
    """The segmentation dataset ``name`` (one of :data:`POINT_CLOUD_DATASETS`) as splits.

    ``scenes``: :func:`make_scenes` with ``num_scenes`` training scenes and
    ``max(1, num_scenes // 4)`` validation and test scenes each, of ``num_points`` points,
    each split from its own seed derived from ``seed`` (so no scene is in two splits).
    ``test_area`` and ``data_dir`` are not used.

    ``s3dis``: :func:`load_s3dis` of the first root, in the order of
    :func:`fathom.data.datasets.data_dir_candidates` (``data_dir``, ``$FATHOM_DATA``, the
    cache's ``datasets/``), that holds the block files in one of :data:`S3DIS_SUBDIRS`;
    blocks subsampled to ``num_points``, Area ``test_area`` held out. ``num_scenes`` is not
    used.

    Args:
        name: ``"scenes"`` or ``"s3dis"``.
        data_dir: an explicit data root (``--data-dir``), searched first; may be ``None``.
        num_points: points per cloud.
        num_scenes: synthetic training scenes.
        test_area: S3DIS area held out as the test set.
        seed: seed of the scenes, or of the S3DIS validation split and subsampling.

    Raises:
        DataError: unknown ``name`` (the message lists :data:`POINT_CLOUD_DATASETS`), S3DIS
            not found (:class:`~fathom.errors.DataNotFoundError`: where fathom looked and how
            to get it) or malformed.
        ConfigError: bad ``num_points`` / ``num_scenes``, or a negative ``seed`` (scenes).
    """
    if name == "scenes":
        _check_seed(seed)
        train = make_scenes(num_scenes, num_points, seed=_split_seed(seed, 0))
        held_out = max(1, num_scenes // 4)
        return PointCloudSplits(
            name="scenes",
            train=train,
            val=make_scenes(held_out, num_points, seed=_split_seed(seed, 1)),
            test=make_scenes(held_out, num_points, seed=_split_seed(seed, 2)),
            num_classes=len(SCENE_CLASSES),
            class_names=SCENE_CLASSES,
        )
    if name == "s3dis":
        return load_s3dis(
            _locate_s3dis(data_dir), test_area=test_area, num_points=num_points, seed=seed
        )
    raise DataError(
        f"unknown point-cloud dataset {name!r}; choose one of {', '.join(POINT_CLOUD_DATASETS)}"
    )
