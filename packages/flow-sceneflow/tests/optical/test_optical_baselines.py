import numpy as np
import pytest

from flow_core.errors import ConfigError
from flow_sceneflow import baselines
from flow_sceneflow.baselines import estimate_flow, has_opencv
from flow_sceneflow.data.optical import warp_pair
from flow_sceneflow.metrics import endpoint_error


@pytest.mark.parametrize("method", ["tvl1", "ilk"])
def test_library_baselines_recover_a_translation_in_our_convention(method):
    pair = warp_pair("astronaut", "translation", size=80, magnitude=3.0)
    flow = estimate_flow(method, pair.image0, pair.image1)
    assert flow.shape == (80, 80, 2)
    assert endpoint_error(flow, pair.truth) < 0.3


@pytest.mark.skipif(not has_opencv(), reason="OpenCV (the [opencv] extra) is not installed")
def test_farneback_recovers_a_translation():
    pair = warp_pair("astronaut", "translation", size=80, magnitude=3.0)
    assert endpoint_error(estimate_flow("farneback", pair.image0, pair.image1), pair.truth) < 0.5


def test_farneback_without_opencv_says_how_to_install(monkeypatch):
    monkeypatch.setattr(baselines, "has_opencv", lambda: False)
    image = np.zeros((16, 16))
    with pytest.raises(ConfigError, match=r"flow-sceneflow\[opencv\]"):
        estimate_flow("farneback", image, image)


def test_unknown_estimator_is_refused():
    with pytest.raises(ConfigError, match="expected one of: tvl1, ilk, farneback"):
        estimate_flow("raft", np.zeros((16, 16)), np.zeros((16, 16)))
