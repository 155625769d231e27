import math

import numpy as np
import pytest
import torch

from flow_core.errors import ConfigError
from flow_physics.pta import spectra

F = torch.tensor([1e-9, 3e-9, spectra.F_YR, 1e-7], dtype=torch.float64)
LOG10_A = torch.tensor([-15.0, -14.2, -13.5], dtype=torch.float64)
GAMMA = torch.tensor([13 / 3, 3.0, 5.5], dtype=torch.float64)


def test_reference_frequency_is_one_over_a_julian_year():
    assert pytest.approx(3.168808781e-8, rel=1e-9) == spectra.F_YR


def test_hc_at_f_yr_equals_the_amplitude():
    hc = spectra.powerlaw_hc(torch.tensor([spectra.F_YR], dtype=torch.float64), LOG10_A, GAMMA)
    assert hc.shape == (3, 1)
    np.testing.assert_allclose(hc[:, 0].numpy(), 10 ** LOG10_A.numpy(), rtol=1e-12)


def test_hc_slope_is_alpha():
    hc = spectra.powerlaw_hc(F, LOG10_A, GAMMA)
    slope = torch.log(hc[:, 1] / hc[:, 0]) / math.log(3.0)
    np.testing.assert_allclose(slope.numpy(), (3 - GAMMA.numpy()) / 2, rtol=1e-10)


def test_powerlaw_psd_matches_the_closed_form_and_the_conversion():
    psd = spectra.powerlaw_psd(F, LOG10_A, GAMMA)
    f, a, g = F.numpy()[None], 10 ** LOG10_A.numpy()[:, None], GAMMA.numpy()[:, None]
    closed = a**2 * spectra.F_YR ** (g - 3) * f ** (-g) / (12 * np.pi**2)
    np.testing.assert_allclose(psd.numpy(), closed, rtol=1e-10)
    via_hc = spectra.hc_to_psd(F, spectra.powerlaw_hc(F, LOG10_A, GAMMA))
    np.testing.assert_allclose(psd.numpy(), via_hc.numpy(), rtol=1e-10)


def test_psd_at_a_known_point():
    # A = 1e-15, gamma = 13/3, f = 1/yr: S = A^2 / (12 pi^2 f_yr^3) = 2.6536e-10 s^3 (by hand).
    psd = spectra.smbhb_psd(torch.tensor([spectra.F_YR], dtype=torch.float64), -15.0)
    assert psd.item() == pytest.approx(1e-30 / (12 * math.pi**2 * 3.168808781e-8**3), rel=1e-8)
    assert psd.item() == pytest.approx(2.6536e-10, rel=1e-4)


def test_smbhb_is_the_power_law_at_13_over_3():
    a = spectra.smbhb_psd(F, LOG10_A)
    b = spectra.powerlaw_psd(F, LOG10_A, torch.full_like(LOG10_A, 13 / 3))
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)


def test_hc_psd_round_trip():
    hc = spectra.powerlaw_hc(F, LOG10_A, GAMMA)
    back = spectra.psd_to_hc(F, spectra.hc_to_psd(F, hc))
    np.testing.assert_allclose(back.numpy(), hc.numpy(), rtol=1e-12)


def test_hubble_constant_per_h():
    assert pytest.approx(3.2407793e-18, rel=1e-7) == spectra.HUBBLE_100


def test_omega_at_a_known_point_and_round_trip():
    # h^2 Omega = 2 pi^2 f^2 hc^2 / (3 (H0/h)^2), H0/h = 3.2407793e-18 /s, at f_yr with
    # hc = 2.4e-15: about 3.62e-9 (computed by hand).
    f = torch.tensor([spectra.F_YR], dtype=torch.float64)
    omega = spectra.hc_to_omega_h2(f, torch.tensor([[2.4e-15]], dtype=torch.float64))
    by_hand = 2 * math.pi**2 * 3.168808781e-8**2 * 2.4e-15**2 / (3 * 3.2407793e-18**2)
    assert omega.item() == pytest.approx(by_hand, rel=1e-6)
    assert omega.item() == pytest.approx(3.62e-9, rel=2e-3)
    hc = spectra.powerlaw_hc(F, LOG10_A, GAMMA)
    back = spectra.omega_h2_to_hc(F, spectra.hc_to_omega_h2(F, hc))
    np.testing.assert_allclose(back.numpy(), hc.numpy(), rtol=1e-12)


def test_rho2_is_psd_over_tspan():
    psd = spectra.powerlaw_psd(F, LOG10_A, GAMMA)
    np.testing.assert_allclose(spectra.psd_to_rho2(psd, 4e8).numpy(), psd.numpy() / 4e8)


def test_spectral_models_by_name():
    model = spectra.spectral_model("powerlaw")
    params = torch.stack((LOG10_A, GAMMA), 1)
    np.testing.assert_allclose(
        model.psd(F, params).numpy(), spectra.powerlaw_psd(F, LOG10_A, GAMMA).numpy()
    )
    assert spectra.spectral_model("smbhb").parameter_names == ("log10_A",)
    with pytest.raises(ConfigError, match="accepted: powerlaw, smbhb"):
        spectra.spectral_model("cosmic-strings")


def test_free_spectrum_inverts_rho2():
    tspan = 4e8
    f = torch.arange(1, 6, dtype=torch.float64) / tspan
    log10_rho = torch.tensor([[-7.0, -7.5, -8.0, -8.2, -9.0]], dtype=torch.float64)
    model = spectra.free_spectrum(5)
    assert model.parameter_names[0] == "log10_rho_0" and len(model.parameter_names) == 5
    rho2 = spectra.psd_to_rho2(model.psd(f, log10_rho), tspan)
    np.testing.assert_allclose(torch.log10(rho2).numpy() / 2, log10_rho.numpy(), rtol=1e-12)
    with pytest.raises(ConfigError, match="one log10_rho per frequency"):
        model.psd(f[:3], log10_rho)
