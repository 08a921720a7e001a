"""Caption padding on real names in 129 languages: one training step per way of padding.

    python -m benchmarks.bench_text_padding [--set demo-emoji-output] [--rounds 5]

After `make demo-emoji` (it reads that run's emoji set and vocabulary). A step of the `emoji`
preset (forward, loss, backward, LAMB) on 128 drawings with K names each, the names drawn at
random from the set's rows (every language), one thread as in the demo, three ways:

- static: every caption padded to max_length (32), one shape (`--pad-to-max-length true`);
- longest: padded to the batch's longest caption rounded up to 8 (the default);
- buckets: longest, and the text tower run 64 captions at a time sorted by length
  (`--text-bucket-rows 64`).

Rounds alternate the three; figures are medians over rounds, ratios against static.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from mling.common.provenance import code_state
from mling.common.report import markdown_table, write_report
from mling.training.loader import caption_encoder
from mling.training.loss import contrastive_loss
from mling.training.model import DualEncoder, build_model
from mling.training.optim import build_optimizer
from mling.training.recipe import load_recipe

# What the benchmark measures (mling/common/provenance.py; `benchmarks/update_docs.py --check`).
MEASURED_MODULES = (
    "mling/training/loader.py",
    "mling/training/model.py",
    "mling/training/loss.py",
    "mling/training/optim.py",
    "mling/configs/emoji.yaml",
)
MODES = {"static": (True, 0), "longest": (False, 0), "buckets": (False, 64)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=Path("demo-emoji-output"))
    parser.add_argument("--captions-per-image", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per mode and round")
    parser.add_argument("--output", type=Path, default=Path("bench-output/text_padding"))
    return parser.parse_args(argv)


def sample_captions(pairs: Path, n: int, seed: int = 0) -> list[str]:
    import pyarrow.dataset as ds

    captions = ds.dataset(sorted(pairs.glob("part-*.parquet"))).to_table(columns=["caption"])
    rows = np.random.default_rng(seed).choice(captions.num_rows, size=n, replace=False)
    return captions.column("caption").take(rows).to_pylist()


def train_step(model, optimizer, input_ids, attention_mask, pixels) -> None:
    image_embeds, text_embeds, temperature, _ = model(pixels, input_ids, attention_mask)
    contrastive_loss(image_embeds, text_embeds, temperature).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pairs, vocab = args.set / "emoji-set" / "pairs", args.set / "vocab"
    if not pairs.is_dir() or not vocab.is_dir():
        print(f"bench_text_padding.py: no emoji set and vocabulary in {args.set}; run "
              "`make demo-emoji` first", file=sys.stderr)  # fmt: skip
        return 2
    code = code_state(MEASURED_MODULES)
    torch.set_num_threads(1)
    recipe = load_recipe("emoji")
    batch = recipe.data.batch_size
    vocab_size = len(AutoTokenizer.from_pretrained(vocab))
    encoders = {
        mode: caption_encoder(str(vocab), recipe.model.max_length, static)
        for mode, (static, _) in MODES.items()
    }
    pixels = torch.rand(batch, 3, recipe.model.image_size, recipe.model.image_size) * 2 - 1
    results = []
    for k in args.captions_per_image:
        captions = sample_captions(pairs, batch * k)
        seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
        widths = {}
        for _ in range(args.rounds):
            for mode, (_, bucket_rows) in MODES.items():
                input_ids, attention_mask = encoders[mode](captions)
                widths[mode] = input_ids.shape[1]
                align = build_model(recipe.model, vocab_size, seed=0)
                model = DualEncoder(align, text_bucket_rows=bucket_rows).train()
                optimizer = build_optimizer(model, recipe.optim)
                step = (model, optimizer, input_ids, attention_mask, pixels)
                train_step(*step)  # warm-up
                started = time.perf_counter()
                for _ in range(args.steps):
                    train_step(*step)
                seconds[mode].append((time.perf_counter() - started) / args.steps)
        static = statistics.median(seconds["static"])
        for mode in MODES:
            median = statistics.median(seconds[mode])
            results.append({"captions_per_image": k, "mode": mode, "tokens": widths[mode],
                            "seconds_per_step": median, "vs_static": median / static})  # fmt: skip
    rows = [[str(r["captions_per_image"]), r["mode"], str(r["tokens"]),
             f"{r['seconds_per_step']:.3f}", f"{r['vs_static']:.2f}x"] for r in results]  # fmt: skip
    markdown = (
        f"Preset `emoji`, {batch} drawings per step, one thread; names drawn at random from "
        f"{pairs} (every language); median of {args.rounds} rounds of {args.steps} steps. "
        "Tokens: the padded width of the whole batch (buckets cut each bucket further).\n\n"
        + markdown_table(["names per drawing", "padding", "tokens", "s / step", "vs static"], rows)
    )
    data = {"results": results, "provenance": code}
    paths = write_report(args.output, "bench", data, markdown)
    print(markdown)
    print(f"bench_text_padding.py: -> {paths['md']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
