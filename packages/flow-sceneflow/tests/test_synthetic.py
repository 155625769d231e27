import numpy as np
import pytest

from flow_core.errors import ConfigError
from flow_sceneflow.data.synthetic import LidarSpec, SceneSpec, generate_pair, make_scene
from flow_sceneflow.scan import transform_points

LIDAR = LidarSpec(beams=16, azimuths=512)


def test_same_seed_same_pair_and_different_seed_different_pair():
    a, b = generate_pair(3, lidar=LIDAR), generate_pair(3, lidar=LIDAR)
    assert np.array_equal(a.pc1, b.pc1) and np.array_equal(a.flow, b.flow)
    c = generate_pair(4, lidar=LIDAR)
    assert a.pc1.shape != c.pc1.shape or not np.allclose(a.pc1, c.pc1)


def test_ground_truth_is_consistent_with_the_object_transforms():
    import open3d as o3d

    seed = 5
    pair = generate_pair(seed, lidar=LIDAR)
    scene = make_scene(seed, height=LIDAR.height)
    world1 = transform_points(scene.pose1, pair.pc1)
    world_moved = transform_points(scene.pose2, pair.pc1 + pair.flow)
    for k in np.unique(pair.labels1):
        members = pair.labels1 == k
        expected = transform_points(scene.motions[k], world1[members])
        assert np.allclose(world_moved[members], expected, atol=1e-6)
    # the moved points lie on the surfaces at time 2 (up to the 1 cm range noise)
    raycast = o3d.t.geometry.RaycastingScene()
    for mesh in scene.meshes_at(2):
        raycast.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    distance = raycast.compute_distance(o3d.core.Tensor(world_moved.astype(np.float32))).numpy()
    assert np.quantile(distance, 0.99) < 0.04


def test_dynamic_points_are_exactly_the_moving_objects():
    seed = 2
    pair = generate_pair(seed, lidar=LIDAR)
    scene = make_scene(seed, height=LIDAR.height)
    moving = np.array(["moving" in kind for kind in scene.kinds])
    assert moving.any()
    on_moving = moving[pair.labels1]
    assert not pair.dynamic1[~on_moving].any()
    assert pair.dynamic1[on_moving].mean() > 0.9
    # static points move by the ego-motion only
    ego_flow = transform_points(np.linalg.inv(pair.ego), pair.pc1) - pair.pc1
    assert np.allclose(pair.flow[~on_moving], ego_flow[~on_moving], atol=1e-6)


def test_bad_generator_settings_are_refused():
    with pytest.raises(ConfigError, match="moving"):
        SceneSpec(moving=1.5)
    with pytest.raises(ConfigError, match="beams"):
        LidarSpec(beams=1)
