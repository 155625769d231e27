"""The norms.lm task end to end on tiny settings, and its data."""

import json
import math

import pytest
import torch

import flow_norms.plugin
from flow_core.errors import ConfigError
from flow_core.testing import isolated_registry, run_task
from flow_norms.data.lm import CharCorpus, SyntheticTask

TINY = {
    "dim": 16,
    "depth": 1,
    "heads": 2,
    "batch_size": 8,
    "eval_every": 10,
    "eval_batches": 2,
    "checkpoint_every": 0,
    "warmup_steps": 5,
}


def test_pydoc_corpus_is_real_english_text():
    corpus = CharCorpus(seq_len=16)
    assert len(corpus.train) > 300_000 and len(corpus.val) > 30_000
    text = "".join(corpus.vocab[i] for i in corpus.train[:2000].tolist())
    assert " the " in text
    batch = corpus.train_batch(4, torch.Generator().manual_seed(0))
    assert batch["tokens"].shape == (4, 17)


@pytest.mark.parametrize("name", ["copy", "sort", "addition"])
def test_synthetic_batches_score_only_the_answer(name):
    task = SyntheticTask(name, max_len=6)
    batch = task.train_batch(16, torch.Generator().manual_seed(0))
    tokens, scored, padding = batch["tokens"], batch["loss_mask"].bool(), batch["padding_mask"]
    assert not (scored & padding).any()
    assert padding.any()  # random lengths: some rows are padded
    row = tokens[0].tolist()
    answer = [t for t, s in zip(row[1:], scored[0].tolist(), strict=True) if s][:-1]
    prompt = row[: row.index(12 if name != "addition" else 11)]
    if name == "copy":
        assert answer == prompt
    elif name == "sort":
        assert answer == sorted(prompt)
    else:
        plus = prompt.index(10)
        a, b = (int("".join(map(str, part))) for part in (prompt[:plus], prompt[plus + 1 :]))
        assert int("".join(map(str, answer))) == a + b


def test_lm_task_runs_compares_and_plots(tmp_path):
    registry = isolated_registry(flow_norms.plugin)
    overrides = {
        **TINY,
        "steps": 30,
        "norms": "layer,batch",
        "optimizer": "adamw",
        "compare_with": "adamp",
    }
    metrics = run_task("norms.lm", tmp_path, overrides, registry=registry)
    uniform = math.log2(len(CharCorpus(seq_len=4).vocab))
    for norm in ("layer", "batch"):
        for opt in ("adamw", "adamp"):
            bits = metrics[f"{norm}/{opt}/val_bits"]
            assert math.isfinite(bits)
            if norm == "layer":
                assert bits < uniform - 1.0  # far better than a uniform guess
            assert (
                metrics[f"{norm}/{opt}/grad_norm_max"]
                >= metrics[f"{norm}/{opt}/grad_norm_mean"]
                > 0
            )
    assert (tmp_path / "figures" / "curves.png").exists()
    assert "Validation and gradient statistics" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(
        metrics, nan_ok=True
    )


def test_synthetic_task_with_power_norm_and_padding_learns(tmp_path):
    registry = isolated_registry(flow_norms.plugin)
    overrides = {
        **TINY,
        "data": "copy",
        "max_len": 4,
        "steps": 60,
        "lr": 1e-2,
        "norms": "power",
        "optimizer": "adamp",
        "compare_with": "",
        "power_warmup_iters": 20,
    }
    metrics = run_task("norms.lm", tmp_path, overrides, registry=registry)
    # chance on the 14-token vocabulary is log2(14) = 3.8 bits
    assert metrics["power/adamp/val_bits"] < 3.0
    assert metrics["power/adamp/val_accuracy"] > 0.2


def test_unknown_names_are_refused(tmp_path):
    registry = isolated_registry(flow_norms.plugin)
    with pytest.raises(ConfigError, match="available: batch, layer, power, rms"):
        run_task("norms.lm", tmp_path / "a", {"norms": "group"}, registry=registry)
    with pytest.raises(ConfigError, match="adamw"):
        run_task("norms.lm", tmp_path / "b", {"compare_with": "lion"}, registry=registry)
    with pytest.raises(ConfigError, match="data"):
        run_task("norms.lm", tmp_path / "c", {"data": "wikitext"}, registry=registry)
