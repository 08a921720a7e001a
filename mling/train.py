"""Train ALIGN from scratch: EfficientNet + BERT, contrastive loss over the global batch.

    accelerate launch mling/train.py --config mling/configs/tiny.yaml --train-data PAIRS \\
        --tokenizer VOCAB_DIR --output-dir runs/tiny [--max-steps N] [--key value ...]

Any recipe field is a flag (`--image-size 64 --batch-size 128 --lr 1e-3`); see mling/recipe.py.
Writes OUTPUT_DIR/metrics.jsonl (one line per logged step), TensorBoard logs in
OUTPUT_DIR/tensorboard, checkpoints in OUTPUT_DIR/checkpoints (`--resume latest` continues
from the exact data position and RNG state) and the final model in OUTPUT_DIR/model.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import AutoTokenizer

from data.pairs import InputError, column_map
from mling.checkpoint import CheckpointError, load_checkpoint, resolve, save_checkpoint, set_rng_state
from mling.eval_hook import run_eval_hook
from mling.export import export_model
from mling.loader import SKIP_REASONS, PairStream, build_loader, index_sources, per_process_batch
from mling.loss import contrastive_loss, gather_with_grad
from mling.model import DualEncoder, build_model, count_parameters, enable_gradient_checkpointing
from mling.optim import build_optimizer
from mling.recipe import RecipeError, load_recipe, parse_overrides
from mling.schedule import lr_at
from mling.transforms import to_model_pixels


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description="Train ALIGN.", epilog="Any recipe field is also a flag: --image-size 64."
    )
    parser.add_argument("--config", required=True, help="preset name (tiny, b3-mini, ...) or YAML")
    parser.add_argument("--train-data", required=True, nargs="+", help="pair shards, dirs, globs")
    parser.add_argument("--tokenizer", required=True, help="vocabulary dir (AutoTokenizer)")
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--max-steps", type=int, help="optimizer steps (overrides the preset)")
    parser.add_argument("--resume", help="'latest' or a checkpoint directory")
    return parser.parse_known_args(argv)


class StopFlag:
    """SIGTERM/SIGINT set a flag; the loop checkpoints and exits at the next safe point."""

    def __init__(self) -> None:
        self.signal = 0
        self.previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.previous[sig] = signal.signal(sig, self.handle)

    def handle(self, signum, frame) -> None:
        self.signal = signum

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def trim_metrics(path: Path, step: int) -> None:
    """A resumed run rewrites the steps after its checkpoint: drop them from metrics.jsonl."""
    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    # config
    args, extra = parse_args(argv)
    try:
        overrides = parse_overrides(extra)
        if args.max_steps is not None:
            overrides["max_steps"] = args.max_steps
        recipe = load_recipe(args.config, overrides)
    except RecipeError as error:
        print(f"train.py: {error}", file=sys.stderr)
        return 2
    run, model_cfg, data_cfg = recipe.run, recipe.model, recipe.data
    accelerator = Accelerator(
        mixed_precision=run.precision, cpu=run.cpu, log_with="tensorboard", project_dir=args.output_dir
    )
    main_process = accelerator.is_main_process
    rank, world = accelerator.process_index, accelerator.num_processes
    output_dir = args.output_dir
    checkpoints = output_dir / "checkpoints"

    # data
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    try:
        mapping = column_map(data_cfg.column_preset or None, data_cfg.columns)
        sources = index_sources(args.train_data, mapping)
        batch_size = per_process_batch(data_cfg.batch_size, world)
        resume = resolve(args.resume, output_dir) if args.resume else None
    except (InputError, CheckpointError) as error:
        print(f"train.py: {error}", file=sys.stderr)
        return 2

    # model and optimizer
    align = build_model(model_cfg, len(tokenizer), seed=run.seed)
    if run.grad_checkpointing:
        enable_gradient_checkpointing(align)
    model = DualEncoder(align)
    optimizer = build_optimizer(model, recipe.optim)
    model, optimizer = accelerator.prepare(model, optimizer)
    temperature = align.temperature
    saved = load_checkpoint(accelerator, resume, align, optimizer) if resume else {"step": 0}
    step = saved["step"]

    # loader: resumes mid-stream when the run has the same readers as the saved one
    stream = PairStream(
        sources,
        args.tokenizer,
        batch_size=batch_size,
        image_size=model_cfg.image_size,
        max_length=model_cfg.max_length,
        mapping=mapping,
        seed=run.seed,
        rank=rank,
        world_size=world,
        num_workers=data_cfg.num_workers,
        block_rows=data_cfg.block_rows,
        shuffle_rows=data_cfg.shuffle_rows,
        cache_mb=data_cfg.cache_mb,
    )
    batches = saved.get("batches", 0)
    if resume and saved.get("readers") == stream.readers:
        stream.positions = {int(k): v for k, v in saved["positions"].items()}
        stream.worker_offset = batches % stream.workers
    elif resume:
        print("train.py: resuming with other processes/workers: the data order restarts", file=sys.stderr)
    positions = dict(stream.positions)
    skipped = Counter(saved.get("skipped", {}))
    loader = build_loader(stream)

    # random state last: dropout differs per process, and a resumed run continues exactly
    if saved.get("rng"):
        set_rng_state(saved["rng"])
    else:
        torch.manual_seed(run.seed * 1000 + rank + 1)

    # logging
    metrics_path = output_dir / "metrics.jsonl"
    if main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        trim_metrics(metrics_path, step)
        hparams = {f"{s}/{k}": str(v) if isinstance(v, list) else v for s, body in recipe.to_dict().items() for k, v in body.items()}
        accelerator.init_trackers("tensorboard", config=hparams)
        print(
            f"train.py: {count_parameters(align) / 1e6:.1f}M parameters, {stream.total_rows} pairs, "
            f"{world} process(es) x {batch_size} pairs, embedding {align.config.projection_dim}",
            file=sys.stderr,
        )
    progress = tqdm(total=run.max_steps, initial=step, disable=not main_process, desc="train")
    stop = StopFlag()

    # loop
    device = accelerator.device
    model.train()
    data = iter(loader)
    loss_sum = torch.zeros((), device=device)
    logged_step, logged_time = step, time.perf_counter()
    try:
        while step < run.max_steps:
            batch = next(data)
            positions[batch["reader"]] = batch["position"]
            skipped.update(batch["skipped"])
            batches += 1
            lr = lr_at(step, recipe.optim, run.max_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr

            pixels = to_model_pixels(batch["pixel_values"].to(device, non_blocking=True))
            input_ids = batch["input_ids"].to(device, non_blocking=True)
            attention_mask = batch["attention_mask"].to(device, non_blocking=True)
            image_embeds, text_embeds, temp = model(pixels, input_ids, attention_mask)
            loss = contrastive_loss(
                gather_with_grad(image_embeds), gather_with_grad(text_embeds), temp, recipe.loss.label_smoothing
            )
            accelerator.backward(loss)
            if recipe.optim.max_grad_norm and recipe.optim.optimizer != "lamb":
                accelerator.clip_grad_norm_(model.parameters(), recipe.optim.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                temperature.clamp_(min=recipe.loss.min_temperature)
            step += 1
            loss_sum += loss.detach()
            progress.update(1)

            # log: the only host syncs of the loop
            stopping = bool(stop.signal) and world == 1
            if step % run.log_every == 0 or step == run.max_steps:
                totals = torch.tensor(
                    [float(bool(stop.signal))] + [float(skipped[r]) for r in SKIP_REASONS], device=device
                )
                totals = accelerator.reduce(totals, "sum") if world > 1 else totals
                stopping = bool(totals[0].item())
                now = time.perf_counter()
                per_process = batch_size * (step - logged_step) / (now - logged_time)
                record = {
                    "step": step,
                    "loss": loss_sum.item() / (step - logged_step),
                    "temperature": temperature.item(),
                    "lr": lr,
                    "samples_per_s": per_process * world,
                    "samples_per_s_per_process": per_process,
                    **{f"skipped_{r}": int(totals[i + 1].item()) for i, r in enumerate(SKIP_REASONS)},
                }
                if main_process:
                    with metrics_path.open("a", encoding="utf-8") as file:
                        file.write(json.dumps(record) + "\n")
                    progress.set_postfix(loss=f"{record['loss']:.3f}", temp=f"{record['temperature']:.3f}")
                accelerator.log({k: v for k, v in record.items() if k != "step"}, step=step)
                loss_sum.zero_()
                logged_step, logged_time = step, time.perf_counter()

            # checkpoint and evaluate
            if (run.save_every and step % run.save_every == 0) or stopping or step == run.max_steps:
                process = {
                    "positions": {str(k): v for k, v in positions.items()},
                    "batches": batches,
                    "readers": stream.readers,
                    "skipped": dict(skipped),
                }
                save_checkpoint(
                    accelerator, checkpoints, step, align, optimizer, recipe, tokenizer, process, run.keep_checkpoints
                )
            if run.eval_every and run.eval_module and step % run.eval_every == 0:
                if main_process:
                    out = output_dir / "evals" / f"step-{step:08d}"
                    code = run_eval_hook(run.eval_module, run.eval_args, align, tokenizer, model_cfg.image_size, out)
                    accelerator.log({"eval_exit_code": -1 if code is None else code}, step=step)
                accelerator.wait_for_everyone()
                logged_time = time.perf_counter()  # evaluation time is not training throughput
            if stopping:
                break
    finally:
        stop.restore()
        progress.close()

    # save
    if step >= run.max_steps and main_process:
        export_model(align, tokenizer, model_cfg.image_size, output_dir / "model")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if step < run.max_steps:
        print(f"train.py: stopped by signal at step {step}; continue with --resume latest", file=sys.stderr)
        return 128 + stop.signal
    if main_process:
        print(f"train.py: done, {step} steps; model in {output_dir / 'model'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
