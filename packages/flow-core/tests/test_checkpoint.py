import pytest
import torch

from flow_core.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from flow_core.errors import CheckpointError


def test_roundtrip_keeps_newest_and_is_weights_only(tmp_path):
    linear = torch.nn.Linear(3, 2)
    tied = {"a": linear.weight, "b": linear.weight}  # shared storage must still save
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, tied, {"step": step, "rng": torch.get_rng_state()}, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-00000020", "step-00000030"]
    path = latest_checkpoint(tmp_path)
    assert path is not None and path.name == "step-00000030"
    tensors, state = load_checkpoint(path)
    assert torch.equal(tensors["a"], linear.weight.detach())
    assert state["step"] == 30
    assert not list(tmp_path.glob(".*tmp"))


def test_no_checkpoint_yet(tmp_path):
    assert latest_checkpoint(tmp_path) is None


def test_corrupt_files_raise_checkpoint_error(tmp_path):
    path = save_checkpoint(tmp_path, 1, {"w": torch.ones(2)}, {"step": 1})
    (path / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="weights"):
        load_checkpoint(path)
    path = save_checkpoint(tmp_path, 2, {"w": torch.ones(2)}, {"step": 2})
    (path / "state.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="state"):
        load_checkpoint(path)


class Evil:
    """Any class: loading must refuse to instantiate it."""


def test_state_refuses_arbitrary_objects(tmp_path):
    path = save_checkpoint(tmp_path, 1, {"w": torch.ones(1)}, {"obj": Evil()})
    with pytest.raises(CheckpointError, match="refused: unsafe pickle content") as caught:
        load_checkpoint(path)
    assert "weights_only" not in str(caught.value)


def test_dangling_latest_pointer(tmp_path):
    (tmp_path / "latest").write_text("step-00000099")
    with pytest.raises(CheckpointError, match="missing or incomplete"):
        latest_checkpoint(tmp_path)


@pytest.mark.parametrize(
    ("pointer", "problem"),
    [
        ("", "is empty"),
        ("../run-b/checkpoints/step-00000001", "a path"),
        ("/tmp/step-00000001", "a path"),
        ("..", "a path"),
        ("step-1", "not a step directory"),
        ("step-00000001", "a symlink"),
    ],
)
def test_latest_never_leaves_its_run(tmp_path, pointer, problem):
    mine, other = tmp_path / "run-a" / "checkpoints", tmp_path / "run-b" / "checkpoints"
    outside = save_checkpoint(other, 1, {"w": torch.ones(1)}, {"step": 1})
    mine.mkdir(parents=True)
    if problem == "a symlink":
        (mine / "step-00000001").symlink_to(outside)
    (mine / "latest").write_text(pointer)
    with pytest.raises(CheckpointError, match=problem):
        latest_checkpoint(mine)
    # with a complete step of its own, the run falls back to it and warns
    own = save_checkpoint(mine, 2, {"w": torch.zeros(1)}, {"step": 2})
    (mine / "latest").write_text(pointer)
    with pytest.warns(UserWarning, match="newest complete checkpoint step-00000002"):
        assert latest_checkpoint(mine) == own


def test_missing_latest_falls_back_to_the_newest_complete_step(tmp_path):
    save_checkpoint(tmp_path, 1, {"w": torch.ones(1)}, {"step": 1}, keep=5)
    newest = save_checkpoint(tmp_path, 2, {"w": torch.ones(1)}, {"step": 2}, keep=5)
    (tmp_path / "latest").unlink()
    (tmp_path / "step-00000003").mkdir()  # incomplete: no files
    assert latest_checkpoint(tmp_path) == newest
