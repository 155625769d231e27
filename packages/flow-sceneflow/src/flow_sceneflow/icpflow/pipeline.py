"""ICP-Flow: learning-free scene flow from rigid per-cluster ICP.

Lin & Caesar (CVPR 2024), "ICP-Flow: LiDAR Scene Flow Estimation with ICP". With scan 2 brought
into the frame of scan 1 by the ego-motion E (``ScanPair.ego``; identity when no poses):

1. remove the ground (:mod:`.ground`) and cluster the fused non-ground points (:mod:`.cluster`);
   each cluster c has a source part S_c (from scan 1) and a target part D_c (from scan 2);
2. stage 1 pairs (S_c, D_c) (near-static objects); stage 2 pairs every remaining S_a with every
   remaining D_b. A pair is dropped when a side has fewer than ``min_cluster_size`` points, the
   xy centroid shift exceeds ``translation_frame`` or a bounding-box extent ratio is below
   ``thres_box``;
3. each pair is registered smaller-onto-larger: a translation from the displacement histogram
   (:mod:`.histogram`), refined by point-to-point ICP: ``icp_backend="kdtree"`` (the CPU
   default, :func:`~flow_sceneflow.registration.icp.kdtree_icp`), ``"torch"`` (batched, the
   GPU default, :func:`~flow_sceneflow.registration.icp.batched_icp`) or ``"open3d"``;
4. a match is rejected when its centroid translation exceeds ``translation_frame``, its inlier
   IoU (within ``inlier`` m) is below ``thres_iou`` or |roll| or |pitch| exceeds
   ``thres_rot``·90°; the survivors are assigned one-to-one greedily by ascending error
   (the smaller of the two directed mean NN distances), keeping errors below ``thres_error``;
   a match keeps its rigid motion only when that motion is significantly better than standing
   still (:func:`beats_identity`): the share of source points lying on the target's surface
   (point-to-plane distance to the nearest target point's local plane below ``plane_inlier``
   = 0.05 m, that point closer than 0.5 m) must grow by at least ``min_inlier_gain`` (0.1, ten
   percentage points) over the identity. Otherwise the cluster is static (T_c = I). The
   histogram already offers the zero translation as a candidate (the reference's test), but
   on sparse scans that sample a static surface at different places, point-to-point ICP still
   slides the cluster by centimetres to decimetres to snap rings onto rings; surface distances
   do not reward that;
5. a point p of a matched source cluster with transform T_c gets the flow E⁻¹ T_c p − p; ground
   and unmatched points get the ego-motion only, E⁻¹ p − p.

Defaults are the reference scripts' values. Clusters are subsampled to ``max_points`` points
for registration (the transform then moves every point of the cluster) and to ``vote_points``
for the histogram, so that the whole pipeline runs on a CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from flow_core.errors import ConfigError
from flow_sceneflow.icpflow.cluster import CLUSTER_METHODS, cluster_points
from flow_sceneflow.icpflow.ground import GROUND_METHODS, estimate_ground_height, ground_mask
from flow_sceneflow.icpflow.histogram import best_translation, translation_candidates
from flow_sceneflow.registration.icp import (
    batched_icp,
    kdtree_icp,
    nearest,
    open3d_icp,
    transform,
)
from flow_sceneflow.registration.kabsch import to_homogeneous
from flow_sceneflow.scan import ScanPair, transform_points

__all__ = [
    "ICP_BACKENDS",
    "IcpFlowParams",
    "IcpFlowResult",
    "Match",
    "beats_identity",
    "icp_backend_for",
    "icp_flow",
    "register_pairs",
]

ICP_BACKENDS = ("auto", "kdtree", "torch", "open3d")


@dataclass(frozen=True)
class IcpFlowParams:
    """Settings of ICP-Flow (defaults: the reference scripts)."""

    ground: str = "local"
    ground_slack: float = 0.3
    ground_z: float | None = None
    clustering: str = "hdbscan"
    min_cluster_size: int = 20
    cluster_epsilon: float = 0.25
    max_clusters: int = 200
    translation_frame: float = 1.67
    thres_box: float = 0.1
    bin_size: float = 0.1
    peaks: int = 5
    icp_backend: str = "auto"
    device: str = "cpu"
    inlier: float = 0.1
    min_inlier_gain: float = 0.1
    plane_inlier: float = 0.05
    max_iterations: int = 100
    tolerance: float = 1e-6
    thres_iou: float = 0.2
    thres_rot: float = 0.1
    thres_error: float = 0.2
    max_points: int = 1024
    vote_points: int = 256
    batch_pairs: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.ground not in GROUND_METHODS:
            raise ConfigError(f"ground must be one of {GROUND_METHODS}, got {self.ground!r}")
        if self.icp_backend not in ICP_BACKENDS:
            raise ConfigError(
                f"icp_backend must be one of {ICP_BACKENDS}, got {self.icp_backend!r}"
            )
        if not 0.0 <= self.min_inlier_gain < 1.0:
            raise ConfigError(f"min_inlier_gain must be in [0, 1), got {self.min_inlier_gain}")
        if self.clustering not in CLUSTER_METHODS:
            raise ConfigError(
                f"clustering must be one of {CLUSTER_METHODS}, got {self.clustering!r}"
            )
        for name in ("min_cluster_size", "max_clusters", "peaks", "max_iterations"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_points", "vote_points", "batch_pairs"):
            if getattr(self, name) < 3:
                raise ConfigError(f"{name} must be >= 3, got {getattr(self, name)}")
        for name in ("translation_frame", "bin_size", "inlier", "thres_error", "cluster_epsilon"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Match:
    """One accepted cluster match: source and target cluster, transform (frame 1), quality."""

    source: int
    target: int
    transform: np.ndarray
    error: float
    iou: float
    stage: int


@dataclass
class IcpFlowResult:
    """Flow for every point of scan 1, the cluster labels, matches and per-step seconds."""

    flow: np.ndarray
    labels1: np.ndarray
    ground1: np.ndarray
    matches: list[Match]
    seconds: dict[str, float] = field(default_factory=dict)


def icp_backend_for(backend: str, device: str) -> str:
    """``auto`` is the KD-tree ICP on a CPU and the batched torch ICP on a GPU."""
    if backend != "auto":
        return backend
    return "torch" if torch.device(device).type == "cuda" else "kdtree"


def _pad(
    groups: list[np.ndarray], size: int, generator: np.random.Generator, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Subsample each group to at most ``size`` points and pad into ``(B, size', 3)`` + mask."""
    picked = [
        g if g.shape[0] <= size else g[np.sort(generator.choice(g.shape[0], size, replace=False))]
        for g in groups
    ]
    width = max(p.shape[0] for p in picked)
    points = torch.zeros(len(picked), width, 3)
    mask = torch.zeros(len(picked), width, dtype=torch.bool)
    for b, p in enumerate(picked):
        points[b, : p.shape[0]] = torch.from_numpy(p)
        mask[b, : p.shape[0]] = True
    return points.to(device), mask.to(device)


def _roll_pitch_degrees(transforms: torch.Tensor) -> torch.Tensor:
    """max(|roll|, |pitch|) of the ZYX Euler angles of each rotation, in degrees."""
    r = transforms[:, :3, :3]
    pitch = torch.asin((-r[:, 2, 0]).clamp(-1.0, 1.0))
    roll = torch.atan2(r[:, 2, 1], r[:, 2, 2])
    return torch.rad2deg(torch.maximum(pitch.abs(), roll.abs()))


def register_pairs(
    sources: list[np.ndarray], targets: list[np.ndarray], params: IcpFlowParams
) -> dict[str, torch.Tensor]:
    """Histogram initialisation + batched ICP + verification quantities for cluster pairs.

    Returns per pair (source → target, in the common frame): ``transform`` (4×4, float64),
    ``error``, ``iou``, ``translation`` (centroid shift, m), ``tilt`` (max |roll|, |pitch|,
    degrees) and ``accepted`` (the verification thresholds).
    """
    generator = np.random.default_rng(params.seed)
    backend = icp_backend_for(params.icp_backend, params.device)
    device = params.device if backend == "torch" else "cpu"
    swap = np.array([s.shape[0] > t.shape[0] for s, t in zip(sources, targets, strict=True)])
    # batches of similar sizes waste less on padding; results are put back in input order
    order = np.argsort([max(s.shape[0], t.shape[0]) for s, t in zip(sources, targets, strict=True)])
    small = [targets[k] if swap[k] else sources[k] for k in order]
    large = [sources[k] if swap[k] else targets[k] for k in order]
    out: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("transform", "error", "iou", "translation", "tilt")
    }
    for begin in range(0, len(small), params.batch_pairs):
        chunk = slice(begin, begin + params.batch_pairs)
        src, src_mask = _pad(small[chunk], params.max_points, generator, device)
        dst, dst_mask = _pad(large[chunk], params.max_points, generator, device)
        vote_src, vote_src_mask = _pad(small[chunk], params.vote_points, generator, device)
        vote_dst, vote_dst_mask = _pad(large[chunk], params.vote_points, generator, device)
        candidates = translation_candidates(
            vote_src,
            vote_dst,
            vote_src_mask,
            vote_dst_mask,
            extent=params.translation_frame,
            bin_size=params.bin_size,
            peaks=params.peaks,
        )
        shift = best_translation(vote_src, vote_dst, vote_src_mask, vote_dst_mask, candidates)
        init = to_homogeneous(
            torch.eye(3, device=shift.device).expand(len(shift), 3, 3), shift
        ).double()
        if backend == "torch":
            transforms = batched_icp(
                src,
                dst,
                init,
                src_mask,
                dst_mask,
                inlier=params.inlier,
                max_iterations=params.max_iterations,
                tolerance=params.tolerance,
            ).transforms
        elif backend == "kdtree":
            transforms = torch.from_numpy(
                kdtree_icp(
                    [src[b, src_mask[b]].numpy() for b in range(src.shape[0])],
                    [dst[b, dst_mask[b]].numpy() for b in range(dst.shape[0])],
                    init.numpy(),
                    params.inlier,
                    params.max_iterations,
                    params.tolerance,
                )
            )
        else:
            transforms = torch.stack(
                [
                    torch.from_numpy(
                        open3d_icp(
                            src[b, src_mask[b]].numpy(),
                            dst[b, dst_mask[b]].numpy(),
                            init[b].numpy(),
                            params.inlier,
                            params.max_iterations,
                            params.tolerance,
                        )
                    )
                    for b in range(src.shape[0])
                ]
            )
        moved = transform(transforms, src)
        forward, _ = nearest(moved, dst, dst_mask)
        backward, _ = nearest(dst, moved, src_mask)
        n_src, n_dst = src_mask.sum(1).float(), dst_mask.sum(1).float()
        f_in = ((forward < params.inlier) & src_mask).sum(1).float()
        b_in = ((backward < params.inlier) & dst_mask).sum(1).float()
        f_err = torch.where(src_mask, forward, 0.0).sum(1) / n_src
        b_err = torch.where(dst_mask, backward, 0.0).sum(1) / n_dst
        iou = torch.minimum(f_in / (n_src + n_dst - b_in), b_in / (n_src + n_dst - f_in))
        centroid = (torch.where(src_mask[..., None], src, 0.0)).sum(1) / n_src[:, None]
        moved_centroid = (torch.where(src_mask[..., None], moved, 0.0)).sum(1) / n_src[:, None]
        out["transform"].append(transforms)
        out["error"].append(torch.minimum(f_err, b_err).double())
        out["iou"].append(iou.double())
        out["translation"].append((moved_centroid - centroid).norm(dim=1).double())
        out["tilt"].append(_roll_pitch_degrees(transforms))
    inverse = torch.from_numpy(np.argsort(order))
    merged = {k: torch.cat(v).cpu()[inverse] for k, v in out.items()}
    flip = torch.from_numpy(swap)
    merged["transform"][flip] = torch.linalg.inv(merged["transform"][flip])
    merged["accepted"] = (
        (merged["translation"] <= params.translation_frame)
        & (merged["iou"] >= params.thres_iou)
        & (merged["tilt"] <= params.thres_rot * 90.0)
        & (merged["error"] < params.thres_error)
    )
    return merged


def _surface_share(
    points: np.ndarray, target: np.ndarray, normals: np.ndarray, tree: object, tolerance: float
) -> float:
    """Share of ``points`` within ``tolerance`` of the local plane of their nearest target."""
    distance, index = tree.query(points, distance_upper_bound=0.5)  # type: ignore[attr-defined]
    near = np.isfinite(distance)
    offset = points[near] - target[index[near]]
    on_plane = np.abs(np.einsum("ij,ij->i", offset, normals[index[near]])) < tolerance
    return float(on_plane.sum() / points.shape[0])


def beats_identity(
    source: np.ndarray, target: np.ndarray, motion: np.ndarray, params: IcpFlowParams
) -> bool:
    """Whether ``motion`` puts ``min_inlier_gain`` more of ``source`` on ``target``'s surface.

    Surfaces are the local planes of ``target`` (normals from its 8 nearest neighbours, open3d);
    see the module docstring, step 4.
    """
    import open3d as o3d
    from scipy.spatial import cKDTree

    if np.allclose(motion, np.eye(4)):
        return False
    generator = np.random.default_rng(params.seed)
    if source.shape[0] > params.max_points:
        source = source[generator.choice(source.shape[0], params.max_points, replace=False)]
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(target))
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(8))
    normals = np.asarray(cloud.normals)
    tree = cKDTree(target)
    still = _surface_share(source, target, normals, tree, params.plane_inlier)
    moved = transform_points(motion, source)
    return _surface_share(moved, target, normals, tree, params.plane_inlier) >= (
        still + params.min_inlier_gain
    )


def _plausible(src: np.ndarray, dst: np.ndarray, params: IcpFlowParams) -> bool:
    """The reference's pre-registration checks: size, centroid shift, box-extent ratios."""
    if min(src.shape[0], dst.shape[0]) < params.min_cluster_size:
        return False
    if np.linalg.norm(dst.mean(0)[:2] - src.mean(0)[:2]) > params.translation_frame:
        return False
    a, b = np.ptp(src, axis=0), np.ptp(dst, axis=0)
    return bool(np.all(np.minimum(a, b) >= params.thres_box * np.maximum(a, b)))


def _match_stage(
    pairs: list[tuple[int, int]],
    parts1: dict[int, np.ndarray],
    parts2: dict[int, np.ndarray],
    params: IcpFlowParams,
    stage: int,
) -> list[Match]:
    pairs = [(a, b) for a, b in pairs if _plausible(parts1[a], parts2[b], params)]
    if not pairs:
        return []
    found = register_pairs([parts1[a] for a, _ in pairs], [parts2[b] for _, b in pairs], params)
    order = torch.argsort(found["error"]).tolist()
    used1: set[int] = set()
    used2: set[int] = set()
    matches = []
    for k in order:
        a, b = pairs[k]
        if not bool(found["accepted"][k]) or a in used1 or b in used2:
            continue
        used1.add(a)
        used2.add(b)
        motion = found["transform"][k].numpy()
        if not beats_identity(parts1[a], parts2[b], motion, params):
            motion = np.eye(4)
        matches.append(
            Match(
                a,
                b,
                motion,
                float(found["error"][k]),
                float(found["iou"][k]),
                stage,
            )
        )
    return matches


def icp_flow(
    pair: ScanPair, params: IcpFlowParams | None = None, ego: np.ndarray | None = None
) -> IcpFlowResult:
    """Estimate the scene flow of ``pair`` with ICP-Flow (see the module docstring).

    ``ego`` (4×4, scan 2 into the frame of scan 1) overrides the poses' ``pair.ego``, e.g. with
    an estimate (:func:`flow_sceneflow.conventions.resolve_conventions`).
    """
    params = params or IcpFlowParams()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    ego = pair.ego if ego is None else ego
    pc1 = pair.pc1
    pc2 = transform_points(ego, pair.pc2)
    level = params.ground_z
    if params.ground == "height" and level is None:
        level = estimate_ground_height(pc1)
    ground1 = ground_mask(pc1, params.ground, params.ground_slack, level, params.seed)
    ground2 = ground_mask(pc2, params.ground, params.ground_slack, level, params.seed)
    seconds["ground"] = time.perf_counter() - clock

    clock = time.perf_counter()
    fused = np.concatenate([pc1[~ground1], pc2[~ground2]])
    labels = cluster_points(
        fused,
        params.clustering,
        params.min_cluster_size,
        params.cluster_epsilon,
        params.max_clusters,
    )
    n1 = int((~ground1).sum())
    labels1 = np.full(pc1.shape[0], -1, dtype=np.int64)
    labels1[~ground1] = labels[:n1]
    labels2 = labels[n1:]
    seconds["cluster"] = time.perf_counter() - clock

    clock = time.perf_counter()
    kept2 = pc2[~ground2]
    parts1 = {int(c): pc1[labels1 == c] for c in np.unique(labels1) if c >= 0}
    parts2 = {int(c): kept2[labels2 == c] for c in np.unique(labels2) if c >= 0}
    shared = sorted(set(parts1) & set(parts2))
    matches = _match_stage([(c, c) for c in shared], parts1, parts2, params, stage=1)
    left1 = [c for c in parts1 if c not in {m.source for m in matches}]
    left2 = [c for c in parts2 if c not in {m.target for m in matches}]
    matches += _match_stage([(a, b) for a in left1 for b in left2], parts1, parts2, params, 2)
    seconds["match"] = time.perf_counter() - clock

    inverse_ego = np.linalg.inv(ego)
    moved = transform_points(inverse_ego, pc1)
    for match in matches:
        members = labels1 == match.source
        moved[members] = transform_points(inverse_ego @ match.transform, pc1[members])
    seconds["total"] = sum(seconds.values())
    return IcpFlowResult(moved - pc1, labels1, ground1, matches, seconds)
