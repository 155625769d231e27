"""Shared small synthetic arrays for the PTA tests."""

import pytest

from flow_physics.data.synthetic import SyntheticConfig, make_array


@pytest.fixture(scope="session")
def small_array():
    """Four pulsars with about 40 TOAs each, strong common background, HD-correlated."""
    config = SyntheticConfig(n_pulsars=4, years=10.0, cadence_days=75.0, gw_log10_A=-13.7)
    return make_array(config, seed=3)
