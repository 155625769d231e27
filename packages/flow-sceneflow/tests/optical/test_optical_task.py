import json

import numpy as np
import pytest
from skimage.io import imsave

import flow_sceneflow.plugin
from flow_core.errors import ConfigError
from flow_core.testing import isolated_registry, run_task
from flow_sceneflow.data.optical import warp_pair

SMALL = {
    "methods": "reynolds,ilk",
    "stereo_downscale": 4,
    "warp_sources": "camera",
    "warp_fields": "translation,lighting",
    "warp_size": 64,
    "warp_magnitude": 3.0,
}


@pytest.fixture(scope="module")
def registry():
    return isolated_registry(flow_sceneflow.plugin)


def test_task_scores_the_bundled_pairs_and_draws_them(tmp_path, registry):
    metrics = run_task("sceneflow.optical", tmp_path, SMALL, registry=registry)
    for pair in ("stereo-1/4", "camera-translation", "camera-lighting"):
        for method in ("reynolds", "ilk"):
            assert np.isfinite(metrics[f"{pair}.{method}.epe"])
            assert 0.0 <= metrics[f"{pair}.{method}.outliers"] <= 1.0
    assert metrics["camera-translation.reynolds.epe"] < 0.5
    assert metrics["mean.reynolds.epe"] == pytest.approx(
        np.mean(
            [
                metrics[f"{p}.reynolds.epe"]
                for p in ("stereo-1/4", "camera-translation", "camera-lighting")
            ]
        )
    )
    assert json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(metrics)
    assert (tmp_path / "figures" / "flow-camera-lighting.png").stat().st_size > 0
    report = (tmp_path / "report.md").read_text()
    assert "Flow error per pair" in report and "synthetic" in report


def test_task_runs_on_user_files(tmp_path, registry):
    pair = warp_pair("coffee", "affine", size=48, magnitude=2.0)
    for name, image in (("a.png", pair.image0), ("b.png", pair.image1)):
        imsave(tmp_path / name, np.round(image * 255).astype(np.uint8), check_contrast=False)
    np.save(tmp_path / "gt.npy", pair.truth)
    files = {"data": "files", "image0": tmp_path / "a.png", "image1": tmp_path / "b.png"}
    scored = run_task(
        "sceneflow.optical",
        tmp_path / "scored",
        {**files, "truth_flow": tmp_path / "gt.npy", "methods": "reynolds,tvl1"},
        registry=registry,
    )
    assert scored["files.reynolds.epe"] < 1.0 and "mean.tvl1.epe" in scored
    unscored = run_task(
        "sceneflow.optical",
        tmp_path / "unscored",
        {**files, "methods": "reynolds"},
        registry=registry,
    )
    assert set(unscored) == {"files.reynolds.photometric"}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"data": "files"}, "needs both image0 and image1"),
        ({"methods": "reynolds,raft"}, "unknown method 'raft'"),
        ({"warp_fields": "spiral"}, "unknown warp field"),
        ({"image0": "a.png"}, "only with data='files'"),
        ({"stereo_downscale": 0, "warp_sources": ""}, "no pair selected"),
        ({"floor": 0}, "floor"),
    ],
)
def test_bad_config_is_refused_before_work(tmp_path, registry, overrides, match):
    with pytest.raises(ConfigError, match=match):
        run_task("sceneflow.optical", tmp_path, overrides, registry=registry)


def test_farneback_is_skipped_with_a_note_without_opencv(tmp_path, registry, monkeypatch):
    import flow_sceneflow.tasks.optical as task_module

    monkeypatch.setattr(task_module, "has_opencv", lambda: False)
    tiny = {**SMALL, "stereo_downscale": 0, "warp_fields": "translation", "figures": False}
    metrics = run_task(
        "sceneflow.optical", tmp_path / "a", {**tiny, "methods": "ilk,farneback"}, registry=registry
    )
    assert "camera-translation.ilk.epe" in metrics
    assert not any("farneback" in key for key in metrics)
    assert "Farneback was skipped" in (tmp_path / "a" / "report.md").read_text()
    with pytest.raises(ConfigError, match=r"flow-sceneflow\[opencv\]"):
        run_task(
            "sceneflow.optical",
            tmp_path / "b",
            {**tiny, "methods": "reynolds", "reynolds_base": "farneback"},
            registry=registry,
        )
