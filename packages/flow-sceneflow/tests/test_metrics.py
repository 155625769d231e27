import numpy as np
import pytest

from flow_sceneflow.metrics import scene_flow_metrics
from flow_sceneflow.scan import PointCloudError


def test_perfect_prediction():
    truth = np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 0.5]])
    m = scene_flow_metrics(truth.copy(), truth)
    assert m == {"epe3d": 0.0, "acc_strict": 1.0, "acc_relax": 1.0, "outliers": 0.0}


def test_hand_made_thresholds():
    truth = np.array([[1.0, 0, 0]] * 4)
    # errors 0.04 (strict), 0.08 (relaxed: abs < 0.1), 0.2 (relative 0.2 -> outlier), 0.5
    prediction = truth + np.array([[0.04, 0, 0], [0.08, 0, 0], [0.2, 0, 0], [0, 0.5, 0]])
    m = scene_flow_metrics(prediction, truth)
    assert m["epe3d"] == pytest.approx((0.04 + 0.08 + 0.2 + 0.5) / 4)
    assert m["acc_strict"] == pytest.approx(0.25)
    assert m["acc_relax"] == pytest.approx(0.5)
    assert m["outliers"] == pytest.approx(0.5)


def test_relative_criterion_counts_for_large_flows():
    truth = np.array([[10.0, 0, 0]])
    m = scene_flow_metrics(truth + np.array([[0.4, 0, 0]]), truth)  # 0.4 m but only 4 % relative
    assert m["acc_strict"] == 1.0 and m["outliers"] == 1.0  # EPE > 0.3 m is an outlier


def test_static_and_dynamic_splits():
    truth = np.array([[1.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0]])
    prediction = np.array([[1.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0]])
    m = scene_flow_metrics(prediction, truth, dynamic=np.array([False, False, True]))
    assert m["static_epe3d"] == 0.0
    assert m["dynamic_epe3d"] == pytest.approx(1.0)
    assert m["dynamic_fraction"] == pytest.approx(1 / 3)
    empty = scene_flow_metrics(prediction, truth, dynamic=np.zeros(3, bool))
    assert np.isnan(empty["dynamic_epe3d"])


def test_bad_inputs_are_refused():
    with pytest.raises(PointCloudError, match="match"):
        scene_flow_metrics(np.zeros((3, 3)), np.zeros((4, 3)))
    with pytest.raises(PointCloudError, match="NaN"):
        scene_flow_metrics(np.full((2, 3), np.nan), np.zeros((2, 3)))
    with pytest.raises(PointCloudError, match="dynamic"):
        scene_flow_metrics(np.zeros((3, 3)), np.zeros((3, 3)), dynamic=np.zeros(2, bool))
