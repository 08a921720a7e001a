"""One step's gradients over the global batch, whole or in micro-batches (gradient caching).

ALIGN's negatives are the whole global batch (16,384 pairs), which seldom fits in memory at
once. Gradient caching (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under
Memory Limited Setup") gives the same gradients in the memory of one micro-batch:

1. embed this process's rows a micro-batch at a time without autograd (no activations kept;
   the first micro-batch keeps its graph, which spares re-running it);
2. compute the loss once over the global batch, with this process's embeddings as leaves
   (the loss gathers, or passes round, every process's itself): its gradient with respect to
   each embedding is cached;
3. re-run each micro-batch with autograd and back-propagate its cached embedding gradients
   (the gradient of sum(embeds * cached)), accumulating parameter gradients; DDP all-reduces
   them with the last micro-batch only. K micro-batches cost K - 1 extra forwards without
   autograd: at most a third more than one pass over the batch, less for small K.

The second pass must compute exactly the first pass's function: each micro-batch replays the
random state its first pass started from (the same dropout and drop-connect masks), batch
norm normalizes each micro-batch with its own statistics in both passes (as K processes with
a batch of m each would), and the running statistics move once per step (batch_norm.py).
Pixels go to the device one micro-batch at a time; what still grows with the global batch is
the embeddings and their gradients ((B, D) each) and the loss's logits ((B/P, B) per
process for the softmax loss, (B/P, B/P) for the sigmoid loss's ring).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from mling.training.batch_norm import MeanUpdate, running_stats_frozen
from mling.training.random_state import RandomState
from mling.training.transforms import to_model_pixels

# (image_embeds, text_embeds, temperature, image_ids=...[, bias=...]), this process's
# embeddings and ids (ids None when the batch has none; bias only for a model that has one) ->
# this process's loss, P x its share of the global loss (loss.py); the loss function does its
# own communication. E.g. functools.partial(contrastive_loss, label_smoothing=0.1).
LossFn = Callable[..., torch.Tensor]


def _loss(loss_fn: LossFn, image_embeds, text_embeds, temperature, bias, image_ids):
    """loss_fn on one set of embeddings, the bias passed only when the model has one."""
    extra = {} if bias is None else {"bias": bias}
    return loss_fn(image_embeds, text_embeds, temperature, image_ids=image_ids, **extra)


def micro_batches(rows: int, micro_batch: int) -> list[slice]:
    """Row slices of one process's batch; micro_batch 0 (or >= rows) is the whole batch."""
    if micro_batch <= 0 or micro_batch >= rows:
        return [slice(0, rows)]
    if rows % micro_batch:
        raise ValueError(f"micro-batch {micro_batch} does not divide the batch of {rows}")
    return [slice(start, start + micro_batch) for start in range(0, rows, micro_batch)]


def _inputs(
    batch: dict, rows: slice, device: torch.device, frozen: frozenset = frozenset()
) -> tuple[torch.Tensor | None, ...]:
    """One micro-batch's model inputs on the device: uint8 pixels move, then become floats.
    A tower named in frozen gets None (the model skips it)."""
    pixels = input_ids = attention_mask = None
    if "image" not in frozen and "image_embeds" not in batch:  # cached: no image tower
        pixels = to_model_pixels(batch["pixel_values"][rows].to(device, non_blocking=True))
    if "text" not in frozen:  # (m, L), or (m, K, L) -> (m * K, L): K captions per image
        width = batch["input_ids"].shape[-1]
        input_ids = batch["input_ids"][rows].reshape(-1, width).to(device, non_blocking=True)
        attention_mask = batch["attention_mask"][rows].reshape(-1, width)
        attention_mask = attention_mask.to(device, non_blocking=True)
    return pixels, input_ids, attention_mask


def _embed(model, batch: dict, rows: slice, device: torch.device, frozen: frozenset = frozenset()):
    """The model's (image_embeds, text_embeds, temperature, bias) for one micro-batch; the
    image embeddings come from the batch when it carries them (the image-embedding cache)."""
    image_embeds, text_embeds, temperature, bias = model(*_inputs(batch, rows, device, frozen))
    if "image_embeds" in batch and "image" not in frozen:
        image_embeds = batch["image_embeds"][rows].to(device, non_blocking=True)
    return image_embeds, text_embeds, temperature, bias


def backward_global_batch(
    accelerator, model, batch: dict, loss_fn: LossFn, micro_batch: int = 0
) -> torch.Tensor:
    """Forward and backward of one step over the global batch; parameter gradients are left in
    .grad (DDP-averaged), ready for the optimizer. Returns this process's loss, detached, on
    the device: P x its share of the global loss, whose mean over processes is the global loss.

    batch: this process's rows, pixel_values (B, 3, S, S) uint8 and input_ids/attention_mask
    (B, L) or (B, K, L) (K captions per image), on the host, and optionally image_ids (B,)
    (rows showing the same image); image_embeds (B, D) instead of pixel_values: a frozen
    image tower's embeddings, read from the image-embedding cache;
    micro_batch: rows per forward pass (0: all B at once), dividing B.
    """
    device = accelerator.device
    slices = micro_batches(batch["input_ids"].shape[0], micro_batch)
    image_ids = batch.get("image_ids")
    if image_ids is not None:
        image_ids = image_ids.to(device)
    if len(slices) == 1:
        loss = _loss(loss_fn, *_embed(model, batch, slices[0], device), image_ids)
        accelerator.backward(loss)
        return loss.detach()

    # 1. embed: the first micro-batch with autograd, its graph kept for step 3 (one forward
    # fewer), the others without activations; record each one's random state; batch norm
    # collects. DDP must not reduce before the last micro-batch: no_sync until then.
    states, image_parts, text_parts = [], [], []
    norms = MeanUpdate(model)
    for i, rows in enumerate(slices):
        states.append(RandomState.capture(device))
        with torch.set_grad_enabled(i == 0), accelerator.no_sync(model), norms.collecting():
            outputs = _embed(model, batch, rows, device)
        if i == 0:
            kept = outputs
        image_parts.append(outputs[0].detach())
        text_parts.append(outputs[1].detach())
    after = RandomState.capture(device)

    # 2. the loss over the global batch, embeddings, temperature and bias as leaves
    image_embeds = torch.cat(image_parts).requires_grad_()
    text_embeds = torch.cat(text_parts).requires_grad_()
    temperature = outputs[2].detach().requires_grad_()
    bias = outputs[3].detach().requires_grad_() if outputs[3] is not None else None
    loss = _loss(loss_fn, image_embeds, text_embeds, temperature, bias, image_ids)
    loss.backward()

    # 3. back-propagate the cached gradients: through the kept graph of the first micro-batch,
    # then re-running each other one with autograd from the random state its first pass drew
    # from; the temperature's and the bias's go with the last one, where DDP reduces
    last = len(slices) - 1
    frozen = getattr(accelerator.unwrap_model(model), "frozen", frozenset())
    per_image = text_embeds.shape[0] // image_embeds.shape[0]  # K captions per image
    for i, (rows, state) in enumerate(zip(slices, states, strict=True)):
        sync = accelerator.no_sync(model) if i < last else contextlib.nullcontext()
        with sync, running_stats_frozen(model):
            if i == 0:
                image_part, text_part, live_temperature, live_bias = kept
                del kept
            else:
                # a frozen tower has no gradient to carry: only the towers that train re-run
                state.restore()
                inputs = _inputs(batch, rows, device, frozen)
                image_part, text_part, live_temperature, live_bias = model(*inputs)
            text_rows = slice(rows.start * per_image, rows.stop * per_image)
            surrogate = sum(
                (part * leaf.grad[at]).sum()
                for part, leaf, at in (
                    (image_part, image_embeds, rows),
                    (text_part, text_embeds, text_rows),
                )
                if part is not None and part.requires_grad
            )
            if i == last:
                surrogate = surrogate + live_temperature * temperature.grad
                if bias is not None:
                    surrogate = surrogate + live_bias * bias.grad
            accelerator.backward(surrogate)
            del image_part, text_part, surrogate  # the graph goes before the next forward
    after.restore()
    # Last: each DDP forward above broadcast rank 0's running statistics, the step's start
    # values; now each process moves its own, as a plain step does (the next forward keeps
    # rank 0's)
    norms.apply()
    return loss.detach()
