"""Choosing the guidance weight and the sampler on the validation split, never on the test split.

An image run holds a validation part out of its training split
(:func:`flow_images.data.validation.hold_out_validation`) and trains on the rest. After
training, every candidate pair of a guidance weight (the task's ``guidance_sweep`` and its
``guidance_weight``, for a class-conditional velocity model; otherwise the model as it is) and
a sampler (the configured one and the NFE sweep's, :func:`flow_images.evaluation.sweep_specs`)
samples the same noise, and the Fréchet distance of those samples to the validation images in
the shipped feature network's space scores it. The pair with the lowest distance is chosen;
the test split is then used once, to report the chosen pair (and the sweeps, for reference).

The NFE budget is the configured sampler's: a candidate that costs more function evaluations
per sample than the configured sampler is not considered. An adaptive candidate (``dopri5``,
whose cost is only known once it has run) is considered only when the configured sampler is
adaptive too, and then the budget is what that one used on the validation noise. So
``sample_steps=1`` still asks for a one-step model, and the choice says which one-step
configuration is best.

The choice is written to ``choice.json`` in the run folder, where ``flow sample`` reads it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from flow_core.runner import RunContext
    from flow_images.metrics import ImageEvaluator

__all__ = [
    "CHOICE_FILE",
    "CONFIGURED",
    "Candidate",
    "Choice",
    "choose_on_validation",
    "read_choice",
]

CHOICE_FILE = "choice.json"
CONFIGURED = "configured"
"""The sampler name of the candidate that is the run's configured sampler."""
_VALIDATION_NOISE_SEED = 15_485_863


@dataclass(frozen=True)
class Candidate:
    """One (guidance weight, sampler) pair.

    Attributes:
        sampler: a registered sampler name, or :data:`CONFIGURED` for the run's own sampler.
        options: the sampler's options (empty for :data:`CONFIGURED`).
        guidance_weight: classifier-free guidance weight, or ``None`` when the model is
            sampled as it is (unconditional, average-velocity, or distilled from a guided
            teacher).
    """

    sampler: str
    options: dict[str, Any] = field(default_factory=dict)
    guidance_weight: float | None = None


@dataclass(frozen=True)
class Score:
    """A candidate's validation result: ``nfe`` per sample, ``fd`` and class ``accuracy``."""

    candidate: Candidate
    label: str
    nfe: int
    fd: float
    accuracy: float | None


@dataclass(frozen=True)
class Choice:
    """The chosen candidate and the scores of every candidate considered."""

    chosen: Candidate
    scores: tuple[Score, ...]
    validation_images: int

    @property
    def best(self) -> Score:
        return next(s for s in self.scores if s.candidate == self.chosen)

    def save(self, folder: Path) -> Path:
        """Write ``choice.json`` (the chosen candidate and every score) to ``folder``."""
        path = folder / CHOICE_FILE
        record = {
            "chosen": asdict(self.chosen),
            "validation_images": self.validation_images,
            "scores": [
                {**asdict(s.candidate), "label": s.label, "nfe": s.nfe, "fd": s.fd}
                | ({} if s.accuracy is None else {"accuracy": s.accuracy})
                for s in self.scores
            ],
        }
        path.write_text(json.dumps(record, indent=2) + "\n")
        return path


def read_choice(folder: Path) -> Candidate | None:
    """The candidate chosen by the run in ``folder`` (``None`` when it chose nothing)."""
    path = folder / CHOICE_FILE
    if not path.is_file():
        return None
    chosen = json.loads(path.read_text())["chosen"]
    weight = chosen.get("guidance_weight")
    return Candidate(
        str(chosen["sampler"]),
        dict(chosen.get("options", {})),
        None if weight is None else float(weight),
    )


def planned_nfe(sampler: Any) -> int | None:
    """Function evaluations per sample that ``sampler`` will spend, before it runs.

    Known for the fixed-step samplers (``evaluations_per_step × steps``), the few-step and SDE
    samplers (``steps``) and FlowTurbo (``expected_nfe``); ``None`` for adaptive ones.
    """
    if hasattr(sampler, "expected_nfe"):
        return int(sampler.expected_nfe)
    steps = getattr(sampler, "steps", None)
    if steps is None:
        return None
    return int(getattr(sampler, "evaluations_per_step", 1)) * int(steps)


def sampler_label(name: str, nfe: int, configured: bool = False) -> str:
    """``"euler, 16 NFE"``-style name of a sampler (``"euler (configured), 16 NFE"``)."""
    return f"{name}{' (configured)' if configured else ''}, {nfe} NFE"


def same_sampler(a: Any, b: Any) -> bool:
    """Whether two built samplers are the same: one type and equal settings (``nfe`` aside)."""
    if type(a) is not type(b):
        return False
    left = {k: v for k, v in vars(a).items() if k != "nfe"}
    right = {k: v for k, v in vars(b).items() if k != "nfe"}
    if left.keys() != right.keys():
        return False
    for key, value in left.items():
        other = right[key]
        if isinstance(value, Tensor) or isinstance(other, Tensor):
            same = (
                isinstance(value, Tensor)
                and isinstance(other, Tensor)
                and value.shape == other.shape
                and bool(torch.equal(value, other))
            )
        else:
            same = bool(value == other)
        if not same:
            return False
    return True


def choose_on_validation(
    ctx: RunContext,
    candidates: Sequence[Candidate],
    build: Callable[[Candidate], tuple[nn.Module, Any]],
    evaluator: ImageEvaluator,
    shape: tuple[int, ...],
    count: int,
    labels: Tensor | None,
    configured_name: str,
) -> Choice:
    """Score every candidate on ``count`` samples against ``evaluator``'s validation images.

    ``build`` gives a candidate's (model, sampler). The first candidate must be the
    configured one (registered as ``configured_name``): its NFE is the budget of the rest
    (see the module docstring). A candidate whose sampler equals one already tried at the
    same weight (:func:`same_sampler`) is not sampled again.
    """
    generator = torch.Generator().manual_seed(_VALIDATION_NOISE_SEED + ctx.seed)
    x0 = torch.randn((count, *shape), generator=generator)
    scores: list[Score] = []
    tried: list[tuple[Any, float | None]] = []
    budget: int | None = None
    configured_adaptive = False
    bar = ctx.progress(len(candidates), "choosing on the validation split")
    for index, candidate in enumerate(candidates):
        bar.update(1)
        model, sampler = build(candidate)
        planned = planned_nfe(sampler)
        # an adaptive candidate's cost is unknown ahead: tried only against an adaptive budget
        if budget is not None and (
            not configured_adaptive if planned is None else planned > budget
        ):
            continue
        weight = candidate.guidance_weight
        if any(w == weight and same_sampler(sampler, old) for old, w in tried):
            continue  # the configured sampler again, as one of the sweep's
        tried.append((sampler, weight))
        with torch.no_grad():
            cond = None if labels is None else labels.to(ctx.device)
            samples = sampler.sample(model.to(ctx.device).eval(), x0.to(ctx.device), cond).cpu()
        nfe = int(sampler.nfe)
        if index == 0:
            budget, configured_adaptive = nfe, planned is None
        if budget is not None and nfe > budget:
            continue  # an adaptive candidate that spent more than the adaptive configured one
        result = evaluator.evaluate(samples, labels)
        configured = candidate.sampler == CONFIGURED
        label = sampler_label(configured_name if configured else candidate.sampler, nfe, configured)
        accuracy = float(result["accuracy"]) if "accuracy" in result else None
        scores.append(Score(candidate, label, nfe, float(result["fd"]), accuracy))
    bar.close()
    best = min(scores, key=lambda s: (s.fd, s.nfe))
    return Choice(best.candidate, tuple(scores), len(evaluator.reference_features))
