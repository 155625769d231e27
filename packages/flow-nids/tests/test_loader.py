"""The NF-v2 loader: schema detection and every kind of bad input, named precisely."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flow_core.errors import ConfigError, FlowError
from flow_nids.data.loader import canonical_attack, read_netflow
from flow_nids.data.schema import (
    CATEGORICAL_FEATURES,
    MODEL_FEATURES,
    NUMERIC_FEATURES,
    V2_FEATURES,
    V3_EXTRA_FEATURES,
)


def test_schema_constants_match_the_paper():
    assert len(V2_FEATURES) == 43 and len(set(V2_FEATURES)) == 43
    assert len(MODEL_FEATURES) == 37
    assert len(CATEGORICAL_FEATURES) == 9 and len(NUMERIC_FEATURES) == 28
    assert len(V3_EXTRA_FEATURES) == 10


def test_reads_v2_in_chunks_same_as_whole(csv_file: Path, records: pd.DataFrame):
    whole = read_netflow(csv_file)
    chunked = read_netflow(csv_file, chunk_rows=128)
    text = read_netflow(csv_file, chunk_rows=500, engine="pandas")
    pd.testing.assert_frame_equal(whole.frame, text.frame)
    assert whole.schema == "NF-v2"
    assert len(whole.frame) == len(records) == len(chunked.frame)
    pd.testing.assert_frame_equal(whole.frame, chunked.frame)
    np.testing.assert_array_equal(whole.labels, records["Label"].to_numpy())
    assert whole.frame["IN_BYTES"].sum() == records["IN_BYTES"].sum()


def test_reads_v3_by_name_in_any_order(tmp_path: Path, records: pd.DataFrame):
    frame = records.copy()
    for column in V3_EXTRA_FEATURES:
        frame[column] = 1
    frame = frame[list(reversed(frame.columns))]  # columns selected by name, not position
    frame.to_csv(tmp_path / "v3.csv.gz", index=False)
    table = read_netflow(tmp_path / "v3.csv.gz", columns=MODEL_FEATURES)
    assert table.schema == "NF-v3"
    assert list(table.frame.columns) == [*MODEL_FEATURES, "Label", "Attack"]
    assert table.frame["L4_DST_PORT"].tolist() == records["L4_DST_PORT"].tolist()


def _broken(tmp_path: Path, records: pd.DataFrame, edit) -> Path:
    frame = records.head(50).copy()
    frame = edit(frame)
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns=["IN_PKTS", "Attack"]), r"missing column\(s\) IN_PKTS, Attack"),
        (lambda f: f.assign(EXTRA=1), r"unexpected column\(s\) EXTRA; accepted"),
        (
            lambda f: f.assign(FLOW_START_MILLISECONDS=1),
            r"FLOW_START_MILLISECONDS present but .*FLOW_END_MILLISECONDS",
        ),
    ],
)
def test_header_errors_name_the_columns(tmp_path, records, edit, message):
    with pytest.raises(ConfigError, match=message):
        read_netflow(_broken(tmp_path, records, edit))


def _set(column: str, rows: list[int], value: object):
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[rows, column] = value
        return frame

    return edit


@pytest.mark.parametrize("chunk_rows", [1 << 18, 7])
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            _set("OUT_BYTES", [3, 9], "abc"),
            r"column OUT_BYTES must hold numbers, found 'abc' at lines? 5(, 11)?$",
        ),
        (_set("IN_PKTS", [20], np.nan), r"NaN \(empty\) values in column\(s\) IN_PKTS at line 22"),
        (_set("TCP_FLAGS", [4], "inf"), r"infinite values in column\(s\) TCP_FLAGS at line 6"),
        (
            _set("DURATION_IN", [10, 12], -5),
            r"negative counter\(s\) in column\(s\) DURATION_IN at lines? 12(, 14)?;",
        ),
        (
            _set("Label", [0], 2),
            r"column Label must be 0 \(benign\) or 1 \(attack\), found 2 at line 2",
        ),
    ],
)
def test_value_errors_name_column_and_first_lines(tmp_path, records, edit, message, chunk_rows):
    with pytest.raises(ConfigError, match=message):
        read_netflow(_broken(tmp_path, records, edit), chunk_rows=chunk_rows)


def test_missing_file_and_empty_file(tmp_path: Path, records: pd.DataFrame):
    with pytest.raises(FlowError, match="does not exist"):
        read_netflow(tmp_path / "nope.csv")
    records.head(0).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(ConfigError, match="no records"):
        read_netflow(tmp_path / "empty.csv")


def test_attack_names_are_canonicalised():
    names = pd.Series(["BENIGN", "benign", "Infilteration", "ddos", "DDoS", " Benign "])
    assert canonical_attack(names).tolist() == [
        "Benign",
        "Benign",
        "Infiltration",
        "ddos",
        "ddos",
        "Benign",
    ]


def test_shipped_nf_synth_is_schema_exact_with_every_attack_in_the_test_part():
    from flow_nids.data.sources import load_records
    from flow_nids.data.synthetic import ATTACK_CLASSES

    table = load_records("nf-synth")
    assert table.schema == "NF-v2" and len(table.frame) > 10_000
    tail = table.frame.iloc[int(len(table.frame) * 0.7) :]  # the default test part
    assert set(ATTACK_CLASSES) <= set(tail["Attack"])
    assert set(table.frame["Attack"]) == {"Benign", *ATTACK_CLASSES}
