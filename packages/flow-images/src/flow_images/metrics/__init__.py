"""Image metrics: Fréchet distance, precision/recall in feature space, PSNR/SSIM, an evaluator."""

from flow_images.metrics.evaluator import ImageEvaluator
from flow_images.metrics.frechet import frechet_distance
from flow_images.metrics.precision_recall import precision_recall
from flow_images.metrics.reference import psnr, ssim

__all__ = ["ImageEvaluator", "frechet_distance", "precision_recall", "psnr", "ssim"]
