"""Our PTA likelihood as a ``bilby.Likelihood`` with bilby priors, for bilby's samplers.

bilby (Ashton et al. 2019, arXiv 1811.02042) runs nested samplers such as dynesty (Speagle
2020, arXiv 1904.02180) and nessai (Williams, Veitch & Messenger 2021, arXiv 2102.11056) on
any ``bilby.Likelihood``. Wrapping a :class:`~flow_physics.pta.variational.BoxPosterior` here
means those samplers and the flow route evaluate exactly the same ``ln L`` under the same
uniform priors, so their evidences and posteriors are directly comparable.

bilby is optional: install it with ``pip install -r tools/bench/physics.requirements.txt``
(see docs/packages/flow-physics.md); without it :func:`bilby_problem` raises a
:class:`~flow_core.errors.UsageError` naming that command.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from flow_core.errors import UsageError
from flow_physics.pta.variational import BoxPosterior

__all__ = ["INSTALL_HINT", "bilby_problem"]

INSTALL_HINT = "pip install -r tools/bench/physics.requirements.txt (bilby, dynesty, nessai)"


def _bilby() -> Any:
    try:
        return importlib.import_module("bilby")
    except ImportError:
        raise UsageError(f"bilby is not installed; run: {INSTALL_HINT}") from None


def bilby_problem(posterior: BoxPosterior) -> tuple[Any, Any]:
    """``(likelihood, priors)``: a ``bilby.Likelihood`` evaluating ``posterior``'s ``ln L``
    one parameter set at a time (float64), and a ``bilby.core.prior.PriorDict`` of the same
    uniform ranges."""
    bilby = _bilby()

    class BoxLikelihood(bilby.Likelihood):  # type: ignore[misc, name-defined]
        """``ln L`` of the wrapped posterior at ``self.parameters``."""

        def __init__(self) -> None:
            super().__init__(parameters={name: None for name in posterior.names})

        def log_likelihood(self) -> float:
            row = [float(self.parameters[name]) for name in posterior.names]
            theta = torch.tensor([row], dtype=torch.float64)
            with torch.no_grad():
                return float(posterior.log_likelihood(theta)[0])

    priors = bilby.core.prior.PriorDict(
        {
            name: bilby.core.prior.Uniform(float(low), float(high), name=name)
            for name, low, high in zip(
                posterior.names, posterior.low.tolist(), posterior.high.tolist(), strict=True
            )
        }
    )
    return BoxLikelihood(), priors
