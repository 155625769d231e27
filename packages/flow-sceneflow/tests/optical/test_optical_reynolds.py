import numpy as np
import pytest

from flow_core.errors import ConfigError
from flow_sceneflow.baselines import ilk
from flow_sceneflow.data.optical import warp_pair
from flow_sceneflow.metrics import endpoint_error
from flow_sceneflow.optical.poisson import (
    divergence_of_weighted_gradient,
    solve_weighted_poisson,
)
from flow_sceneflow.optical.reynolds import continuity_residual, reynolds_flow
from flow_sceneflow.optical.validation import OpticalInputError


def _smooth_fields(shape=(40, 56)):
    rows, cols = np.mgrid[: shape[0], : shape[1]] / 10.0
    phi = np.sin(rows) * np.cos(0.7 * cols) + 0.3 * rows
    weight = 0.5 + 0.4 * np.cos(rows + cols) ** 2
    return phi - phi.mean(), weight


@pytest.mark.parametrize("screening", [None, 4.0])
def test_poisson_recovers_a_manufactured_solution(screening):
    phi, weight = _smooth_fields()
    mass = 0.0 if screening is None else 1.0 / screening**2
    source = -(divergence_of_weighted_gradient(phi, weight) - mass * weight * phi)
    result = solve_weighted_poisson(source, weight, screening, rtol=1e-10, max_iter=1000)
    assert result.relative_residual < 1e-8
    np.testing.assert_allclose(result.phi, phi, atol=1e-6)


def test_poisson_operator_conserves_the_total_and_refuses_bad_weights():
    phi, weight = _smooth_fields()
    assert abs(divergence_of_weighted_gradient(phi, weight).sum()) < 1e-10  # zero-flux border
    with pytest.raises(OpticalInputError, match="weight"):
        solve_weighted_poisson(phi, np.zeros_like(phi))
    with pytest.raises(OpticalInputError, match="one shape"):
        solve_weighted_poisson(phi, weight[:-1])
    with pytest.raises(OpticalInputError, match="screening_length"):
        solve_weighted_poisson(phi, weight, screening_length=0.0)


def test_reynolds_flow_recovers_a_known_affine_warp():
    pair = warp_pair("camera", "affine", size=96, magnitude=4.0, seed=1)
    result = reynolds_flow(pair.image0, pair.image1)
    assert result.flow.shape == (96, 96, 2)
    np.testing.assert_allclose(result.flow, result.conventional + result.reynolds)
    # Stated accuracy on this known warp: mean end-point error below 0.5 px (largest motion 4 px).
    assert endpoint_error(result.flow, pair.truth) < 0.5
    assert result.poisson_relative_residual < 1e-5


def test_reynolds_part_is_small_under_brightness_constancy_and_grows_with_lighting():
    plain = warp_pair("astronaut", "affine", size=96, magnitude=4.0)
    lit = warp_pair("astronaut", "lighting", size=96, magnitude=4.0)
    parts = [
        np.linalg.norm(reynolds_flow(p.image0, p.image1).reynolds, axis=2).mean()
        for p in (plain, lit)
    ]
    assert parts[0] < 0.2
    assert parts[1] > 2 * parts[0]


def test_residual_vanishes_for_an_exact_flow_of_constant_intensity():
    image = np.full((20, 24), 0.6)
    residual, density = continuity_residual(image, image, np.zeros((20, 24, 2)), floor=0.05)
    assert np.all(residual == 0.0) and np.all(density == 0.6)


def test_unscreened_solve_reaches_further_than_screened():
    pair = warp_pair("camera", "lighting", size=64, magnitude=3.0)
    conventional = ilk(pair.image0, pair.image1)
    far = reynolds_flow(pair.image0, pair.image1, screening_length=None, conventional=conventional)
    near = reynolds_flow(pair.image0, pair.image1, screening_length=2.0, conventional=conventional)
    assert np.abs(far.reynolds).max() > np.abs(near.reynolds).max()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"base": "raft"}, ConfigError, "unknown base"),
        ({"floor": 0.0}, ConfigError, "floor"),
        ({"screening_length": -1.0}, ConfigError, "screening_length"),
        ({"rtol": 2.0}, ConfigError, "rtol"),
        ({"max_iter": 0}, ConfigError, "max_iter"),
    ],
)
def test_bad_settings_are_refused(kwargs, error, match):
    image = np.zeros((16, 16))
    with pytest.raises(error, match=match):
        reynolds_flow(image, image, **kwargs)


def test_bad_frames_are_refused():
    with pytest.raises(OpticalInputError, match="same size"):
        reynolds_flow(np.zeros((16, 16)), np.zeros((16, 20)))
    with pytest.raises(OpticalInputError, match="non-finite"):
        reynolds_flow(np.full((16, 16), np.nan), np.zeros((16, 16)))
    with pytest.raises(OpticalInputError, match="empty"):
        reynolds_flow(np.zeros((0, 16)), np.zeros((0, 16)))
