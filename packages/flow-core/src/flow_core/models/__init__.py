"""Flow networks for the domain-agnostic core.

See :mod:`flow_core.models.mlp` for the MLP velocity field v(x, t, c).
"""

from flow_core.models.mlp import MLPVelocity

__all__ = ["MLPVelocity"]
