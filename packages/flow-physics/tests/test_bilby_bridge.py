import sys

import pytest
import torch

from flow_core.errors import UsageError
from flow_physics.pta.bilby_bridge import bilby_problem
from flow_physics.pta.variational import BoxPosterior


def test_missing_bilby_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "bilby", None)  # import bilby now raises ImportError
    posterior = BoxPosterior(lambda x: x[:, 0].to(torch.float64), ["a"], {"a": (0.0, 1.0)})
    with pytest.raises(UsageError, match="pip install -r tools/bench/physics.requirements.txt"):
        bilby_problem(posterior)
