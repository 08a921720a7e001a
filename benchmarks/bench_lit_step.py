"""LiT's step against the text tower's own: what a frozen, cached image tower leaves to pay.

    python -m benchmarks.bench_lit_step [--names 1 8] [--repeats 3] [--steps 10]
        [--config emoji] [--vocab-size 32000] [--output bench-output/bench_lit_step.json]

In this process, the preset's model (a random vocabulary of --vocab-size tokens, no tokenizer)
on one batch of the preset's size (128 drawings, 64 px uint8 pixels), each drawing with K
names (--names), random token ids with lengths drawn from 4 to 20 tokens and padded to the
batch's longest as the loader pads them. Seconds per step of four steps, each its own model
and optimizer (LAMB, the preset's):

    (a) full: both towers train; train.py's step (backward_global_batch, optimizer step);
    (b) LiT, uncached: the image tower frozen (freeze + DualEncoder(frozen=("image",))), the
        pixels given: the tower runs forward, without autograd, in every step;
    (c) LiT, cached: the image tower frozen and the batch carrying its embeddings (B, D)
        instead of pixels, as train.py does with the image-embedding cache;
    (d) the text tower alone: its forward (DualEncoder without pixels), the backward of a
        fixed linear function of its embeddings, the optimizer step over the same parameters.

(a), (b) and (c) use train.py's own step and loss (align_loss with --positives image_id and
the demo's --text-text-weight), so they differ only in the image tower; (c)/(d)
is then what the loss and the step's plumbing add to the text tower (target: at most 1.1x).
The four alternate step by step (a, b, c, d, a, b, c, d, ...) after 2 warm-up steps each, so
that noise on a shared machine hits them alike; each figure is the median over --repeats runs
of --steps steps, each ratio the median of the runs' ratios. Torch's default threads.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator

from mling.common.provenance import code_state
from mling.common.report import markdown_table, write_report
from mling.demo_emoji import TEXT_TEXT_WEIGHT
from mling.train import train_step
from mling.training.loader import padded_length
from mling.training.model import DualEncoder, build_model
from mling.training.optim import build_optimizer
from mling.training.pretrained import freeze
from mling.training.recipe import Recipe, load_recipe
from mling.training.transforms import to_model_pixels

VARIANTS = {
    "full": "(a) full step",
    "lit": "(b) LiT, uncached",
    "cached": "(c) LiT, cached",
    "text": "(d) text tower alone",
}
# What the benchmark measures (mling/common/provenance.py; `benchmarks/update_docs.py --check`).
MEASURED_MODULES = ("mling/train.py", "mling/training/", "mling/configs/emoji.yaml")
WARMUP = 2  # steps of each variant before timing: allocator, LAMB state, one-off kernels
SHORTEST, LONGEST = 4, 20  # tokens per name, [CLS] and [SEP] included
FIRST_TOKEN = 5  # below: [PAD], [UNK], [CLS], [SEP], [MASK]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, nargs="+", default=[1, 8], help="K per drawing")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs, medians over them")
    parser.add_argument("--steps", type=int, default=10, help="steps of each variant per run")
    parser.add_argument("--config", default="emoji", help="training preset (mling/configs)")
    parser.add_argument("--vocab-size", type=int, default=32000, help="random vocabulary")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("bench-output/bench_lit_step.json"),
        help="the table as JSON (and as Markdown beside it, .md)",
    )
    return parser.parse_args(argv)


def random_batch(recipe: Recipe, names: int, vocab_size: int, seed: int) -> dict:
    """A host batch as the loader yields it: pixel_values (B, 3, S, S) uint8, input_ids and
    attention_mask (B, L) for one name per drawing or (B, K, L), right-padded to the longest
    name rounded up as the loader does, image_ids (B,) (each drawing its own)."""
    generator = torch.Generator().manual_seed(seed)
    rows, size = recipe.data.batch_size, recipe.model.image_size
    lengths = torch.randint(SHORTEST, LONGEST + 1, (rows * names,), generator=generator)
    width = padded_length(lengths.tolist(), recipe.model.max_length, static=False)
    positions = torch.arange(width)
    attention_mask = (positions[None, :] < lengths[:, None]).long()
    input_ids = torch.randint(FIRST_TOKEN, vocab_size, (rows * names, width), generator=generator)
    input_ids = input_ids * attention_mask  # [PAD] is 0
    if names > 1:
        input_ids, attention_mask = (
            t.view(rows, names, width) for t in (input_ids, attention_mask)
        )
    shape = (rows, 3, size, size)
    return {
        "pixel_values": torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator),
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "image_ids": torch.arange(rows),
    }


def make_steps(accelerator, recipe: Recipe, batch: dict, vocab_size: int) -> dict[str, Callable]:
    """The four variants, each one step of its own model and optimizer (same initial weights)."""
    lr = recipe.optim.lr
    bucket_rows = recipe.data.text_bucket_rows

    def model_and_optimizer(frozen: tuple[str, ...]):
        align = build_model(recipe.model, vocab_size, seed=0)
        freeze(align, list(frozen))
        model = DualEncoder(align, frozen=frozen, text_bucket_rows=bucket_rows)
        model, optimizer = accelerator.prepare(model, build_optimizer(model, recipe.optim))
        return model.train(), optimizer

    steps: dict[str, Callable] = {}
    for name, frozen in (("full", ()), ("lit", ("image",))):
        model, optimizer = model_and_optimizer(frozen)
        steps[name] = lambda m=model, o=optimizer: train_step(accelerator, m, o, batch, lr, recipe)

    # (c): the frozen tower's embeddings of the batch's pixels, once, on the device (as the
    # cache's table is); the step's batch carries them instead of pixels
    model, optimizer = model_and_optimizer(("image",))
    with torch.no_grad():
        pixels = batch["pixel_values"].to(accelerator.device)
        image_embeds = accelerator.unwrap_model(model)(to_model_pixels(pixels), None, None)[0]
    cached = {k: v for k, v in batch.items() if k != "pixel_values"}
    cached["image_embeds"] = image_embeds
    steps["cached"] = lambda m=model, o=optimizer: train_step(accelerator, m, o, cached, lr, recipe)

    # (d): the text tower alone, a fixed linear function of its embeddings as the loss
    model, optimizer = model_and_optimizer(("image",))
    width = batch["input_ids"].shape[-1]
    input_ids = batch["input_ids"].reshape(-1, width)
    attention_mask = batch["attention_mask"].reshape(-1, width)
    fixed = torch.randn(input_ids.shape[0], image_embeds.shape[1], device=accelerator.device)

    def text_step(m=model, o=optimizer) -> None:
        for group in o.param_groups:
            group["lr"] = lr
        ids = input_ids.to(accelerator.device, non_blocking=True)
        mask = attention_mask.to(accelerator.device, non_blocking=True)
        text_embeds = m(None, ids, mask)[1]
        accelerator.backward((text_embeds * fixed).sum())
        o.step()
        o.zero_grad(set_to_none=True)

    steps["text"] = text_step
    return steps


def timed_runs(steps: dict[str, Callable], repeats: int, count: int, sync: Callable) -> dict:
    """{variant: [seconds per step of each run]}, the variants alternating step by step."""
    for _ in range(WARMUP):
        for step in steps.values():
            step()
    sync()
    runs: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        spent = dict.fromkeys(steps, 0.0)
        for _ in range(count):
            for name, step in steps.items():
                started = time.perf_counter()
                step()
                sync()
                spent[name] += time.perf_counter() - started
        for name in steps:
            runs[name].append(spent[name] / count)
    return runs


def main(argv: list[str] | None = None) -> int:
    # config
    args = parse_args(argv)
    recipe = load_recipe(
        args.config, {"positives": "image_id", "text_text_weight": TEXT_TEXT_WEIGHT}
    )
    accelerator = Accelerator(mixed_precision=recipe.run.precision, cpu=recipe.run.cpu)
    device = accelerator.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    # measure: one K at a time, its four variants alternating
    code = code_state(MEASURED_MODULES)
    results = []
    for names in args.names:
        batch = random_batch(recipe, names, args.vocab_size, args.seed)
        steps = make_steps(accelerator, recipe, batch, args.vocab_size)
        runs = timed_runs(steps, args.repeats, args.steps, sync)
        result = {"names": names, "tokens": batch["input_ids"].shape[-1]}
        result |= {f"{name}_s": statistics.median(runs[name]) for name in VARIANTS}
        for name in ("cached", "lit", "full"):
            ratios = [a / b for a, b in zip(runs[name], runs["text"], strict=True)]
            result[f"{name}_over_text"] = statistics.median(ratios)
        result["runs"] = runs
        results.append(result)
        print(f"K={names}: " + ", ".join(f"{name} {result[f'{name}_s']:.3f} s" for name in VARIANTS),
              flush=True)  # fmt: skip

    # report
    rows = [
        [r["names"], r["tokens"], *(f"{r[f'{name}_s']:.3f}" for name in VARIANTS),
         *(f"{r[f'{name}_over_text']:.2f}x" for name in ("cached", "lit", "full")),
         "met" if r["cached_over_text"] <= 1.1 else "not met"]
        for r in results
    ]  # fmt: skip
    threads = torch.get_num_threads() if device.type == "cpu" else None
    markdown = "\n\n".join(
        [
            "# LiT's step against the text tower's own",
            f"Preset `{args.config}`, batch {recipe.data.batch_size} drawings of "
            f"{recipe.model.image_size} px, K names each (random ids of {SHORTEST} to {LONGEST} "
            f"tokens, a {args.vocab_size:,}-token vocabulary, padded to the batch's longest: "
            f"the tokens column), on {device}"
            + (f" ({threads} threads)" if threads else "")
            + f"; seconds per step, median of {args.repeats} runs of {args.steps} steps, the "
            "four steps alternating; ratios against (d), medians of the runs' ratios. Target: "
            "(c)/(d) at most 1.1x.",
            markdown_table(
                [
                    "K",
                    "tokens",
                    *(f"{label} s" for label in VARIANTS.values()),
                    "(c)/(d)",
                    "(b)/(d)",
                    "(a)/(d)",
                    "target",
                ],
                rows,
            ),  # fmt: skip
        ]
    )
    data = {"config": args.config, "batch": recipe.data.batch_size, "device": str(device),
            "threads": threads, "vocab_size": args.vocab_size, "repeats": args.repeats,
            "steps": args.steps, "results": results, "provenance": code}  # fmt: skip
    paths = write_report(args.output.parent, args.output.stem, data, markdown)
    print(markdown)
    print(f"bench_lit_step.py: -> {paths['json']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
