"""The losses on P gloo processes, each with its share of one fixed global batch.

`run(world)` spawns `world` processes (torch.multiprocessing, gloo over localhost); each passes
its own rows of every case in CASES to the loss, back-propagates, and returns its loss value
and the gradients of its rows, the temperature and the bias. The parent compares them with
the one-process loss on the whole batch (tests/test_loss_processes.py). Only torch and the
loss modules are imported here, so each process starts in about a second.
"""

from __future__ import annotations

import functools
import os
import socket
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from mling.training.loss import align_loss
from mling.training.sigmoid_loss import sigmoid_loss

IMAGES = 8  # the global batch: 4 rows per process on 2, 2 on 4
WIDTH = 5
IDS = torch.tensor([0, 0, 1, 2, 2, 2, 3, 4])  # rows of one image, across process boundaries

# name -> (loss, captions per image, image ids or None, the loss's keyword arguments)
CASES = {
    "softmax": ("softmax", 1, None, {}),
    "softmax-ids-k2": ("softmax", 2, IDS, {}),
    "softmax-text-text": ("softmax", 2, IDS, {"text_text_weight": 0.5}),
    "softmax-no-smoothing": ("softmax", 1, IDS, {"label_smoothing": 0.0}),
    "sigmoid": ("sigmoid", 1, None, {}),
    "sigmoid-ids-k2": ("sigmoid", 2, IDS, {}),
}


def global_batch(slots: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(IMAGES, WIDTH) images and (IMAGES * slots, WIDTH) captions, image-major, float64."""
    generator = torch.Generator().manual_seed(7 + slots)
    images = F.normalize(
        torch.randn(IMAGES, WIDTH, generator=generator, dtype=torch.float64), dim=-1
    )
    texts = torch.randn(IMAGES * slots, WIDTH, generator=generator, dtype=torch.float64)
    return images, F.normalize(texts, dim=-1)


def loss_of(kind: str, image_embeds, text_embeds, temperature, bias, image_ids, options):
    if kind == "sigmoid":
        return sigmoid_loss(image_embeds, text_embeds, temperature, bias, image_ids)
    return align_loss(image_embeds, text_embeds, temperature, image_ids=image_ids, **options)


def one_case(name: str, rows: slice | None = None) -> dict[str, torch.Tensor]:
    """Loss and gradients of a case on `rows` of the images (None: all, in one process)."""
    kind, slots, ids, options = CASES[name]
    images, texts = global_batch(slots)
    rows = rows or slice(0, IMAGES)
    image_embeds = images[rows].clone().requires_grad_()
    text_embeds = texts[rows.start * slots : rows.stop * slots].clone().requires_grad_()
    temperature = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-1.5, dtype=torch.float64, requires_grad=True)
    image_ids = ids[rows] if ids is not None else None
    loss = loss_of(kind, image_embeds, text_embeds, temperature, bias, image_ids, options)
    loss.backward()
    out = {"loss": loss.detach(), "images": image_embeds.grad, "texts": text_embeds.grad}
    out["temperature"] = temperature.grad
    if kind == "sigmoid":
        out["bias"] = bias.grad
    return out


def _worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    share = IMAGES // world
    rows = slice(rank * share, (rank + 1) * share)
    results = {
        f"{name}.{key}": value.detach().clone()
        for name in CASES
        for key, value in one_case(name, rows).items()
    }
    torch.save(results, Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@functools.cache
def run(world: int) -> list[dict[str, torch.Tensor]]:
    """Every case on `world` processes: one dict of results per rank."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(world, free_port(), out), nprocs=world, join=True)
        return [torch.load(Path(out) / f"rank{r}.pt") for r in range(world)]
