"""When batch norm's running statistics move: once per step, whatever recomputes a forward.

In training mode a batch-norm layer normalizes with its batch's own statistics and moves its
running statistics (what evaluation normalizes with) toward them. Two things run a forward
a second time on the same rows: gradient checkpointing's recompute in the backward pass, and
gradient caching's second pass (grad_cache.py). Neither may move the running statistics
again, or their effective momentum silently doubles. And when one process runs a global
batch as K micro-batches, each normalized with its own statistics as K processes would, the
step moves the running statistics once, toward the mean of the K micro-batches' statistics:
exactly the mean of K processes' running statistics after one step each (timm's
`--dist-bn reduce`), where rank 0's alone would keep 1/K of the rows' information.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def updating_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch-norm layers of module that a training-mode forward would update."""
    return [
        m
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        and m.training
        and m.track_running_stats
        and m.running_mean is not None
    ]


@contextlib.contextmanager
def running_stats_frozen(module: nn.Module) -> Iterator[None]:
    """Forwards inside leave every running statistic and batch counter of module as it was.

    Normalization is unchanged (training mode still uses the batch's statistics): momentum 0
    keeps the running statistics bit for bit ((1 - 0) x r + 0 x b = r), and the counter that
    torch increments anyway is put back.
    """
    norms = updating_norms(module)
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, count) in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)


class MeanUpdate:
    """Collects each micro-batch's statistics, then moves the running statistics once.

        update = MeanUpdate(model)
        for rows in micro_batches:
            with update.collecting():
                model(rows)
        update.apply()

    While collecting, each layer runs on fresh copies of its buffers with momentum 1, so a
    forward leaves exactly its batch's mean and unbiased variance there; they are summed and
    the layer's own buffers put back untouched (a graph kept for backward may have saved
    them). apply() then does torch's own update once with their mean: r <- (1 - m) r +
    m mean_k(b_k), with m = momentum, or 1 / (batches tracked + 1) where momentum is None.
    """

    def __init__(self, module: nn.Module):
        self.norms = updating_norms(module)
        self.sums = [
            (
                torch.zeros_like(m.running_mean, dtype=torch.float64),
                torch.zeros_like(m.running_var, dtype=torch.float64),
            )
            for m in self.norms
        ]
        self.batches = 0

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        saved = []
        for m in self.norms:
            saved.append((m.momentum, m.running_mean, m.running_var, m.num_batches_tracked))
            m.momentum = 1.0
            m.running_mean = m.running_mean.clone()
            m.running_var = m.running_var.clone()
            m.num_batches_tracked = m.num_batches_tracked.clone()
        try:
            yield
        finally:
            for m, (momentum, mean, var, count), (mean_sum, var_sum) in zip(
                self.norms, saved, self.sums, strict=True
            ):
                mean_sum += m.running_mean.double()
                var_sum += m.running_var.double()
                m.momentum = momentum
                m.running_mean, m.running_var, m.num_batches_tracked = mean, var, count
        self.batches += 1

    @torch.no_grad()
    def apply(self) -> None:
        """Move from the buffers' current values (under DDP, rank 0's: each forward
        broadcasts them), as one training-mode forward would."""
        if not self.batches:
            return
        for m, (mean_sum, var_sum) in zip(self.norms, self.sums, strict=True):
            weight = m.momentum
            if weight is None:  # a cumulative mean: the one case that reads the count (a sync)
                weight = 1.0 / (int(m.num_batches_tracked) + 1)
            mean = (mean_sum / self.batches).to(m.running_mean)
            var = (var_sum / self.batches).to(m.running_var)
            m.running_mean.mul_(1 - weight).add_(mean * weight)
            m.running_var.mul_(1 - weight).add_(var * weight)
            m.num_batches_tracked.add_(1)
