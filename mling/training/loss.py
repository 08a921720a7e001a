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

    image_embeds, text_embeds: (N, D), L2-normalized, already gathered over all processes.
    temperature: scalar; logits are cosine similarities divided by it. Returns a scalar, the
    sum of the two directions' mean losses (the paper sums; transformers' align_loss averages).
    Computed in float32 whatever the embeddings' precision.

    image_ids: (N,) integers, gathered like the embeddings, or None. Rows with the same id show
    the same image (one image captioned in several languages): each row's target is then spread
    evenly over every row of its image instead of a false negative; all ids distinct is the
    paper's loss exactly.
    """
    # Dividing the (N, D) captions rather than the (N, N) logits spares one N x N tensor,
    # which bounds the global batch on one device once micro-batches bound the rest.
    logits = image_embeds.float() @ (text_embeds.float() / temperature).T
    if image_ids is None:
        targets = torch.arange(logits.shape[0], device=logits.device)
    else:
        same = (image_ids[:, None] == image_ids[None, :]).float()
        targets = same / same.sum(dim=1, keepdim=True)  # symmetric: serves both directions
    image_to_text = F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    text_to_image = F.cross_entropy(logits.T, targets, label_smoothing=label_smoothing)
    return image_to_text + text_to_image
