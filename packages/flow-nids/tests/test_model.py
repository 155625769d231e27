"""Shapes of every encoding, sequence model and head; training beats chance."""

from __future__ import annotations

import pytest
import torch

from flow_nids.flowtransformer.encodings import ENCODINGS, InputEncoding
from flow_nids.flowtransformer.heads import HEADS, Head
from flow_nids.flowtransformer.model import FlowTransformer
from flow_nids.flowtransformer.sequence import SEQUENCE_MODELS, SequenceModel

NUMERIC, FIELDS, VOCAB = 28, 9, 33


def _inputs(batch: int = 3, tokens: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    numeric = torch.rand(batch, tokens, NUMERIC, generator=generator)
    return numeric, torch.randint(0, VOCAB, (batch, tokens, FIELDS), generator=generator)


@pytest.mark.parametrize(
    ("kind", "width"),
    [
        ("none", NUMERIC + FIELDS * VOCAB),
        ("record", 64),
        ("record-projection", 64),
        ("categorical-dense", NUMERIC + FIELDS * 16),
        ("categorical-lookup", NUMERIC + FIELDS * 16),
        ("categorical-projection", NUMERIC + FIELDS * 16),
    ],
)
def test_encoding_shapes(kind: str, width: int):
    encoding = InputEncoding(kind, NUMERIC, FIELDS, VOCAB)
    assert encoding.width == width
    assert encoding(*_inputs()).shape == (3, 8, width)
    assert set(ENCODINGS) >= {kind}


def test_projection_variants_have_no_bias():
    assert InputEncoding("record-projection", NUMERIC, FIELDS, VOCAB).record.bias is None  # type: ignore[union-attr]
    assert InputEncoding("record", NUMERIC, FIELDS, VOCAB).record.bias is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", list(SEQUENCE_MODELS))
def test_sequence_models_keep_shape_and_causality(kind: str):
    torch.manual_seed(0)
    model = SequenceModel(kind, 20, 8).eval()
    x = torch.randn(2, 8, 20)
    y = model(x)
    assert y.shape == (2, 8, 20)
    changed = x.clone()
    changed[:, -1] += 1.0  # only the last token changes
    first_moves = not torch.allclose(model(changed)[:, 0], y[:, 0])
    assert first_moves is not SEQUENCE_MODELS[kind].causal


@pytest.mark.parametrize(
    ("kind", "features"),
    [
        ("last-token", 20),
        ("cls", 20),
        ("gap", 20),
        ("flatten", 160),
        ("featurewise", 128),
        ("featurewise-projection", 128),
    ],
)
def test_head_shapes(kind: str, features: int):
    head = Head(kind, 20, 8)
    h = torch.randn(4, 8, 20)
    out = head(h)
    assert out.shape == (4, features) == (4, head.out_features)
    if kind == "last-token":
        assert torch.equal(out, h[:, -1])
    if kind == "gap":
        assert torch.allclose(out, h.mean(1))


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("encoding", ["none", "categorical-lookup"])
def test_every_head_and_encoding_in_the_classifier(head: str, encoding: str):
    model = FlowTransformer(NUMERIC, FIELDS, VOCAB, window=8, encoding=encoding, head=head)
    assert model(*_inputs(5)).shape == (5,)
    assert model.parameter_count() > 0


def test_norm_option_reaches_the_blocks():
    from flow_core.errors import FlowError

    model = FlowTransformer(NUMERIC, FIELDS, VOCAB, norm=None)
    assert isinstance(model.sequence.blocks[0].norm1, torch.nn.LayerNorm)
    with pytest.raises(FlowError, match="no-such-norm"):  # looked up in the registry
        FlowTransformer(NUMERIC, FIELDS, VOCAB, norm="no-such-norm")


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="choose one of"):
        FlowTransformer(NUMERIC, FIELDS, VOCAB, head="mean")
    with pytest.raises(ValueError, match="choose one of"):
        FlowTransformer(NUMERIC, FIELDS, VOCAB, encoding="onehot")
