"""Sample-aware compilation of the FlowTurbo sampler (CPU inductor, needs a C++ compiler)."""

from __future__ import annotations

import pytest
import torch
import torch._inductor.config as inductor_config
from torch import nn
from torch._dynamo.utils import counters

from flow_core.errors import FlowError
from flow_images.flowturbo.model import FlowTurboModel, VelocityRefiner
from flow_images.flowturbo.sampler import FlowTurboSampler


class Tiny(nn.Module):
    """A one-layer velocity field: few kernels, so inductor compiles it in seconds."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(65, 64)

    def forward(self, x, t, cond=None):
        features = torch.cat([x.flatten(1), t[:, None]], dim=1)
        return torch.tanh(self.linear(features)).reshape(x.shape)


pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")


# Compile the kernels in this process: a pool of compile workers costs more than it saves on
# the few small kernels here.
@inductor_config.patch(compile_threads=1)
def test_compiled_sampler_equals_eager_and_is_cached():
    torch.manual_seed(0)
    refiner = VelocityRefiner(hidden=8, blocks=1)
    torch.nn.init.normal_(refiner.head[-1].weight, std=0.1)
    model = FlowTurboModel(Tiny(), refiner)
    x0 = torch.randn(4, 1, 8, 8)
    eager = FlowTurboSampler(1, 1, 1)
    compiled = FlowTurboSampler(1, 1, 1, compile=True)
    with torch.no_grad():
        expected = eager.sample(model, x0)
        first = compiled.sample(model, x0)
        graphs = counters["stats"]["unique_graphs"]
        second = compiled.sample(model, 2 * x0)
        expected_second = eager.sample(model, 2 * x0)
    assert counters["stats"]["unique_graphs"] == graphs  # same shapes and schedule: no retrace
    torch.testing.assert_close(first, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(second, expected_second, rtol=1e-5, atol=1e-5)
    assert (compiled.nfe, compiled.refiner_calls) == (eager.nfe, eager.refiner_calls) == (3, 1)
    assert not torch.allclose(first, eager.sample(FlowTurboModel(Tiny(), VelocityRefiner()), x0))


def test_compile_failure_raises_instead_of_running_eagerly():
    sampler = FlowTurboSampler(0, 1, 0, compile=True)
    broken = {"cpp.cxx": ("/nonexistent/c++",), "fx_graph_cache": False}
    with inductor_config.patch(broken), pytest.raises(FlowError, match="compile=False"):
        sampler.sample(Tiny(), torch.randn(3, 1, 8, 8))
