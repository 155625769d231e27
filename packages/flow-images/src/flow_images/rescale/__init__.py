"""Invertible image rescaling: IRN (Xiao et al. 2020, arXiv 2005.05650) with the dual-latent
variant (Zhang et al. 2022, "Enhancing image rescaling using dual latent variables in
invertible neural network").

:mod:`~flow_images.rescale.haar` is the Haar wavelet split, :mod:`~flow_images.rescale.model`
the invertible network x ↦ (y, z), :mod:`~flow_images.rescale.objective` its joint
downscaling/upscaling loss.
"""

from flow_images.rescale.haar import haar_merge, haar_split
from flow_images.rescale.model import InvertibleRescaler
from flow_images.rescale.objective import RescaleObjective, bicubic_down, bicubic_up, quantize

__all__ = [
    "InvertibleRescaler",
    "RescaleObjective",
    "bicubic_down",
    "bicubic_up",
    "haar_merge",
    "haar_split",
    "quantize",
]
