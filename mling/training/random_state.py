"""The random numbers a training process draws from: the host's generator and its device's.

torch's generators (CPU, CUDA) answer torch.get_rng_state and torch.cuda.get_rng_state;
XLA (a TPU) keeps one seed per device inside torch_xla, which neither torch.manual_seed nor
those reach. `device_random` gives every device the face torch.cuda has, for gradient
caching's replay; `seed_xla_step` makes XLA's masks a function of the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


class XlaRandom:
    """torch_xla's seed for the current device (each random op in a graph advances it, each
    step's sync moves it on) as torch.cuda's get_rng_state / set_rng_state / manual_seed. The
    state is the seed itself, a Python int: it spans all 64 unsigned bits, which no torch
    integer dtype reads back as a number."""

    @staticmethod
    def get_rng_state() -> int:
        import torch_xla.core.xla_model as xm

        return xm.get_rng_state()

    @staticmethod
    def set_rng_state(state: int) -> None:
        import torch_xla.core.xla_model as xm

        xm.set_rng_state(state)

    @staticmethod
    def manual_seed(seed: int) -> None:
        import torch_xla.core.xla_model as xm

        xm.set_rng_state(seed)


def device_random(device: torch.device):
    """torch.cuda, torch.xpu, XlaRandom, ... for an accelerator device; None on the CPU."""
    if device.type == "cpu":
        return None
    if device.type == "xla":
        return XlaRandom
    backend = getattr(torch, device.type, None)
    return backend if hasattr(backend, "get_rng_state") else None


def seed_xla_step(device: torch.device, process_seed: int, step: int) -> None:
    """Under XLA (a TPU), seed the step's dropout and drop-connect from the process's seed and
    the step alone. XLA's seed moves on at every sync, and how many syncs come between two
    steps depends on the logging points, checkpoints and evaluations between them: without
    this a resumed run would draw other masks than the uninterrupted run did. Elsewhere
    nothing: torch's generators move only when drawn from, and checkpoints keep them."""
    if device.type == "xla":
        XlaRandom.manual_seed(process_seed << 32 | step)


@dataclass
class RandomState:
    """The random state dropout and drop-connect draw from: the host's and the device's."""

    host: torch.Tensor
    device: torch.Tensor | int | None  # torch.cuda's state tensor; XLA's seed
    device_type: str

    @classmethod
    def capture(cls, device: torch.device) -> RandomState:
        backend = device_random(device)
        return cls(torch.get_rng_state(), backend.get_rng_state() if backend else None, device.type)

    def restore(self) -> None:
        torch.set_rng_state(self.host)
        backend = device_random(torch.device(self.device_type))
        if backend and self.device is not None:
            backend.set_rng_state(self.device)
