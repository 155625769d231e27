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
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_dangling_latest_pointer(tmp_path):
    (tmp_path / "latest").write_text("step-00000099")
    with pytest.raises(CheckpointError, match="does not exist"):
        latest_checkpoint(tmp_path)
