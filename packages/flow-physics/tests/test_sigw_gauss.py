import math

import numpy as np
import pytest
import torch
from scipy import integrate

from flow_physics.pta.sigw_gauss import (
    _induced_weight,
    _kernel_on_grid,
    sigw_gauss_kernel,
    sigw_gauss_kernel_table,
)
from flow_physics.pta.sources import SIGW_GAUSS, prior_box, sigw_delta_kernel


def _kernel_by_quad(x: float, width: float) -> float:
    """K(x, w) by scipy's adaptive 2-D quadrature in s = u + v, d = |u - v|."""

    def integrand(d: float, s: float) -> float:
        u, v = (s + d) / 2, (s - d) / 2
        gauss = math.exp(-(math.log(x * u) ** 2 + math.log(x * v) ** 2) / (2 * width**2))
        weight = float(_induced_weight(np.array(u), np.array(v)))
        return weight * gauss / (2 * math.pi * width**2) / 12

    below = integrate.dblquad(integrand, 1, math.sqrt(3), 0, 1, epsrel=1e-6)[0]
    above = integrate.dblquad(integrand, math.sqrt(3), 200 / x, 0, 1, epsrel=1e-6)[0]
    return below + above


def test_delta_kernel_is_the_point_limit_of_the_integrand():
    # a delta peak puts u = v = 1/x, so K_delta(x) = F(1/x, 1/x) / (12 x^2): the same 1/12
    # and F as the table
    x = np.array([0.3, 1.0, 1.5, 1.9])
    expected = sigw_delta_kernel(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_induced_weight(1 / x, 1 / x) / (12 * x**2), expected, rtol=1e-12)


@pytest.mark.parametrize("x, width", [(0.3, 0.5), (2.5, 1.0)])
def test_gauss_kernel_matches_an_independent_quadrature(x, width):
    ln_x, ln_k = _kernel_on_grid(np.array([width]))
    table = math.exp(float(np.interp(math.log(x), ln_x[::-1], ln_k[::-1, 0])))
    assert table == pytest.approx(_kernel_by_quad(x, width), rel=3e-3)


def test_narrow_gauss_peak_tends_to_the_delta_peak_in_integrated_power():
    ln_grid = torch.linspace(-12.0, math.log(2.0), 200001, dtype=torch.float64)
    delta_total = float(torch.trapezoid(sigw_delta_kernel(torch.exp(ln_grid)), ln_grid))
    ln_x, ln_k = _kernel_on_grid(np.array([0.02, 0.05]))
    totals = -np.trapezoid(np.exp(ln_k), ln_x, axis=0)  # ln_x decreases
    errors = np.abs(totals - delta_total)
    # the gap closes linearly in the width: 0.02 is within 7 %, and the straight line
    # through the two widths meets the delta result at w = 0 within 2 %
    assert errors[0] < 0.07 * delta_total and errors[0] < 0.5 * errors[1]
    extrapolated = totals[0] + (totals[0] - totals[1]) * 0.02 / 0.03
    assert extrapolated == pytest.approx(delta_total, rel=0.02)


def test_table_covers_the_prior_and_interpolates_the_grid_exactly():
    ln_x, widths, ln_k = sigw_gauss_kernel_table()
    assert float(widths[0]) == pytest.approx(0.1) and float(widths[-1]) == pytest.approx(3.0)
    assert float(ln_x[0]) <= math.log(1e-9 / 1e-5) and float(ln_x[-1]) >= math.log(1e-7 / 1e-11)
    k = sigw_gauss_kernel(torch.exp(ln_x[1000:1003]), widths[7].expand(3))
    torch.testing.assert_close(k, torch.exp(ln_k[1000:1003, 7]))


def test_sigw_gauss_psd_has_finite_gradients_over_the_prior():
    box = prior_box(SIGW_GAUSS)
    low = torch.tensor([v[0] for v in box.values()], dtype=torch.float64)
    high = torch.tensor([v[1] for v in box.values()], dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    params = low + (high - low) * torch.rand(256, 3, generator=generator, dtype=torch.float64)
    params.requires_grad_(True)
    f = torch.arange(1, 15, dtype=torch.float64) / (16 * 3.15576e7)
    psd = SIGW_GAUSS.psd(f, params)
    assert bool((psd > 0).all())
    torch.log(psd).sum().backward()
    assert params.grad is not None and bool(params.grad.isfinite().all())
    assert bool((params.grad[:, 2] != 0).any())
