"""Training objectives: ``loss, metrics = objective(model, batch)``.

Velocity models: :class:`ConditionalFlowMatching` (I-CFM; OT-CFM and Sinkhorn couplings in
:mod:`~flow_core.objectives.couplings`), :class:`WeightedConditionalFlowMatching` (W-CFM),
:class:`RectifiedFlowPlusPlus` (a 2-RF++ reflow round; the reflow pipeline is in
:mod:`~flow_core.objectives.reflow`) and :class:`BossStraightening`. Average-velocity models:
:class:`MeanFlow` and :class:`SplitMeanFlow`. Invertible flows: :class:`MaximumLikelihood`.
Time densities are in :mod:`~flow_core.objectives.timesteps`, per-sample losses in
:mod:`~flow_core.objectives.losses`.

For plugins writing their own objectives, the helpers the built-in ones read batches and drop
conditions with (:func:`source_and_data`, :func:`drop_condition`, :func:`check_probability`)
and the reflow pair generator (:func:`generate_pairs`) are public here too, as is the
standard normal log-density of a latent (:func:`gaussian_log_density`) likelihood models need.
"""

from flow_core.objectives.boss import BossStraightening
from flow_core.objectives.cfm import (
    ConditionalFlowMatching,
    OTConditionalFlowMatching,
    SinkhornConditionalFlowMatching,
)
from flow_core.objectives.common import check_probability, drop_condition, source_and_data
from flow_core.objectives.likelihood import MaximumLikelihood, gaussian_log_density
from flow_core.objectives.meanflow import MeanFlow
from flow_core.objectives.reflow import RectifiedFlowPlusPlus, generate_pairs
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
    "check_probability",
    "drop_condition",
    "gaussian_log_density",
    "generate_pairs",
    "source_and_data",
]
