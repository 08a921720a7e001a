"""The contrastive loss on cases small enough to check by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mling.training.loss import (
    align_loss,
    caption_ids_of,
    contrastive_loss,
    contrastive_share,
    gather_with_grad,
    text_text_loss,
    text_text_share,
)

IDENTITY = torch.eye(2)  # two pairs, each image exactly its own caption, orthogonal to the other


def test_hand_computed_two_pairs_without_smoothing():
    # logits = [[1, 0], [0, 1]]: each row's loss is -log(e / (e + 1)) = log(1 + 1/e) = 0.31326;
    # both directions are the same matrix, and the paper sums them: 0.62652.
    loss = contrastive_loss(IDENTITY, IDENTITY, temperature=1.0, label_smoothing=0.0)
    assert loss.item() == pytest.approx(2 * math.log(1 + math.exp(-1)), abs=1e-6)
    assert loss.item() == pytest.approx(0.62652, abs=1e-5)


def test_hand_computed_label_smoothing():
    # Smoothing 0.1 over 2 classes: targets (0.95, 0.05). p = e / (e + 1) = 0.73106, so each row
    # costs -(0.95 log p + 0.05 log(1 - p)) = 0.95 * 0.31326 + 0.05 * 1.31326 = 0.36326.
    loss = contrastive_loss(IDENTITY, IDENTITY, temperature=1.0, label_smoothing=0.1)
    assert loss.item() == pytest.approx(2 * 0.36326, abs=1e-5)


def test_temperature_divides_the_similarities():
    # temperature 0.5 doubles the logits: rows cost log(1 + e^-2) = 0.12693 each.
    loss = contrastive_loss(IDENTITY, IDENTITY, temperature=0.5, label_smoothing=0.0)
    assert loss.item() == pytest.approx(2 * math.log(1 + math.exp(-2)), abs=1e-6)


def test_temperature_gradient_matches_the_derivative():
    # Row loss log(1 + exp(-1/t)); d/dt = exp(-1/t) / (1 + exp(-1/t)) / t^2 = 0.26894 at t = 1.
    # Two directions: 0.53788. Positive: a colder softmax lowers the loss of a perfect match.
    temperature = torch.tensor(1.0, requires_grad=True)
    contrastive_loss(IDENTITY, IDENTITY, temperature, label_smoothing=0.0).backward()
    expected = 2 * math.exp(-1) / (1 + math.exp(-1))
    assert temperature.grad.item() == pytest.approx(expected, abs=1e-6)
    assert temperature.grad.item() == pytest.approx(0.53788, abs=1e-5)


def test_hand_computed_several_positives_per_image():
    # Rows 0 and 1 show one image (captioned in two languages), row 2 another. Images
    # [e1, e1, e2], captions [e1, e2, e2]: logits rows [1, 0, 0], [1, 0, 0], [0, 1, 1].
    # Image to text, targets (.5, .5, 0), (.5, .5, 0), (0, 0, 1):
    #   rows 0, 1: log(e + 2) - 0.5 = 1.05144; row 2: log(2e + 1) - 1 = 0.86201.
    # Text to image (the transposed logits, same targets):
    #   row 0: log(2e + 1) - 1 = 0.86201; row 1: log(e + 2) = 1.55144; row 2: log(e + 2) - 1.
    # Each direction's mean is 0.98829; the sum 1.97659.
    e1, e2 = [1.0, 0.0], [0.0, 1.0]
    image, text = torch.tensor([e1, e1, e2]), torch.tensor([e1, e2, e2])
    ids = torch.tensor([7, 7, 3])
    loss = contrastive_loss(image, text, 1.0, label_smoothing=0.0, image_ids=ids)
    e = math.e
    one_way = (2 * (math.log(e + 2) - 0.5) + math.log(2 * e + 1) - 1) / 3
    other_way = (math.log(2 * e + 1) - 1 + math.log(e + 2) + math.log(e + 2) - 1) / 3
    assert loss.item() == pytest.approx(one_way + other_way, abs=1e-5)
    assert loss.item() == pytest.approx(1.97659, abs=1e-5)
    # (here the paper's loss happens to be equal; on random rows it is not)
    image, text = _random_pairs()
    ids = torch.tensor([0, 0, 1, 2, 3, 3])
    assert contrastive_loss(image, text, 0.3, image_ids=ids).item() != pytest.approx(
        contrastive_loss(image, text, 0.3).item(), abs=1e-3
    )


def test_hand_computed_two_captions_per_image():
    # Images [e1, e2], each with K = 2 captions (image-major): image 0 [e1, e2], image 1
    # [e2, e2]. Slot 0 (captions e1, e2): logits the identity; each row of either direction
    # log(e + 1) - 1 = 0.31326, the sum of the two means 0.62652. Slot 1 (e2, e2): image to
    # text rows [0, 0] -> log 2 and [1, 1] -> log(2e) - 1 = log 2; text to image rows [0, 1]
    # (target image 0) -> log(1 + e) = 1.31326 and [0, 1] (target 1) -> 0.31326, mean 0.81326;
    # the slot's sum 1.50641. The loss is the slots' mean, 1.06647.
    e1, e2 = [1.0, 0.0], [0.0, 1.0]
    image, text = torch.tensor([e1, e2]), torch.tensor([e1, e2, e2, e2])
    loss = contrastive_loss(image, text, 1.0, label_smoothing=0.0)
    e = math.e
    slot0 = 2 * (math.log(e + 1) - 1)
    slot1 = math.log(2) + (math.log(1 + e) + math.log(1 + e) - 1) / 2
    assert loss.item() == pytest.approx((slot0 + slot1) / 2, abs=1e-5)
    assert loss.item() == pytest.approx(1.06647, abs=1e-5)


def test_k_captions_per_image_is_the_mean_of_k_papers_losses():
    image, _ = _random_pairs(n=5, seed=1)
    captions = [_random_pairs(n=5, seed=10 + k)[1] for k in range(3)]  # slot k: (5, D)
    text = torch.stack(captions, dim=1).reshape(15, -1)  # image-major
    ids = torch.tensor([4, 4, 1, 2, 3])  # image ids apply within every slot
    for image_ids in (None, ids):
        slots = [contrastive_loss(image, c, 0.3, image_ids=image_ids) for c in captions]
        loss = contrastive_loss(image, text, 0.3, image_ids=image_ids)
        assert loss.item() == pytest.approx(sum(slots).item() / 3, abs=1e-5)
    with pytest.raises(ValueError, match="7 captions for 5 images"):
        contrastive_loss(image, text[:7], 0.3)


def test_distinct_image_ids_are_the_papers_loss():
    image, text = _random_pairs()
    ids = torch.arange(6) * 11
    assert contrastive_loss(image, text, 0.3, image_ids=ids).item() == pytest.approx(
        contrastive_loss(image, text, 0.3).item(), abs=1e-6
    )


def _random_pairs(n: int = 6, d: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = F.normalize(torch.randn(n, d, generator=generator), dim=-1)
    text = F.normalize(torch.randn(n, d, generator=generator), dim=-1)
    return image, text


def test_symmetric_in_images_and_texts():
    image, text = _random_pairs()
    assert contrastive_loss(image, text, 0.3).item() == pytest.approx(
        contrastive_loss(text, image, 0.3).item(), abs=1e-6
    )


def test_sum_of_both_directions_each_a_mean_over_rows():
    image, text = _random_pairs()
    logits = image @ text.T / 0.3
    rows = -torch.log_softmax(logits, dim=1).diagonal().mean()
    columns = -torch.log_softmax(logits, dim=0).diagonal().mean()
    loss = contrastive_loss(image, text, 0.3, label_smoothing=0.0)
    assert loss.item() == pytest.approx((rows + columns).item(), abs=1e-5)


def test_twice_transformers_align_loss_which_averages_the_directions():
    from transformers.models.align.modeling_align import align_loss

    image, text = _random_pairs()
    theirs = align_loss(text @ image.T / 0.7)  # label smoothing 0.1 built in
    assert contrastive_loss(image, text, 0.7).item() == pytest.approx(2 * theirs.item(), abs=1e-5)


def test_label_smoothing_raises_the_loss_of_a_confident_match():
    plain = contrastive_loss(IDENTITY, IDENTITY, 0.05, label_smoothing=0.0)
    smoothed = contrastive_loss(IDENTITY, IDENTITY, 0.05, label_smoothing=0.1)
    assert plain.item() < 1e-6 < smoothed.item()


def test_computed_in_float32_for_half_precision_embeddings():
    image, text = _random_pairs()
    loss = contrastive_loss(image.bfloat16(), text.bfloat16(), 0.3)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(contrastive_loss(image, text, 0.3).item(), abs=0.05)


def test_gather_is_the_identity_in_one_process():
    x = torch.randn(3, 2, requires_grad=True)
    assert gather_with_grad(x) is x


def test_text_text_hand_computed_one_pair_of_names():
    # Captions [e1, e1, e2], ids [7, 7, 3]: captions 0 and 1 name one image (two languages).
    # Caption 0's softmax runs over captions 1 and 2, logits (1, 0), target caption 1:
    # log(1 + 1/e) = 0.31326; caption 1 the same; caption 2 has no positive and is left out.
    e1, e2 = [1.0, 0.0], [0.0, 1.0]
    text, ids = torch.tensor([e1, e1, e2]), torch.tensor([7, 7, 3])
    loss = text_text_loss(text, ids, 1.0, label_smoothing=0.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    # smoothing 0.1 over the 2 others: targets (0.95, 0.05), as in the image-text case
    smoothed = text_text_loss(text, ids, 1.0, label_smoothing=0.1)
    assert smoothed.item() == pytest.approx(0.36326, abs=1e-5)


def test_text_text_without_positives_is_zero_and_never_nan():
    text = _random_pairs(n=4)[1]
    loss = text_text_loss(text, torch.arange(4), 0.1)
    assert loss.item() == 0.0
    text.requires_grad_()
    text_text_loss(text, torch.tensor([1, 1, 2, 3]), 0.1).backward()
    assert torch.isfinite(text.grad).all()


def test_text_text_is_symmetric_and_spreads_the_target_over_every_positive():
    # Three names of one image, the third orthogonal: caption 0 against (1, 2, 3) with logits
    # (1, 0, 0) and targets (.5, .5, 0): log(e + 2) - 0.5 = 1.05144; caption 1 the same;
    # caption 2 against (0, 1, 3), logits (0, 0, 0), targets (.5, .5, 0): log 3; caption 3
    # (another image) has no positive.
    e1, e2, e3 = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]
    text, ids = torch.tensor([e1, e1, e2, e3]), torch.tensor([5, 5, 5, 9])
    loss = text_text_loss(text, ids, 1.0, label_smoothing=0.0)
    e = math.e
    assert loss.item() == pytest.approx((2 * (math.log(e + 2) - 0.5) + math.log(3)) / 3, abs=1e-6)
    order = torch.tensor([3, 1, 0, 2])  # a permutation of the captions changes nothing
    assert text_text_loss(text[order], ids[order], 1.0, 0.0).item() == pytest.approx(loss.item())


def test_align_loss_weight_zero_is_the_papers_loss_and_adds_the_text_term():
    image = _random_pairs(n=3, seed=2)[0]
    text = torch.stack([_random_pairs(n=3, seed=5 + k)[1] for k in range(2)], dim=1)
    text = text.reshape(6, -1)  # K = 2 captions per image, image-major
    ids = torch.tensor([4, 4, 8])  # images 0 and 1 are one image: 4 names of it
    paper = contrastive_loss(image, text, 0.3, image_ids=ids)
    assert align_loss(image, text, 0.3, image_ids=ids).item() == paper.item()
    captions = torch.tensor([4, 4, 4, 4, 8, 8])  # each image's id, once per slot
    expected = paper + 0.5 * text_text_loss(text, captions, 0.3)
    got = align_loss(image, text, 0.3, image_ids=ids, text_text_weight=0.5)
    assert got.item() == pytest.approx(expected.item(), abs=1e-6)
    # without ids, the K names of a row are each other's positives
    alone = align_loss(image, text, 0.3, text_text_weight=1.0) - contrastive_loss(image, text, 0.3)
    rows = text_text_loss(text, torch.tensor([0, 0, 1, 1, 2, 2]), 0.3)
    assert alone.item() == pytest.approx(rows.item(), abs=1e-6)


def test_hand_computed_share_of_one_row():
    # Of the two pairs of IDENTITY (0.62652 in all, without smoothing), the first image and its
    # caption carry half: its image-to-text row and its caption's text-to-image row, each
    # 0.31326, divided by N = 2.
    share = contrastive_share(IDENTITY, IDENTITY, 1.0, slice(0, 1), label_smoothing=0.0)
    assert share.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)


def test_shares_of_a_partition_add_up_to_the_global_loss():
    image = _random_pairs(n=6, seed=3)[0]
    text = torch.stack([_random_pairs(n=6, seed=7 + k)[1] for k in range(2)], dim=1)
    text = text.reshape(12, -1)  # K = 2
    ids = torch.tensor([0, 0, 1, 2, 2, 3])
    whole = contrastive_loss(image, text, 0.3, image_ids=ids)
    parts = [contrastive_share(image, text, 0.3, slice(s, s + 2), 0.1, ids) for s in (0, 2, 4)]
    assert sum(parts).item() == pytest.approx(whole.item(), abs=1e-6)
    captions = caption_ids_of(ids, 6, 2, "cpu")
    whole = text_text_loss(text, captions, 0.3)
    parts = [text_text_share(text, captions, 0.3, slice(s, s + 4)) for s in (0, 4, 8)]
    assert sum(parts).item() == pytest.approx(whole.item(), abs=1e-6)
