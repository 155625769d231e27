"""BOSS straightening on the toy targets: fine-tune the trained CFM onto a K-step grid's chords.

Nguyen, Nguyen & Nguyen 2023, "Bellman Optimal Stepsize Straightening of Flow-Matching Models"
(arXiv 2312.16414), phase 2, as in its code (``ImageGeneration/finetune.py``): Euler reference
trajectories of the frozen teacher on the K_max-step uniform grid from a fixed set of noise
draws are made once, their states at the K-step grid's nodes kept, and a copy of the teacher
is fine-tuned with the squared loss onto the chords between consecutive nodes
(``flow_core.objectives.boss.BossStraightening`` fed precomputed ``"trajectory"`` batches).
The paper fine-tunes for 12k iterations on 5000 draws; here ``STEPS`` iterations on ``DRAWS``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from core_bench.common import (
    Section,
    Settings,
    Target,
    endpoint_rms,
    fit,
    frozen,
    sample_metrics,
    table,
)
from core_bench.evaluate import eval_set, ode_endpoints
from core_bench.zoo import Zoo

__all__ = ["BATCH", "DRAWS", "LR", "NFES", "STEPS", "add_straightening", "straighten"]

NFES = (2, 4)
"""The low end of the paper's 2–10 NFE, where a straighter field matters most."""
DRAWS = 5000
STEPS = 600
LR = 2e-4
BATCH = 256


def _batches(x0: Tensor, states: Tensor, generator: torch.Generator) -> Iterator[dict]:
    """Endless random minibatches of noise draws with their reference states at the nodes."""
    while True:
        index = torch.randint(x0.shape[0], (BATCH,), generator=generator)
        yield {"x0": x0[index], "trajectory": states[index]}


def straighten(
    teacher: nn.Module, dim: int, grid: Tensor, reference_steps: int, seed: int
) -> nn.Module:
    """A frozen copy of ``teacher`` fine-tuned onto the chords of ``grid`` (BOSS phase 2).

    ``teacher`` is a velocity model ``(x, t) -> v`` on vectors of ``dim`` elements; the
    reference trajectories start from ``DRAWS`` noise draws of seed ``seed``.
    """
    from flow_core.objectives.boss import BossStraightening, reference_states

    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn(DRAWS, dim, generator=generator)
    states = reference_states(teacher, x0, grid, reference_steps)
    objective = BossStraightening(reference_steps=reference_steps)
    objective.prepare(teacher, grid)
    student = copy.deepcopy(teacher)
    student.requires_grad_(True)
    torch.manual_seed(seed)
    fit(student, objective, _batches(x0, states, generator), STEPS, lr=LR)
    return frozen(student)


def _error(rows: list[dict[str, object]], nfe: int, model: str, grid: str) -> float:
    """The endpoint error of one (NFE, grid, model) row."""
    (value,) = (
        float(r["endpoint RMS to teacher's dopri5"])  # type: ignore[arg-type]
        for r in rows
        if r.get("NFE") == nfe and r.get("grid") == grid and r["model"] == model
    )
    return value


def add_straightening(
    section: Section,
    settings: Settings,
    zoo: Zoo,
    targets: list[Target],
    reference_steps: int,
    calibration_draws: int,
) -> None:
    """The straightening subsection and its claim: the trained CFM, straightened for ``NFES``
    on the Bellman grid and on the uniform grid, against the teacher on the same grids."""
    from flow_core.samplers.fixed_step import Euler
    from flow_core.samplers.grids import bellman_time_grid, uniform_grid

    section.add("### Straightening (BOSS phase 2)")
    section.add(
        f"The trained CFM of each target fine-tuned by `BossStraightening` for {STEPS} steps "
        f"of batch {BATCH} (Adam lr {LR:g}, cosine decay, clip 1) onto the chords of its "
        f"{reference_steps}-step Euler trajectories from {DRAWS} noise draws, once per grid "
        "and NFE; then Euler on that grid from the evaluation noise. Error: endpoint RMS to "
        "the teacher's dopri5 solution (rtol = atol = 1e-7), the map the student distils; "
        "SW2 to held-out target samples (the teacher's dopri5 SW2 is the reference row)."
    )
    ok, why, grid_effect, grid_ratios = True, [], [], []
    for target in targets:
        teacher = zoo.get(target, "cfm").model
        data = eval_set(target, settings)
        exact, _ = ode_endpoints(teacher, data.x0, tol=1e-7)
        reference = sample_metrics(exact, target, data.reference)["sliced W2"]
        calibration = torch.randn(
            calibration_draws, target.dim, generator=torch.Generator().manual_seed(99)
        )
        rows: list[dict[str, object]] = []
        for nfe in NFES:
            grids = {
                "bellman": bellman_time_grid(teacher, calibration, nfe, reference_steps),
                "uniform": uniform_grid(nfe),
            }
            for name, grid in grids.items():
                student = straighten(teacher, target.dim, grid, reference_steps, 500 + nfe)
                for label, model in (("teacher", teacher), ("straightened", student)):
                    with torch.no_grad():
                        samples = Euler(time_grid=grid).sample(model, data.x0)
                    rows.append(
                        {
                            "NFE": nfe,
                            "grid": name,
                            "model": label,
                            "endpoint RMS to teacher's dopri5": endpoint_rms(samples, exact),
                            "SW2": sample_metrics(samples, target, data.reference)["sliced W2"],
                        }
                    )
        rows.append({"model": "teacher, dopri5", "SW2": reference})
        section.add(f"**{target.name}**")
        section.add(table(rows, list(rows[0])))
        for nfe in NFES:
            error = functools.partial(_error, rows, nfe)
            ratio = error("straightened", "bellman") / error("teacher", "bellman")
            ok &= ratio < 1
            why.append(f"{target.name} NFE {nfe}: {ratio:.2f}")
            grid_ratio = error("straightened", "bellman") / error("straightened", "uniform")
            grid_ratios.append(grid_ratio)
            grid_effect.append(f"{target.name} NFE {nfe}: {grid_ratio:.2f}")
    section.decide(
        "BOSS straightening lowers the few-step error further: the straightened CFM on the "
        "Bellman grid lands closer to the teacher's ODE solution than the teacher on that grid "
        f"(NFE {', '.join(str(n) for n in NFES)}, every target)",
        ok,
        "straightened / teacher endpoint RMS on the Bellman grid: "
        + "; ".join(why)
        + ". Straightened on the Bellman grid / straightened on the uniform grid: "
        + "; ".join(grid_effect)
        + (
            f", so the gain comes from the fine-tune: the grid moves the straightened error by "
            f"at most {100 * max(abs(r - 1) for r in grid_ratios):.0f}%."
            if max(abs(r - 1) for r in grid_ratios) < 0.2
            else "."
        ),
    )
