"""The paper's learning-rate schedule: linear warm-up from 0 to the peak, then linear decay to 0."""

from __future__ import annotations

from mling.training.recipe import OptimConfig


def lr_at(step: int, cfg: OptimConfig, max_steps: int) -> float:
    """Learning rate for optimizer step `step` (0-based: the first update uses lr_at(0)).

    Rises linearly to cfg.lr over cfg.warmup_steps, reaching it at step warmup_steps, then
    falls linearly to 0 at step cfg.decay_steps (or max_steps when decay_steps is 0).
    """
    end = cfg.decay_steps or max_steps
    if step < cfg.warmup_steps:
        return cfg.lr * step / cfg.warmup_steps
    if end <= cfg.warmup_steps:
        return cfg.lr if step < end else 0.0
    return cfg.lr * max(0.0, (end - step) / (end - cfg.warmup_steps))
