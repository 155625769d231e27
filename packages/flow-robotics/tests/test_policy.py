"""Policy networks: shapes, norms, action bounds, and the behaviour-cloning objective."""

import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_core.samplers import Euler, EulerMaruyama, FewStepAverageVelocity
from flow_robotics.bc.objective import BehaviourCloning
from flow_robotics.networks.policy import PolicyAverageVelocity, PolicyVelocity
from flow_robotics.rollout import ChunkedPolicy

SIZES = {"obs_dim": 5, "action_dim": 3, "history": 2, "chunk": 4, "hidden": 16, "embedding": 8}


def test_output_shapes_of_both_fields():
    x, cond, t = torch.randn(7, 12), torch.randn(7, 10), torch.rand(7)
    assert PolicyVelocity(**SIZES)(x, t, cond).shape == (7, 12)
    assert PolicyAverageVelocity(**SIZES)(x, t * 0.5, t, cond).shape == (7, 12)
    layers = PolicyVelocity(**SIZES).encoder.layers(cond)
    assert [tuple(v.shape) for v in layers.values()] == [(7, 16), (7, 16), (7, 8)]


def test_bad_inputs_and_sizes_are_refused():
    model = PolicyVelocity(**SIZES)
    with pytest.raises(FlowError, match="observation history"):
        model(torch.randn(2, 12), torch.rand(2))
    with pytest.raises(FlowError, match="12 numbers per sample"):
        model(torch.randn(2, 10), torch.rand(2), torch.randn(2, 10))
    with pytest.raises(ConfigError, match="chunk must be >= 1"):
        PolicyVelocity(chunk=0)
    with pytest.raises(FlowError, match="unknown norm 'no-such-norm'"):
        PolicyVelocity(norm="no-such-norm")


def test_statistics_are_buffers_saved_with_the_weights():
    model = PolicyVelocity(**SIZES)
    model.encoder.set_statistics(torch.full((10,), 2.0), torch.zeros(10))
    state = model.state_dict()
    assert torch.equal(state["encoder.mean"], torch.full((10,), 2.0))
    assert torch.equal(state["encoder.std"], torch.full((10,), 1e-3))  # floored


class _Wild(torch.nn.Module):
    """A field whose output is far outside the action bounds."""

    model_kind = "average-velocity"

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(50.0))

    def forward(self, x, r, t, cond):
        return self.scale * torch.ones_like(x) * torch.sign(cond[:, :1] + 0.5)


@pytest.mark.parametrize("steps", [1, 3])
def test_chunked_policy_returns_bounded_actions_one_chunk_per_call(steps):
    sampler = FewStepAverageVelocity(steps=steps)
    policy = ChunkedPolicy(_Wild(), sampler, history=2, chunk=4, action_dim=3)
    actions = [policy(torch.randn(5).numpy()) for _ in range(8)]
    assert all(a.shape == (3,) and abs(a).max() <= 1.0 for a in actions)
    assert len(policy.seconds) == 2  # 8 actions, chunks of 4
    assert sampler.nfe == steps


def test_sde_sampler_drives_a_velocity_policy_within_bounds():
    model = PolicyVelocity(**SIZES)
    policy = ChunkedPolicy(model, EulerMaruyama(steps=10), history=2, chunk=4, action_dim=3)
    chunk = policy.act_chunk(torch.randn(6, 10))
    assert chunk.shape == (6, 4, 3) and chunk.abs().max() <= 1.0


def test_behaviour_cloning_fits_a_function_and_samples_it_in_one_step():
    torch.manual_seed(0)
    model = PolicyVelocity(obs_dim=2, action_dim=1, history=1, chunk=1, hidden=32, embedding=16)
    cond = torch.randn(256, 2)
    batch = {"x1": torch.tanh(cond[:, :1] - cond[:, 1:]), "cond": cond}
    objective = BehaviourCloning()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first, _ = objective(model, batch)
    for _ in range(200):
        loss, _ = objective(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < first.item() / 10
    policy = ChunkedPolicy(
        model, Euler(steps=1), history=1, chunk=1, action_dim=1, source_scale=objective.source_scale
    )
    sampled = policy.act_chunk(cond).reshape(-1, 1)
    assert (sampled - batch["x1"]).square().mean() < first.item() / 10
