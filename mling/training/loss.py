"""ALIGN's contrastive loss over the global batch, computed per process, and the gather that
carries its gradients.

ALIGN (Jia et al., 2021, eq. 1-2) sums two normalized-softmax cross-entropies, image-to-text
and text-to-image, over every pair in the global batch (16,384 pairs from 1,024 TPU cores),
with label smoothing 0.1 and one learnable temperature shared by both directions.

Each process passes its own rows and computes only their terms against the gathered batch (as
open_clip's `local_loss`): its n images against all N x K captions, its n x K captions against
all N images. The (N, N x K) logits of the global batch never exist on one process; each holds
two of (n, N x K). The value returned is P x this process's share of the global loss, so that:

- the mean over the P processes of the returned values is the global loss (the logged loss:
  train_log.py all-reduces it at its logging points);
- the gradients are exactly those of every process computing the global loss, as before: the
  gather's backward sums every process's gradient for this process's rows (P x the global
  loss's), and DDP's mean over P processes leaves the global loss's parameter gradients.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward hands each process the gradient its own rows received from
    every process's loss (all_reduce SUM, then this process's slice).

    Each process's loss depends on every process's rows (its negatives), so the gradient of a
    row is the sum over processes. With each process's loss P x its share of the global loss
    L, its rows get P x dL/d(rows); after DDP averages parameter gradients over P processes
    this is exactly the single-process gradient on the concatenated batch. (all_reduce rather
    than reduce_scatter: gloo has no reduce_scatter.)
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.rows = dist.get_rank(), x.shape[0]
        pieces = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(pieces, x.contiguous())
        return torch.cat(pieces, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def distributed() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) without torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """(B, D) per process -> (P*B, D), rows ordered by rank; gradients flow back to own rows.

    Every process must pass the same B (the loader's batches have static shapes). With one
    process, or without torch.distributed, x is returned as is.
    """
    if distributed()[1] == 1:
        return x
    return _GatherWithGrad.apply(x)


def caption_slots(images: int, captions: int) -> int:
    """K, the captions per image, from the row counts; ValueError when they do not divide."""
    if images == 0 or captions % images:
        raise ValueError(f"{captions} captions for {images} images: need K >= 1 captions per image")
    return captions // images


def contrastive_share(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    temperature: torch.Tensor | float,
    rows: slice,
    label_smoothing: float = 0.1,
    image_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """The terms of images `rows` (and of their captions) in the global contrastive loss.

    image_embeds (N, D), text_embeds (N * K, D) and image_ids (N,) are the global batch;
    rows: a slice of the N images. Returns a scalar: the sum of those images' image-to-text
    terms and of their captions' text-to-image terms, divided by N x K as the global loss's
    means are, so the shares of a partition of the rows add up to the global loss
    (rows = slice(0, N) is it). Memory: two (n, N x K) logits for n rows.
    """
    n_all = image_embeds.shape[0]
    slots = caption_slots(n_all, text_embeds.shape[0])
    own_images = image_embeds[rows].float()
    own_texts = text_embeds[rows.start * slots : rows.stop * slots].float()
    n = own_images.shape[0]
    # Dividing the captions rather than the logits spares one large tensor.
    image_to_text = own_images @ (text_embeds.float() / temperature).T  # (n, N*K)
    image_to_text = image_to_text.view(n, n_all, slots)  # [image, caption's image, slot]
    text_to_image = (own_texts / temperature) @ image_embeds.float().T  # (n*K, N)
    text_to_image = text_to_image.view(n, slots, n_all)  # [caption's image, slot, image]
    own = torch.arange(rows.start, rows.start + n, device=own_images.device)
    if image_ids is None:
        targets = own
    else:
        same = (image_ids[own][:, None] == image_ids[None, :]).float()
        targets = same / same.sum(dim=1, keepdim=True)  # symmetric: serves both directions
    total = own_images.new_zeros(())
    for slot in range(slots):
        for scores in (image_to_text[:, :, slot], text_to_image[:, slot, :]):
            total = total + F.cross_entropy(
                scores, targets, label_smoothing=label_smoothing, reduction="sum"
            )
    return total / (n_all * slots)


def contrastive_loss(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    temperature: torch.Tensor | float,
    label_smoothing: float = 0.1,
    image_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Summed image-to-text and text-to-image softmax cross-entropy, pair i <-> i positive,
    over the global batch; this process's share of it x P (see the module's docstring).

    image_embeds: (n, D) this process's; text_embeds: (n * K, D), K >= 1 captions per image,
    image-major (rows i*K .. i*K+K-1 caption image i); both L2-normalized. The loss gathers
    every process's rows (N = P x n) itself. temperature: scalar; logits are cosine
    similarities divided by it. With one process: the sum of the two directions' mean losses
    (the paper sums; transformers' align_loss averages). Computed in float32 whatever the
    embeddings' precision.

    K > 1 (an image's names in K languages): the mean over the K caption slots of the loss of
    the N images against their k-th captions. Each slot holds one caption per image, so an
    image's other captions are never its negatives; K = 1 is the paper's loss exactly.

    image_ids: (n,) integers, this process's, or None. Rows with the same id show the same
    image (one image captioned in several languages): each row's target is then spread evenly
    over every row of its image instead of a false negative; all ids distinct is the paper's
    loss exactly.
    """
    return align_loss(image_embeds, text_embeds, temperature, label_smoothing, image_ids)


def text_text_share(
    text_embeds: torch.Tensor,
    caption_ids: torch.Tensor,
    temperature: torch.Tensor | float,
    rows: slice,
    label_smoothing: float = 0.1,
) -> torch.Tensor:
    """The terms of captions `rows` in the global text-text loss (`text_text_loss`).

    text_embeds (M, D) and caption_ids (M,) are the global batch; rows: a slice of the M
    captions. Returns a scalar: the sum of those captions' terms divided by the number of
    captions in the whole batch that have a positive, so the shares of a partition add up to
    the global loss. Memory: one (m, M) logits for m rows.
    """
    m_all = text_embeds.shape[0]
    if caption_ids.shape != (m_all,):
        raise ValueError(f"caption_ids {tuple(caption_ids.shape)} for {m_all} captions")
    own = torch.arange(m_all, device=text_embeds.device)[rows]
    logits = text_embeds[rows].float() @ (text_embeds.float() / temperature).T  # (m, M)
    self_pair = own[:, None] == torch.arange(m_all, device=logits.device)[None, :]
    log_probs = logits.masked_fill(self_pair, float("-inf")).log_softmax(dim=1)
    log_probs = log_probs.masked_fill(self_pair, 0.0)  # 0 * -inf would be NaN below
    same = (caption_ids[own][:, None] == caption_ids[None, :]) & ~self_pair
    positives = same.sum(dim=1)
    # the denominator counts the whole batch's captions with a positive (an id seen twice),
    # from the sorted ids: no host read, and shapes that do not depend on the data (XLA)
    ordered = caption_ids.sort().values
    counts = torch.searchsorted(ordered, caption_ids, right=True)
    counts = counts - torch.searchsorted(ordered, caption_ids)
    with_positive = (counts > 1).sum().clamp(min=1)  # none: the sum below is 0 as well
    targets = same.float() / positives.clamp(min=1)[:, None]
    others = (~self_pair).float() / max(m_all - 1, 1)
    targets = (1 - label_smoothing) * targets + label_smoothing * others
    per_caption = -(targets * log_probs).sum(dim=1)
    return (per_caption * (positives > 0)).sum() / with_positive


def text_text_loss(
    text_embeds: torch.Tensor,
    caption_ids: torch.Tensor,
    temperature: torch.Tensor | float,
    label_smoothing: float = 0.1,
) -> torch.Tensor:
    """MURAL's bitext task in its in-batch form: captions of one image are positives of each
    other among all the global batch's captions; this process's share x P, as
    `contrastive_loss`.

    text_embeds: (m, D) this process's, L2-normalized; caption_ids: (m,) integers, equal for
    the captions of one image (its names in several languages). Each caption's softmax runs
    over the M - 1 others of the gathered batch (never itself), its target spread evenly over
    the others with its id and smoothed over all M - 1. With one process: the mean over the
    captions that have a positive (0 when none has). The similarity and the positives are
    symmetric, so this one direction equals its transpose: there is no second direction to
    add. Computed in float32.
    """
    if caption_ids.shape != (text_embeds.shape[0],):
        raise ValueError(
            f"caption_ids {tuple(caption_ids.shape)} for {text_embeds.shape[0]} captions"
        )
    rank, world = distributed()
    rows = slice(rank * text_embeds.shape[0], (rank + 1) * text_embeds.shape[0])
    texts, ids = gather_with_grad(text_embeds), gather_with_grad(caption_ids)
    return world * text_text_share(texts, ids, temperature, rows, label_smoothing)


def caption_ids_of(image_ids: torch.Tensor | None, images: int, slots: int, device) -> torch.Tensor:
    """(N,) image ids (None: each row its own image) and K caption slots -> (N * K,) the id
    of each caption, image-major as the text embeddings are."""
    if image_ids is None:
        image_ids = torch.arange(images, device=device)
    return image_ids.repeat_interleave(slots)


def align_loss(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    temperature: torch.Tensor | float,
    label_smoothing: float = 0.1,
    image_ids: torch.Tensor | None = None,
    text_text_weight: float = 0.0,
) -> torch.Tensor:
    """The training loss: `contrastive_loss`, plus text_text_weight x `text_text_loss` over
    the same captions (no extra forward pass, one gather). Weight 0 is the paper's loss
    exactly. Takes this process's rows and returns its share x P, as both terms do."""
    n = image_embeds.shape[0]
    slots = caption_slots(n, text_embeds.shape[0])
    rank, world = distributed()
    images, texts = gather_with_grad(image_embeds), gather_with_grad(text_embeds)
    ids = gather_with_grad(image_ids) if image_ids is not None else None  # integers: no gradient
    rows = slice(rank * n, (rank + 1) * n)
    loss = contrastive_share(images, texts, temperature, rows, label_smoothing, ids)
    if text_text_weight:
        captions = caption_ids_of(ids, images.shape[0], slots, texts.device)
        caption_rows = slice(rows.start * slots, rows.stop * slots)
        loss = loss + text_text_weight * text_text_share(
            texts, captions, temperature, caption_rows, label_smoothing
        )
    return world * loss
