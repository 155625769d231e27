"""TARFlow: transformer autoregressive normalizing flows (Zhai et al. 2024, arXiv 2412.06329)."""

from flow_images.tarflow.guidance import Guidance, linear_rule
from flow_images.tarflow.model import AutoregressiveFlow, GuidedFlow, TARFlow

__all__ = ["AutoregressiveFlow", "Guidance", "GuidedFlow", "TARFlow", "linear_rule"]
