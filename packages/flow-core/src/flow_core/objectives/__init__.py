"""Training objectives: ``loss, metrics = objective(model, batch)``.

See :mod:`flow_core.objectives.cfm` for conditional flow matching (Lipman et al. 2023).
"""

from flow_core.objectives.cfm import ConditionalFlowMatching

__all__ = ["ConditionalFlowMatching"]
