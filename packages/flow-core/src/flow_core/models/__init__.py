"""Flow networks for the domain-agnostic core.

:mod:`flow_core.models.mlp` holds the MLP velocity field v(x, t, c) and average velocity
u(x, r, t, c); :mod:`flow_core.models.coupling` a RealNVP-style invertible flow.
"""

from flow_core.models.coupling import AffineCouplingFlow
from flow_core.models.mlp import MLPAverageVelocity, MLPVelocity

__all__ = ["AffineCouplingFlow", "MLPAverageVelocity", "MLPVelocity"]
