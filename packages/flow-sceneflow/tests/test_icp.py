import numpy as np
import torch

from flow_sceneflow.data.synthetic import rigid
from flow_sceneflow.registration.icp import batched_icp, kdtree_icp, open3d_icp
from flow_sceneflow.scan import transform_points


def _rotation_error_degrees(a, b):
    relative = a[:3, :3].T @ b[:3, :3]
    return np.degrees(np.arccos(np.clip((np.trace(relative) - 1) / 2, -1, 1)))


def _problem(box_surface, seed, yaw_deg=4.0, shift=(0.25, -0.15, 0.0), resample=False):
    """A box surface and its moved copy: the same points with 5 mm noise, or a new sampling."""
    source = box_surface(points=800, seed=seed)
    truth = rigid(np.radians(yaw_deg), shift, center=(0, 0, 0))
    moved = box_surface(points=3000, seed=seed + 100) if resample else source
    noise = np.random.default_rng(seed).normal(0, 0.005, moved.shape)
    target = transform_points(truth, moved) + noise
    return source, target, truth


def test_icp_converges_from_a_perturbed_start(box_surface):
    source, target, truth = _problem(box_surface, 0)
    # start 2 degrees and 5 cm away from the truth
    init = rigid(np.radians(2.0), (0.05, 0.0, 0.0)) @ truth
    result = batched_icp(
        torch.from_numpy(source).float()[None],
        torch.from_numpy(target).float()[None],
        torch.from_numpy(init)[None],
        inlier=0.3,
    )
    found = result.transforms[0].numpy()
    assert np.linalg.norm(found[:3, 3] - truth[:3, 3]) < 0.01
    assert _rotation_error_degrees(found, truth) < 0.2
    assert result.errors[0] < result.initial_errors[0]


def test_batched_icp_with_padding_matches_single_runs(box_surface):
    problems = [_problem(box_surface, s, yaw_deg=3.0 + s) for s in range(3)]
    sizes = [300, 550, 800]
    width = max(sizes)
    source = torch.zeros(3, width, 3)
    mask = torch.zeros(3, width, dtype=torch.bool)
    targets = torch.stack([torch.from_numpy(t).float() for _, t, _ in problems])
    for b, ((s, _, _), n) in enumerate(zip(problems, sizes, strict=True)):
        source[b, :n] = torch.from_numpy(s[:n]).float()
        mask[b, :n] = True
    inits = torch.from_numpy(np.stack([truth for _, _, truth in problems])) @ torch.from_numpy(
        rigid(np.radians(1.0), (0.04, 0.02, 0.0))
    )
    batched = batched_icp(source, targets, inits, source_mask=mask, inlier=0.3)
    for b, n in enumerate(sizes):
        single = batched_icp(
            source[b : b + 1, :n], targets[b : b + 1], inits[b : b + 1], inlier=0.3
        )
        assert torch.allclose(batched.transforms[b], single.transforms[0], atol=1e-4)


def test_our_icp_is_as_accurate_as_open3d(box_surface):
    source, target, truth = _problem(box_surface, 3, resample=True)
    init = rigid(np.radians(1.5), (0.05, -0.03, 0.0)) @ truth
    ours = (
        batched_icp(
            torch.from_numpy(source).float()[None],
            torch.from_numpy(target).float()[None],
            torch.from_numpy(init)[None],
            inlier=0.3,
        )
        .transforms[0]
        .numpy()
    )
    theirs = open3d_icp(source, target, init, inlier=0.3)
    ours_error = np.linalg.norm(ours[:3, 3] - truth[:3, 3])
    theirs_error = np.linalg.norm(theirs[:3, 3] - truth[:3, 3])
    assert ours_error <= theirs_error + 0.005
    assert _rotation_error_degrees(ours, truth) <= _rotation_error_degrees(theirs, truth) + 0.1


def test_icp_keeps_the_start_when_it_would_get_worse():
    source = torch.randn(1, 50, 3)
    target = source.clone()
    result = batched_icp(source, target, inlier=0.01)
    assert torch.allclose(result.transforms[0], torch.eye(4, dtype=torch.float64), atol=1e-6)
    assert float(result.errors[0]) <= float(result.initial_errors[0]) + 1e-9


def test_icp_backends_agree(box_surface):
    problems = [_problem(box_surface, s, yaw_deg=2.0 + s, resample=True) for s in range(4)]
    inits = [rigid(np.radians(1.0), (0.05, -0.03, 0.0)) @ truth for _, _, truth in problems]
    kdtree = kdtree_icp([p[0] for p in problems], [p[1] for p in problems], np.stack(inits), 0.3)
    for b, (source, target, truth) in enumerate(problems):
        theirs = open3d_icp(source, target, inits[b], inlier=0.3)
        torch_one = (
            batched_icp(
                torch.from_numpy(source).float()[None],
                torch.from_numpy(target).float()[None],
                torch.from_numpy(inits[b])[None],
                inlier=0.3,
            )
            .transforms[0]
            .numpy()
        )
        for found in (kdtree[b], torch_one):
            assert np.linalg.norm(found[:3, 3] - theirs[:3, 3]) < 0.01
            assert _rotation_error_degrees(found, theirs) < 0.2
        assert np.linalg.norm(kdtree[b][:3, 3] - truth[:3, 3]) < 0.05
