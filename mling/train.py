"""Train ALIGN from scratch: EfficientNet + BERT, contrastive loss over the global batch.

    accelerate launch mling/train.py --config mling/configs/tiny.yaml --train-data PAIRS \\
        --tokenizer VOCAB_DIR --output-dir runs/tiny [--max-steps N] [--key value ...]

Any recipe field is a flag (`--image-size 64 --batch-size 128 --lr 1e-3`); see mling/training/recipe.py.
Writes OUTPUT_DIR/metrics.jsonl (one line per logged step), TensorBoard logs in
OUTPUT_DIR/tensorboard (or W&B's run files, or none: --report-to), checkpoints in
OUTPUT_DIR/checkpoints (`--resume latest` continues from the exact data position and RNG
state) and the final model in OUTPUT_DIR/model.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys

import torch
from accelerate import Accelerator
from transformers import AutoTokenizer

from mling.common.cli import deprecation_notice, one_line_errors
from mling.common.errors import InputError
from mling.common.hub import resolve_source
from mling.common.storage import local_path
from mling.pairs.schema import add_column_arguments
from mling.training.checkpoint import (
    checkpoint_architecture,
    load_checkpoint,
    prune,
    resolve,
    save_checkpoint,
    set_rng_state,
)
from mling.training.eval_hook import run_eval_hook
from mling.training.grad_cache import backward_global_batch
from mling.training.image_cache import (
    CACHE_DIR,
    CACHE_FILE,
    build_image_cache,
    cache_key,
    cache_wanted,
)
from mling.training.loader import (
    SKIP_REASONS,
    PairStream,
    StreamState,
    build_loader,
    index_sources,
    per_process_batch,
    train_columns,
)
from mling.training.loss import align_loss
from mling.training.model import (
    DualEncoder,
    build_model,
    count_parameters,
    enable_gradient_checkpointing,
)
from mling.training.model_card import DEFAULT_LICENSE, model_card
from mling.training.model_export import export_model, push_to_hub
from mling.training.optim import build_optimizer
from mling.training.pretrained import build_initial_model, freeze, resolve_init
from mling.training.recipe import FREEZABLE, Recipe, load_recipe, parse_overrides
from mling.training.run_dir import check_run_dir, lock_run_dir, start_over, unlock_run_dir
from mling.training.schedule import lr_at
from mling.training.trackers import TRACKERS, log_with, start_tracker
from mling.training.train_log import TrainLog


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description="Train ALIGN.",
        epilog="Any recipe field is also a flag: --image-size 64.",
        allow_abbrev=False,  # an unknown flag is a recipe field, never an abbreviation
    )
    parser.add_argument("--config", required=True, help="preset name (tiny, b3-mini, ...) or YAML")
    parser.add_argument("--train-data", required=True, nargs="+", help="pair shards, dirs, globs")
    parser.add_argument("--tokenizer", required=True, help="vocabulary dir (AutoTokenizer)")
    parser.add_argument("--output-dir", required=True, help="local run folder")
    parser.add_argument("--max-steps", type=int, help="optimizer steps (overrides the preset)")
    parser.add_argument("--resume", help="'latest' or a checkpoint directory")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in an --output-dir that holds an earlier run (its checkpoints, metrics "
        "and model are deleted; nothing else)",
    )
    add_column_arguments(parser)
    start = parser.add_argument_group(
        "start from trained weights: a model folder (any AlignModel export) or a hub id"
    )
    start.add_argument("--init", help="both towers and the temperature")
    start.add_argument("--init-image", help="the image tower (its config wins over the preset)")
    start.add_argument("--init-text", help="the text tower and its projection")
    start.add_argument(
        "--freeze",
        action="append",
        choices=FREEZABLE,
        help="keep a tower fixed (LiT: --init-image SRC --freeze image); repeatable",
    )
    parser.add_argument("--push-to-hub", metavar="REPO", help="upload the final model (hub id)")
    parser.add_argument(
        "--license", default=DEFAULT_LICENSE, help="the model card's license field (the data's)"
    )
    parser.add_argument(
        "--report-to",
        choices=TRACKERS,
        default="tensorboard",
        help="the tracker (metrics.jsonl is always written); wandb follows WANDB_MODE etc.",
    )
    return parser.parse_known_args(argv)


def cpu_processes() -> bool:
    """True under a multi-process launch on a machine without an accelerator: accelerate then
    needs cpu=True to join the processes over gloo (otherwise each one trains alone)."""
    from accelerate.utils import is_torch_xla_available

    device_api = getattr(torch, "accelerator", None)  # torch >= 2.6: CUDA, XPU, MPS, ...
    has_device = device_api.is_available() if device_api else torch.cuda.is_available()
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return launched and not has_device and not is_torch_xla_available()


class StopFlag:
    """SIGTERM/SIGINT set a flag; the loop checkpoints and exits at the next safe point."""

    def __init__(self) -> None:
        self.signal = 0
        self.previous = {s: signal.signal(s, self.handle) for s in (signal.SIGTERM, signal.SIGINT)}

    def handle(self, signum, frame) -> None:
        self.signal = signum

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def train_step(
    accelerator, model, optimizer, batch: dict, lr: float, recipe: Recipe
) -> torch.Tensor:
    """One update: embed this process's batch (in micro-batches if the recipe asks), gather
    every process's embeddings (gradients included), ALIGN's loss over the global batch,
    backward, optimizer step. Returns the loss as a device tensor: reading it would be a host
    sync."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss_fn = functools.partial(
        align_loss,
        label_smoothing=recipe.loss.label_smoothing,
        text_text_weight=recipe.loss.text_text_weight,
    )
    loss = backward_global_batch(accelerator, model, batch, loss_fn, recipe.data.micro_batch)
    if recipe.optim.max_grad_norm and recipe.optim.optimizer != "lamb":  # LAMB clips itself
        accelerator.clip_grad_norm_(model.parameters(), recipe.optim.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.align.temperature.clamp_(min=recipe.loss.min_temperature)
    return loss


@one_line_errors("train.py")
def main(argv: list[str] | None = None) -> int:
    # config: the preset, then the flags
    args, extra = parse_args(argv)
    overrides = parse_overrides(extra)
    if "columns" in overrides:
        deprecation_notice("train.py", "--columns A=B,C=D", "--column A=B --column C=D")
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    if args.column_preset:
        overrides["column_preset"] = args.column_preset
    if args.column:
        overrides["columns"] = args.column
    for name in ("init", "init_image", "init_text"):
        if getattr(args, name):
            overrides[name] = getattr(args, name)
    if args.freeze:
        overrides["freeze"] = args.freeze
    recipe = load_recipe(args.config, overrides)
    run, model_cfg, data_cfg = recipe.run, recipe.model, recipe.data
    output_dir = local_path(args.output_dir, "--output-dir")  # checkpoints need renames
    checkpoints = output_dir / "checkpoints"
    check_run_dir(output_dir, resume=bool(args.resume), overwrite=args.overwrite)
    accelerator = Accelerator(
        mixed_precision=run.precision,
        cpu=run.cpu or cpu_processes(),
        log_with=log_with(args.report_to),
        project_dir=output_dir,
    )
    main_process, world = accelerator.is_main_process, accelerator.num_processes
    if main_process:  # one run per folder
        lock_run_dir(output_dir)
        if args.overwrite and not args.resume:
            start_over(output_dir)
    accelerator.wait_for_everyone()

    # data
    tokenizer_source = resolve_source(args.tokenizer, "--tokenizer")
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source.path)
    except (OSError, ValueError, TypeError) as error:
        raise InputError(
            f"--tokenizer {args.tokenizer} is not a tokenizer folder ({str(error).splitlines()[0]}); "
            "pass what tokenizer_training/build_vocab.py wrote"
        ) from None
    mapping, layout = train_columns(
        args.train_data, data_cfg.column_preset or None, data_cfg.columns
    )
    sources = index_sources(
        args.train_data, mapping, recipe.loss.positives, data_cfg.anchor_language
    )
    batch_size = per_process_batch(data_cfg.batch_size, world)
    if data_cfg.micro_batch and batch_size % data_cfg.micro_batch:
        raise InputError(
            f"--micro-batch {data_cfg.micro_batch} does not divide each process's "
            f"{batch_size} pairs (--batch-size {data_cfg.batch_size} over {world} process(es)); "
            "pick a divisor"
        )
    resume = resolve(args.resume, output_dir) if args.resume else None
    stream = PairStream(
        sources,
        str(tokenizer_source.path),
        batch_size=batch_size,
        image_size=model_cfg.image_size,
        max_length=model_cfg.max_length,
        mapping=mapping,
        seed=run.seed,
        rank=accelerator.process_index,
        world_size=world,
        num_workers=data_cfg.num_workers,
        block_rows=data_cfg.block_rows,
        shuffle_rows=data_cfg.shuffle_rows,
        group_rows=data_cfg.group_rows,
        pad_to_max_length=data_cfg.pad_to_max_length,
        captions_per_image=data_cfg.captions_per_image,
        cache_mb=data_cfg.cache_mb,
        flip=data_cfg.flip,
        crop=data_cfg.crop,
        anchor_language=data_cfg.anchor_language,
        id_column=recipe.loss.positives,
    )

    # model and optimizer: random, or towers from trained models (the checkpoint's on resume)
    init, initialized = recipe.init, []
    if resume:
        if init.init or init.init_image or init.init_text:
            initialized.append("--resume: the checkpoint's weights win; --init* ignored")
        align = checkpoint_architecture(resume, seed=run.seed)
    elif init.init or init.init_image or init.init_text:
        init_sources = resolve_init(init)
        align, initialized = build_initial_model(model_cfg, len(tokenizer), init_sources, run.seed)
    else:
        align = build_model(model_cfg, len(tokenizer), seed=run.seed)
    for tower, source in (("image", init.init_image), ("text", init.init_text)):
        if tower in init.freeze and not (source or init.init or resume):
            initialized.append(f"--freeze {tower} keeps a random {tower} tower fixed (no --init)")
    freeze(align, init.freeze)
    if run.grad_checkpointing:
        enable_gradient_checkpointing(align)
    model = DualEncoder(
        align, frozen=tuple(init.freeze), text_bucket_rows=data_cfg.text_bucket_rows
    )
    optimizer = build_optimizer(model, recipe.optim)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()  # for the loop; a frozen tower in eval mode, as the image cache embeds too

    # resume: weights, optimizer, data position; random state last, nothing may draw after it
    saved = load_checkpoint(accelerator, resume, align, optimizer) if resume else {"step": 0}

    # a frozen image tower with fixed pixels: each distinct image embedded once, before step 1
    # (by the checkpoint's tower on resume; drawing no random numbers)
    image_table = None
    why_not = cache_wanted(init.freeze, data_cfg.crop, data_cfg.flip)
    if data_cfg.image_cache and why_not is None:
        key = cache_key(align.vision_model, model_cfg.image_size, run.precision)
        cache = build_image_cache(
            accelerator,
            accelerator.unwrap_model(model),  # DDP would sync buffers on every call
            stream.image_payloads(),
            output_dir / CACHE_DIR / CACHE_FILE,
            key,
            model_cfg.image_size,
        )
        stream.image_index = cache.index()
        image_table = cache.embeds.to(accelerator.device)
    elif data_cfg.image_cache and "image" in init.freeze and main_process:
        print(f"train.py: image-embedding cache off: {why_not}", file=sys.stderr)

    step = saved["step"]
    consumed = StreamState(stream.readers)
    if "stream" in saved:
        consumed = StreamState.from_dict(saved["stream"])
        if not consumed.resume(stream):
            print(
                "train.py: not the checkpoint's processes x workers: data restarts", file=sys.stderr
            )
            consumed = StreamState(stream.readers)
    loader = build_loader(stream)
    if "rng" in saved:
        set_rng_state(saved["rng"])
    else:
        torch.manual_seed(run.seed * 1000 + accelerator.process_index + 1)  # dropout per process

    # logging
    if main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        start_tracker(accelerator, args.report_to, output_dir, recipe.to_dict())
        for line in initialized:
            print(f"train.py: {line}", file=sys.stderr)
        if layout and not data_cfg.column_preset:
            print(f"train.py: input layout {layout}, recognized from its columns", file=sys.stderr)
        print(
            f"train.py: {count_parameters(align) / 1e6:.1f}M parameters "
            f"({count_parameters(align, trainable=True) / 1e6:.1f}M trained), {stream.total_rows} pairs, "
            f"{world} process(es) x {batch_size} pairs, embedding {align.config.projection_dim}",
            file=sys.stderr,
        )
    log = TrainLog(accelerator, output_dir / "metrics.jsonl", step, run.max_steps, batch_size)
    stop = StopFlag()

    # loop (in training mode since prepare, frozen towers in eval mode)
    data = iter(loader)
    try:
        while step < run.max_steps:
            batch = next(data)
            consumed.consume(batch)
            if image_table is not None:
                batch["image_embeds"] = image_table[batch.pop("image_rows").to(image_table.device)]
            lr = lr_at(step, recipe.optim, run.max_steps)
            log.add(train_step(accelerator, model, optimizer, batch, lr, recipe))
            step += 1

            # log: the loop's only host syncs, where the processes also agree on stopping
            stopping = bool(stop.signal) and world == 1
            if step % run.log_every == 0 or step == run.max_steps:
                counts = [bool(stop.signal)] + [consumed.skipped[r] for r in SKIP_REASONS]
                totals = accelerator.reduce(
                    torch.tensor(counts, dtype=torch.long, device=accelerator.device), "sum"
                )
                stopping = bool(totals[0].item())
                log.point(step, lr, align.temperature, totals[1:].tolist())

            # checkpoint and evaluate
            if (run.save_every and step % run.save_every == 0) or stopping or step == run.max_steps:
                process = {"stream": consumed.to_dict()}
                save_checkpoint(
                    accelerator, checkpoints, step, align, optimizer, recipe, tokenizer, process
                )
                if main_process:
                    prune(checkpoints, run.keep_checkpoints)
            if run.eval_every and run.eval_module and step % run.eval_every == 0:
                if main_process:
                    out = output_dir / "evals" / f"step-{step:08d}"
                    code = run_eval_hook(run, align, tokenizer, model_cfg.image_size, out)
                    accelerator.log({"eval_exit_code": code}, step=step)
                    model.train()  # the hook restored align's mode: frozen towers back to eval
                accelerator.wait_for_everyone()
                log.restart(step)  # evaluation time is not training throughput
            if stopping:
                break
    finally:
        stop.restore()
        log.close()

    # save
    if step >= run.max_steps and main_process:
        card = model_card(recipe, stream.total_rows, output_dir, args.license)
        export_model(align, tokenizer, model_cfg.image_size, output_dir / "model", card, True)
        if args.push_to_hub:
            print(f"train.py: uploaded to {push_to_hub(output_dir / 'model', args.push_to_hub)}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if step < run.max_steps:
        if main_process:
            unlock_run_dir(output_dir)
        print(
            f"train.py: stopped by signal at step {step}; go on with --resume latest",
            file=sys.stderr,
        )
        return 128 + stop.signal
    if main_process:
        unlock_run_dir(output_dir)
        print(f"train.py: done, {step} steps; model in {output_dir / 'model'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
