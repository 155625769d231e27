"""What the Fréchet distance of flow-images can tell apart: floors, their set-size bias, and
how far noise and blur move it.

For each shipped feature network, FD against the held-out split of: training images (the
floor) at the test split's size and at the tasks' 1,000 samples, three subset seeds each;
and the 1,000-image training subset (seed 0) with Gaussian noise or a 3×3 box blur. For the
patches, the same again against unseen regions of the training photographs, where the
content gap between photographs does not dominate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from core_bench.common import fmt, table
from torch import Tensor

from flow_images.data import load_dataset
from flow_images.data.patches import held_out_regions
from flow_images.features import load_feature_net
from flow_images.metrics import ImageEvaluator

__all__ = ["metric_section"]

SAMPLES = 1000  # the tasks' default eval_samples
SEEDS = (0, 1, 2)


def _subset(images: Tensor, size: int, seed: int) -> Tensor:
    return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:size]]


def _blur(images: Tensor) -> Tensor:
    return F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def _row(name: str, net: str, train: Tensor, reference: Tensor) -> dict[str, str]:
    evaluator = ImageEvaluator(load_feature_net(net), reference)
    n = min(SAMPLES, len(train))  # every training set here has more

    def fd(images: Tensor) -> float:
        return evaluator.evaluate(images)["fd"]

    small = [fd(_subset(train, len(reference), s)) for s in SEEDS]
    large = [fd(_subset(train, n, s)) for s in SEEDS]
    base = _subset(train, n, 0)
    noise = torch.randn(base.shape, generator=torch.Generator().manual_seed(7))
    return {
        "data (reference)": name,
        "reference images": f"{len(reference)}",
        "train images": f"{len(train)}",
        "floor, as many images as the reference (3 seeds)": ", ".join(fmt(v) for v in small),
        f"floor, {SAMPLES} images (3 seeds)": ", ".join(fmt(v) for v in large),
        "noise σ = 0.2": fmt(fd((base + 0.2 * noise).clamp(-1, 1))),
        "noise σ = 0.4": fmt(fd((base + 0.4 * noise).clamp(-1, 1))),
        "3×3 blur": fmt(fd(_blur(base))),
    }


def metric_section() -> str:
    digits_train, digits_test = load_dataset("digits", "train"), load_dataset("digits", "test")
    patches_train, patches_test = load_dataset("patches", "train"), load_dataset("patches", "test")
    x_fit, _, x_out, _ = held_out_regions()
    rows = [
        _row("digits (360 test digits)", "digits", digits_train.images, digits_test.images),
        _row("patches (2 test photographs)", "patches", patches_train.images, patches_test.images),
        _row("patches (unseen regions of training photographs)", "patches", x_fit, x_out),
    ]
    return "\n".join(
        [
            "## The metric: floors and what moves them",
            "",
            "FD of *training* images against the held-out reference (the floor: a model that "
            "reproduced the training set), and of a 1,000-image training subset with Gaussian "
            "noise (clamped to [−1, 1]) or a 3×3 box blur. FD is biased upward for small sets: "
            "the floor over the test split's size varies a lot with the subset and lies well "
            f"above the floor over {SAMPLES} images, which is why the tasks measure `fd_floor` "
            "with as many training images as they draw samples. The patch FD against the two "
            "test photographs is dominated by the content gap between photographs (blur barely "
            "moves it); against unseen regions of the training photographs it detects noise and "
            "blur.",
            "",
            table(rows),
            "",
        ]
    )
