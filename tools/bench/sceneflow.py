"""The flow-sceneflow benchmark: ``nox -s bench -- sceneflow`` writes docs/benchmarks/sceneflow.md.

LiDAR part (this file and ``sceneflow_bench/lidar.py``, ``sceneflow_bench/icp.py``): ICP-Flow
against nearest-neighbour flow, one global ICP and SCOOP with and without test-time refinement
on a fixed seed set of generated LiDAR pairs, and our batched torch ICP against open3d's ICP on
the same object pairs. The optical-flow section comes from ``sceneflow_bench/optical.py``.

    python tools/bench/sceneflow.py [--quick] [--pairs N] [--scoop-steps S] [--out PATH]

``--quick`` is a smoke test (its page goes to build/bench/ and says so). Every number on the
page is the one this run printed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--scoop-steps", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def _machine() -> str:
    import numpy
    import open3d
    import sklearn
    import torch

    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} logical CPUs"
        f" (shared with other jobs), torch {torch.__version__} with {torch.get_num_threads()}"
        f" thread(s), numpy {numpy.__version__}, open3d {open3d.__version__}, scikit-learn"
        f" {sklearn.__version__}; run {now:%Y-%m-%d %H:%M} UTC"
    )


LABELS = {
    "start": "histogram start (both)",
    "ours": "ours (batched torch)",
    "open3d": "open3d (loop)",
}


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def lidar_section(args: argparse.Namespace, figures: Path) -> str:
    import numpy as np
    import torch
    from sceneflow_bench import icp as icp_bench
    from sceneflow_bench import lidar

    from flow_sceneflow.data.synthetic import generate_pair

    torch.set_num_threads(1)
    seeds = list(range(args.pairs))
    started = time.perf_counter()
    pairs = [generate_pair(seed) for seed in seeds]
    print(f"generated {len(pairs)} pairs in {time.perf_counter() - started:.1f}s", flush=True)
    model, train_seconds, losses = lidar.train_scoop(
        args.scoop_steps, scenes=4 if args.quick else 16, points=512, neighbours=16, seed=0
    )
    print(f"trained SCOOP in {train_seconds:.0f}s", flush=True)
    refine_steps = 20 if args.quick else 150
    flows, seconds = lidar.run_methods(pairs, model, eval_points=1024, refine_steps=refine_steps)
    table, results = lidar.table(pairs, flows, seconds)
    lidar.figure(figures / "top-down.png", pairs[0], flows)

    problems = icp_bench.object_pairs(pairs, seeds)
    icp_rows = []
    icp_summaries = {}
    for inlier in (0.1, 0.3):
        clock = time.perf_counter()
        summary = icp_bench.compare(problems, inlier=inlier)
        print(f"ICP comparison, inlier {inlier}: {time.perf_counter() - clock:.0f}s", flush=True)
        icp_summaries[inlier] = summary
        for name in ("start", "ours", "open3d"):
            s = summary[name]
            icp_rows.append(
                f"| {inlier} | {LABELS[name]} | {s['t_mean']:.4f} | {s['t_median']:.4f}"
                f" | {s['r_mean']:.3f} | {s['r_median']:.3f}"
                f" | {s.get('seconds', float('nan')):.3f} |"
            )
    icp = results["ICP-Flow"]
    nn = results["nearest neighbour"]
    ratio = icp["dynamic_epe3d"] / nn["dynamic_epe3d"]
    dyn_verdict = (
        f"**met**: ICP-Flow's dynamic EPE is {ratio:.2f}× nearest-neighbour flow's"
        f" ({icp['dynamic_epe3d']:.3f} m vs {nn['dynamic_epe3d']:.3f} m; target ≤ 0.5×)."
        if ratio <= 0.5
        else f"**missed**: ICP-Flow's dynamic EPE is {ratio:.2f}× nearest-neighbour flow's"
        " (target ≤ 0.5×)."
    )
    icp_verdicts = []
    for inlier, s in icp_summaries.items():
        ours, theirs = s["ours"], s["open3d"]
        ok = (
            ours["t_mean"] <= theirs["t_mean"] * 1.05 + 1e-3
            and ours["r_mean"] <= theirs["r_mean"] * 1.05 + 0.01
        )
        icp_verdicts.append(
            f"inlier {inlier} m: {'**met**' if ok else '**missed**'} — mean translation error"
            " ours/open3d"
            f" = {_ratio(ours['t_mean'], theirs['t_mean'])}, mean rotation error ours/open3d ="
            f" {_ratio(ours['r_mean'], theirs['r_mean'])}, time ours/open3d ="
            f" {_ratio(ours['seconds'], theirs['seconds'])} (all {len(problems)} pairs, one batch"
            " vs a loop)"
        )
    slower = [s["ours"]["seconds"] / s["open3d"]["seconds"] for s in icp_summaries.values()]
    speed_verdict = (
        f"ours is {min(slower):.0f}–{max(slower):.0f}× **slower** than open3d on this CPU:"
        " the batched torch ICP finds correspondences with a dense O(N·M) distance matrix per"
        " iteration, open3d with a C++ KD-tree. Batching is meant for an accelerator, which this"
        " benchmark does not measure; on CPU `icp=open3d` is the faster choice and gives the"
        " same ICP-Flow metrics (table above)."
        if min(slower) > 1
        else f"ours takes {max(slower):.2f}× open3d's time or less."
    )
    init, refined = results["SCOOP (network only)"], results["SCOOP + refinement"]
    versus_nn = (
        "SCOOP + refinement beats nearest-neighbour flow on dynamic points"
        if refined["dynamic_epe3d"] < nn["dynamic_epe3d"]
        else "but SCOOP + refinement is still **worse than nearest-neighbour flow on dynamic"
        f" points** ({refined['dynamic_epe3d']:.3f} m vs {nn['dynamic_epe3d']:.3f} m): with"
        " this CPU-sized training (see Methods) the learned matching does not find the moving"
        " objects, and only the static part (largely the ego-motion) is right"
    )
    refine_verdict = (
        f"refinement {'improves' if refined['epe3d'] < init['epe3d'] else 'does **not** improve'}"
        " SCOOP's"
        f" flow: EPE3D {init['epe3d']:.4f} → {refined['epe3d']:.4f} m, dynamic"
        f" {init['dynamic_epe3d']:.3f} → {refined['dynamic_epe3d']:.3f} m; {versus_nn}."
    )
    n_points = np.mean([p.pc1.shape[0] for p in pairs])
    dyn = np.mean([p.dynamic1.mean() for p in pairs])
    return f"""## LiDAR scene flow

**Data (synthetic substitute, not comparable with published Argoverse 2 / Waymo / KITTI
numbers):** {len(pairs)} pairs from `flow_sceneflow.data.synthetic.generate_pair(seed)`, seeds
{seeds[0]}–{seeds[-1]}: a 32-beam × 1024-column spinning LiDAR (−25° to +5°, 50 m range, 1 cm
range noise) over a ground plane, 4 static buildings and 10 boxes/cars of which about 60 % move
(up to 1.5 m and 6° per frame) while the ego moves 1 m per frame; {n_points:.0f} points per scan
on average, {100 * dyn:.1f} % of them dynamic. Ground truth is exact (ray-cast object ids mapped
to the object transforms). All methods are given the ego poses.

**Methods.** ICP-Flow with the reference scripts' settings (`IcpFlowParams()`: height ground
removal 0.3 m, HDBSCAN min 20 / ε 0.25, 1.67 m/frame, inlier 0.1 m, IoU 0.2, error 0.2);
nearest-neighbour flow; one global ICP on all non-ground points; SCOOP trained
self-supervised for {args.scoop_steps} steps (512 points, k = 16, batch 1, Adam 1e-3 — far
below the paper's 2048 points, k = 32, batch 4, 400 epochs; {train_seconds:.0f} s, final mean
loss {np.mean(losses[-20:]):.4f}) on 16 generated scenes with seeds disjoint from the test set,
evaluated on 1024-point subsets carried to all non-ground points, then refined for
{refine_steps} steps (lr 0.2) on all non-ground points. Time per frame is wall-clock on one
thread on a shared machine (median over pairs; SCOOP excludes training).

{table}

![top-down view](sceneflow/top-down.png)

*Scene 0 from above, coloured by motion beyond the ego-motion: ground truth, ICP-Flow, nearest
neighbour, SCOOP + refinement.*

### ICP: ours (batched torch) against open3d

{len(problems)} object pairs (each object with ≥ 50 points in both scans of the {len(pairs)}
scenes, each side subsampled to at most 1024 points as in ICP-Flow); the target is the
object's scan-2 points in frame 1, the truth P₁⁻¹ M_k P₁; both start
from the same histogram translation, at most 100 iterations, relative tolerance 1e-6.
Translation errors in m, rotation errors in degrees; time for all pairs (ours: one batched call;
open3d: a Python loop of `registration_icp`), median of 2 timed repeats after a warm-up.

| inlier (m) | ICP | mean t err | median t err | mean rot err | median rot err | seconds |
|---|---|---|---|---|---|---|
{chr(10).join(icp_rows)}

### Verdicts

- ICP-Flow dynamic EPE well below nearest-neighbour flow: {dyn_verdict}
- Our ICP at least as accurate as open3d's (mean errors within 5 %): {"; ".join(icp_verdicts)}.
- Speed of our ICP against open3d's (no target set): {speed_verdict}
- SCOOP (premise of the method): {refine_verdict}
- Reference parity (ICP-Flow's `demo.npz` on Argoverse 2) is **not measured**: the file is not
  shipped (its licence follows AV2, CC BY-NC-SA) and nothing is downloaded.
"""


def optical_section(out_dir: Path, quick: bool) -> str:
    path = Path(__file__).resolve().parent / "sceneflow_bench" / "optical.py"
    if not path.exists():
        return (
            "## Optical flow\n\nNot run: tools/bench/sceneflow_bench/optical.py does not exist.\n"
        )
    try:
        import sceneflow_bench.optical as optical

        return optical.run(out_dir, quick=quick)
    except Exception:
        return (
            "## Optical flow\n\nThe optical-flow section failed:\n\n```\n"
            + traceback.format_exc()
            + "```\n"
        )


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.pairs = min(args.pairs, 2)
        args.scoop_steps = min(args.scoop_steps, 10)
    default = (
        ROOT / "build" / "bench" / "sceneflow-quick.md"
        if args.quick
        else ROOT / "docs" / "benchmarks" / "sceneflow.md"
    )
    out = args.out or default
    figures = out.parent / "sceneflow"
    figures.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        lidar = lidar_section(args, figures)
    except Exception:
        lidar = (
            "## LiDAR scene flow\n\nThe section failed:\n\n```\n" + traceback.format_exc() + "```\n"
        )
    lidar_minutes = (time.perf_counter() - started) / 60
    print("optical section ...", flush=True)
    optical = optical_section(figures / "optical", args.quick)
    command = "nox -s bench -- sceneflow" + (
        " (--quick smoke test: NOT the published page)" if args.quick else ""
    )
    page = f"""# flow-sceneflow benchmark

Produced by `{command}` (equivalently `python tools/bench/sceneflow.py`); the LiDAR part took
{lidar_minutes:.1f} minutes. Machine: {_machine()}.

{lidar}
{optical}
"""
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
