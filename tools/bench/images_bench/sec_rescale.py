"""Invertible rescaling against bicubic, single against dual latent: ``images.rescale``.

2× and 4× on the 32×32 patches of scikit-image's photographs (test: the held-out
photographs' patches), each with IRN's single latent and with a dual latent (d = 3). PSNR and
SSIM of the upscaled image (z ~ N(0, I)) against the original, of the downscaled image against
the bicubic downscaled one, and of bicubic down-and-up.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from core_bench.common import fmt, table

from images_bench.runs import Job

__all__ = ["jobs", "section"]

VARIANTS = (("single", "0"), ("dual", "3"))
SCALES = (2, 4)
UP_GAIN = 2.0  # dB above bicubic down-and-up: "clearly above"
LR_CLOSE = 1.0  # dB: "comparable LR fidelity" of the dual and single latent


def _options(quick: bool) -> dict[str, str]:
    return (
        {"steps": "10", "eval_samples": "64"} if quick else {"steps": "250", "eval_samples": "128"}
    )


def jobs(quick: bool) -> list[Job]:
    """One run per scale and latent variant."""
    return [
        Job(
            f"rescale-x{s}-{name}",
            "images.rescale",
            {"scale": str(s), "dual_channels": d, **_options(quick)},
        )
        for s in SCALES
        for name, d in VARIANTS
    ]


def section(
    results: dict[str, dict[str, float]], runs: Path, figures: Path, quick: bool
) -> tuple[str, list[dict[str, str]]]:
    """The section's markdown and its verdicts."""
    options = " ".join(f"--set {k}={v}" for k, v in _options(quick).items())
    parts = [
        "## Invertible rescaling against bicubic (photo patches)",
        "",
        f"`flow run images.rescale --set scale=S --set dual_channels=D {options}` (4 coupling"
        " blocks per 2× module, batch 16). Data: 32×32 patches of scikit-image's photographs,"
        " tested on the patches of the two held-out photographs (a substitute for DIV2K/Set5:"
        " not comparable with the paper's numbers). PSNR/SSIM on RGB in [−1, 1], no border"
        " crop, no Y channel.",
        "",
    ]
    rows, verdicts = [], []
    for scale in SCALES:
        found = {}
        for name, _ in VARIANTS:
            m = results.get(f"rescale-x{scale}-{name}", {"failed": 1.0})
            if "failed" in m:
                rows.append(
                    {
                        "scale": f"{scale}x",
                        "latent": name,
                        "upscaled PSNR": "not completed in this run",
                    }
                )
                continue
            found[name] = m
            rows.append(
                {
                    "scale": f"{scale}x",
                    "latent": name,
                    "upscaled PSNR": m["psnr_up"],
                    "upscaled SSIM": m["ssim_up"],
                    "bicubic PSNR": m["psnr_up_bicubic"],
                    "bicubic SSIM": m["ssim_up_bicubic"],
                    "LR PSNR vs bicubic LR": m["psnr_lr"],
                    "LR SSIM": m["ssim_lr"],
                    "max |f⁻¹(f(x)) − x|": m["max_inverse_error"],
                }
            )
            source = runs / f"rescale-x{scale}-{name}" / "figures" / "rescaling.png"
            if source.exists():
                figures.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, figures / f"rescale_x{scale}_{name}.png")
        if "single" in found:
            m = found["single"]
            gain = m["psnr_up"] - m["psnr_up_bicubic"]
            verdicts.append(
                {
                    "claim": f"{scale}x: upscaled PSNR >= {UP_GAIN:g} dB above bicubic",
                    "measured": f"{fmt(m['psnr_up'])} vs {fmt(m['psnr_up_bicubic'])} dB"
                    f" ({gain:+.2f}); LR PSNR {fmt(m['psnr_lr'])} dB",
                    "verdict": "reproduced" if gain >= UP_GAIN else "not reproduced",
                }
            )
        if len(found) == 2:
            single, dual = found["single"], found["dual"]
            gain = dual["psnr_up"] - single["psnr_up"]
            lr_gap = abs(dual["psnr_lr"] - single["psnr_lr"])
            ok = gain > 0 and lr_gap <= LR_CLOSE
            verdicts.append(
                {
                    "claim": f"{scale}x: dual latent raises upscaled PSNR at comparable LR PSNR"
                    f" (within {LR_CLOSE:g} dB)",
                    "measured": f"upscaled {fmt(dual['psnr_up'])} vs {fmt(single['psnr_up'])} dB"
                    f" ({gain:+.2f}); LR {fmt(dual['psnr_lr'])} vs {fmt(single['psnr_lr'])} dB;"
                    f" LR spread over z_d {fmt(dual.get('lr_spread', float('nan')))}",
                    "verdict": "reproduced" if ok else "not reproduced",
                }
            )
    parts += [table(rows), ""]
    for scale in SCALES:
        for name, _ in VARIANTS:
            if (figures / f"rescale_x{scale}_{name}.png").exists():
                parts += [
                    f"{scale}x, {name} latent — rows: original, bicubic LR, our LR (enlarged),"
                    " bicubic up, our upscaled:",
                    "",
                    f"![{scale}x {name}]({figures.name}/rescale_x{scale}_{name}.png)",
                    "",
                ]
    return "\n".join(parts), verdicts
