"""Evaluation and report of ``images.restore``: the distortion-perception table and figures.

Distortion is PSNR and SSIM against the clean test images (scikit-image, data range 2 on
[−1, 1]); perception is the Fréchet distance (FD) between the restored test set and the clean
test set in the shipped feature network's space (``digits`` for 1×8×8, ``patches`` for
3×32×32 images; other sizes report no FD). ``fd_floor`` is the FD of as many training images
as test images, what a perfect generator would score. The figure shows, per column, one test
image: degraded, restorer, posterior sample, PMRF and reference rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from flow_images.figures import save_image_grid
from flow_images.metrics import ImageEvaluator, psnr, ssim
from flow_images.pmrf.stages import pmrf_source

if TYPE_CHECKING:
    from flow_core.runner import RunContext
    from flow_images.data import ImageData
    from flow_images.pmrf.degradations import Degradation

__all__ = [
    "RestorationStages",
    "evaluate_restoration",
    "feature_net_for",
    "restorations",
    "save_restorations",
]

_EVAL_SEED = 7_919
_SHOWN = 10
_CHUNK = 256


@dataclass(frozen=True)
class RestorationStages:
    """The data, degradation and trained (or, in eval/sample, loaded) estimators of a run."""

    train_data: ImageData
    test_data: ImageData
    degrade: Degradation
    sampler: Any
    restorer: nn.Module
    flow: nn.Module
    posterior: nn.Module | None


def feature_net_for(shape: tuple[int, ...]) -> str | None:
    """The shipped feature network for images of ``shape`` (C, H, W), if one fits."""
    nets: dict[tuple[int, ...], str] = {(1, 8, 8): "digits", (3, 32, 32): "patches"}
    return nets.get(tuple(shape))


def _chunked(fn: Any, *inputs: Tensor) -> Tensor:
    with torch.no_grad():
        return torch.cat(
            [
                fn(*(x[i : i + _CHUNK] for x in inputs)).cpu()
                for i in range(0, len(inputs[0]), _CHUNK)
            ]
        )


def restorations(
    ctx: RunContext, config: Any, stages: RestorationStages, clean: Tensor
) -> dict[str, Tensor]:
    """The degraded ``clean`` images and each estimator's restoration, clamped to [−1, 1]."""
    degrade, sampler, posterior = stages.degrade, stages.sampler, stages.posterior
    generator = torch.Generator().manual_seed(_EVAL_SEED + ctx.seed)
    degraded, observation = degrade(clean, generator)
    device = ctx.device
    restorer, flow = stages.restorer.to(device).eval(), stages.flow.to(device).eval()
    obs = observation.to(device)
    out = {"degraded": degraded, "restorer": _chunked(restorer, obs)}
    source = pmrf_source(restorer, observation, config.source_noise, generator)
    out["PMRF"] = _chunked(lambda x0: sampler.sample(flow, x0), source)
    if posterior is not None:
        posterior = posterior.to(device).eval()
        noise = torch.randn(clean.shape, generator=generator).to(device)
        out["posterior sampling"] = _chunked(
            lambda x0, y: sampler.sample(posterior, x0, y), noise, obs
        )
    return {name: images.clamp(-1, 1) for name, images in out.items()}


def evaluate_restoration(
    ctx: RunContext, config: Any, stages: RestorationStages
) -> dict[str, float]:
    """Restore ``config.eval_samples`` test images with each estimator, measure and report."""
    from flow_images.features import load_feature_net

    clean = stages.test_data.images[: config.eval_samples]
    images = restorations(ctx, config, stages, clean)
    net_name = feature_net_for(tuple(clean.shape[1:]))
    evaluator = None
    if net_name is not None and len(clean) > 3:
        net = load_feature_net(net_name)
        evaluator = ImageEvaluator(net, clean, stages.train_data.images, floor_size=len(clean))
    metrics: dict[str, float] = {"nfe": float(stages.sampler.nfe)}
    rows: list[dict[str, Any]] = []
    for name, restored in images.items():
        key = name.split()[0].lower()
        row: dict[str, Any] = {
            "estimator": name,
            "PSNR (dB)": psnr(restored, clean),
            "SSIM": ssim(restored, clean),
        }
        if evaluator is not None:
            row["FD"] = evaluator.evaluate(restored)["fd"]
        rows.append(row)
        metrics[f"psnr_{key}"] = row["PSNR (dB)"]
        metrics[f"ssim_{key}"] = row["SSIM"]
        if "FD" in row:
            metrics[f"fd_{key}"] = row["FD"]
    if evaluator is not None and evaluator.floor is not None:
        metrics["fd_floor"] = float(evaluator.floor)
    if ctx.is_main:
        _report(ctx, config, images, clean, rows, metrics)
    return metrics


def _report(
    ctx: RunContext,
    config: Any,
    images: dict[str, Tensor],
    clean: Tensor,
    rows: list[dict[str, Any]],
    metrics: dict[str, float],
) -> None:
    floor = metrics.get("fd_floor")
    ctx.report.add_text(
        f"Degradation **{config.degradation}** on **{config.dataset}**; {len(clean)} held-out"
        f" test images. PMRF: restorer ({config.restorer_steps} steps), then a rectified flow"
        f" from restorer output + N(0, {config.source_noise:g}²) noise ({config.train.steps}"
        f" steps, objective {config.objective}), sampled with {config.sampler}"
        f" ({metrics['nfe']:.0f} NFE)."
        + ("" if floor is None else f" FD floor (training vs test images): {floor:.3f}.")
    )
    ctx.report.add_table("Distortion (PSNR, SSIM) and perception (FD) on the test split", rows)
    save_restorations(ctx, images, clean)


def save_restorations(ctx: RunContext, images: dict[str, Tensor], clean: Tensor) -> None:
    """The figure ``restorations.png``: per column one image, degraded, each estimator's
    restoration (the keys of :func:`restorations`) and the reference."""
    shown = min(_SHOWN, len(clean))
    order = ["degraded", "restorer", "posterior sampling", "PMRF"]
    grid = [images[name][:shown] for name in order if name in images] + [clean[:shown]]
    names = [name for name in order if name in images] + ["reference"]
    scale = 4 if clean.shape[-1] <= 16 else 2
    caption = "rows: " + ", ".join(names) + "; one image per column"
    save_image_grid(
        ctx.report.add_figure("restorations.png", caption), torch.cat(grid), shown, scale
    )
