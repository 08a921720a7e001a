"""SigLIP's sigmoid loss on cases small enough to check by hand (one process; the ring of
processes is tested in test_loss_processes.py)."""

from __future__ import annotations

import math

import pytest
import torch

from mling.training.sigmoid_loss import BIAS_INIT, sigmoid_loss

E1, E2 = [1.0, 0.0], [0.0, 1.0]
IDENTITY = torch.tensor([E1, E2])
LOG2 = math.log(2)


def softplus(x: float) -> float:
    """-log sigmoid(-x): the cost of logit x for a negative pair (of -x for a positive)."""
    return math.log1p(math.exp(x))


def test_hand_computed_two_pairs():
    # logits = the identity (t = 1, b = 0). The 2 positives cost -log sigmoid(1) =
    # log(1 + 1/e) = 0.31326 each, the 2 negatives -log sigmoid(-0) = log 2 each; / N = 2.
    loss = sigmoid_loss(IDENTITY, IDENTITY, temperature=1.0, bias=0.0)
    assert loss.item() == pytest.approx((2 * softplus(-1) + 2 * LOG2) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(1.00641, abs=1e-5)


def test_at_siglips_initialization_a_match_costs_log_2():
    # t = 0.1 and b = -10: a matching pair's logit is 10 x 1 - 10 = 0 (log 2), an orthogonal
    # negative's is -10 (log(1 + e^-10) = 4.54e-5): the negatives start almost free.
    loss = sigmoid_loss(IDENTITY, IDENTITY, temperature=0.1, bias=BIAS_INIT)
    assert BIAS_INIT == -10.0
    assert loss.item() == pytest.approx((2 * LOG2 + 2 * softplus(-10)) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(0.693193, abs=1e-6)


def test_hand_computed_gradients_of_bias_and_temperature():
    # d/db of -log sigmoid(z l) is -z sigmoid(-z l): positives -sigmoid(-1) = -0.26894 each,
    # negatives +sigmoid(0) = 0.5 each; sum 0.46212, / N = 0.23106. d/dt: only the positives
    # have a cosine: -0.26894 x 1 x (-1 / t^2) = 0.26894 each at t = 1; 2 of them / N: 0.26894
    # (positive: a colder temperature lowers the loss of a perfect match).
    temperature = torch.tensor(1.0, requires_grad=True)
    bias = torch.tensor(0.0, requires_grad=True)
    sigmoid_loss(IDENTITY, IDENTITY, temperature, bias).backward()
    positive = 1 / (1 + math.e)  # sigmoid(-1) = 0.26894
    assert bias.grad.item() == pytest.approx((1 - 2 * positive) / 2, abs=1e-6)
    assert bias.grad.item() == pytest.approx(0.23106, abs=1e-5)
    assert temperature.grad.item() == pytest.approx(positive, abs=1e-6)


def test_hand_computed_two_names_per_image_are_both_positives():
    # Images [e1, e2], K = 2 captions each, image-major: image 0 [e1, e2], image 1 [e2, e2].
    # Logits (t = 1, b = 0): image 0 [1, 0, 0, 0], image 1 [0, 1, 1, 1]; labels image 0
    # [+, +, -, -], image 1 [-, -, +, +]. Image 0: 0.31326 + log 2 + log 2 + log 2; image 1:
    # log 2 + log(1 + e) (a negative at 1) + 0.31326 + 0.31326. / (N K) = 4: 1.25641.
    image, text = IDENTITY, torch.tensor([E1, E2, E2, E2])
    loss = sigmoid_loss(image, text, 1.0, 0.0)
    first = softplus(-1) + 3 * LOG2
    second = LOG2 + softplus(1) + 2 * softplus(-1)
    assert loss.item() == pytest.approx((first + second) / 4, abs=1e-6)
    assert loss.item() == pytest.approx(1.25641, abs=1e-5)


def test_hand_computed_rows_of_one_image_are_positives():
    # Rows 0 and 1 show one image (ids 7, 7), row 2 another. Images [e1, e1, e2], captions
    # [e1, e2, e2]: logits rows [1, 0, 0], [1, 0, 0], [0, 1, 1]; labels [+, +, -] for rows 0
    # and 1, [-, -, +] for row 2. Rows 0, 1: 0.31326 + 2 log 2; row 2: log 2 + log(1 + e) +
    # 0.31326. / N = 3: 1.90626.
    image, text = torch.tensor([E1, E1, E2]), torch.tensor([E1, E2, E2])
    loss = sigmoid_loss(image, text, 1.0, 0.0, image_ids=torch.tensor([7, 7, 3]))
    rows = 2 * (softplus(-1) + 2 * LOG2) + LOG2 + softplus(1) + softplus(-1)
    assert loss.item() == pytest.approx(rows / 3, abs=1e-6)
    assert loss.item() == pytest.approx(1.90626, abs=1e-5)
    # distinct ids are the paper's loss
    distinct = sigmoid_loss(image, text, 1.0, 0.0, image_ids=torch.tensor([1, 2, 3]))
    assert distinct.item() == pytest.approx(sigmoid_loss(image, text, 1.0, 0.0).item())


def test_gradients_equal_autograd_of_the_formula():
    # the ring's backward is written by hand: it must be the formula's derivative
    generator = torch.Generator().manual_seed(3)
    image = torch.nn.functional.normalize(torch.randn(4, 3, generator=generator), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(8, 3, generator=generator), dim=-1)
    ids = torch.tensor([0, 1, 1, 2])
    leaves = [t.clone().double().requires_grad_() for t in (image, text)]
    scalars = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.2, -3.0)]
    sigmoid_loss(*leaves, *scalars, image_ids=ids).backward()
    mine = [t.grad for t in leaves + scalars]
    for t in leaves + scalars:
        t.grad = None
    z = (ids[:, None] == ids.repeat_interleave(2)[None, :]).double() * 2 - 1
    logits = leaves[0] @ leaves[1].T / scalars[0] + scalars[1]
    (-torch.nn.functional.logsigmoid(z * logits).sum() / 8).backward()
    for got, leaf in zip(mine, leaves + scalars, strict=True):
        assert torch.allclose(got, leaf.grad, atol=1e-12)


def test_float32_for_half_precision_and_refuses_uneven_captions():
    loss = sigmoid_loss(IDENTITY.bfloat16(), IDENTITY.bfloat16(), 1.0, 0.0)
    assert loss.dtype == torch.float32
    with pytest.raises(ValueError, match="3 captions for 2 images"):
        sigmoid_loss(IDENTITY, torch.tensor([E1, E2, E2]), 1.0, 0.0)
