import math

import pytest
import torch

from flow_core.errors import ConfigError
from flow_physics.pta.models import parse_models
from flow_physics.pta.sources import (
    A_S,
    F_CMB,
    G_FACTOR,
    IGW,
    OMEGA_R_H2,
    SIGW_DELTA,
    SOURCE_NAMES,
    igw_omega_h2,
    prior_box,
    sigw_delta_kernel,
    source_model,
)
from flow_physics.pta.spectra import SMBHB, hc_to_psd, omega_h2_to_hc

F = torch.tensor([1e-9, 3e-9, 1e-8], dtype=torch.float64)


def test_igw_at_the_cmb_pivot_is_the_tensor_amplitude():
    omega = igw_omega_h2(
        torch.tensor([F_CMB], dtype=torch.float64), torch.tensor([-2.0]), torch.tensor([3.0])
    )
    expected = OMEGA_R_H2 / 24 * G_FACTOR * 0.01 * A_S
    assert omega.item() == pytest.approx(expected, rel=1e-12)


def test_igw_tilt_is_the_slope_of_omega():
    omega = igw_omega_h2(F, torch.tensor([-1.0]), torch.tensor([2.5]))[0]
    slope = math.log(omega[2] / omega[0]) / math.log(F[2] / F[0])
    assert slope == pytest.approx(2.5, rel=1e-9)


def test_sigw_delta_kernel_at_known_points():
    x = torch.tensor([1.0, 2.0, 2.5], dtype=torch.float64)
    k = sigw_delta_kernel(x)
    expected = 3 / 64 * 0.75**2 * (math.pi**2 + (math.log(1 / 3) + 4) ** 2)
    assert k[0].item() == pytest.approx(expected, rel=1e-12)
    assert k[1].item() == 0.0 and k[2].item() == 0.0


def test_source_psds_convert_through_omega():
    params = torch.tensor([[-1.0, 2.0]], dtype=torch.float64)
    psd = IGW.psd(F, params)
    expected = hc_to_psd(F, omega_h2_to_hc(F, igw_omega_h2(F, params[:, 0], params[:, 1])))
    torch.testing.assert_close(psd, expected)
    assert SIGW_DELTA.psd(F, torch.tensor([[0.0, -8.5]], dtype=torch.float64)).shape == (1, 3)


def test_sigw_psd_has_finite_gradients_above_its_cutoff():
    # f_* = 10^-9.5 Hz puts every frequency of F above 2 f_*, where the spectrum is exactly
    # zero; a square root in the conversion made the amplitude's gradient NaN there, which
    # turned the flow's weights to NaN on the first training step of hd-sigw-delta.
    params = torch.tensor([[-1.0, -9.5], [-1.0, -8.5]], dtype=torch.float64, requires_grad=True)
    psd = SIGW_DELTA.psd(F, params)
    assert psd[0].abs().sum().item() == 0.0
    psd.sum().backward()
    assert params.grad is not None and bool(params.grad.isfinite().all())


def test_smbhb_plus_x_is_the_sum():
    model = source_model("smbhb+igw")
    assert model.parameter_names == ("log10_A", "x_log10_r", "x_n_t")
    params = torch.tensor([[-14.5, -1.0, 2.0]], dtype=torch.float64)
    torch.testing.assert_close(
        model.psd(F, params), SMBHB.psd(F, params[:, :1]) + IGW.psd(F, params[:, 1:])
    )
    assert prior_box(model) == {
        "log10_A": (-18.0, -11.0),
        "x_log10_r": (-40.0, 0.0),
        "x_n_t": (0.0, 6.0),
    }


def test_new_source_names_parse_alone_and_with_smbhb():
    specs = parse_models(
        "hd-smbhb+pt-sound, curn-sigw-gauss, hd-dw, hd-smbhb+pt-bubble, hd-pt-sound"
    )
    names = [(spec.correlation, spec.source.name) for spec in specs]
    assert names == [
        ("hd", "smbhb+pt-sound"),
        ("curn", "sigw-gauss"),
        ("hd", "dw"),
        ("hd", "smbhb+pt-bubble"),
        ("hd", "pt-sound"),
    ]
    sound = specs[0].source
    assert sound.parameter_names[:2] == ("log10_A", "x_log10_alpha")
    assert list(prior_box(sound)) == list(sound.parameter_names)
    for name in SOURCE_NAMES:
        assert list(prior_box(source_model(name))) == list(source_model(name).parameter_names)


def test_unknown_source_lists_the_accepted_names():
    with pytest.raises(ConfigError, match="accepted: powerlaw, smbhb, igw"):
        source_model("cosmic-strings")
