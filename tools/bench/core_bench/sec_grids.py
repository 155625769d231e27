"""Claim 4: Bellman-optimal step grids (BOSS) beat uniform and shifted grids at equal NFE.

BOSS: Nguyen, Nguyen & Nguyen 2023, "Bellman Optimal Stepsize Straightening of Flow-Matching
Models" (arXiv 2312.16414). The settings follow the paper's code where the toy setting allows
(``SETTINGS`` lists each against ours); the curvature profile of each model's trajectories
(:mod:`core_bench.curvature`) says how much any grid could gain over the uniform one.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from core_bench import straighten
from core_bench.common import Section, Settings, Target, endpoint_rms, table
from core_bench.curvature import FINE_STEPS, Profile, profile
from core_bench.evaluate import eval_set, ode_endpoints
from core_bench.zoo import Zoo

__all__ = ["run"]

NFES = (2, 4, 6, 8, 10)
SHIFT = 3.0
REFERENCE_STEPS = 100
CALIBRATION = 256
BRUTE_REFERENCE = 12
BINS = 10
PROFILE_SAMPLES = 1000
CONTROL_STD = 0.02
"""Mode width of the control ring (the bench's ring has 0.2)."""

SETTINGS = [
    {
        "setting": "reference solve (K_max)",
        "BOSS (paper's code)": "Euler, 100 uniform steps from t = 0",
        "here": f"Euler, {REFERENCE_STEPS} uniform steps from t = 0",
    },
    {
        "setting": "calibration noise",
        "BOSS (paper's code)": "100 draws (`bellman.num_samples`)",
        "here": f"{CALIBRATION} draws, apart from the evaluation noise",
    },
    {
        "setting": "jump cost C[i, j]",
        "BOSS (paper's code)": "‖Euler jump − reference‖² summed over pixels, mean over "
        "draws (`l2_pixel`; LPIPS optional)",
        "here": "the same squared L2 per draw, mean over draws",
    },
    {
        "setting": "schedule",
        "BOSS (paper's code)": "K-jump min-cost path 0 → K_max by dynamic programming",
        "here": "the same (`bellman_nodes`; checked against brute force below)",
    },
    {
        "setting": "NFE",
        "BOSS (paper's code)": "2–10 (fine-tune data for 1, 2, 4, 6, 8, 10)",
        "here": ", ".join(str(n) for n in NFES),
    },
    {
        "setting": "models",
        "BOSS (paper's code)": "pretrained 1-RF image U-Nets (CIFAR-10, LSUN, AFHQ, CelebA-HQ)",
        "here": "exact mixture velocity; the reflow section's 1-RF (CFM) MLP",
    },
    {
        "setting": "quality measure",
        "BOSS (paper's code)": "FID of the samples",
        "here": "endpoint RMS to the same model's dopri5 solution (the discretisation error "
        "the grid is chosen to reduce)",
    },
    {
        "setting": "straightening",
        "BOSS (paper's code)": "12k fine-tuning iterations (full or LoRA) onto the chords of "
        "Euler reference trajectories from 5000 noise draws",
        "here": f"`BossStraightening` (the same chord loss) for {straighten.STEPS} "
        f"iterations on {straighten.DRAWS} draws, NFE "
        f"{', '.join(str(n) for n in straighten.NFES)}, below; on the 8×8 digits in the "
        "images page (BOSS-2, BOSS-4)",
    },
]


def _models(zoo: Zoo, target: Target) -> list[tuple[str, nn.Module]]:
    from flow_core.datasets.mixture import MixtureVelocity

    return [
        ("exact mixture velocity", MixtureVelocity(target.mixture).eval()),
        ("trained CFM", zoo.get(target, "cfm").model),
    ]


def _error_rows(
    label: str, model: nn.Module, x0: torch.Tensor, calibration: torch.Tensor, prof: Profile
) -> list:
    """Endpoint RMS to dopri5 of Euler on the three grids at every NFE of ``NFES``, with the
    first-order estimate of the Bellman grid's error over the uniform one from ``prof``."""
    from flow_core.samplers.fixed_step import Euler
    from flow_core.samplers.grids import bellman_nodes, grid_cost_matrix, shifted_grid, uniform_grid

    exact, _ = ode_endpoints(model, x0, tol=1e-7)
    # bellman_time_grid(model, calibration, nfe, REFERENCE_STEPS), one cost matrix for all NFEs
    cost = grid_cost_matrix(model, calibration, REFERENCE_STEPS)
    rows = []
    for nfe in NFES:
        nodes = bellman_nodes(cost, nfe)
        lattice = [round(k * REFERENCE_STEPS / nfe) for k in range(nfe + 1)]
        grids = {
            "uniform": uniform_grid(nfe),
            "shifted": shifted_grid(nfe, SHIFT),
            "bellman": uniform_grid(REFERENCE_STEPS)[nodes],
        }
        with torch.no_grad():
            errors = {
                name: endpoint_rms(Euler(time_grid=grid).sample(model, x0), exact)
                for name, grid in grids.items()
            }
        rows.append(
            {
                "model": label,
                "NFE": nfe,
                **errors,
                "bellman / uniform": errors["bellman"] / errors["uniform"],
                "bellman / best other": errors["bellman"]
                / min(errors["uniform"], errors["shifted"]),
                "Bellman cost: bellman / uniform": _path_cost(cost, nodes)
                / _path_cost(cost, lattice),
                "first-order estimate: bellman / uniform": prof.first_order_error(grids["bellman"])
                / prof.first_order_error(grids["uniform"]),
                "bellman grid": " ".join(f"{t:.2f}" for t in grids["bellman"].tolist()),
            }
        )
    return rows


def _control(
    settings: Settings, profiles: dict[tuple[str, str], Profile]
) -> tuple[str, list[dict[str, object]]]:
    """The error rows of the control field (its profile goes into ``profiles``)."""
    from flow_core.datasets.mixture import GaussianMixture, MixtureVelocity

    target = Target(f"ring-2d, std {CONTROL_STD:g}", GaussianMixture.ring(std=CONTROL_STD))
    data = eval_set(target, settings)
    calibration = torch.randn(CALIBRATION, target.dim, generator=torch.Generator().manual_seed(99))
    model = MixtureVelocity(target.mixture).eval()
    prof = profile(model, data.x0[:PROFILE_SAMPLES], BINS)
    profiles[target.name, "exact mixture velocity"] = prof
    return target.name, _error_rows("exact mixture velocity", model, data.x0, calibration, prof)


def _path_cost(cost: torch.Tensor, nodes: list[int]) -> float:
    """BOSS's objective: the summed jump costs along ``nodes``."""
    return sum(float(cost[i, j]) for i, j in itertools.pairwise(nodes))


def _reading(
    profiles: dict[tuple[str, str], Profile],
    rows: list[dict[str, object]],
    control: str,
    control_rows: list[dict[str, object]],
) -> str:
    """Sentences over the claim's fields and the control: how spread the curvature is, what
    the grid gained and what the first-order estimate says."""

    def column(rows: list[dict[str, object]], name: str) -> list[float]:
        return [float(r[name]) for r in rows]  # type: ignore[arg-type]

    def span(values: list[float]) -> str:
        return f"{min(values):.2f}–{max(values):.2f}"

    fields = [p for (target, _), p in profiles.items() if target != control]
    fullest = [100 * max(p.acceleration_share) for p in fields]
    estimate = "first-order estimate: bellman / uniform"
    mine = profiles[control, "exact mixture velocity"]
    little = min(p.endpoint_ratio for p in fields) > 0.9
    return (
        f"Over the {len(fields)} fields of the claim the fullest tenth of [0, 1] holds "
        f"{min(fullest):.0f}–{max(fullest):.0f}% of the RMS acceleration (10% if spread "
        "evenly), so to first order the best grid's endpoint error is "
        f"{span([p.endpoint_ratio for p in fields])} of the uniform grid's"
        + (": there is little for any grid to gain. " if little else ". ")
        + "The Bellman grid lowers its own objective, the summed local "
        f"jump costs, to {span(column(rows, 'Bellman cost: bellman / uniform'))} of uniform's, "
        f"while its endpoint error is {span(column(rows, 'bellman / uniform'))} of uniform's "
        f"(first-order estimate {span(column(rows, estimate))}): the Bellman cost sums the "
        "squares of the steps' errors where they are made, while the endpoint error adds the "
        "errors themselves, with their directions, as the flow carries them on to t = 1. On "
        "the control "
        f"({control}) the fullest tenth holds {100 * max(mine.acceleration_share):.0f}% of "
        f"the acceleration, and the Bellman grid's endpoint error is "
        f"{span(column(control_rows, 'bellman / uniform'))} of uniform's (first-order "
        f"estimate {span(column(control_rows, estimate))})"
        + (
            ": concentrated acceleration alone does not make the Bellman grid gain on the "
            "endpoint error."
            if min(column(control_rows, "bellman / uniform")) >= 0.95
            else "."
        )
    )


def _bin_labels() -> list[str]:
    return [f"{k / BINS:.1f}–{(k + 1) / BINS:.1f}" for k in range(BINS)]


def _profile_rows(profiles: dict[tuple[str, str], Profile]) -> tuple[list, list]:
    """The overall numbers and the per-bin shares (in %) of every profile."""
    overall, shares = [], []
    for (target, label), p in profiles.items():
        overall.append(
            {
                "target": target,
                "model": label,
                "straightness S": p.straightness,
                "E‖X1 − X0‖²": p.chord,
                "S / E‖X1 − X0‖²": p.relative,
                "fullest tenth's share of ∫m": f"{100 * max(p.acceleration_share):.0f}%",
                "best grid / uniform, BOSS cost": p.boss_ratio,
                "best grid / uniform, endpoint error": p.endpoint_ratio,
            }
        )
        for name, values in (("s(t), %", p.straightness_share), ("m(t), %", p.acceleration_share)):
            row = {"target": target, "model": label, "profile": name}
            row.update({b: f"{100 * v:.0f}" for b, v in zip(_bin_labels(), values, strict=True)})
            shares.append(row)
    return overall, shares


def run(settings: Settings, zoo: Zoo, targets: list[Target]) -> Section:
    section = Section("Bellman-optimal step grids (BOSS, Nguyen et al. 2023)")
    section.add(
        "Euler sampling at equal NFE on three grids: uniform, SD3-shifted "
        f"(t′ = t/(s − (s − 1)t), s = {SHIFT:g}) and the Bellman grid of "
        f"`bellman_time_grid(model, x0_cal, steps, reference_steps={REFERENCE_STEPS})`, "
        f"calibrated on {CALIBRATION} noise samples drawn apart from the {settings.eval_n} "
        "evaluation samples. "
        "*Bellman cost* is BOSS's own objective, the summed jump costs C[i, j] of the path on "
        "the calibration draws, for the Bellman nodes over the uniform ones (node "
        f"round(k·{REFERENCE_STEPS}/K)). "
        "Error: RMS distance of the Euler endpoints to the same model's dopri5 solution "
        "(rtol = atol = 1e-7) from the same noise. Models: the exact velocity of the mixture "
        "(no training) and the trained CFM model of the reflow section. The settings against "
        "the paper's code (nguyenngocbaocmt02/BOSS, `ImageGeneration/sampling.py` and "
        "`finetune.py`):"
    )
    section.add(table(SETTINGS))
    section.add(
        "The differences that remain are of scale (a toy MLP and an exact field instead of "
        "image U-Nets, more calibration draws) and of the measure: FID mixes the grid's "
        "discretisation error with the model's own error, the endpoint distance to dopri5 "
        "isolates the former, which is the quantity the Bellman cost is built from."
    )
    all_better, why = True, []
    profiles: dict[tuple[str, str], Profile] = {}
    all_rows: list[dict[str, object]] = []
    for target in targets:
        data = eval_set(target, settings)
        calibration = torch.randn(
            CALIBRATION, target.dim, generator=torch.Generator().manual_seed(99)
        )
        rows = []
        for label, model in _models(zoo, target):
            prof = profile(model, data.x0[:PROFILE_SAMPLES], BINS)
            profiles[target.name, label] = prof
            rows += _error_rows(label, model, data.x0, calibration, prof)
        for label, _ in _models(zoo, target):
            mine = [r for r in rows if r["model"] == label]
            ratios = [float(r["bellman / best other"]) for r in mine]
            to_uniform = [float(r["bellman / uniform"]) for r in mine]
            wins = sum(x < 1 for x in ratios)
            all_better &= wins == len(ratios)
            p = profiles[target.name, label]
            boss = [float(r["Bellman cost: bellman / uniform"]) for r in mine]
            why.append(
                f"{target.name}, {label}: Bellman lower at {wins} of {len(ratios)} NFEs, error "
                f"ratio to the better other grid {min(ratios):.2f}–{max(ratios):.2f}, to "
                f"uniform {min(to_uniform):.2f}–{max(to_uniform):.2f} (Bellman cost "
                f"{min(boss):.2f}–{max(boss):.2f} of uniform's); the fullest tenth of [0, 1] "
                f"holds {100 * max(p.acceleration_share):.0f}% of ∫m (10% if spread evenly), "
                f"first-order estimate of the best grid's endpoint error "
                f"{p.endpoint_ratio:.2f} of uniform's"
            )
        all_rows += rows
        section.add(f"**{target.name}** — endpoint RMS error to dopri5")
        section.add(table(rows))
    control, control_rows = _control(settings, profiles)
    section.add(
        f"**{control}** — a control outside the claim: the exact field of the ring with modes "
        f"{0.2 / CONTROL_STD:g}x narrower, whose acceleration gathers near t = 1 "
        "(profile below) — endpoint RMS error to dopri5"
    )
    section.add(table(control_rows))

    section.add("### Where the trajectories bend")
    section.add(
        "A grid can only beat the uniform one where the error of a step depends on where in "
        "[0, 1] it is taken, i.e. where the curvature of the trajectories is concentrated in "
        f"part of the interval. Measured on {FINE_STEPS}-step Euler solves of each model's "
        f"ODE from the first {PROFILE_SAMPLES} evaluation noise draws "
        "(`core_bench/curvature.py`): the straightness S = ∫s(t)dt, "
        "s(t) = E‖(X1 − X0) − v(X_t, t)‖² (Liu et al. 2022, as in the reflow section), and the "
        "RMS acceleration m(t) = (E‖dv(X_t, t)/dt‖²)^½ along the trajectories, which sets "
        "Euler's local error (h²/2)·m(t) over a step h at t and so BOSS's jump cost for short "
        "jumps. With step size h(t) (∫dt/h = K), the summed local cost ¼∫h³m²dt and the "
        "first-order endpoint error ½∫h·m dt are both least for h ∝ m^−½; the last two columns "
        "are those minima over the uniform grid's, (∫m^½)⁴/∫m² and (∫m^½)²/∫m: 1 when m is "
        "constant in t, small when m is concentrated. The column *first-order estimate: "
        "bellman / uniform* of the error tables is ½Σ_k h_k∫m dt over the steps "
        "[t_k, t_k + h_k] of the Bellman grid over the same sum for the uniform grid: each "
        "step's local error added up in size, as if it reached t = 1 unchanged. These are "
        "small-step estimates; the measured ratios also hold how the flow shrinks or grows an "
        "error on its way to t = 1, the higher-order terms of 2–10-step grids and the "
        "cancellation of errors between steps."
    )
    overall, shares = _profile_rows(profiles)
    section.add(table(overall))
    section.add(
        "Share (%) of ∫s(t)dt and of ∫m(t)dt in each tenth of [0, 1] (t = 0 noise, t = 1 data):"
    )
    section.add(table(shares))
    section.decide(
        "Bellman grids beat uniform and shifted grids at equal NFE (lower error at every NFE, "
        "model and target)",
        all_better,
        "; ".join(why) + ". " + _reading(profiles, all_rows, control, control_rows),
    )

    straighten.add_straightening(section, settings, zoo, targets, REFERENCE_STEPS, CALIBRATION)

    from flow_core.samplers.grids import bellman_nodes, brute_force_nodes, grid_cost_matrix

    section.add("### Dynamic programme against brute force")
    section.add(
        f"On one cost matrix `grid_cost_matrix(model, x0_cal, reference_steps={BRUTE_REFERENCE})` "
        "the nodes chosen by `bellman_nodes` (the O(K·N²) recursion) and by `brute_force_nodes` "
        "(every subset of interior nodes) for K steps."
    )
    rows, equal = [], True
    for target in targets:
        calibration = torch.randn(
            CALIBRATION, target.dim, generator=torch.Generator().manual_seed(98)
        )
        for label, model in _models(zoo, target):
            cost = grid_cost_matrix(model, calibration, BRUTE_REFERENCE)
            for steps in range(1, 7):
                dp = bellman_nodes(cost, steps)
                brute = brute_force_nodes(cost, steps)
                total_dp = sum(float(cost[i, j]) for i, j in itertools.pairwise(dp))
                total_bf = sum(float(cost[i, j]) for i, j in itertools.pairwise(brute))
                same = dp == brute or abs(total_dp - total_bf) <= 1e-12 * max(total_bf, 1.0)
                equal &= same
                rows.append(
                    {
                        "target": target.name,
                        "model": label,
                        "K": steps,
                        "DP nodes": str(dp),
                        "brute-force nodes": str(brute),
                        "DP cost": total_dp,
                        "brute-force cost": total_bf,
                        "equal": same,
                    }
                )
    section.add(table(rows))
    section.decide(
        f"the Bellman DP equals brute force for small N (N = {BRUTE_REFERENCE}, K = 1…6)",
        equal,
        f"{sum(bool(r['equal']) for r in rows)} of {len(rows)} cases give the same nodes or cost.",
    )
    return section
