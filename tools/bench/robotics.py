"""The flow-robotics benchmark: ``nox -s bench -- robotics`` writes docs/benchmarks/robotics.md.

DM1's claims checked at CPU scale on Meta-World through the ``robotics.metaworld`` task: the
four action heads (one-step MeanFlow, flow matching with Euler, the same flow-matching network
through the SDE sampler, MSE behaviour cloning) at NFE 1/2/5/10 (and 100 for the SDE); the
latency of one-step MeanFlow against the multi-step heads; the dispersive variants' effect on
success and embedding rank; and mode coverage on the bimodal demonstrations. Run directly with

    python tools/bench/robotics.py [--quick] [--seeds 0,1,2] [--envs reach-v3] [--out PATH]

``--quick`` shrinks every size for a smoke test; its page goes to build/bench/ and says so.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = ("hinge", "infonce-cosine", "covariance")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--envs", default="reach-v3")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--runs",
        default="",
        help="run only these runs (dm1, meanflow, ...); 'page' writes the page from finished runs",
    )
    args = parser.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from robotics_bench.runs import Runner, machine

    default = "build/bench/robotics-quick.md" if args.quick else "docs/benchmarks/robotics.md"
    out: Path = args.out or ROOT / default
    figures = out.parent / out.stem
    figures.mkdir(parents=True, exist_ok=True)
    base: dict[str, object] = {
        "demos": 20,
        "steps": 600,
        "batch_size": 128,
        "hidden": 128,
        "episodes": 10,
        "horizon": 150,
        "render": "false",
    }
    if args.quick:
        base.update(demos=6, steps=40, episodes=2, horizon=60, hidden=32, batch_size=32)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    envs = [e for e in args.envs.split(",") if e]
    started, header = time.perf_counter(), machine()
    root = ROOT / "build" / "bench" / "robotics-runs"
    runner = Runner(root, base, [r for r in args.runs.split(",") if r])
    heads: list[dict[str, Any]] = []
    variants: list[dict[str, Any]] = []
    for env in envs:
        for seed in seeds:
            heads += _heads(runner, env, seed)
            variants += _variants(runner, env, seed)
    minutes = (time.perf_counter() - started) / 60
    if args.runs and args.runs != "page":
        return 0  # one part of a split run; `--runs page` (or no --runs) writes the page
    from robotics_bench.report import write_page

    write_page(out, figures, heads, variants, base, seeds, envs, header, minutes, args.quick)
    print(f"[robotics bench] wrote {out} in {minutes:.1f} min", flush=True)
    return 0


def _rows(name: str, env: str, seed: int, metrics: dict[str, float] | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if metrics is None:
        return rows
    for key, value in metrics.items():
        if key.startswith("success_nfe"):
            nfe = int(key.removeprefix("success_nfe"))
            rows.append(
                {
                    "env": env,
                    "seed": seed,
                    "head": name,
                    "nfe": nfe,
                    "success": value,
                    "latency_ms": metrics[f"latency_ms_nfe{nfe}"],
                    "erank_mid": metrics["erank_mid"],
                    "modes_covered": metrics[f"modes_covered_nfe{nfe}"],
                    "return": metrics[f"return_nfe{nfe}"],
                }
            )
    return rows


def _heads(runner: Any, env: str, seed: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    sweep = "1,2,5,10"
    dm1 = runner.train("dm1", seed, env=env, eval_nfe=sweep, render="true")
    rows += _rows("DM1 (meanflow + infonce-l2)", env, seed, dm1)
    plain = runner.train("meanflow", seed, env=env, eval_nfe=sweep, dispersive="none")
    rows += _rows("meanflow, no dispersive", env, seed, plain)
    cfm = runner.train("cfm", seed, env=env, objective="cfm", eval_nfe=sweep, dispersive="none")
    rows += _rows("cfm + euler", env, seed, cfm)
    sde = runner.reevaluate("cfm", "sde", seed, sampler="sde", eval_nfe="10,100")
    rows += _rows("cfm + sde (diffusion-style)", env, seed, sde)
    bc = runner.train("bc", seed, env=env, objective="bc-mse", dispersive="none")
    rows += _rows("bc-mse", env, seed, bc)
    return rows


def _variants(runner: Any, env: str, seed: int) -> list[dict[str, Any]]:
    rows = []
    for variant in VARIANTS:
        metrics = runner.train(
            f"meanflow-{variant}", seed, env=env, eval_nfe="1", dispersive=variant
        )
        rows += _rows(f"meanflow + {variant}", env, seed, metrics)
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
