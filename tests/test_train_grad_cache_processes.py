"""K processes with a batch of m each == one process with K micro-batches of m (and mixes).

The test launches this file with `accelerate launch --multi_gpu --num_processes P` (CPU and
gloo here). Each process takes its share of a fixed global batch and runs the training step's
backward (backward_global_batch) through the DDP-wrapped tiny model in training mode, batch norm
normalizing each process's (or micro-batch's) own rows. Rank 0 saves the loss, the DDP-averaged
gradients and the running statistics averaged over processes; one process with micro-batches
must give the same within float tolerance. Dropout and drop-connect are off: processes seed
them per rank (their replay between passes is tested in test_train_grad_cache.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mling.training.batch_norm import updating_norms
from mling.training.grad_cache import backward_global_batch
from mling.training.loss import contrastive_loss
from mling.training.model import DualEncoder, build_model
from mling.training.recipe import load_recipe

GLOBAL = 8  # pairs in the global batch
VOCAB = 60


def encoder() -> DualEncoder:
    recipe = load_recipe("tiny", {"image_size": 32, "max_length": 12})
    return DualEncoder(build_model(recipe.model, VOCAB, seed=0)).train()


def global_batch() -> dict:
    generator = torch.Generator().manual_seed(5)
    input_ids = torch.randint(4, VOCAB, (GLOBAL, 12), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1::2, 6:] = 0
    pixels = torch.randint(0, 256, (GLOBAL, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return {"pixel_values": pixels, "input_ids": input_ids, "attention_mask": attention_mask}


def loss_fn(image_embeds, text_embeds, temperature, image_ids=None):
    return contrastive_loss(image_embeds, text_embeds, temperature, 0.1, image_ids)


def step(accelerator, model, batch, micro_batch) -> dict[str, torch.Tensor]:
    """One step's backward -> loss, gradients and running statistics (mean over processes)."""
    loss = backward_global_batch(accelerator, model, batch, loss_fn, micro_batch)
    inner = accelerator.unwrap_model(model)
    out = {"loss": loss.reshape(1)}
    out.update(
        {f"grad.{n}": p.grad.clone() for n, p in inner.named_parameters() if p.grad is not None}
    )
    for i, norm in enumerate(updating_norms(inner)):
        out[f"mean.{i}"] = accelerator.reduce(norm.running_mean.clone(), "mean")
        out[f"var.{i}"] = accelerator.reduce(norm.running_var.clone(), "mean")
    return out


def worker(out: Path, micro_batch: int) -> None:
    """Runs in each process started by accelerate launch."""
    from accelerate import Accelerator
    from safetensors.torch import save_file

    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(encoder())
    share = GLOBAL // accelerator.num_processes
    rows = slice(accelerator.process_index * share, (accelerator.process_index + 1) * share)
    batch = {k: v[rows] for k, v in global_batch().items()}
    result = step(accelerator, model, batch, micro_batch)
    if accelerator.is_main_process:
        save_file(result, str(out))
    accelerator.wait_for_everyone()


def launch(tmp_path: Path, processes: int, micro_batch: int) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from tests.helpers.train_fixtures import free_port  # here: the worker runs without tests/

    out = tmp_path / f"p{processes}-m{micro_batch}.safetensors"
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        __file__, str(out), str(micro_batch),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return load_file(str(out))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("processes", "micro_batch", "one_process_micro_batch"),
    [(2, 0, 4), (4, 0, 2), (2, 2, 2)],
    ids=["K=2", "K=4", "2 processes x 2 micro-batches"],
)
def test_k_processes_equal_one_process_in_k_micro_batches(
    tmp_path, processes, micro_batch, one_process_micro_batch
):
    from accelerate import Accelerator

    launched = launch(tmp_path, processes, micro_batch)
    single = step(Accelerator(cpu=True), encoder(), global_batch(), one_process_micro_batch)
    assert set(launched) == set(single)
    assert launched["loss"].item() == pytest.approx(single["loss"].item(), rel=1e-5)
    # Relative to each tensor's scale, and to the largest gradient for those whose true value is
    # 0 (a bias right before a batch norm): the runs sum in different orders.
    floor = 1e-6 * max(v.abs().max().item() for k, v in single.items() if k.startswith("grad."))
    for name, value in single.items():
        error = (launched[name] - value).abs().max().item()
        assert error <= 1e-4 * value.abs().max().item() + floor, (name, error)
    for name in (
        "grad.align.temperature",
        "grad.align.text_projection.weight",
        "grad.align.vision_model.embeddings.convolution.weight",
        "grad.align.vision_model.embeddings.batchnorm.weight",
    ):
        assert single[name].abs().max().item() > 1e-5, name  # the comparison is not vacuous


if __name__ == "__main__":
    worker(Path(sys.argv[1]), int(sys.argv[2]))
