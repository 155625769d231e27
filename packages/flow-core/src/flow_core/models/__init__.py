"""Flow networks for the domain-agnostic core.

:mod:`flow_core.models.time_embedding` holds the sinusoidal time features that every network
of core and the plugins uses; :mod:`flow_core.models.mlp` the MLP velocity field v(x, t, c)
and average velocity u(x, r, t, c); :mod:`flow_core.models.coupling` a RealNVP-style
invertible flow; :func:`class_labels` checks the class labels (with the null label of
classifier-free guidance) of any conditional network, so that plugins' networks accept and
refuse the same inputs.
"""

from flow_core.models.coupling import AffineCouplingFlow
from flow_core.models.labels import class_labels
from flow_core.models.mlp import MLPAverageVelocity, MLPVelocity
from flow_core.models.time_embedding import (
    AVERAGE_MAX_FREQUENCY,
    MAX_FREQUENCY,
    SinusoidalTimeEmbedding,
)

__all__ = [
    "AVERAGE_MAX_FREQUENCY",
    "MAX_FREQUENCY",
    "AffineCouplingFlow",
    "MLPAverageVelocity",
    "MLPVelocity",
    "SinusoidalTimeEmbedding",
    "class_labels",
]
