"""Neural operators for one-step turbulence prediction: ``net(u) -> u_next`` on fields
``[batch, channels, *grid]`` with 2 or 3 periodic spatial axes.

Each network is one module; :data:`NETWORKS` names them for the task's ``model`` field.
"""

from __future__ import annotations

from flow_physics.turbulence.networks.factformer import IFactFormer
from flow_physics.turbulence.networks.fno import FNO, IFNO
from flow_physics.turbulence.networks.neuralop_fno import NeuralopFNO

__all__ = ["FNO", "IFNO", "NETWORKS", "IFactFormer", "NeuralopFNO"]

NETWORKS = {
    "ifactformer-m": (IFactFormer, {"mode": "parallel"}),
    "ifactformer-o": (IFactFormer, {"mode": "chained"}),
    "fno": (FNO, {}),
    "ifno": (IFNO, {}),
    "neuralop-fno": (NeuralopFNO, {}),
}
"""Model name -> (class, fixed keyword arguments)."""
