"""``sceneflow.icpflow``: learning-free LiDAR scene flow with ICP-Flow.

Runs :func:`flow_sceneflow.icpflow.pipeline.icp_flow` on generated pairs (default) or on the
user's scans, and, where ground truth exists, scores it with EPE3D / AccS / AccR / Outliers
(overall, static, dynamic) beside nearest-neighbour flow. Writes each estimated flow to
``flows/pair-<i>.npz`` (``pc1``, ``flow``) and a top-down figure of the first pair.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from flow_core.errors import ConfigError
from flow_sceneflow.baselines import nearest_neighbour_flow
from flow_sceneflow.conventions import resolve_conventions
from flow_sceneflow.figures import top_down
from flow_sceneflow.icpflow.ground import GROUND_METHODS
from flow_sceneflow.icpflow.pipeline import IcpFlowParams, icp_backend_for, icp_flow
from flow_sceneflow.scan import Conventions, ScanPair
from flow_sceneflow.tasks.scans import ScanOptions, load_scan_pairs, pooled_metrics

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = ["IcpFlowConfig", "IcpFlowTask"]


@dataclass(frozen=True)
class IcpFlowConfig(ScanOptions):
    """Data (:class:`ScanOptions`) and ICP-Flow settings (reference-script defaults)."""

    ground: str = "auto"
    clustering: str = "hdbscan"
    min_cluster_size: int = 20
    cluster_epsilon: float = 0.25
    translation_frame: float = 1.67
    icp_backend: str = "auto"
    inlier: float = 0.1
    min_inlier_gain: float = 0.1
    thres_iou: float = 0.2
    thres_error: float = 0.2
    max_points: int = 1024

    def params(self, seed: int, ground_removed: bool = False, device: str = "cpu") -> IcpFlowParams:
        """Pipeline settings; ``ground=auto`` is ``none`` on ground-free input, else ``local``."""
        ground = self.ground
        if ground == "auto":
            ground = "none" if ground_removed else "local"
        return IcpFlowParams(
            ground=ground,
            clustering=self.clustering,
            min_cluster_size=self.min_cluster_size,
            cluster_epsilon=self.cluster_epsilon,
            translation_frame=self.translation_frame,
            icp_backend=self.icp_backend,
            device=device,
            inlier=self.inlier,
            min_inlier_gain=self.min_inlier_gain,
            thres_iou=self.thres_iou,
            thres_error=self.thres_error,
            max_points=self.max_points,
            seed=seed,
        )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ground not in ("auto", *GROUND_METHODS):
            raise ConfigError(
                f"ground must be one of {('auto', *GROUND_METHODS)}, got {self.ground!r}"
            )
        self.params(0)  # validates the ICP-Flow settings


def _ego_source(pair: ScanPair, conventions: Conventions) -> str:
    if pair.pose1 is not None:
        return "from the poses"
    if conventions.ego_compensated:
        return "none (already compensated)"
    return "estimated by whole-scan ICP"


class IcpFlowTask:
    """Estimate and score ICP-Flow on each pair; see the module docstring."""

    Config: ClassVar[type[IcpFlowConfig]] = IcpFlowConfig

    def run(self, config: IcpFlowConfig, ctx: RunContext) -> dict[str, float]:
        pairs = load_scan_pairs(config)
        flows, baseline, seconds, matched, assumed = [], [], [], [], []
        (ctx.out_dir / "flows").mkdir(exist_ok=True)
        bar = ctx.progress(len(pairs), "icp-flow pairs")
        for index, pair in enumerate(pairs):
            started = time.perf_counter()
            conventions, ego = resolve_conventions(
                pair, config.ego_compensated, config.ground_removed
            )
            params = config.params(ctx.seed, bool(conventions.ground_removed), str(ctx.device))
            assumed.append(
                f"{pair.name}: {conventions.describe()}; so ground={params.ground},"
                f" ego-motion {_ego_source(pair, conventions)},"
                f" icp_backend={icp_backend_for(params.icp_backend, params.device)}"
            )
            result = icp_flow(pair, params, ego)
            seconds.append(time.perf_counter() - started)
            matched.append(len(result.matches))
            flows.append(result.flow)
            baseline.append(nearest_neighbour_flow(pair))
            np.savez_compressed(
                ctx.out_dir / "flows" / f"pair-{index}.npz", pc1=pair.pc1, flow=result.flow
            )
            ctx.log(index, {"seconds": seconds[-1], "matches": float(matched[-1])})
            bar.update(1)
        bar.close()
        metrics = pooled_metrics(pairs, flows)
        nn_metrics = pooled_metrics(pairs, baseline)
        metrics.update({f"nn_{k}": v for k, v in nn_metrics.items()})
        metrics["seconds_per_pair"] = float(np.mean(seconds))
        metrics["matches_per_pair"] = float(np.mean(matched))
        metrics["points_per_pair"] = float(np.mean([p.pc1.shape[0] for p in pairs]))
        if ctx.is_main:
            ctx.report.add_text(
                "Input conventions assumed:\n\n" + "\n".join(f"- {a}" for a in assumed)
            )
            self._report(ctx, config, pairs, flows, baseline, metrics)
        return metrics

    @staticmethod
    def _report(
        ctx: RunContext,
        config: IcpFlowConfig,
        pairs: list[ScanPair],
        flows: list[np.ndarray],
        baseline: list[np.ndarray],
        metrics: dict[str, float],
    ) -> None:
        source = (
            f"{len(pairs)} generated LiDAR pair(s) (synthetic substitute; scenes"
            f" {config.first_scene}..{config.first_scene + len(pairs) - 1}, {config.beams} beams)"
            if config.generated
            else f"the user's pair {pairs[0].name}"
        )
        ctx.report.add_text(
            f"ICP-Flow on {source}: {metrics['matches_per_pair']:.1f} matched clusters and"
            f" {metrics['seconds_per_pair']:.2f} s per pair on average. Flows are in `flows/`."
        )
        if "epe3d" in metrics:
            rows = []
            for label, prefix in (("ICP-Flow", ""), ("nearest neighbour", "nn_")):
                for split in ("", "static_", "dynamic_"):
                    rows.append(
                        {
                            "method": label,
                            "points": split.rstrip("_") or "all",
                            "EPE3D (m)": metrics[f"{prefix}{split}epe3d"],
                            "AccS": metrics[f"{prefix}{split}acc_strict"],
                            "AccR": metrics[f"{prefix}{split}acc_relax"],
                            "Outliers": metrics[f"{prefix}{split}outliers"],
                        }
                    )
            ctx.report.add_table("Scene-flow metrics (all pairs pooled)", rows)
        pair = pairs[0]
        panels = [("ICP-Flow", flows[0]), ("nearest neighbour", baseline[0])]
        if pair.flow is not None:
            panels.insert(0, ("ground truth", pair.flow))
        path = ctx.report.add_figure(
            "top-down.png", "first pair from above, coloured by motion beyond the ego-motion"
        )
        top_down(path, pair, panels)
