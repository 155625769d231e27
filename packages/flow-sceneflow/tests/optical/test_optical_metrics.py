import numpy as np
import pytest

from flow_sceneflow.metrics import endpoint_error, flow_metrics, outlier_rate
from flow_sceneflow.optical.validation import OpticalInputError


def _constant(u, v, shape=(4, 5)):
    return np.stack([np.full(shape, float(u)), np.full(shape, float(v))], axis=-1)


def test_epe_of_a_3_4_5_error_is_5():
    assert endpoint_error(_constant(0, 0), _constant(3, 4)) == pytest.approx(5.0)
    assert endpoint_error(_constant(1, 1), _constant(1, 1)) == 0.0


def test_epe_averages_over_valid_pixels_only():
    truth = _constant(0, 0)
    estimate = _constant(0, 0)
    estimate[0, 0] = (6.0, 8.0)  # error 10 at one pixel of 20
    assert endpoint_error(estimate, truth) == pytest.approx(10.0 / 20)
    truth[1:, :] = np.nan  # keep only the first row: 5 pixels
    assert endpoint_error(estimate, truth) == pytest.approx(10.0 / 5)
    assert flow_metrics(estimate, truth)["valid_fraction"] == pytest.approx(5 / 20)


def test_outliers_need_both_absolute_and_relative_excess():
    truth = _constant(0, 0)
    truth[0, :] = (100.0, 0.0)  # |truth| = 100 on the first row
    estimate = truth.copy()
    estimate[..., 0] += 4.0  # error 4 px everywhere
    # 4 > 3 px everywhere, but 4 < 5 % of 100 on the first row: 15 of 20 pixels are outliers
    assert outlier_rate(estimate, truth) == pytest.approx(15 / 20)
    assert outlier_rate(estimate, truth, abs_px=5.0) == 0.0
    assert outlier_rate(estimate, truth, rel=0.0) == 1.0
    assert flow_metrics(estimate, truth)["outliers"] == pytest.approx(15 / 20)


@pytest.mark.parametrize(
    ("estimate", "truth", "match"),
    [
        (np.zeros((4, 5, 3)), np.zeros((4, 5, 2)), r"shape \(4, 5, 3\)"),
        (np.zeros((4, 5, 2)), np.zeros((4, 6, 2)), "covers 4x5 pixels but the images are 4x6"),
        (np.zeros((0, 5, 2)), np.zeros((0, 5, 2)), "empty"),
        (np.full((4, 5, 2), np.nan), np.zeros((4, 5, 2)), "NaN"),
        (np.zeros((4, 5, 2)), np.full((4, 5, 2), np.nan), "no valid"),
        (np.zeros((4, 5, 2)), np.full((4, 5, 2), np.inf), "infinite"),
    ],
)
def test_bad_flows_are_refused(estimate, truth, match):
    with pytest.raises(OpticalInputError, match=match):
        endpoint_error(estimate, truth)


def test_negative_thresholds_are_refused():
    with pytest.raises(OpticalInputError, match="thresholds"):
        outlier_rate(_constant(0, 0), _constant(0, 0), abs_px=-1)
