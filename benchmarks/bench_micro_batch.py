"""Micro-batches (gradient caching): memory flat in the global batch, step time, batch per GPU.

    python -m benchmarks.bench_micro_batch [--config tiny] [--micro-batch 32]
        [--batches 64,128,256] [--rounds 3] [--presets tiny,b3-mini,...] [--gpu-gib 24,80,141]

1. Measured here, each run in its own process so that its peak memory is its own: training
   steps (backward_global_batch, LAMB step) of `--config` for each global batch in
   `--batches`, whole and in micro-batches of `--micro-batch`, alternating; the step's memory
   is the process's peak RSS over the steps minus its RSS before them, beside the bytes the
   forward saves for backward (activations, exact: counted by autograd's saved-tensor hooks).
   The time ratio is micro / whole, the median over rounds (target: <= 1.4).
2. Computed for every preset from costs measured here: activation bytes per sample (saved
   tensors of the training forward at batch 2 minus batch 1, so weights drop out), the loss's
   bytes per B^2 (saved tensors of the loss at two batch sizes), the parameters (weights,
   gradients and LAMB's two moments: 16 bytes each in float32). The largest global batch on
   one GPU of each size in `--gpu-gib` follows, without micro-batches and with them.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import time
from pathlib import Path

import torch

from benchmarks.process_memory import peak_bytes, reset_peak, rss_bytes
from mling.common.provenance import code_state
from mling.common.report import markdown_table, write_report
from mling.common.stages import StageRunner, last_line, python_module
from mling.training.grad_cache import backward_global_batch
from mling.training.loss import contrastive_loss
from mling.training.model import DualEncoder, build_model, count_parameters, image_embed_dim
from mling.training.optim import build_optimizer
from mling.training.recipe import load_recipe
from mling.training.transforms import to_model_pixels

VOCAB = 250_000  # the default vocabulary: its embedding table is most of the text tower
CHILD_VOCAB = 1_000  # in the timed runs, where the table's size only adds optimizer time
RESERVE_GIB = 2.0  # CUDA context, cuDNN workspace, allocator slack: not available to tensors
STATE_BYTES = 16  # per parameter, float32: weight, gradient, LAMB's first and second moments
# What the benchmark measures (mling/common/provenance.py; `benchmarks/update_docs.py --check`).
MEASURED_MODULES = (
    "mling/training/grad_cache.py",
    "mling/training/batch_norm.py",
    "mling/training/loss.py",
    "mling/training/model.py",
    "mling/training/optim.py",
    "mling/configs/",
)


def random_batch(rows: int, image_size: int, max_length: int, vocab: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    shape = (rows, 3, image_size, image_size)
    input_ids = torch.randint(4, vocab, (rows, max_length), generator=generator)
    return {
        "pixel_values": torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator),
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
    }


class SavedBytes:
    """Bytes autograd saves for backward inside the block (distinct storages)."""

    def __init__(self) -> None:
        self.storages: dict[int, int] = {}

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        self.storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    def __enter__(self) -> SavedBytes:
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.hooks.__exit__(*exc)

    @property
    def total(self) -> int:
        return sum(self.storages.values())


def forward_saved_bytes(model: DualEncoder, batch: dict) -> int:
    with SavedBytes() as saved:
        image_embeds, text_embeds, temperature, _ = model(
            to_model_pixels(batch["pixel_values"]), batch["input_ids"], batch["attention_mask"]
        )
        contrastive_loss(image_embeds, text_embeds, temperature)
    return saved.total


def child(config: str, rows: int, micro_batch: int, steps: int) -> dict:
    """Training steps in this process: seconds per step, step memory, saved activations."""
    from accelerate import Accelerator

    recipe = load_recipe(config, {"cpu": True})
    model_cfg = recipe.model
    accelerator = Accelerator(cpu=True)
    model = DualEncoder(build_model(model_cfg, CHILD_VOCAB)).train()
    optimizer = build_optimizer(model, recipe.optim)
    model, optimizer = accelerator.prepare(model, optimizer)
    batch = random_batch(rows, model_cfg.image_size, model_cfg.max_length, CHILD_VOCAB)

    loss_fn = functools.partial(contrastive_loss, label_smoothing=0.1)

    def step() -> None:
        backward_global_batch(accelerator, model, batch, loss_fn, micro_batch)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    # memory: the first backward, from a clean heap, with gradient buffers already there
    # (a training run holds them all along); then timing, after a warm-up step
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    before = rss_bytes()
    reset_peak()
    backward_global_batch(accelerator, model, batch, loss_fn, micro_batch)
    peak = peak_bytes()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    share = micro_batch or rows
    activations = forward_saved_bytes(model, {k: v[:share] for k, v in batch.items()})
    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {
        "s_per_step": statistics.median(times),
        "step_mb": max(0, peak - before) / 2**20,
        "activations_mb": activations / 2**20,
        "pixels_mb": batch["pixel_values"].nbytes / 2**20,
    }


def run_child(spec: dict, logs: Path, name: str, threads: int = 0) -> dict:
    """One measurement in a fresh process, so that its peak memory is its own; its output in
    LOGS/NAME.log, its result the log's last JSON line."""
    stages = StageRunner("bench_micro_batch.py", logs, echo=False)
    env = {"OMP_NUM_THREADS": str(threads)} if threads else {}
    argv = ["--child", json.dumps(spec)]
    stages.run(name, python_module("benchmarks.bench_micro_batch", argv, isolated=False), env)
    return json.loads(last_line(logs / f"{name}.log", "{"))


def step_peak(preset: str, rows: int) -> dict:
    """One forward and backward of a preset at `rows` (float32 pixels made on the device, as
    train.py does): peak RSS above the RSS before it, and the saved activations."""
    recipe = load_recipe(preset)
    model = DualEncoder(build_model(recipe.model, VOCAB)).train()
    batch = random_batch(rows, recipe.model.image_size, recipe.model.max_length, VOCAB)
    for p in model.parameters():  # gradient buffers exist in training: not a per-sample cost
        p.grad = torch.zeros_like(p) if p.requires_grad else None
    before = rss_bytes()
    reset_peak()
    with SavedBytes() as saved:
        image_embeds, text_embeds, temperature, _ = model(
            to_model_pixels(batch["pixel_values"]), batch["input_ids"], batch["attention_mask"]
        )
        loss = contrastive_loss(image_embeds, text_embeds, temperature)
    loss.backward()
    return {
        "peak": peak_bytes() - before,
        "saved": saved.total,
        "parameters": count_parameters(model),
    }


def loss_peak(rows: int) -> dict:
    """The loss's forward and backward alone at `rows` (embeddings of width 640)."""
    generator = torch.Generator().manual_seed(0)
    image = torch.nn.functional.normalize(torch.randn(rows, 640, generator=generator), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(rows, 640, generator=generator), dim=-1)
    image.requires_grad_()
    text.requires_grad_()
    temperature = torch.tensor(1.0, requires_grad=True)
    before = rss_bytes()
    reset_peak()
    contrastive_loss(image, text, temperature).backward()
    return {"peak": peak_bytes() - before}


def preset_costs(preset: str, logs: Path) -> dict:
    """Per-sample step memory of a preset (peak at batch 2 minus batch 1), measured here."""
    recipe = load_recipe(preset)
    one, two = (
        run_child({"kind": "peak", "preset": preset, "rows": rows}, logs, f"peak-{preset}-{rows}")
        for rows in (1, 2)
    )
    return {
        "preset": preset,
        "parameters": one["parameters"],
        "bytes_per_sample": two["peak"] - one["peak"],
        "saved_bytes_per_sample": two["saved"] - one["saved"],
        "embed_dim": image_embed_dim(recipe.model.width_coefficient),
        "image_size": recipe.model.image_size,
    }


def loss_bytes_per_square(logs: Path) -> float:
    """Peak bytes of the loss per B^2 (logits, softmaxes, their gradients), at two sizes."""
    sizes = (2048, 4096)
    peaks = [run_child({"kind": "loss", "rows": n}, logs, f"loss-{n}")["peak"] for n in sizes]
    return (peaks[1] - peaks[0]) / (sizes[1] ** 2 - sizes[0] ** 2)


def largest_batch(budget: float, fixed: float, per_sample: float, per_square: float) -> int:
    """Largest B with fixed + per_sample B + per_square B^2 <= budget (0 if none)."""
    room = budget - fixed
    if room <= 0:
        return 0
    return int((-per_sample + math.sqrt(per_sample**2 + 4 * per_square * room)) / (2 * per_square))


def main(argv: list[str] | None = None) -> int:
    # config
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="tiny", help="preset timed here (part 1)")
    parser.add_argument("--micro-batch", type=int, default=32)
    parser.add_argument("--batches", default="64,128,256", help="global batches timed here")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="whole/micro run pairs per batch")
    parser.add_argument("--presets", default="tiny,b3-mini,b5-base,b7-base,l2-large")
    parser.add_argument("--gpu-gib", default="24,80,141", help="GPU memory sizes of part 2")
    parser.add_argument("--gpu-micro-batch", type=int, default=32, help="micro-batch of part 2")
    parser.add_argument(
        "--threads", type=int, default=1, help="per timed run (1: steadier on a shared machine)"
    )
    parser.add_argument("--output", type=Path, default=Path("bench-output/micro_batch"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        if spec["kind"] == "step":
            result = child(spec["config"], spec["rows"], spec["micro_batch"], spec["steps"])
        elif spec["kind"] == "peak":
            result = step_peak(spec["preset"], spec["rows"])
        else:
            result = loss_peak(spec["rows"])
        print(json.dumps(result))
        return 0
    batches = [int(b) for b in args.batches.split(",")]
    code = code_state(MEASURED_MODULES)
    logs = args.output / "logs"

    # 1. measured: whole and micro-batched steps, alternating, each in its own process
    runs: dict[str, list[dict]] = {}
    for k in range(args.rounds):
        for rows in batches:
            for micro_batch in (0, args.micro_batch):
                key = f"{rows}/{micro_batch}"
                spec = {"kind": "step", "config": args.config, "rows": rows}
                spec.update(micro_batch=micro_batch, steps=args.steps)
                name = f"step-{rows}-{micro_batch or 'whole'}-{k + 1}"
                runs.setdefault(key, []).append(run_child(spec, logs, name, args.threads))
    measured = []
    for rows in batches:
        whole, micro = runs[f"{rows}/0"], runs[f"{rows}/{args.micro_batch}"]
        ratios = [m["s_per_step"] / w["s_per_step"] for w, m in zip(whole, micro, strict=True)]
        measured.append(
            {
                "global_batch": rows,
                "whole_s": statistics.median(r["s_per_step"] for r in whole),
                "micro_s": statistics.median(r["s_per_step"] for r in micro),
                "time_ratio": statistics.median(ratios),
                "time_ratios": ratios,
                "whole_step_mb": statistics.median(r["step_mb"] for r in whole),
                "micro_step_mb": statistics.median(r["step_mb"] for r in micro),
                "whole_activations_mb": whole[0]["activations_mb"],
                "micro_activations_mb": micro[0]["activations_mb"],
                "pixels_mb": whole[0]["pixels_mb"],
            }
        )

    # 2. computed: the largest global batch per preset on one GPU
    per_square = loss_bytes_per_square(logs)
    sizes = [float(g) for g in args.gpu_gib.split(",")]
    presets = [preset_costs(p, logs) for p in args.presets.split(",")]
    table2 = []
    for cost in presets:
        fixed = cost["parameters"] * STATE_BYTES
        # without micro-batches: every sample's step memory at once (activations, float32
        # pixels, embeddings); with them: one micro-batch's, then per sample only the
        # embeddings and their cached gradients (pixels move a micro-batch at a time)
        per_sample = cost["bytes_per_sample"]
        embeds = 4 * cost["embed_dim"] * 4  # image and text embeddings, and their gradients
        m = args.gpu_micro_batch
        row = [
            cost["preset"],
            f"{cost['parameters'] / 1e6:.0f}M",
            f"{per_sample / 2**20:.0f}",
            f"{cost['saved_bytes_per_sample'] / 2**20:.0f}",
        ]
        for gib in sizes:
            budget = (gib - RESERVE_GIB) * 2**30
            whole = largest_batch(budget, fixed, per_sample, per_square)
            # the largest power-of-two micro-batch up to --gpu-micro-batch whose activations
            # leave room for the logits of a batch at least as large as without micro-batches
            m, micro = args.gpu_micro_batch, 0
            while m >= 1:
                micro = largest_batch(budget, fixed + m * per_sample, embeds, per_square)
                if micro >= max(whole, m):
                    break
                m //= 2
            if m < 1:
                m, micro = 0, 0
            cost[f"largest_whole_{gib:g}gib"] = whole
            cost[f"largest_micro_{gib:g}gib"], cost[f"micro_batch_{gib:g}gib"] = micro, m
            row += [f"{whole:,}", f"{micro:,} (m = {m})" if m else "0"]
        table2.append(row)

    # report
    table1 = [
        [
            r["global_batch"],
            f"{r['whole_s']:.2f}",
            f"{r['micro_s']:.2f}",
            f"{r['time_ratio']:.2f}",
            f"{r['whole_activations_mb']:.0f}",
            f"{r['micro_activations_mb']:.0f}",
            f"{r['whole_step_mb']:.0f}",
            f"{r['micro_step_mb']:.0f}",
            f"{r['pixels_mb']:.1f}",
        ]
        for r in measured
    ]
    headers2 = ["preset", "parameters", "step MiB / sample", "saved MiB / sample"]
    for gib in sizes:
        headers2 += [f"{gib:g} GiB: whole", f"{gib:g} GiB: micro-batches"]
    worst = max(r["time_ratio"] for r in measured)
    markdown = "\n".join(
        [
            "# Micro-batches (gradient caching)",
            "",
            f"## Measured: `{args.config}` on CPU ({args.threads or torch.get_num_threads()} "
            "thread(s) per run), "
            f"micro-batch {args.micro_batch}",
            "",
            f"Seconds per step (median of {args.steps} steps, then of {args.rounds} runs), the "
            "ratio micro / whole (median over rounds; target <= 1.4), the activations the forward "
            "saves for backward (exact, autograd's saved tensors: the whole batch's, or one "
            "micro-batch's), and the step's memory (peak RSS of the first forward and backward "
            "minus RSS before it, gradient buffers already allocated). The host batch's pixels (uint8) are apart.",
            "",
            markdown_table(
                [
                    "global batch",
                    "whole s/step",
                    "micro s/step",
                    "ratio",
                    "whole activations MiB",
                    "micro activations MiB",
                    "whole step MiB",
                    "micro step MiB",
                    "host pixels MiB",
                ],
                table1,
            ),
            "",
            f"Worst ratio {worst:.2f} ({'meets' if worst <= 1.4 else 'misses'} the 1.4 target).",
            "",
            "## Computed: the largest global batch on one GPU",
            "",
            "From costs measured here on CPU in float32 (bf16 autocast roughly halves "
            "activations), each in its own process: a preset's step memory per sample (peak RSS "
            "of one forward and backward at batch 2 minus batch 1, float32 pixels included; the "
            "saved activations beside it), the loss's "
            f"{per_square:.1f} bytes per B² (peak of its forward and backward at B = 2,048 and "
            f"4,096: logits, softmaxes and their gradients), and {STATE_BYTES} bytes "
            f"per parameter (weights, gradients, LAMB's two moments), with a {VOCAB:,}-token "
            f"vocabulary; {RESERVE_GIB:g} GiB kept for the CUDA context and allocator. Whole: "
            "every sample's activations, float32 pixels and embeddings at once. Micro-batches: one "
            "micro-batch's activations and pixels (m, the largest power of two up to "
            f"{args.gpu_micro_batch} that leaves room), then per sample only the embeddings and "
            "their cached gradients; what bounds it is the B x B logits. On the host, the batch's uint8 pixels grow with B either way (16,384 x 289 "
            "px: 3.8 GiB).",
            "",
            markdown_table(headers2, table2),
        ]
    )
    data = {
        "config": args.config,
        "micro_batch": args.micro_batch,
        "measured": measured,
        "loss_bytes_per_square": per_square,
        "provenance": code,
        "presets": presets,
        "reserve_gib": RESERVE_GIB,
        "gpu_micro_batch": args.gpu_micro_batch,
    }
    write_report(args.output, "bench_micro_batch", data, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
