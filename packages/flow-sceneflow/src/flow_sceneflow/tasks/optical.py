"""``sceneflow.optical``: ReynoldsFlow-style optical flow against TV-L1, Lucas-Kanade and
Farneback, scored by end-point error on pairs with known flow.

By default (``data=bundled``) the task runs on data that ships with scikit-image: the real
Middlebury stereo pair ``stereo_motorcycle`` (flow = (−disparity, 0)) and bundled photographs
warped by known fields (synthetic substitutes; see :mod:`~flow_sceneflow.data.optical`). With
``data=files`` it runs on the user's two images ``image0`` and ``image1`` and, if
``truth_flow`` names a ground-truth file (``.npy`` or ``.flo``), scores against it; without
ground truth it reports the photometric residual mean |image1(x + flow(x)) − image0(x)| instead.

Metrics (flat): ``<pair>.<method>.epe`` and ``.outliers`` (KITTI Fl rule: error > ``outlier_px``
and > ``outlier_rel`` × |truth|), ``<pair>.<method>.photometric``, and over all pairs with
ground truth ``mean.<method>.epe`` / ``mean.<method>.outliers``. Method ``reynolds`` is the full
Reynolds flow v_o + v_r with v_o from ``reynolds_base``; run times are in the report (not in
the metrics, which are reproducible). Farneback needs OpenCV and is skipped, with a note in the
report, when OpenCV is not installed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from flow_core.errors import ConfigError
from flow_sceneflow.baselines import BASELINES, estimate_flow, has_opencv
from flow_sceneflow.data.optical import (
    FIELDS,
    SOURCE_IMAGES,
    OpticalPair,
    load_pair,
    stereo_pair,
    warp_pair,
)
from flow_sceneflow.metrics import flow_metrics
from flow_sceneflow.optical.encodings import reynoldsflow_plus
from flow_sceneflow.optical.reynolds import reynolds_flow, warp_image

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = ["OpticalFlowConfig", "OpticalFlowTask"]

METHODS = ("reynolds", *BASELINES)


@dataclass(frozen=True)
class OpticalFlowConfig:
    """Configuration of ``sceneflow.optical`` (defaults: about a minute on one CPU core).

    ``data``: ``bundled`` (stereo pair + warps) or ``files`` (``image0``, ``image1``, optional
    ground-truth ``truth_flow``). ``stereo_downscale`` averages the 500×741 stereo pair over k×k
    blocks (0 leaves the stereo pair out). ``warp_sources`` × ``warp_fields`` are the warped
    pairs (``warp_size`` px square, largest displacement about ``warp_magnitude`` px).
    ``reynolds_base``, ``floor`` and ``screening_length`` (None: unscreened) configure the
    Reynolds flow.
    """

    data: Literal["bundled", "files"] = "bundled"
    image0: str | None = None
    image1: str | None = None
    truth_flow: str | None = None
    methods: tuple[str, ...] = METHODS
    stereo_downscale: int = 2
    warp_sources: tuple[str, ...] = ("camera", "astronaut")
    warp_fields: tuple[str, ...] = FIELDS
    warp_size: int = 160
    warp_magnitude: float = 6.0
    reynolds_base: Literal["ilk", "tvl1", "farneback"] = "ilk"
    floor: float = 0.05
    screening_length: float | None = 8.0
    outlier_px: float = 3.0
    outlier_rel: float = 0.05
    figures: bool = True

    def __post_init__(self) -> None:
        if not self.methods:
            raise ConfigError(f"methods is empty; choose from: {', '.join(METHODS)}")
        for name in self.methods:
            if name not in METHODS:
                raise ConfigError(
                    f"unknown method {name!r}; expected some of: {', '.join(METHODS)}"
                )
        for name in self.warp_sources:
            if name not in SOURCE_IMAGES:
                raise ConfigError(
                    f"unknown warp source {name!r}; expected some of: {', '.join(SOURCE_IMAGES)}"
                )
        for name in self.warp_fields:
            if name not in FIELDS:
                raise ConfigError(
                    f"unknown warp field {name!r}; expected some of: {', '.join(FIELDS)}"
                )
        if self.data == "files" and not (self.image0 and self.image1):
            raise ConfigError("data='files' needs both image0 and image1 (paths to two images)")
        if self.data == "bundled" and (self.image0 or self.image1 or self.truth_flow):
            raise ConfigError("image0, image1 and truth_flow are read only with data='files'")
        if self.stereo_downscale < 0:
            raise ConfigError(
                f"stereo_downscale must be >= 0 (0: no stereo pair), got {self.stereo_downscale}"
            )
        if (
            self.data == "bundled"
            and self.stereo_downscale == 0
            and not (self.warp_sources and self.warp_fields)
        ):
            raise ConfigError("no pair selected: set stereo_downscale >= 1 or some warps")
        if self.warp_size < 32:
            raise ConfigError(f"warp_size must be >= 32, got {self.warp_size}")
        if not self.warp_magnitude > 0:
            raise ConfigError(f"warp_magnitude must be > 0, got {self.warp_magnitude}")
        if not 0 < self.floor <= 1:
            raise ConfigError(f"floor must be in (0, 1], got {self.floor}")
        if self.screening_length is not None and not self.screening_length > 0:
            raise ConfigError(f"screening_length must be > 0 or None, got {self.screening_length}")
        if self.outlier_px < 0 or self.outlier_rel < 0:
            raise ConfigError("outlier_px and outlier_rel must be >= 0")


class OpticalFlowTask:
    """Estimate, score and draw optical flow on pairs with known flow; see the module doc."""

    Config: ClassVar[type[OpticalFlowConfig]] = OpticalFlowConfig

    def run(self, config: OpticalFlowConfig, ctx: RunContext) -> dict[str, float]:
        methods = list(config.methods)
        needs_cv2 = "farneback" in methods or (
            "reynolds" in methods and config.reynolds_base == "farneback"
        )
        if needs_cv2 and not has_opencv():
            if config.reynolds_base == "farneback" and "reynolds" in methods:
                raise ConfigError(
                    "reynolds_base='farneback' needs OpenCV (pip install flow-sceneflow[opencv])"
                )
            methods.remove("farneback")
            ctx.report.add_text(
                "Farneback was skipped: OpenCV is not installed"
                " (`pip install flow-sceneflow[opencv]`)."
            )
        pairs = self._pairs(config, ctx.seed)
        metrics: dict[str, float] = {}
        rows: list[dict[str, Any]] = []
        bar = ctx.progress(len(pairs) * len(methods), "optical flow")
        for pair in pairs:
            flows: dict[str, NDArray[np.float64]] = {}
            extra: dict[str, NDArray[np.uint8] | NDArray[np.float64]] = {}
            seconds: dict[str, float] = {}
            for method in methods:
                started = time.perf_counter()
                if method == "reynolds":
                    result = reynolds_flow(
                        pair.image0,
                        pair.image1,
                        base=config.reynolds_base,
                        floor=config.floor,
                        screening_length=config.screening_length,
                    )
                    flows[method] = result.flow
                    extra["ReynoldsFlow+ RGB (|v_o|, |v_r|, f)"] = reynoldsflow_plus(
                        result.conventional, result.reynolds, pair.image0
                    )
                    extra["|v_r| (Reynolds part)"] = np.linalg.norm(result.reynolds, axis=2)
                else:
                    flows[method] = estimate_flow(method, pair.image0, pair.image1)
                seconds[method] = time.perf_counter() - started
                bar.update(1)
            rows += self._score(config, pair, flows, seconds, metrics)
            if config.figures and ctx.is_main:
                from flow_sceneflow.figures import plot_pair

                path = ctx.report.add_figure(
                    f"flow-{pair.name.replace('/', '-')}.png", f"{pair.description}"
                )
                plot_pair(path, pair, flows, extra)
        bar.close()
        scored = [p for p in pairs if p.truth is not None]
        for method in methods:
            if scored:
                for key in ("epe", "outliers"):
                    values = [metrics[f"{p.name}.{method}.{key}"] for p in scored]
                    metrics[f"mean.{method}.{key}"] = float(np.mean(values))
        ctx.report.add_text(
            "Pairs: " + "; ".join(f"**{p.name}**: {p.description}" for p in pairs) + "."
        )
        ctx.report.add_table("Flow error per pair (EPE in px; time on this machine)", rows)
        return metrics

    @staticmethod
    def _pairs(config: OpticalFlowConfig, seed: int) -> list[OpticalPair]:
        if config.data == "files":
            assert config.image0 and config.image1  # checked in the config
            return [load_pair(config.image0, config.image1, config.truth_flow)]
        pairs = [stereo_pair(config.stereo_downscale)] if config.stereo_downscale else []
        pairs += [
            warp_pair(source, field, config.warp_size, config.warp_magnitude, seed)
            for source in config.warp_sources
            for field in config.warp_fields
        ]
        return pairs

    @staticmethod
    def _score(
        config: OpticalFlowConfig,
        pair: OpticalPair,
        flows: dict[str, NDArray[np.float64]],
        seconds: dict[str, float],
        metrics: dict[str, float],
    ) -> list[dict[str, Any]]:
        rows = []
        for method, flow in flows.items():
            photometric = float(np.mean(np.abs(warp_image(pair.image1, flow) - pair.image0)))
            metrics[f"{pair.name}.{method}.photometric"] = photometric
            row: dict[str, Any] = {"pair": pair.name, "method": method}
            if pair.truth is not None:
                scores = flow_metrics(flow, pair.truth, config.outlier_px, config.outlier_rel)
                metrics[f"{pair.name}.{method}.epe"] = scores["epe"]
                metrics[f"{pair.name}.{method}.outliers"] = scores["outliers"]
                row |= {"EPE": scores["epe"], "outliers": scores["outliers"]}
            row |= {"photometric": photometric, "time s": seconds[method]}
            rows.append(row)
        return rows
