"""``compile=true``: compiled against eager training steps on two tasks (issue 22).

Each task runs through flow's runner (``flow_core.testing.run_task``) until it calls
``flow_core.training.train``; the model, objective, batch function and training section of
that call are what is timed, so the network and loss are the task's own (its registry
components, its defaults). Both copies of the model start from the task's initial weights
and go through ``train`` with the task's section, once with ``compile=false`` and once with
``compile=true`` (which wraps the model in ``torch.compile``; the objective, backward,
clipping, Adam and the EMA stay eager). The loop draws one batch per step, so the gaps between
draws are the step times of the real loop, without its set-up and final checkpoint. After a
warm-up, repeats of K steps alternate eager and compiled with the order rotated; a repeat's
step time is its median gap, and the compiled/eager ratio of each repeat is one paired
observation. The one-off compile time is the first one-step compiled call minus the first
one-step eager call, with inductor's on-disk cache empty (a fresh cache directory), as on a
first run.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch import nn
from torch._inductor.utils import fresh_cache

from core_bench.common import Section, Settings, fmt, table
from flow_core import recipes
from flow_core.testing import run_context, run_task
from flow_core.training import TrainResult, TrainSettings, train

__all__ = ["run"]

TASKS = ("core.toy2d", "images.digits")
LOSS_TOLERANCE = 1e-5
"""Largest relative difference of the first step's loss, compiled against eager."""
PROFILE_TOP = 8
"""Rows of the profile table of a task where compiling does not pay: no faster step, or a
cold compile not paid back within the task's default number of steps."""
Batch = Mapping[str, torch.Tensor]


class _Captured(Exception):
    """Raised by the stand-in for ``train`` once it has the task's arguments."""


@dataclass
class TaskStep:
    """What a task passes to ``train`` for its first stage."""

    task: str
    model: nn.Module
    objective: Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, float]]]
    batches: Callable[[torch.Generator], Batch]
    settings: TrainSettings


def task_step(task: str) -> TaskStep:
    """Run ``task`` with its defaults up to its first ``train`` call and return that call's
    model, objective, batch function and training section (nothing is trained)."""
    seen: dict[str, Any] = {}

    def capture(
        ctx: Any, model: nn.Module, objective: Any, batches: Any, settings: TrainSettings, **_: Any
    ) -> None:
        seen.update(model=model, objective=objective, batches=batches, settings=settings)
        raise _Captured

    with (
        tempfile.TemporaryDirectory() as folder,
        mock.patch.object(recipes, "train", capture),
        contextlib.suppress(_Captured),
    ):
        run_task(task, Path(folder) / "run")
    if not seen:
        raise RuntimeError(f"{task} finished without calling flow_core.training.train")
    return TaskStep(task, seen["model"], seen["objective"], seen["batches"], seen["settings"])


class _Clock:
    """A task's batch function that stamps the time of every draw.

    The loop draws once per step (with the section's prefetch on, the first call draws two
    batches back to back), so the gaps between the stamps after the first are step times.
    """

    def __init__(self, batches: Callable[[torch.Generator], Batch]) -> None:
        self.batches = batches
        self.stamps: list[float] = []

    def __call__(self, generator: torch.Generator) -> Batch:
        self.stamps.append(time.perf_counter())
        return self.batches(generator)

    def steps(self) -> list[float]:
        """Step times, leaving out the call's first step (its own warm-up)."""
        gaps = [b - a for a, b in zip(self.stamps[1:], self.stamps[2:], strict=False)]
        return gaps[1:]


def _train(
    step: TaskStep,
    model: nn.Module,
    compiled: bool,
    steps: int,
    batches: Callable[[torch.Generator], Batch] | None = None,
) -> TrainResult:
    """``steps`` steps of the loop on ``model`` with the task's section, logging off."""
    settings = dataclasses.replace(
        step.settings,
        steps=steps,
        compile=compiled,
        log_every=0,
        eval_every=0,
        checkpoint_every=0,
    )
    with tempfile.TemporaryDirectory() as folder:
        ctx = run_context(Path(folder), task=step.task)
        return train(ctx, model, step.objective, batches or step.batches, settings)


def _interval(values: list[float]) -> tuple[float, float]:
    """The distribution-free 95% interval of the median: order statistics n/2 ∓ 1.96·√n/2."""
    ordered = sorted(values)
    n = len(ordered)
    half = 1.96 * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - half))
    high = min(n - 1, math.ceil(n / 2 + half) - 1)
    return ordered[low], ordered[high]


@dataclass
class Measured:
    """One task's numbers."""

    task: str
    eager_ms: float
    compiled_ms: float
    ratio: float
    low: float
    high: float
    ratios: list[float]
    compile_s: float
    first_loss: tuple[float, float]
    second_loss: tuple[float, float]
    last_loss: tuple[float, float]
    total_steps: int
    default_steps: int

    @property
    def faster(self) -> bool:
        """Compiled is faster: the whole 95% interval of the ratio lies below 1."""
        return self.high < 1.0

    @property
    def break_even(self) -> float:
        """Training steps after which the compile time is saved back (inf: never)."""
        saved_s = (self.eager_ms - self.compiled_ms) / 1000
        return self.compile_s / saved_s if saved_s > 0 else math.inf

    @property
    def loss_errors(self) -> tuple[float, float]:
        """Relative differences of the first and second step's losses, compiled to eager."""
        return _relative(*self.first_loss), _relative(*self.second_loss)


def _steps(count: float) -> str:
    return "never" if math.isinf(count) else f"{count:.0f}"


def _relative(eager: float, compiled: float) -> float:
    return abs(compiled - eager) / max(abs(eager), 1e-12)


def measure(step: TaskStep, warmup: int, repeats: int, steps: int) -> Measured:
    """Compile time, the losses of the first two steps (the second after one update with
    each one's gradients) and rotated repeats of ``steps`` steps each."""
    models = {False: copy.deepcopy(step.model), True: copy.deepcopy(step.model)}
    first: dict[bool, float] = {}
    second: dict[bool, float] = {}
    seconds: dict[bool, float] = {}
    for compiled in (False, True):
        start = time.perf_counter()
        first[compiled] = _train(step, models[compiled], compiled, 1).metrics["loss"]
        seconds[compiled] = time.perf_counter() - start
        second[compiled] = _train(step, models[compiled], compiled, 1).metrics["loss"]
    for compiled in (False, True):
        _train(step, models[compiled], compiled, warmup)
    times: dict[bool, list[float]] = {False: [], True: []}
    last: dict[bool, float] = {}
    for r in range(repeats):
        for compiled in (False, True) if r % 2 == 0 else (True, False):
            clock = _Clock(step.batches)
            result = _train(step, models[compiled], compiled, steps, clock)
            times[compiled].append(statistics.median(clock.steps()))
            last[compiled] = result.metrics["loss"]
    ratios = [c / e for e, c in zip(times[False], times[True], strict=True)]
    low, high = _interval(ratios)
    return Measured(
        step.task,
        eager_ms=1000 * statistics.median(times[False]),
        compiled_ms=1000 * statistics.median(times[True]),
        ratio=statistics.median(ratios),
        low=low,
        high=high,
        ratios=ratios,
        compile_s=seconds[True] - seconds[False],
        first_loss=(first[False], first[True]),
        second_loss=(second[False], second[True]),
        last_loss=(last[False], last[True]),
        total_steps=2 + warmup + repeats * steps,
        default_steps=step.settings.steps,
    )


def _label(key: str) -> str:
    """A profiler event's name for the table (inductor's graph calls carry a long hash)."""
    if key.startswith("## Call CompiledFxGraph"):
        return "inductor graph call (its fused kernels)"
    return key


def profile(step: TaskStep, compiled: bool, steps: int) -> tuple[list[dict[str, str]], float]:
    """The top operators by self CPU time over ``steps`` steps of the loop (per step), and
    the profiled CPU time per step in ms. The model is compiled before profiling starts."""
    model = copy.deepcopy(step.model)
    _train(step, model, compiled, 2)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        _train(step, model, compiled, steps)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    rows = [
        {
            "operator": _label(e.key),
            "self CPU ms/step": fmt(e.self_cpu_time_total / 1000 / steps),
            "share": f"{100 * e.self_cpu_time_total / total:.0f}%",
            "calls/step": fmt(e.count / steps),
        }
        for e in events[:PROFILE_TOP]
    ]
    return rows, total / 1000 / steps


def run(settings: Settings) -> Section:
    section = Section("torch.compile of the training step")
    section.add(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    warmup, repeats, steps = (3, 3, 8) if settings.quick else (10, 15, 20)
    section.add(
        f"Warm-up {warmup} steps of each; {repeats} repeats of {steps} steps (the first step"
        " of each repeat left out); torch's inductor backend (C++ kernels, one thread). The 95%"
        " interval of the ratio is the distribution-free one for a median (order statistics"
        " of the paired ratios). The CPU was shared with other jobs while this ran (see the"
        " load average above): absolute times are noisy, the paired ratios much less."
    )
    measured: list[Measured] = []
    task_steps = {task: task_step(task) for task in TASKS}
    rows = []
    for task, step in task_steps.items():
        with fresh_cache():
            result = measure(step, warmup, repeats, steps)
        measured.append(result)
        rows.append(
            {
                "task": f"{task} ({type(step.model).__name__}, batch {step.settings.batch_size})",
                "eager ms/step": fmt(result.eager_ms),
                "compiled ms/step": fmt(result.compiled_ms),
                "compiled / eager": fmt(result.ratio),
                "95% interval": f"{fmt(result.low)} – {fmt(result.high)}",
                "min – max": f"{fmt(min(result.ratios))} – {fmt(max(result.ratios))}",
                "one-off compile s (cold cache)": fmt(result.compile_s),
                "paid back after (steps)": _steps(result.break_even),
                "task's default steps": step.settings.steps,
            }
        )
    section.add(table(rows))
    section.add(
        "Correctness: the loss of the first step, on the same initial weights, batch and"
        " noise, and of the second, after one Adam update with each copy's own gradients"
        f" (relative differences must be below {LOSS_TOLERANCE:g}); and the last timed step's"
        " loss after both copies took the same steps (float differences may grow with"
        " training; shown, not judged)."
    )
    section.add(
        table(
            [
                {
                    "task": m.task,
                    "first loss, eager": f"{m.first_loss[0]:.7g}",
                    "first loss, compiled": f"{m.first_loss[1]:.7g}",
                    "relative difference (first)": fmt(m.loss_errors[0]),
                    "second loss, eager": f"{m.second_loss[0]:.7g}",
                    "second loss, compiled": f"{m.second_loss[1]:.7g}",
                    "relative difference (second)": fmt(m.loss_errors[1]),
                    f"loss after {m.total_steps} steps, eager / compiled": (
                        f"{m.last_loss[0]:.6g} / {m.last_loss[1]:.6g}"
                    ),
                }
                for m in measured
            ]
        )
    )
    slow = [m for m in measured if not m.faster or m.break_even > m.default_steps]
    why: dict[str, str] = {}
    for m in slow:
        step = task_steps[m.task]
        profile_steps = 10 if settings.quick else 50
        eager_rows, eager_cpu = profile(step, False, profile_steps)
        compiled_rows, compiled_cpu = profile(step, True, profile_steps)
        section.add(
            f"### Where the time of a {m.task} step goes\n\n"
            f"torch.profiler over {profile_steps} steps of the loop (per step; one train call,"
            " so set-up and the final checkpoint are in it); the top operators by self CPU"
            f" time. Eager ({fmt(eager_cpu)} ms/step profiled):\n\n"
            + table(eager_rows)
            + f"\n\nCompiled ({fmt(compiled_cpu)} ms/step profiled):\n\n"
            + table(compiled_rows)
        )
        top = eager_rows[:2]
        compiled_ops = {r["operator"] for r in compiled_rows}
        heaviest = " and ".join(
            f"{r['operator']} ({r['share']}"
            + (", also in the compiled profile" if r["operator"] in compiled_ops else "")
            + ")"
            for r in top
        )
        unchanged = all(r["operator"] in compiled_ops for r in top)
        why[m.task] = (
            f"the eager step's CPU time is led by {heaviest}"
            + (", kernels that compiled code calls unchanged" if unchanged else "")
            + "; compile fuses the elementwise work around them, while the objective,"
            " optimizer, clipping and EMA stay eager"
        )
    correct = all(max(m.loss_errors) < LOSS_TOLERANCE for m in measured)
    said = []
    for m in measured:
        interval = f"95% interval {fmt(m.low)} – {fmt(m.high)}"
        if not m.faster:
            said.append(f"{m.task} {fmt(m.ratio)}x eager ({interval}: no gain; {why[m.task]})")
            continue
        small = f"; the gain is small because {why[m.task]}" if m.task in why else ""
        said.append(
            f"{m.task} {fmt(m.ratio)}x eager ({interval}, faster; compiling once costs"
            f" {fmt(m.compile_s)} s with a cold cache, paid back after {_steps(m.break_even)}"
            f" steps against the task's default {m.default_steps}{small})"
        )
    losses = ", ".join(
        f"{m.task} {fmt(m.loss_errors[0])} and {fmt(m.loss_errors[1])}" for m in measured
    )
    section.decide(
        "compiled training steps (measured on two tasks): compile=true gives eager's loss and"
        " a faster step on at least one of core.toy2d and images.digits",
        correct and any(m.faster for m in measured),
        "compiled/eager step time: "
        + "; ".join(said)
        + f". Loss of the first and second step, compiled against eager, relative difference:"
        f" {losses}.",
    )
    return section
