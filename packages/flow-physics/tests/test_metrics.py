import numpy as np
import pytest

from flow_physics.metrics import hellinger_1d, hellinger_noise_floor


def test_hellinger_of_disjoint_samples_is_one_and_of_one_sample_zero():
    a = np.linspace(0, 1, 500)
    assert hellinger_1d(a, a + 5.0) == pytest.approx(1.0)
    assert hellinger_1d(a, a) == pytest.approx(0.0, abs=1e-12)


def test_hellinger_of_shifted_gaussians_matches_the_formula():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 200_000), rng.normal(1, 1, 200_000)
    exact = np.sqrt(1 - np.exp(-1 / 8))  # H^2 = 1 - exp(-d^2 / 8) for unit variances
    assert hellinger_1d(a, b, bins=60) == pytest.approx(exact, abs=0.01)


def test_noise_floor_matches_two_samples_of_one_distribution():
    rng = np.random.default_rng(1)
    values = [hellinger_1d(rng.normal(size=2000), rng.normal(size=2000)) for _ in range(40)]
    assert np.mean(values) == pytest.approx(hellinger_noise_floor(2000, 2000), rel=0.25)
