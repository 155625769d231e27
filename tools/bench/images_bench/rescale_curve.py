"""Learning curve of invertible rescaling (IRN, Xiao et al. 2020, arXiv 2005.05650) on the
held-out photo patches, to see why the upscaled image trails bicubic.

``python tools/bench/images_bench/rescale_curve.py steps=2000 every=250 clamp=2`` trains
:class:`~flow_images.rescale.InvertibleRescaler` with :class:`~flow_images.rescale.RescaleObjective`
(Adam, gradient clipping at 10, batch 16, seed 0: the task's defaults unless a ``key=value``
changes them: ``steps``, ``every``, ``lr``, ``bs``, ``lw``/``hw``/``zw`` (loss weights),
``scale``, ``blocks``, ``clamp``, ``dual``) and prints one markdown row per ``every`` steps,
measured on the first 128 test patches: PSNR (dB, RGB in [−1, 1]) of the upscaled image
f⁻¹(Q(y), z) with z ~ N(0, I) (what the task reports), with z = 0 and with the true z, the
standard deviation of the true z, the LR PSNR against the 8-bit bicubic LR, and bicubic
down-and-up.
"""

from __future__ import annotations

import sys
import time

import torch

from flow_images.data import load_dataset
from flow_images.metrics import psnr
from flow_images.rescale import InvertibleRescaler, RescaleObjective, quantize
from flow_images.tasks.rescale import bicubic_baseline

DEFAULTS = {
    "steps": "250",
    "every": "50",
    "lr": "5e-4",
    "bs": "16",
    "lw": "16",
    "hw": "1",
    "zw": "1",
    "scale": "2",
    "blocks": "4",
    "clamp": "1",
    "dual": "0",
}


@torch.no_grad()
def measure(model: InvertibleRescaler, images: torch.Tensor) -> dict[str, float]:
    """The row's held-out numbers (see the module docstring)."""
    model.eval()
    generator = torch.Generator().manual_seed(5)
    y, z = model(images, model.sample_dual(images, generator))
    lr = quantize(y).clamp(-1, 1)
    reference_lr, bicubic = bicubic_baseline(images, model.scale)
    row = {}
    for name, latent in (
        ("z ~ N(0, I)", model.sample_latent(lr, generator)),
        ("z = 0", torch.zeros_like(z)),
        ("true z", z),
    ):
        upscaled, _ = model.inverse(lr, latent)
        row[name] = psnr(upscaled.clamp(-1, 1), images)
    row["std of true z"] = float(z.std())
    row["LR PSNR"] = psnr(lr, reference_lr)
    row["bicubic"] = psnr(bicubic, images)
    model.train()
    return row


def main(argv: list[str]) -> None:
    unknown = [a for a in argv if a.split("=")[0] not in DEFAULTS or "=" not in a]
    if unknown:
        raise SystemExit(f"unknown arguments {unknown}; accepted: {', '.join(DEFAULTS)}")
    o = DEFAULTS | dict(a.split("=", 1) for a in argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train_images = load_dataset("patches", "train").images
    test_images = load_dataset("patches", "test").images[:128]
    model = InvertibleRescaler(
        3, int(o["scale"]), int(o["blocks"]), 32, float(o["clamp"]), int(o["dual"])
    )
    objective = RescaleObjective(float(o["lw"]), float(o["hw"]), float(o["zw"]))
    optimizer = torch.optim.Adam(model.parameters(), lr=float(o["lr"]))
    generator = torch.Generator().manual_seed(1)
    print(" ".join(f"{k}={v}" for k, v in o.items()))
    started = time.perf_counter()
    row = measure(model, test_images)
    print("| step | seconds | " + " | ".join(row) + " |")
    print("|---" * (len(row) + 2) + "|")

    def show(step: int, row: dict[str, float]) -> None:
        seconds = time.perf_counter() - started
        values = " | ".join(f"{v:.3f}" if "std" in k else f"{v:.2f}" for k, v in row.items())
        print(f"| {step} | {seconds:.0f} | {values} |", flush=True)

    show(0, row)
    for step in range(1, int(o["steps"]) + 1):
        index = torch.randint(0, len(train_images), (int(o["bs"]),), generator=generator)
        loss, _ = objective(model, {"x1": train_images[index]})
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        if step % int(o["every"]) == 0:
            show(step, measure(model, test_images))


if __name__ == "__main__":
    main(sys.argv[1:])
