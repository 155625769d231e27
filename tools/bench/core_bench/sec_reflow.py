"""Claim 1: reflow straightens the flow, so one Euler step gets close to the full ODE."""

from __future__ import annotations

from core_bench.common import Section, Settings, Target, sample_metrics, table
from core_bench.evaluate import STRAIGHTNESS_STEPS, eval_set, few_step_row
from core_bench.zoo import Zoo

__all__ = ["run"]

SEVERAL_FOLD = 3.0
CLOSE = 2.0


def run(settings: Settings, zoo: Zoo, targets: list[Target]) -> Section:
    section = Section("Reflow: straightness and one-step sampling (Liu et al. 2022)")
    section.add(
        "1-RF is an MLP trained with `ConditionalFlowMatching()` (independent coupling) for "
        f"{settings.steps} steps of batch {settings.batch}. 2-RF starts from 1-RF's weights and "
        "trains the same number of steps with the same objective on pairs (x0, 1-RF(x0)) made by "
        '`flow_core.objectives.reflow.generate_pairs` with `AdaptiveODE("dopri5", 1e-5, 1e-5)`. '
        "Straightness S = ∫E‖(X1 − X0) − v(X_t, t)‖²dt is `reflow.straightness` along "
        f"{STRAIGHTNESS_STEPS}-step Euler trajectories from held-out noise; SW2 is the sliced "
        f"Wasserstein-2 distance of {settings.eval_n} samples to as many held-out target samples "
        "(the row *second target draw* is the value a perfect sampler gets); endpoint RMS is "
        "the distance of Euler's endpoints to the same model's dopri5 endpoints."
    )
    ok_s, ok_close, why_s, why_close = True, True, [], []
    for target in targets:
        data = eval_set(target, settings)
        rows = []
        for kind, label in (("cfm", "1-RF (CFM)"), ("2-rf", "2-RF (one reflow)")):
            trained = zoo.get(target, kind)
            rows.append(few_step_row(label, trained.model, target, data, (1, 2, 100)))
        one, two = rows
        ratio = float(one["straightness S"]) / max(float(two["straightness S"]), 1e-12)
        close_one = float(one["Euler 1: SW2"]) / float(one["dopri5: SW2"])
        close = float(two["Euler 1: SW2"]) / float(two["dopri5: SW2"])
        floor = sample_metrics(target.sample(settings.eval_n), target, data.reference)["sliced W2"]
        rows.append({"model": "second target draw", "dopri5: SW2": floor})
        section.add(
            f"**{target.name}** (pairs generated in {zoo.pairs_seconds.get(target.name, 0):.1f} s)"
        )
        section.add(table(rows, list(rows[0].keys())))
        section.add(
            f"S(1-RF)/S(2-RF) = **{ratio:.1f}x**; 1-step SW2 / dopri5 SW2: 1-RF {close_one:.2f}x, "
            f"2-RF **{close:.2f}x**."
        )
        ok_s &= ratio >= SEVERAL_FOLD
        ok_close &= close <= CLOSE
        why_s.append(f"{target.name}: S(1-RF)/S(2-RF) = {ratio:.1f}x")
        why_close.append(f"{target.name}: 2-RF 1-step SW2 = {close:.2f}x its dopri5 SW2")
    section.decide(
        f"reflow lowers straightness several-fold (>= {SEVERAL_FOLD:g}x on every target)",
        ok_s,
        "; ".join(why_s) + ".",
    )
    section.decide(
        f"after reflow, 1-step Euler SW2 is close to (within {CLOSE:g}x of) the many-step SW2",
        ok_close,
        "; ".join(why_close) + ".",
    )
    return section
