import numpy as np
import pytest

from flow_core.errors import ConfigError
from flow_physics.data.pulsar import Pulsar
from flow_physics.data.synthetic import YEAR, SyntheticConfig, make_array


def test_same_seed_same_array_and_other_seed_differs():
    config = SyntheticConfig(n_pulsars=3, years=6.0)
    a, b, c = make_array(config, seed=1), make_array(config, seed=1), make_array(config, seed=2)
    for p, q in zip(a.pulsars, b.pulsars, strict=True):
        np.testing.assert_array_equal(p.residuals, q.residuals)
        np.testing.assert_array_equal(p.toas, q.toas)
    assert a.truth == b.truth
    assert not np.array_equal(a.pulsars[0].residuals, c.pulsars[0].residuals)


def test_layout_truth_and_timing_model_removed():
    config = SyntheticConfig(n_pulsars=5, years=12.0, cadence_days=14.0, gap_fraction=0.1)
    array = make_array(config, seed=0)
    assert array.tspan == pytest.approx(12.0 * YEAR)
    assert len({p.name for p in array.pulsars}) == 5
    assert {"gw_log10_A", "gw_gamma"} <= set(array.truth)
    for p in array.pulsars:
        assert np.all(np.diff(p.toas) > 0)
        assert p.toas.min() >= 0.0 and p.toas.max() <= array.tspan
        # one gap of 10% of the span: between two TOAs, or before the first
        assert max(np.diff(p.toas).max(), p.toas.min()) >= 0.1 * array.tspan
        assert np.linalg.norm(p.position) == pytest.approx(1.0)
        assert 0.9 <= p.efac <= 1.2 and array.truth[f"{p.name}_efac"] == p.efac
        for key in ("red_noise_log10_A", "red_noise_gamma"):
            assert f"{p.name}_{key}" in array.truth
        # weighted least squares leaves residuals orthogonal to the design matrix
        weighted = p.design_matrix.T @ (p.residuals / p.toaerrs**2)
        scale = np.abs(p.design_matrix).sum(0) * np.abs(p.residuals / p.toaerrs**2).max()
        assert np.all(np.abs(weighted) < 1e-9 * scale)


def test_strong_background_dominates_white_noise():
    quiet = SyntheticConfig(n_pulsars=2, gw_log10_A=-17.0, red_noise_log10_A=(-18.0, -17.9))
    loud = SyntheticConfig(n_pulsars=2, gw_log10_A=-13.0, red_noise_log10_A=(-18.0, -17.9))
    rms_quiet = np.std(make_array(quiet, seed=4).pulsars[0].residuals)
    rms_loud = np.std(make_array(loud, seed=4).pulsars[0].residuals)
    toaerr = make_array(quiet, seed=4).pulsars[0].toaerrs[0]
    assert rms_quiet == pytest.approx(toaerr * make_array(quiet, seed=4).pulsars[0].efac, rel=0.2)
    assert rms_loud > 5 * rms_quiet


def test_bad_settings_and_records_raise_config_errors():
    with pytest.raises(ConfigError, match="accepted: hd, curn"):
        SyntheticConfig(correlation="dipole")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cadence_days"):
        SyntheticConfig(years=1.0, cadence_days=60.0)
    good = np.ones(10)
    with pytest.raises(ConfigError, match="residuals has shape"):
        Pulsar("J0000+0000", np.arange(10.0), good, np.ones(9), np.eye(3)[0], np.ones((10, 2)))
    with pytest.raises(ConfigError, match="design_matrix has shape"):
        Pulsar("J0000+0000", np.arange(10.0), good, good, np.eye(3)[0], np.ones((9, 2)))
