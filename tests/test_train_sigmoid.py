"""Training with --loss sigmoid: the recipe's defaults, the bias trained, checkpointed and
resumed, and an export that transformers loads as a plain AlignModel."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import mling.train
from mling.training.checkpoint import LOSS_BIAS, LOSS_FILE
from mling.training.model_card import model_card
from mling.training.recipe import RecipeError, load_recipe
from mling.training.sigmoid_loss import BIAS_INIT
from tests.helpers import train_fixtures
from tests.helpers.train_fixtures import tiny_argv

toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture


def test_the_sigmoid_loss_starts_at_siglips_temperature_unless_given():
    assert load_recipe("tiny").loss.loss == "softmax"
    assert load_recipe("tiny").model.temperature_init == 1.0  # ALIGN's
    assert load_recipe("tiny", {"loss": "sigmoid"}).model.temperature_init == 0.1  # SigLIP's
    given = load_recipe("tiny", {"loss": "sigmoid", "temperature_init": 0.5})
    assert given.model.temperature_init == 0.5
    with pytest.raises(RecipeError, match="--loss logistic: choose from softmax, sigmoid"):
        load_recipe("tiny", {"loss": "logistic"})
    with pytest.raises(RecipeError, match="--text-text-weight 0.5 is a softmax term"):
        load_recipe("tiny", {"loss": "sigmoid", "positives": "image_id", "text_text_weight": 0.5})


def test_the_model_card_says_which_loss_trained_the_model():
    softmax = model_card(load_recipe("tiny"), 10)
    sigmoid = model_card(load_recipe("tiny", {"loss": "sigmoid"}), 10)
    assert "normalized softmax" in softmax and "sigmoid" not in softmax
    assert "pairwise sigmoid (SigLIP), learnable temperature from 0.1 and bias from -10" in sigmoid


def test_the_bias_trains_resumes_and_stays_out_of_the_export(tmp_path, toy_pairs, toy_tokenizer):
    from transformers import AlignModel

    output = tmp_path / "run"
    argv = tiny_argv(toy_pairs, toy_tokenizer, output, "--loss", "sigmoid", "--save-every", "1")
    assert mling.train.main([*argv, "--max-steps", "2"]) == 0
    first = load_file(str(output / "checkpoints" / "step-00000002" / LOSS_FILE))[LOSS_BIAS]
    assert first.item() != BIAS_INIT  # it trained
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["temperature"] == pytest.approx(0.1, abs=0.01)
    # the tiny random towers embed everything alike (cosines near 1): every one of an image's
    # 16 pairs then costs about log 2 at SigLIP's start (logit 10 x 1 - 10 = 0)
    assert 0.5 * 16 * 0.693 < records[0]["loss"] < 16 * 0.693

    # resumed from the checkpoint's bias, not from -10: set it far away, one step moves it
    # by about the learning rate (0.01)
    save_file(
        {LOSS_BIAS: torch.tensor(-3.0)}, str(output / "checkpoints" / "step-00000002" / LOSS_FILE)
    )
    assert mling.train.main([*argv, "--max-steps", "3", "--resume", "latest"]) == 0
    second = load_file(str(output / "checkpoints" / "step-00000003" / LOSS_FILE))[LOSS_BIAS]
    assert second.item() == pytest.approx(-3.0, abs=0.05)

    model_dir = output / "model"
    exported = load_file(str(model_dir / "model.safetensors"))
    assert not any("logit_bias" in key for key in exported)
    model, info = AlignModel.from_pretrained(model_dir, output_loading_info=True)
    assert not info["unexpected_keys"] and not info["missing_keys"]
    last = json.loads((output / "metrics.jsonl").read_text().splitlines()[-1])
    assert model.temperature.item() == pytest.approx(last["temperature"], rel=0.05)
    assert "pairwise sigmoid (SigLIP)" in (model_dir / "README.md").read_text(encoding="utf-8")
