import numpy as np
import pytest

from flow_sceneflow.data.synthetic import rigid
from flow_sceneflow.scan import PointCloudError, ScanPair, check_points


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.zeros((0, 3)), "has 0 points"),
        (np.zeros((5, 2)), r"expected shape \(N, 3\)"),
        (np.zeros((5,)), r"expected shape \(N, 3\)"),
        (np.array([[0, 0, np.nan], [1, 1, 1]]), "1 of 2 rows contain NaN"),
        (np.array([[0, 0, np.inf]]), "NaN or inf"),
        (np.array([["a", "b", "c"]]), "numeric"),
    ],
)
def test_bad_point_clouds_give_clear_errors(value, message):
    with pytest.raises(PointCloudError, match=message):
        check_points("scan", value)


def test_pair_checks_flow_and_poses():
    points = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(PointCloudError, match="one vector per point"):
        ScanPair(points, points, flow=np.zeros((9, 3)))
    with pytest.raises(PointCloudError, match="both ego poses"):
        ScanPair(points, points, pose1=np.eye(4))
    with pytest.raises(PointCloudError, match="rigid"):
        ScanPair(points, points, pose1=np.eye(4) * 2, pose2=np.eye(4))
    with pytest.raises(PointCloudError, match="pc2"):
        ScanPair(points, np.zeros((0, 3)))


def test_ego_and_dynamic_mask_from_flow():
    points = np.random.default_rng(1).normal(size=(6, 3))
    pose1, pose2 = np.eye(4), rigid(0.1, (1.0, 0.0, 0.0))
    ego_flow = (points - pose2[:3, 3]) @ pose2[:3, :3] - points  # P2^-1 p - p
    flow = ego_flow.copy()
    flow[0] += [0.5, 0.0, 0.0]
    pair = ScanPair(points, points, flow, pose1, pose2)
    assert np.allclose(pair.ego, pose2)
    assert pair.dynamic_mask().tolist() == [True] + [False] * 5
