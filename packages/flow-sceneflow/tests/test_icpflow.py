import numpy as np
import pytest

from flow_core.errors import ConfigError
from flow_sceneflow.baselines import global_icp_flow, nearest_neighbour_flow
from flow_sceneflow.conventions import resolve_conventions
from flow_sceneflow.data.synthetic import LidarSpec, SceneSpec, generate_pair, in_convention, rigid
from flow_sceneflow.icpflow.cluster import cluster_points, merge_close_clusters
from flow_sceneflow.icpflow.ground import estimate_ground_height, ground_mask, local_ground_mask
from flow_sceneflow.icpflow.pipeline import IcpFlowParams, icp_flow
from flow_sceneflow.metrics import scene_flow_metrics
from flow_sceneflow.scan import ScanPair, transform_points


def _scene(box_surface):
    """Ground grid, a parked box and a box moving 1.2 m with 4 degrees of yaw (both 0.4 m up)."""
    rng = np.random.default_rng(0)
    xs = np.arange(-15, 15, 0.4)
    ground = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
    ground = np.hstack([ground, rng.normal(0, 0.01, (ground.shape[0], 1))])
    parked = box_surface(points=2500, seed=1) + np.array([6.0, 6.0, 0.4])
    mover = box_surface(points=2500, seed=2) + np.array([-5.0, 0.0, 0.4])
    motion = rigid(np.radians(4.0), (1.2, 0.3, 0.0), center=(-5.0, 0.0, 0.0))
    pc1 = np.vstack([ground, parked, mover])
    moved = np.vstack([ground, parked, transform_points(motion, mover)])
    flow = moved - pc1
    pc2 = moved + rng.normal(0, 0.005, moved.shape)
    dynamic = np.r_[np.zeros(len(ground) + len(parked), bool), np.ones(len(mover), bool)]
    return ScanPair(pc1, pc2, flow, dynamic1=dynamic)


def test_ground_and_clusters(box_surface):
    pair = _scene(box_surface)
    assert abs(estimate_ground_height(pair.pc1)) < 0.05
    ground = ground_mask(pair.pc1)
    assert ground[: 75 * 75].all()
    labels = cluster_points(pair.pc1[~ground], min_cluster_size=20, epsilon=0.25)
    assert len(set(labels.tolist()) - {-1}) == 2


@pytest.mark.parametrize(
    ("clustering", "icp"), [("hdbscan", "torch"), ("dbscan", "open3d"), ("hdbscan", "kdtree")]
)
def test_icp_flow_recovers_a_moving_box(box_surface, clustering, icp):
    pair = _scene(box_surface)
    params = IcpFlowParams(clustering=clustering, cluster_epsilon=0.4, icp_backend=icp)
    result = icp_flow(pair, params)
    ours = scene_flow_metrics(result.flow, pair.flow, pair.dynamic1)
    nn = scene_flow_metrics(nearest_neighbour_flow(pair), pair.flow, pair.dynamic1)
    assert ours["dynamic_epe3d"] < 0.05
    assert ours["dynamic_epe3d"] < nn["dynamic_epe3d"] / 5
    assert ours["static_epe3d"] < 0.01
    assert len(result.matches) == 2  # the parked and the moving box


def test_global_icp_cannot_follow_two_motions(box_surface):
    pair = _scene(box_surface)
    flow = global_icp_flow(pair)
    assert scene_flow_metrics(flow, pair.flow, pair.dynamic1)["dynamic_epe3d"] > 0.3


def test_bad_params_are_refused():
    with pytest.raises(ConfigError, match="clustering"):
        IcpFlowParams(clustering="kmeans")
    with pytest.raises(ConfigError, match="icp_backend"):
        IcpFlowParams(icp_backend="cuda")
    with pytest.raises(ConfigError, match="translation_frame"):
        IcpFlowParams(translation_frame=0)


def _four_blobs(gap: float) -> np.ndarray:
    """Two pairs of blobs: ``gap`` apart within a pair, 5 m between the pairs."""
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0, 0], [gap, 0, 0], [5, 0, 0], [5 + gap, 0, 0]], dtype=float)
    return np.concatenate([rng.normal(c, 0.05, size=(40, 3)) for c in centers])


def test_hdbscan_epsilon_on_a_cloud_that_breaks_scikit_learn():
    # scikit-learn 1.9 with NumPy 2 raises "only 0-dimensional arrays can be converted to
    # Python scalars" on this cloud when cluster_selection_epsilon is set
    labels = cluster_points(_four_blobs(0.6), min_cluster_size=20, epsilon=1.0)
    assert sorted(np.unique(labels, return_counts=True)[1].tolist()) == [80, 80]
    assert len(set(labels[:80])) == 1 and len(set(labels[80:])) == 1
    # a gap wider than epsilon keeps the four blobs apart
    far = cluster_points(_four_blobs(1.0), min_cluster_size=20, epsilon=0.5)
    assert len(set(far.tolist()) - {-1}) == 4


def test_merge_close_clusters_unites_chains_and_keeps_noise():
    points = np.array([[0.0, 0, 0], [0.5, 0, 0], [1.0, 0, 0], [9.0, 0, 0], [0.2, 0, 0]])
    labels = np.array([2, 0, 1, 3, -1])
    merged = merge_close_clusters(points, labels, epsilon=0.6)
    assert merged.tolist() == [0, 0, 0, 3, -1]
    assert merge_close_clusters(points, labels, epsilon=0.0).tolist() == labels.tolist()


def test_static_compensated_scene_gives_near_zero_flow():
    scene = SceneSpec(objects=8, moving=0.0)
    pair = in_convention(generate_pair(5, scene, LidarSpec(beams=24, azimuths=512)), "compensated")
    conventions, ego = resolve_conventions(pair)
    assert conventions.ego_compensated
    result = icp_flow(pair, IcpFlowParams(ground="local"), ego)
    drift = np.linalg.norm(result.flow, axis=1)
    assert drift.mean() < 0.002  # zero flow scores 0 here
    assert np.mean(drift > 0.02) < 0.01
    assert len(result.matches) >= 3  # clusters were matched, and kept still


def test_a_low_moving_object_survives_ground_removal(box_surface):
    # a 2-degree slope: one global height cuts uphill objects and leaves downhill ground
    rng = np.random.default_rng(1)
    xs = np.arange(-15, 15, 0.3)
    ground = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
    slope = np.tan(np.radians(2.0))
    ground = np.c_[ground, slope * ground[:, 0] + rng.normal(0, 0.01, len(ground))]
    low = box_surface(size=(1.2, 0.8, 0.5), points=600, seed=3) + np.array([10.0, -3.0, 0.0])
    low[:, 2] += slope * 10.0
    cloud = np.vstack([ground, low])
    local = local_ground_mask(cloud)
    kept = ~local[len(ground) :]
    assert kept.mean() > 0.55
    assert local[: len(ground)].mean() > 0.98
    # one global height (the reference's, 0.3 m slack) either cuts the object or, as here,
    # leaves the uphill ground standing, which then clusters into spurious objects
    height = ground_mask(cloud, "height")
    assert height[: len(ground)].mean() < 0.9 or (~height[len(ground) :]).mean() < 0.4
