"""SigLIP's pairwise sigmoid loss, its captions passed from process to process in a ring.

Zhai et al. 2023 ("Sigmoid Loss for Language Image Pre-Training") make every image-caption
pair of the global batch its own binary classification, +1 for a match and -1 otherwise:

    L = -1 / (N K) x sum over images i, captions c of log sigmoid(z_ic (cos_ic / temperature + bias))

No softmax normalizes over the batch, so no process needs the whole batch at once: each holds
its n images and one chunk of n x K captions at a time, and the chunks travel from neighbour
to neighbour (send to rank + 1, receive from rank - 1) until every process has met every
caption; in the backward pass each chunk travels again with the gradient the processes it
visited gave it, and goes home (SigLIP's chunked implementation). Each process holds (n, n K)
logits, never (n, N K); communication is P - 1 chunk passes forward and P backward, overlapped
with the next chunk's logits in the forward.

The value each process returns is P x its share of L (its images' terms), as in loss.py: the
mean over processes is L, and after DDP averages parameter gradients they are exactly L's.

Positives: caption c is a positive of image i when it captions i (each of its K names) or an
image with i's id (`image_ids`: one image in several rows). K = 1 and distinct ids: the paper.
There is no label smoothing: each pair's target is a probability of its own, and SigLIP uses
none (the recipe's `label_smoothing` applies to the softmax loss only).

Temperature and bias: SigLIP multiplies the cosines by exp(t') (t' = log 10 at first) and adds
b (b = -10 at first, so that the many negatives start with a small loss). Here the learnable
temperature divides the cosines, as ALIGN's and transformers' AlignModel's does: temperature =
exp(-t') = 0.1 at first (the recipe's temperature_init with --loss sigmoid), the same function
with the optimizer moving exp(-t') rather than t'. The bias is a training-time term: it shifts
every logit alike, so it changes no ranking, and it lives in the training wrapper
(`DualEncoder.logit_bias`), checkpointed beside the model but never exported.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from mling.training.loss import caption_slots, distributed, gather_with_grad

BIAS_INIT = -10.0  # SigLIP's b at step 0


def _pass_on(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Send each tensor to rank + 1 and receive the same shapes from rank - 1; returns the
    received ones once they arrived. One process: the tensors themselves."""
    return _start_pass(tensors)()


def _start_pass(tensors: list[torch.Tensor]):
    """Start `_pass_on`; returns a function that waits and returns the received tensors (so
    the caller computes while the chunk travels)."""
    rank, world = distributed()
    if world == 1:
        return lambda: tensors
    received = [torch.empty_like(t) for t in tensors]
    ops = [dist.P2POp(dist.isend, t.contiguous(), (rank + 1) % world) for t in tensors]
    ops += [dist.P2POp(dist.irecv, r, (rank - 1) % world) for r in received]
    requests = dist.batch_isend_irecv(ops)

    def wait() -> list[torch.Tensor]:
        for request in requests:
            request.wait()
        return received

    return wait


def _labels(image_ids: torch.Tensor, caption_ids: torch.Tensor, dtype) -> torch.Tensor:
    """(n,) image ids and (m,) caption ids -> (n, m) +1 where they match, -1 elsewhere."""
    return (image_ids[:, None] == caption_ids[None, :]).to(dtype) * 2 - 1


class _SigmoidRing(torch.autograd.Function):
    """The sum of -log sigmoid(z (cos / temperature + bias)) over this process's images and
    every process's captions, the captions coming round the ring; the backward recomputes
    each chunk's logits rather than keeping them (memory of one chunk, not of all P)."""

    @staticmethod
    def forward(ctx, image_embeds, text_embeds, temperature, bias, image_ids, caption_ids):
        rank, world = distributed()
        ctx.save_for_backward(image_embeds, text_embeds, temperature, bias, image_ids, caption_ids)
        m = text_embeds.shape[0]
        total = image_embeds.new_zeros(())
        chunk = text_embeds
        for step in range(world):
            origin = (rank - step) % world  # whose captions this chunk holds
            arriving = _start_pass([chunk]) if step < world - 1 else None
            logits = image_embeds @ chunk.T / temperature + bias  # (n, m)
            labels = _labels(image_ids, caption_ids[origin * m : (origin + 1) * m], logits.dtype)
            total = total - F.logsigmoid(labels * logits).sum()
            if arriving is not None:
                (chunk,) = arriving()
        return total

    @staticmethod
    def backward(ctx, grad_total):
        image_embeds, text_embeds, temperature, bias, image_ids, caption_ids = ctx.saved_tensors
        rank, world = distributed()
        m = text_embeds.shape[0]
        grad_images = torch.zeros_like(image_embeds)
        grad_temperature = torch.zeros_like(temperature)
        grad_bias = torch.zeros_like(bias)
        chunk, grad_chunk = text_embeds, torch.zeros_like(text_embeds)
        for step in range(world):
            origin = (rank - step) % world
            cosines = image_embeds @ chunk.T
            logits = cosines / temperature + bias
            labels = _labels(image_ids, caption_ids[origin * m : (origin + 1) * m], logits.dtype)
            # d(-log sigmoid(z l)) / dl = -z sigmoid(-z l)
            grad_logits = -labels * torch.sigmoid(-labels * logits) * grad_total  # (n, m)
            grad_images += grad_logits @ chunk / temperature
            grad_chunk = grad_chunk + grad_logits.T @ image_embeds / temperature
            grad_temperature -= (grad_logits * cosines).sum() / temperature**2
            grad_bias += grad_logits.sum()
            # the chunk moves on with the gradient it has gathered; after the last step only
            # the gradient travels, one more hop: home to the process the chunk came from
            if step < world - 1:
                chunk, grad_chunk = _pass_on([chunk, grad_chunk])
            else:
                (grad_chunk,) = _pass_on([grad_chunk])
        needs = ctx.needs_input_grad
        return (
            grad_images if needs[0] else None,
            grad_chunk if needs[1] else None,
            grad_temperature if needs[2] else None,
            grad_bias if needs[3] else None,
            None,
            None,
        )


def sigmoid_loss(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    temperature: torch.Tensor | float,
    bias: torch.Tensor | float = BIAS_INIT,
    image_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """SigLIP's loss over the global batch (the module's formula); this process's share x P.

    image_embeds: (n, D) this process's; text_embeds: (n * K, D), K >= 1 captions per image,
    image-major; both L2-normalized. temperature (divides the cosines) and bias: scalars.
    image_ids: (n,) integers or None (each row its own image). With one process: L. Computed
    in float32 (float64 inputs stay float64). Every process must pass the same n and K.
    """
    n = image_embeds.shape[0]
    slots = caption_slots(n, text_embeds.shape[0])
    rank, _ = distributed()
    dtype = torch.promote_types(image_embeds.dtype, torch.float32)
    device = image_embeds.device
    if image_ids is None:
        image_ids = torch.arange(rank * n, (rank + 1) * n, device=device)
    # ids are integers, N of them: gathered whole (the embeddings are not)
    caption_ids = gather_with_grad(image_ids).repeat_interleave(slots)
    temperature = torch.as_tensor(temperature, dtype=dtype, device=device)
    bias = torch.as_tensor(bias, dtype=dtype, device=device)
    total = _SigmoidRing.apply(
        image_embeds.to(dtype),
        text_embeds.to(dtype),
        temperature.to(dtype),
        bias.to(dtype),
        image_ids,
        caption_ids,
    )
    return total / text_embeds.shape[0]  # / (n K): P x (share / (N K))
