"""Our ICPs (batched KD-tree for CPUs, batched torch for GPUs) against open3d's, same pairs.

For each object (ground excluded) seen with at least ``min_points`` points in both scans, the
source is its scan-1 points and the target its scan-2 points brought into frame 1 with the
ego-motion; the true transform is P₁⁻¹ M_k P₁. Each side is subsampled to at most
``max_points`` points (ICP-Flow's ``max_points``) and both ICPs get the same points, start from
the same histogram translation (voted with 256 points per side) and use the same inlier radius,
iteration cap and tolerance.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from flow_sceneflow.data.synthetic import make_scene
from flow_sceneflow.icpflow.histogram import best_translation, translation_candidates
from flow_sceneflow.registration.icp import batched_icp, kdtree_icp, open3d_icp
from flow_sceneflow.registration.kabsch import to_homogeneous
from flow_sceneflow.scan import ScanPair, transform_points


def object_pairs(
    pairs: list[ScanPair], seeds: list[int], min_points: int = 50, max_points: int = 1024
):
    rng = np.random.default_rng(0)

    def cap(points: np.ndarray, size: int) -> np.ndarray:
        if len(points) <= size:
            return points
        return points[np.sort(rng.choice(len(points), size, replace=False))]

    problems = []
    for pair, seed in zip(pairs, seeds, strict=True):
        scene = make_scene(seed)
        common2 = transform_points(pair.ego, pair.pc2)
        for k in range(1, len(scene.meshes)):
            source = pair.pc1[pair.labels1 == k]
            target = common2[pair.labels2 == k]
            if min(len(source), len(target)) < min_points:
                continue
            truth = np.linalg.inv(scene.pose1) @ scene.motions[k] @ scene.pose1
            problems.append((cap(source, max_points), cap(target, max_points), truth))
    return problems


def _pad(groups):
    width = max(len(g) for g in groups)
    points = torch.zeros(len(groups), width, 3)
    mask = torch.zeros(len(groups), width, dtype=torch.bool)
    for b, g in enumerate(groups):
        points[b, : len(g)] = torch.from_numpy(g).float()
        mask[b, : len(g)] = True
    return points, mask


def _errors(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    relative = found[:3, :3].T @ truth[:3, :3]
    angle = np.degrees(np.arccos(np.clip((np.trace(relative) - 1) / 2, -1, 1)))
    return float(np.linalg.norm(found[:3, 3] - truth[:3, 3])), float(angle)


def compare(problems, inlier: float, repeats: int = 3):
    src, src_mask = _pad([p[0] for p in problems])
    dst, dst_mask = _pad([p[1] for p in problems])
    vote_src, vote_src_mask = _pad([p[0][:256] for p in problems])
    vote_dst, vote_dst_mask = _pad([p[1][:256] for p in problems])
    candidates = translation_candidates(
        vote_src, vote_dst, vote_src_mask, vote_dst_mask, extent=1.67
    )
    shift = best_translation(vote_src, vote_dst, vote_src_mask, vote_dst_mask, candidates)
    init = to_homogeneous(torch.eye(3).expand(len(shift), 3, 3), shift).double()
    times: dict[str, list[float]] = {"kdtree": [], "ours": [], "open3d": []}
    found = {}
    for _ in range(repeats):  # alternate; the first round is a warm-up
        clock = time.perf_counter()
        found["kdtree"] = kdtree_icp(
            [p[0] for p in problems], [p[1] for p in problems], init.numpy(), inlier=inlier
        )
        times["kdtree"].append(time.perf_counter() - clock)
        clock = time.perf_counter()
        found["ours"] = batched_icp(
            src, dst, init, src_mask, dst_mask, inlier=inlier
        ).transforms.numpy()
        times["ours"].append(time.perf_counter() - clock)
        clock = time.perf_counter()
        found["open3d"] = np.stack(
            [
                open3d_icp(s, t, init[b].numpy(), inlier=inlier)
                for b, (s, t, _) in enumerate(problems)
            ]
        )
        times["open3d"].append(time.perf_counter() - clock)
    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in ("start", *found)}
    for b, (_, _, truth) in enumerate(problems):
        rows["start"].append(_errors(init[b].numpy(), truth))
        for name, transforms in found.items():
            rows[name].append(_errors(transforms[b], truth))
    summary = {}
    for name, errors in rows.items():
        e = np.array(errors)
        summary[name] = {
            "t_mean": e[:, 0].mean(),
            "t_median": np.median(e[:, 0]),
            "r_mean": e[:, 1].mean(),
            "r_median": np.median(e[:, 1]),
        }
    for name, spent in times.items():
        summary[name]["seconds"] = float(np.median(spent[1:] if repeats > 1 else spent))
    return summary
