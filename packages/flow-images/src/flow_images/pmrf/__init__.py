"""PMRF, posterior-mean rectified flow (Ohayon et al., ICLR 2025, arXiv 2410.00418).

:mod:`~flow_images.pmrf.degradations` makes the observations (noise, holes, 2× blur-down),
:mod:`~flow_images.pmrf.restorer` the minimum-MSE restorer of stage 1 and its objective,
:mod:`~flow_images.pmrf.conditional` the observation-conditioned velocity field of the
posterior-sampling baseline, and :mod:`~flow_images.pmrf.stages` the data of each stage.
"""

from flow_images.pmrf.conditional import ObservationConditioned
from flow_images.pmrf.degradations import DEGRADATIONS, Degradation, read_mask
from flow_images.pmrf.restorer import ConvRestorer, RestorerMSE

__all__ = [
    "DEGRADATIONS",
    "ConvRestorer",
    "Degradation",
    "ObservationConditioned",
    "RestorerMSE",
    "read_mask",
]
