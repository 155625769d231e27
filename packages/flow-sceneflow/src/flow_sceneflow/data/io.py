"""Loaders for a user's scan pairs: PLY, PCD, NPY/NPZ and KITTI-style ``.bin`` files.

* ``.ply`` / ``.pcd``: read with open3d (x, y, z; other attributes ignored);
* ``.bin``: KITTI Velodyne layout, float32 rows of (x, y, z, intensity);
* ``.npy``: an ``(N, 3+)`` array (the first three columns are used);
* ``.npz``: a single cloud under ``points`` (or its only array), or a whole pair with keys
  ``pc1``, ``pc2`` and optionally ``flow``, ``pose1``, ``pose2`` and ``dynamic``;
* flow: ``.npy``, ``.npz`` (key ``flow``) or ``.bin`` (float32 (x, y, z) rows);
* poses: text or ``.npy`` with a 4×4 matrix, or the 12 numbers of a KITTI 3×4 row.

Everything goes through :class:`flow_sceneflow.scan.ScanPair`, so empty, non-finite or wrongly
shaped data fails with a :class:`~flow_sceneflow.scan.PointCloudError` naming the file.
``drop_nonfinite=True`` first removes rows with NaN/inf (and the matching flow rows), for files
padded with NaN such as ICP-Flow's ``demo.npz``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flow_sceneflow.scan import PointCloudError, ScanPair

__all__ = ["POINT_SUFFIXES", "load_flow", "load_pair", "load_points", "load_pose"]

POINT_SUFFIXES = (".ply", ".pcd", ".bin", ".npy", ".npz")


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise PointCloudError(f"{path}: no such file")
    return path


def _columns(name: str, array: np.ndarray, width: int = 3) -> np.ndarray:
    if array.ndim != 2 or array.shape[1] < width:
        raise PointCloudError(f"{name}: expected an (N, {width}+) array, got {array.shape}")
    return np.asarray(array[:, :width], dtype=np.float64)


def load_points(path: str | Path) -> np.ndarray:
    """The ``(N, 3)`` points of one scan file (see the module docstring for formats)."""
    path = _existing(path)
    suffix = path.suffix.lower()
    if suffix in (".ply", ".pcd"):
        import open3d as o3d

        cloud = o3d.io.read_point_cloud(path)
        points = np.asarray(cloud.points, dtype=np.float64)
        if points.shape[0] == 0:
            raise PointCloudError(f"{path}: open3d read no points (empty or unreadable file)")
        return points
    if suffix == ".bin":
        raw = np.fromfile(path, dtype=np.float32)
        if raw.size == 0 or raw.size % 4:
            raise PointCloudError(
                f"{path}: a KITTI .bin holds float32 (x, y, z, intensity) rows; {raw.size}"
                " values is not a positive multiple of 4"
            )
        return raw.reshape(-1, 4)[:, :3].astype(np.float64)
    if suffix == ".npy":
        return _columns(str(path), np.load(path, allow_pickle=False))
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            key = "points" if "points" in keys else keys[0] if len(keys) == 1 else None
            if key is None:
                raise PointCloudError(
                    f"{path}: holds {keys}; a single-scan .npz needs a 'points' array"
                )
            return _columns(f"{path}[{key}]", data[key])
    raise PointCloudError(
        f"{path}: unsupported suffix {suffix!r}; expected one of {POINT_SUFFIXES}"
    )


def load_flow(path: str | Path) -> np.ndarray:
    """A ground-truth flow file: ``(N, 3)`` vectors."""
    path = _existing(path)
    suffix = path.suffix.lower()
    if suffix == ".bin":
        raw = np.fromfile(path, dtype=np.float32)
        if raw.size == 0 or raw.size % 3:
            raise PointCloudError(f"{path}: a flow .bin holds float32 (x, y, z) rows")
        return raw.reshape(-1, 3).astype(np.float64)
    if suffix == ".npy":
        return _columns(str(path), np.load(path, allow_pickle=False))
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "flow" not in data:
                raise PointCloudError(f"{path}: no 'flow' array (has {list(data.keys())})")
            return _columns(f"{path}[flow]", data["flow"])
    raise PointCloudError(f"{path}: flow must be .npy, .npz or .bin, got {suffix!r}")


def load_pose(path: str | Path) -> np.ndarray:
    """A 4×4 sensor-to-world pose from text or ``.npy`` (4×4, 3×4 or 12 numbers)."""
    path = _existing(path)
    values = np.load(path) if path.suffix.lower() == ".npy" else np.loadtxt(path)
    values = np.asarray(values, dtype=np.float64)
    if values.size == 12:
        values = np.vstack([values.reshape(3, 4), [0.0, 0.0, 0.0, 1.0]])
    if values.size != 16:
        raise PointCloudError(
            f"{path}: a pose needs 12 (3x4) or 16 (4x4) numbers, got {values.size}"
        )
    return values.reshape(4, 4)


def _finite_rows(*arrays: np.ndarray | None) -> np.ndarray:
    """Rows finite in every given array of the first array's length."""
    first = next(a for a in arrays if a is not None)
    keep = np.ones(first.shape[0], dtype=bool)
    for array in arrays:
        if array is not None and array.shape[0] == first.shape[0]:
            keep &= np.isfinite(array.reshape(array.shape[0], -1)).all(1)
    return keep


def load_pair(
    scan1: str | Path,
    scan2: str | Path | None = None,
    flow: str | Path | None = None,
    pose1: str | Path | None = None,
    pose2: str | Path | None = None,
    drop_nonfinite: bool = False,
) -> ScanPair:
    """A :class:`ScanPair` from two scan files (or one pair ``.npz``) and optional extras."""
    dynamic = None
    poses: list[np.ndarray | None] = [None, None]
    if scan2 is None:
        path = _existing(scan1)
        if path.suffix.lower() != ".npz":
            raise PointCloudError(f"{path}: give a second scan, or a pair .npz with pc1 and pc2")
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("pc1", "pc2") if k not in data]
            if missing:
                raise PointCloudError(
                    f"{path}: a pair .npz needs {missing} (has {list(data.keys())})"
                )
            pc1 = _columns(f"{path}[pc1]", data["pc1"])
            pc2 = _columns(f"{path}[pc2]", data["pc2"])
            gt = _columns(f"{path}[flow]", data["flow"]) if "flow" in data else None
            if "pose1" in data and "pose2" in data:
                poses = [np.asarray(data["pose1"], float), np.asarray(data["pose2"], float)]
            if "dynamic" in data:
                dynamic = np.asarray(data["dynamic"], dtype=bool)
        name = path.name
    else:
        pc1, pc2 = load_points(scan1), load_points(scan2)
        gt = None
        name = f"{Path(scan1).name}+{Path(scan2).name}"
    if flow is not None:
        gt = load_flow(flow)
    if pose1 is not None or pose2 is not None:
        if pose1 is None or pose2 is None:
            raise PointCloudError("give both pose files (pose1 and pose2) or neither")
        poses = [load_pose(pose1), load_pose(pose2)]
    if drop_nonfinite:
        keep = _finite_rows(pc1, gt)
        pc1 = pc1[keep]
        gt = gt[keep] if gt is not None and gt.shape[0] == keep.shape[0] else gt
        dynamic = dynamic[keep] if dynamic is not None and dynamic.shape == keep.shape else dynamic
        pc2 = pc2[_finite_rows(pc2)]
    return ScanPair(pc1, pc2, gt, poses[0], poses[1], dynamic1=dynamic, name=name)
