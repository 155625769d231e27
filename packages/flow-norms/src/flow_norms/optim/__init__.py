"""AdamP and SGDP: momentum optimizers that project out the radial update of scale-invariant
weights (Heo et al., ICLR 2021), vectorised with ``torch._foreach_*``."""

from flow_norms.optim.adamp import AdamP
from flow_norms.optim.sgdp import SGDP

__all__ = ["SGDP", "AdamP"]
