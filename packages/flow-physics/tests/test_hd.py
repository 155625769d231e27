import math

import numpy as np
import pytest
import torch

from flow_physics.pta.hd import hd_matrix, hellings_downs, unit_vectors


def hd_at(degrees: float) -> float:
    return hellings_downs(torch.tensor(math.cos(math.radians(degrees)), dtype=torch.float64)).item()


def closed_form(degrees: float) -> float:
    x = (1 - math.cos(math.radians(degrees))) / 2
    return 0.5 - x / 4 + 1.5 * x * math.log(x)


def test_known_values():
    assert hd_at(0.0) == pytest.approx(0.5, abs=1e-15)
    assert hd_at(90.0) == pytest.approx(3 / 8 - 0.75 * math.log(2), rel=1e-12)
    assert hd_at(90.0) == pytest.approx(-0.1449, abs=1e-4)
    assert hd_at(180.0) == pytest.approx(0.25, rel=1e-12)
    assert abs(hd_at(49.2)) < 2e-3
    assert hd_at(45.0) > 0 > hd_at(55.0)


@pytest.mark.parametrize("degrees", [1.0, 20.0, 49.2, 82.0, 90.0, 120.0, 179.0])
def test_matches_closed_form(degrees):
    assert hd_at(degrees) == pytest.approx(closed_form(degrees), rel=1e-12, abs=1e-15)


def test_minimum_near_82_degrees():
    angles = torch.linspace(1.0, 179.0, 1781, dtype=torch.float64)
    values = hellings_downs(torch.cos(torch.deg2rad(angles)))
    assert angles[values.argmin()].item() == pytest.approx(82.5, abs=0.5)


def test_matrix_has_one_on_the_diagonal_and_is_positive_definite():
    gen = torch.Generator().manual_seed(0)
    ra = torch.rand(12, generator=gen, dtype=torch.float64) * 2 * math.pi
    dec = torch.asin(torch.rand(12, generator=gen, dtype=torch.float64) * 2 - 1)
    positions = unit_vectors(ra, dec)
    np.testing.assert_allclose(positions.norm(dim=1).numpy(), np.ones(12), rtol=1e-12)
    gamma = hd_matrix(positions)
    np.testing.assert_array_equal(gamma.diagonal().numpy(), np.ones(12))
    np.testing.assert_array_equal(gamma.numpy(), gamma.T.numpy())
    assert torch.linalg.eigvalsh(gamma).min() > 0
    cos01 = (positions[0] @ positions[1]).item()
    assert gamma[0, 1].item() == pytest.approx(closed_form(math.degrees(math.acos(cos01))))
