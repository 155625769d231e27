import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from flow_sceneflow.registration.kabsch import kabsch
from flow_sceneflow.scan import PointCloudError


def _transform(seed):
    r = Rotation.random(random_state=seed).as_matrix()
    t = np.random.default_rng(seed).normal(0, 3, 3)
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, t
    return m


def test_recovers_known_transforms_batched():
    rng = np.random.default_rng(0)
    source = rng.normal(0, 2, (4, 100, 3))
    truth = np.stack([_transform(s) for s in range(4)])
    target = np.einsum("bij,bnj->bni", truth[:, :3, :3], source) + truth[:, None, :3, 3]
    found = kabsch(torch.from_numpy(source), torch.from_numpy(target)).numpy()
    assert np.abs(found - truth).max() < 1e-5


def test_zero_weights_ignore_outliers():
    rng = np.random.default_rng(1)
    source = rng.normal(0, 1, (60, 3))
    truth = _transform(7)
    target = source @ truth[:3, :3].T + truth[:3, 3]
    target[:10] += rng.normal(0, 5, (10, 3))
    weights = torch.ones(60)
    weights[:10] = 0
    found = kabsch(torch.from_numpy(source), torch.from_numpy(target), weights).numpy()
    assert np.abs(found - truth).max() < 1e-5
    unweighted = kabsch(torch.from_numpy(source), torch.from_numpy(target)).numpy()
    assert np.abs(unweighted - truth).max() > 1e-2


def test_never_returns_a_reflection():
    rng = np.random.default_rng(2)
    source = rng.normal(0, 1, (50, 3))
    mirrored = source * np.array([1.0, 1.0, -1.0])
    found = kabsch(torch.from_numpy(source), torch.from_numpy(mirrored)).numpy()
    assert np.linalg.det(found[:3, :3]) == pytest.approx(1.0, abs=1e-9)


def test_all_zero_weights_give_identity():
    source = torch.randn(1, 5, 3)
    found = kabsch(source, source + 1, torch.zeros(1, 5))
    assert torch.equal(found[0], torch.eye(4, dtype=torch.float64))


def test_mismatched_shapes_are_refused():
    with pytest.raises(PointCloudError, match="kabsch"):
        kabsch(torch.zeros(5, 3), torch.zeros(4, 3))
