import pytest
import torch
from torch import nn

from flow_core.datasets.mixture import GaussianMixture, MixtureVelocity
from flow_core.errors import ConfigError, FlowError
from flow_core.paths.transform import to_vp
from flow_core.samplers import Euler
from flow_core.samplers.sde import EulerMaruyama
from flow_core.scaling import (
    DistanceReward,
    MixtureComponentReward,
    Reward,
    best_of_n,
    n_for_budget,
    particle_sampling,
    rollover_budget_forcing,
)
from flow_core.scaling.particles import resample_indices
from flow_core.scaling.reward import evaluate_reward

TARGET = 3


class CountingVelocity(nn.Module):
    """Counts network evaluations per sample: a call on a batch of B states costs B."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.nfe = 0
        self.conds = []
        self.times = []

    def forward(self, x, t, cond=None):
        self.nfe += x.shape[0]
        self.conds.append(cond)
        self.times.extend(t.tolist())
        return self.inner(x, t, cond)


def _rare_mode_problem():
    """Eight modes on a ring; the rewarded one carries 1/71 of the mass."""
    weights = torch.full((8,), 10.0)
    weights[TARGET] = 1.0
    mixture = GaussianMixture.ring(weights=weights)
    return (
        mixture,
        CountingVelocity(MixtureVelocity(mixture)),
        MixtureComponentReward(mixture, TARGET),
    )


def test_rewards_have_their_known_optimum():
    mixture = GaussianMixture.ring()
    reward = MixtureComponentReward(mixture, TARGET)
    assert isinstance(reward, Reward)
    at_modes = reward(mixture.means)
    assert at_modes[TARGET] > -1e-6 and (at_modes[torch.arange(8) != TARGET] < -20).all()
    assert (reward(torch.randn(50, 2)) <= 0).all()
    distance = DistanceReward(torch.tensor([1.0, -1.0]))
    torch.testing.assert_close(
        distance(torch.tensor([[1.0, -1.0], [0.0, 0.0]])), torch.tensor([0.0, -2.0])
    )
    with pytest.raises(ConfigError, match="component"):
        MixtureComponentReward(mixture, 8)


def test_evaluate_reward_checks_shape_and_finiteness():
    x = torch.zeros(4, 2)
    with pytest.raises(FlowError, match="shape"):
        evaluate_reward(lambda x, cond=None: x.sum(), x)
    with pytest.raises(FlowError, match="non-finite"):
        evaluate_reward(lambda x, cond=None: torch.full((4,), float("nan")), x)


def test_n_for_budget():
    assert n_for_budget(100, 10) == 10 and n_for_budget(109, 10) == 10
    with pytest.raises(ConfigError, match="budget"):
        n_for_budget(9, 10)


def test_best_of_n_keeps_the_best_and_counts_nfe():
    _, model, reward = _rare_mode_problem()
    x0 = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    result = best_of_n(model, reward, x0, Euler(steps=10))
    assert result.nfe == 16 * 10 == model.nfe
    assert result.sample.shape == (1, 2) and result.candidates.shape == (16, 2)
    assert result.reward == pytest.approx(float(result.candidate_rewards.max()))
    torch.testing.assert_close(reward(result.sample), torch.tensor([result.reward]))
    single = best_of_n(model, reward, x0[:1], Euler(steps=10))
    assert single.nfe == 10 and result.reward >= single.reward
    assert (result.candidate_rewards <= result.reward).all()


@pytest.mark.parametrize("vp", [False, True])
def test_particle_sampling_spends_exactly_k_times_n(vp):
    _, model, reward = _rare_mode_problem()
    gen = torch.Generator().manual_seed(0)
    result = particle_sampling(model, reward, 12, 9, (2,), vp=vp, generator=gen)
    assert result.nfe == 12 * 9 == model.nfe
    assert result.candidates.shape == (12, 2) and result.sample.shape == (1, 2)
    assert len(result.trace) == 9
    assert result.reward == pytest.approx(float(result.candidate_rewards.max()))


@pytest.mark.parametrize("vp", [False, True])
@pytest.mark.parametrize("budget, initial", [(40, 1), (57, 5), (14, 5)])
def test_rbf_spends_exactly_its_budget(vp, budget, initial):
    _, model, reward = _rare_mode_problem()
    gen = torch.Generator().manual_seed(0)
    result = rollover_budget_forcing(
        model, reward, budget, 10, (2,), initial_particles=initial, vp=vp, generator=gen
    )
    assert result.nfe == budget == model.nfe
    assert result.sample.shape == (1, 2) and len(result.trace) == 10
    torch.testing.assert_close(reward(result.sample), torch.tensor([result.reward]))


def test_rbf_rejects_a_budget_below_one_child_per_step():
    _, model, reward = _rare_mode_problem()
    with pytest.raises(ConfigError, match="budget 13 is below the minimum 14"):
        rollover_budget_forcing(model, reward, 13, 10, (2,), initial_particles=5)
    with pytest.raises(ConfigError, match="steps >= 2"):
        rollover_budget_forcing(model, reward, 13, 1, (2,))


def test_searches_are_reproducible_with_a_generator():
    _, model, reward = _rare_mode_problem()

    def run(search, seed):
        gen = torch.Generator().manual_seed(seed)
        if search == "rbf":
            return rollover_budget_forcing(model, reward, 30, 5, (2,), generator=gen).sample
        return particle_sampling(model, reward, 6, 5, (2,), generator=gen).sample

    for search in ("rbf", "particles"):
        assert torch.equal(run(search, 1), run(search, 1))
        assert not torch.equal(run(search, 1), run(search, 2))


def test_a_single_condition_is_expanded_to_every_batch():
    _, model, reward = _rare_mode_problem()
    cond = torch.tensor([7])
    gen = torch.Generator().manual_seed(0)
    rollover_budget_forcing(
        model, reward, 20, 4, (2,), initial_particles=3, cond=cond, generator=gen
    )
    particle_sampling(model, reward, 5, 4, (2,), cond=cond, generator=gen)
    best_of_n(model, reward, torch.randn(6, 2), Euler(steps=3), cond=cond)
    sizes = {tuple(c.shape) for c in model.conds}
    assert sizes == {(3,), (1,), (5,), (6,)} and all((c == 7).all() for c in model.conds)
    with pytest.raises(FlowError, match="leading dimension"):
        particle_sampling(model, reward, 5, 4, (2,), cond=torch.tensor([1, 2]))


def test_resampling_schemes():
    log_w = torch.tensor([0.5, 0.25, 0.25, 0.0]).log()
    systematic = resample_indices(log_w, "systematic", torch.Generator().manual_seed(0))
    assert torch.bincount(systematic, minlength=4).tolist() == [2, 1, 1, 0]
    # systematic: every count is floor(K·w) or ceil(K·w), and the counts are unbiased
    weights = torch.softmax(torch.randn(10, generator=torch.Generator().manual_seed(1)), 0)
    gen = torch.Generator().manual_seed(0)
    counts = torch.stack(
        [
            torch.bincount(resample_indices(weights.log(), "systematic", gen), minlength=10)
            for _ in range(2000)
        ]
    ).double()
    expected = 10 * weights.double()
    assert ((counts >= expected.floor()) & (counts <= expected.ceil())).all()
    torch.testing.assert_close(counts.mean(0), expected, atol=0.05, rtol=0)
    draws = torch.cat([resample_indices(log_w, "multinomial", gen) for _ in range(2000)])
    freq = torch.bincount(draws, minlength=4).float() / draws.numel()
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.25, 0.25, 0.0]), atol=0.02, rtol=0)
    with pytest.raises(ConfigError, match="systematic"):
        resample_indices(log_w, "stratified")


def test_particle_population_targets_the_tilted_distribution():
    """With r = log P(k* | x) and T = 1, p·exp(r) is the rewarded component itself, which holds
    1/71 of the mixture's mass."""
    mixture, model, reward = _rare_mode_problem()
    gen = torch.Generator().manual_seed(0)
    steered = particle_sampling(model, reward, 400, 20, (2,), temperature=1.0, generator=gen)
    assert (mixture.assign(steered.candidates) == TARGET).float().mean() > 0.9
    assert steered.diagnostics["mean_relative_ess"] < 0.9


def test_searches_beat_best_of_n_at_equal_nfe():
    """Kim et al. 2025 (arXiv 2503.19385): at one NFE budget, particle sampling and RBF beat
    best-of-N, which beats a single sample, on a reward whose optimum (the rare mode,
    reward ≈ 0) is known."""
    _, model, reward = _rare_mode_problem()
    steps, budget, seeds = 10, 100, 6
    n = n_for_budget(budget, steps)
    scores = {"single": [], "best-of-n": [], "particles": [], "rbf-vp": [], "rbf-linear": []}
    for seed in range(seeds):
        gen = torch.Generator().manual_seed(seed)
        x0 = torch.randn(n, 2, generator=gen)
        scores["single"].append(best_of_n(model, reward, x0[:1], Euler(steps)).reward)
        scores["best-of-n"].append(best_of_n(model, reward, x0, Euler(steps)).reward)
        scores["particles"].append(
            particle_sampling(model, reward, n, steps, (2,), generator=gen).reward
        )
        for vp in (True, False):
            result = rollover_budget_forcing(
                model, reward, budget, steps, (2,), vp=vp, generator=gen
            )
            assert result.nfe == budget
            scores["rbf-vp" if vp else "rbf-linear"].append(result.reward)
    mean = {name: sum(values) / seeds for name, values in scores.items()}
    assert mean["best-of-n"] >= mean["single"]
    for search in ("particles", "rbf-vp", "rbf-linear"):
        assert mean[search] > mean["best-of-n"] + 1.0, mean
        assert mean[search] > -0.1, mean  # every run found the rewarded mode


@pytest.mark.parametrize("vp", [False, True])
def test_one_particle_is_the_sde_sampler(vp):
    """Particle sampling with one particle is the SDE sampler itself (same noise), on the
    linear path or on the VP path of the converted model."""
    _, model, reward = _rare_mode_problem()
    result = particle_sampling(
        model, reward, 1, 8, (2,), vp=vp, generator=torch.Generator().manual_seed(3)
    )
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn(1, 2, generator=gen)
    sde = EulerMaruyama(steps=8, path="cosine" if vp else "linear")
    expected = sde.sample(to_vp(model) if vp else model, x0, generator=gen)
    torch.testing.assert_close(result.sample, expected)


def test_particle_sampling_matches_the_closed_form_tilt_of_a_gaussian():
    """For p = N(m, s²I) and r = −‖x − c‖², p·exp(r/T) is N(μ, τ²I) with 1/τ² = 1/s² + 2/T and
    μ = τ²·(m/s² + 2c/T). Weighting by the increments r_k − r_{k−1} telescopes to this target;
    weighting every step by exp(r_k/T) would tilt far harder."""
    m, s, c, temperature = torch.tensor([1.0, 0.0]), 0.5, torch.tensor([-1.0, 0.0]), 1.0
    gaussian = GaussianMixture(m[None], s)
    precision = 1 / s**2 + 2 / temperature
    mu = (m / s**2 + 2 * c / temperature) / precision
    result = particle_sampling(
        MixtureVelocity(gaussian),
        DistanceReward(c),
        4000,
        25,
        (2,),
        temperature=temperature,
        generator=torch.Generator().manual_seed(0),
    )
    x = result.candidates
    torch.testing.assert_close(x.mean(0), mu, atol=0.04, rtol=0)
    assert x.var(0).mean().item() == pytest.approx(1 / precision, rel=0.15)


class ImprovingRewards:
    """Rewards 1, 2, 3, … for the first ``improving`` calls, then 0 (never a new best)."""

    def __init__(self, improving):
        self.improving = improving
        self.calls = 0

    def __call__(self, x, cond=None):
        self.calls += 1
        value = float(self.calls) if self.calls <= self.improving else 0.0
        return torch.full((x.shape[0],), value)


@pytest.mark.parametrize(
    "improving, per_step",
    [(10**9, [3, 1, 1, 1, 19]), (0, [3, 5, 5, 5, 7]), (2, [3, 1, 9, 5, 7])],
)
def test_rbf_rolls_unused_budget_forward(improving, per_step):
    """Budget 25 = 3 initial + 4 stochastic steps × a share of 5 + a remainder of 2.

    A child that beats the best so far is taken at once and the rest of the step's share rolls
    over to the next step; a step without one spends its whole allowance; the last stochastic
    step spends everything left. Counted as evaluations at each grid time t_k = k/5.
    """
    model = CountingVelocity(MixtureVelocity(GaussianMixture.ring()))
    reward = ImprovingRewards(improving)
    result = rollover_budget_forcing(
        model, reward, 25, 5, (2,), initial_particles=3, vp=False, generator=torch.Generator()
    )
    counts = [sum(1 for t in model.times if t == pytest.approx(k / 5)) for k in range(5)]
    assert counts == per_step and result.nfe == 25
    assert result.diagnostics["rollovers"] == sum(1 for c in per_step[1:-1] if c == 1)


@pytest.mark.parametrize("vp", [False, True])
def test_with_the_reward_off_the_searches_sample_the_mixture(vp):
    """With the reward off the searches reduce to the SDE, whose marginals test_sde checks.

    A constant reward never beats the best so far, so RBF with one initial particle and one
    child per step is exactly one Euler–Maruyama trajectory (on the VP path through the
    converted model when vp=True); particle sampling with T → ∞ never reweights, so its
    particles follow the mixture."""
    mixture = GaussianMixture.ring(weights=torch.tensor([1.0, 2.0, 3.0, 4.0] * 2))
    model = MixtureVelocity(mixture)

    def constant(x, cond=None):
        return torch.zeros(x.shape[0])

    rbf = rollover_budget_forcing(
        model, constant, 12, 12, (2,), vp=vp, generator=torch.Generator().manual_seed(4)
    )
    gen = torch.Generator().manual_seed(4)
    x0 = torch.randn(1, 2, generator=gen)
    sde = EulerMaruyama(steps=12, path="cosine" if vp else "linear")
    expected = sde.sample(to_vp(model) if vp else model, x0, generator=gen)
    torch.testing.assert_close(rbf.sample, expected)

    off = particle_sampling(
        model,
        DistanceReward(torch.zeros(2)),
        1000,
        20,
        (2,),
        vp=vp,
        temperature=1e9,
        generator=torch.Generator().manual_seed(0),
    )
    assert off.diagnostics["mean_relative_ess"] > 0.999
    particles = off.candidates
    freq = torch.bincount(mixture.assign(particles), minlength=8).float() / 1000
    sd = (mixture.weights * (1 - mixture.weights) / 1000).sqrt()
    assert ((freq - mixture.weights).abs() < 4 * sd).all(), freq
    nearest = torch.cdist(particles, mixture.means).min(dim=1).values.pow(2).mean()
    assert nearest.item() == pytest.approx(2 * 0.2**2, rel=0.25)
