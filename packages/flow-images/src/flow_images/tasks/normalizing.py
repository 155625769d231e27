"""The normalizing-flow image task both ``images.tarflow`` and ``images.starflow`` are made of.

A TARFlow-family flow (Zhai et al. 2024, arXiv 2412.06329) is trained by maximum likelihood
(core's ``nll`` objective, 10% of labels dropped to the null label) on noisy training images,
x + σε for sample quality or uniformly dequantised x + u for likelihood runs
(:mod:`flow_images.tarflow.likelihood`). It is then measured on the held-out test split:

- ``test_bits_per_dim``: −log₂ p(x + noise)/D of the test images, in [−1, 1] units, with
  the training noise (for ``noise=uniform`` also the discrete bound
  ``test_bits_per_dim_discrete``);
- samples drawn with the run's sampler (``inverse``: sequential KV-cached decoding;
  ``gs-jacobi``: GS-Jacobi iteration) under guidance of weight ``guidance_weight``
  (``guidance_rule``: TARFlow's ``linear`` rule or STARFlow's ``gaussian`` one; unconditional
  data are guided through the attention temperature ``attention_temperature``), then cleaned
  by the score-based denoising step (Gaussian noise) — FD, precision, recall and class
  accuracy in the shipped feature network's space, before (``fd_raw``) and after it.

Subclasses choose where the flow lives (:meth:`NormalizingFlowTask.space`): image pixels for
TARFlow, an autoencoder's latent space for STARFlow.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.options import component, option, setting, used_if
from flow_core.training import TrainSettings, train, training
from flow_images.data import ImageData, load_dataset
from flow_images.features import load_feature_net
from flow_images.figures import save_image_grid
from flow_images.metrics import ImageEvaluator
from flow_images.starflow.guidance import gaussian_rule
from flow_images.tarflow.denoise import denoise
from flow_images.tarflow.guidance import Guidance, GuidanceRule, linear_rule
from flow_images.tarflow.likelihood import NOISES, bits_per_dim, perturb
from flow_images.tarflow.model import GuidedFlow

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = [
    "BIN_WIDTHS",
    "GUIDANCE_RULES",
    "FlowSpace",
    "NormalizingFlowConfig",
    "NormalizingFlowTask",
]

BIN_WIDTHS = {"digits": 0.125, "patches": 2 / 255}
"""Spacing of the grey levels of each dataset in [−1, 1] (digits: 17 levels; photos: 8 bit)."""
GUIDANCE_RULES: dict[str, GuidanceRule] = {"linear": linear_rule, "gaussian": gaussian_rule}
FEATURE_NETS = {"digits": "digits", "patches": "patches"}
_SAMPLE_SEED = 271_828
_EVAL_SEED = 104_729
_BPD_SEED = 7_919
MIN_EVAL_IMAGES = 4


def _gaussian(config: Any) -> bool:
    return bool(config.noise == "gaussian")


@dataclass(frozen=True)
class NormalizingFlowConfig:
    """Fields shared by the normalizing-flow image tasks (each sets its own defaults).

    ``dataset`` is ``digits`` (8×8, class-conditional) or ``patches`` (32×32 RGB photo
    patches, unconditional). ``noise`` is the training perturbation: ``gaussian`` with
    standard deviation ``noise_std`` (then ``denoise`` applies the score step to samples) or
    ``uniform`` dequantisation over one grey level (a likelihood run).
    """

    dataset: str = "digits"
    objective: str = component("objective", "nll")
    flow: str = component("flow", "tarflow")
    sampler: str = component("sampler", "inverse")
    cond_dropout: float = option("objective", "cond_dropout", 0.1)
    width: int = option("flow", "width", 64)
    heads: int = option("flow", "heads", 4)
    patch_size: int = option("flow", "patch_size", 2)
    noise: str = "gaussian"
    noise_std: float = setting(0.05, when=used_if("noise=gaussian", _gaussian))
    denoise: bool = setting(True, when=used_if("noise=gaussian", _gaussian))
    guidance_weight: float = 1.0
    guidance_rule: str = "linear"
    attention_temperature: float = 1.5
    eval_samples: int = 500
    bpd_repeats: int = 2
    train: TrainSettings = training(
        steps=1500, batch_size=64, lr=1e-3, lr_schedule="cosine", warmup_steps=100, log_every=100
    )

    def __post_init__(self) -> None:
        if self.dataset not in BIN_WIDTHS:
            raise ConfigError(
                f"dataset must be one of {', '.join(BIN_WIDTHS)}; got {self.dataset!r}"
            )
        if self.noise not in NOISES:
            raise ConfigError(f"noise must be one of {', '.join(NOISES)}; got {self.noise!r}")
        if not 0.0 < self.noise_std < float("inf"):
            raise ConfigError(f"noise_std must be > 0, got {self.noise_std}")
        if self.guidance_rule not in GUIDANCE_RULES:
            raise ConfigError(
                f"guidance_rule must be one of {', '.join(GUIDANCE_RULES)};"
                f" got {self.guidance_rule!r}"
            )
        Guidance(self.guidance_weight, temperature=self.attention_temperature)  # checks both
        if self.eval_samples < MIN_EVAL_IMAGES:
            raise ConfigError(f"eval_samples must be >= {MIN_EVAL_IMAGES}, got {self.eval_samples}")
        if self.bpd_repeats < 1:
            raise ConfigError(f"bpd_repeats must be >= 1, got {self.bpd_repeats}")

    @property
    def noise_level(self) -> float:
        """σ of Gaussian noise, or the bin width Δ of uniform dequantisation."""
        return self.noise_std if _gaussian(self) else BIN_WIDTHS[self.dataset]


@dataclass
class FlowSpace:
    """Where the flow lives: ``encode`` images to its inputs, ``decode`` its samples back.

    ``decode(samples, labels)`` also removes the training noise (TARFlow's denoising step, or
    STARFlow's decoder fine-tuned on noisy latents).
    """

    encode: Callable[[Tensor], Tensor]
    decode: Callable[[Tensor, Tensor | None], Tensor]
    shape: tuple[int, ...]
    name: str = "pixels"


class NormalizingFlowTask:
    """Train a TARFlow-family flow by maximum likelihood, measure bits/dim and samples."""

    _flow: nn.Module

    def datasets(self, config: NormalizingFlowConfig) -> tuple[ImageData, ImageData]:
        """The (train, test) splits of ``config.dataset``."""
        return load_dataset(config.dataset, "train"), load_dataset(config.dataset, "test")

    def space(self, config: NormalizingFlowConfig, ctx: RunContext, data: ImageData) -> FlowSpace:
        """Pixels; samples are denoised by the score step when the noise is Gaussian."""
        shape = tuple(data.images.shape[1:])

        def clean(samples: Tensor, labels: Tensor | None) -> Tensor:
            if not (_gaussian(config) and config.denoise):
                return samples
            return denoise(self._flow, samples, config.noise_std, labels)

        return FlowSpace(lambda x: x, clean, shape)

    def flow_options(self, data: ImageData, space: FlowSpace) -> dict[str, Any]:
        """The network's shape arguments."""
        return {
            "in_channels": space.shape[0],
            "image_size": space.shape[-1],
            "num_classes": data.num_classes,
        }

    # -- the run --------------------------------------------------------------------------

    def run(self, config: NormalizingFlowConfig, ctx: RunContext) -> dict[str, float]:
        train_data, test_data = self.datasets(config)
        started = time.perf_counter()
        space = self.space(config, ctx, train_data)
        self._flow = self._train_flow(config, ctx, train_data, space)
        metrics: dict[str, float] = {"train_seconds": time.perf_counter() - started}
        bpd = bits_per_dim(
            self._flow,
            space.encode(test_data.images.to(ctx.device)).cpu(),
            test_data.labels,
            config.noise,
            config.noise_level,
            _BPD_SEED,
            config.bpd_repeats,
        )
        metrics["test_bits_per_dim"] = bpd
        if not _gaussian(config) and space.name == "pixels":
            metrics["test_bits_per_dim_discrete"] = bpd - math.log2(BIN_WIDTHS[config.dataset])
        raw, final, labels, seconds, sampler = self._draw(config, ctx, train_data, space)
        metrics["seconds_per_1000_samples"] = 1000 * seconds / config.eval_samples
        metrics["nfe"] = float(sampler.nfe)
        evaluator = ImageEvaluator(
            load_feature_net(FEATURE_NETS[config.dataset]),
            test_data.images,
            train_data.images,
            floor_size=config.eval_samples,
        )
        if space.name == "pixels":
            before = evaluator.evaluate(raw.clamp(-1, 1), labels)
            metrics["fd_raw"] = before["fd"]
        after = evaluator.evaluate(final.clamp(-1, 1), labels)
        metrics.update({k: float(v) for k, v in after.items()})
        metrics["fd_floor"] = float(evaluator.floor) if evaluator.floor is not None else math.nan
        for index, count in enumerate(getattr(sampler, "iterations", [])):
            metrics[f"jacobi_iterations_block{index}"] = float(count)
        if ctx.is_main:
            self._report(ctx, config, metrics, raw, final, test_data, space)
        return metrics

    def evaluate(self, config: NormalizingFlowConfig, ctx: RunContext) -> dict[str, float]:
        """``flow eval``: the stages load their checkpoints, then everything is measured."""
        return self.run(config, ctx)

    def sample(
        self, config: NormalizingFlowConfig, ctx: RunContext, count: int
    ) -> dict[str, Tensor]:
        """``flow sample``: ``count`` images in [−1, 1] (and their balanced labels)."""
        train_data, _ = self.datasets(config)
        space = self.space(config, ctx, train_data)
        self._flow = self._train_flow(config, ctx, train_data, space)
        _, final, labels, _, _ = self._draw(config, ctx, train_data, space, count, _SAMPLE_SEED)
        images = final.clamp(-1, 1)
        columns = train_data.num_classes or 8
        path = ctx.report.add_figure("samples.png", f"{count} samples")
        save_image_grid(path, images[: columns * columns], columns, _pixel_scale(images))
        return {"images": images} if labels is None else {"images": images, "labels": labels}

    # -- stages ---------------------------------------------------------------------------

    def _train_flow(
        self, config: NormalizingFlowConfig, ctx: RunContext, data: ImageData, space: FlowSpace
    ) -> nn.Module:
        with torch.no_grad():
            inputs = torch.cat(
                [
                    space.encode(data.images[i : i + 512].to(ctx.device)).cpu()
                    for i in range(0, len(data.images), 512)
                ]
            )
        flow: nn.Module = ctx.component("flow", **self.flow_options(data, space))
        objective = ctx.component("objective")
        batch_size = config.train.batch_size

        def next_batch(generator: torch.Generator) -> dict[str, Tensor]:
            index = torch.randint(0, inputs.shape[0], (batch_size,), generator=generator)
            batch = {"x1": perturb(inputs[index], config.noise, config.noise_level, generator)}
            if data.labels is not None:
                batch["cond"] = data.labels[index]
            return batch

        result = train(ctx, flow, objective, next_batch, config.train)
        model: nn.Module = result.eval_model.to(ctx.device).eval()
        return model

    def _draw(
        self,
        config: NormalizingFlowConfig,
        ctx: RunContext,
        data: ImageData,
        space: FlowSpace,
        count: int | None = None,
        seed: int = _EVAL_SEED,
    ) -> tuple[Tensor, Tensor, Tensor | None, float, Any]:
        """(raw samples, cleaned samples, labels, sampling seconds, the sampler)."""
        n = config.eval_samples if count is None else count
        generator = torch.Generator().manual_seed(seed + ctx.seed)
        z = torch.randn((n, *space.shape), generator=generator).to(ctx.device)
        labels = torch.arange(n) % data.num_classes if data.num_classes else None
        cond = None if labels is None else labels.to(ctx.device)
        model: nn.Module = self._flow
        if config.guidance_weight > 0:
            rule = GUIDANCE_RULES[config.guidance_rule]
            guidance = Guidance(config.guidance_weight, rule, config.attention_temperature)
            model = GuidedFlow(self._flow, guidance)  # type: ignore[arg-type]
        sampler = ctx.component("sampler")
        started = time.perf_counter()
        with torch.no_grad():
            raw = sampler.sample(model, z, cond)
        seconds = time.perf_counter() - started
        final = space.decode(raw, cond)
        return raw.cpu(), final.cpu(), labels, seconds, sampler

    def _report(
        self,
        ctx: RunContext,
        config: NormalizingFlowConfig,
        metrics: dict[str, float],
        raw: Tensor,
        final: Tensor,
        test_data: ImageData,
        space: FlowSpace,
    ) -> None:
        guidance = (
            f"{config.guidance_rule} guidance w = {config.guidance_weight:g}"
            if config.guidance_weight > 0
            else "no guidance"
        )
        ctx.report.add_text(
            f"Dataset **{test_data.name}**, flow **{config.flow}** in {space.name} space,"
            f" trained {config.train.steps} steps of batch {config.train.batch_size} on"
            f" {config.noise} noise (level {config.noise_level:g}); sampler"
            f" **{config.sampler}** with {guidance}. {config.eval_samples} samples are"
            f" compared with the {len(test_data)} held-out test images in the shipped feature"
            " network's space; bits/dim are measured on the test split."
        )
        keys = (
            "test_bits_per_dim",
            "test_bits_per_dim_discrete",
            "fd_raw",
            "fd",
            "fd_floor",
            "precision",
            "recall",
            "accuracy",
        )
        ctx.report.add_table("Held-out test split", [{k: metrics[k] for k in keys if k in metrics}])
        columns = test_data.num_classes or 8
        shown = columns * columns
        scale = _pixel_scale(final)
        caption = "samples" + (", one class per column" if test_data.num_classes else "")
        save_image_grid(
            ctx.report.add_figure("samples.png", caption),
            final[:shown].clamp(-1, 1),
            columns,
            scale,
        )
        if space.name == "pixels" and "fd_raw" in metrics:
            save_image_grid(
                ctx.report.add_figure("samples_raw.png", "the same samples before denoising"),
                raw[:shown].clamp(-1, 1),
                columns,
                scale,
            )


def _pixel_scale(images: Tensor) -> int:
    return 4 if images.shape[-1] <= 16 else 2
