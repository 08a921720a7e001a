"""The optimizer: LAMB (the paper) or AdamW, with weight decay on weights only."""

from __future__ import annotations

import torch
from torch import nn

from mling.training.recipe import OptimConfig


def param_groups(
    model: nn.Module, weight_decay: float, embedding_decay: bool = False
) -> list[dict]:
    """Two groups: matrices and kernels (ndim >= 2) decay; biases, norms and the temperature
    (ndim <= 1) do not. Frozen parameters are left out.

    The word-embedding table goes with the biases unless `embedding_decay`: each step touches
    only the rows of the batch's tokens, and LAMB's trust ratio, computed over the whole table
    (250k rows for ALIGN-mling), shrinks those rows' updates by the share of untouched rows.
    On the demo corpus (8 languages, 3.4k tokens) that alone triples text-to-image R@10 after
    300 steps (15.8 -> 50.2)."""
    sparse = set()
    if not embedding_decay:
        for name, module in model.named_modules():
            if isinstance(module, nn.Embedding) and name.endswith("word_embeddings"):
                sparse.add(id(module.weight))
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            dense = parameter.ndim >= 2 and id(parameter) not in sparse
            (decay if dense else no_decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """LAMB from timm (layer-wise trust ratio on the decayed group, as NVIDIA's and TF's LAMB
    treat excluded parameters) or torch AdamW. The learning rate is set every step by lr_at."""
    groups = param_groups(model, cfg.weight_decay, cfg.embedding_decay)
    betas = (cfg.beta1, cfg.beta2)
    if cfg.optimizer == "lamb":
        from timm.optim import Lamb

        clip = cfg.max_grad_norm or None
        return Lamb(groups, lr=cfg.lr, betas=betas, eps=cfg.eps, max_grad_norm=clip)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=betas, eps=cfg.eps)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; use --optimizer lamb or adamw")
