"""Non-finite losses, gradients and weights: noticed on the device, refused before anything is saved.

A NaN or an infinity in one step's loss or gradient norm poisons every weight after it. Reading
them every step would be a host sync per step on an accelerator, so `FiniteWatch` keeps the
first step that was not finite in a device tensor, and the loop reads it where it already syncs
(its logging points) and before every checkpoint, evaluation and export. The trade-off: at most
`--log-every` steps are trained past the first NaN, and thrown away, since nothing is saved
from them. `check_finite` is the last guard, in every export, whoever calls it.
"""

from __future__ import annotations

import torch

from mling.common.errors import InputError

DIVERGED_EXIT = 3  # train.py's exit code when training stops on a non-finite value


class NonFiniteError(InputError):
    """Weights holding NaN or infinity, named in one line (never exported)."""


def nonfinite_tensors(state: dict[str, torch.Tensor]) -> list[str]:
    """The names of the tensors in a state dict that hold a NaN or an infinity (one host read
    for all of them: on an accelerator, one sync instead of one per tensor)."""
    if not state:
        return []
    finite = torch.stack([torch.isfinite(t.detach()).all() for t in state.values()]).tolist()
    return [name for name, ok in zip(state, finite, strict=True) if not ok]


def check_finite(model: torch.nn.Module, what: str) -> None:
    """NonFiniteError naming the first non-finite tensors of `model` (`what` names it)."""
    bad = nonfinite_tensors(model.state_dict())
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise NonFiniteError(
            f"{what} holds NaN or infinite weights ({', '.join(bad[:3])}{more}); not exported: "
            "export an earlier checkpoint"
        )


class FiniteWatch:
    """The first step whose loss, gradient norm or weights were not finite (0: none yet), kept
    on the device: observing never waits for the accelerator. The step count lives on the
    device too: a step number passed in from the host would be a new value in every step's
    graph (XLA, a TPU, compiles a 1 into the graph as a constant, and may merge a value equal
    to another input with it: either way a new graph)."""

    def __init__(self, device: torch.device, step: int = 0) -> None:
        """`step`: the steps done before this watch starts (a resumed run's)."""
        self.first_bad = torch.zeros((), dtype=torch.long, device=device)
        self.step = torch.full((), step, dtype=torch.long, device=device)

    def _mark(self, bad: torch.Tensor) -> None:
        self.first_bad += ((self.first_bad == 0) & bad).long() * self.step

    def observe(self, *values: torch.Tensor | None) -> None:
        """The next step's loss and gradient norm (None: not checked, e.g. fp16's scaler skips
        steps with infinite gradients itself)."""
        self.step += 1
        checked = [torch.isfinite(v.detach()).all() for v in values if v is not None]
        if checked:
            self._mark(~torch.stack(checked).all())

    def observe_weights(self, model: torch.nn.Module) -> None:
        """Every parameter and buffer of `model` after the step last observed, before it is
        saved or evaluated."""
        checked = [torch.isfinite(t.detach()).all() for t in model.state_dict().values()]
        if checked:
            self._mark(~torch.stack(checked).all())
