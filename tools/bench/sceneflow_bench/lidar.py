"""Scene-flow methods side by side on the synthetic LiDAR benchmark (one fixed seed set)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from flow_sceneflow.baselines import nearest_neighbour_flow
from flow_sceneflow.conventions import resolve_conventions
from flow_sceneflow.data.synthetic import generate_pair
from flow_sceneflow.figures import top_down
from flow_sceneflow.icpflow.pipeline import icp_flow
from flow_sceneflow.scan import ScanPair
from flow_sceneflow.scoop.losses import scoop_loss
from flow_sceneflow.scoop.model import ScoopModel, knn
from flow_sceneflow.scoop.pipeline import prepare_pair, sample_points, scoop_flow
from flow_sceneflow.tasks.icpflow import IcpFlowConfig
from flow_sceneflow.tasks.scans import pooled_metrics


def train_scoop(
    steps: int, scenes: int, points: int, neighbours: int, seed: int
) -> tuple[ScoopModel, float, list[float]]:
    """SCOOP trained self-supervised on generated scenes disjoint from the evaluation seeds."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pool = [prepare_pair(generate_pair(1_000_000 + i)) for i in range(scenes)]
    model = ScoopModel(neighbours=neighbours)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    started = time.perf_counter()
    for step in range(steps):
        chosen = pool[int(rng.integers(len(pool)))]
        pc1 = torch.from_numpy(sample_points(chosen.pc1, points, rng)).float()[None]
        pc2 = torch.from_numpy(sample_points(chosen.pc2, points, rng)).float()[None]
        flow, confidence = model(pc1, pc2)
        loss, _ = scoop_loss(flow, confidence, pc1, pc2, knn(pc1, neighbours + 1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 50 == 0:
            print(f"  scoop step {step + 1}/{steps} loss {np.mean(losses[-50:]):.4f}", flush=True)
    return model.eval(), time.perf_counter() - started, losses


def icp_flow_auto(pair: ScanPair) -> tuple[np.ndarray, str]:
    """ICP-Flow exactly as ``flow run sceneflow.icpflow`` runs it: defaults from the conventions."""
    conventions, ego = resolve_conventions(pair)
    params = IcpFlowConfig().params(0, bool(conventions.ground_removed))
    return icp_flow(pair, params, ego).flow, f"{conventions.describe()}; ground={params.ground}"


def run_methods(
    pairs: list[ScanPair], model: ScoopModel | None, eval_points: int, refine_steps: int
):
    """Flows and seconds per pair of every method (SCOOP only when ``model`` is given)."""
    names = ["zero flow", "nearest neighbour", "ICP-Flow (auto)"]
    if model is not None:
        names += ["SCOOP (network only)", "SCOOP + refinement"]
    flows: dict[str, list[np.ndarray]] = {k: [] for k in names}
    seconds: dict[str, list[float]] = {k: [] for k in flows}
    assumed = []
    for pair in pairs:
        flows["zero flow"].append(np.zeros_like(pair.pc1))
        seconds["zero flow"].append(0.0)
        clock = time.perf_counter()
        flows["nearest neighbour"].append(nearest_neighbour_flow(pair))
        seconds["nearest neighbour"].append(time.perf_counter() - clock)
        clock = time.perf_counter()
        flow, text = icp_flow_auto(pair)
        flows["ICP-Flow (auto)"].append(flow)
        seconds["ICP-Flow (auto)"].append(time.perf_counter() - clock)
        assumed.append(text)
        if model is not None:
            result = scoop_flow(model, pair, points=eval_points, refine_steps=refine_steps)
            flows["SCOOP (network only)"].append(result.initial)
            seconds["SCOOP (network only)"].append(result.seconds["network"])
            flows["SCOOP + refinement"].append(result.refined)
            seconds["SCOOP + refinement"].append(result.seconds["total"])
        print(
            f"  {pair.name}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in seconds.items()),
            flush=True,
        )
    return flows, seconds, assumed


def figure(path: Path, pair: ScanPair, flows: dict[str, list[np.ndarray]]) -> None:
    top_down(
        path,
        pair,
        [
            ("ground truth", pair.flow),
            ("ICP-Flow (auto)", flows["ICP-Flow (auto)"][0]),
            ("nearest neighbour", flows["nearest neighbour"][0]),
            ("SCOOP + refinement", flows["SCOOP + refinement"][0]),
        ],
    )


def table(pairs: list[ScanPair], flows, seconds) -> tuple[str, dict[str, dict[str, float]]]:
    rows = [
        "| method | split | EPE3D (m) | AccS | AccR | Outliers | s / frame (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    results = {}
    for method, estimates in flows.items():
        metrics = pooled_metrics(pairs, estimates)
        results[method] = metrics
        for split in ("", "static_", "dynamic_"):
            rows.append(
                f"| {method} | {split.rstrip('_') or 'all'} | {metrics[split + 'epe3d']:.4f}"
                f" | {metrics[split + 'acc_strict']:.3f} | {metrics[split + 'acc_relax']:.3f}"
                f" | {metrics[split + 'outliers']:.3f} | {np.median(seconds[method]):.2f} |"
            )
    return "\n".join(rows), results
