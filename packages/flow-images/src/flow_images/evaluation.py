"""Evaluation and report of a trained image flow: metrics, the NFE sweep, grids and curves.

When the run holds a validation part out and ``choose`` is set, the guidance weight and sampler
are first chosen on it (:mod:`flow_images.choice`); the headline metrics measure that choice.
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

from flow_core.recipes import DEFAULT_SAMPLERS
from flow_core.samplers import ClassifierFreeGuidance
from flow_images.choice import CONFIGURED, Candidate, Choice, choose_on_validation
from flow_images.figures import save_guidance_curve, save_image_grid, save_quality_curves
from flow_images.metrics import ImageEvaluator

if TYPE_CHECKING:
    from flow_core.runner import RunContext
    from flow_images.data import ImageData
    from flow_images.features import FeatureNet

__all__ = [
    "build_candidate",
    "evaluate_generation",
    "guidance_candidates",
    "sweep_specs",
    "with_guidance",
]

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


def guidance_candidates(config: Any, conditional: bool) -> list[float | None]:
    """The guidance weights to choose from: the configured one first, then the sweep's
    (``[None]``, the model as it is, when it is not a class-conditional velocity field)."""
    if not conditional:
        return [None]
    weights: list[float | None] = [float(config.guidance_weight)]
    weights += [float(w) for w in config.guidance_sweep if float(w) not in weights]
    return weights


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
    validation_data: ImageData | None = None,
) -> dict[str, float]:
    """Choose on validation, sample ``config.eval_samples`` images, measure, sweep, report.

    ``model`` is sampled with ``sampler`` unless ``validation_data`` is given and
    ``config.choose`` is set: then the guidance weight and sampler are chosen on it
    (:mod:`flow_images.choice`) and the choice is what the headline metrics measure.
    ``guidance_distilled``: ``model`` learned from a guided teacher and is sampled unguided
    (BOSS, reflow); the report says so. ``conditional_model``: the class-conditional velocity
    field behind ``model``, guided at each weight of ``config.guidance_sweep`` (metrics
    ``fd_guidance_w<w>`` and ``accuracy_guidance_w<w>``) and a candidate of the choice.
    """
    n = config.eval_samples
    shape = tuple(test_data.images.shape[1:])
    labels = _labels(n, train_data.num_classes)
    from flow_images.flowturbo.model import FlowTurboModel

    specs = sweep_specs(kind, tuple(config.nfe_sweep), isinstance(model, FlowTurboModel))
    choice = None
    if validation_data is not None and config.choose:
        choice = _choose(
            ctx,
            config,
            kind,
            specs,
            model,
            sampler,
            conditional_model,
            validation_data,
            feature_net,
        )
        model, sampler = build_candidate(
            ctx, choice.chosen, model, sampler, conditional_model, train_data.num_classes
        )
    evaluator = ImageEvaluator(feature_net, test_data.images, train_data.images, floor_size=n)
    x0 = torch.randn((n, *shape), generator=torch.Generator().manual_seed(_EVAL_SEED + ctx.seed))
    model = model.to(ctx.device).eval()
    samples, seconds = _sample(model, sampler, x0, labels, ctx.device)
    metrics = {k: float(v) for k, v in evaluator.evaluate(samples, labels).items()}
    metrics["fd_floor"] = float(evaluator.floor) if evaluator.floor is not None else float("nan")
    metrics["nfe"] = float(sampler.nfe)
    metrics["seconds_per_1000_samples"] = 1000 * seconds / n
    if choice is not None:
        metrics["validation_fd"] = choice.best.fd
        if choice.chosen.guidance_weight is not None:
            metrics["chosen_guidance_weight"] = choice.chosen.guidance_weight
    metrics.update(extra)
    rows: list[dict[str, Any]] = []
    curves: dict[str, list[tuple[float, float]]] = {}
    accuracy_curves: dict[str, list[tuple[float, float]]] = {}
    chosen_spec = None if choice is None else (choice.chosen.sampler, choice.chosen.options)
    bar = ctx.progress(len(specs), "NFE sweep")
    for name, options in specs:
        swept = ctx.build("sampler", name, **options)
        points, spent = _sample(model, swept, x0, labels, ctx.device)
        result = evaluator.evaluate(points, labels)
        label = "dopri5 (adaptive)" if name == "dopri5" else name
        curves.setdefault(label, []).append((float(swept.nfe), result["fd"]))
        row: dict[str, Any] = {"sampler": label, "NFE": swept.nfe, "FD": result["fd"]}
        if "accuracy" in result:
            accuracy_curves.setdefault(label, []).append((float(swept.nfe), result["accuracy"]))
            row["accuracy"] = result["accuracy"]
        row["chosen"] = "**chosen**" if (name, options) == chosen_spec else ""
        rows.append(row)
        key = f"{name}_nfe{swept.nfe}"
        metrics[f"fd_{key}"] = result["fd"]
        metrics[f"seconds_per_1000_{key}"] = 1000 * spent / n
        if "accuracy" in result:
            metrics[f"accuracy_{key}"] = result["accuracy"]
        bar.update(1)
    bar.close()
    if rows and not any(row["chosen"] for row in rows):
        # the headline is then the configured sampler (the sweep's own are all in ``rows``)
        configured = config.sampler or DEFAULT_SAMPLERS[kind]
        headline = {"sampler": f"{configured} (configured)", "NFE": sampler.nfe}
        headline |= {"FD": metrics["fd"]} | (
            {"accuracy": metrics["accuracy"]} if "accuracy" in metrics else {}
        )
        rows.insert(0, headline | {"chosen": "**chosen**" if choice else "headline"})
    guidance_points: list[tuple[float, float, float]] = []
    if conditional_model is not None and train_data.num_classes:
        for weight in config.guidance_sweep:
            wrapped = with_guidance(conditional_model, weight, train_data.num_classes)
            points, _ = _sample(wrapped.to(ctx.device).eval(), sampler, x0, labels, ctx.device)
            result = evaluator.evaluate(points, labels)
            metrics[f"fd_guidance_w{weight:g}"] = result["fd"]
            metrics[f"accuracy_guidance_w{weight:g}"] = result["accuracy"]
            guidance_points.append((weight, result["fd"], result["accuracy"]))
    swept_fds = [row["FD"] for row in rows] + [fd for _, fd, _ in guidance_points]
    metrics["fd_best_in_sweep"] = min([metrics["fd"], *swept_fds])
    if ctx.is_main:
        if choice is not None:
            choice.save(ctx.out_dir)
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
            rows,
            choice,
        )
    return metrics


def _choose(
    ctx: RunContext,
    config: Any,
    kind: str,
    specs: list[tuple[str, dict[str, Any]]],
    model: nn.Module,
    sampler: Any,
    conditional_model: nn.Module | None,
    validation: ImageData,
    feature_net: FeatureNet,
) -> Choice:
    """Every (guidance weight, sampler) candidate scored on ``validation``: the configured
    sampler, then the NFE sweep's ``specs``."""
    weights = guidance_candidates(config, conditional_model is not None)
    samplers = [(CONFIGURED, {}), *specs]
    candidates = [Candidate(name, options, w) for w in weights for name, options in samplers]
    evaluator = ImageEvaluator(feature_net, validation.images)
    labels = _labels(config.eval_samples, validation.num_classes)
    return choose_on_validation(
        ctx,
        candidates,
        lambda c: build_candidate(
            ctx, c, model, sampler, conditional_model, validation.num_classes
        ),
        evaluator,
        tuple(validation.images.shape[1:]),
        config.eval_samples,
        labels,
        config.sampler or DEFAULT_SAMPLERS[kind],
    )


def build_candidate(
    ctx: RunContext,
    candidate: Candidate,
    model: nn.Module,
    sampler: Any,
    conditional_model: nn.Module | None,
    classes: int,
) -> tuple[nn.Module, Any]:
    """A candidate's (model, sampler), for choosing, evaluating and ``flow sample`` alike.

    The model is ``conditional_model`` guided at the candidate's weight, or ``model`` when the
    candidate has none; the sampler is the registered one it names, or ``sampler`` for the
    configured one.
    """
    if candidate.guidance_weight is not None and conditional_model is not None:
        model = with_guidance(conditional_model, candidate.guidance_weight, classes)
    if candidate.sampler != CONFIGURED:
        sampler = ctx.build("sampler", candidate.sampler, **candidate.options)
    return model, sampler


def _report_choice(ctx: RunContext, choice: Choice) -> None:
    best = choice.best
    weight = best.candidate.guidance_weight
    guided = "" if weight is None else f" with guidance weight w = {weight:g}"
    ctx.report.add_text(
        f"**Chosen on the validation split:** {best.label}{guided} (validation FD"
        f" {best.fd:.4g}). The validation split is {choice.validation_images} images held out"
        " of the training split (never trained on); every candidate below sampled the same"
        " noise, at no more NFE than the configured sampler, and the lowest FD to the"
        " validation images was chosen. The test split was not used to choose."
    )
    table = []
    for score in choice.scores:
        row: dict[str, Any] = {"sampler": score.label}
        if score.candidate.guidance_weight is not None:
            row["w"] = score.candidate.guidance_weight
        row["validation FD"] = score.fd
        if score.accuracy is not None:
            row["validation accuracy"] = score.accuracy
        row["chosen"] = "**chosen**" if score.candidate == choice.chosen else ""
        table.append(row)
    ctx.report.add_table("Candidates on the validation split", table)


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
    rows: list[dict[str, Any]],
    choice: Choice | None,
) -> None:
    stages = ""
    if config.reflow_rounds:
        stages = f", then {config.reflow_rounds} reflow round(s) with {config.reflow_objective}"
    if guidance_distilled:
        stages += (
            f" (learned from the teacher guided with w = {config.guidance_weight:g}; the"
            " student is sampled without guidance)"
        )
    sampled = (
        f"sampler **{config.sampler or 'default'}** ({metrics['nfe']:.0f} NFE)"
        if choice is None
        else f"sampled as chosen on the validation split, **{choice.best.label}**"
        + (
            ""
            if "chosen_guidance_weight" not in metrics
            else f" with guidance w = {metrics['chosen_guidance_weight']:g}"
        )
    )
    ctx.report.add_text(
        f"Dataset **{test_data.name}**, objective **{config.objective}**{stages}, {sampled},"
        f" {config.train.steps}"
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
    if choice is not None:
        _report_choice(ctx, choice)
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
    if rows:
        ctx.report.add_table(
            "Quality against NFE on the test split (same noise for every sampler"
            + (
                ""
                if "chosen_guidance_weight" not in metrics
                else f", guidance w = {metrics['chosen_guidance_weight']:g}"
            )
            + "; the headline row marked)",
            rows,
        )
    if accuracy_curves:
        path = ctx.report.add_figure("accuracy_vs_nfe.png", "class accuracy against NFE")
        save_quality_curves(path, accuracy_curves, "class accuracy of samples", log_y=False)
    if guidance_points:
        caption = (
            f"FD and class accuracy against the guidance weight w (the headline"
            f" {metrics['nfe']:.0f}-NFE sampler, same noise): guidance trades distribution"
            " fidelity for accuracy"
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
