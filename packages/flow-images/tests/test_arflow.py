"""ARFlow (images.arflow): hybrid attention, causal masks, same-class sequences, a run."""

import numpy as np
import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_core.evaluation import evaluate_run
from flow_core.testing import run_task
from flow_images.arflow import (
    ARFlowModel,
    ARFlowObjective,
    HybridAttention,
    chunked_linear_attention,
    naive_linear_attention,
    sequence_times,
)
from flow_images.arflow.attention import cross_image_mask, same_image_mask
from flow_images.data import load_dataset
from flow_images.tasks.arflow import class_sequences


def _qkv(images=5, tokens=3, heads=2, width=4, dtype=torch.float64):
    generator = torch.Generator().manual_seed(0)
    shape = (2, heads, images * tokens, width)
    return [torch.randn(shape, generator=generator, dtype=dtype) for _ in range(3)]


def test_chunked_linear_attention_equals_its_naive_form():
    q, k, v = _qkv()
    chunked = chunked_linear_attention(q, k, v, chunk=3)
    naive = naive_linear_attention(q, k, v, chunk=3)
    assert torch.allclose(chunked, naive, atol=1e-10)
    assert torch.all(chunked[:, :, :3] == 0)  # the first image has no predecessors
    with pytest.raises(FlowError, match="T = 4"):
        chunked_linear_attention(q, k, v, chunk=4)


def test_masks_are_causal_across_images_and_full_within():
    across, within = cross_image_mask(3, 2), same_image_mask(3, 2)
    expected_across = torch.tensor(
        [[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0],
         [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0]],
        dtype=torch.bool,
    )  # fmt: skip
    assert torch.equal(across, expected_across)
    assert torch.equal(within, torch.block_diag(*[torch.ones(2, 2)] * 3).bool())
    assert not (across & within).any()


def _perturbed(module):
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator))
    return module


def test_hybrid_attention_never_looks_at_later_images():
    attention = HybridAttention(8, 2, tokens_per_image=4)
    x = torch.randn(2, 3 * 4, 8, generator=torch.Generator().manual_seed(0))
    out = attention(x)
    later = x.clone()
    later[:, 8:] += 1.0  # change image 3
    assert torch.allclose(attention(later)[:, :8], out[:, :8], atol=1e-6)
    earlier = x.clone()
    earlier[:, :4] += 1.0  # change image 1: images 2 and 3 see it
    assert not torch.allclose(attention(earlier)[:, 4:8], out[:, 4:8], atol=1e-4)


def test_model_velocity_of_an_image_depends_on_predecessors_only():
    model = _perturbed(ARFlowModel(1, 8, 10, patch_size=2, width=16, depth=2, heads=2))
    x = torch.randn(2, 3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([[0.1, 0.4, 0.8]] * 2)
    cond = torch.tensor([2, 7])
    out = model(x, t, cond)
    assert out.shape == x.shape
    later = x.clone()
    later[:, 2] += 1.0
    assert torch.allclose(model(later, t, cond)[:, :2], out[:, :2], atol=1e-5)
    earlier = x.clone()
    earlier[:, 0] += 1.0
    assert not torch.allclose(model(earlier, t, cond)[:, 1:], out[:, 1:], atol=1e-3)
    with pytest.raises(FlowError, match="x must be"):
        model(x[:, 0], t, cond)
    assert model.sample(x[:, 0], cond, steps=3).shape == (2, 1, 8, 8)


def test_sequences_are_same_class_at_increasing_times():
    data = load_dataset("digits", "train")
    batch = class_sequences(data, 6, 4, torch.Generator().manual_seed(0))
    assert batch["x1"].shape == (6, 4, 1, 8, 8)
    for sequence, label in zip(batch["x1"], batch["cond"], strict=True):
        for image in sequence:
            index = torch.nonzero((data.images == image).flatten(1).all(dim=1)).flatten()
            assert int(data.labels[index[0]]) == int(label)
    times = sequence_times(500, 4)
    assert torch.all(times[:, 1:] > times[:, :-1])
    assert torch.all((times >= torch.arange(4) / 4) & (times < (torch.arange(4) + 1) / 4))
    loss, _ = ARFlowObjective()(ARFlowModel(1, 8, 10, width=16, depth=1, heads=2), batch)
    assert loss.ndim == 0


def test_arflow_runs_end_to_end_and_checks_its_sweep(tmp_path):
    options = {
        "steps": 3,
        "batch_size": 4,
        "sequence_length": 3,
        "width": 16,
        "depth": 1,
        "heads": 2,
        "eval_samples": 20,
        "steps_sweep": "(1,)",
        "checkpoint_every": 0,
        "log_every": 1,
    }
    metrics = run_task("images.arflow", tmp_path / "run", options)
    assert metrics["nfe"] == 3
    for key in ("fd", "accuracy", "fd_nfe1", "fd_nfe3", "parameters"):
        assert key in metrics
    with pytest.raises(ConfigError, match="steps_sweep"):
        run_task("images.arflow", tmp_path / "bad", {**options, "steps_sweep": "(5,)"})
    folder, _ = evaluate_run(
        tmp_path / "run", mode="sample", count=12, device="cpu", show_progress=False
    )
    images = np.load(folder / "images.npy")
    assert images.shape == (12, 1, 8, 8) and np.abs(images).max() <= 1.0 and images.std() > 0
    assert np.array_equal(np.load(folder / "labels.npy"), np.arange(12) % 10)
    assert "3 NFE per sample" in (folder / "report.md").read_text()
