"""Zero-shot classification math: prompts, ensembling, ranks and top-k accuracy by hand."""

from __future__ import annotations

import math

import pytest
import torch

from mling.evaluation.classification import (
    class_prompts,
    ensemble_class_embeds,
    label_ranks,
    top_k_accuracy,
)


def test_class_prompts_are_names_times_templates_in_any_script():
    prompts, prompt_to_class = class_prompts([["犬"], ["猫", "ネコ"]], ["{}の写真。", "小さな{}。"])
    assert prompts == [
        "犬の写真。",
        "小さな犬。",
        "猫の写真。",
        "小さな猫。",
        "ネコの写真。",
        "小さなネコ。",
    ]
    assert prompt_to_class == [0, 0, 1, 1, 1, 1]


def test_ensemble_averages_normalized_prompts_then_normalizes():
    # class 0: prompts (3, 0) and (0, 1) -> normalized (1, 0), (0, 1) -> mean (.5, .5) -> (1, 1)/√2
    # class 1: one prompt (0, -2) -> (0, -1)
    prompt_embeds = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, -2.0]])
    class_embeds = ensemble_class_embeds(prompt_embeds, [0, 0, 1], num_classes=2)
    expected = torch.tensor([[1 / math.sqrt(2), 1 / math.sqrt(2)], [0.0, -1.0]])
    torch.testing.assert_close(class_embeds, expected)


def test_a_class_without_prompts_is_an_error():
    with pytest.raises(ValueError, match=r"classes \[1\] have no prompt"):
        ensemble_class_embeds(torch.eye(2), [0, 0], num_classes=2)


def test_label_ranks_and_top_k_by_hand():
    class_embeds = torch.eye(3)
    image_embeds = torch.tensor([[1.0, 0.2, 0.1], [0.5, 0.4, 0.0], [0.1, 0.2, 0.3]])
    labels = [0, 1, 0]
    # image 0: class 0 best -> 0; image 1: class 1 (0.4) below class 0 -> 1; image 2: class 0
    # (0.1) below 0.2 and 0.3 -> 2
    ranks = label_ranks(image_embeds, class_embeds, labels)
    assert ranks.tolist() == [0, 1, 2]
    assert top_k_accuracy(ranks, ks=(1, 2)) == pytest.approx({"top1": 100 / 3, "top2": 200 / 3})


def test_tied_classes_count_against_the_model():
    ranks = label_ranks(torch.ones(2, 3), torch.eye(3), [0, 2])
    assert ranks.tolist() == [2, 2]


def test_top_k_at_or_above_the_class_count_is_not_reported():
    assert top_k_accuracy(torch.tensor([0, 1, 2]), ks=(1, 5), num_classes=4) == {
        "top1": pytest.approx(100 / 3),
        "top5": None,
    }
