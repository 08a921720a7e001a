"""The losses per process on 2 and 4 gloo processes equal the global loss on one process.

Each process passes only its own rows (tests/helpers/loss_processes.py spawns them); the mean
of the processes' values must be the global loss, each process's rows must receive P x the
global loss's gradient (DDP then averages over P: exactly today's parameter gradients), and
the mean of their temperature and bias gradients must be the global ones. The references
below are the loss before it went per process (the (N, N x K) logits on one process) and
SigLIP's formula written out, both on the whole batch.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.helpers.loss_processes import CASES, IMAGES, global_batch, run


def global_softmax(images, texts, temperature, image_ids, label_smoothing, text_text_weight):
    """The loss as it was: every process held the gathered batch and computed all of it."""
    n = images.shape[0]
    slots = texts.shape[0] // n
    logits = (images.float() @ (texts.float() / temperature).T).view(n, n, slots)
    if image_ids is None:
        targets = torch.arange(n)
    else:
        same = (image_ids[:, None] == image_ids[None, :]).float()
        targets = same / same.sum(dim=1, keepdim=True)
    total = 0
    for slot in range(slots):
        scores = logits[:, :, slot]
        total = total + F.cross_entropy(scores, targets, label_smoothing=label_smoothing)
        total = total + F.cross_entropy(scores.T, targets, label_smoothing=label_smoothing)
    loss = total / slots
    if text_text_weight:
        ids = (image_ids if image_ids is not None else torch.arange(n)).repeat_interleave(slots)
        m = texts.shape[0]
        pair = texts.float() @ (texts.float() / temperature).T
        self_pair = torch.eye(m, dtype=torch.bool)
        log_probs = pair.masked_fill(self_pair, float("-inf")).log_softmax(dim=1)
        log_probs = log_probs.masked_fill(self_pair, 0.0)
        same = (ids[:, None] == ids[None, :]) & ~self_pair
        has = same.sum(dim=1) > 0
        target = same.float() / same.sum(dim=1).clamp(min=1)[:, None]
        target = (1 - label_smoothing) * target + label_smoothing * (~self_pair).float() / (m - 1)
        loss = loss + text_text_weight * (-(target * log_probs).sum(dim=1))[has].mean()
    return loss


def global_sigmoid(images, texts, temperature, bias, image_ids):
    """SigLIP: -1/(N K) sum of log sigmoid(z (cos / t + b)), z = +1 for the image's captions."""
    n = images.shape[0]
    slots = texts.shape[0] // n
    ids = image_ids if image_ids is not None else torch.arange(n)
    z = (ids[:, None] == ids.repeat_interleave(slots)[None, :]).double() * 2 - 1
    return -F.logsigmoid(z * (images @ texts.T / temperature + bias)).sum() / (n * slots)


def reference(name: str) -> dict[str, torch.Tensor]:
    kind, slots, ids, options = CASES[name]
    images, texts = (t.clone().requires_grad_() for t in global_batch(slots))
    temperature = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-1.5, dtype=torch.float64, requires_grad=True)
    if kind == "sigmoid":
        loss = global_sigmoid(images, texts, temperature, bias, ids)
    else:
        loss = global_softmax(
            images, texts, temperature, ids, options.get("label_smoothing", 0.1),
            options.get("text_text_weight", 0.0),
        )  # fmt: skip
    loss.backward()
    out = {
        "loss": loss,
        "images": images.grad,
        "texts": texts.grad,
        "temperature": temperature.grad,
    }
    if kind == "sigmoid":
        out["bias"] = bias.grad
    return out


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("name", list(CASES))
def test_per_process_loss_equals_the_global_loss(world, name):
    ranks = run(world)
    expected = reference(name)
    got = {key: [r[f"{name}.{key}"] for r in ranks] for key in expected}
    assert IMAGES // world < IMAGES  # each process passed a part of the batch, not all of it
    tolerance = 1e-12 if CASES[name][0] == "sigmoid" else 1e-5  # float64 / float32 inside
    # the mean over processes is the global loss: what the log shows
    loss = torch.stack(got["loss"]).double().mean()
    assert loss.item() == pytest.approx(expected["loss"].item(), rel=tolerance)
    # the processes' values differ: each computed its own rows only
    assert len({round(v.item(), 6) for v in got["loss"]}) > 1
    # each process's rows: P x the global gradient (DDP's mean divides by P)
    for rows in ("images", "texts"):
        stacked = torch.cat(got[rows]).double()
        scale = expected[rows].abs().max().item()
        assert (stacked - world * expected[rows]).abs().max().item() <= tolerance * world * scale
    # shared scalars: the mean over processes, as DDP averages them
    for scalar in ("temperature", "bias"):
        if scalar in expected:
            mean = torch.stack(got[scalar]).double().mean().item()
            assert mean == pytest.approx(expected[scalar].item(), rel=tolerance, abs=1e-12)
            assert abs(expected[scalar].item()) > 1e-3  # not a vacuous comparison
