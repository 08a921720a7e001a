"""Retrieval recall against hand-computed similarity matrices and a brute-force reference."""

from __future__ import annotations

import pytest
import torch

from mling.evaluation.recall import (
    TIE_TOLERANCE,
    image_to_text_ranks,
    recall_at_k,
    retrieval_metrics,
    similarity_metrics,
    text_to_image_ranks,
)

# 3 images x 6 captions; images 0 and 1 have two captions each, image 2 has two as well.
# caption j belongs to image TEXT_TO_IMAGE[j]
TEXT_TO_IMAGE = torch.tensor([0, 0, 1, 1, 2, 2])
SIMILARITY = torch.tensor(
    [
        # c0   c1   c2   c3   c4   c5
        [0.9, 0.1, 0.8, 0.0, 0.0, 0.0],  # image 0: its best caption c0 tops the row -> rank 0
        [0.7, 0.2, 0.3, 0.6, 0.5, 0.4],  # image 1: best own c3 (0.6) beaten by c0 -> rank 1
        [0.1, 0.3, 0.2, 0.4, 0.1, 0.2],  # image 2: best own c5 (0.2) beaten by c1, c3; c2 ties
    ]
)


def test_text_to_image_ranks_by_hand():
    # column j: how many other images score >= the caption's own image
    # c0: own 0.9, others 0.7 0.1 -> 0;  c1: own 0.1, others 0.2 0.3 -> 2;  c2: own 0.3, 0.8 -> 1
    # c3: own 0.6 -> 0;  c4: own 0.1, others 0.0 0.5 -> 1;  c5: own 0.2, others 0.0 0.4 -> 1
    ranks = text_to_image_ranks(SIMILARITY, TEXT_TO_IMAGE)
    assert ranks.tolist() == [0, 2, 1, 0, 1, 1]


def test_image_to_text_ranks_count_only_other_images_captions():
    # image 2: negatives scoring >= 0.2 are c1 0.3, c3 0.4 and c2 0.2 (a tie, pessimistic) -> 3
    ranks = image_to_text_ranks(SIMILARITY, TEXT_TO_IMAGE)
    assert ranks.tolist() == [0, 1, 3]


def test_metrics_by_hand():
    metrics = similarity_metrics(SIMILARITY, TEXT_TO_IMAGE, ks=(1, 2))
    assert metrics["i2t"] == pytest.approx({"R@1": 100 / 3, "R@2": 200 / 3})
    assert metrics["t2i"] == pytest.approx({"R@1": 200 / 6, "R@2": 500 / 6})
    assert metrics["mR"] == pytest.approx((100 / 3 + 200 / 3 + 200 / 6 + 500 / 6) / 4)


def test_i2t_hit_when_any_caption_is_in_top_k():
    # image 0's first caption is last, its second is first: any caption counts, so rank 0.
    # image 1's only caption (0.8) is beaten by image 0's first (0.9): rank 1.
    similarity = torch.tensor([[0.0, 1.0, 0.5], [0.9, 0.2, 0.8]])
    ranks = image_to_text_ranks(similarity, torch.tensor([0, 0, 1]))
    assert ranks.tolist() == [0, 1]


def test_ties_count_against_the_model():
    # a collapsed model: every score equal. Pessimistic ties give 0 %, not 100 %.
    similarity = torch.ones(4, 4)
    metrics = similarity_metrics(similarity, torch.arange(4), ks=(1, 3, 4))
    assert metrics["i2t"] == {"R@1": 0.0, "R@3": 0.0, "R@4": 100.0}
    assert metrics["t2i"] == {"R@1": 0.0, "R@3": 0.0, "R@4": 100.0}


def test_ties_between_an_images_own_captions_cost_nothing():
    similarity = torch.tensor([[0.5, 0.5, 0.4], [0.1, 0.1, 0.9]])
    assert image_to_text_ranks(similarity, torch.tensor([0, 0, 1])).tolist() == [0, 0]


def test_images_without_captions_are_distractors_not_queries():
    # image 1 has no caption: no i2t query, but it outranks caption 0's image in t2i
    similarity = torch.tensor([[0.5, 0.9], [0.7, 0.1], [0.0, 0.2]])
    text_to_image = torch.tensor([0, 2])
    assert image_to_text_ranks(similarity, text_to_image).tolist() == [1, 0]  # images 0 and 2
    assert text_to_image_ranks(similarity, text_to_image).tolist() == [1, 1]


def test_oracle_embeddings_score_100_and_reversed_score_0():
    # captions embedded exactly as their image: a perfect model
    image_embeds = torch.eye(20)
    text_to_image = torch.arange(20).repeat_interleave(5)  # 5 captions per image, like Multi30k
    perfect = retrieval_metrics(image_embeds, image_embeds[text_to_image], text_to_image)
    assert perfect == {
        "i2t": {"R@1": 100.0, "R@5": 100.0, "R@10": 100.0},
        "t2i": {"R@1": 100.0, "R@5": 100.0, "R@10": 100.0},
        "mR": 100.0,
    }
    # every caption points away from its own image: never found within the top 10 of 20?
    # each caption's own image scores lowest (-1 vs 0 for the others) -> rank 19, always a miss
    wrong = retrieval_metrics(image_embeds, -image_embeds[text_to_image], text_to_image)
    assert wrong["t2i"] == {"R@1": 0.0, "R@5": 0.0, "R@10": 0.0}
    assert wrong["i2t"] == {"R@1": 0.0, "R@5": 0.0, "R@10": 0.0}


def test_scale_does_not_matter_embeddings_are_normalized():
    image_embeds = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text_embeds = torch.tensor([[10.0, 1.0], [0.1, 3.0], [2.0, 0.1]])
    text_to_image = [0, 1, 0]
    assert retrieval_metrics(image_embeds, text_embeds, text_to_image)["mR"] == 100.0
    assert retrieval_metrics(image_embeds * 7, text_embeds / 3, text_to_image)["mR"] == 100.0


def brute_force(similarity: torch.Tensor, text_to_image: list[int], ks) -> dict:
    """The definition, one query at a time: rank = negatives scoring >= best (ties pessimistic)."""
    n, m = similarity.shape
    i2t, t2i = [], []
    for i in range(n):
        own = [j for j in range(m) if text_to_image[j] == i]
        if own:
            best = max(similarity[i, j].item() for j in own)
            negatives = [similarity[i, j].item() for j in range(m) if j not in own]
            i2t.append(sum(score >= best - TIE_TOLERANCE for score in negatives))
    for j in range(m):
        own = similarity[text_to_image[j], j].item()
        others = [similarity[i, j].item() for i in range(n) if i != text_to_image[j]]
        t2i.append(sum(score >= own - TIE_TOLERANCE for score in others))
    i2t_recall = {f"R@{k}": 100 * sum(r < k for r in i2t) / len(i2t) for k in ks}
    t2i_recall = {f"R@{k}": 100 * sum(r < k for r in t2i) / len(t2i) for k in ks}
    values = [*i2t_recall.values(), *t2i_recall.values()]
    return {"i2t": i2t_recall, "t2i": t2i_recall, "mR": sum(values) / len(values)}


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force_on_random_sets_with_ties(seed):
    generator = torch.Generator().manual_seed(seed)
    n, m, d = 12, 30, 3
    # integer-valued embeddings: many exact ties, the hard case
    image_embeds = torch.randint(-2, 3, (n, d), generator=generator).float()
    text_embeds = torch.randint(-2, 3, (m, d), generator=generator).float()
    image_embeds[image_embeds.norm(dim=1) == 0] = 1.0
    text_embeds[text_embeds.norm(dim=1) == 0] = 1.0
    # uneven caption counts, image 0 without any
    text_to_image = torch.randint(1, n, (m,), generator=generator)
    ks = (1, 2, 5)
    normalized_i = image_embeds / image_embeds.norm(dim=1, keepdim=True)
    normalized_t = text_embeds / text_embeds.norm(dim=1, keepdim=True)
    expected = brute_force(
        (normalized_i.double() @ normalized_t.double().T), text_to_image.tolist(), ks
    )
    # tiny chunks: the sliced path must agree with the whole-matrix definition
    got = retrieval_metrics(image_embeds, text_embeds, text_to_image, ks, chunk_elements=7)
    assert got["i2t"] == pytest.approx(expected["i2t"])
    assert got["t2i"] == pytest.approx(expected["t2i"])
    assert got["mR"] == pytest.approx(expected["mR"])


def test_ties_survive_float_rounding():
    # 0.1 + 0.2 is a rounding error above 0.3: the negative at 0.3 still ties the positive
    assert 0.1 + 0.2 > 0.3
    similarity = torch.tensor([[0.1 + 0.2, 0.3], [0.0, 0.5]], dtype=torch.float64)
    assert image_to_text_ranks(similarity, torch.tensor([0, 1])).tolist() == [1, 0]
    assert text_to_image_ranks(similarity.T, torch.tensor([0, 1])).tolist() == [1, 0]


def test_recall_at_k_percent():
    assert recall_at_k(torch.tensor([0, 1, 4, 9]), ks=(1, 5, 10)) == {
        "R@1": 25.0,
        "R@5": 75.0,
        "R@10": 100.0,
    }


@pytest.mark.parametrize(
    ("image_embeds", "text_embeds", "text_to_image", "message"),
    [
        (torch.eye(2), torch.eye(2), [0], "1 entries for 2 captions"),
        (torch.eye(2), torch.eye(2), [0, 2], "outside 0..1"),
        (torch.eye(2), torch.eye(3)[:2], [0, 1], "same size"),
        (torch.eye(2), torch.zeros(2, 2), [0, 1], "all-zero"),
        (torch.eye(2), torch.full((2, 2), float("nan")), [0, 1], "NaN"),
    ],
)
def test_bad_input_is_one_line(image_embeds, text_embeds, text_to_image, message):
    with pytest.raises(ValueError, match=message) as error:
        retrieval_metrics(image_embeds, text_embeds, text_to_image)
    assert "\n" not in str(error.value)
