"""Evaluation of class-conditional generators with their own samplers (FlowAR, ARFlow).

``generate(noise, labels, budget)`` returns images for a sampling budget (steps per scale, or
sequence length); each budget is measured like :mod:`flow_images.evaluation` measures the
flat flows: Fréchet distance (FD) and class accuracy in the shipped digit classifier's feature
space against the held-out test split, precision and recall, and wall-clock per 1,000 samples
on this machine. The same noise and balanced labels are used at every budget.
:func:`sample_class_generator` draws the samples of ``flow sample``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from flow_images.features import load_feature_net
from flow_images.figures import save_image_grid, save_quality_curves
from flow_images.metrics import ImageEvaluator

if TYPE_CHECKING:
    from flow_core.runner import RunContext
    from flow_images.data import ImageData

__all__ = ["Generate", "evaluate_class_generator", "parameter_count", "sample_class_generator"]

_EVAL_SEED = 104_729
_SAMPLE_SEED = 1_299_709
Generate = Callable[[Tensor, Tensor, int], tuple[Tensor, int]]
"""``generate(noise, labels, budget) -> (images, nfe)`` on the run's device."""


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def evaluate_class_generator(
    ctx: RunContext,
    generate: Generate,
    budgets: tuple[int, ...],
    default_budget: int,
    train_data: ImageData,
    test_data: ImageData,
    eval_samples: int,
    model: nn.Module,
    train_loss: float,
    summary: str,
) -> dict[str, float]:
    """Measure ``generate`` at ``default_budget`` (``fd``, ``accuracy``, …) and at every
    entry of ``budgets`` (``fd_nfe<n>``, ``accuracy_nfe<n>``, ``seconds_per_1000_nfe<n>``);
    write the report (``summary`` first) and return the metrics, with ``parameters`` (of
    ``model``) and ``train_loss``."""
    evaluator = ImageEvaluator(
        load_feature_net("digits"), test_data.images, train_data.images, floor_size=eval_samples
    )
    shape = tuple(test_data.images.shape[1:])
    generator = torch.Generator().manual_seed(_EVAL_SEED + ctx.seed)
    noise = torch.randn((eval_samples, *shape), generator=generator).to(ctx.device)
    labels = torch.arange(eval_samples) % train_data.num_classes
    metrics = {"parameters": float(parameter_count(model)), "train_loss": train_loss}
    rows: list[dict[str, Any]] = []
    curves: dict[str, list[tuple[float, float]]] = {"model": []}
    default_images: Tensor | None = None
    for budget in sorted({*budgets, default_budget}):
        started = time.perf_counter()
        with torch.no_grad():
            images, nfe = generate(noise, labels.to(ctx.device), budget)
        seconds = time.perf_counter() - started
        images = images.cpu()
        result = evaluator.evaluate(images, labels)
        metrics[f"fd_nfe{nfe}"] = result["fd"]
        metrics[f"accuracy_nfe{nfe}"] = result["accuracy"]
        metrics[f"seconds_per_1000_nfe{nfe}"] = 1000 * seconds / eval_samples
        rows.append({"NFE": nfe, "FD": result["fd"], "accuracy": result["accuracy"]})
        curves["model"].append((float(nfe), result["fd"]))
        if budget == default_budget:
            default_images = images
            metrics.update({k: float(v) for k, v in result.items()})
            metrics["nfe"] = float(nfe)
    metrics["fd_floor"] = float(evaluator.floor) if evaluator.floor is not None else float("nan")
    if ctx.is_main and default_images is not None:
        ctx.report.add_text(
            f"{summary} {eval_samples} samples (balanced classes) against the"
            f" {len(test_data)} held-out test digits; FD floor (training vs test digits):"
            f" {metrics['fd_floor']:.3f}."
        )
        ctx.report.add_table("Sample quality against the sampling budget", rows)
        classes = train_data.num_classes
        caption = "samples at the default budget, one class per column"
        path = ctx.report.add_figure("samples.png", caption)
        save_image_grid(path, default_images[: classes * classes], classes, 4)
        if len(curves["model"]) > 1:
            path = ctx.report.add_figure("fd_vs_nfe.png", "Fréchet distance against NFE")
            save_quality_curves(path, curves, "Fréchet distance (feature net)", metrics["fd_floor"])
    return metrics


def sample_class_generator(
    ctx: RunContext,
    generate: Generate,
    budget: int,
    data: ImageData,
    count: int,
    summary: str,
) -> dict[str, Tensor]:
    """``flow sample``: ``count`` images of ``generate`` at ``budget`` from seeded noise, with
    balanced labels 0, 1, …, C − 1, 0, … (``{"images", "labels"}``, images clamped to
    [−1, 1]); the report gets ``summary`` and a grid with one class per column."""
    shape = tuple(data.images.shape[1:])
    generator = torch.Generator().manual_seed(_SAMPLE_SEED + ctx.seed)
    noise = torch.randn((count, *shape), generator=generator).to(ctx.device)
    labels = torch.arange(count) % data.num_classes
    with torch.no_grad():
        images, nfe = generate(noise, labels.to(ctx.device), budget)
    images = images.cpu().clamp(-1, 1)
    classes = data.num_classes
    ctx.report.add_text(f"{summary} {count} samples, balanced classes, {nfe} NFE per sample.")
    path = ctx.report.add_figure("samples.png", f"{count} samples, one class per column")
    save_image_grid(path, images[: classes * classes], classes, 4)
    return {"images": images, "labels": labels}
