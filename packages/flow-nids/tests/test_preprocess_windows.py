"""Preprocessing fitted on the training part only; windows that never cross the split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from flow_core.errors import ConfigError
from flow_nids.data.loader import NetflowTable, validate_frame
from flow_nids.data.preprocess import Preprocessor
from flow_nids.data.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from flow_nids.data.windows import balanced_ends, gather, split_rows, window_ends
from flow_nids.flowtransformer.pipeline import prepare


def test_log_scaling_formula_and_clipping(records: pd.DataFrame):
    train = records.head(1000)
    pre = Preprocessor(top_k=4).fit(train)
    column = NUMERIC_FEATURES.index("IN_BYTES")
    low, high = train["IN_BYTES"].min(), train["IN_BYTES"].max()
    probe = records.head(3).copy()
    probe["IN_BYTES"] = [low, high, 10 * high]
    scaled = pre.transform(probe).numeric[:, column]
    expected = np.log(high - low + 1) / np.log(high - low + 2)
    assert scaled[0] == 0.0
    assert scaled[1] == pytest.approx(expected, rel=1e-6)
    assert scaled[2] == 1.0  # beyond the training range: clipped


def test_top_k_levels_most_frequent_first_and_unseen_is_zero(records: pd.DataFrame):
    pre = Preprocessor(top_k=2).fit(records)
    j = CATEGORICAL_FEATURES.index("L4_DST_PORT")
    counts = records["L4_DST_PORT"].value_counts()
    probe = records.head(3).copy()
    probe["L4_DST_PORT"] = [counts.index[0], counts.index[1], 65000]
    assert pre.transform(probe).categorical[:, j].tolist() == [1, 2, 0]
    assert pre.vocabulary == 3


def test_preprocessing_is_fitted_on_the_training_part_only(records: pd.DataFrame):
    frame = validate_frame(records, "test")
    spiked = frame.copy()
    spiked.loc[len(frame) - 5 :, "IN_BYTES"] = 1e12  # huge values only in the test part
    spiked.loc[len(frame) - 5 :, "L4_DST_PORT"] = 4444.0
    for rows in (spiked,):
        prepared = prepare(NetflowTable(rows, "NF-v2", "t"), 8, 0.2, 0.1, 32)
        reference = prepare(NetflowTable(frame, "NF-v2", "t"), 8, 0.2, 0.1, 32)
        # the training tables do not move when only test rows change
        np.testing.assert_array_equal(prepared.preprocessor.maximum, reference.preprocessor.maximum)
        assert all(
            (a == b).all()
            for a, b in zip(
                prepared.preprocessor.levels, reference.preprocessor.levels, strict=False
            )
        )
        start, stop = prepared.split.train
        assert (
            prepared.preprocessor.maximum[NUMERIC_FEATURES.index("IN_BYTES")]
            == frame["IN_BYTES"].iloc[start:stop].max()
        )


def test_split_is_in_file_order_with_the_test_part_last():
    split = split_rows(1000, 0.2, 0.1, 8)
    assert split.train == (0, 700) and split.validation == (700, 800) and split.test == (800, 1000)
    with pytest.raises(ConfigError, match="test_fraction"):
        split_rows(1000, 0.7, 0.1, 8)
    with pytest.raises(ConfigError, match="too few"):
        split_rows(20, 0.2, 0.1, 8)


def test_windows_never_cross_a_split_boundary(records: pd.DataFrame):
    prepared = prepare(NetflowTable(validate_frame(records, "t"), "NF-v2", "t"), 8, 0.2, 0.1, 32)
    for part in ("train", "validation", "test"):
        start, stop = getattr(prepared.split, part)
        ends = prepared.ends(part)
        assert ends.min() - 7 == start and ends.max() == stop - 1
        # the rows a window reads all lie inside its part
        index = ends[:, None] + np.arange(-7, 1)[None, :]
        assert index.min() >= start and index.max() < stop
    numeric, categorical = gather(prepared.flows, prepared.ends("test")[:3], 8)
    assert numeric.shape == (3, 8, 28) and categorical.shape == (3, 8, 9)
    first = prepared.split.test[0]
    np.testing.assert_array_equal(numeric[0], prepared.flows.numeric[first : first + 8])


def test_window_ends_and_balanced_batches():
    assert window_ends((10, 20), 4).tolist() == list(range(13, 20))
    labels = np.zeros(1000, dtype=np.int64)
    labels[::20] = 1  # 5% attacks
    ends = window_ends((0, 1000), 8)
    drawn = balanced_ends(ends, labels, 256, torch.Generator().manual_seed(0))
    assert len(drawn) == 256 and labels[drawn].sum() == 128
    only_benign = balanced_ends(ends, np.zeros(1000, dtype=np.int64), 10, torch.Generator())
    assert len(only_benign) == 10
