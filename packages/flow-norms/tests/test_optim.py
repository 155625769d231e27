"""AdamP and SGDP: parity with the reference package ``adamp`` 0.3.0, projection, state."""

import io

import adamp
import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError
from flow_norms.optim import SGDP, AdamP
from flow_norms.optim._projection import project_scale_invariant


def _cnn():
    torch.manual_seed(0)
    # convolutions followed by BatchNorm are scale-invariant per channel: the projection fires
    return nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, bias=False),
        nn.BatchNorm2d(8),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 16),
        nn.LayerNorm(16),
        nn.Linear(16, 4),
    )


def _transformer():
    """A small pre-LN transformer: no weight feeds a norm directly, so the projection fires
    rarely and only in the layer view (the CNN covers the channel view)."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 2, 64, dropout=0.0, batch_first=True, norm_first=True)
    return nn.Sequential(
        nn.Embedding(50, 32),
        nn.TransformerEncoder(layer, 2, enable_nested_tensor=False),
        nn.Linear(32, 50),
    )


def _cnn_batch(g):
    return torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 4, (16,), generator=g)


def _transformer_batch(g):
    tokens = torch.randint(0, 50, (4, 12), generator=g)
    return tokens, tokens.roll(1, dims=1)


MODELS = {"cnn": (_cnn, _cnn_batch), "transformer": (_transformer, _transformer_batch)}
_model = _cnn


def _train_pair(make_ours, make_ref, steps=100, model="cnn"):
    """Train two copies on identical gradients; return their parameters."""
    make_model, make_batch = MODELS[model]
    a, b = make_model(), make_model()
    ours, ref = make_ours(a.parameters()), make_ref(b.parameters())
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = make_batch(g)
        ref.zero_grad()
        out = b(x)
        nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)).backward()
        for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
            pa.grad = pb.grad.clone()
        ours.step()
        ref.step()
    return list(a.parameters()), list(b.parameters())


def test_the_parity_model_has_scale_invariant_weights():
    """So that the parity tests below exercise the projection, not only the Adam part."""
    from flow_norms.optim._projection import scale_invariant_views

    model = _model()
    nn.functional.cross_entropy(
        model(torch.randn(16, 3, 8, 8)), torch.randint(0, 4, (16,))
    ).backward()
    params = list(model.parameters())
    views, _ = scale_invariant_views(params, [p.grad for p in params], 0.1, 1e-8)
    assert views[0] == 1 and views[4] == 1  # both convolutions, per channel
    assert views[8] == 0  # the Linear before LayerNorm over features is not channel-invariant


ADAMP = {"lr": 1e-3, "weight_decay": 1e-2}
SGDP_ARGS = {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}


@pytest.mark.parametrize("nesterov", [False, True])
def test_adamp_reference_order_is_bit_identical_to_adamp(nesterov):
    ours, ref = _train_pair(
        lambda p: AdamP(p, reference_order=True, nesterov=nesterov, **ADAMP),
        lambda p: adamp.AdamP(p, nesterov=nesterov, **ADAMP),
    )
    assert all(torch.equal(a, b) for a, b in zip(ours, ref, strict=True))


def _worst(ours, ref):
    return max(float((a - b).detach().abs().max()) for a, b in zip(ours, ref, strict=True))


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgdp_reference_order_is_bit_identical_to_adamp_sgdp(nesterov):
    ours, ref = _train_pair(
        lambda p: SGDP(p, nesterov=nesterov, reference_order=True, **SGDP_ARGS),
        lambda p: adamp.SGDP(p, nesterov=nesterov, **SGDP_ARGS),
    )
    assert all(torch.equal(a, b) for a, b in zip(ours, ref, strict=True))


@pytest.mark.parametrize("model", ["cnn", "transformer"])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize(
    ("ours", "reference", "arguments"),
    [(AdamP, adamp.AdamP, ADAMP), (SGDP, adamp.SGDP, SGDP_ARGS)],
    ids=["adamp", "sgdp"],
)
def test_default_fused_step_matches_adamp_to_1e6(ours, reference, arguments, nesterov, model):
    mine, ref = _train_pair(
        lambda p: ours(p, nesterov=nesterov, **arguments),
        lambda p: reference(p, nesterov=nesterov, **arguments),
        model=model,
    )
    assert _worst(mine, ref) <= 1e-6


@pytest.mark.parametrize(
    ("make_ours", "make_ref"),
    [
        (lambda p: AdamP(p, **ADAMP), lambda p: adamp.AdamP(p, delta=0.0, **ADAMP)),
        (lambda p: SGDP(p, **SGDP_ARGS), lambda p: adamp.SGDP(p, delta=0.0, **SGDP_ARGS)),
    ],
)
def test_the_fused_parity_tests_can_fail(make_ours, make_ref):
    """Against the reference with its projection switched off (δ = 0: no weight passes the
    test) the fused step lands far outside the 1e-6 tolerance within 20 steps."""
    ours, ref = _train_pair(make_ours, make_ref, steps=20)
    assert _worst(ours, ref) > 1e-4


def test_projection_fires_for_scale_invariant_weights_only():
    torch.manual_seed(0)
    w = torch.randn(8, 3, 3, 3)
    radial = 0.3 * w  # a gradient parallel to w is not orthogonal: no projection
    tangent = torch.randn_like(w)
    tangent -= (
        w
        * (tangent * w).flatten(1).sum(1).view(-1, 1, 1, 1)
        / w.flatten(1).pow(2).sum(1).view(-1, 1, 1, 1)
    )
    update = torch.randn_like(w)
    ratios = project_scale_invariant(
        [w, w], [radial, tangent], [update.clone(), update], 0.1, 0.1, 1e-8
    )
    assert ratios == [1.0, 0.1]
    # the projected update has no radial part in any output channel
    unit = w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    assert (unit * update).flatten(1).sum(1).abs().max() < 1e-5
    assert project_scale_invariant(
        [torch.randn(5)], [torch.randn(5)], [torch.randn(5)], 0.1, 0.1, 1e-8
    ) == [1.0]


@pytest.mark.parametrize("make", [lambda p: AdamP(p, **ADAMP), lambda p: SGDP(p, **SGDP_ARGS)])
def test_state_dict_save_and_load_continues_exactly(make):
    """Train 10 steps, save, load into a fresh optimizer, train 10 more: equals 20 steps."""

    def run(split):
        model = _model()
        opt = make(model.parameters())
        g = torch.Generator().manual_seed(3)
        for step in range(20):
            if step == split:
                buffer = io.BytesIO()
                torch.save(opt.state_dict(), buffer)
                buffer.seek(0)
                opt = make(model.parameters())
                opt.load_state_dict(torch.load(buffer, weights_only=True))
            x, y = torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 4, (8,), generator=g)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return [p.detach().clone() for p in model.parameters()], opt

    straight, _ = run(split=-1)
    resumed, opt = run(split=10)
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed, strict=True))
    state = next(iter(opt.state.values()))
    assert state["step"] == 20


def test_state_loads_from_the_reference_package():
    model = _model()
    ref = adamp.AdamP(model.parameters(), **ADAMP)
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 4, (4,))
    nn.functional.cross_entropy(model(x), y).backward()
    ref.step()
    ours = AdamP(model.parameters(), **ADAMP)
    ours.load_state_dict(ref.state_dict())
    ours.step()
    assert next(iter(ours.state.values()))["step"] == 2


def test_bad_hyperparameters_are_refused():
    params = [nn.Parameter(torch.zeros(2))]
    with pytest.raises(ConfigError, match="lr"):
        AdamP(params, lr=-1.0)
    with pytest.raises(ConfigError, match=r"betas\[1\]"):
        AdamP(params, betas=(0.9, 1.0))
    with pytest.raises(ConfigError, match="wd_ratio"):
        SGDP(params, lr=0.1, wd_ratio=2.0)
    with pytest.raises(ConfigError, match="momentum"):
        SGDP(params, lr=0.1, momentum=1.0)
