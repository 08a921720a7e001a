"""ALIGN's contrastive loss over the global batch, and the gather that carries its gradients.

ALIGN (Jia et al., 2021, eq. 1-2) sums two normalized-softmax cross-entropies, image-to-text
and text-to-image, over every pair in the global batch (16,384 pairs from 1,024 TPU cores),
with label smoothing 0.1 and one learnable temperature shared by both directions.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward hands each process the gradient its own rows received from
    every process's copy of the loss (all_reduce SUM, then this process's slice).

    Every process computes the same global loss L, so its rows get P x dL/d(rows); after DDP
    averages parameter gradients over P processes this is exactly the single-process gradient
    on the concatenated batch. (all_reduce rather than reduce_scatter: gloo has no reduce_scatter.)
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


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """(B, D) per process -> (P*B, D), rows ordered by rank; gradients flow back to own rows.

    Every process must pass the same B (the loader's batches have static shapes). With one
    process, or without torch.distributed, x is returned as is.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


def contrastive_loss(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    temperature: torch.Tensor | float,
    label_smoothing: float = 0.1,
    image_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Summed image-to-text and text-to-image softmax cross-entropy, pair i <-> i positive.

    image_embeds: (N, D); text_embeds: (N * K, D), K >= 1 captions per image, image-major (rows
    i*K .. i*K+K-1 caption image i); both L2-normalized, already gathered over all processes.
    temperature: scalar; logits are cosine similarities divided by it. Returns a scalar, the
    sum of the two directions' mean losses (the paper sums; transformers' align_loss averages).
    Computed in float32 whatever the embeddings' precision.

    K > 1 (an image's names in K languages): the mean over the K caption slots of the loss of
    the N images against their k-th captions. Each slot holds one caption per image, so an
    image's other captions are never its negatives; K = 1 is the paper's loss exactly.

    image_ids: (N,) integers, gathered like the embeddings, or None. Rows with the same id show
    the same image (one image captioned in several languages): each row's target is then spread
    evenly over every row of its image instead of a false negative; all ids distinct is the
    paper's loss exactly.
    """
    n = image_embeds.shape[0]
    if n == 0 or text_embeds.shape[0] % n:
        raise ValueError(
            f"{text_embeds.shape[0]} captions for {n} images: need K >= 1 captions per image"
        )
    slots = text_embeds.shape[0] // n
    # Dividing the (N*K, D) captions rather than the logits spares one large tensor, which
    # bounds the global batch on one device once micro-batches bound the rest.
    logits = image_embeds.float() @ (text_embeds.float() / temperature).T  # (N, N*K)
    logits = logits.view(n, n, slots)  # [image, caption's image, slot]
    if image_ids is None:
        targets = torch.arange(n, device=logits.device)
    else:
        same = (image_ids[:, None] == image_ids[None, :]).float()
        targets = same / same.sum(dim=1, keepdim=True)  # symmetric: serves both directions
    total = logits.new_zeros(())
    for slot in range(slots):
        scores = logits[:, :, slot]
        image_to_text = F.cross_entropy(scores, targets, label_smoothing=label_smoothing)
        text_to_image = F.cross_entropy(scores.T, targets, label_smoothing=label_smoothing)
        total = total + image_to_text + text_to_image
    return total / slots


def text_text_loss(
    text_embeds: torch.Tensor,
    caption_ids: torch.Tensor,
    temperature: torch.Tensor | float,
    label_smoothing: float = 0.1,
) -> torch.Tensor:
    """MURAL's bitext task in its in-batch form: captions of one image are positives of each
    other among all the batch's captions.

    text_embeds: (M, D) L2-normalized, gathered; caption_ids: (M,) integers, equal for the
    captions of one image (its names in several languages). Each caption's softmax runs over
    the M - 1 others (never itself), its target spread evenly over the others with its id and
    smoothed over all M - 1. Returns the mean over the captions that have a positive (0 when
    none has). The similarity and the positives are symmetric, so this one direction equals
    its transpose: there is no second direction to add. Computed in float32.
    """
    m = text_embeds.shape[0]
    if caption_ids.shape != (m,):
        raise ValueError(f"caption_ids {tuple(caption_ids.shape)} for {m} captions")
    text_embeds = text_embeds.float()
    logits = text_embeds @ (text_embeds / temperature).T  # (M, M)
    self_pair = torch.eye(m, dtype=torch.bool, device=logits.device)
    log_probs = logits.masked_fill(self_pair, float("-inf")).log_softmax(dim=1)
    log_probs = log_probs.masked_fill(self_pair, 0.0)  # 0 * -inf would be NaN below
    same = (caption_ids[:, None] == caption_ids[None, :]) & ~self_pair
    positives = same.sum(dim=1)
    has = (positives > 0).float()
    targets = same.float() / positives.clamp(min=1)[:, None]
    others = (~self_pair).float() / max(m - 1, 1)
    targets = (1 - label_smoothing) * targets + label_smoothing * others
    per_caption = -(targets * log_probs).sum(dim=1)
    # a masked mean, not per_caption[has].mean(): no host read, and a shape XLA (a TPU) knows
    return (per_caption * has).sum() / has.sum().clamp(min=1)


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
    the same captions (no extra forward pass). Weight 0 is the paper's loss exactly."""
    loss = contrastive_loss(image_embeds, text_embeds, temperature, label_smoothing, image_ids)
    if text_text_weight:
        n = image_embeds.shape[0]
        ids = caption_ids_of(image_ids, n, text_embeds.shape[0] // n, text_embeds.device)
        loss = loss + text_text_weight * text_text_loss(
            text_embeds, ids, temperature, label_smoothing
        )
    return loss
