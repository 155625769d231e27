"""Loaders for a user's scan pairs: PLY, PCD, NPY/NPZ and KITTI-style ``.bin`` files.

* ``.ply`` / ``.pcd``: read with open3d (x, y, z; other attributes ignored);
* ``.bin``: KITTI Velodyne layout, float32 rows of (x, y, z, intensity);
* ``.npy``: an ``(N, 3+)`` array (the first three columns are used);
* ``.npz``: a single cloud under ``points`` (or its only array), or a whole pair in one of
  three layouts: ours (``pc1``, ``pc2`` and optionally ``flow``, ``pose1``, ``pose2``,
  ``dynamic``, ``ego_compensated``, ``ground_removed``); the ZeroFlow / ICP-Flow Argoverse 2
  layout (``pc1``, ``pc2``, ``gt_flow_0_1``, ``pc1_flows_valid_idx``, ``pc2_flows_valid_idx``;
  ego-compensated and ground-free); the FlowNet3D KITTI layout (``pos1``, ``pos2``, ``gt``);
* a directory with ``pc1.npy`` and ``pc2.npy``: HPLFlowNet's KITTI layout (pc2 = pc1 + flow);
  both KITTI layouts have y up and are turned to z up;
* flow: ``.npy``, ``.npz`` (key ``flow``) or ``.bin`` (float32 (x, y, z) rows);
* poses: text or ``.npy`` with a 4×4 matrix, or the 12 numbers of a KITTI 3×4 row.

Everything goes through :class:`flow_sceneflow.scan.ScanPair`, so empty, non-finite or wrongly
shaped data fails with a :class:`~flow_sceneflow.scan.PointCloudError` naming the file.
A trailing block of all-NaN rows (padding, as in ICP-Flow's ``demo.npz``) is dropped and
counted in the pair's conventions; ``drop_nonfinite=True`` also removes scattered NaN/inf rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flow_sceneflow.scan import Conventions, PointCloudError, ScanPair

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


def _trailing_padding(array: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop a trailing block of all-NaN rows (padding); other non-finite rows stay for checks."""
    finite = np.isfinite(array).all(1)
    count = int(finite.size - (np.flatnonzero(finite).max() + 1)) if finite.any() else 0
    if count and np.isnan(array[-count:]).all():
        return array[:-count], count
    return array, 0


def _finite_rows(*arrays: np.ndarray | None) -> np.ndarray:
    """Rows finite in every given array of the first array's length."""
    first = next(a for a in arrays if a is not None)
    keep = np.ones(first.shape[0], dtype=bool)
    for array in arrays:
        if array is not None and array.shape[0] == first.shape[0]:
            keep &= np.isfinite(array.reshape(array.shape[0], -1)).all(1)
    return keep


def _y_up_to_z_up(points: np.ndarray) -> np.ndarray:
    """KITTI preprocessed files use camera-like axes with y up; (x, y, z) -> (z, x, y).

    A cyclic permutation of the axes is a proper rotation, so flows turn the same way.
    """
    return np.asarray(points[:, [2, 0, 1]], dtype=np.float64)


def _valid(name: str, data: Any, key: str, length: int) -> np.ndarray:
    """A ``*_valid_idx`` entry as a boolean mask (it may hold a mask or indices)."""
    raw = np.asarray(data[key])
    if raw.dtype == bool:
        if raw.shape != (length,):
            raise PointCloudError(f"{name}[{key}]: mask of shape {raw.shape}, expected ({length},)")
        return raw
    mask = np.zeros(length, dtype=bool)
    if raw.size and (raw.min() < 0 or raw.max() >= length):
        raise PointCloudError(f"{name}[{key}]: indices outside 0..{length - 1}")
    mask[raw.astype(np.int64)] = True
    return mask


def _read_pair_npz(path: Path) -> dict[str, Any]:
    """Arrays and recorded conventions of a pair ``.npz`` in one of the known layouts."""
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.keys())
        out: dict[str, Any] = {"pose1": None, "pose2": None, "flow": None, "dynamic": None}
        facts: dict[str, bool] = {}
        if {"pc1", "pc2"} <= keys and keys & {"gt_flow_0_1", "pc1_flows_valid_idx"}:
            out["layout"] = "av2 (ZeroFlow / ICP-Flow)"
            pc1 = _columns(f"{path}[pc1]", data["pc1"])
            pc2 = _columns(f"{path}[pc2]", data["pc2"])
            flow = (
                _columns(f"{path}[gt_flow_0_1]", data["gt_flow_0_1"])
                if ("gt_flow_0_1" in keys)
                else None
            )
            if "pc1_flows_valid_idx" in keys:
                keep1 = _valid(str(path), data, "pc1_flows_valid_idx", pc1.shape[0])
                pc1, flow = pc1[keep1], None if flow is None else flow[keep1]
            if "pc2_flows_valid_idx" in keys:
                pc2 = pc2[_valid(str(path), data, "pc2_flows_valid_idx", pc2.shape[0])]
            out.update(pc1=pc1, pc2=pc2, flow=flow)
            facts = {"ego_compensated": True, "ground_removed": True}
        elif {"pos1", "pos2"} <= keys:
            out["layout"] = "kitti (FlowNet3D pos1/pos2/gt, y-up axes turned to z-up)"
            out["pc1"] = _y_up_to_z_up(_columns(f"{path}[pos1]", data["pos1"]))
            out["pc2"] = _y_up_to_z_up(_columns(f"{path}[pos2]", data["pos2"]))
            if "gt" in keys:
                out["flow"] = _y_up_to_z_up(_columns(f"{path}[gt]", data["gt"]))
            facts = {"ego_compensated": False}
        elif {"pc1", "pc2"} <= keys:
            out["layout"] = "flow pair (pc1/pc2)"
            out["pc1"] = _columns(f"{path}[pc1]", data["pc1"])
            out["pc2"] = _columns(f"{path}[pc2]", data["pc2"])
            if "flow" in keys:
                out["flow"] = _columns(f"{path}[flow]", data["flow"])
            if "pose1" in keys and "pose2" in keys:
                out["pose1"] = np.asarray(data["pose1"], float)
                out["pose2"] = np.asarray(data["pose2"], float)
            if "dynamic" in keys:
                out["dynamic"] = np.asarray(data["dynamic"], dtype=bool)
            for fact in ("ego_compensated", "ground_removed"):
                if fact in keys:
                    facts[fact] = bool(np.asarray(data[fact]))
        else:
            raise PointCloudError(
                f"{path}: not a known pair layout (has {sorted(keys)}); expected pc1+pc2"
                " (flow pair or ZeroFlow/ICP-Flow AV2 with gt_flow_0_1) or pos1+pos2 (KITTI)"
            )
    out["facts"] = facts
    return out


def _read_pair_dir(path: Path) -> dict[str, Any]:
    """An HPLFlowNet KITTI scene directory: ``pc1.npy`` and ``pc2.npy`` (pc2 = pc1 + flow)."""
    missing = [f for f in ("pc1.npy", "pc2.npy") if not (path / f).is_file()]
    if missing:
        raise PointCloudError(
            f"{path}: a pair directory needs pc1.npy and pc2.npy (HPLFlowNet KITTI); missing"
            f" {missing}"
        )
    pc1 = _y_up_to_z_up(_columns(str(path / "pc1.npy"), np.load(path / "pc1.npy")))
    pc2 = _y_up_to_z_up(_columns(str(path / "pc2.npy"), np.load(path / "pc2.npy")))
    return {
        "layout": "kitti (HPLFlowNet pc1.npy/pc2.npy, y-up axes turned to z-up)",
        "pc1": pc1,
        "pc2": pc2,
        "flow": pc2 - pc1 if pc1.shape == pc2.shape else None,
        "pose1": None,
        "pose2": None,
        "dynamic": None,
        "facts": {"ego_compensated": False},
    }


def load_pair(
    scan1: str | Path,
    scan2: str | Path | None = None,
    flow: str | Path | None = None,
    pose1: str | Path | None = None,
    pose2: str | Path | None = None,
    drop_nonfinite: bool = False,
) -> ScanPair:
    """A :class:`ScanPair` from two scan files, or one pair ``.npz`` / directory, plus extras.

    The pair records its :class:`~flow_sceneflow.scan.Conventions`: the layout, what the layout
    implies (e.g. the AV2 files are ego-compensated and ground-free) and the NaN padding
    dropped; the rest is detected later (:mod:`flow_sceneflow.conventions`).
    """
    if scan2 is None:
        path = Path(scan1)
        if path.is_dir():
            read = _read_pair_dir(path)
        else:
            path = _existing(path)
            if path.suffix.lower() != ".npz":
                raise PointCloudError(
                    f"{path}: give a second scan, or a pair .npz / HPLFlowNet directory"
                )
            read = _read_pair_npz(path)
        name = path.name
    else:
        read = {
            "layout": "two scan files",
            "pc1": load_points(scan1),
            "pc2": load_points(scan2),
            "flow": None,
            "pose1": None,
            "pose2": None,
            "dynamic": None,
            "facts": {},
        }
        name = f"{Path(scan1).name}+{Path(scan2).name}"
    pc1, pc2, gt, dynamic = read["pc1"], read["pc2"], read["flow"], read["dynamic"]
    poses = [read["pose1"], read["pose2"]]
    if flow is not None:
        gt = load_flow(flow)
    if pose1 is not None or pose2 is not None:
        if pose1 is None or pose2 is None:
            raise PointCloudError("give both pose files (pose1 and pose2) or neither")
        poses = [load_pose(pose1), load_pose(pose2)]
    pc1, pad1 = _trailing_padding(pc1)
    pc2, pad2 = _trailing_padding(pc2)
    if pad1 and gt is not None and gt.shape[0] == pc1.shape[0] + pad1:
        gt = gt[: pc1.shape[0]]
    if pad1 and dynamic is not None and dynamic.shape[0] == pc1.shape[0] + pad1:
        dynamic = dynamic[: pc1.shape[0]]
    if drop_nonfinite:
        keep = _finite_rows(pc1, gt)
        pc1 = pc1[keep]
        gt = gt[keep] if gt is not None and gt.shape[0] == keep.shape[0] else gt
        dynamic = dynamic[keep] if dynamic is not None and dynamic.shape == keep.shape else dynamic
        pc2 = pc2[_finite_rows(pc2)]
    facts = read["facts"]
    conventions = Conventions(
        ego_compensated=facts.get("ego_compensated"),
        ground_removed=facts.get("ground_removed"),
        padding=(pad1, pad2),
        layout=read["layout"],
        source=tuple((k, "file layout") for k in sorted(facts)),
    )
    return ScanPair(
        pc1, pc2, gt, poses[0], poses[1], dynamic1=dynamic, name=name, conventions=conventions
    )
