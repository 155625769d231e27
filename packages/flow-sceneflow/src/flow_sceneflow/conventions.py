"""Input conventions of a scan pair: recorded by the loader, detected, or given, then resolved.

Real scene-flow files differ in what was done to them before release: the Argoverse 2 files of
ZeroFlow (Vedder et al. 2024, arXiv 2305.10424) and ICP-Flow (Lin & Caesar 2024, arXiv
2402.17351) are ego-compensated, ground-free, float16-quantised and NaN-padded; the KITTI files
of FlowNet3D / HPLFlowNet are ground-free but not compensated; a raw PLY/PCD pair is neither.
:func:`resolve_conventions` fills every fact a file left open:

* **ground removed** — :func:`has_ground`: the scan is split into ``cell`` m xy cells; a cell is
  *flat ground* when all its points lie within ``band`` m of the lowest height mode. With ground,
  open ground makes at least ``min_flat`` (20 %) of the occupied cells flat; without it, cells
  hold the vertical surfaces of objects and almost none are;
* **ego-compensated** — poses in the file mean not compensated (they are applied); otherwise the
  whole-scan ICP ego-motion (:func:`~flow_sceneflow.registration.ego.estimate_ego`) is measured,
  and a motion under 5 cm and 0.3° means the pair is already compensated;
* **float16** — every coordinate of scan 1 survives a float16 round trip unchanged.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from flow_core.errors import ConfigError
from flow_sceneflow.icpflow.ground import estimate_ground_height
from flow_sceneflow.registration.ego import estimate_ego, motion_size
from flow_sceneflow.scan import Conventions, ScanPair

__all__ = [
    "CHOICES",
    "has_ground",
    "is_float16",
    "resolve_conventions",
]

CHOICES = ("auto", "yes", "no")
STILL_TRANSLATION = 0.05
STILL_DEGREES = 0.3


def is_float16(points: np.ndarray) -> bool:
    """Whether every coordinate lies on the float16 grid."""
    finite = points[np.isfinite(points).all(1)]
    return bool(finite.size) and bool(
        np.array_equal(finite.astype(np.float16).astype(np.float64), finite)
    )


def has_ground(
    points: np.ndarray, cell: float = 1.0, band: float = 0.25, min_flat: float = 0.2
) -> bool:
    """Whether the scan still holds its ground (see the module docstring)."""
    level = estimate_ground_height(points)
    keys = np.floor(points[:, :2] / cell).astype(np.int64)
    _, cell_of = np.unique(keys, axis=0, return_inverse=True)
    cell_of = cell_of.reshape(-1)
    off = (np.abs(points[:, 2] - level) > band).astype(np.int64)
    off_per_cell = np.bincount(cell_of, weights=off)
    return bool(np.mean(off_per_cell == 0) >= min_flat)


def _choice(name: str, value: str) -> bool | None:
    if value not in CHOICES:
        raise ConfigError(f"{name} must be one of {CHOICES}, got {value!r}")
    return None if value == "auto" else value == "yes"


def resolve_conventions(
    pair: ScanPair, ego_compensated: str = "auto", ground_removed: str = "auto"
) -> tuple[Conventions, np.ndarray]:
    """The pair's conventions with every open fact filled, and the ego-motion to apply.

    ``ego_compensated`` / ``ground_removed`` (``auto``, ``yes``, ``no``) override the file.
    Returns the conventions and the 4×4 transform taking scan 2 into the frame of scan 1: the
    poses' when the file has them, the identity for a compensated pair, else the estimate.
    """
    known = pair.conventions
    source = dict(known.source)
    facts: dict[str, bool | None] = {
        "ego_compensated": known.ego_compensated,
        "ground_removed": known.ground_removed,
    }
    for name, value in (("ego_compensated", ego_compensated), ("ground_removed", ground_removed)):
        given = _choice(name, value)
        if given is not None:
            facts[name], source[name] = given, "given"
    if facts["ground_removed"] is None:
        facts["ground_removed"] = not (has_ground(pair.pc1) and has_ground(pair.pc2))
        source["ground_removed"] = "detected"
    ego = np.eye(4)
    if pair.pose1 is not None:
        ego = pair.ego
        if facts["ego_compensated"] is None:
            facts["ego_compensated"], source["ego_compensated"] = False, "file has poses"
    elif facts["ego_compensated"] is not True:
        estimate = estimate_ego(pair.pc1, pair.pc2)
        translation, degrees = motion_size(estimate)
        still = translation < STILL_TRANSLATION and degrees < STILL_DEGREES
        if facts["ego_compensated"] is None:
            facts["ego_compensated"] = still
            source["ego_compensated"] = (
                f"detected: whole-scan ICP moves {translation:.2f} m, {degrees:.2f} deg"
            )
        if not still:
            ego = estimate
    resolved = dataclasses.replace(
        known,
        ego_compensated=facts["ego_compensated"],
        ground_removed=facts["ground_removed"],
        float16=known.float16 or is_float16(pair.pc1),
        source=tuple(sorted(source.items())),
    )
    return resolved, ego
