import numpy as np
import pytest

from flow_sceneflow.optical.encodings import flow_to_hsv_rgb, reynoldsflow_plus
from flow_sceneflow.optical.validation import OpticalInputError


def test_hsv_colours_follow_direction_and_magnitude():
    flow = np.zeros((2, 3, 2))
    flow[0, 0] = (2.0, 0.0)  # +x, full magnitude: hue 0, red
    flow[0, 1] = (-2.0, 0.0)  # −x: hue 1/2, cyan
    flow[0, 2] = (1.0, 0.0)  # half magnitude: half value
    flow[1, 1] = np.nan  # no flow there: black
    rgb = flow_to_hsv_rgb(flow)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    assert tuple(rgb[0, 0]) == (255, 0, 0)
    assert tuple(rgb[0, 1]) == (0, 255, 255)
    assert tuple(rgb[0, 2]) == (128, 0, 0)
    assert tuple(rgb[1, 0]) == (0, 0, 0) and tuple(rgb[1, 1]) == (0, 0, 0)
    assert tuple(flow_to_hsv_rgb(flow, max_magnitude=4.0)[0, 0]) == (128, 0, 0)
    with pytest.raises(OpticalInputError, match="max_magnitude"):
        flow_to_hsv_rgb(flow, max_magnitude=0.0)


def test_reynoldsflow_plus_stacks_the_two_magnitudes_and_the_frame():
    conventional = np.zeros((8, 8, 2))
    conventional[..., 0] = np.linspace(0, 3, 8)[None, :]
    reynolds = np.zeros((8, 8, 2))
    reynolds[2, 3] = (0.0, -0.5)
    frame = np.full((8, 8), 0.5)
    rgb = reynoldsflow_plus(conventional, reynolds, frame)
    assert rgb.dtype == np.uint8 and rgb.shape == (8, 8, 3)
    np.testing.assert_array_equal(rgb[0, :, 0], np.round(np.linspace(0, 255, 8)).astype(np.uint8))
    assert rgb[2, 3, 1] == 255 and rgb[..., 1].sum() == 255
    assert np.all(rgb[..., 2] == 128)
    with pytest.raises(OpticalInputError, match="covers 8x8 pixels but the images are 8x9"):
        reynoldsflow_plus(conventional, reynolds, np.zeros((8, 9)))
