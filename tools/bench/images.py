"""The flow-images benchmark: ``nox -s bench -- images`` writes docs/benchmarks/images.md.

Every method is trained and measured by the user's own command, ``flow run images.digits``
with ``--set`` options (one run directory per method under ``build/bench/images-runs/``), so
the page measures exactly what a user gets. The runs go in parallel (``--jobs``); the table
is then read from each run's ``metrics.json``: Fréchet distance (FD) in the shipped digit
classifier's feature space against the held-out test digits, class accuracy of the
class-conditional samples, and wall-clock per 1,000 samples, at each NFE budget. A second
section times training steps of our loop, a plain hand-written PyTorch loop and torchcfm's
flow matcher on the same U-Net, alternating, in this one process.

    python tools/bench/images.py [--quick] [--jobs N] [--threads T] [--device cpu|cuda]
                                 [--out PATH] [--only LABELS] [--reuse]

``--only nf`` runs the normalizing-flow section (TARFlow, STARFlow's stack, GS-Jacobi;
``images_bench/sec_nf.py``), which writes its own page, docs/benchmarks/images-nf.md;
``--only restore,rescale,ar`` the restoration, rescaling and autoregressive sections
(``images_bench/sections.py``), which write docs/benchmarks/images-restoration.md and
images-ar.md. The default runs the methods and ``nf``.
``--quick`` shrinks training for a smoke test (its page goes to build/bench/, not the docs).
The numbers on the page are the ones this script measured; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

# label -> the --set options of `flow run images.digits` (every run also gets the shared ones)
METHODS: dict[str, dict[str, str]] = {
    # the README's command: guidance weight and sampler chosen on the validation split
    "default": {},
    # the rest sample exactly the configured sampler and guidance weight (choose=false)
    "CFM": {"objective": "cfm"},
    # the default samples with guidance w = 1; average-velocity models are sampled unguided
    "CFM w=0": {"objective": "cfm", "guidance_weight": "0"},
    "OT-CFM": {"objective": "ot-cfm"},
    "W-CFM": {"objective": "w-cfm"},
    "2-RF++": {"objective": "cfm", "reflow_rounds": "1", "reflow_objective": "rf-pp"},
    "MeanFlow": {"objective": "meanflow"},
    "SplitMeanFlow": {"objective": "split-meanflow"},
    # BOSS fine-tunes against 64-step teacher trajectories (64 NFE per training step): 300 steps
    "BOSS-2": {
        "objective": "boss",
        "grid": "bellman",
        "sample_steps": "2",
        "finetune_steps": "300",
    },
    "BOSS-4": {
        "objective": "boss",
        "grid": "bellman",
        "sample_steps": "4",
        "finetune_steps": "300",
    },
    "FlowTurbo": {"objective": "cfm", "sampler": "flowturbo"},
    # unguided, FD falls monotonically with solver accuracy (guided, it does not)
    "FlowTurbo w=0": {"objective": "cfm", "sampler": "flowturbo", "guidance_weight": "0"},
}
BUDGETS = (1, 2, 4, 8, 16)
LINKED_PAGES = (
    "Other parts have their own pages: the normalizing flows (TARFlow, STARFlow's stack,"
    " GS-Jacobi decoding) [images-nf.md](images-nf.md) (`--only nf`); restoration and rescaling"
    " (PMRF, invertible rescaling) [images-restoration.md](images-restoration.md) and the"
    " autoregressive flows (ARFlow, FlowAR) [images-ar.md](images-ar.md)"
    " (`--only restore,rescale,ar`)."
)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny training, for a smoke test")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1) // 2))
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--device", default="cpu", help="device of every run (cpu, cuda)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset of method labels, or of the sections nf, restore, rescale, ar",
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--long", action="store_true", help="nf section: also a T = 64 TARFlow for GS-Jacobi"
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="restore/rescale/ar sections: write the pages from the finished runs only",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep runs that already finished under build/bench/ instead of retraining them "
        "(to re-render the page; the page says which runs were reused)",
    )
    return parser.parse_args(argv)


def _run_method(
    label: str, options: dict[str, str], args: argparse.Namespace, runs: Path
) -> dict[str, float]:
    out = runs / label
    status = out / "status.json"
    if args.reuse and status.exists() and json.loads(status.read_text())["state"] == "finished":
        print(f"  {label}: reusing the finished run {out}", flush=True)
        return {**json.loads((out / "metrics.json").read_text()), "reused": 1.0}
    sets = dict(options) if label == "default" else {"choose": "false", **options}
    if args.quick:  # only the settings each method uses (an unused one is refused)
        sets |= {"steps": "60", "eval_samples": "200"}
        reflows = int(options.get("reflow_rounds", "0")) > 0
        if reflows or options.get("objective") == "boss" or options.get("sampler") == "flowturbo":
            sets["finetune_steps"] = "30"
        if reflows:
            sets["reflow_pairs"] = "256"
    command = [sys.executable, "-m", "flow_core.cli", "run", "images.digits", "--no-progress"]
    command += ["--out", str(out), "--seed", str(args.seed), "--device", args.device]
    for key, value in sets.items():
        command += ["--set", f"{key}={value}"]
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "MPLBACKEND": "Agg"}
    started = time.perf_counter()
    log = out.with_suffix(".log")
    out.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    elapsed = time.perf_counter() - started
    print(f"  {label}: exit {result.returncode} after {elapsed:.0f} s ({log})", flush=True)
    if result.returncode != 0:
        return {"failed": 1.0}
    metrics = json.loads((out / "metrics.json").read_text())
    return {**metrics, "wall_seconds": elapsed}


def _point(metrics: dict[str, float], sampler: str, nfe: int | None) -> tuple[float, ...] | None:
    """(FD, accuracy, seconds per 1000) of a sweep point; ``nfe=None``: the adaptive one."""
    prefix = f"fd_{sampler}_nfe"
    for key, fd in metrics.items():
        if not key.startswith(prefix):
            continue
        if nfe is not None and key != f"{prefix}{nfe}":
            continue
        suffix = key.removeprefix("fd_")
        return (
            fd,
            metrics.get(f"accuracy_{suffix}", math.nan),
            metrics.get(f"seconds_per_1000_{suffix}", math.nan),
            float(key.removeprefix(prefix)),
        )
    return None


def _curves(results: dict[str, dict[str, float]]) -> dict[str, dict[Any, tuple[float, ...]]]:
    """Row label -> {NFE or "adaptive": (FD, accuracy, s/1000, NFE)}."""
    rows: dict[str, dict[Any, tuple[float, ...]]] = {}

    def add(row: str, metrics: dict[str, float], sampler: str) -> None:
        points = {n: _point(metrics, sampler, n) for n in BUDGETS}
        rows[row] = {n: p for n, p in points.items() if p is not None}

    for label, metrics in results.items():
        if "failed" in metrics or label == "default":
            continue
        if label in ("CFM", "CFM w=0"):
            add(f"{label}, Euler", metrics, "euler")
            add(f"{label}, Heun", metrics, "heun")
            adaptive = _point(metrics, "dopri5", None)
            if adaptive:
                rows[f"{label}, dopri5 (adaptive)"] = {"adaptive": adaptive}
        elif label.startswith("BOSS-"):
            steps = int(label.split("-")[1])
            point = (
                metrics["fd"],
                metrics.get("accuracy", math.nan),
                metrics["seconds_per_1000_samples"],
                metrics["nfe"],
            )
            rows.setdefault("BOSS (Bellman grid + straightening), Euler", {})[steps] = point
        elif label.startswith("FlowTurbo"):
            add(f"{label} (1 Heun, n−2 pseudo, 3 refiner)", metrics, "flowturbo")
            add(f"{label}'s predictor, Heun", metrics, "heun")
        elif label in ("MeanFlow", "SplitMeanFlow"):
            add(f"{label}, few-step", metrics, "few-step")
        else:
            add(f"{label}, Euler", metrics, "euler")
    return rows


def _interpolate_time(curve: list[tuple[float, float]], fd: float) -> float | None:
    """Seconds the curve needs to reach ``fd`` (log-log interpolation); None if it never does."""
    points = sorted(curve, key=lambda p: p[1])  # by time
    for (fd_a, t_a), (fd_b, t_b) in itertools.pairwise(points):
        if (fd_a - fd) * (fd_b - fd) <= 0 and fd_a != fd_b:
            w = (math.log(fd) - math.log(fd_a)) / (math.log(fd_b) - math.log(fd_a))
            return math.exp(math.log(t_a) + w * (math.log(t_b) - math.log(t_a)))
    return None


def _verdicts(results: dict[str, dict[str, float]], rows: dict[str, Any]) -> list[dict[str, str]]:
    from core_bench.common import fmt

    verdicts = []
    default = _default_verdict(results, rows)
    if default:
        verdicts.append(default)
    cfm = results.get("CFM", {})
    # CFM's best FD at 16+ NFE, guided (w = 1, the default) or not
    cfm_16 = [
        p[0]
        for row, points in rows.items()
        if row.startswith(("CFM, ", "CFM w=0, "))
        for n, p in points.items()
        if n in (16, "adaptive")
    ]
    for label in ("MeanFlow", "SplitMeanFlow"):
        one = rows.get(f"{label}, few-step", {}).get(1)
        if one and cfm_16:
            ratio = one[0] / min(cfm_16)
            verdicts.append(
                {
                    "claim": f"{label} at 1 NFE within 1.5x of CFM's FD at 16+ NFE",
                    "measured": f"FD {fmt(one[0])} vs {fmt(min(cfm_16))}: {ratio:.2f}x",
                    "verdict": "reproduced" if ratio <= 1.5 else "not reproduced",
                }
            )
    teacher = _point(cfm, "euler", 1) if cfm else None
    student = rows.get("2-RF++, Euler", {}).get(1)
    if teacher and student:
        ratio = teacher[0] / student[0]
        verdicts.append(
            {
                "claim": "2-RF++ 1-step FD at least 2x better than the teacher's 1-step Euler",
                "measured": f"FD {fmt(student[0])} vs teacher {fmt(teacher[0])}: {ratio:.2f}x",
                "verdict": "reproduced" if ratio >= 2 else "not reproduced",
            }
        )
    for label in ("FlowTurbo", "FlowTurbo w=0"):
        verdict = _turbo_verdict(label, rows)
        if verdict:
            verdicts.append(verdict)
    return verdicts


def _default_verdict(
    results: dict[str, dict[str, float]], rows: dict[str, Any]
) -> dict[str, str] | None:
    """The README's default run against the best FD of every CFM sweep point on the page."""
    from core_bench.common import fmt

    default = results.get("default", {})
    if "fd" not in default:
        return None
    swept = [
        point[0]
        for row, points in rows.items()
        if row.startswith(("CFM, ", "CFM w=0, "))
        for point in points.values()
    ]
    best = min([default["fd_best_in_sweep"], *swept])
    ratio = default["fd"] / best
    return {
        "claim": "default `flow run images.digits` FD within 10% of the best CFM configuration"
        " in the sweeps",
        "measured": f"FD {fmt(default['fd'])} ({default['nfe']:.0f} NFE, w ="
        f" {default.get('chosen_guidance_weight', math.nan):g}, chosen on validation) vs best"
        f" {fmt(best)}: {ratio:.2f}x",
        "verdict": "reproduced" if ratio <= 1.1 else "not reproduced",
    }


def _turbo_verdict(label: str, rows: dict[str, Any]) -> dict[str, str] | None:
    """FlowTurbo's time saving against its own predictor under Heun at equal FD."""
    turbo = rows.get(f"{label} (1 Heun, n−2 pseudo, 3 refiner)", {})
    heun = rows.get(f"{label}'s predictor, Heun", {})
    if not (turbo and heun):
        return None
    claim = f"{label}: >= 30% less wall-clock than Heun at equal FD"
    heun_curve = [(p[0], p[2]) for p in heun.values()]
    best_fd, best_time = min(heun_curve)
    savings, texts = [], []
    for n, point in sorted(turbo.items()):
        needed = _interpolate_time(heun_curve, point[0])
        if needed is not None:
            savings.append(1 - point[2] / needed)
            texts.append(f"NFE {n}: {100 * savings[-1]:.0f}%")
        elif point[0] < best_fd:
            # Heun reaches no FD this low in the sweep: its best point bounds the saving below
            savings.append(1 - point[2] / best_time)
            texts.append(f"NFE {n}: >= {100 * savings[-1]:.0f}% (below Heun's best FD)")
    if not savings:
        measured = "no FlowTurbo point lies inside or below Heun's FD range"
        return {"claim": claim, "measured": measured, "verdict": "not measurable in this run"}
    return {
        "claim": claim,
        "measured": "time saved at Heun-interpolated equal FD: " + ", ".join(texts),
        "verdict": "reproduced" if max(savings) >= 0.30 else "not reproduced",
    }


def _quality_table(rows: dict[str, dict[Any, tuple[float, ...]]], index: int) -> str:
    from core_bench.common import fmt, table

    columns = [*[str(n) for n in BUDGETS], "adaptive"]
    lines = []
    for row, points in rows.items():
        line = {"method, sampler": row}
        for column in columns:
            key: Any = column if column == "adaptive" else int(column)
            point = points.get(key)
            cell = "" if point is None else fmt(point[index])
            if point is not None and column == "adaptive":
                cell += f" ({point[3]:.0f} NFE)"
            line[f"NFE {column}" if column != "adaptive" else "adaptive"] = cell
        lines.append(line)
    return table(lines)


def _figures(
    rows: dict[str, dict[Any, tuple[float, ...]]], runs: Path, folder: Path, floor: float | None
) -> list[str]:
    """FD against NFE for every row (one figure), and the default run's sample grid beside
    the test digits; returns the page's markdown for them (paths relative to the page)."""
    import shutil

    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle="--", label="floor (training digits)")
    for row, points in rows.items():
        fixed = sorted((n, p[0]) for n, p in points.items() if n != "adaptive")
        if len(fixed) > 1:
            ax.plot(*zip(*fixed, strict=True), marker="o", label=row)
        elif fixed:
            ax.scatter(*zip(*fixed, strict=True), marker="s", s=60, label=row)
        for n, p in points.items():
            if n == "adaptive":
                ax.scatter([p[3]], [p[0]], marker="*", s=120, label=f"{row} ({p[3]:.0f} NFE)")
    chosen = runs / "default" / "metrics.json"
    if chosen.exists():
        default = json.loads(chosen.read_text())
        ax.scatter(
            [default["nfe"]],
            [default["fd"]],
            marker="D",
            s=70,
            color="black",
            zorder=5,
            label="default run (chosen on the validation digits)",
        )
    ax.set(
        xscale="log", yscale="log", xlabel="NFE", ylabel="FD to the test digits (lower is better)"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "fd_vs_nfe.png", dpi=120)
    plt.close(fig)
    lines = [f"![FD against NFE]({folder.name}/fd_vs_nfe.png)", ""]
    run = "default" if (runs / "default" / "figures").exists() else "CFM"
    for name in ("samples.png", "test_images.png"):
        source = runs / run / "figures" / name
        if source.exists():
            shutil.copyfile(source, folder / f"cfm_{name}")
    if (folder / "cfm_samples.png").exists():
        which = (
            "the default run (sampler and guidance weight chosen on the validation digits)"
            if run == "default"
            else "the CFM run (guided Euler, 16 NFE)"
        )
        lines += [
            f"Samples of {which}, one class per column, and held-out test digits laid out the"
            " same way:",
            "",
            f"![samples]({folder.name}/cfm_samples.png) "
            f"![test digits]({folder.name}/cfm_test_images.png)",
            "",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    default = (
        ROOT / "build" / "bench" / "images-quick.md"
        if args.quick
        else ROOT / "docs" / "benchmarks" / "images.md"
    )
    out = args.out or default
    runs = ROOT / "build" / "bench" / ("images-runs-quick" if args.quick else "images-runs")
    from images_bench.sections import SECTIONS, run_sections

    chosen = [m for m in args.only.split(",") if m] or [*METHODS, "nf"]
    if "nf" in chosen:  # the normalizing-flow section writes its own page, images-nf.md
        _nf_page(args)
        chosen.remove("nf")
    extra = [m for m in chosen if m in SECTIONS]
    if extra:  # restoration / autoregressive sections: their own pages
        status = run_sections(extra, args, ROOT)
        chosen = [m for m in chosen if m not in SECTIONS]
        if status or not chosen:
            return status
    if not chosen:
        return 0
    unknown = sorted(set(chosen) - set(METHODS))
    if unknown:
        print(f"unknown methods {unknown}; choose from {', '.join(METHODS)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    print(f"training {len(chosen)} methods, {args.jobs} at a time, on {args.device}", flush=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {m: pool.submit(_run_method, m, METHODS[m], args, runs) for m in chosen}
        results = {m: f.result() for m, f in futures.items()}
    from images_bench.metric import metric_section

    sections = [_method_section(results, args, runs, out.parent / "images"), metric_section()]
    if not args.skip_throughput:
        from images_bench.throughput import throughput_section

        sections.append(throughput_section(args.device, args.threads, args.quick))
    page = _page(args, sections, time.perf_counter() - started)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    print(f"wrote {out}")
    return 0


def _nf_page(args: argparse.Namespace) -> None:
    from images_bench.sec_nf import nf_section

    started = time.perf_counter()
    section, _ = nf_section(args.quick, args.jobs, args.reuse, args.long)
    folder = ROOT / ("build/bench" if args.quick else "docs/benchmarks")
    out = folder / ("images-nf-quick.md" if args.quick else "images-nf.md")
    page = _page(args, [section], time.perf_counter() - started).replace(LINKED_PAGES + "\n\n", "")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        page.replace("# flow-images benchmark", "# flow-images benchmark: normalizing flows", 1)
    )
    print(f"wrote {out}")


def _method_section(
    results: dict[str, dict[str, float]], args: argparse.Namespace, runs: Path, folder: Path
) -> str:
    from core_bench.common import fmt, table

    rows = _curves(results)
    failed = [m for m, r in results.items() if "failed" in r]
    parts = ["## Methods on digits: quality against NFE", ""]
    parts.append(
        "Each row is one `flow run images.digits` (seed "
        f"{args.seed}, the task's defaults plus the options listed below), measured on "
        "scikit-learn's digits: Fréchet distance (lower is better) in the shipped digit "
        "classifier's feature space between 1,000 samples and the 360 held-out test digits. "
        "These are 8×8 digits, not ImageNet: the numbers are not comparable with any paper's "
        "FID. Every run trains on the training split less its validation part (288 digits). "
        "The `default` run is the README's command: it chooses the guidance weight and the "
        "sampler on the validation part; every other row uses `choose=false`, so it samples "
        "exactly its configured sampler and weight. "
        "Guidance: CFM, OT-CFM, W-CFM and FlowTurbo are sampled with classifier-free "
        "guidance w = 1 (`guidance_weight`'s default; `CFM w=0` and `FlowTurbo w=0` without), "
        "and a guided step counts as "
        "one NFE although it calls the network twice; the reflow (2-RF++) and BOSS students "
        "learned from the guided teacher and are sampled unguided (one call per step); "
        "MeanFlow and SplitMeanFlow are sampled unguided. The wall-clock table shows the "
        "real cost."
    )
    floors = [r["fd_floor"] for r in results.values() if "fd_floor" in r]
    if floors:
        parts.append(
            f"\nFloor (1,000 training digits vs the test digits, as in the runs): FD "
            f"{fmt(floors[0])}; see *The metric* below for how far noise and blur move FD."
        )
    parts += ["", "### FD against NFE", "", _quality_table(rows, 0), ""]
    parts += _figures(rows, runs, folder, floors[0] if floors else None)
    parts += ["### Class accuracy of the samples against NFE", "", _quality_table(rows, 1), ""]
    parts += ["### Wall-clock seconds per 1,000 samples", "", _quality_table(rows, 2), ""]
    parts += ["### Targets", "", table(_verdicts(results, rows)), ""]
    listing = [
        {
            "label": label,
            "options": " ".join(f"{k}={v}" for k, v in METHODS[label].items())
            or "none (the README's command)",
            "training s": fmt(r.get("train_seconds", math.nan)),
            "final loss": fmt(r.get("train_loss", math.nan)),
            "status": "failed" if "failed" in r else "ok",
        }
        for label, r in results.items()
    ]
    parts += ["### Runs", "", table(listing), ""]
    if failed:
        parts.append(f"Failed runs (see their logs under build/bench/): {', '.join(failed)}.")
    reused = [m for m, r in results.items() if "reused" in r]
    if reused:
        parts.append(f"Runs reused from an earlier invocation (`--reuse`): {', '.join(reused)}.")
    return "\n".join([*parts, ""])


def _page(args: argparse.Namespace, sections: list[str], seconds: float) -> str:
    from core_bench.common import table
    from core_bench.env import machine_rows

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python tools/bench/images.py " + " ".join(sys.argv[1:])
    header = [
        "# flow-images benchmark",
        "",
        f"Written by `{command.strip()}` (`nox -s bench -- images`) on {when}, "
        f"in {seconds / 60:.1f} minutes. Runs trained {args.jobs} at a time, "
        f"{args.threads} torch thread(s) each, on `{args.device}`.",
        "",
    ]
    if args.quick:
        header += ["**Quick smoke-test run: tiny training, not the published numbers.**", ""]
    header += [LINKED_PAGES, ""]
    header += ["## Machine", "", table(machine_rows(args.threads)), ""]
    return "\n".join(header + sections) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
