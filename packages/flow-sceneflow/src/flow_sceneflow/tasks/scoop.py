"""``sceneflow.scoop``: self-supervised SCOOP, trained on generated scans, with refinement.

Training (no ground truth): random subsets of ``train_points`` non-ground points of pairs from
a pool of ``train_scenes`` generated scenes (seeds disjoint from the evaluation scenes) — or
of the evaluated pairs themselves with ``train_data=input`` — and SCOOP's loss
(:func:`flow_sceneflow.scoop.losses.scoop_loss`), with flow-core's checkpointed training loop.
Evaluation: each pair's flow from the network alone and after test-time refinement, scored
where ground truth exists, beside nearest-neighbour flow.

CPU defaults are far below the paper's (2048 points, k = 32, batch 4, 400 epochs): 512
points, k = 16, batch 1 and 150 steps, so that the task runs in minutes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from flow_core.errors import ConfigError
from flow_core.training import TrainSettings, train, training
from flow_sceneflow.baselines import nearest_neighbour_flow
from flow_sceneflow.data.synthetic import LidarSpec, SceneSpec, generate_pair
from flow_sceneflow.figures import top_down
from flow_sceneflow.scan import ScanPair
from flow_sceneflow.scoop.losses import scoop_loss
from flow_sceneflow.scoop.model import ScoopModel, knn
from flow_sceneflow.scoop.pipeline import PreparedPair, prepare_pair, scoop_flow
from flow_sceneflow.tasks.scans import ScanOptions, load_scan_pairs, pooled_metrics

if TYPE_CHECKING:
    from torch import nn

    from flow_core.runner import RunContext

__all__ = ["ScoopConfig", "ScoopTask"]

TRAIN_SEED_BASE = 1_000_000
TRAIN_DATA = ("generated", "input")


@dataclass(frozen=True)
class ScoopConfig(ScanOptions):
    """Data (:class:`ScanOptions`), training and refinement settings."""

    train_data: str = "generated"
    train_scenes: int = 16
    train_points: int = 512
    neighbours: int = 16
    top_k: int = 64
    eval_points: int = 1024
    refine_steps: int = 150
    refine_lr: float = 0.2
    smooth_weight: float = 1.0
    train: TrainSettings = training(
        steps=150, batch_size=1, lr=1e-3, grad_clip=0.0, log_every=10, checkpoint_every=50
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.train_data not in TRAIN_DATA:
            raise ConfigError(f"train_data must be one of {TRAIN_DATA}, got {self.train_data!r}")
        for name in ("train_scenes", "top_k"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("train_points", "eval_points", "neighbours"):
            if getattr(self, name) < 4:
                raise ConfigError(f"{name} must be >= 4, got {getattr(self, name)}")
        if self.refine_steps < 0:
            raise ConfigError(
                f"refine_steps must be >= 0 (0 skips refinement), got {self.refine_steps}"
            )
        if self.refine_lr <= 0:
            raise ConfigError(f"refine_lr must be > 0, got {self.refine_lr}")


def _training_pool(
    config: ScoopConfig, pairs: list[ScanPair], ctx: RunContext
) -> list[PreparedPair]:
    if config.train_data == "input":
        source = pairs
    else:
        lidar = LidarSpec(beams=config.beams, azimuths=config.azimuths)
        scene = SceneSpec(objects=config.objects)
        bar = ctx.progress(config.train_scenes, "generate training scenes")
        source = []
        for index in range(config.train_scenes):
            source.append(generate_pair(TRAIN_SEED_BASE + 1000 * ctx.seed + index, scene, lidar))
            bar.update(1)
        bar.close()
    pool = [prepare_pair(p) for p in source]
    pool = [p for p in pool if p.pc1.shape[0] >= 4 and p.pc2.shape[0] >= 4]
    if not pool:
        raise ConfigError("no training pair has at least 4 non-ground points in each scan")
    return pool


class ScoopTask:
    """Train SCOOP self-supervised, then estimate and score flows; see the module docstring."""

    Config: ClassVar[type[ScoopConfig]] = ScoopConfig

    def run(self, config: ScoopConfig, ctx: RunContext) -> dict[str, float]:
        pairs = load_scan_pairs(config)
        pool = _training_pool(config, pairs, ctx)
        tensors = [(torch.from_numpy(p.pc1).float(), torch.from_numpy(p.pc2).float()) for p in pool]

        def draw(points: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            if points.shape[0] >= config.train_points:
                index = torch.randperm(points.shape[0], generator=generator)[: config.train_points]
            else:
                index = torch.randint(
                    0, points.shape[0], (config.train_points,), generator=generator
                )
            return points[index]

        def next_batch(generator: torch.Generator) -> dict[str, torch.Tensor]:
            chosen = torch.randint(0, len(tensors), (config.train.batch_size,), generator=generator)
            return {
                "pc1": torch.stack([draw(tensors[int(i)][0], generator) for i in chosen]),
                "pc2": torch.stack([draw(tensors[int(i)][1], generator) for i in chosen]),
            }

        def objective(
            model: nn.Module, batch: Mapping[str, torch.Tensor]
        ) -> tuple[torch.Tensor, dict[str, float]]:
            flow, confidence = model(batch["pc1"], batch["pc2"])
            graph = knn(batch["pc1"], config.neighbours + 1)
            return scoop_loss(flow, confidence, batch["pc1"], batch["pc2"], graph)

        torch.manual_seed(ctx.seed)
        model = ScoopModel(neighbours=config.neighbours, top_k=config.top_k)
        started = time.perf_counter()
        result = train(ctx, model, objective, next_batch, config.train)
        train_seconds = time.perf_counter() - started
        trained = result.model.cpu().eval()
        assert isinstance(trained, ScoopModel)

        initial, refined, baseline, seconds = [], [], [], []
        bar = ctx.progress(len(pairs), "scoop pairs")
        for pair in pairs:
            clock = time.perf_counter()
            estimate = scoop_flow(
                trained,
                pair,
                points=config.eval_points,
                refine_steps=config.refine_steps,
                refine_lr=config.refine_lr,
                smooth_weight=config.smooth_weight,
                seed=ctx.seed,
            )
            seconds.append(time.perf_counter() - clock)
            initial.append(estimate.initial)
            refined.append(estimate.refined if estimate.refined is not None else estimate.initial)
            baseline.append(nearest_neighbour_flow(pair))
            bar.update(1)
        bar.close()
        metrics = {f"refined_{k}": v for k, v in pooled_metrics(pairs, refined).items()}
        metrics.update({f"initial_{k}": v for k, v in pooled_metrics(pairs, initial).items()})
        metrics.update({f"nn_{k}": v for k, v in pooled_metrics(pairs, baseline).items()})
        metrics["train_loss"] = result.metrics.get("loss", float("nan"))
        metrics["seconds_per_pair"] = float(np.mean(seconds))
        (ctx.out_dir / "flows").mkdir(exist_ok=True)
        for index, (pair, flow) in enumerate(zip(pairs, refined, strict=True)):
            np.savez_compressed(
                ctx.out_dir / "flows" / f"pair-{index}.npz", pc1=pair.pc1, flow=flow
            )
        if ctx.is_main:
            self._report(ctx, config, pairs, initial, refined, metrics, train_seconds)
        return metrics

    def evaluate(self, config: ScoopConfig, ctx: RunContext) -> dict[str, float]:
        """``flow eval``: the trained network is loaded, then the pairs are estimated and
        scored again (e.g. with other refinement settings: ``--set refine_steps=300``)."""
        return self.run(config, ctx)

    @staticmethod
    def _report(
        ctx: RunContext,
        config: ScoopConfig,
        pairs: list[ScanPair],
        initial: list[np.ndarray],
        refined: list[np.ndarray],
        metrics: dict[str, float],
        train_seconds: float,
    ) -> None:
        data = (
            f"{len(pairs)} generated LiDAR pair(s) (synthetic substitute)"
            if config.generated
            else f"the user's pair {pairs[0].name}"
        )
        ctx.report.add_text(
            f"SCOOP trained self-supervised for {config.train.steps} steps"
            f" ({train_seconds:.0f} s) on {config.train_data} scans, evaluated on {data};"
            f" refinement {config.refine_steps} steps. Flows (refined) are in `flows/`."
        )
        if "refined_epe3d" in metrics:
            rows = []
            for label, prefix in (
                ("SCOOP refined", "refined_"),
                ("SCOOP network only", "initial_"),
                ("nearest neighbour", "nn_"),
            ):
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
        panels = [("SCOOP network only", initial[0]), ("SCOOP refined", refined[0])]
        if pair.flow is not None:
            panels.insert(0, ("ground truth", pair.flow))
        path = ctx.report.add_figure(
            "top-down.png", "first pair from above, coloured by motion beyond the ego-motion"
        )
        top_down(path, pair, panels)
