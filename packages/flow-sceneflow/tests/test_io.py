import numpy as np
import pytest

from flow_sceneflow.data.io import load_pair, load_points, load_pose
from flow_sceneflow.scan import PointCloudError


@pytest.fixture
def cloud():
    return np.random.default_rng(0).normal(size=(50, 3))


def test_ply_and_pcd_round_trip(tmp_path, cloud):
    import open3d as o3d

    for suffix in ("ply", "pcd"):
        path = tmp_path / f"scan.{suffix}"
        o3d.io.write_point_cloud(
            str(path), o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud))
        )
        assert np.allclose(load_points(path), cloud, atol=1e-5)


def test_kitti_bin_and_npy(tmp_path, cloud):
    rows = np.hstack([cloud, np.ones((50, 1))]).astype(np.float32)
    rows.tofile(tmp_path / "scan.bin")
    assert np.allclose(load_points(tmp_path / "scan.bin"), cloud, atol=1e-6)
    np.save(tmp_path / "scan.npy", cloud)
    assert np.allclose(load_points(tmp_path / "scan.npy"), cloud)
    np.float32([1, 2, 3]).tofile(tmp_path / "bad.bin")
    with pytest.raises(PointCloudError, match="multiple of 4"):
        load_points(tmp_path / "bad.bin")


def test_pair_npz_with_flow_and_poses(tmp_path, cloud):
    pose2 = np.eye(4)
    pose2[0, 3] = 1.0
    np.savez(
        tmp_path / "pair.npz",
        pc1=cloud,
        pc2=cloud + 1,
        flow=np.ones((50, 3)),
        pose1=np.eye(4),
        pose2=pose2,
    )
    pair = load_pair(tmp_path / "pair.npz")
    assert pair.flow is not None and pair.flow.shape == (50, 3)
    assert np.allclose(pair.ego, pose2)


def test_separate_files_and_kitti_pose_text(tmp_path, cloud):
    np.save(tmp_path / "a.npy", cloud)
    np.save(tmp_path / "b.npy", cloud)
    np.save(tmp_path / "f.npy", np.zeros((50, 3)))
    (tmp_path / "p1.txt").write_text("1 0 0 0 0 1 0 0 0 0 1 0\n")
    (tmp_path / "p2.txt").write_text("1 0 0 2 0 1 0 0 0 0 1 0\n")
    pair = load_pair(
        tmp_path / "a.npy",
        tmp_path / "b.npy",
        tmp_path / "f.npy",
        tmp_path / "p1.txt",
        tmp_path / "p2.txt",
    )
    assert pair.ego[0, 3] == 2.0
    assert load_pose(tmp_path / "p2.txt").shape == (4, 4)


def test_trailing_nan_padding_is_dropped_and_recorded(tmp_path, cloud):
    padded = np.vstack([cloud, np.full((5, 3), np.nan)])
    flow = np.vstack([np.zeros((50, 3)), np.full((5, 3), np.nan)])
    np.savez(tmp_path / "pair.npz", pc1=padded, pc2=padded[:53], flow=flow)
    pair = load_pair(tmp_path / "pair.npz")
    assert pair.pc1.shape == (50, 3) and pair.flow is not None and pair.flow.shape == (50, 3)
    assert pair.conventions.padding == (5, 3)


def test_scattered_nan_is_an_error_unless_dropped(tmp_path, cloud):
    holed = cloud.copy()
    holed[[3, 7]] = np.nan
    np.savez(tmp_path / "pair.npz", pc1=holed, pc2=cloud)
    with pytest.raises(PointCloudError, match="2 of 50 rows contain NaN"):
        load_pair(tmp_path / "pair.npz")
    assert load_pair(tmp_path / "pair.npz", drop_nonfinite=True).pc1.shape == (48, 3)


def test_bad_files_give_clear_errors(tmp_path, cloud):
    with pytest.raises(PointCloudError, match="no such file"):
        load_points(tmp_path / "missing.ply")
    (tmp_path / "scan.xyz").write_text("0 0 0\n")
    with pytest.raises(PointCloudError, match="unsupported suffix"):
        load_points(tmp_path / "scan.xyz")
    np.save(tmp_path / "flat.npy", np.zeros((10, 2)))
    with pytest.raises(PointCloudError, match=r"\(N, 3\+\)"):
        load_points(tmp_path / "flat.npy")
    np.savez(tmp_path / "half.npz", pc1=cloud)
    with pytest.raises(PointCloudError, match="pc2"):
        load_pair(tmp_path / "half.npz")
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    with pytest.raises(PointCloudError, match="has 0 points"):
        load_pair(tmp_path / "empty.npy", tmp_path / "empty.npy")
