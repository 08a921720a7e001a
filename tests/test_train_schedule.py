"""The learning-rate schedule and the optimizer's weight-decay groups."""

from __future__ import annotations

import pytest
import torch

from mling.training.model import DualEncoder, build_model
from mling.training.optim import build_optimizer, param_groups
from mling.training.recipe import OptimConfig, load_recipe
from mling.training.schedule import lr_at

PAPER = OptimConfig(lr=1e-3, warmup_steps=10_000)


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.0),  # warm-up starts from zero
        (2_500, 0.25e-3),  # a quarter of the way
        (10_000, 1e-3),  # the peak, exactly at the end of warm-up
        (605_000, 0.5e-3),  # half-way down: (1.2M - 605k) / (1.2M - 10k) = 0.5
        (1_200_000, 0.0),  # zero at the end
        (1_300_000, 0.0),  # and after it
    ],
)
def test_paper_schedule(step, expected):
    assert lr_at(step, PAPER, max_steps=1_200_000) == pytest.approx(expected, abs=1e-12)


def test_decay_steps_overrides_the_run_length():
    cfg = OptimConfig(lr=1.0, warmup_steps=2, decay_steps=10)
    assert [lr_at(s, cfg, max_steps=4) for s in range(5)] == pytest.approx([0, 0.5, 1, 0.875, 0.75])


def test_no_warmup_starts_at_the_peak():
    cfg = OptimConfig(lr=1.0, warmup_steps=0)
    assert [lr_at(s, cfg, max_steps=4) for s in range(5)] == pytest.approx([1, 0.75, 0.5, 0.25, 0])


@pytest.fixture(scope="module")
def tiny() -> DualEncoder:
    return DualEncoder(build_model(load_recipe("tiny").model, vocab_size=60))


def test_weight_decay_on_weights_only(tiny):
    decay, no_decay = param_groups(tiny, weight_decay=1e-5)
    names = {id(p): n for n, p in tiny.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    kept = {names[id(p)] for p in no_decay["params"]}
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (1e-5, 0.0)
    assert "align.temperature" in kept
    assert "align.text_projection.weight" in decayed and "align.text_projection.bias" in kept
    # sparse rows: LAMB's whole-table trust ratio would starve them (see param_groups)
    assert "align.text_model.embeddings.word_embeddings.weight" in kept
    assert "align.text_model.embeddings.position_embeddings.weight" in decayed
    assert "align.text_model.embeddings.LayerNorm.weight" in kept
    assert "align.vision_model.embeddings.convolution.weight" in decayed
    assert "align.vision_model.embeddings.batchnorm.weight" in kept
    assert not any("pooler" in n for n in decayed | kept)  # frozen, unused by ALIGN
    assert all(tiny.get_parameter(n).ndim >= 2 for n in decayed)
    assert all(
        tiny.get_parameter(n).ndim <= 1
        for n in kept - {"align.text_model.embeddings.word_embeddings.weight"}
    )


def test_plain_lamb_decays_the_word_embeddings_too(tiny):
    decay, _ = param_groups(tiny, weight_decay=1e-5, embedding_decay=True)
    assert any(
        p is tiny.align.text_model.embeddings.word_embeddings.weight for p in decay["params"]
    )


@pytest.mark.parametrize("name", ["lamb", "adamw"])
def test_optimizers_step(tiny, name):
    optimizer = build_optimizer(tiny, OptimConfig(optimizer=name, lr=1e-2))
    before = tiny.align.temperature.item()
    tiny.align.temperature.grad = torch.tensor(1.0)
    optimizer.step()
    assert tiny.align.temperature.item() < before  # a positive gradient lowers it
    tiny.zero_grad(set_to_none=True)


def test_unknown_optimizer_is_named(tiny):
    with pytest.raises(ValueError, match="--optimizer lamb or adamw"):
        build_optimizer(tiny, OptimConfig(optimizer="sgd"))
