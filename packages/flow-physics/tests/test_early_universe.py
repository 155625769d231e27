import math

import pytest
import torch
from scipy import integrate

from flow_physics.pta.cosmology import G_S_EQ, dilution_h2, dof, redshifted_hubble_hz
from flow_physics.pta.domain_walls import DOMAIN_WALLS, domain_walls_omega_h2
from flow_physics.pta.phase_transition import (
    PT_BUBBLE,
    PT_SOUND,
    pt_sound_omega_h2,
    shape_integral,
    sound_wave_efficiency,
    sound_wave_suppression,
    spectral_shape,
)
from flow_physics.pta.sources import prior_box

F = torch.arange(1, 15, dtype=torch.float64) / (16 * 3.15576e7)


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_dof_limits_are_the_standard_model_counts():
    g_rho, g_s = dof(_t(-6.0, -2.0, 6.0))
    torch.testing.assert_close(g_rho, _t(3.363, 10.75, 106.75), rtol=2e-3, atol=0.0)
    torch.testing.assert_close(g_s, _t(G_S_EQ, 10.75, 106.75), rtol=2e-3, atol=0.0)


def test_dof_across_the_qcd_crossover_follows_the_lattice_table():
    # Saikawa & Shirai 2018 (arXiv 1803.01038), (g_rho, g_s) at 0.1, 0.2, 0.5 GeV
    g_rho, g_s = dof(torch.log10(_t(0.1, 0.2, 0.5)))
    torch.testing.assert_close(g_rho, _t(17.8, 41.1, 61.5), rtol=0.11, atol=0.0)
    torch.testing.assert_close(g_s, _t(17.4, 38.1, 59.9), rtol=0.11, atol=0.0)


def test_dilution_is_the_textbook_prefactor_at_g_100():
    # h^2 Omega_0 = 1.64e-5 (100 / g)^(1/3) Omega_* (e.g. Caprini et al. 2016, arXiv 1512.06239)
    assert float(dilution_h2(_t(100.0), _t(100.0))) == pytest.approx(1.64e-5, rel=0.01)


def test_peak_frequency_scales_with_temperature():
    # above the top mass g is constant, so (a_*/a_0) H_* is linear in T_*
    rate = redshifted_hubble_hz(_t(4.0, 5.0))
    assert float(rate[1] / rate[0]) == pytest.approx(10.0, rel=1e-6)
    # 100 GeV: about 1.6e-5 Hz (the frequency of Caprini et al.'s f_* ~ H_*)
    assert float(redshifted_hubble_hz(_t(2.0))) == pytest.approx(1.66e-5, rel=0.02)


def test_shape_peaks_at_one_with_unit_height():
    a, b, c = _t(2.8), _t(1.0), _t(1.0)
    x = torch.exp(torch.linspace(-3, 3, 6001, dtype=torch.float64))
    s = spectral_shape(x, a, b, c)
    assert float(spectral_shape(_t(1.0), a, b, c)) == pytest.approx(1.0, rel=1e-12)
    assert float(x[s.argmax()]) == pytest.approx(1.0, abs=2e-3)
    # the slopes far from the peak are +a and -b
    low, high = spectral_shape(_t(1e-6, 1e-5, 1e5, 1e6), a, b, c).log().split(2)
    assert float(low[1] - low[0]) / math.log(10) == pytest.approx(2.8, rel=1e-3)
    assert float(high[1] - high[0]) / math.log(10) == pytest.approx(-1.0, rel=1e-3)


@pytest.mark.parametrize("a, b, c", [(2.8, 1.0, 1.0), (3.0, 4.0, 3.5), (1.3, 2.7, 0.4)])
def test_shape_integral_matches_quadrature(a, b, c):
    def integrand(ln_x: float) -> float:
        return float(spectral_shape(_t(math.exp(ln_x)), _t(a), _t(b), _t(c)))

    expected = integrate.quad(integrand, -60, 60, limit=400)[0]
    assert float(shape_integral(_t(a), _t(b), _t(c))) == pytest.approx(expected, rel=1e-6)


def test_sound_wave_efficiency_and_suppression_limits():
    kappa = sound_wave_efficiency(_t(1e-4, 1e6))
    assert float(kappa[0]) == pytest.approx(1e-4 / 0.73, rel=0.01)
    assert float(kappa[1]) == pytest.approx(1.0, rel=1e-3)
    alpha = _t(0.5)
    velocity = math.sqrt(0.75 * float(sound_wave_efficiency(alpha)) * 0.5 / 1.5)
    small = sound_wave_suppression(_t(1e-6), alpha)
    assert float(small) == pytest.approx(1e-6 / velocity, rel=1e-4)  # Upsilon ~ tau_H
    assert float(sound_wave_suppression(_t(1e8), alpha)) == pytest.approx(1.0, rel=1e-3)


def test_sound_wave_amplitude_scaling():
    # at x = 1 and long-lived sound waves (Upsilon -> 1 is not reached in the prior, so
    # compare the ratio): Omega ~ N D Delta (H/beta) K^2 Upsilon
    params = _t(-0.5, 5.0, -1.0, 3.0, 4.0, 3.5).reshape(1, -1)
    f_0 = redshifted_hubble_hz(_t(5.0)) * 0.54 / (0.1 / (8 * math.pi) ** (1 / 3))
    omega = pt_sound_omega_h2(f_0, params)
    alpha = _t(10**-0.5)
    kappa = sound_wave_efficiency(alpha)
    g_rho, g_s = dof(_t(5.0))
    expected = (
        shape_integral(_t(3.0), _t(4.0), _t(3.5))
        * dilution_h2(g_rho, g_s)
        * 3
        * 0.012
        * 0.1
        * (kappa * alpha / (1 + alpha)) ** 2
        * sound_wave_suppression(_t(0.1), alpha)
    )
    assert float(omega) == pytest.approx(float(expected), rel=1e-9)


def test_domain_walls_peak_at_the_redshifted_hubble_rate():
    params = _t(-1.0, -1.0, 0.7, 1.5).reshape(1, -1)
    f_0 = redshifted_hubble_hz(_t(-1.0))
    f = f_0 * _t(0.5, 1.0, 2.0)
    omega = domain_walls_omega_h2(f, params)[0]
    assert float(omega.argmax()) == 1
    g_rho, g_s = dof(_t(-1.0))
    expected = 0.7 * math.pi / 960 * 0.01 * dilution_h2(g_rho, g_s) * 90 / math.pi**2
    assert float(omega[1]) == pytest.approx(float(expected), rel=1e-9)


@pytest.mark.parametrize("model", [PT_BUBBLE, PT_SOUND, DOMAIN_WALLS])
def test_psd_has_finite_gradients_over_the_prior(model):
    box = prior_box(model)
    low = torch.tensor([v[0] for v in box.values()], dtype=torch.float64)
    high = torch.tensor([v[1] for v in box.values()], dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    params = low + (high - low) * torch.rand(
        512, len(box), generator=generator, dtype=torch.float64
    )
    params.requires_grad_(True)
    psd = model.psd(F, params)
    assert bool((psd > 0).all()) and bool(psd.isfinite().all())
    torch.log(psd).sum().backward()
    assert params.grad is not None and bool(params.grad.isfinite().all())
    assert bool((params.grad != 0).any(dim=0).all())
