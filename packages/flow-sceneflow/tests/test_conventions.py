"""Readers for the real layouts, convention detection and the synthetic conventions."""

import numpy as np
import pytest

from flow_sceneflow.conventions import has_ground, is_float16, resolve_conventions
from flow_sceneflow.data.io import load_pair
from flow_sceneflow.data.synthetic import generate_pair, in_convention, rigid
from flow_sceneflow.scan import PointCloudError, ScanPair, transform_points


@pytest.fixture(scope="module")
def raw():
    return generate_pair(3)


def _scene(rng, ground=True):
    """A ground grid (optional) and four walls around the sensor, 1 cm noise."""
    xs = np.arange(-20, 20, 0.5)
    parts = []
    if ground:
        grid = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
        parts.append(np.c_[grid, np.full(len(grid), -1.8)])
    heights = np.arange(-1.8, 2.0, 0.25)
    for fixed, axis in ((15.0, 0), (-15.0, 0), (12.0, 1), (-12.0, 1)):
        line = np.stack(np.meshgrid(xs, heights), -1).reshape(-1, 2)
        wall = np.insert(line, axis, fixed, axis=1)
        parts.append(wall)
    cloud = np.concatenate(parts)
    return cloud + rng.normal(0, 0.01, cloud.shape)


def test_ground_detection(rng):
    assert has_ground(_scene(rng, ground=True))
    assert not has_ground(_scene(rng, ground=False))


def test_float16_detection(rng):
    points = rng.uniform(-40, 40, (100, 3))
    assert not is_float16(points)
    assert is_float16(points.astype(np.float16).astype(np.float64))


def test_compensation_is_detected_and_ego_estimated(rng):
    cloud = _scene(rng, ground=False)
    ego = rigid(np.radians(2.0), (0.8, 0.1, 0.0))
    moved = transform_points(np.linalg.inv(ego), cloud)
    conventions, estimate = resolve_conventions(ScanPair(cloud, moved))
    assert conventions.ego_compensated is False and conventions.ground_removed is True
    assert np.allclose(estimate, ego, atol=0.02)
    still, identity = resolve_conventions(ScanPair(cloud, cloud + rng.normal(0, 0.01, cloud.shape)))
    assert still.ego_compensated is True and np.allclose(identity, np.eye(4))
    given, _ = resolve_conventions(ScanPair(cloud, moved), "yes", "no")
    assert (given.ego_compensated, given.ground_removed) == (True, False)
    assert "given" in given.describe()


def test_synthetic_conventions(raw):
    compensated = in_convention(raw, "compensated")
    static = ~compensated.dynamic_mask()
    assert np.abs(compensated.flow[static]).max() < 1e-6  # static points do not move
    assert compensated.pose1 is None
    ground_free = in_convention(raw, "ground-removed")
    assert (ground_free.labels1 != 0).all() and ground_free.pc1.shape[0] < raw.pc1.shape[0]
    av2 = in_convention(raw, "av2")
    assert is_float16(av2.pc1) and av2.conventions.float16
    assert av2.conventions.ego_compensated and av2.conventions.ground_removed
    detected, _ = resolve_conventions(
        ScanPair(ground_free.pc1, ground_free.pc2, pose1=raw.pose1, pose2=raw.pose2)
    )
    assert detected.ground_removed is True and detected.ego_compensated is False
    assert not has_ground(av2.pc1) and has_ground(raw.pc1)


def test_av2_layout(tmp_path, raw):
    av2 = in_convention(raw, "av2")
    n1, n2 = av2.pc1.shape[0], av2.pc2.shape[0]
    pad = np.full((7, 3), np.nan)
    valid1 = np.ones(n1 + 7, dtype=bool)
    valid1[[0, 5]] = False
    valid1[n1:] = False
    np.savez(
        tmp_path / "av2.npz",
        pc1=np.vstack([av2.pc1, pad]).astype(np.float32),
        pc2=np.vstack([av2.pc2, pad]).astype(np.float32),
        gt_flow_0_1=np.vstack([av2.flow, pad]).astype(np.float32),
        pc1_flows_valid_idx=valid1,
        pc2_flows_valid_idx=np.flatnonzero(np.r_[np.ones(n2, bool), np.zeros(7, bool)]),
        pc1_classes=np.zeros(n1 + 7, np.int64),
        pc2_classes=np.zeros(n2 + 7, np.int64),
    )
    pair = load_pair(tmp_path / "av2.npz")
    assert pair.pc1.shape == (n1 - 2, 3) and pair.pc2.shape == (n2, 3)
    assert np.allclose(pair.flow, av2.flow[valid1[:n1]], atol=1e-5)
    assert pair.conventions.ego_compensated and pair.conventions.ground_removed
    assert "av2" in pair.conventions.layout
    bad = dict(np.load(tmp_path / "av2.npz"))
    bad["pc1_flows_valid_idx"] = np.array([0, n1 + 100])
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(PointCloudError, match="pc1_flows_valid_idx.*outside"):
        load_pair(tmp_path / "bad.npz")


def test_kitti_layouts_turn_y_up_to_z_up(tmp_path, rng):
    pc1 = rng.uniform(-10, 10, (60, 3))
    flow = rng.normal(0, 0.3, (60, 3))
    np.savez(tmp_path / "kitti.npz", pos1=pc1, pos2=pc1 + flow, gt=flow)
    pair = load_pair(tmp_path / "kitti.npz")
    assert np.allclose(pair.pc1[:, 2], pc1[:, 1])  # y up becomes z up
    assert np.allclose(pair.flow, flow[:, [2, 0, 1]])
    assert pair.conventions.ego_compensated is False
    scene = tmp_path / "000001"
    scene.mkdir()
    np.save(scene / "pc1.npy", pc1)
    np.save(scene / "pc2.npy", pc1 + flow)
    hpl = load_pair(scene)
    assert np.allclose(hpl.flow, flow[:, [2, 0, 1]]) and "HPLFlowNet" in hpl.conventions.layout
    (tmp_path / "empty").mkdir()
    with pytest.raises(PointCloudError, match="pc1.npy and pc2.npy"):
        load_pair(tmp_path / "empty")
    np.savez(tmp_path / "other.npz", xyz=pc1)
    with pytest.raises(PointCloudError, match="not a known pair layout"):
        load_pair(tmp_path / "other.npz")


def test_ply_pair_with_pose_files(tmp_path, rng):
    import open3d as o3d

    cloud = _scene(rng, ground=False)[::5]
    for name in ("a.ply", "b.pcd"):
        o3d.io.write_point_cloud(
            str(tmp_path / name), o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud))
        )
    pose2 = rigid(0.1, (1.0, 0.0, 0.0))
    np.savetxt(tmp_path / "p1.txt", np.eye(4))
    np.savetxt(tmp_path / "p2.txt", pose2[:3].reshape(1, 12))
    pair = load_pair(
        tmp_path / "a.ply", tmp_path / "b.pcd", None, tmp_path / "p1.txt", tmp_path / "p2.txt"
    )
    conventions, ego = resolve_conventions(pair)
    assert conventions.ego_compensated is False and np.allclose(ego, pose2)
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    with pytest.raises(PointCloudError, match="12 .* or 16"):
        load_pair(
            tmp_path / "a.ply", tmp_path / "b.pcd", None, tmp_path / "p1.txt", tmp_path / "bad.txt"
        )
