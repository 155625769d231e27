"""Evaluation and report of a trained image flow: metrics, the NFE sweep, grids and curves.

Samples are always compared with the *held-out test split*, never with the training images.
The Fréchet distance (FD) is computed in the shipped feature network's space; the same
distance between as many *training* images as there are samples (all of them if fewer) and
the test split is reported as ``fd_floor`` — what a model that reproduced the training
distribution exactly would score, at the same set sizes (FD is biased upward for small
sets). Class accuracy is the fraction of class-conditional samples that the feature network
assigns to the label they were generated for.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from flow_core.samplers import ClassifierFreeGuidance
from flow_images.figures import save_guidance_curve, save_image_grid, save_quality_curves
from flow_images.metrics import ImageEvaluator

if TYPE_CHECKING:
    from flow_core.runner import RunContext
    from flow_images.data import ImageData
    from flow_images.features import FeatureNet

__all__ = ["evaluate_generation", "sweep_specs", "with_guidance"]

_EVAL_SEED = 104_729


def sweep_specs(
    kind: str, budgets: tuple[int, ...], turbo: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """The (sampler, options) pairs of the quality-against-NFE sweep for a model kind.

    Velocity models: Euler with n steps and Heun with n/2 steps (both n NFE) for each budget
    n, and one adaptive dopri5 solve; with a FlowTurbo refiner also FlowTurbo's schedule
    (1 Heun, n − 2 pseudo-corrector, 3 refiner steps: n predictor NFE) for n >= 4.
    Average-velocity models: n one-step jumps.
    """
    if kind == "velocity":
        specs: list[tuple[str, dict[str, Any]]] = [("euler", {"steps": n}) for n in budgets]
        specs += [("heun", {"steps": n // 2}) for n in budgets if n >= 2]
        if turbo:
            specs += [
                ("flowturbo", {"heun_steps": 1, "pseudo_steps": n - 2, "refiner_steps": 3})
                for n in budgets
                if n >= 4
            ]
        return [*specs, ("dopri5", {"rtol": 1e-4, "atol": 1e-4})] if budgets else specs
    if kind == "average-velocity":
        return [("few-step", {"steps": n}) for n in budgets]
    return []


def _labels(n: int, num_classes: int) -> Tensor | None:
    return torch.arange(n) % num_classes if num_classes else None


def _sample(
    model: nn.Module, sampler: Any, x0: Tensor, labels: Tensor | None, device: torch.device
) -> tuple[Tensor, float]:
    started = time.perf_counter()
    with torch.no_grad():
        cond = None if labels is None else labels.to(device)
        samples = sampler.sample(model, x0.to(device), cond).cpu()
    return samples, time.perf_counter() - started


def with_guidance(model: nn.Module, weight: float, num_classes: int) -> nn.Module:
    """``model`` under classifier-free guidance of weight ``weight`` with the null label
    ``num_classes`` (w = 0: ``model`` itself)."""
    if weight == 0:
        return model
    return ClassifierFreeGuidance(model, guidance_weight=weight, null_cond=num_classes)


def evaluate_generation(
    ctx: RunContext,
    config: Any,
    model: nn.Module,
    kind: str,
    sampler: Any,
    train_data: ImageData,
    test_data: ImageData,
    feature_net: FeatureNet,
    extra: dict[str, float],
    guidance_distilled: bool = False,
    conditional_model: nn.Module | None = None,
) -> dict[str, float]:
    """Sample ``config.eval_samples`` images, measure them, sweep NFE and write the report.

    ``guidance_distilled``: ``model`` learned from a guided teacher and is sampled unguided
    (BOSS, reflow); the report says so. ``conditional_model``: the class-conditional velocity
    field behind ``model``, sampled with ``sampler`` at each weight of
    ``config.guidance_sweep`` (metrics ``fd_guidance_w<w>`` and ``accuracy_guidance_w<w>``).
    """
    n = config.eval_samples
    evaluator = ImageEvaluator(feature_net, test_data.images, train_data.images, floor_size=n)
    shape = tuple(test_data.images.shape[1:])
    x0 = torch.randn((n, *shape), generator=torch.Generator().manual_seed(_EVAL_SEED + ctx.seed))
    labels = _labels(n, train_data.num_classes)
    model = model.to(ctx.device).eval()
    samples, seconds = _sample(model, sampler, x0, labels, ctx.device)
    metrics = {k: float(v) for k, v in evaluator.evaluate(samples, labels).items()}
    metrics["fd_floor"] = float(evaluator.floor) if evaluator.floor is not None else float("nan")
    metrics["nfe"] = float(sampler.nfe)
    metrics["seconds_per_1000_samples"] = 1000 * seconds / n
    metrics.update(extra)
    curves: dict[str, list[tuple[float, float]]] = {}
    accuracy_curves: dict[str, list[tuple[float, float]]] = {}
    from flow_images.flowturbo.model import FlowTurboModel

    turbo = isinstance(model, FlowTurboModel)
    specs = sweep_specs(kind, tuple(config.nfe_sweep), turbo)
    bar = ctx.progress(len(specs), "NFE sweep")
    for name, options in specs:
        swept = ctx.build("sampler", name, **options)
        points, spent = _sample(model, swept, x0, labels, ctx.device)
        result = evaluator.evaluate(points, labels)
        label = "dopri5 (adaptive)" if name == "dopri5" else name
        curves.setdefault(label, []).append((float(swept.nfe), result["fd"]))
        if "accuracy" in result:
            accuracy_curves.setdefault(label, []).append((float(swept.nfe), result["accuracy"]))
        key = f"{name}_nfe{swept.nfe}"
        metrics[f"fd_{key}"] = result["fd"]
        metrics[f"seconds_per_1000_{key}"] = 1000 * spent / n
        if "accuracy" in result:
            metrics[f"accuracy_{key}"] = result["accuracy"]
        bar.update(1)
    bar.close()
    guidance_points: list[tuple[float, float, float]] = []
    if conditional_model is not None and train_data.num_classes:
        for weight in config.guidance_sweep:
            wrapped = with_guidance(conditional_model, weight, train_data.num_classes)
            points, _ = _sample(wrapped.to(ctx.device).eval(), sampler, x0, labels, ctx.device)
            result = evaluator.evaluate(points, labels)
            metrics[f"fd_guidance_w{weight:g}"] = result["fd"]
            metrics[f"accuracy_guidance_w{weight:g}"] = result["accuracy"]
            guidance_points.append((weight, result["fd"], result["accuracy"]))
    if ctx.is_main:
        floor_images = min(n, len(train_data.images))
        _report(
            ctx,
            config,
            metrics,
            samples,
            test_data,
            floor_images,
            guidance_distilled,
            curves,
            accuracy_curves,
            guidance_points,
        )
    return metrics


def _report(
    ctx: RunContext,
    config: Any,
    metrics: dict[str, float],
    samples: Tensor,
    test_data: ImageData,
    floor_images: int,
    guidance_distilled: bool,
    curves: dict[str, list[tuple[float, float]]],
    accuracy_curves: dict[str, list[tuple[float, float]]],
    guidance_points: list[tuple[float, float, float]],
) -> None:
    stages = ""
    if config.reflow_rounds:
        stages = f", then {config.reflow_rounds} reflow round(s) with {config.reflow_objective}"
    if guidance_distilled:
        stages += (
            f" (learned from the teacher guided with w = {config.guidance_weight:g}; the"
            " student is sampled without guidance)"
        )
    ctx.report.add_text(
        f"Dataset **{test_data.name}**, objective **{config.objective}**{stages}, sampler"
        f" **{config.sampler or 'default'}** ({metrics['nfe']:.0f} NFE), {config.train.steps}"
        f" training steps of batch {config.train.batch_size}. {config.eval_samples} samples"
        " are compared with"
        f" the {test_data.images.shape[0]} held-out test images in the shipped feature"
        f" network's space; `fd_floor` is the same distance for {floor_images}"
        " training images (the level of a model that reproduced the training set)."
    )
    row: dict[str, Any] = {
        k: metrics[k]
        for k in ("fd", "fd_floor", "precision", "recall", "accuracy", "nfe")
        if k in metrics
    }
    ctx.report.add_table("Sample quality against the held-out test split", [row])
    ctx.report.add_table(
        "Time (this machine; seconds)",
        [
            {
                "training": metrics["train_seconds"],
                "sampling per 1000 images": metrics["seconds_per_1000_samples"],
            }
        ],
    )
    classes = test_data.num_classes
    columns = classes if classes else 8
    shown = columns * (classes if classes else 8)
    scale = 4 if test_data.images.shape[-1] <= 16 else 2
    caption = "model samples" + (", one class per column" if classes else "")
    save_image_grid(ctx.report.add_figure("samples.png", caption), samples[:shown], columns, scale)
    real = _class_ordered(test_data, shown, columns)
    save_image_grid(
        ctx.report.add_figure("test_images.png", "held-out test images, for comparison"),
        real,
        columns,
        scale,
    )
    if curves:
        path = ctx.report.add_figure("fd_vs_nfe.png", "Fréchet distance against NFE")
        save_quality_curves(path, curves, "Fréchet distance (feature net)", metrics["fd_floor"])
        table = [
            {"sampler": name, "NFE": nfe, "FD": fd}
            for name, points in curves.items()
            for nfe, fd in points
        ]
        ctx.report.add_table("Quality against NFE (same noise for every sampler)", table)
    if accuracy_curves:
        path = ctx.report.add_figure("accuracy_vs_nfe.png", "class accuracy against NFE")
        save_quality_curves(path, accuracy_curves, "class accuracy of samples", log_y=False)
    if guidance_points:
        caption = (
            f"FD and class accuracy against the guidance weight w ({metrics['nfe']:.0f}-NFE "
            "default sampler, same noise): guidance trades distribution fidelity for accuracy"
        )
        path = ctx.report.add_figure("guidance.png", caption)
        save_guidance_curve(path, guidance_points, metrics["fd_floor"])
        table = [{"w": w, "FD": fd, "accuracy": accuracy} for w, fd, accuracy in guidance_points]
        ctx.report.add_table("Quality against the guidance weight", table)


def _class_ordered(data: ImageData, count: int, columns: int) -> Tensor:
    """Test images laid out like the samples: image k of class k mod C (or the first ones)."""
    if not data.num_classes or data.labels is None:
        return data.images[:count]
    picks: list[Tensor] = []
    seen = [0] * data.num_classes
    by_class = [torch.nonzero(data.labels == c).flatten() for c in range(data.num_classes)]
    for k in range(count):
        c = k % columns
        index = by_class[c][seen[c] % by_class[c].numel()]
        seen[c] += 1
        picks.append(data.images[index])
    return torch.stack(picks)
