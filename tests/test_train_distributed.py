"""Two processes with batch B give the loss and gradients of one process with the 2B batch.

The test launches this file with `accelerate launch --multi_gpu --num_processes 2` (CPU and
gloo here). Each process embeds its half of a fixed batch through the DDP-wrapped tiny model,
passes them to ALIGN's loss, which gathers the others' itself and computes its own rows'
share; rank 0 saves the mean of the processes' losses and the DDP-averaged gradients, which
must equal single-process ones on the whole batch.
Batch norm uses running statistics (eval mode): in training mode it normalizes each process's
own rows, which no gather changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mling.training.loss import contrastive_loss
from mling.training.model import DualEncoder, build_model
from mling.training.recipe import load_recipe

PER_PROCESS = 4  # pairs per process; the single-process reference sees 2 x 4
VOCAB = 50


def tiny_encoder() -> DualEncoder:
    """The tiny model in eval mode, batch norm statistics set from the whole fixed batch (at
    initialization they are 0/1 while activations are ~1e-5, which would vanish the image tower)."""
    recipe = load_recipe("tiny", {"image_size": 32})
    encoder = DualEncoder(build_model(recipe.model, VOCAB, seed=0))
    for module in encoder.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one batch sets the statistics
    with torch.no_grad():
        encoder.train()(*fixed_batch(2 * PER_PROCESS))
    return encoder.eval()


def fixed_batch(rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    pixels = torch.rand(rows, 3, 32, 32, generator=generator) * 2 - 1
    input_ids = torch.randint(4, VOCAB, (rows, 12), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[:, 8:] = 0
    return pixels, input_ids, attention_mask


def loss_and_gradients(model: torch.nn.Module, batch, named) -> tuple[torch.Tensor, dict]:
    image_embeds, text_embeds, temperature, _ = model(*batch)
    loss = contrastive_loss(image_embeds, text_embeds, temperature)
    loss.backward()
    gradients = {name: p.grad.detach().clone() for name, p in named if p.grad is not None}
    return loss.detach().reshape(1), gradients


def worker(out: Path) -> None:
    """Runs in each of the 2 processes started by accelerate launch."""
    from accelerate import Accelerator
    from safetensors.torch import save_file

    accelerator = Accelerator(cpu=True)
    encoder = tiny_encoder()
    model = accelerator.prepare(encoder)
    rank = accelerator.process_index
    rows = slice(rank * PER_PROCESS, (rank + 1) * PER_PROCESS)
    batch = tuple(t[rows] for t in fixed_batch(2 * PER_PROCESS))
    loss, gradients = loss_and_gradients(model, batch, encoder.named_parameters())
    loss = accelerator.reduce(loss, "mean")  # each process's is P x its share: the mean is all
    if accelerator.is_main_process:
        save_file({"loss": loss, **{f"grad.{k}": v for k, v in gradients.items()}}, str(out))
    accelerator.wait_for_everyone()


@pytest.mark.slow
def test_two_processes_match_one_process_on_the_concatenated_batch(tmp_path):
    from safetensors.torch import load_file

    from tests.helpers.train_fixtures import free_port  # here: the worker runs without tests/

    out = tmp_path / "two_processes.safetensors"
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        __file__, str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    two = load_file(str(out))

    encoder = tiny_encoder()
    loss, gradients = loss_and_gradients(
        encoder, fixed_batch(2 * PER_PROCESS), encoder.named_parameters()
    )
    assert two["loss"].item() == pytest.approx(loss.item(), rel=1e-5)
    assert set(gradients) == {k.removeprefix("grad.") for k in two if k != "loss"}
    for name, gradient in gradients.items():
        # Tolerance relative to each tensor's scale: the two runs sum in different orders, so
        # entries near zero differ by float noise far above their own size (attention key
        # biases have a true gradient of 0 and come out as +-1e-11 either way).
        error = (two[f"grad.{name}"] - gradient).abs().max().item()
        assert error <= 1e-4 * gradient.abs().max().item() + 1e-9, (name, error)
    for name in (
        "align.temperature",
        "align.text_projection.weight",
        "align.vision_model.embeddings.convolution.weight",
    ):
        assert gradients[name].abs().max().item() > 1e-4, name  # the comparison is not vacuous


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
