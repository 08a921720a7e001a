"""The optimizer: LAMB (the paper) or AdamW, with weight decay on weights only."""

from __future__ import annotations

import torch
from torch import nn

from mling.recipe import OptimConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: matrices and kernels (ndim >= 2) decay; biases, norms and the temperature
    (ndim <= 1) do not. Frozen parameters are left out."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """LAMB from timm (layer-wise trust ratio on the decayed group, as NVIDIA's and TF's LAMB
    treat excluded parameters) or torch AdamW. The learning rate is set every step by lr_at."""
    groups = param_groups(model, cfg.weight_decay)
    betas = (cfg.beta1, cfg.beta2)
    if cfg.optimizer == "lamb":
        from timm.optim import Lamb

        clip = cfg.max_grad_norm or None
        return Lamb(groups, lr=cfg.lr, betas=betas, eps=cfg.eps, max_grad_norm=clip)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=betas, eps=cfg.eps)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; use --optimizer lamb or adamw")
