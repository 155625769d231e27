"""Where a scene-flow task's scan pairs come from: generated scenes, or the user's files.

With ``data`` and ``scan1`` empty the task generates ``pairs`` synthetic LiDAR pairs (scene seeds
``first_scene``, ``first_scene + 1``, ...; see :mod:`flow_sceneflow.data.synthetic`) in the input
``convention`` (raw, compensated, ground-removed, av2). Otherwise it loads ``data`` (a pair
``.npz`` in any known layout, or an HPLFlowNet KITTI directory), or ``scan1`` and ``scan2``, with
optional ``flow_file``, ``pose1`` and ``pose2`` files (:mod:`flow_sceneflow.data.io`).
``ego_compensated`` and ``ground_removed`` (``auto``, ``yes``, ``no``) override what the file
records and what is detected (:mod:`flow_sceneflow.conventions`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flow_core.errors import ConfigError
from flow_sceneflow.conventions import CHOICES
from flow_sceneflow.data.io import load_pair
from flow_sceneflow.data.synthetic import (
    CONVENTIONS,
    LidarSpec,
    SceneSpec,
    generate_pair,
    in_convention,
)
from flow_sceneflow.metrics import scene_flow_metrics
from flow_sceneflow.scan import ScanPair

__all__ = ["ScanOptions", "load_scan_pairs", "pooled_metrics"]


@dataclass(frozen=True)
class ScanOptions:
    """Data settings shared by the scene-flow tasks (see the module docstring)."""

    data: str = ""
    scan1: str = ""
    scan2: str = ""
    flow_file: str = ""
    pose1: str = ""
    pose2: str = ""
    drop_nonfinite: bool = False
    pairs: int = 3
    first_scene: int = 0
    beams: int = 32
    azimuths: int = 1024
    objects: int = 10
    convention: str = "raw"
    ego_compensated: str = "auto"
    ground_removed: str = "auto"

    def __post_init__(self) -> None:
        if self.pairs < 1:
            raise ConfigError(f"pairs must be >= 1, got {self.pairs}")
        if self.first_scene < 0:
            raise ConfigError(f"first_scene must be >= 0, got {self.first_scene}")
        if self.data and self.scan1:
            raise ConfigError("give data (a pair file or directory) or scan1 + scan2, not both")
        if not self.scan1 and self.scan2:
            raise ConfigError("scan2 needs scan1 (the first scan file)")
        if self.generated and (self.flow_file or self.pose1 or self.pose2):
            raise ConfigError("flow_file, pose1 and pose2 need data or scan1 (the scans)")
        if self.convention not in CONVENTIONS:
            raise ConfigError(f"convention must be one of {CONVENTIONS}, got {self.convention!r}")
        for name in ("ego_compensated", "ground_removed"):
            if getattr(self, name) not in CHOICES:
                raise ConfigError(f"{name} must be one of {CHOICES}, got {getattr(self, name)!r}")
        if self.beams < 2 or self.azimuths < 8 or self.objects < 0:
            raise ConfigError("beams must be >= 2, azimuths >= 8 and objects >= 0")

    @property
    def generated(self) -> bool:
        return not (self.scan1 or self.data)


def load_scan_pairs(options: ScanOptions) -> list[ScanPair]:
    """The pairs the task runs on."""
    if options.generated:
        lidar = LidarSpec(beams=options.beams, azimuths=options.azimuths)
        scene = SceneSpec(objects=options.objects)
        seeds = range(options.first_scene, options.first_scene + options.pairs)
        return [in_convention(generate_pair(s, scene, lidar), options.convention) for s in seeds]
    return [
        load_pair(
            options.data or options.scan1,
            options.scan2 or None,
            options.flow_file or None,
            options.pose1 or None,
            options.pose2 or None,
            drop_nonfinite=options.drop_nonfinite,
        )
    ]


def pooled_metrics(pairs: list[ScanPair], flows: list[np.ndarray]) -> dict[str, float]:
    """Scene-flow metrics over all points of all pairs that have ground truth (empty if none)."""
    known = [(p, f) for p, f in zip(pairs, flows, strict=True) if p.flow is not None]
    if not known:
        return {}
    truth = np.concatenate([p.flow for p, _ in known if p.flow is not None])
    prediction = np.concatenate([f for _, f in known])
    dynamic = np.concatenate([p.dynamic_mask() for p, _ in known])
    return scene_flow_metrics(prediction, truth, dynamic)
