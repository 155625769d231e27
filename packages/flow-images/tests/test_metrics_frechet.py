import numpy as np
import pytest
import torch
from scipy import linalg

from flow_core.errors import FlowError
from flow_images.metrics import frechet_distance


def _with_moments(n, mean, cov, seed):
    """n points whose sample mean and (unbiased) covariance are exactly mean and cov."""
    z = np.random.default_rng(seed).standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return torch.from_numpy(z @ np.linalg.cholesky(cov).T + mean)


def test_fd_of_a_set_with_itself_is_zero():
    a = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_fd_of_one_dimensional_gaussians_matches_closed_form():
    gen = torch.Generator().manual_seed(1)
    a = 2.0 + 0.5 * torch.randn(400, 1, generator=gen, dtype=torch.float64)
    b = -1.0 + 3.0 * torch.randn(300, 1, generator=gen, dtype=torch.float64)
    expected = (a.mean() - b.mean()) ** 2 + (a.std() - b.std()) ** 2
    assert frechet_distance(a, b) == pytest.approx(float(expected), rel=1e-10)


def test_fd_of_known_diagonal_covariances():
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    a = _with_moments(200, mean_a, np.diag(var_a), 0)
    b = _with_moments(300, mean_b, np.diag(var_b), 1)
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_fd_of_general_covariances_matches_the_sqrtm_formula():
    rng = np.random.default_rng(3)
    m_a, m_b = rng.standard_normal((2, 5, 5))
    cov_a, cov_b = m_a @ m_a.T + 0.1 * np.eye(5), m_b @ m_b.T + 0.1 * np.eye(5)
    mean_a, mean_b = rng.standard_normal((2, 5))
    a = _with_moments(100, mean_a, cov_a, 4)
    b = _with_moments(120, mean_b, cov_b, 5)
    root = linalg.sqrtm(cov_a @ cov_b).real
    expected = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


def test_fd_translation():
    a = torch.randn(300, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    assert frechet_distance(a, a + shift) == pytest.approx(5.25, rel=1e-10)
    b = torch.randn(200, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert frechet_distance(a + shift, b + shift) == pytest.approx(frechet_distance(a, b), rel=1e-9)


def test_fd_handles_rank_deficient_covariances():
    # fewer points than dimensions: singular covariances, still finite and >= 0, self -> 0
    gen = torch.Generator().manual_seed(4)
    a, b = torch.randn(10, 64, generator=gen), torch.randn(10, 64, generator=gen)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, b) > 0


def test_fd_input_errors():
    a = torch.randn(10, 3)
    with pytest.raises(FlowError, match=r"\(n, D\) and \(m, D\)"):
        frechet_distance(a, torch.randn(10, 4))
    with pytest.raises(FlowError, match="at least 2 rows"):
        frechet_distance(a, torch.randn(1, 3))
    bad = a.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(FlowError, match="NaN"):
        frechet_distance(a, bad)
