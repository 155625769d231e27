"""The Feather pulsar-file reader: a round trip through the layout NANOGrav's files use, and
its errors on bad files."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from pyarrow import feather

from flow_physics.data.feather import read_feather_folder
from flow_physics.data.partim import PartimError
from flow_physics.data.synthetic import SyntheticConfig, make_array


def _write(path, pulsar, offset, noisedict=None, drop=()):
    columns = {
        "toas": pulsar.toas + offset,
        "toaerrs": pulsar.toaerrs,
        "residuals": pulsar.residuals,
        "backend_flags": np.where(np.arange(len(pulsar.toas)) % 2 == 0, "A", "B"),
    }
    columns |= {
        f"Mmat_{i}": pulsar.design_matrix[:, i] for i in range(pulsar.design_matrix.shape[1])
    }
    meta = {"name": pulsar.name, "pos": (2 * pulsar.position).tolist()}
    if noisedict is not None:
        meta["noisedict"] = noisedict
    table = pa.table({k: v for k, v in columns.items() if k not in drop})
    table = table.replace_schema_metadata({"json": json.dumps(meta)})
    feather.write_feather(table, str(path))


def test_round_trip_with_noise_and_choice_by_timing(tmp_path):
    array = make_array(SyntheticConfig(n_pulsars=3, years=5.0), seed=3)
    offset = 53000 * 86400.0
    first = array.pulsars[0].name
    noise = {f"{first}_A_efac": 2.0, f"{first}_B_log10_tnequad": -6.0, f"{first}_A_log10_ecorr": -7}
    for index, pulsar in enumerate(array.pulsars):
        _write(
            tmp_path / f"v1-{pulsar.name}.feather", pulsar, offset, noise if index == 0 else None
        )
    read = read_feather_folder(tmp_path)
    assert sorted(p.name for p in read.pulsars) == sorted(p.name for p in array.pulsars)
    assert read.notes == [
        f"ECORR (jitter) given for {first} is not used: the white noise is diagonal"
    ]
    got = {p.name: p for p in read.pulsars}
    for index, pulsar in enumerate(array.pulsars):
        mine = got[pulsar.name]
        np.testing.assert_allclose(mine.toas + read.origin_mjd * 86400.0, pulsar.toas + offset)
        np.testing.assert_allclose(mine.residuals, pulsar.residuals)
        np.testing.assert_allclose(mine.position, pulsar.position)
        scale = np.linalg.norm(pulsar.design_matrix, axis=0)
        np.testing.assert_allclose(mine.design_matrix, pulsar.design_matrix / scale)
        expected = pulsar.toaerrs.copy()
        if index == 0:
            expected[0::2] *= 2.0
            expected[1::2] = np.sqrt(expected[1::2] ** 2 + 1e-12)
        np.testing.assert_allclose(mine.toaerrs, expected)
    best = min(
        array.pulsars,
        key=lambda p: (
            np.sum(p.residuals**2 / got[p.name].toaerrs ** 2) / np.sum(got[p.name].toaerrs ** -2.0)
        ),
    )
    assert [p.name for p in read_feather_folder(tmp_path, 1).pulsars] == [best.name]


def test_bad_feather_files_name_the_file(tmp_path):
    pulsar = make_array(SyntheticConfig(n_pulsars=1, years=5.0), seed=0).pulsars[0]
    with pytest.raises(PartimError, match="no .feather files"):
        read_feather_folder(tmp_path)
    _write(tmp_path / "a.feather", pulsar, 0.0, drop=("residuals",))
    with pytest.raises(PartimError, match=r"a.feather: no column\(s\) \['residuals'\]"):
        read_feather_folder(tmp_path)
    _write(tmp_path / "a.feather", pulsar, 0.0, noisedict={f"{pulsar.name}_A_efac": 1.1})
    with pytest.raises(PartimError, match=r"a.feather: no white noise for backend\(s\) \['B'\]"):
        read_feather_folder(tmp_path)
    (tmp_path / "a.feather").write_bytes(b"not arrow")
    with pytest.raises(PartimError, match="a.feather: not a readable Feather file"):
        read_feather_folder(tmp_path)
