"""images.digits and images.patches end to end: valid run directories for every method."""

import json

import pytest
import torch

from flow_core.errors import ConfigError
from flow_core.testing import run_task
from flow_images.tasks.generation import GenerationConfig, ImageGeneration

TINY = {
    "steps": 6,
    "base_channels": 8,
    "eval_samples": 40,
    "sample_steps": 2,
    "batch_size": 16,
    "nfe_sweep": "(1, 4)",
    "checkpoint_every": 0,
    "log_every": 2,
    "choose": "false",  # the configured sampler; the choice has its own tests
}


def tiny(**options):
    """TINY with ``options``, holding only the settings the chosen methods use (a setting
    that nothing in the run uses is refused)."""
    config = {**TINY, **options}
    if str(config.get("flow", "")).startswith("dit"):
        del config["base_channels"]
        config.update(width=16, depth=1)
    if config.get("objective") == "nll":  # coupling flow, inverse sampler
        config.pop("base_channels")
        config.pop("sample_steps", None)
    if config.get("sampler") in ("dopri5", "flowturbo"):
        config.pop("sample_steps", None)
    if config.get("objective") == "boss" or config.get("sampler") == "flowturbo":
        config["finetune_steps"] = 3
    if config.get("reflow_rounds"):
        config.update(finetune_steps=3, reflow_pairs=16)
    return config


def _valid_run_directory(path, metrics):
    assert json.loads((path / "metrics.json").read_text()) == metrics
    assert json.loads((path / "status.json").read_text())["state"] == "finished"
    report = (path / "report.md").read_text()
    for figure in ("samples.png", "test_images.png"):
        assert (path / "figures" / figure).stat().st_size > 0
        assert figure in report
    assert all(isinstance(v, float) for v in metrics.values())


def test_digits_default_method_end_to_end(tmp_path):
    metrics = run_task("images.digits", tmp_path / "run", tiny())
    _valid_run_directory(tmp_path / "run", metrics)
    for key in ("fd", "fd_floor", "accuracy", "precision", "recall", "nfe"):
        assert key in metrics
    assert metrics["nfe"] == 2  # guided Euler: each call of the guided field counts once
    assert metrics["fd_floor"] < metrics["fd"]  # 6 training steps are far from the data
    assert "fd_euler_nfe1" in metrics and "fd_heun_nfe4" in metrics
    assert any(k.startswith("fd_dopri5_nfe") for k in metrics)
    assert (tmp_path / "run" / "figures" / "fd_vs_nfe.png").exists()
    assert (tmp_path / "run" / "figures" / "accuracy_vs_nfe.png").exists()


@pytest.mark.parametrize(
    ("options", "nfe"),
    [
        ({"objective": "ot-cfm"}, 2),
        ({"objective": "w-cfm", "sampler": "heun"}, 4),
        ({"objective": "meanflow"}, 2),
        ({"objective": "split-meanflow", "flow": "dit-average"}, 2),
        ({"objective": "nll"}, 1),
        ({"objective": "boss", "grid": "bellman"}, 2),
        ({"objective": "cfm", "reflow_rounds": 1, "reflow_sampler": "euler"}, 2),
        (
            {
                "objective": "cfm",
                "sampler": "flowturbo",
                "heun_steps": 1,
                "pseudo_steps": 1,
                "refiner_steps": 1,
            },
            3,
        ),
        ({"objective": "cfm", "flow": "dit", "sampler": "dopri5"}, None),
    ],
)
def test_digits_every_method_runs(tmp_path, options, nfe):
    metrics = run_task("images.digits", tmp_path / "run", tiny(**options))
    _valid_run_directory(tmp_path / "run", metrics)
    if nfe is not None:
        assert metrics["nfe"] == nfe
    assert metrics["fd"] > 0 and 0 <= metrics["accuracy"] <= 1


def test_patches_unconditional_end_to_end(tmp_path):
    metrics = run_task("images.patches", tmp_path / "run", tiny(nfe_sweep="()"))
    _valid_run_directory(tmp_path / "run", metrics)
    assert "accuracy" not in metrics
    assert metrics["fd"] > metrics["fd_floor"]


def test_patches_on_a_users_folder(tmp_path):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    generator = torch.Generator().manual_seed(0)
    for i in range(25):
        pixels = (torch.rand(20, 24, 3, generator=generator) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"img{i:02d}.png")
    options = tiny(folder=str(folder), size=16, nfe_sweep="()", eval_samples=8)
    metrics = run_task("images.patches", tmp_path / "run", options)
    _valid_run_directory(tmp_path / "run", metrics)


@pytest.mark.parametrize(
    "options",
    [
        {"objective": "meanflow", "sampler": "euler"},  # sampler for another model kind
        {"objective": "meanflow", "reflow_rounds": 1},  # reflow needs a velocity model
        {"objective": "nll", "sampler": "flowturbo"},  # FlowTurbo needs a velocity model
        {"sampler": "flowturbo", "reflow_rounds": 1},  # one second stage at a time
        {"steps": 0},
        {"guidance_weight": "big"},
        {"objective": "flowturbo-refiner"},  # a stage of FlowTurbo, not a method of its own
        {"width": 32},  # a DiT option while the network is the U-Net
        {"rtol": 1e-3},  # an adaptive solver's option while the sampler is Euler
        {"perceptual_weight": 2.0},  # 2-RF++'s perceptual term without reflow
        {"eval_samples": 1},  # the Fréchet distance needs a covariance
    ],
)
def test_bad_configs_are_refused_before_training(tmp_path, options):
    from flow_core.errors import FlowError

    with pytest.raises(FlowError) as raised:
        run_task("images.digits", tmp_path / "run", tiny(**options))
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert str(raised.value)


def test_guidance_weight_zero_is_the_conditional_model():
    from flow_images.networks.unet import UNetVelocity

    torch.manual_seed(0)
    model = UNetVelocity(in_channels=1, image_size=8, num_classes=10, base_channels=8).eval()
    data = type("Data", (), {"num_classes": 10})()
    x = torch.randn(6, 1, 8, 8)
    t = torch.rand(6)
    labels = torch.arange(6)
    unguided = ImageGeneration._guided(GenerationConfig(guidance_weight=0.0), model, data)
    guided = ImageGeneration._guided(GenerationConfig(guidance_weight=2.0), model, data)
    with torch.no_grad():
        assert unguided is model
        conditional = model(x, t, labels)
        nulls = model(x, t, None)
        assert torch.allclose(
            guided(x, t, labels), conditional + 2.0 * (conditional - nulls), atol=1e-5
        )


def test_guidance_sweep_resamples_the_conditional_model(tmp_path):
    options = tiny(nfe_sweep="()", guidance_sweep="(0, 1, 3)")
    metrics = run_task("images.digits", tmp_path / "run", options)
    # w = 1 is the default guidance weight, on the same noise: the main measurement again
    assert metrics["fd_guidance_w1"] == pytest.approx(metrics["fd"])
    assert metrics["accuracy_guidance_w1"] == pytest.approx(metrics["accuracy"])
    assert len({metrics[f"fd_guidance_w{w}"] for w in (0, 1, 3)}) == 3
    unguided = run_task("images.digits", tmp_path / "w0", {**options, "guidance_weight": 0})
    assert unguided["fd_guidance_w0"] == pytest.approx(unguided["fd"])
    assert unguided["fd_guidance_w3"] == pytest.approx(metrics["fd_guidance_w3"])
    assert (tmp_path / "run" / "figures" / "guidance.png").stat().st_size > 0
    assert "guidance.png" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.parametrize(
    "options",
    [
        {"reflow_rounds": 1, "reflow_sampler": "euler"},  # the student carries the guidance
        {"objective": "meanflow"},  # an average-velocity model
    ],
)
def test_no_guidance_sweep_where_guidance_does_not_apply(tmp_path, options):
    sweep = {"nfe_sweep": "()", "guidance_sweep": "(0, 1)"}
    metrics = run_task("images.digits", tmp_path / "run", tiny(**sweep, **options))
    assert not any(key.startswith("fd_guidance") for key in metrics)


def test_config_checks():
    with pytest.raises(ConfigError, match="choose=true .* validation_fraction=0"):
        GenerationConfig(validation_fraction=0.0)
    with pytest.raises(ConfigError, match="validation_fraction must be in"):
        GenerationConfig(validation_fraction=1.0)
    with pytest.raises(ConfigError, match="nfe_sweep"):
        GenerationConfig(nfe_sweep=(0,))
    with pytest.raises(ConfigError, match="guidance_sweep"):
        GenerationConfig(guidance_sweep=(-1.0,))
    with pytest.raises(ConfigError, match="cond_dropout"):
        GenerationConfig(cond_dropout=1.0)


@pytest.fixture
def evaluated(monkeypatch):
    """The models the task hands to evaluate_generation, in call order."""
    from flow_images.tasks import generation

    models = []
    evaluate = generation.evaluate_generation

    def record(ctx, config, model, *args, **kwargs):
        models.append(model)
        return evaluate(ctx, config, model, *args, **kwargs)

    monkeypatch.setattr(generation, "evaluate_generation", record)
    return models


def test_reflow_distils_guidance_into_the_student(tmp_path, monkeypatch, evaluated):
    """Round-1 pairs come from the guided teacher; the student is then sampled unguided."""
    from flow_core import recipes
    from flow_core.samplers.guidance import ClassifierFreeGuidance

    sources = []
    pairs = recipes._pairs

    def record_pairs(ctx, config, teacher, *args):
        sources.append(teacher)
        return pairs(ctx, config, teacher, *args)

    monkeypatch.setattr(recipes, "_pairs", record_pairs)
    options = tiny(reflow_rounds=2, reflow_sampler="euler", guidance_weight=1.5)
    run_task("images.digits", tmp_path / "run", options)
    assert isinstance(sources[0], ClassifierFreeGuidance)
    assert sources[0].guidance_weight == 1.5
    assert not isinstance(sources[1], ClassifierFreeGuidance)  # round 2: already distilled
    assert not isinstance(evaluated[0], ClassifierFreeGuidance)
    assert "sampled without guidance" in (tmp_path / "run" / "report.md").read_text()


def test_boss_straightens_onto_the_guided_teacher(tmp_path, monkeypatch, evaluated):
    """BOSS's grid and reference trajectories come from the guided teacher; sampled unguided."""
    from flow_core.objectives.boss import BossStraightening
    from flow_core.samplers.guidance import ClassifierFreeGuidance

    teachers = []
    prepare = BossStraightening.prepare

    def record_prepare(self, teacher, grid):
        teachers.append(teacher)
        prepare(self, teacher, grid)

    monkeypatch.setattr(BossStraightening, "prepare", record_prepare)
    run_task("images.digits", tmp_path / "run", tiny(objective="boss", grid="bellman"))
    assert isinstance(teachers[0], ClassifierFreeGuidance)
    assert not isinstance(evaluated[0], ClassifierFreeGuidance)
    run_task("images.digits", tmp_path / "w0", tiny(objective="boss", guidance_weight=0))
    assert not isinstance(teachers[1], ClassifierFreeGuidance)
    assert "sampled without guidance" not in (tmp_path / "w0" / "report.md").read_text()


def test_a_folder_too_small_for_the_metrics_is_refused_before_training(tmp_path):
    from PIL import Image

    from flow_core.errors import ConfigError

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(10):  # every 5th file is a test image: 2 test images, 4 are needed
        Image.new("RGB", (12, 12), (20 * i, 0, 0)).save(folder / f"img{i:02d}.png")
    with pytest.raises(ConfigError, match="test split of folder holds 2 image"):
        run_task("images.patches", tmp_path / "run", tiny(folder=str(folder), size=8))
    assert not (tmp_path / "run").exists()
