import numpy as np
import pytest

from flow_sceneflow.optical.validation import OpticalInputError, as_gray, check_pair


def test_integer_and_colour_images_become_gray_floats():
    gray = as_gray(np.full((10, 12), 255, dtype=np.uint8))
    assert gray.dtype == np.float64 and gray.shape == (10, 12) and np.all(gray == 1.0)
    rgba = np.zeros((10, 12, 4), dtype=np.uint16)
    rgba[..., 1] = 65535
    assert as_gray(rgba) == pytest.approx(np.full((10, 12), 0.7154), abs=1e-4)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((0, 10)), "empty"),
        (np.zeros((10, 10, 2)), "expected"),
        (np.zeros((3, 10, 10, 3)), "expected"),
        (np.full((10, 10), np.nan), "non-finite"),
        (np.full((10, 10), 2.0), r"\[0, 1\]"),
        (np.zeros((4, 40)), "at least 8x8"),
        (np.array([["a"] * 10] * 10), "numeric"),
        (np.full((10, 10), -3, dtype=np.int8), "negative"),
    ],
)
def test_bad_images_are_refused(image, match):
    with pytest.raises(OpticalInputError, match=match):
        as_gray(image)


def test_frames_of_different_sizes_are_refused():
    with pytest.raises(OpticalInputError, match="image0 is 10x10 but image1 is 10x12"):
        check_pair(np.zeros((10, 10)), np.zeros((10, 12)))
