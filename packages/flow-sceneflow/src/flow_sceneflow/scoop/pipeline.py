"""SCOOP on a LiDAR scan pair: preprocessing, training batches and full-scene inference.

Both scans are brought into the frame of scan 1 with the ego-motion (when the pair has poses)
and the ground is removed with the height threshold, as for ICP-Flow; the network sees random
subsets of ``points`` points of each scan (SCOOP's 2048-point setting). For a whole scan the
network's flow and confidence on the subset are carried to every non-ground point of scan 1 by
its nearest subset point, then refined on all of them (:func:`.refine.refine_flow`). Ground
points get the ego-motion only. Flows are returned in the convention of
:mod:`flow_sceneflow.scan`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial import cKDTree

from flow_sceneflow.icpflow.ground import estimate_ground_height, ground_mask
from flow_sceneflow.scan import ScanPair, transform_points
from flow_sceneflow.scoop.model import ScoopModel
from flow_sceneflow.scoop.refine import refine_flow

__all__ = ["PreparedPair", "ScoopResult", "prepare_pair", "sample_points", "scoop_flow"]


@dataclass
class PreparedPair:
    """Non-ground points of both scans in the frame of scan 1, and the ground mask of scan 1."""

    pc1: np.ndarray
    pc2: np.ndarray
    ground1: np.ndarray


@dataclass
class ScoopResult:
    """Flows before and after refinement (all points of scan 1) and seconds per stage."""

    initial: np.ndarray
    refined: np.ndarray | None
    seconds: dict[str, float] = field(default_factory=dict)


def prepare_pair(pair: ScanPair, slack: float = 0.3) -> PreparedPair:
    """Ego-compensate scan 2 and drop the ground of both scans."""
    pc2 = transform_points(pair.ego, pair.pc2)
    level = estimate_ground_height(pair.pc1)
    ground1 = ground_mask(pair.pc1, "height", slack, level)
    ground2 = ground_mask(pc2, "height", slack, level)
    return PreparedPair(pair.pc1[~ground1], pc2[~ground2], ground1)


def sample_points(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points drawn without replacement (with replacement when there are fewer)."""
    replace = points.shape[0] < count
    return points[rng.choice(points.shape[0], count, replace=replace)]


def scoop_flow(
    model: ScoopModel,
    pair: ScanPair,
    points: int = 2048,
    refine_steps: int = 150,
    refine_lr: float = 0.2,
    smooth_weight: float = 1.0,
    chunk: int = 2048,
    seed: int = 0,
) -> ScoopResult:
    """Flow of every point of ``pair.pc1`` with SCOOP; ``refine_steps=0`` skips refinement."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    prepared = prepare_pair(pair)
    rng = np.random.default_rng(seed)
    inverse_ego = np.linalg.inv(pair.ego)
    base = transform_points(inverse_ego, pair.pc1) - pair.pc1
    if prepared.pc1.shape[0] < 2 or prepared.pc2.shape[0] < 2:
        return ScoopResult(base, base.copy() if refine_steps else None, {"total": 0.0})
    count = min(points, prepared.pc1.shape[0])
    subset1 = prepared.pc1[rng.choice(prepared.pc1.shape[0], count, replace=False)]
    subset2 = sample_points(prepared.pc2, min(points, prepared.pc2.shape[0]), rng)
    model.eval()
    with torch.no_grad():
        flow, confidence = model(
            torch.from_numpy(subset1).float()[None], torch.from_numpy(subset2).float()[None]
        )
    _, nearest = cKDTree(subset1).query(prepared.pc1)
    initial = flow[0].numpy()[nearest].astype(np.float64)
    confidence_all = confidence[0].numpy()[nearest]
    seconds["network"] = time.perf_counter() - clock

    def to_scan_convention(nonground_flow: np.ndarray) -> np.ndarray:
        out: np.ndarray = base.copy()
        moved = transform_points(inverse_ego, prepared.pc1 + nonground_flow)
        out[~prepared.ground1] = moved - prepared.pc1
        return out

    refined = None
    if refine_steps:
        clock = time.perf_counter()
        with torch.enable_grad():
            result = refine_flow(
                torch.from_numpy(prepared.pc1).float(),
                torch.from_numpy(prepared.pc2).float(),
                torch.from_numpy(initial).float(),
                torch.from_numpy(confidence_all).float(),
                steps=refine_steps,
                lr=refine_lr,
                smooth_weight=smooth_weight,
                neighbours=model.neighbours,
                chunk=chunk,
            )
        refined = to_scan_convention(result.numpy().astype(np.float64))
        seconds["refine"] = time.perf_counter() - clock
    seconds["total"] = sum(seconds.values())
    return ScoopResult(to_scan_convention(initial), refined, seconds)
