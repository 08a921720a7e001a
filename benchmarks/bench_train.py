"""Training-loop overhead: the real `train.py` step against a bare step, side by side.

    python -m benchmarks.bench_train [--config tiny] [--device cpu|cuda] [--key value ...]

Bare step: forward, loss, backward and optimizer step over batches already decoded, tokenized
and on the device. Full step: `mling/train.py` itself on toy parquet shards (decoding in its
loader workers, learning-rate schedule, logging, progress bar), timed from its own
metrics.jsonl. Both use the same model, batch and optimizer; runs alternate (bare, full,
bare, ...) and the ratio is the median over rounds of full / the bare runs around it (target:
<= 1.1).
Extra `--key value` flags go to both (e.g. `--batch-size 256 --precision bf16`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

from mling import train
from mling.common.provenance import code_state
from mling.common.report import markdown_table, write_report
from mling.training.loader import PairStream, index_sources
from mling.training.loss import contrastive_loss
from mling.training.model import DualEncoder, build_model, count_parameters
from mling.training.optim import build_optimizer
from mling.training.recipe import load_recipe
from mling.training.recipe_cli import add_recipe_arguments, recipe_overrides
from mling.training.transforms import resize_size, to_model_pixels
from tests.helpers.toy_pairs import build_toy_tokenizer, write_toy_shards

# What the benchmark measures (mling/common/provenance.py; `benchmarks/update_docs.py --check`).
MEASURED_MODULES = ("mling/train.py", "mling/training/")


def bare_windows(
    recipe, tokenizer_dir: Path, data: Path, device: str, windows: int, window: int
) -> list[float]:
    """Seconds per step of the bare loop, one median-able figure per window of steps."""
    stream = PairStream(
        index_sources([data], {}),
        str(tokenizer_dir),
        batch_size=recipe.data.batch_size,
        image_size=recipe.model.image_size,
        max_length=recipe.model.max_length,
    )
    ready = []
    for batch, _ in zip(stream, range(4), strict=False):
        pixels = to_model_pixels(batch["pixel_values"].to(device))
        ready.append((pixels, batch["input_ids"].to(device), batch["attention_mask"].to(device)))
    align = build_model(recipe.model, len(AutoTokenizer.from_pretrained(tokenizer_dir)), seed=0)
    model = DualEncoder(align).to(device).train()
    optimizer = build_optimizer(model, recipe.optim)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(recipe.run.precision)

    def step(i: int) -> None:
        with torch.autocast(
            device_type=torch.device(device).type, dtype=dtype, enabled=dtype is not None
        ):
            image_embeds, text_embeds, temperature, _ = model(*ready[i % len(ready)])
        loss = contrastive_loss(image_embeds, text_embeds, temperature)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for i in range(window):  # warm-up: allocator, kernels, optimizer state
        step(i)
    seconds = []
    for _ in range(windows):
        sync(device)
        start = time.perf_counter()
        for i in range(window):
            step(i)
        sync(device)
        seconds.append((time.perf_counter() - start) / window)
    return seconds


def full_windows(
    argv: list[str], output: Path, batch_size: int, windows: int, window: int
) -> list[float]:
    """Seconds per step of train.py, from its metrics.jsonl (the first window is warm-up)."""
    argv = [*argv, "--output-dir", str(output), "--max-steps", str(window * (windows + 1))]
    argv += ["--log-every", str(window), "--save-every", "0", "--warmup-steps", "1"]
    if train.main(argv) != 0:
        raise SystemExit(f"bench_train.py: train.py failed (above); its run folder: {output}")
    records = [json.loads(line) for line in (output / "metrics.jsonl").open()]
    if len(records) < windows + 1:  # a run that logged no window is no measurement
        raise SystemExit(f"bench_train.py: {output}/metrics.jsonl has {len(records)} of "
                         f"{windows + 1} windows; see train.py's lines above")  # fmt: skip
    return [batch_size / r["samples_per_s_per_process"] for r in records[1:]]


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    # config
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="tiny", help="training preset, as train.py --config")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--windows", type=int, default=3, help="timed windows per run")
    parser.add_argument("--window", type=int, default=10, help="steps per window")
    parser.add_argument(
        "--rounds", type=int, default=3, help="train.py runs, each between bare runs"
    )
    parser.add_argument("--output", type=Path, default=Path("bench-output/train"))
    args, extra = parser.parse_known_args(argv)
    code = code_state(MEASURED_MODULES)
    recipe_options = argparse.ArgumentParser(prog="bench_train.py", add_help=False)
    add_recipe_arguments(recipe_options)  # the rest are recipe fields, as train.py reads them
    overrides = recipe_overrides(recipe_options.parse_args(extra))
    overrides["cpu"] = str(args.device == "cpu")
    recipe = load_recipe(args.config, overrides)
    batch_size = recipe.data.batch_size
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in overrides.items() if k != "batch_size"]

    # data: toy pairs at the size the loader resizes to, enough rows for several batches
    work = Path(tempfile.mkdtemp(prefix="bench_train."))
    side = resize_size(recipe.model.image_size)
    rows = max(8 * batch_size, 2048)
    write_toy_shards(work / "pairs", rows, side=side, shard_rows=rows // 4)
    tokenizer_dir = build_toy_tokenizer(work / "tokenizer")
    train_argv = ["--config", args.config, "--train-data", str(work / "pairs")]
    train_argv += ["--tokenizer", str(tokenizer_dir), "--batch-size", str(batch_size), *flags]

    # loop: bare, full, bare, ..., full, bare. Each full run is compared with the bare runs
    # just before and after it, so drifting machine load (a shared CPU) cancels out.
    def bare() -> list[float]:
        return bare_windows(
            recipe, tokenizer_dir, work / "pairs", args.device, args.windows, args.window
        )

    bare_runs, full_runs = [bare()], []
    for round_ in range(args.rounds):
        full_runs.append(
            full_windows(train_argv, work / f"run{round_}", batch_size, args.windows, args.window)
        )
        bare_runs.append(bare())
    median = statistics.median
    ratios = [
        median(full) / ((median(before) + median(after)) / 2)
        for full, before, after in zip(full_runs, bare_runs, bare_runs[1:], strict=False)
    ]
    ratio = median(ratios)
    bare_s = median([s for run in bare_runs for s in run])
    full_s = median([s for run in full_runs for s in run])

    # report
    model_m = count_parameters(build_model(recipe.model, 400)) / 1e6
    device = (
        torch.cuda.get_device_name()
        if args.device == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    rows_md = [
        ["bare step (ready batches)", f"{bare_s:.4f}", f"{batch_size / bare_s:.0f}", "1.00"],
        ["train.py step", f"{full_s:.4f}", f"{batch_size / full_s:.0f}", f"{ratio:.2f}"],
    ]
    markdown = "\n".join(
        [
            f"# Training-loop overhead: `{args.config}` on {device}",
            "",
            f"{model_m:.1f}M parameters, batch {batch_size}, {recipe.model.image_size} px, "
            f"{recipe.model.max_length} tokens, precision {recipe.run.precision}, "
            f"{recipe.data.num_workers} loader worker(s); medians of windows of {args.window} steps. "
            f"Ratio: median over {args.rounds} rounds of train.py / the bare runs around it "
            f"({', '.join(f'{r:.2f}' for r in ratios)}). Target: <= 1.1.",
            "",
            markdown_table(["loop", "s/step (median)", "samples/s", "ratio"], rows_md),
        ]
    )
    data = {
        "config": args.config,
        "device": device,
        "batch_size": batch_size,
        "image_size": recipe.model.image_size,
        "bare_s_per_step": bare_runs,
        "full_s_per_step": full_runs,
        "ratios": ratios,
        "bare_median_s": bare_s,
        "full_median_s": full_s,
        "ratio": ratio,
        "samples_per_s": batch_size / full_s,
        "provenance": code,
    }
    write_report(args.output, f"bench_train_{args.config}_{args.device}", data, markdown)
    print(markdown)
    verdict = "meets" if ratio <= 1.1 else "misses"
    print(f"bench_train.py: ratio {ratio:.2f} {verdict} the 1.1 target", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
