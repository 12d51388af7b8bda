"""Tests of fathom.data.pointclouds: synthetic scenes, the S3DIS block loader, lookup by name."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

from fathom.data.pointclouds import (
    POINT_CLOUD_DATASETS,
    S3DIS_CLASSES,
    SCENE_CLASSES,
    PointCloudSplits,
    _allocate,
    build_point_clouds,
    load_s3dis,
    make_scenes,
)
from fathom.errors import ConfigError, DataError, DataNotFoundError

FLOOR, WALL = SCENE_CLASSES.index("floor"), SCENE_CLASSES.index("wall")


# --------------------------------------------------------------------------------------------
# Synthetic scenes
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenes() -> list:
    return make_scenes(12, 512, seed=0)


def test_scene_shapes_dtypes_and_ranges(scenes: list) -> None:
    for d in scenes:
        assert d.x.shape == (512, 9) and d.x.dtype == torch.float32
        assert d.pos.shape == (512, 3) and d.pos.dtype == torch.float32
        assert d.y.shape == (512,) and d.y.dtype == torch.int64
        assert torch.equal(d.pos, d.x[:, :3])
        assert int(d.y.min()) >= 0 and int(d.y.max()) < len(SCENE_CLASSES)
        assert torch.isfinite(d.x).all()
        rgb, normalised = d.x[:, 3:6], d.x[:, 6:9]
        assert float(rgb.min()) >= 0.0 and float(rgb.max()) <= 1.0
        # min-max normalised over the scene: exactly 0 and 1 on every axis
        assert torch.equal(normalised.min(0).values, torch.zeros(3))
        assert torch.allclose(normalised.max(0).values, torch.ones(3))
        # rooms are 3-4 m a side, centred in x and y; z is the height above the floor
        assert float(d.pos[:, :2].abs().max()) < 2.0 + 0.1
        assert float(d.pos[:, 2].min()) > -0.1 and float(d.pos[:, 2].max()) < 2.0 + 0.1


def test_scene_classes_are_covered(scenes: list) -> None:
    assert SCENE_CLASSES == ("floor", "wall", "box", "sphere", "cylinder", "cone")
    seen = set()
    for d in scenes:
        present = set(d.y.tolist())
        assert {FLOOR, WALL} <= present
        assert present - {FLOOR, WALL}, "every scene holds at least one primitive"
        seen |= present
    assert seen == set(range(len(SCENE_CLASSES)))


def test_colour_does_not_encode_the_class(scenes: list) -> None:
    # every object gets a random colour: a class's mean colour varies widely between scenes
    for c in range(len(SCENE_CLASSES)):
        means = torch.stack([d.x[d.y == c, 3:6].mean(0) for d in scenes if (d.y == c).any()])
        assert len(means) >= 3
        assert float(means.std(0).min()) > 0.1, SCENE_CLASSES[c]


@pytest.mark.parametrize("num_points", [1, 7, 100, 1000])
def test_exact_point_count(num_points: int) -> None:
    for d in make_scenes(3, num_points, seed=5):
        assert d.x.shape == (num_points, 9) and d.y.shape == (num_points,)


def test_same_seed_same_tensors_and_prefix_stability() -> None:
    a, b = make_scenes(4, 256, seed=3), make_scenes(4, 256, seed=3)
    for da, db in zip(a, b, strict=True):
        assert torch.equal(da.x, db.x) and torch.equal(da.y, db.y)
    # scene i depends only on (seed, i)
    for da, dc in zip(a[:2], make_scenes(2, 256, seed=3), strict=True):
        assert torch.equal(da.x, dc.x) and torch.equal(da.y, dc.y)
    other = make_scenes(4, 256, seed=4)
    assert not any(torch.equal(da.x, do.x) for da, do in zip(a, other, strict=True))
    assert not torch.equal(a[0].x, a[1].x)


def test_noise_is_gaussian_with_the_given_std() -> None:
    # the floor lies at z = 0, so its points' heights are exactly the noise
    clean = make_scenes(4, 1024, seed=1, noise=0.0)
    for d in clean:
        assert torch.equal(d.pos[d.y == FLOOR, 2], torch.zeros(int((d.y == FLOOR).sum())))
        assert float(d.pos[:, 2].min()) == 0.0
    noisy = make_scenes(4, 1024, seed=1, noise=0.05)
    z = torch.cat([d.pos[d.y == FLOOR, 2] for d in noisy])
    assert z.numel() > 1000
    assert abs(float(z.std()) - 0.05) < 0.005 and abs(float(z.mean())) < 0.005


def test_walls_stand_on_room_edges() -> None:
    for d in make_scenes(4, 1024, seed=2, noise=0.0):
        wall = d.pos[d.y == WALL]
        xy = d.pos[:, :2]
        lo, hi = xy.min(0).values, xy.max(0).values
        # every wall point lies on one of the four edges of the room's bounding box
        on_edge = (torch.isclose(wall[:, :1], lo[:1]) | torch.isclose(wall[:, :1], hi[:1])).squeeze(
            1
        ) | (torch.isclose(wall[:, 1:2], lo[1:]) | torch.isclose(wall[:, 1:2], hi[1:])).squeeze(1)
        assert bool(on_edge.all())


def test_allocate_is_proportional_with_largest_remainders() -> None:
    assert _allocate([1.0, 1.0, 2.0], 5).tolist() == [1, 1, 3]
    assert _allocate([1.0, 1.0, 1.0], 4).tolist() == [2, 1, 1]  # ties: the earlier surface
    assert _allocate([3.0, 1.0], 8).tolist() == [6, 2]
    assert int(_allocate(np.random.default_rng(0).random(9).tolist(), 1001).sum()) == 1001


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_scenes=0, num_points=10),
        dict(num_scenes=1, num_points=0),
        dict(num_scenes=1, num_points=True),
        dict(num_scenes=1, num_points=10, noise=-0.1),
        dict(num_scenes=1, num_points=10, noise=float("nan")),
        dict(num_scenes=1, num_points=10, seed=-1),
    ],
)
def test_scene_arguments_are_checked(kwargs: dict) -> None:
    kwargs = {"seed": 0, **kwargs}
    with pytest.raises(ConfigError):
        make_scenes(**kwargs)


def test_scenes_batch_with_pyg_loader(scenes: list) -> None:
    batch = next(iter(DataLoader(scenes[:3], batch_size=3)))
    assert batch.x.shape == (3 * 512, 9) and batch.pos.shape == (3 * 512, 3)
    assert batch.batch.bincount().tolist() == [512, 512, 512]


# --------------------------------------------------------------------------------------------
# build_point_clouds: scenes, names
# --------------------------------------------------------------------------------------------


def test_build_scenes_splits() -> None:
    s = build_point_clouds(
        "scenes", data_dir=None, num_points=128, num_scenes=8, test_area=5, seed=0
    )
    assert isinstance(s, PointCloudSplits)
    assert (len(s.train), len(s.val), len(s.test)) == (8, 2, 2)
    assert s.name == "scenes" and s.num_classes == 6 and s.class_names == SCENE_CLASSES
    assert s.in_channels == 9
    clouds = s.train + s.val + s.test
    assert len({hashlib.sha256(d.x.numpy().tobytes()).hexdigest() for d in clouds}) == 12
    again = build_point_clouds(
        "scenes", data_dir=None, num_points=128, num_scenes=8, test_area=5, seed=0
    )
    for a, b in zip(clouds, again.train + again.val + again.test, strict=True):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    small = build_point_clouds(
        "scenes", data_dir=None, num_points=16, num_scenes=3, test_area=5, seed=1
    )
    assert (len(small.train), len(small.val), len(small.test)) == (3, 1, 1)


def test_unknown_dataset_name_lists_choices() -> None:
    assert POINT_CLOUD_DATASETS == ("scenes", "s3dis")
    with pytest.raises(DataError, match=r"'modelnet'.*scenes, s3dis"):
        build_point_clouds(
            "modelnet", data_dir=None, num_points=16, num_scenes=1, test_area=5, seed=0
        )


# --------------------------------------------------------------------------------------------
# S3DIS
# --------------------------------------------------------------------------------------------

POINTS = 32


def _write_s3dis(
    folder: Path,
    areas_per_file: list[list[int]],
    *,
    points: int = POINTS,
    all_files: bool = True,
) -> None:
    """A tiny indoor3d_sem_seg_hdf5_data folder. Block ``b`` (counted over all files) has
    ``data[..., 0] = b`` and ``data[..., 1] = point index``, labels ``(b + p) % 13``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rooms, names, b = [], [], 0
    for i, areas in enumerate(areas_per_file):
        data = rng.random((len(areas), points, 9)).astype(np.float32)
        label = np.zeros((len(areas), points), dtype=np.uint8)
        for j, area in enumerate(areas):
            data[j, :, 0] = b
            data[j, :, 1] = np.arange(points)
            label[j] = (b + np.arange(points)) % 13
            rooms.append(f"Area_{area}_office_{j + 1}")
            b += 1
        name = f"ply_data_all_{i}.h5"
        with h5py.File(folder / name, "w") as f:
            f["data"], f["label"] = data, label
        names.append(f"indoor3d_sem_seg_hdf5_data/{name}")
    (folder / "room_filelist.txt").write_text("".join(r + "\n" for r in rooms))
    if all_files:
        (folder / "all_files.txt").write_text("".join(n + "\n" for n in names))


def _block_ids(clouds: list) -> list[int]:
    return sorted(int(d.x[0, 0]) for d in clouds)


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def s3dis_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "indoor3d_sem_seg_hdf5_data"
    _write_s3dis(folder, [[1, 1], [2, 2], [3, 3]])  # 3 areas x 2 blocks
    return folder


def test_load_s3dis_splits_by_area(s3dis_dir: Path) -> None:
    before = _snapshot(s3dis_dir.parent)
    s = load_s3dis(s3dis_dir, test_area=2, seed=0)
    assert s.name == "s3dis" and s.num_classes == 13 and s.class_names == S3DIS_CLASSES
    assert s.in_channels == 9
    assert _block_ids(s.test) == [2, 3]
    assert (len(s.train), len(s.val)) == (3, 1)  # ~10% of 4 training blocks, at least one
    assert sorted(_block_ids(s.train) + _block_ids(s.val)) == [0, 1, 4, 5]
    with h5py.File(s3dis_dir / "ply_data_all_1.h5", "r") as f:
        data, label = f["data"][()], f["label"][()]
    first = next(d for d in s.test if int(d.x[0, 0]) == 2)
    assert torch.equal(first.x, torch.from_numpy(data[0]))
    assert torch.equal(first.y, torch.from_numpy(label[0]).long())
    for d in s.train + s.val + s.test:
        assert d.x.shape == (POINTS, 9) and d.x.dtype == torch.float32
        assert torch.equal(d.pos, d.x[:, :3]) and d.y.dtype == torch.int64
    assert _snapshot(s3dis_dir.parent) == before


def test_load_s3dis_validation_split_is_seeded(tmp_path: Path) -> None:
    folder = tmp_path / "indoor3d_sem_seg_hdf5_data"
    _write_s3dis(folder, [[1] * 10, [2] * 10, [5] * 4])
    runs = [load_s3dis(folder, test_area=5, seed=seed) for seed in (0, 0, 1, 2, 3)]
    assert _block_ids(runs[0].test) == list(range(20, 24))
    assert (len(runs[0].train), len(runs[0].val)) == (18, 2)
    assert _block_ids(runs[0].val) == _block_ids(runs[1].val)
    assert len({tuple(_block_ids(r.val)) for r in runs[1:]}) > 1


def test_load_s3dis_subsamples_points(s3dis_dir: Path) -> None:
    s = load_s3dis(s3dis_dir, test_area=1, num_points=8, seed=0)
    again = load_s3dis(s3dis_dir, test_area=1, num_points=8, seed=0)
    other = load_s3dis(s3dis_dir, test_area=1, num_points=8, seed=1)
    for d in s.train + s.val + s.test:
        assert d.x.shape == (8, 9) and d.y.shape == (8,) and torch.equal(d.pos, d.x[:, :3])
        idx = d.x[:, 1].long()  # original point index, kept in order and without repeats
        assert bool((idx[1:] > idx[:-1]).all())
        # each kept point keeps its own label
        assert torch.equal(d.y, (d.x[:, 0].long() + idx) % 13)
    kept = [d.x[:, 1] for d in s.test]
    assert all(torch.equal(a, b.x[:, 1]) for a, b in zip(kept, again.test, strict=True))
    assert not all(torch.equal(a, b.x[:, 1]) for a, b in zip(kept, other.test, strict=True))
    full = load_s3dis(s3dis_dir, test_area=1, num_points=POINTS)
    assert all(d.x.shape == (POINTS, 9) for d in full.test)
    with pytest.raises(ConfigError, match="num_points=33"):
        load_s3dis(s3dis_dir, test_area=1, num_points=POINTS + 1)
    with pytest.raises(ConfigError, match="num_points"):
        load_s3dis(s3dis_dir, test_area=1, num_points=0)


def test_load_s3dis_orders_files_numerically_without_file_list(tmp_path: Path) -> None:
    # ply_data_all_10.h5 sorts before _2 as text; the room list follows the numeric order
    folder = tmp_path / "indoor3d_sem_seg_hdf5_data"
    _write_s3dis(folder, [[1 + i % 6] for i in range(12)], all_files=False)
    s = load_s3dis(folder, test_area=5)
    assert _block_ids(s.test) == [4, 10]


def test_load_s3dis_follows_all_files_order(tmp_path: Path) -> None:
    folder = tmp_path / "indoor3d_sem_seg_hdf5_data"
    _write_s3dis(folder, [[1], [2], [3]])
    # list the files in reverse: the room list then names Area_3's block first
    (folder / "all_files.txt").write_text(
        "ply_data_all_2.h5\nply_data_all_1.h5\nply_data_all_0.h5\n"
    )
    (folder / "room_filelist.txt").write_text("Area_3_a\nArea_2_a\nArea_1_a\n")
    assert _block_ids(load_s3dis(folder, test_area=3).test) == [2]


@pytest.mark.parametrize(
    "layout",
    ["", "indoor3d_sem_seg_hdf5_data", "raw", "S3DIS/raw", "S3DIS/raw/indoor3d_sem_seg_hdf5_data"],
)
def test_load_s3dis_accepts_folder_or_pyg_layout(tmp_path: Path, layout: str) -> None:
    _write_s3dis(tmp_path / layout if layout else tmp_path, [[1], [2], [5]])
    assert _block_ids(load_s3dis(tmp_path, test_area=5).test) == [2]


def test_build_s3dis_resolves_data_dir_then_env(
    s3dis_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FATHOM_DATA", raising=False)
    root = s3dis_dir.parent
    before = _snapshot(root)
    kwargs = dict(num_points=16, num_scenes=99, test_area=3, seed=0)
    s = build_point_clouds("s3dis", data_dir=str(root), **kwargs)
    assert _block_ids(s.test) == [4, 5] and s.test[0].x.shape == (16, 9)
    monkeypatch.setenv("FATHOM_DATA", str(root))
    s = build_point_clouds("s3dis", data_dir=None, **kwargs)
    assert _block_ids(s.test) == [4, 5]
    # an explicit data_dir is the only place looked: FATHOM_DATA does not stand in for it
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="empty"):
        build_point_clouds("s3dis", data_dir=str(tmp_path / "empty"), **kwargs)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        build_point_clouds("s3dis", data_dir=str(tmp_path / "nowhere"), **kwargs)
    assert _snapshot(root) == before
    assert not (tmp_path / "cache").exists()


def test_build_s3dis_not_found_says_where_and_how(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FATHOM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FATHOM_DATA", str(tmp_path / "shared"))
    (tmp_path / "mine").mkdir()
    kwargs = dict(num_points=16, num_scenes=1, test_area=5, seed=0)
    with pytest.raises(DataNotFoundError) as info:
        build_point_clouds("s3dis", data_dir=str(tmp_path / "mine"), **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and "mine" in msg and "shared" not in msg
    with pytest.raises(DataNotFoundError) as info:
        build_point_clouds("s3dis", data_dir=None, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    for part in ("shared", "cache", "S3DIS/raw", "10577", "indoor3d_sem_seg_hdf5_data"):
        assert part in msg


def _rewrite(path: Path, **arrays: np.ndarray) -> None:
    path.unlink()
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f[key] = value


def _good(blocks: int = 2) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((blocks, POINTS, 9), np.float32), np.zeros((blocks, POINTS), np.uint8)


def _break_no_data(folder: Path) -> str:
    _rewrite(folder / "ply_data_all_1.h5", label=_good()[1])
    return "ply_data_all_1.h5: no 'data'"


def _break_no_label(folder: Path) -> str:
    _rewrite(folder / "ply_data_all_1.h5", data=_good()[0])
    return "ply_data_all_1.h5: no 'label'"


def _break_data_shape(folder: Path) -> str:
    _rewrite(folder / "ply_data_all_1.h5", data=np.zeros((2, POINTS, 6), np.float32),
             label=_good()[1])  # fmt: skip
    return "data must have shape"


def _break_data_rank(folder: Path) -> str:
    _rewrite(folder / "ply_data_all_1.h5", data=np.zeros((2 * POINTS, 9), np.float32),
             label=_good()[1])  # fmt: skip
    return "data must have shape"


def _break_label_shape(folder: Path) -> str:
    _rewrite(folder / "ply_data_all_1.h5", data=_good()[0], label=np.zeros((2, 5), np.uint8))
    return "label must have shape"


def _break_label_high(folder: Path) -> str:
    label = _good()[1]
    label[1, 3] = 13
    _rewrite(folder / "ply_data_all_1.h5", data=_good()[0], label=label)
    return r"labels must lie in \[0, 13\), found \[13\]"


def _break_label_negative(folder: Path) -> str:
    label = _good()[1].astype(np.int64)
    label[0, 0] = -1
    _rewrite(folder / "ply_data_all_1.h5", data=_good()[0], label=label)
    return r"found \[-1\]"


def _break_nan(folder: Path) -> str:
    data = _good()[0]
    data[0, 5, 4] = np.nan
    _rewrite(folder / "ply_data_all_1.h5", data=data, label=_good()[1])
    return "NaN or Inf"


def _break_inf(folder: Path) -> str:
    data = _good()[0]
    data[1, 0, 0] = np.inf
    _rewrite(folder / "ply_data_all_1.h5", data=data, label=_good()[1])
    return "NaN or Inf"


def _break_not_hdf5(folder: Path) -> str:
    (folder / "ply_data_all_1.h5").write_bytes(b"not an hdf5 file")
    return "ply_data_all_1.h5: not a readable HDF5 file"


def _break_huge_shape(folder: Path) -> str:
    """A small file whose dataset shape claims terabytes (chunks never written)."""
    (folder / "ply_data_all_1.h5").unlink()
    with h5py.File(folder / "ply_data_all_1.h5", "w") as f:
        f.create_dataset("data", shape=(10**8, 4096, 9), dtype="f4", chunks=(1, 16, 9))
        f["label"] = _good()[1]
    assert (folder / "ply_data_all_1.h5").stat().st_size < 100_000
    return "needs about 13.4 TB, more than the memory budget"


def _break_string_data(folder: Path) -> str:
    _rewrite(folder / "ply_data_all_1.h5", data=np.array([b"a", b"b"]), label=_good()[1])
    return "'data' must be a numeric array"


def _break_room_count(folder: Path) -> str:
    (folder / "room_filelist.txt").write_text("Area_1_a\n" * 2 + "Area_2_a\n" * 2 + "Area_3_a\n")
    return "room_filelist.txt: 5 rooms listed for 6 blocks"


def _break_room_line(folder: Path) -> str:
    text = (folder / "room_filelist.txt").read_text().replace("Area_3_office_1", "office_1")
    (folder / "room_filelist.txt").write_text(text)
    return "room_filelist.txt: line 5"


def _break_missing_h5(folder: Path) -> str:
    (folder / "ply_data_all_2.h5").unlink()
    return "ply_data_all_2.h5: listed in"


def _break_no_h5(folder: Path) -> str:
    for f in folder.glob("*.h5"):
        f.unlink()
    (folder / "all_files.txt").unlink()
    return "no ply_data_all_"


def _break_no_test_blocks(folder: Path) -> str:
    text = (folder / "room_filelist.txt").read_text().replace("Area_2", "Area_1")
    (folder / "room_filelist.txt").write_text(text)
    return r"no block of test_area=2 \(areas present: 1, 3\)"


def _break_one_training_block(folder: Path) -> str:
    (folder / "room_filelist.txt").write_text("Area_2_a\n" * 5 + "Area_1_a\n")
    return "1 training block"


BREAKERS = [
    _break_no_data,
    _break_no_label,
    _break_data_shape,
    _break_data_rank,
    _break_label_shape,
    _break_label_high,
    _break_label_negative,
    _break_nan,
    _break_inf,
    _break_not_hdf5,
    _break_huge_shape,
    _break_string_data,
    _break_room_count,
    _break_room_line,
    _break_missing_h5,
    _break_no_h5,
    _break_no_test_blocks,
    _break_one_training_block,
]


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda f: f.__name__[len("_break_") :])
def test_load_s3dis_rejects_malformed_data(s3dis_dir: Path, breaker) -> None:
    pattern = breaker(s3dis_dir)
    before = _snapshot(s3dis_dir)
    with pytest.raises(DataError, match=pattern) as info:
        load_s3dis(s3dis_dir, test_area=2)
    assert "\n" not in str(info.value)
    assert _snapshot(s3dis_dir) == before


def test_load_s3dis_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"no room_filelist\.txt in .*nowhere") as info:
        load_s3dis(tmp_path / "nowhere")
    assert "\n" not in str(info.value)
