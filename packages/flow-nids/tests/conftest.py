"""Shared fixtures of the flow-nids tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flow_nids.data.synthetic import synthetic_netflow


@pytest.fixture(scope="session")
def records() -> pd.DataFrame:
    """3000 schema-exact synthetic NF-v2 records."""
    return synthetic_netflow(3000, seed=1)


@pytest.fixture
def csv_file(tmp_path: Path, records: pd.DataFrame) -> Path:
    """The records as an NF-v2 CSV file."""
    path = tmp_path / "flows.csv"
    records.to_csv(path, index=False)
    return path
