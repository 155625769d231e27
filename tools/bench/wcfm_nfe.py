"""W-CFM's temperature against sample quality and NFE on the core bench's targets.

Prints, per model, the weights' effective sample size (fraction of the batch), the
straightness S and the sliced W2 to the target after Euler with 1, 4, 8, 16, 64 steps and
after dopri5 (rtol = atol = 1e-5), for independent CFM, W-CFM with the former absolute
``lam=1`` and W-CFM with each ``lam_rel`` given. The models, batches, optimiser and
evaluation are the core bench's (tools/bench/core_bench: MLP 3x128, batch 256, Adam 2e-3 with
cosine decay, 2,000 held-out points); every model starts from the same weights and sees the
same batches. Run as

    python tools/bench/wcfm_nfe.py gmm-16d --steps 2000 --lam-rel 0.1 0.3 1.0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from core_bench.common import Settings, data_batches, fit, frozen, sample_metrics, targets
from core_bench.evaluate import euler, eval_set, ode_endpoints, straightness

EULER_STEPS = (1, 4, 8, 16, 64)


def main(argv: list[str] | None = None) -> int:
    from flow_core.models.mlp import MLPVelocity
    from flow_core.objectives.cfm import ConditionalFlowMatching
    from flow_core.objectives.wcfm import WeightedConditionalFlowMatching

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target", choices=[t.name for t in targets()])
    parser.add_argument("--steps", type=int, default=Settings.steps)
    parser.add_argument("--lam-rel", type=float, nargs="*", default=[0.3])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    target = next(t for t in targets() if t.name == args.target)
    settings = Settings()
    data = eval_set(target, settings)
    models = [
        ("CFM", ConditionalFlowMatching()),
        ("W-CFM lam=1", WeightedConditionalFlowMatching(lam=1.0)),
    ]
    models += [
        (f"W-CFM lam_rel={r:g}", WeightedConditionalFlowMatching(lam_rel=r)) for r in args.lam_rel
    ]
    print(
        "| model | last-step ESS | S | "
        + " | ".join(f"Euler {k}" for k in EULER_STEPS)
        + " | dopri5 (NFE) | train s |"
    )
    print("|---" * (5 + len(EULER_STEPS)) + "|")
    for label, objective in models:
        torch.manual_seed(0)
        model = MLPVelocity(dim=target.dim, hidden=settings.hidden, depth=settings.depth)
        start = time.perf_counter()
        metrics = fit(
            model,
            objective,
            data_batches(target, settings.batch, torch.Generator().manual_seed(1)),
            args.steps,
        )
        seconds = time.perf_counter() - start
        model = frozen(model)
        sw2 = [
            sample_metrics(euler(model, data.x0, k), target, data.reference)["sliced W2"]
            for k in EULER_STEPS
        ]
        exact, nfe = ode_endpoints(model, data.x0)
        cells = [f"{metrics.get('ess', 1.0):.3g}", f"{straightness(model, data.x0):.3g}"]
        cells += [f"{x:.4f}" for x in sw2]
        cells += [
            f"{sample_metrics(exact, target, data.reference)['sliced W2']:.4f} ({nfe})",
            f"{seconds:.0f}",
        ]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
