"""A pair of LiDAR scans with optional ground truth, and the checks every entry point runs.

Conventions: points are ``(N, 3)`` float arrays in metres, each scan in its own sensor frame.
``pose1``/``pose2`` are 4×4 sensor-to-world transforms. The ground-truth flow of a point p of
scan 1 is where that surface point is at the time of scan 2, *expressed in the frame of scan 2*,
minus p (the KITTI/Argoverse 2 convention: static points move by the ego-motion, and
``pc1 + flow`` lies on the surfaces seen in ``pc2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flow_core.errors import FlowError

__all__ = [
    "Conventions",
    "PointCloudError",
    "ScanPair",
    "check_points",
    "check_pose",
    "row_norm",
    "transform_points",
]


class PointCloudError(FlowError):
    """A point cloud, flow field or pose is empty, non-finite or wrongly shaped."""


def check_points(name: str, points: object, min_points: int = 1) -> np.ndarray:
    """Return ``points`` as a float64 ``(N, 3)`` array, or raise :class:`PointCloudError`.

    Rejects anything that is not two-dimensional with three columns, has fewer than
    ``min_points`` rows, or holds NaN or infinite values (naming how many rows do).
    """
    array = np.asarray(points)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise PointCloudError(f"{name}: expected a numeric (N, 3) array, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != 3:
        raise PointCloudError(
            f"{name}: expected shape (N, 3) (x, y, z per row), got {tuple(array.shape)}"
        )
    if array.shape[0] < min_points:
        raise PointCloudError(
            f"{name}: has {array.shape[0]} points; at least {min_points} are needed"
        )
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise PointCloudError(
            f"{name}: {int(bad.sum())} of {array.shape[0]} rows contain NaN or inf; drop them"
            " first (e.g. points[np.isfinite(points).all(1)])"
        )
    return array.astype(np.float64)


def check_pose(name: str, pose: object) -> np.ndarray:
    """Return ``pose`` as a float64 4×4 rigid transform, or raise :class:`PointCloudError`."""
    array = np.asarray(pose, dtype=np.float64)
    if array.shape != (4, 4):
        raise PointCloudError(f"{name}: expected a 4x4 pose matrix, got {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise PointCloudError(f"{name}: pose contains NaN or inf")
    rotation = array[:3, :3]
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4) or not np.allclose(
        array[3], [0, 0, 0, 1]
    ):
        raise PointCloudError(
            f"{name}: not a rigid transform (rotation block must be orthonormal, last row 0 0 0 1)"
        )
    return array


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply the 4×4 ``transform`` to ``(N, 3)`` points: R p + t."""
    return np.asarray(points @ transform[:3, :3].T + transform[:3, 3], dtype=np.float64)


@dataclass(frozen=True)
class Conventions:
    """How a pair was preprocessed before it reached us (``None``: not known, to be detected).

    ``ego_compensated``: scan 2 is already in the frame of scan 1 (or scan 1 in that of scan 2),
    so static points have zero flow; ``ground_removed``: the ground points were deleted;
    ``float16``: the coordinates of scan 1 sit on the float16 grid (the ZeroFlow/ICP-Flow
    Argoverse 2 files store them so); ``padding``: NaN rows dropped from the file (pc1, pc2);
    ``layout``: the file layout read; ``source``: per field, ``"file"`` (recorded in or implied
    by the layout), ``"detected"`` or ``"given"`` (a task setting).
    """

    ego_compensated: bool | None = None
    ground_removed: bool | None = None
    float16: bool = False
    padding: tuple[int, int] = (0, 0)
    layout: str = "arrays"
    source: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """One line for reports: what the pair is taken to be, and where each fact came from."""
        origin = dict(self.source)

        def fact(name: str, value: bool | None, yes: str, no: str) -> str:
            text = "unknown" if value is None else yes if value else no
            return f"{text} ({origin.get(name, 'assumed')})"

        return (
            f"layout {self.layout}; "
            + fact("ego_compensated", self.ego_compensated, "ego-compensated", "not compensated")
            + "; "
            + fact("ground_removed", self.ground_removed, "ground removed", "ground present")
            + f"; scan-1 precision {'float16' if self.float16 else 'float32 or finer'}"
            + f"; NaN padding dropped: {self.padding[0]} + {self.padding[1]} rows"
        )


@dataclass(frozen=True)
class ScanPair:
    """Two scans and what is known about them (see the module docstring for conventions).

    ``labels1``/``labels2`` give, per point of each scan, the generator's object id (0 ground)
    and ``dynamic1`` whether the point moves by more than the ego-motion (``|flow − ego| > 5 cm``).
    """

    pc1: np.ndarray
    pc2: np.ndarray
    flow: np.ndarray | None = None
    pose1: np.ndarray | None = None
    pose2: np.ndarray | None = None
    labels1: np.ndarray | None = None
    dynamic1: np.ndarray | None = None
    name: str = "pair"
    labels2: np.ndarray | None = None
    conventions: Conventions = Conventions()

    def __post_init__(self) -> None:
        object.__setattr__(self, "pc1", check_points(f"{self.name}: pc1", self.pc1))
        object.__setattr__(self, "pc2", check_points(f"{self.name}: pc2", self.pc2))
        if self.flow is not None:
            flow = check_points(f"{self.name}: flow", self.flow)
            if flow.shape != self.pc1.shape:
                raise PointCloudError(
                    f"{self.name}: flow has shape {flow.shape} but pc1 has {self.pc1.shape};"
                    " ground-truth flow needs one vector per point of the first scan"
                )
            object.__setattr__(self, "flow", flow)
        if (self.pose1 is None) != (self.pose2 is None):
            raise PointCloudError(f"{self.name}: give both ego poses or neither")
        if self.pose1 is not None:
            object.__setattr__(self, "pose1", check_pose(f"{self.name}: pose1", self.pose1))
            object.__setattr__(self, "pose2", check_pose(f"{self.name}: pose2", self.pose2))
        for field_name in ("labels1", "dynamic1"):
            value = getattr(self, field_name)
            if value is not None and np.asarray(value).shape != (self.pc1.shape[0],):
                raise PointCloudError(
                    f"{self.name}: {field_name} needs one entry per point of pc1"
                    f" ({self.pc1.shape[0]}), got shape {np.asarray(value).shape}"
                )
        if self.labels2 is not None and np.asarray(self.labels2).shape != (self.pc2.shape[0],):
            raise PointCloudError(f"{self.name}: labels2 needs one entry per point of pc2")

    @property
    def ego(self) -> np.ndarray:
        """The transform taking scan-2 coordinates into scan-1 coordinates (identity if unknown)."""
        if self.pose1 is None or self.pose2 is None:
            return np.eye(4)
        return np.asarray(np.linalg.inv(self.pose1) @ self.pose2, dtype=np.float64)

    def dynamic_mask(self, threshold: float = 0.05) -> np.ndarray:
        """Points that move by more than ``threshold`` m beyond the ego-motion.

        Uses ``dynamic1`` when given; otherwise the ground-truth flow compared with the flow the
        ego-motion alone would give.
        """
        if self.dynamic1 is not None:
            return np.asarray(self.dynamic1, dtype=bool)
        if self.flow is None:
            raise PointCloudError(f"{self.name}: no ground-truth flow, so no dynamic mask")
        ego_flow = transform_points(np.linalg.inv(self.ego), self.pc1) - self.pc1
        return row_norm(self.flow - ego_flow) > threshold


def row_norm(vectors: np.ndarray) -> np.ndarray:
    """Row-wise Euclidean norm."""
    return np.asarray(np.linalg.norm(vectors, axis=1), dtype=np.float64)
