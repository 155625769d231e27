import numpy as np
import pytest
from skimage.io import imsave

from flow_core.errors import ConfigError
from flow_sceneflow.data.optical import FIELDS, load_pair, read_flo, stereo_pair, warp_pair
from flow_sceneflow.optical.reynolds import warp_image
from flow_sceneflow.optical.validation import OpticalInputError


@pytest.mark.parametrize("field", [f for f in FIELDS if f != "lighting"])
def test_warped_pairs_satisfy_their_ground_truth(field):
    pair = warp_pair("coffee", field, size=64, magnitude=3.0, seed=3)
    valid = ~np.isnan(pair.truth).any(axis=2)
    assert valid.mean() > 0.8
    assert np.nanmax(np.linalg.norm(pair.truth, axis=2)) <= 3.0 * np.sqrt(2) + 1e-9
    back = warp_image(pair.image1, np.nan_to_num(pair.truth))
    assert np.abs(back - pair.image0)[valid].mean() < 0.02  # bilinear vs the cubic warp
    assert "synthetic" in pair.description


def test_warps_are_seeded():
    a, b = warp_pair("camera", "smooth", 48, seed=5), warp_pair("camera", "smooth", 48, seed=5)
    np.testing.assert_array_equal(a.truth, b.truth)
    assert not np.array_equal(a.truth, warp_pair("camera", "smooth", 48, seed=6).truth)


def test_stereo_pair_flow_is_minus_disparity():
    pair = stereo_pair(downscale=4)
    assert pair.image0.shape == (125, 185) and pair.truth.shape == (125, 185, 2)
    valid = ~np.isnan(pair.truth).any(axis=2)
    assert 0.7 < valid.mean() < 0.99  # k×k blocks touching an invalid pixel drop out
    assert np.all(pair.truth[valid][:, 1] == 0.0) and np.all(pair.truth[valid][:, 0] < 0)
    back = warp_image(pair.image1, np.nan_to_num(pair.truth))
    assert (
        np.abs(back - pair.image0)[valid].mean() < np.abs(pair.image1 - pair.image0)[valid].mean()
    )


def test_bad_data_settings_are_refused():
    with pytest.raises(ConfigError, match="unknown warp field"):
        warp_pair("camera", "spiral")
    with pytest.raises(ConfigError, match="unknown source image"):
        warp_pair("lena", "affine")
    with pytest.raises(ConfigError, match="warp_size"):
        warp_pair("camera", "affine", size=8)
    with pytest.raises(ConfigError, match="stereo_downscale"):
        stereo_pair(0)


def _write_flo(path, flow):
    height, width = flow.shape[:2]
    with open(path, "wb") as handle:
        np.array([202021.25], "<f4").tofile(handle)
        np.array([width, height], "<i4").tofile(handle)
        flow.astype("<f4").tofile(handle)


def test_user_files_load_with_npy_or_flo_ground_truth(tmp_path):
    pair = warp_pair("camera", "translation", size=40)
    for name, image in (("a.png", pair.image0), ("b.png", pair.image1)):
        imsave(tmp_path / name, np.round(image * 255).astype(np.uint8), check_contrast=False)
    np.save(tmp_path / "gt.npy", pair.truth)
    flo = np.nan_to_num(pair.truth, nan=1e10)
    _write_flo(tmp_path / "gt.flo", flo)
    loaded = load_pair(tmp_path / "a.png", tmp_path / "b.png", tmp_path / "gt.npy")
    assert loaded.image0 == pytest.approx(pair.image0, abs=1 / 255)
    np.testing.assert_array_equal(np.isnan(loaded.truth), np.isnan(pair.truth))
    from_flo = read_flo(tmp_path / "gt.flo")
    np.testing.assert_allclose(from_flo, pair.truth, atol=1e-5)
    assert load_pair(tmp_path / "a.png", tmp_path / "b.png").truth is None


def test_bad_user_files_are_refused(tmp_path):
    imsave(tmp_path / "a.png", np.zeros((20, 20), np.uint8), check_contrast=False)
    imsave(tmp_path / "b.png", np.zeros((20, 24), np.uint8), check_contrast=False)
    imsave(tmp_path / "c.png", np.zeros((20, 20), np.uint8), check_contrast=False)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    (tmp_path / "bad.flo").write_bytes(b"\x00" * 20)
    np.save(tmp_path / "small.npy", np.zeros((10, 10, 2)))
    with pytest.raises(OpticalInputError, match="not found"):
        load_pair(tmp_path / "a.png", tmp_path / "missing.png")
    with pytest.raises(OpticalInputError, match="same size"):
        load_pair(tmp_path / "a.png", tmp_path / "b.png")
    with pytest.raises(OpticalInputError, match="cannot read"):
        load_pair(tmp_path / "a.png", tmp_path / "junk.png")
    with pytest.raises(OpticalInputError, match="covers 10x10"):
        load_pair(tmp_path / "a.png", tmp_path / "c.png", tmp_path / "small.npy")
    with pytest.raises(OpticalInputError, match="magic"):
        load_pair(tmp_path / "a.png", tmp_path / "c.png", tmp_path / "bad.flo")
    with pytest.raises(OpticalInputError, match=r"\.npy"):
        load_pair(tmp_path / "a.png", tmp_path / "c.png", tmp_path / "c.png")
