"""A seeded synthetic LiDAR benchmark built on open3d's ray casting, with exact scene flow.

A scene is a ground plane, static structures ("buildings") and a set of boxes and car-like
meshes. Each object k has a rigid world-frame motion M_k between the two scans (identity when
parked); the sensor moves too (ego-motion, sensor-to-world poses P_1 and P_2). Each scan is a
spinning-LiDAR pattern (``beams`` elevation rings × ``azimuths`` columns, a random azimuth phase
per scan, Gaussian range noise) cast with :class:`open3d.t.geometry.RaycastingScene`.

For a hit x (world frame) on object k in scan 1 the ground truth is exact:
``flow = P_2⁻¹ M_k x − P_1⁻¹ x`` (the point at time 2 in the frame of scan 2, minus the point in
the frame of scan 1; see :mod:`flow_sceneflow.scan`). The hit's object comes from the ray's
``geometry_ids``. A point is *dynamic* when ``|M_k x − x| > 5 cm``.

:func:`in_convention` rewrites a pair the way real files arrive (:data:`CONVENTIONS`): ``raw``
(own sensor frames, poses known, ground present), ``compensated`` (scan 2 brought into the frame
of scan 1, no poses, static flow zero), ``ground-removed`` (raw with the ground points deleted, as
in the KITTI files of FlowNet3D / HPLFlowNet) and ``av2`` (compensated, ground-free and scan 1
quantised to float16, as in the ZeroFlow / ICP-Flow Argoverse 2 files).

This is a substitute for real LiDAR benchmarks (Argoverse 2, Waymo, KITTI): numbers on it are
not comparable with published numbers on those.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flow_core.errors import ConfigError
from flow_sceneflow.scan import Conventions, ScanPair, transform_points

__all__ = [
    "CONVENTIONS",
    "LidarSpec",
    "SceneSpec",
    "SyntheticScene",
    "generate_pair",
    "in_convention",
    "make_scene",
    "rigid",
]

CONVENTIONS = ("raw", "compensated", "ground-removed", "av2")

DYNAMIC_THRESHOLD = 0.05


@dataclass(frozen=True)
class LidarSpec:
    """A spinning LiDAR: ``beams`` rings between the elevations (degrees), ``azimuths`` columns."""

    beams: int = 32
    azimuths: int = 1024
    elevation_min: float = -25.0
    elevation_max: float = 5.0
    height: float = 1.8
    max_range: float = 50.0
    noise: float = 0.01

    def __post_init__(self) -> None:
        if self.beams < 2 or self.azimuths < 8:
            raise ConfigError(f"lidar needs beams >= 2 and azimuths >= 8, got {self}")
        if not self.elevation_min < self.elevation_max:
            raise ConfigError("lidar elevation_min must be below elevation_max")
        if self.max_range <= 0 or self.noise < 0 or self.height <= 0:
            raise ConfigError("lidar max_range and height must be > 0 and noise >= 0")


@dataclass(frozen=True)
class SceneSpec:
    """How a random scene is drawn.

    ``objects`` boxes and cars within ``area`` m of the sensor, a fraction ``moving`` of them in
    motion at up to ``max_speed`` m and ``max_yaw`` degrees per frame; ``structures`` static
    buildings; the ego moves ``ego_speed`` m and turns up to ``ego_yaw`` degrees per frame.
    """

    objects: int = 10
    structures: int = 4
    area: float = 25.0
    moving: float = 0.6
    max_speed: float = 1.5
    max_yaw: float = 6.0
    ego_speed: float = 1.0
    ego_yaw: float = 3.0

    def __post_init__(self) -> None:
        if self.objects < 0 or self.structures < 0:
            raise ConfigError("scene objects and structures must be >= 0")
        if not 0.0 <= self.moving <= 1.0:
            raise ConfigError(f"scene moving must be in [0, 1], got {self.moving}")
        if self.area < 6.0:
            raise ConfigError(f"scene area must be >= 6 m, got {self.area}")


def rigid(yaw: float = 0.0, translation: Any = (0.0, 0.0, 0.0), center: Any = None) -> np.ndarray:
    """A 4×4 transform: rotate by ``yaw`` (radians) about z through ``center``, then translate."""
    c, s = np.cos(yaw), np.sin(yaw)
    transform = np.eye(4)
    transform[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    pivot = np.zeros(3) if center is None else np.asarray(center, dtype=np.float64)
    transform[:3, 3] = pivot - transform[:3, :3] @ pivot + np.asarray(translation, np.float64)
    return transform


@dataclass
class SyntheticScene:
    """Meshes at the time of scan 1 (index 0 is the ground), their motions and the ego poses."""

    meshes: list[Any]
    motions: list[np.ndarray]
    pose1: np.ndarray
    pose2: np.ndarray
    kinds: list[str] = field(default_factory=list)

    def meshes_at(self, time: int) -> list[Any]:
        """The legacy open3d meshes at scan ``time`` (1 or 2)."""
        import copy

        if time == 1:
            return self.meshes
        return [
            copy.deepcopy(m).transform(t) for m, t in zip(self.meshes, self.motions, strict=True)
        ]


def _box(size: tuple[float, float, float], offset: tuple[float, float, float]) -> Any:
    import open3d as o3d

    mesh = o3d.geometry.TriangleMesh.create_box(*size)
    return mesh.translate(np.asarray(offset) - np.array([size[0] / 2, size[1] / 2, 0.0]))


def _car(length: float, width: float) -> Any:
    """A car-like mesh centred at the origin, on the ground: body, cabin and four wheels."""
    import open3d as o3d

    mesh = _box((length, width, 0.8), (0.0, 0.0, 0.35))
    mesh += _box((0.55 * length, 0.9 * width, 0.6), (-0.1 * length, 0.0, 1.15))
    for sx in (-0.32, 0.32):
        for sy in (-0.5, 0.5):
            wheel = o3d.geometry.TriangleMesh.create_cylinder(radius=0.35, height=0.25)
            wheel.rotate(
                wheel.get_rotation_matrix_from_xyz((np.pi / 2, 0.0, 0.0)), center=(0, 0, 0)
            )
            mesh += wheel.translate((sx * length, sy * width, 0.35))
    return mesh


def make_scene(seed: int, spec: SceneSpec | None = None, height: float = 1.8) -> SyntheticScene:
    """Draw a scene from ``seed``: positions, sizes, motions and the ego-motion."""
    import open3d as o3d

    spec = spec or SceneSpec()
    rng = np.random.default_rng(seed)
    ground = o3d.geometry.TriangleMesh()
    ground.vertices = o3d.utility.Vector3dVector(
        np.array([[-120, -120, 0], [120, -120, 0], [120, 120, 0], [-120, 120, 0]], float)
    )
    ground.triangles = o3d.utility.Vector3iVector(np.array([[0, 1, 2], [0, 2, 3]]))
    meshes: list[Any] = [ground]
    motions = [np.eye(4)]
    kinds = ["ground"]
    centers: list[np.ndarray] = [np.zeros(2), np.array([spec.ego_speed, 0.0])]
    total = spec.objects + spec.structures
    for index in range(total):
        structure = index >= spec.objects
        radius_range = (spec.area * 0.8, spec.area * 1.4) if structure else (4.0, spec.area)
        for _ in range(200):
            radius = rng.uniform(*radius_range)
            angle = rng.uniform(0, 2 * np.pi)
            center = radius * np.array([np.cos(angle), np.sin(angle)])
            clearance = 9.0 if structure else 6.0
            if all(np.linalg.norm(center - c) > clearance for c in centers):
                break
        centers.append(center)
        heading = rng.uniform(0, 2 * np.pi)
        if structure:
            mesh = _box((rng.uniform(4, 10), rng.uniform(4, 10), rng.uniform(3, 8)), (0, 0, 0))
            kind = "structure"
        elif rng.random() < 0.6:
            mesh = _car(rng.uniform(3.8, 5.0), rng.uniform(1.7, 2.0))
            kind = "car"
        else:
            size = (rng.uniform(0.6, 3.0), rng.uniform(0.6, 2.5), rng.uniform(0.8, 2.5))
            mesh = _box(size, (0, 0, 0))
            kind = "box"
        placed = rigid(heading, (center[0], center[1], 0.0))
        mesh.transform(placed)
        motion = np.eye(4)
        if not structure and rng.random() < spec.moving:
            speed = rng.uniform(0.3, spec.max_speed)
            yaw = np.deg2rad(rng.uniform(-spec.max_yaw, spec.max_yaw))
            step = speed * np.array([np.cos(heading), np.sin(heading), 0.0])
            motion = rigid(yaw, step, center=(center[0], center[1], 0.0))
            kind += "-moving"
        meshes.append(mesh)
        motions.append(motion)
        kinds.append(kind)
    pose1 = rigid(0.0, (0.0, 0.0, height))
    ego_yaw = np.deg2rad(rng.uniform(-spec.ego_yaw, spec.ego_yaw))
    pose2 = rigid(ego_yaw, (spec.ego_speed, 0.0, 0.0)) @ pose1
    return SyntheticScene(meshes, motions, pose1, pose2, kinds)


def _ray_directions(lidar: LidarSpec, phase: float) -> np.ndarray:
    elevation = np.deg2rad(np.linspace(lidar.elevation_min, lidar.elevation_max, lidar.beams))
    azimuth = phase + np.linspace(0.0, 2 * np.pi, lidar.azimuths, endpoint=False)
    el, az = np.meshgrid(elevation, azimuth, indexing="ij")
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1).reshape(
        -1, 3
    )


def cast_scan(
    meshes: list[Any], pose: np.ndarray, lidar: LidarSpec, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Cast one spinning-LiDAR scan at sensor ``pose``; world-frame hits and their mesh index."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    index_of: dict[int, int] = {}
    for index, mesh in enumerate(meshes):
        gid = scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
        index_of[int(gid)] = index
    directions = _ray_directions(lidar, rng.uniform(0, 2 * np.pi / lidar.azimuths))
    directions = directions @ pose[:3, :3].T
    origin = np.broadcast_to(pose[:3, 3], directions.shape)
    rays = o3d.core.Tensor.from_numpy(
        np.ascontiguousarray(np.concatenate([origin, directions], 1), dtype=np.float32)
    )
    hits = scene.cast_rays(rays)
    distance = hits["t_hit"].numpy().astype(np.float64)
    ids = hits["geometry_ids"].numpy().astype(np.int64)
    keep = np.isfinite(distance) & (distance < lidar.max_range)
    distance = distance[keep] + rng.normal(0.0, lidar.noise, int(keep.sum()))
    points = pose[:3, 3] + distance[:, None] * directions[keep]
    labels = np.array([index_of[int(i)] for i in ids[keep]], dtype=np.int64)
    return points, labels


def generate_pair(
    seed: int, scene_spec: SceneSpec | None = None, lidar: LidarSpec | None = None
) -> ScanPair:
    """A seeded pair of scans of a random scene with exact ground-truth flow."""
    lidar = lidar or LidarSpec()
    scene = make_scene(seed, scene_spec, lidar.height)
    rng = np.random.default_rng([seed, 1])
    world1, labels1 = cast_scan(scene.meshes_at(1), scene.pose1, lidar, rng)
    world2, labels2 = cast_scan(scene.meshes_at(2), scene.pose2, lidar, rng)
    motions = np.stack(scene.motions)[labels1]
    moved = np.einsum("nij,nj->ni", motions[:, :3, :3], world1) + motions[:, :3, 3]
    pc1 = transform_points(np.linalg.inv(scene.pose1), world1)
    pc2 = transform_points(np.linalg.inv(scene.pose2), world2)
    flow = transform_points(np.linalg.inv(scene.pose2), moved) - pc1
    dynamic = np.linalg.norm(moved - world1, axis=1) > DYNAMIC_THRESHOLD
    return ScanPair(
        pc1,
        pc2,
        flow,
        scene.pose1,
        scene.pose2,
        labels1,
        dynamic,
        name=f"synthetic-{seed}",
        labels2=labels2,
    )


def in_convention(pair: ScanPair, convention: str) -> ScanPair:
    """``pair`` (a raw generated pair) as it would arrive in ``convention`` (module docstring).

    The pair records its conventions as a file of that layout would; the ground-truth flow is
    rewritten with the frames (compensated: p + f' = E (p + f), E the ego-motion) but not with
    the float16 quantisation, as in the released Argoverse 2 files.
    """
    if convention not in CONVENTIONS:
        raise ConfigError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if convention == "raw":
        return dataclasses.replace(
            pair,
            conventions=Conventions(False, False, layout="generated raw", source=_GENERATED),
        )
    if pair.flow is None or pair.labels1 is None or pair.labels2 is None:
        raise ConfigError(f"{pair.name}: in_convention needs a generated pair with labels")
    pc1, pc2, flow, pose1, pose2 = pair.pc1, pair.pc2, pair.flow, pair.pose1, pair.pose2
    keep1 = np.ones(pc1.shape[0], dtype=bool)
    keep2 = np.ones(pc2.shape[0], dtype=bool)
    compensated = convention in ("compensated", "av2")
    ground_free = convention in ("ground-removed", "av2")
    if compensated:
        ego = pair.ego
        flow = transform_points(ego, pc1 + flow) - pc1
        pc2 = transform_points(ego, pc2)
        pose1 = pose2 = None
    if ground_free:
        keep1, keep2 = pair.labels1 != 0, pair.labels2 != 0
    if convention == "av2":
        pc1 = pc1.astype(np.float16).astype(np.float64)
    conventions = Conventions(
        compensated,
        ground_free,
        convention == "av2",
        layout=f"generated {convention}",
        source=_GENERATED,
    )
    dynamic = None if pair.dynamic1 is None else pair.dynamic1[keep1]
    return ScanPair(
        pc1[keep1],
        pc2[keep2],
        flow[keep1],
        pose1,
        pose2,
        pair.labels1[keep1],
        dynamic,
        name=f"{pair.name}-{convention}",
        labels2=pair.labels2[keep2],
        conventions=conventions,
    )


_GENERATED = (("ego_compensated", "generator"), ("ground_removed", "generator"))
