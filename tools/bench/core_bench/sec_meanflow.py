"""Claim 3: MeanFlow and SplitMeanFlow at 1 NFE; the JVP target; memory per training step."""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Callable

import torch
from torch import Tensor, nn

from core_bench.common import Section, Settings, Target, interleaved_timing, sample_metrics, table
from core_bench.evaluate import euler, eval_set, ode_endpoints
from core_bench.zoo import Zoo

__all__ = ["peak_bytes", "run"]

FAR_BETTER = 2.0  # "far better": at least 2x lower sliced W2 than 1-step Euler on CFM
MEMORY_BATCHES = (256, 1024)
MEMORY_HIDDEN, MEMORY_DEPTH = 512, 4


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak CPU memory allocated by torch while ``fn`` runs, above what was live before.

    torch.profiler with ``profile_memory=True`` records every allocation and free of the CPU
    allocator as a ``[memory]`` event with a signed byte count; the peak of their running sum,
    in time order, is the step's high-water mark.
    """
    from torch.profiler import ProfilerActivity, profile

    # The profiler prints a line to stderr at each start and stop: silence file descriptor 2.
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    events = sorted(
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]"
    )
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak


def _velocity_of(model: nn.Module) -> nn.Module:
    class Instantaneous(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(
            self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None
        ) -> torch.Tensor:
            return self.inner(x, t, t, cond)

    return Instantaneous()


def _jvp_check(model: nn.Module, target: Target) -> dict[str, object]:
    """The library's MeanFlow target against a central finite difference, in float64."""
    from flow_core.objectives.meanflow import mean_flow_target

    m = copy.deepcopy(model).double()
    g = torch.Generator().manual_seed(7)
    n = 256
    x0 = torch.randn(n, target.dim, generator=g, dtype=torch.float64)
    x1 = target.mixture.to(dtype=torch.float64).sample(n, g)
    a, b = (
        torch.rand(n, generator=g, dtype=torch.float64),
        torch.rand(n, generator=g, dtype=torch.float64),
    )
    r, t = torch.minimum(a, b), torch.maximum(a, b)
    x_r = (1 - r[:, None]) * x0 + r[:, None] * x1
    v = x1 - x0
    _, u_tgt = mean_flow_target(m, x_r, r, t, v)
    jvp = (u_tgt - v) / (t - r)[:, None]  # = v·∂_x u + ∂_r u
    h = 1e-5
    with torch.no_grad():
        fd = (m(x_r + h * v, r + h, t) - m(x_r - h * v, r - h, t)) / (2 * h)
    err = (jvp - fd).norm(dim=1) / fd.norm(dim=1).clamp_min(1e-12)
    return {
        "target": target.name,
        "samples": n,
        "median relative error": float(err.median()),
        "max relative error": float(err.max()),
        "FD step h": h,
    }


def _memory_rows(settings: Settings, target: Target) -> list[dict[str, object]]:
    from flow_core.models.mlp import MLPAverageVelocity
    from flow_core.objectives.meanflow import MeanFlow
    from flow_core.objectives.splitmeanflow import SplitMeanFlow

    rows = []
    for batch in MEMORY_BATCHES:
        torch.manual_seed(settings.seed)
        base = MLPAverageVelocity(dim=target.dim, hidden=MEMORY_HIDDEN, depth=MEMORY_DEPTH)
        x1 = target.sample(batch, torch.Generator().manual_seed(batch))
        steps = {}
        for name, objective in (("MeanFlow", MeanFlow()), ("SplitMeanFlow", SplitMeanFlow())):
            model = copy.deepcopy(base)

            def step(
                objective: Callable = objective, model: nn.Module = model, x1: Tensor = x1
            ) -> None:
                loss, _ = objective(model, {"x1": x1})
                loss.backward()
                model.zero_grad(set_to_none=True)

            steps[name] = step
        peaks = {}
        for name, step in steps.items():
            step()  # warm up (lazy allocations outside the measurement)
            torch.manual_seed(1)
            peaks[name] = max(peak_bytes(step) for _ in range(3))
        times = interleaved_timing(steps, repeats=max(3, settings.repeats // 2), warmup=1)
        rows.append(
            {
                "batch": batch,
                "MeanFlow peak MiB": peaks["MeanFlow"] / 2**20,
                "SplitMeanFlow peak MiB": peaks["SplitMeanFlow"] / 2**20,
                "Split / Mean memory": peaks["SplitMeanFlow"] / peaks["MeanFlow"],
                "MeanFlow step ms": 1000 * times["MeanFlow"],
                "SplitMeanFlow step ms": 1000 * times["SplitMeanFlow"],
            }
        )
    return rows


def run(settings: Settings, zoo: Zoo, targets: list[Target]) -> Section:
    from flow_core.samplers.average import FewStepAverageVelocity

    section = Section("MeanFlow and SplitMeanFlow: one-step generation")
    section.add(
        "`MLPAverageVelocity` (same width and depth as the CFM model) trained with `MeanFlow()` "
        "and `SplitMeanFlow()` (library defaults: flow ratio 0.75, logit-normal(0.4, 1) times on "
        "t) for "
        "the same steps and batch, sampled with `FewStepAverageVelocity(steps=k)` (k NFE). The "
        "baseline is k-step Euler on the trained CFM model of the reflow section; its dopri5 "
        "row is the many-step reference."
    )
    better, why = True, []
    for target in targets:
        data = eval_set(target, settings)
        cfm = zoo.get(target, "cfm").model
        rows = []
        for k in (1, 2):
            m = sample_metrics(euler(cfm, data.x0, k), target, data.reference)
            rows.append({"model": "CFM", "sampler": f"Euler {k}", "NFE": k, **m})
        exact, nfe = ode_endpoints(cfm, data.x0)
        rows.append(
            {
                "model": "CFM",
                "sampler": "dopri5",
                "NFE": nfe,
                **sample_metrics(exact, target, data.reference),
            }
        )
        for kind, label in (("meanflow", "MeanFlow"), ("split-meanflow", "SplitMeanFlow")):
            trained = zoo.get(target, kind)
            for k in (1, 2):
                with torch.no_grad():
                    samples = FewStepAverageVelocity(steps=k).sample(trained.model, data.x0)
                rows.append(
                    {"model": label, "sampler": f"average velocity, {k} jump", "NFE": k}
                    | sample_metrics(samples, target, data.reference)
                    | {"train s": trained.seconds}
                )
            with torch.no_grad():
                inst, inst_nfe = ode_endpoints(_velocity_of(trained.model), data.x0)
            rows.append(
                {"model": label, "sampler": "dopri5 on u(x, t, t)", "NFE": inst_nfe}
                | sample_metrics(inst, target, data.reference)
            )
        section.add(f"**{target.name}**")
        section.add(table(rows, list(dict.fromkeys(k for r in rows for k in r))))
        euler1 = float(rows[0]["sliced W2"])
        mf1 = float(
            next(r for r in rows if r["model"] == "MeanFlow" and r["NFE"] == 1)["sliced W2"]
        )
        smf1 = float(
            next(r for r in rows if r["model"] == "SplitMeanFlow" and r["NFE"] == 1)["sliced W2"]
        )
        better &= euler1 >= FAR_BETTER * mf1 and euler1 >= FAR_BETTER * smf1
        why.append(
            f"{target.name}: 1-NFE SW2 CFM-Euler {euler1:.3g}, MeanFlow {mf1:.3g} "
            f"({euler1 / mf1:.1f}x lower), SplitMeanFlow {smf1:.3g} ({euler1 / smf1:.1f}x lower)"
        )
    section.decide(
        f"MeanFlow and SplitMeanFlow at 1 NFE are far better (>= {FAR_BETTER:g}x lower SW2) than "
        "1-step Euler on CFM",
        better,
        "; ".join(why) + ".",
    )

    section.add("### The MeanFlow JVP target against a finite difference")
    section.add(
        "`flow_core.objectives.meanflow.mean_flow_target` on the trained MeanFlow model, in "
        "float64, at random (x_r, r, t) from the linear path: its total derivative "
        "(u_tgt − v)/(t − r) = v·∂ₓu + ∂ᵣu against the central difference "
        "[u(x_r + h·v, r + h, t) − u(x_r − h·v, r − h, t)]/(2h); relative error per sample."
    )
    rows = [_jvp_check(zoo.get(target, "meanflow").model, target) for target in targets]
    section.add(table(rows))
    worst = max(float(r["max relative error"]) for r in rows)
    section.decide(
        "the MeanFlow JVP target matches a finite difference (max relative error < 1e-5)",
        worst < 1e-5,
        f"worst relative error {worst:.2g} over {sum(int(r['samples']) for r in rows)} samples.",
    )

    section.add("### Peak memory of one training step")
    section.add(
        f"One step (objective, backward) on `MLPAverageVelocity` {MEMORY_DEPTH}x{MEMORY_HIDDEN}. "
        "Method: torch.profiler with `profile_memory=True` records each allocation and free of "
        "torch's CPU allocator; the peak of their running sum over the step is its high-water mark "
        "above what was already live (parameters, data). Highest of 3 measured steps; step time is "
        "the median of interleaved repeats."
    )
    lower, why_mem = True, []
    for target in targets:
        rows = _memory_rows(settings, target)
        section.add(f"**{target.name}**")
        section.add(table(rows))
        lower &= all(float(r["Split / Mean memory"]) < 1.0 for r in rows)
        why_mem.append(
            f"{target.name}: SplitMeanFlow/MeanFlow peak "
            + ", ".join(
                f"{float(r['Split / Mean memory']):.2f}x (batch {r['batch']})" for r in rows
            )
        )
    section.decide(
        "SplitMeanFlow's peak memory per step is below MeanFlow's", lower, "; ".join(why_mem) + "."
    )
    return section
