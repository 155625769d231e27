"""robomimic HDF5 round trip, clear errors on malformed files, and chunking."""

import h5py
import numpy as np
import pytest

from flow_core.errors import ConfigError
from flow_robotics.data.demos import chunk_pairs
from flow_robotics.data.robomimic import Demo, Demos, read_demos, write_demos


def _demos() -> Demos:
    rng = np.random.default_rng(0)
    demos = [
        Demo(
            rng.normal(size=(steps, 6)).astype(np.float32),
            rng.uniform(-1, 1, size=(steps, 2)).astype(np.float32),
            rng.normal(size=steps).astype(np.float32),
            mode,
        )
        for steps, mode in ((5, -1), (7, 1), (4, 1), (6, -1))
    ]
    return Demos(demos, {"env_name": "reach-v3", "type": "metaworld"})


def test_round_trip_keeps_every_array_and_the_layout(tmp_path):
    path = tmp_path / "demo.hdf5"
    original = _demos()
    write_demos(path, original, valid_fraction=0.25)
    with h5py.File(path, "r") as handle:  # robomimic's layout
        assert {"data", "mask"} <= set(handle)
        assert set(handle["data/demo_1"]) >= {"obs", "actions", "rewards", "dones"}
        assert handle["data"].attrs["total"] == 22
        assert [n.decode() for n in handle["mask/valid"][()]] == ["demo_0"]
    back = read_demos(path)
    assert back.env_name == "reach-v3" and back.obs_keys == ("state",)
    for a, b in zip(original.demos, back.demos, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        assert a.mode == b.mode
    assert len(read_demos(path, split="train").demos) == 3


def test_a_users_file_with_several_obs_keys_is_concatenated(tmp_path):
    path = tmp_path / "lift.hdf5"
    with h5py.File(path, "w") as handle:
        handle.create_group("data").attrs["env_args"] = '{"env_name": "Lift"}'
        for i in range(2):
            handle.create_dataset(f"data/demo_{i}/obs/robot0_eef_pos", data=np.ones((3, 3)))
            handle.create_dataset(f"data/demo_{i}/obs/object", data=np.zeros((3, 10)))
            handle.create_dataset(f"data/demo_{i}/obs/agentview_image", data=np.zeros((3, 4, 4, 3)))
            handle.create_dataset(f"data/demo_{i}/actions", data=np.zeros((3, 7)))
    demos = read_demos(path)
    assert demos.obs_keys == ("object", "robot0_eef_pos")  # images left out
    assert demos.demos[0].observations.shape == (3, 13)
    assert demos.env_name == "Lift"


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("data/demo_1/actions", "lacks 'data/demo_1/actions'"),
        ("data/demo_0/obs", "lacks 'data/demo_0/obs'"),
        ("data/demo_0/obs/state", "lacks 'data/demo_0/obs/state'"),
        ("data", "lacks 'data'"),
        ("mask/valid", "lacks 'mask/valid'"),
    ],
)
def test_malformed_files_name_the_missing_key(tmp_path, drop, message):
    path = tmp_path / "bad.hdf5"
    write_demos(path, _demos(), valid_fraction=0.25)
    with h5py.File(path, "a") as handle:
        del handle[drop]
    with pytest.raises(ConfigError, match=message):
        read_demos(path, obs_keys=("state",), split="valid" if drop == "mask/valid" else "")


def test_missing_and_non_hdf5_files_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_demos(tmp_path / "none.hdf5")
    (tmp_path / "text.hdf5").write_text("not hdf5")
    with pytest.raises(ConfigError, match="not an HDF5 file"):
        read_demos(tmp_path / "text.hdf5")


def test_chunks_repeat_the_first_observation_and_the_last_action():
    demo = Demo(
        np.arange(4, dtype=np.float32)[:, None],
        np.arange(4, dtype=np.float32)[:, None] * 10,
        np.zeros(4, dtype=np.float32),
    )
    cond, actions = chunk_pairs(Demos([demo]), history=2, chunk=3)
    assert cond.shape == (4, 2) and actions.shape == (4, 3)
    np.testing.assert_array_equal(cond[0], [0, 0])
    np.testing.assert_array_equal(cond[2], [1, 2])
    np.testing.assert_array_equal(actions[2], [20, 30, 30])
