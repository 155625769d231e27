"""ARFlow and FlowAR against a flat flow-matching model of the same size at low NFE (digits).

Three runs on scikit-learn's digits, each trained for the same steps on the same number of
images per step, unguided: ``images.arflow`` (sequences of 4 same-class digits, NFE 4 and 2),
``images.flowar`` (scales 2, 4, 8; 1, 2 or 4 Euler steps per scale: NFE 3, 6, 12) and
``images.digits`` with a DiT of about the same parameter count (Euler at NFE 3, 4, 6, 12).
FD and class accuracy against the 360 held-out test digits in the shipped classifier's feature
space; wall-clock per 1,000 samples on this machine.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from core_bench.common import fmt, table

from images_bench.runs import Job

__all__ = ["jobs", "section"]

FLAT_NFE = (3, 4, 6, 12)


def _steps(quick: bool) -> dict[str, str]:
    return (
        {"steps": "20", "eval_samples": "200"} if quick else {"steps": "400", "eval_samples": "300"}
    )


def jobs(quick: bool) -> list[Job]:
    """ARFlow, FlowAR and the flat DiT baseline."""
    steps = _steps(quick)
    flat = {
        "flow": "dit",
        "width": "64",
        "depth": "4",
        "guidance_weight": "0",
        "guidance_sweep": "()",
        "nfe_sweep": "(3, 4, 6, 12)",
        "sample_steps": "4",
        "batch_size": "32",
        **steps,
    }
    flowar = {
        "width": "56",
        "depth": "2",
        "head_depth": "1",
        "sample_steps": "1",
        "steps_sweep": "(1, 2, 4)",
        "batch_size": "32",
        **steps,
    }
    arflow = {
        "sequence_length": "4",
        "width": "64",
        "depth": "4",
        "steps_sweep": "(2,)",
        "batch_size": "8",
        **steps,
    }
    return [
        Job("ar-flat-dit", "images.digits", flat),
        Job("ar-flowar", "images.flowar", flowar),
        Job("ar-arflow", "images.arflow", arflow),
    ]


LEARNED = 0.5  # class accuracy above which a model counts as trained (chance: 0.1)


def _verdict(ours: tuple[float, float, float], base: tuple[float, float, float]) -> str:
    verdict = "reproduced" if ours[0] < base[0] else "not reproduced"
    if min(ours[1], base[1]) < LEARNED:
        return f"inconclusive ({verdict} by FD; a class accuracy < {LEARNED:g}: undertrained)"
    return verdict


def _flat_parameters() -> int:
    from flow_images.class_sampling import parameter_count
    from flow_images.networks.dit import DiTVelocity

    network = DiTVelocity(in_channels=1, image_size=8, num_classes=10, width=64, depth=4)
    return parameter_count(network)


def _points(label: str, m: dict[str, float]) -> dict[int, tuple[float, float, float]]:
    """NFE → (FD, accuracy, seconds per 1,000 samples)."""
    prefix = "fd_euler_nfe" if label == "ar-flat-dit" else "fd_nfe"
    points = {}
    for key, fd in m.items():
        if key.startswith(prefix):
            nfe = int(key.removeprefix(prefix))
            rest = key.removeprefix("fd_")
            points[nfe] = (
                fd,
                m.get(f"accuracy_{rest}", math.nan),
                m.get(f"seconds_per_1000_{rest}", math.nan),
            )
    return points


def section(
    results: dict[str, dict[str, float]], runs: Path, figures: Path, quick: bool
) -> tuple[str, list[dict[str, str]]]:
    """The section's markdown and its verdicts."""
    names = {
        "ar-flat-dit": "flat flow matching (DiT, Euler)",
        "ar-flowar": "FlowAR (Euler per scale)",
        "ar-arflow": "ARFlow (AR Euler)",
    }
    parts = [
        "## ARFlow and FlowAR against flat flow matching at low NFE (digits)",
        "",
        "Runs (seed 0, unguided, "
        + " ".join(f"{k}={v}" for k, v in _steps(quick).items())
        + ", 32 images per step each):",
        "",
    ]
    for job in jobs(quick):
        parts.append(
            f"- {names[job.label]}: `flow run {job.task} "
            + " ".join(f"--set {k}={v}" for k, v in job.options.items())
            + "`"
        )
    parts += [
        "",
        "Data: scikit-learn's 8×8 digits (a substitute for ImageNet; the numbers are not"
        " comparable with the papers' FID). FD between the samples (as many as `eval_samples`)"
        " and the 360 held-out test digits in the shipped"
        " classifier's feature space (lower is better), class accuracy of the samples, and"
        " seconds per 1,000 samples on this machine (shared CPU: timings are indicative).",
        "",
    ]
    rows = []
    points: dict[str, dict[int, tuple[float, float, float]]] = {}
    for label, name in names.items():
        m = results.get(label, {"failed": 1.0})
        if "failed" in m:
            rows.append({"method": name, "NFE": "not completed in this run"})
            continue
        points[label] = _points(label, m)
        for nfe, (fd, accuracy, seconds) in sorted(points[label].items()):
            rows.append(
                {
                    "method": name,
                    "parameters": int(m.get("parameters", _flat_parameters())),
                    "NFE": nfe,
                    "FD": fd,
                    "accuracy": accuracy,
                    "s / 1000 samples": seconds,
                    "run s (train + eval)": m.get("wall_seconds", math.nan),
                }
            )
        source = runs / label / "figures" / "samples.png"
        if source.exists():
            figures.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, figures / f"{label}_samples.png")
    floor = next((m["fd_floor"] for m in results.values() if "fd_floor" in m), math.nan)
    parts += [
        table(rows),
        "",
        f"FD floor (as many training digits as samples vs the test digits): {fmt(floor)}.",
        "",
    ]
    parts += [
        "The flat DiT's parameter count is counted by constructing the network (images.digits"
        " does not report it).",
        "",
    ]
    for label, name in names.items():
        if (figures / f"{label}_samples.png").exists():
            parts += [
                f"{name}, one class per column:",
                "",
                f"![{name}]({figures.name}/{label}_samples.png)",
                "",
            ]
    verdicts = []
    flat = points.get("ar-flat-dit", {})
    for label, nfe in (("ar-arflow", 4), ("ar-flowar", 3), ("ar-flowar", 6)):
        ours = points.get(label, {}).get(nfe)
        base = flat.get(nfe)
        if ours is None or base is None:
            continue
        verdicts.append(
            {
                "claim": f"{names[label]} beats flat flow matching of the same size at NFE {nfe}",
                "measured": f"FD {fmt(ours[0])} vs {fmt(base[0])}; accuracy {fmt(ours[1])} vs"
                f" {fmt(base[1])}",
                "verdict": _verdict(ours, base),
            }
        )
    return "\n".join(parts), verdicts
