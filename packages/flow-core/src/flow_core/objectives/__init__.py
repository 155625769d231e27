"""Training objectives: ``loss, metrics = objective(model, batch)``.

Velocity models: :class:`ConditionalFlowMatching` (I-CFM; OT-CFM and Sinkhorn couplings in
:mod:`~flow_core.objectives.couplings`), :class:`WeightedConditionalFlowMatching` (W-CFM),
:class:`RectifiedFlowPlusPlus` (a 2-RF++ reflow round; the reflow pipeline is in
:mod:`~flow_core.objectives.reflow`) and :class:`BossStraightening`. Average-velocity models:
:class:`MeanFlow` and :class:`SplitMeanFlow`. Invertible flows: :class:`MaximumLikelihood`.
Time densities are in :mod:`~flow_core.objectives.timesteps`, per-sample losses in
:mod:`~flow_core.objectives.losses`.
"""

from flow_core.objectives.boss import BossStraightening
from flow_core.objectives.cfm import (
    ConditionalFlowMatching,
    OTConditionalFlowMatching,
    SinkhornConditionalFlowMatching,
)
from flow_core.objectives.likelihood import MaximumLikelihood
from flow_core.objectives.meanflow import MeanFlow
from flow_core.objectives.reflow import RectifiedFlowPlusPlus
from flow_core.objectives.splitmeanflow import SplitMeanFlow
from flow_core.objectives.wcfm import WeightedConditionalFlowMatching

__all__ = [
    "BossStraightening",
    "ConditionalFlowMatching",
    "MaximumLikelihood",
    "MeanFlow",
    "OTConditionalFlowMatching",
    "RectifiedFlowPlusPlus",
    "SinkhornConditionalFlowMatching",
    "SplitMeanFlow",
    "WeightedConditionalFlowMatching",
]
