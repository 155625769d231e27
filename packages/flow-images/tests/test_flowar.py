"""FlowAR (images.flowar): the pyramid, scale shapes, block-causal conditions, a run."""

import numpy as np
import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_core.evaluation import evaluate_run
from flow_core.samplers import Euler
from flow_core.testing import run_task
from flow_images.flowar import FlowARModel, FlowARObjective, pyramid


def _digits(n=3):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _perturbed(model):
    """Random weights (the zero-initialised adaLN gates and outputs would hide dependencies)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator))
    return model


def test_pyramid_doubles_and_averages():
    x = _digits()
    scales = pyramid(x, (2, 4, 8))
    assert [tuple(s.shape) for s in scales] == [(3, 1, 2, 2), (3, 1, 4, 4), (3, 1, 8, 8)]
    assert torch.allclose(scales[0][:, :, 0, 0], x[:, :, :4, :4].mean(dim=(2, 3)), atol=1e-6)
    assert torch.equal(scales[-1], x)
    with pytest.raises(FlowError, match="images must be"):
        pyramid(torch.zeros(1, 1, 16, 16), (2, 4, 8))


def test_scale_shapes_of_conditions_heads_and_samples():
    model = FlowARModel(1, (2, 4, 8), 10, width=16, depth=1, heads=2, head_depth=1)
    scales = pyramid(_digits(), model.scales)
    labels = torch.tensor([0, 3, 9])
    conditions = model.conditions(scales, labels)
    assert [tuple(c.shape) for c in conditions] == [(3, 4, 16), (3, 16, 16), (3, 64, 16)]
    for head, x, c in zip(model.heads, scales, conditions, strict=True):
        assert head(x, torch.rand(3), c).shape == x.shape
    noise = [torch.randn(3, 1, s, s) for s in model.scales]
    assert model.sample(noise, labels, Euler(steps=2)).shape == (3, 1, 8, 8)
    with pytest.raises(ConfigError, match="double the previous"):
        FlowARModel(1, (2, 3, 8))


def test_condition_of_a_scale_ignores_that_scale_and_finer_ones():
    model = _perturbed(FlowARModel(1, (2, 4, 8), 10, width=16, depth=2, heads=2, head_depth=1))
    scales = pyramid(_digits(), model.scales)
    labels = torch.tensor([1, 2, 3])
    before = model.conditions(scales, labels)
    changed = [scales[0], scales[1] + 1.0, scales[2] - 1.0]
    after = model.conditions(changed, labels)
    assert torch.allclose(before[0], after[0], atol=1e-6)
    assert torch.allclose(before[1], after[1], atol=1e-6)  # scale 2's input is scale 1 only
    assert not torch.allclose(before[2], after[2], atol=1e-3)  # scale 3 sees scale 2


def test_objective_reports_a_loss_per_scale():
    model = FlowARModel(1, (2, 4, 8), 10, width=16, depth=1, heads=2, head_depth=1)
    batch = {"x1": _digits(), "cond": torch.tensor([0, 1, 2])}
    loss, metrics = FlowARObjective(cond_dropout=0.5)(model, batch)
    assert loss.ndim == 0 and {"loss_scale2", "loss_scale4", "loss_scale8"} <= set(metrics)


def test_flowar_runs_end_to_end(tmp_path):
    options = {
        "steps": 3,
        "batch_size": 8,
        "width": 16,
        "depth": 1,
        "head_depth": 1,
        "heads": 2,
        "eval_samples": 20,
        "sample_steps": 1,
        "steps_sweep": "(1, 2)",
        "checkpoint_every": 0,
        "log_every": 1,
    }
    metrics = run_task("images.flowar", tmp_path / "run", options)
    assert metrics["nfe"] == 3
    for key in ("fd", "accuracy", "fd_nfe3", "fd_nfe6", "parameters", "fd_floor"):
        assert key in metrics
    assert (tmp_path / "run" / "figures" / "samples.png").stat().st_size > 0
    folder, counts = evaluate_run(
        tmp_path / "run", mode="sample", count=12, device="cpu", show_progress=False
    )
    assert counts == {"images_count": 12.0, "labels_count": 12.0}
    images = np.load(folder / "images.npy")
    assert images.shape == (12, 1, 8, 8) and np.abs(images).max() <= 1.0 and images.std() > 0
    assert np.array_equal(np.load(folder / "labels.npy"), np.arange(12) % 10)
    assert (folder / "figures" / "samples.png").stat().st_size > 0
