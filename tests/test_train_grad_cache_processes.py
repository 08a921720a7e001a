"""K processes with a batch of m each == one process with K micro-batches of m (and mixes).

The test launches this file with `accelerate launch --multi_gpu --num_processes P` (CPU and
gloo here). Each process takes its share of a fixed global batch and runs the training step's
backward (backward_global_batch) through the DDP-wrapped tiny model in training mode, batch norm
normalizing each process's (or micro-batch's) own rows. Rank 0 saves the loss, the DDP-averaged
gradients and the running statistics averaged over processes; one process with micro-batches
must give the same within float tolerance. Dropout and drop-connect are off: processes seed
them per rank (their replay between passes is tested in test_train_grad_cache.py).

The "text-text" variant trains as the transfer recipe does: the image tower frozen and its
embeddings read from the batch (the image-embedding cache), two captions per image, image ids
that repeat, and the text-text term on: its gradients must cross processes the same way.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mling.training.batch_norm import updating_norms
from mling.training.grad_cache import backward_global_batch
from mling.training.loss import align_loss
from mling.training.model import DualEncoder, build_model
from mling.training.pretrained import freeze
from mling.training.recipe import load_recipe
from mling.training.sigmoid_loss import BIAS_INIT, sigmoid_loss

GLOBAL = 8  # pairs in the global batch
VOCAB = 60


VARIANTS = ("paper", "text-text", "sigmoid")


def encoder(variant: str = "paper") -> DualEncoder:
    recipe = load_recipe("tiny", {"image_size": 32, "max_length": 12})
    align = build_model(recipe.model, VOCAB, seed=0)
    frozen = ("image",) if variant == "text-text" else ()
    freeze(align, list(frozen))
    bias = BIAS_INIT if variant == "sigmoid" else None
    return DualEncoder(align, frozen=frozen, logit_bias=bias).train()


def global_batch(variant: str = "paper") -> dict:
    generator = torch.Generator().manual_seed(5)
    if variant == "text-text":  # 2 captions per image, cached image embeddings, repeated ids
        input_ids = torch.randint(4, VOCAB, (GLOBAL, 2, 12), generator=generator)
        attention_mask = torch.ones_like(input_ids)
        attention_mask[1::2, :, 6:] = 0
        image_embeds = torch.nn.functional.normalize(torch.randn(GLOBAL, 80, generator=generator))
        return {"image_embeds": image_embeds, "input_ids": input_ids,
                "attention_mask": attention_mask,
                "image_ids": torch.tensor([0, 0, 1, 2, 3, 3, 3, 4])}  # fmt: skip
    input_ids = torch.randint(4, VOCAB, (GLOBAL, 12), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1::2, 6:] = 0
    pixels = torch.randint(0, 256, (GLOBAL, 3, 32, 32), dtype=torch.uint8, generator=generator)
    batch = {"pixel_values": pixels, "input_ids": input_ids, "attention_mask": attention_mask}
    if variant == "sigmoid":  # rows of one image across the processes' boundary
        batch["image_ids"] = torch.tensor([0, 1, 2, 3, 3, 4, 5, 6])
    return batch


def loss_fn(image_embeds, text_embeds, temperature, image_ids=None, text_text_weight=0.0):
    return align_loss(image_embeds, text_embeds, temperature, 0.1, image_ids, text_text_weight)


def sigmoid_fn(image_embeds, text_embeds, temperature, image_ids=None, bias=None):
    return sigmoid_loss(image_embeds, text_embeds, temperature, bias, image_ids)


def step(accelerator, model, batch, micro_batch, variant="paper") -> dict[str, torch.Tensor]:
    """One step's backward -> loss, gradients and running statistics (mean over processes)."""
    weight = 0.5 if variant == "text-text" else 0.0
    chosen = functools.partial(loss_fn, text_text_weight=weight)
    if variant == "sigmoid":
        chosen = sigmoid_fn
    loss = backward_global_batch(accelerator, model, batch, chosen, micro_batch)
    inner = accelerator.unwrap_model(model)
    out = {"loss": accelerator.reduce(loss.reshape(1), "mean")}  # P x each share: the mean
    out.update(
        {f"grad.{n}": p.grad.clone() for n, p in inner.named_parameters() if p.grad is not None}
    )
    for i, norm in enumerate(updating_norms(inner)):
        out[f"mean.{i}"] = accelerator.reduce(norm.running_mean.clone(), "mean")
        out[f"var.{i}"] = accelerator.reduce(norm.running_var.clone(), "mean")
    return out


def worker(out: Path, micro_batch: int, variant: str) -> None:
    """Runs in each process started by accelerate launch."""
    from accelerate import Accelerator
    from safetensors.torch import save_file

    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(encoder(variant))
    share = GLOBAL // accelerator.num_processes
    rows = slice(accelerator.process_index * share, (accelerator.process_index + 1) * share)
    batch = {k: v[rows] for k, v in global_batch(variant).items()}
    result = step(accelerator, model, batch, micro_batch, variant)
    if accelerator.is_main_process:
        save_file(result, str(out))
    accelerator.wait_for_everyone()


def launch(
    tmp_path: Path, processes: int, micro_batch: int, variant: str = "paper"
) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from tests.helpers.train_fixtures import free_port  # here: the worker runs without tests/

    out = tmp_path / f"p{processes}-m{micro_batch}.safetensors"
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        __file__, str(out), str(micro_batch), variant,
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


@pytest.mark.slow
@pytest.mark.parametrize(("micro_batch", "one_process_micro_batch"), [(0, 4), (2, 2)])
def test_text_text_term_with_cached_image_embeddings_across_processes(
    tmp_path, micro_batch, one_process_micro_batch
):
    from accelerate import Accelerator

    launched = launch(tmp_path, 2, micro_batch, "text-text")
    single = step(
        Accelerator(cpu=True), encoder("text-text"), global_batch("text-text"),
        one_process_micro_batch, "text-text",
    )  # fmt: skip
    assert set(launched) == set(single)
    assert not any(k.startswith("grad.align.vision_model") for k in single)  # frozen, cached
    assert launched["loss"].item() == pytest.approx(single["loss"].item(), rel=1e-5)
    for name, value in single.items():
        error = (launched[name] - value).abs().max().item()
        assert error <= 1e-4 * value.abs().max().item() + 1e-7, (name, error)
    # the text-text term is in the loss: weight 0.5 on top of the paper's
    paper = step(Accelerator(cpu=True), encoder("text-text"), global_batch("text-text"), 0)
    assert single["loss"].item() > paper["loss"].item()


@pytest.mark.slow
def test_sigmoid_ring_with_micro_batches_across_processes(tmp_path):
    # the captions pass round 2 processes, each in 2 micro-batches: the bias's and every
    # parameter's gradient as one process in 4 micro-batches
    from accelerate import Accelerator

    launched = launch(tmp_path, 2, 2, "sigmoid")
    single = step(Accelerator(cpu=True), encoder("sigmoid"), global_batch("sigmoid"), 2, "sigmoid")
    assert set(launched) == set(single) and "grad.logit_bias" in single
    assert launched["loss"].item() == pytest.approx(single["loss"].item(), rel=1e-5)
    floor = 1e-6 * max(v.abs().max().item() for k, v in single.items() if k.startswith("grad."))
    for name, value in single.items():
        error = (launched[name] - value).abs().max().item()
        assert error <= 1e-4 * value.abs().max().item() + floor, (name, error)
    assert single["grad.logit_bias"].abs().item() > 1e-4  # the comparison is not vacuous


if __name__ == "__main__":
    worker(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
