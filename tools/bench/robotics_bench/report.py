"""The benchmark page: tables measured by the runs, the figure, and a verdict per claim."""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robotics_bench.runs import table

__all__ = ["write_page"]

DM1 = "DM1 (meanflow + infonce-l2)"
PLAIN = "meanflow, no dispersive"


def _mean(rows: Sequence[dict[str, Any]], head: str, nfe: int, key: str) -> float | None:
    values = [r[key] for r in rows if r["head"] == head and r["nfe"] == nfe]
    return statistics.fmean(values) if values else None


def _summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = sorted({(r["head"], r["nfe"]) for r in rows}, key=lambda k: (_order(rows, k[0]), k[1]))
    out = []
    for head, nfe in keys:
        mine = [r for r in rows if r["head"] == head and r["nfe"] == nfe]
        episodes = len(mine)
        out.append(
            {
                "head": head,
                "NFE": nfe,
                "success (mean over seeds x envs)": statistics.fmean(r["success"] for r in mine),
                "runs": episodes,
                "latency ms per chunk (median)": statistics.median(r["latency_ms"] for r in mine),
                "return": statistics.fmean(r["return"] for r in mine),
                "erank mid": statistics.fmean(r["erank_mid"] for r in mine),
                "modes covered": statistics.fmean(r["modes_covered"] for r in mine),
            }
        )
    return out


def _order(rows: Sequence[dict[str, Any]], head: str) -> int:
    return [r["head"] for r in rows].index(head)


def _f(value: float | None) -> str:
    return "n/a (not run)" if value is None else f"{value:.2f}"


def _verdicts(
    heads: list[dict[str, Any]],
    variants: list[dict[str, Any]],
    episodes: int,
    latency: list[dict[str, Any]],
) -> str:
    lines = []
    one = _mean(heads, DM1, 1, "success")
    multi = [_mean(heads, DM1, n, "success") for n in (2, 5, 10)]
    best_multi = max((v for v in multi if v is not None), default=None)
    tol = 0.15
    if one is None or best_multi is None:
        verdict = "not run"
    elif not best_multi and not one:
        verdict = "not testable here: no setting succeeded"
    else:
        verdict = "holds" if one >= best_multi - tol else "not reproduced"
    lines.append(
        f"- **One step is as good as several** (DM1 at NFE 1 vs its best of NFE 2/5/10, within"
        f" {tol:.2f}): {_f(one)} vs {_f(best_multi)} → **{verdict}**."
    )
    others = {
        head: max((r["success"] for r in heads if r["head"] == head), default=None)
        for head in ("cfm + euler", "cfm + sde (diffusion-style)", "bc-mse")
    }
    best = max((v for v in others.values() if v is not None), default=None)
    if one is not None and best is not None:
        verdict = "holds" if one >= best else "contradicted at this size"
        named = ", ".join(f"{k} {_f(v)}" for k, v in others.items())
        lines.append(
            f"- **DM1 beats the multi-step and BC policies** (paper: +10–20 points over diffusion"
            f" policies): DM1 at NFE 1 {_f(one)} vs the best NFE of each other head ({named})"
            f" → **{verdict}**."
        )
    clean = {row["head"]: row for row in latency}
    sde = clean.get("cfm + sde (NFE 100)")
    euler = clean.get("cfm + euler (NFE 10)")
    if not (sde and euler):
        lines.append("- **20–40x lower latency than a diffusion policy**: not run")
    else:
        ratio = sde["x DM1"]
        verdict = "holds" if ratio >= 20 else "smaller here"
        lines.append(
            f"- **20–40x lower latency than a diffusion policy** (side-by-side timing below):"
            f" SDE-100 takes **{ratio:.0f}x** the time of 1-step DM1 per chunk, Euler-10"
            f" {euler['x DM1']:.1f}x → **{verdict}** (with a small network the ratio is about"
            " the step count; DM1's 20–40x was against 100-step diffusion on a ViT policy)."
        )
    plain = _mean(heads, PLAIN, 1, "success")
    gain = (one or 0.0) - (plain or 0.0)
    noise = 1.96 * (0.25 / max(episodes, 1)) ** 0.5
    if one is None or plain is None:
        verdict = "not run"
    elif not one and not plain:
        verdict = "not testable here: neither succeeded"
    elif gain >= 0.10 and gain > noise:
        verdict = "holds"
    elif gain <= -0.10 and -gain > noise:
        verdict = "contradicted"
    else:
        verdict = "not resolved at this size"
    lines.append(
        f"- **Dispersive term adds 10–20 points** (DM1 vs MeanFlow alone at NFE 1): {_f(one)} vs"
        f" {_f(plain)} ({gain:+.2f}; a difference under ~{noise:.2f} is within the episodes'"
        f" sampling noise) → **{verdict}**."
    )
    if not variants:
        lines.append("  - the hinge, InfoNCE-cosine and covariance variants were not run here")
    for row in _summary(variants):
        diff = row["success (mean over seeds x envs)"] - (plain or 0.0)
        lines.append(
            f"  - {row['head']}: success {row['success (mean over seeds x envs)']:.2f}"
            f" ({diff:+.2f} vs none), erank mid {row['erank mid']:.1f}"
        )
    rank_dm1 = _mean(heads, DM1, 1, "erank_mid")
    rank_plain = _mean(heads, PLAIN, 1, "erank_mid")
    if rank_dm1 and rank_plain:
        verdict = "holds" if rank_dm1 > rank_plain else "not seen"
        lines.append(
            f"- **Dispersion raises the embeddings' effective rank** (mid layer): {rank_dm1:.1f}"
            f" vs {rank_plain:.1f} without → **{verdict}**."
        )
    covered = _mean(heads, DM1, 1, "modes_covered")
    bc = _mean(heads, "bc-mse", 1, "modes_covered")
    if covered is not None and bc is not None:
        verdict = "holds" if covered >= 1.5 and covered >= bc else "not seen"
        lines.append(
            f"- **Both demonstrated modes survive in one-step generation**: DM1 covers"
            f" {covered:.1f} of 2 detour sides (BC-MSE {bc:.1f}) → **{verdict}**."
        )
    return "\n".join(lines) + "\n"


def write_page(
    out: Path,
    figures: Path,
    heads: list[dict[str, Any]],
    variants: list[dict[str, Any]],
    base: dict[str, object],
    seeds: list[int],
    envs: list[str],
    header: str,
    minutes: float,
    quick: bool,
) -> None:
    from flow_robotics.figures import success_vs_nfe
    from robotics_bench.latency import measure

    latency = measure(
        Path(__file__).resolve().parents[3] / "build/bench/robotics-runs", int(base["hidden"])
    )

    rows = [
        {
            "head": r["head"],
            "nfe": r["NFE"],
            "success": r["success (mean over seeds x envs)"],
            "success_low": r["success (mean over seeds x envs)"],
            "success_high": r["success (mean over seeds x envs)"],
            "latency_ms": r["latency ms per chunk (median)"],
        }
        for r in _summary(heads)
    ]
    success_vs_nfe(figures / "success-vs-nfe.png", rows)
    strip = Path("build/bench/robotics-runs") / f"dm1-seed{seeds[0]}" / "figures" / "rollout.png"
    root = Path(__file__).resolve().parents[3]
    has_strip = (root / strip).exists()
    if has_strip:
        shutil.copy(root / strip, figures / "rollout.png")
    episodes = int(base["episodes"]) * len(seeds) * len(envs)
    settings = ", ".join(f"{k}={v}" for k, v in base.items())
    text = [
        "# flow-robotics benchmark" + (" (QUICK smoke sizes: not evidence)" if quick else ""),
        "",
        "Written by `nox -s bench -- robotics` (`python tools/bench/robotics.py"
        f" --seeds {','.join(map(str, seeds))} --envs {','.join(envs)}`); runs that had"
        " finished under build/bench/robotics-runs are reused (the runs were split over"
        f" parallel invocations with `--runs`; this one took {minutes:.0f} min).",
        "",
        f"**Machine:** {header}.",
        "",
        "**Data:** Meta-World v3 (metaworld 3.1.1, mujoco 3.3.0), state observations;"
        " demonstrations from Meta-World's scripted experts with Gaussian action noise 0.1 and a"
        " random detour side per episode (bimodal), stored in robomimic's HDF5 layout — a"
        " substitute for the paper's RoboMimic Lift/Can/Square/Transport image datasets, which"
        " are not available offline. Evaluation on the tasks' held-out placements.",
        "",
        f"**Settings (every run):** {settings}; seeds {seeds}; environments {envs}. Each"
        f" success rate below is over {base['episodes']} episodes per seed; with"
        f" {episodes} episodes in all, a difference of less than about"
        f" {1.96 * (0.25 / max(episodes, 1)) ** 0.5:.2f} is sampling noise. Only one seed and"
        " one environment fit the time box of this session: the multi-seed, multi-task grid"
        " the issue asks for was **not run** (rerun with `--seeds 0,1,2 --envs"
        " reach-v3,push-v3,pick-place-v3`).",
        "",
        "## Claims and verdicts",
        "",
        _verdicts(heads, variants, episodes, latency),
        "## Success and latency of the four heads",
        "",
        table(_summary(heads)),
        "",
        "![success against NFE and latency](robotics/success-vs-nfe.png)",
        "",
        "The latencies in this table were measured during the rollouts, with other processes"
        " running on the machine: for NFE > 1 they absorb other processes' time slices and"
        " are not comparable. The side-by-side timing below is the one to read.",
        "",
        "## Latency per chunk, side by side (batch 1, 200 rounds, order rotated)",
        "",
        table(latency),
        "",
        "## Dispersive variants (MeanFlow head, NFE 1)",
        "",
        table(_summary(variants)),
        "",
        "## Per run",
        "",
        table(heads + variants),
    ]
    if has_strip:
        text += ["", "![a DM1 rollout, rendered off-screen](robotics/rollout.png)", ""]
    out.write_text("\n".join(text) + "\n")
