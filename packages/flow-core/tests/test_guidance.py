import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError
from flow_core.models.mlp import MLPVelocity
from flow_core.paths import PREDICTION_KINDS, AffinePath
from flow_core.samplers import ClassifierFreeGuidance, Euler


def _model():
    torch.manual_seed(0)
    return MLPVelocity(dim=2, hidden=32, depth=2, num_classes=3).double()


def _inputs(n=12):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    t = 0.05 + 0.9 * torch.rand(n, generator=g, dtype=torch.float64)
    cond = torch.randint(0, 3, (n,), generator=g)
    return x, t, cond


@pytest.mark.parametrize("path", [AffinePath("linear"), AffinePath("cosine"), AffinePath("ve")])
def test_guidance_is_the_same_in_every_parameterization(path):
    model, (x, t, cond) = _model(), _inputs()
    guided = [
        ClassifierFreeGuidance(model, 2.5, parameterization=kind, path=path)(x, t, cond)
        for kind in PREDICTION_KINDS
    ]
    v_c, v_u = model(x, t, cond), model(x, t, None)
    torch.testing.assert_close(guided[0], v_u + 2.5 * (v_c - v_u))
    for other in guided[1:]:
        torch.testing.assert_close(other, guided[0], rtol=1e-9, atol=1e-9)


def test_the_combined_prediction_is_guided_in_its_own_parameterization():
    # For the score form: converting the guided velocity to a score gives s_u + ω(s_c − s_u).
    model, (x, t, cond) = _model(), _inputs()
    path = AffinePath("cosine")
    field = ClassifierFreeGuidance(model, 3.0, parameterization="score", path=path)
    s_c = path.velocity_to_score(model(x, t, cond), x, t)
    s_u = path.velocity_to_score(model(x, t, None), x, t)
    torch.testing.assert_close(
        path.velocity_to_score(field(x, t, cond), x, t), s_u + 3 * (s_c - s_u)
    )


def test_scale_and_guidance_weight_conventions():
    model, (x, t, cond) = _model(), _inputs()
    v_c, v_u = model(x, t, cond), model(x, t, None)
    torch.testing.assert_close(ClassifierFreeGuidance(model, 1.0)(x, t, cond), v_c)
    torch.testing.assert_close(ClassifierFreeGuidance(model, 0.0)(x, t, cond), v_u)
    weight_zero = ClassifierFreeGuidance(model, guidance_weight=0.0)
    torch.testing.assert_close(weight_zero(x, t, cond), v_c)
    assert weight_zero.scale == 1.0 and weight_zero.guidance_weight == 0.0
    torch.testing.assert_close(
        ClassifierFreeGuidance(model, guidance_weight=1.5)(x, t, cond),
        v_c + 1.5 * (v_c - v_u),
    )
    torch.testing.assert_close(
        ClassifierFreeGuidance(model, guidance_weight=1.5)(x, t, cond),
        ClassifierFreeGuidance(model, scale=2.5)(x, t, cond),
    )


def test_null_label_runs_one_batched_call_with_the_same_result():
    model, (x, t, cond) = _model(), _inputs()
    calls = []
    model.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    two_calls = ClassifierFreeGuidance(model, 4.0)(x, t, cond)
    assert calls == [12, 12]
    calls.clear()
    batched = ClassifierFreeGuidance(model, 4.0, null_cond=model.null_label)(x, t, cond)
    assert calls == [24]
    torch.testing.assert_close(batched, two_calls)


def test_null_condition_vector_is_broadcast():
    seen = []

    class Embedded(nn.Module):
        def forward(self, x, t, cond=None):
            seen.append(cond)
            return x * cond.sum(1, keepdim=True)

    x, t = torch.ones(3, 2), torch.rand(3)
    cond = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out = ClassifierFreeGuidance(Embedded(), 2.0, null_cond=torch.tensor([0.5, 0.5]))(x, t, cond)
    v_c, v_u = cond.sum(1, keepdim=True), torch.ones(3, 1)
    torch.testing.assert_close(out, (v_u + 2 * (v_c - v_u)).expand(3, 2))
    torch.testing.assert_close(seen[0][3:], torch.full((3, 2), 0.5))


def test_without_a_condition_the_model_is_called_unguided():
    model, (x, t, _) = _model(), _inputs()
    torch.testing.assert_close(ClassifierFreeGuidance(model, 5.0)(x, t), model(x, t, None))


def test_guided_sampling_keeps_shapes_and_dtype():
    model, (_, _, cond) = _model(), _inputs()
    model = model.float()
    x0 = torch.randn(12, 2)
    with torch.no_grad():
        x1 = Euler(steps=4).sample(ClassifierFreeGuidance(model, 2.0), x0, cond)
    assert x1.shape == x0.shape and x1.dtype == torch.float32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one"),
        ({"scale": 2.0, "guidance_weight": 1.0}, "exactly one"),
        ({"scale": float("nan")}, "finite"),
        ({"scale": 2.0, "parameterization": "epsilon"}, r"'epsilon'.*velocity, data, noise"),
    ],
)
def test_rejects_bad_configuration(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ClassifierFreeGuidance(_model(), **kwargs)
