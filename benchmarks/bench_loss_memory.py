"""The loss's peak memory per process against the global batch and the number of processes.

    python -m benchmarks.bench_loss_memory [--batches 1024,2048] [--captions 1,4]
        [--processes 1,4,16] [--width 128] [--output bench-output/loss_memory]

1. Measured here, on CPU in float32: one process's forward and backward of each loss, for every
   global batch N, K captions per image and P processes, its peak RSS minus its RSS before
   (malloc's mmap threshold fixed at 128 KiB, so every tensor's pages come and go with it).
   One process of P is simulated in one process: the softmax loss's share of its n = N / P
   rows against the gathered batch (the (N, D) and (N K, D) tensors the gather hands it, and
   their gradients, which the gather's backward all-reduces), as `contrastive_loss` computes
   it; the sigmoid loss's ring step on its n images and one chunk of n K captions (the ring
   holds one chunk at a time; its send and receive buffers, a few (n K, D), are left out).
   "global" is the loss before it went per process: every process the whole (N, N K).
2. Fitted, per loss: bytes = a x logit elements + b x embedding elements (softmax: n N K and
   (N + N K) D; sigmoid: n n K and (n + n K) D; global: N N K and (N + N K) D), least squares
   over the measured points, then extrapolated to the paper's 16,384 pairs x 1 and 4 names on
   8, 64 and 1,024 processes, at ALIGN's embedding width 640.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from benchmarks.process_memory import peak_bytes, reset_peak, rss_bytes
from mling.common.provenance import code_state
from mling.common.report import markdown_table, write_report
from mling.training.loss import contrastive_share
from mling.training.sigmoid_loss import sigmoid_loss

MEASURED_MODULES = ("mling/training/loss.py", "mling/training/sigmoid_loss.py")
MMAP_THRESHOLD = "131072"  # bytes: above it malloc maps pages per tensor and unmaps them on free
PAPER_BATCH, PAPER_WIDTH = 16_384, 640
PAPER_PROCESSES = (8, 64, 1024)
LOSSES = ("global", "softmax", "sigmoid")
GIB = 2**30


def elements(loss: str, batch: int, captions: int, processes: int, width: int) -> tuple[int, int]:
    """(logit elements, embedding elements) one process holds for a loss."""
    n = batch // processes
    if loss == "global":
        return batch * batch * captions, (batch + batch * captions) * width
    if loss == "softmax":
        return n * batch * captions, (batch + batch * captions) * width
    return n * n * captions, (n + n * captions) * width


def measure(loss: str, batch: int, captions: int, processes: int, width: int) -> int:
    """Peak bytes of one process's forward and backward (see the module's docstring)."""
    generator = torch.Generator().manual_seed(0)
    n = batch // processes
    images = rows = batch if loss != "sigmoid" else n
    image_embeds = torch.nn.functional.normalize(torch.randn(images, width, generator=generator))
    text_embeds = torch.nn.functional.normalize(
        torch.randn(images * captions, width, generator=generator)
    )
    image_embeds.requires_grad_()
    text_embeds.requires_grad_()
    temperature = torch.tensor(0.1, requires_grad=True)
    before = rss_bytes()
    reset_peak()
    if loss == "sigmoid":
        value = sigmoid_loss(image_embeds, text_embeds, temperature, -10.0)
    else:
        rows = slice(0, batch if loss == "global" else n)
        value = contrastive_share(image_embeds, text_embeds, temperature, rows)
    value.backward()
    peak = peak_bytes() - before
    del value
    return peak


def fit(points: list[tuple[int, int, int]]) -> tuple[float, float]:
    """Least squares bytes = a x logits + b x embeddings -> (a, b), bytes per element."""
    x = torch.tensor([[p[0], p[1]] for p in points], dtype=torch.float64)
    y = torch.tensor([p[2] for p in points], dtype=torch.float64)
    solution = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]
    return float(solution[0]), float(solution[1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_loss_memory.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--batches", default="1024,2048", help="global batches N, pairs")
    parser.add_argument("--captions", default="1,4", help="K, captions (names) per image")
    parser.add_argument("--processes", default="1,4,16", help="P, processes simulated")
    parser.add_argument("--width", type=int, default=128, help="embedding width D measured")
    parser.add_argument("--output", default="bench-output/loss_memory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") != MMAP_THRESHOLD:  # malloc reads it at start
        os.environ["MALLOC_MMAP_THRESHOLD_"] = MMAP_THRESHOLD
        os.execv(
            sys.executable,
            [sys.executable, "-m", "benchmarks.bench_loss_memory", *(argv or sys.argv[1:])],
        )
    args = parse_args(argv)
    torch.set_num_threads(1)
    code = code_state(MEASURED_MODULES)
    batches = [int(v) for v in args.batches.split(",")]
    captions = [int(v) for v in args.captions.split(",")]
    processes = [int(v) for v in args.processes.split(",")]
    measured = []
    for loss in LOSSES:
        for batch in batches:
            for k in captions:
                for p in processes if loss != "global" else [1]:
                    peak = measure(loss, batch, k, p, args.width)
                    logits, embeds = elements(loss, batch, k, p, args.width)
                    measured.append({"loss": loss, "batch": batch, "captions": k, "processes": p,
                                     "bytes": peak, "logits": logits, "embeddings": embeds})  # fmt: skip
                    print(f"bench_loss_memory.py: {measured[-1]}", file=sys.stderr)
    fits = {
        loss: fit(
            [(m["logits"], m["embeddings"], m["bytes"]) for m in measured if m["loss"] == loss]
        )
        for loss in LOSSES
    }
    rows = []
    for m in measured:
        a, b = fits[m["loss"]]
        rows.append([m["loss"], f"{m['batch']:,}", m["captions"], m["processes"],
                     f"{m['bytes'] / 2**20:.1f}", f"{(a * m['logits'] + b * m['embeddings']) / 2**20:.1f}"])  # fmt: skip
    paper = []
    for k in (1, 4):
        for p in PAPER_PROCESSES:
            row = [f"{PAPER_BATCH:,} x {k}", p]
            for loss in LOSSES:
                a, b = fits[loss]
                logits, embeds = elements(loss, PAPER_BATCH, k, p, PAPER_WIDTH)
                row.append(f"{(a * logits + b * embeds) / GIB:.3g}")
            paper.append(row)
    fitted = ", ".join(f"{loss} {a:.1f} B per logit and {b:.1f} B per embedding element"
                       for loss, (a, b) in fits.items())  # fmt: skip
    markdown = (
        f"# The loss's memory per process\n\n"
        f"## Measured: CPU, float32, width {args.width}\n\n"
        "Peak RSS of one process's loss forward and backward minus RSS before it. Global: the "
        "loss before it went per process (every process the whole (N, N K) logits). Softmax: "
        "this process's n = N / P rows against the gathered batch. Sigmoid: one ring step, n "
        f"images against one chunk of n K captions. Fitted: {fitted}.\n\n"
        + markdown_table(["loss", "N", "K", "P", "MiB measured", "MiB fitted"], rows)
        + f"\n\n## Extrapolated: {PAPER_BATCH:,} pairs, width {PAPER_WIDTH}, GiB per process\n\n"
        "From the fit above (the elements scale exactly; the bytes per element are what was "
        "measured). Global is the same on every process count: each process held all of it.\n\n"
        + markdown_table(["pairs x names", "P", "global GiB", "softmax GiB", "sigmoid GiB"], paper)
    )
    data = {"measured": measured, "fits": fits, "provenance": code}
    paths = write_report(args.output, "bench", data, markdown)
    print(markdown)
    print(f"bench_loss_memory.py: -> {paths['md']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
