"""Flow networks for the domain-agnostic core.

:mod:`flow_core.models.mlp` holds the MLP velocity field v(x, t, c) and average velocity
u(x, r, t, c); :mod:`flow_core.models.coupling` a RealNVP-style invertible flow;
:func:`class_labels` checks the class labels (with the null label of classifier-free guidance)
of any conditional network, so that plugins' networks accept and refuse the same inputs.
"""

from flow_core.models.coupling import AffineCouplingFlow
from flow_core.models.labels import class_labels
from flow_core.models.mlp import MLPAverageVelocity, MLPVelocity

__all__ = ["AffineCouplingFlow", "MLPAverageVelocity", "MLPVelocity", "class_labels"]
