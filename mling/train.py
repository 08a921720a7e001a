"""Train ALIGN from scratch: EfficientNet + BERT, contrastive loss over the global batch.

    accelerate launch mling/train.py --config mling/configs/tiny.yaml --train-data PAIRS \\
        --tokenizer VOCAB_DIR --output-dir runs/tiny [--max-steps N] [--key value ...]

Any recipe field is a flag (`--image-size 64 --batch-size 128 --lr 1e-3`); see mling/training/recipe.py.
Writes OUTPUT_DIR/metrics.jsonl (one line per logged step), TensorBoard logs in
OUTPUT_DIR/tensorboard (or W&B's run files, or none: --report-to), checkpoints in
OUTPUT_DIR/checkpoints (`--resume latest` continues from the exact data position and RNG
state; a recipe change that alters the run is refused unless --allow-recipe-change names it)
and the final model in OUTPUT_DIR/model. A NaN or infinite loss, gradient or weight stops the
run with exit code 3, nothing saved from it (mling/training/finite.py).
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedType
from transformers import AutoTokenizer

from mling.common.cli import OneLineParser, environment_epilog, one_line_errors
from mling.common.errors import InputError
from mling.common.hub import HUB_ENVIRONMENT, resolve_source
from mling.common.storage import STORAGE_ENVIRONMENT, local_path
from mling.training.checkpoint import (
    check_resumed_recipe,
    checkpoint_architecture,
    load_checkpoint,
    prune,
    resolve,
    save_checkpoint,
    set_rng_state,
)
from mling.training.eval_hook import eval_dir, run_eval_hook
from mling.training.finite import DIVERGED_EXIT, FiniteWatch
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
from mling.training.random_state import seed_xla_step
from mling.training.recipe import Recipe, load_recipe
from mling.training.recipe_cli import add_recipe_arguments, recipe_overrides
from mling.training.run_dir import check_run_dir, lock_run_dir, start_over, unlock_run_dir
from mling.training.schedule import lr_at
from mling.training.sigmoid_loss import BIAS_INIT, sigmoid_loss
from mling.training.trackers import TRACKERS, log_with, start_tracker
from mling.training.train_log import TrainLog


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The run's own options, then every recipe field, grouped by section (recipe_cli.py)."""
    parser = OneLineParser(
        prog="train.py",
        usage="train.py --config PRESET --train-data PAIRS [PAIRS ...] --tokenizer VOCAB "
        "--output-dir DIR [options]",
        description=__doc__.split("\n\n")[0]
        + " A preset sets its own values; an option given here overrides the preset's.",
        epilog=environment_epilog(
            STORAGE_ENVIRONMENT,
            HUB_ENVIRONMENT + " (--tokenizer, --init*)",
            "--report-to wandb follows WANDB_MODE, WANDB_PROJECT and the other WANDB_ variables",
            "accelerate launch sets WORLD_SIZE, RANK and the rest of a multi-process run",
        ),
        allow_abbrev=False,  # a prefix of a field is a typo, not that field
    )
    run = parser.add_argument_group("the run")
    run.add_argument("--config", required=True, help="preset name (tiny, b3-mini, ...) or YAML")
    run.add_argument("--train-data", required=True, nargs="+", help="pair shards, dirs, globs")
    run.add_argument("--tokenizer", required=True, help="vocabulary dir (AutoTokenizer) or hub id")
    run.add_argument("--output-dir", required=True, help="local run folder")
    run.add_argument("--resume", help="'latest' or a checkpoint directory")
    run.add_argument(
        "--allow-recipe-change",
        metavar="FIELD[,FIELD]",
        action="append",
        default=[],
        help="with --resume: accept these recipe fields differing from the checkpoint's "
        "(refused otherwise, as they change the run); the change is logged",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in an --output-dir that holds an earlier run (its checkpoints, metrics "
        "and model are deleted; nothing else)",
    )
    run.add_argument("--push-to-hub", metavar="REPO", help="upload the final model (hub id)")
    run.add_argument(
        "--license", default=DEFAULT_LICENSE, help="the model card's license field (the data's)"
    )
    run.add_argument(
        "--report-to",
        choices=TRACKERS,
        default="tensorboard",
        help="the tracker (metrics.jsonl is always written); wandb follows WANDB_MODE etc.",
    )
    add_recipe_arguments(parser)
    return parser.parse_args(argv)


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
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One update: embed this process's batch (in micro-batches if the recipe asks), the loss
    of its rows against the global batch (the loss gathers, or passes round, the other
    processes' embeddings, gradients included), backward, optimizer step. Returns this
    process's loss (P x its share of the global loss) and the gradients' global norm as device
    tensors (reading them would be a host sync); the norm is None under fp16, whose loss
    scaler skips the steps with infinite gradients itself."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    if recipe.loss.loss == "sigmoid":  # the bias comes from the model (DualEncoder.logit_bias)
        loss_fn = sigmoid_loss
    else:
        loss_fn = functools.partial(
            align_loss,
            label_smoothing=recipe.loss.label_smoothing,
            text_text_weight=recipe.loss.text_text_weight,
        )
    loss = backward_global_batch(accelerator, model, batch, loss_fn, recipe.data.micro_batch)
    if recipe.optim.max_grad_norm and recipe.optim.optimizer != "lamb":  # LAMB clips itself
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), recipe.optim.max_grad_norm)
    else:
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads) if grads else None
    if accelerator.scaler is not None:
        grad_norm = None
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.align.temperature.clamp_(min=recipe.loss.min_temperature)
    return loss, grad_norm


def cut_graph(accelerator) -> None:
    """Under XLA (a TPU): compile (once per distinct graph) and run the ops recorded so far.
    XLA records ops lazily until a sync; the loop cuts at the end of every step and after its
    logging point, so every step records the same ops, one graph run again and again (without
    the cuts, steps pile up into one graph until the next host read). Elsewhere nothing."""
    if accelerator.distributed_type == DistributedType.XLA:
        import torch_xla

        torch_xla.sync()


@dataclass
class Run:
    """What every stage of a run needs: its options, its recipe, its processes, its folder,
    and the lines to say once training starts."""

    args: argparse.Namespace
    recipe: Recipe
    accelerator: Accelerator
    output_dir: Path
    notes: list[str] = field(default_factory=list)
    recipe_changes: list[str] = field(default_factory=list)  # allowed by the user on resume

    @property
    def main_process(self) -> bool:
        return self.accelerator.is_main_process


def open_run(args: argparse.Namespace, recipe: Recipe) -> Run:
    """Claim the run folder (one run per folder; refused before any work) and start the
    processes."""
    output_dir = local_path(args.output_dir, "--output-dir")  # checkpoints need renames
    check_run_dir(output_dir, resume=bool(args.resume), overwrite=args.overwrite)
    accelerator = Accelerator(
        mixed_precision=recipe.run.precision,
        cpu=recipe.run.cpu or cpu_processes(),
        log_with=log_with(args.report_to),
        project_dir=output_dir,
    )
    if accelerator.distributed_type == DistributedType.XLA and recipe.run.cpu:
        raise InputError(
            "--cpu true: accelerate takes XLA whenever torch_xla imports (PJRT_DEVICE set); "
            "to train on the CPU here, set USE_TORCH_XLA=0"
        )
    if accelerator.distributed_type == DistributedType.XLA and recipe.data.text_bucket_rows:
        raise InputError(
            f"--text-bucket-rows {recipe.data.text_bucket_rows} cuts each bucket to its longest "
            "caption, a new shape and so a new XLA graph per width: under XLA (a TPU) pass "
            "--text-bucket-rows 0 --pad-to-max-length true"
        )
    if accelerator.is_main_process:
        lock_run_dir(output_dir)
        if args.overwrite and not args.resume:
            start_over(output_dir)
    accelerator.wait_for_everyone()
    return Run(args, recipe, accelerator, output_dir)


def resume_checkpoint(run: Run) -> Path | None:
    """The checkpoint `--resume` names (None: start fresh), its recipe compared with this run's:
    a change that alters the run is refused unless --allow-recipe-change names it."""
    args = run.args
    if not args.resume:
        if args.allow_recipe_change:
            raise InputError("--allow-recipe-change is for --resume; a fresh run takes any recipe")
        return None
    checkpoint = resolve(args.resume, run.output_dir)
    if checkpoint is not None:
        run.recipe_changes = check_resumed_recipe(checkpoint, run.recipe, args.allow_recipe_change)
        run.notes.extend(f"--resume with a changed recipe: {c}" for c in run.recipe_changes)
    return checkpoint


def load_tokenizer(name: str) -> tuple[object, Path]:
    """--tokenizer (a folder or a hub id) -> (the tokenizer, its local folder)."""
    source = resolve_source(name, "--tokenizer")
    try:
        return AutoTokenizer.from_pretrained(source.path), source.path
    except (OSError, ValueError, TypeError) as error:
        raise InputError(
            f"--tokenizer {name} is not a tokenizer folder ({str(error).splitlines()[0]}); "
            "pass what tokenizer_training/build_vocab.py wrote"
        ) from None


def build_stream(run: Run, tokenizer_dir: Path) -> PairStream:
    """This process's share of the shuffled pairs, as the recipe's batches."""
    data, world = run.recipe.data, run.accelerator.num_processes
    mapping, layout = train_columns(run.args.train_data, data.column_preset or None, data.columns)
    if layout and not data.column_preset:
        run.notes.append(f"input layout {layout}, recognized from its columns")
    sources = index_sources(
        run.args.train_data, mapping, run.recipe.loss.positives, data.anchor_language
    )
    batch_size = per_process_batch(data.batch_size, world)
    if data.micro_batch and batch_size % data.micro_batch:
        raise InputError(
            f"--micro-batch {data.micro_batch} does not divide each process's "
            f"{batch_size} pairs (--batch-size {data.batch_size} over {world} process(es)); "
            "pick a divisor"
        )
    return PairStream(
        sources,
        str(tokenizer_dir),
        batch_size=batch_size,
        image_size=run.recipe.model.image_size,
        max_length=run.recipe.model.max_length,
        mapping=mapping,
        seed=run.recipe.run.seed,
        rank=run.accelerator.process_index,
        world_size=world,
        num_workers=data.num_workers,
        block_rows=data.block_rows,
        shuffle_rows=data.shuffle_rows,
        group_rows=data.group_rows,
        pad_to_max_length=data.pad_to_max_length,
        captions_per_image=data.captions_per_image,
        cache_mb=data.cache_mb,
        flip=data.flip,
        crop=data.crop,
        anchor_language=data.anchor_language,
        id_column=run.recipe.loss.positives,
    )


def build_training_model(run: Run, vocab_size: int, resume: Path | None):
    """The towers (random, from trained models, or the checkpoint's architecture on resume),
    frozen as asked, wrapped for the loop, with the optimizer; both prepared by accelerate.
    Returns (align, model, optimizer)."""
    recipe, init = run.recipe, run.recipe.init
    seed = recipe.run.seed
    if resume:
        if init.init or init.init_image or init.init_text:
            run.notes.append("--resume: the checkpoint's weights win; --init* ignored")
        align = checkpoint_architecture(resume, seed=seed)
    elif init.init or init.init_image or init.init_text:
        align, initialized = build_initial_model(recipe.model, vocab_size, resolve_init(init), seed)
        run.notes.extend(initialized)
    else:
        align = build_model(recipe.model, vocab_size, seed=seed)
    for tower, source in (("image", init.init_image), ("text", init.init_text)):
        if tower in init.freeze and not (source or init.init or resume):
            run.notes.append(f"--freeze {tower} keeps a random {tower} tower fixed (no --init)")
    freeze(align, init.freeze)
    if recipe.run.grad_checkpointing:
        enable_gradient_checkpointing(align)
    model = DualEncoder(
        align,
        frozen=tuple(init.freeze),
        text_bucket_rows=recipe.data.text_bucket_rows,
        logit_bias=BIAS_INIT if recipe.loss.loss == "sigmoid" else None,
    )
    optimizer = build_optimizer(model, recipe.optim)
    model, optimizer = run.accelerator.prepare(model, optimizer)
    model.train()  # for the loop; a frozen tower in eval mode, as the image cache embeds too
    return align, model, optimizer


def embed_images_once(run: Run, align, model, stream: PairStream) -> torch.Tensor | None:
    """A frozen image tower with fixed pixels: each distinct image embedded once, before step 1
    (by the checkpoint's tower on resume; drawing no random numbers). Returns the (images, D)
    table the loop indexes, or None when the tower runs every step."""
    recipe = run.recipe
    why_not = cache_wanted(recipe.init.freeze, recipe.data.crop, recipe.data.flip)
    if not recipe.data.image_cache:
        return None
    if why_not is not None:
        if "image" in recipe.init.freeze and run.main_process:
            print(f"train.py: image-embedding cache off: {why_not}", file=sys.stderr)
        return None
    key = cache_key(align.vision_model, recipe.model.image_size, recipe.run.precision)
    cache = build_image_cache(
        run.accelerator,
        run.accelerator.unwrap_model(model),  # DDP would sync buffers on every call
        stream.image_payloads(),
        run.output_dir / CACHE_DIR / CACHE_FILE,
        key,
        recipe.model.image_size,
    )
    stream.image_index = cache.index()
    return cache.embeds.to(run.accelerator.device)


@dataclass
class Position:
    """Where a run stands: its step, what it consumed of the data, the loader that goes on from
    there, and the log's state (the losses since the last point; None at the start)."""

    step: int
    consumed: StreamState
    loader: object
    log: dict | None = None


@dataclass
class Outcome:
    """How the loop ended: its last step, the signal that stopped it (0: none), the first step
    whose loss, gradients or weights were not finite (0: none), evaluations run and failed."""

    step: int
    signal: int = 0
    diverged_at: int = 0
    evals_run: int = 0
    evals_failed: int = 0


def process_seed(run: Run) -> int:
    """The seed of this process's dropout and drop-connect: each process draws its own."""
    return run.recipe.run.seed * 1000 + run.accelerator.process_index + 1


def restore_position(run: Run, stream: PairStream, saved: dict) -> Position:
    """Where the data and the random numbers stand: the checkpoint's, or the start. The random
    state is set last: nothing may draw after it."""
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
    else:  # dropout differs per process
        torch.manual_seed(process_seed(run))
    return Position(saved["step"], consumed, loader, saved.get("log"))


def announce(run: Run, align, stream: PairStream) -> None:
    """The tracker, and what this run is, on stderr (main process only)."""
    if not run.main_process:
        return
    run.output_dir.mkdir(parents=True, exist_ok=True)
    start_tracker(run.accelerator, run.args.report_to, run.output_dir, run.recipe.to_dict())
    for line in run.notes:
        print(f"train.py: {line}", file=sys.stderr)
    print(
        f"train.py: {count_parameters(align) / 1e6:.1f}M parameters "
        f"({count_parameters(align, trainable=True) / 1e6:.1f}M trained), {stream.total_rows} "
        f"pairs, {run.accelerator.num_processes} process(es) x {stream.batch_size} pairs, "
        f"embedding {align.config.projection_dim}",
        file=sys.stderr,
    )


def train_loop(run: Run, model, optimizer, align, tokenizer, at: Position, image_table) -> Outcome:
    """Steps until max_steps, a signal or a non-finite value, logging, evaluating and
    checkpointing on schedule."""
    recipe, accelerator = run.recipe, run.accelerator
    settings, world = recipe.run, accelerator.num_processes
    checkpoints = run.output_dir / "checkpoints"
    step, consumed = at.step, at.consumed
    batch_size = at.loader.dataset.batch_size  # this process's pairs per step
    log = TrainLog(
        accelerator, run.output_dir / "metrics.jsonl", step, settings.max_steps, batch_size, at.log
    )
    if run.recipe_changes:
        log.notes["recipe_changes"] = run.recipe_changes
    watch = FiniteWatch(accelerator.device, step)
    stop = StopFlag()
    data = iter(at.loader)
    outcome = Outcome(step)
    try:
        while step < settings.max_steps:
            batch = next(data)
            consumed.consume(batch)
            if image_table is not None:
                batch["image_embeds"] = image_table[batch.pop("image_rows").to(image_table.device)]
            lr = lr_at(step, recipe.optim, settings.max_steps)
            seed_xla_step(accelerator.device, process_seed(run), step)
            loss, grad_norm = train_step(accelerator, model, optimizer, batch, lr, recipe)
            log.add(loss)
            step += 1
            watch.observe(loss, grad_norm)  # on the device: no host sync
            cut_graph(accelerator)

            # what this step ends with
            last = step == settings.max_steps
            logging = step % settings.log_every == 0 or last
            saving = last or bool(settings.save_every and step % settings.save_every == 0)
            evaluating = bool(
                settings.eval_every and settings.eval_module and step % settings.eval_every == 0
            )
            stopping = bool(stop.signal) and world == 1
            if not (logging or saving or evaluating or stopping):
                continue

            # sync: the loop's only host syncs, at logging points and before anything is saved
            # or evaluated; the processes agree on stopping and on finite values here
            if saving or evaluating or stopping:
                watch.observe_weights(align)
            flags = torch.stack([(watch.first_bad > 0).long(), watch.first_bad])
            counts = [bool(stop.signal)] + [consumed.skipped[r] for r in SKIP_REASONS]
            counts = torch.tensor(counts, dtype=torch.long, device=accelerator.device)
            totals = accelerator.reduce(torch.cat([flags, counts]), "sum").tolist()
            if totals[0]:  # nothing is saved from here: the last checkpoint is the last good one
                outcome.diverged_at = int(watch.first_bad.item()) or totals[1] // totals[0]
                break
            stopping = bool(totals[2])

            # evaluate, log, checkpoint
            if evaluating:
                if run.main_process:
                    started = time.perf_counter()
                    out = eval_dir(run.output_dir, step)
                    code = run_eval_hook(settings, align, tokenizer, recipe.model.image_size, out)
                    log.evaluated(code, time.perf_counter() - started)  # not training time
                    accelerator.log({"eval_exit_code": code}, step=step)
                    model.train()  # the hook restored align's mode: frozen towers back to eval
                accelerator.wait_for_everyone()
            if logging:
                log.point(step, lr, align.temperature, totals[3:])
            if saving or stopping:
                process = {"stream": consumed.to_dict(), "log": log.state()}
                bias = accelerator.unwrap_model(model).logit_bias
                save_checkpoint(
                    accelerator,
                    checkpoints,
                    step,
                    align,
                    optimizer,
                    recipe,
                    tokenizer,
                    process,
                    bias,
                )
                if run.main_process:
                    prune(checkpoints, settings.keep_checkpoints)
            if stopping:
                break
            cut_graph(accelerator)  # the point's own ops (the log's reset): not the next step's
    finally:
        stop.restore()
        log.close()
    outcome.step, outcome.signal = step, stop.signal
    outcome.evals_run, outcome.evals_failed = log.evals_run, log.evals_failed
    return outcome


def finish(run: Run, align, tokenizer, total_rows: int, outcome: Outcome) -> int:
    """Export the model (and upload it) when the run is complete; release the folder. Returns
    the exit code: 0, 128 + the signal that stopped the run early, or DIVERGED_EXIT."""
    args, max_steps, step = run.args, run.recipe.run.max_steps, outcome.step
    model_dir = run.output_dir / "model"
    complete = step >= max_steps and not outcome.diverged_at
    if complete and run.main_process:
        card = model_card(run.recipe, total_rows, run.output_dir, args.license)
        export_model(align, tokenizer, run.recipe.model.image_size, model_dir, card, True)
        if args.push_to_hub:
            print(f"train.py: uploaded to {push_to_hub(model_dir, args.push_to_hub)}")
    run.accelerator.wait_for_everyone()
    run.accelerator.end_training()
    if run.main_process:
        unlock_run_dir(run.output_dir)
    if outcome.diverged_at:
        latest = resolve("latest", run.output_dir)
        kept = (
            f"checkpoint {latest.name} is the last good one: resume from it with a lower --lr "
            "(--resume latest --allow-recipe-change lr)"
            if latest
            else "no checkpoint came before it: fix the recipe (--lr, --temperature-init) and "
            "start over with --overwrite"
        )
        if run.main_process:
            print(
                f"train.py: non-finite training at step {outcome.diverged_at} (a NaN or infinite "
                f"loss, gradient or weight); stopped at step {step}, nothing saved from step "
                f"{outcome.diverged_at} on; {kept}",
                file=sys.stderr,
            )
        return DIVERGED_EXIT
    if step < max_steps:
        print(
            f"train.py: stopped by signal at step {step}; go on with --resume latest",
            file=sys.stderr,
        )
        return 128 + outcome.signal
    if run.main_process:
        evals = ""
        if outcome.evals_run:
            evals = f"{outcome.evals_failed} of {outcome.evals_run} evaluations failed; "
        print(f"train.py: done, {step} steps; {evals}model in {model_dir}", file=sys.stderr)
    return 0


@one_line_errors("train.py")
def main(argv: list[str] | None = None) -> int:
    # recipe: the preset, then the options given
    args = parse_args(argv)
    recipe = load_recipe(args.config, recipe_overrides(args))

    # run folder and processes; on resume, the checkpoint (its recipe compared with this one)
    run = open_run(args, recipe)
    resume = resume_checkpoint(run)

    # data
    tokenizer, tokenizer_dir = load_tokenizer(args.tokenizer)
    stream = build_stream(run, tokenizer_dir)

    # model and optimizer; on resume the checkpoint's weights, optimizer and data position
    align, model, optimizer = build_training_model(run, len(tokenizer), resume)
    bias = run.accelerator.unwrap_model(model).logit_bias
    saved = (
        load_checkpoint(run.accelerator, resume, align, optimizer, bias) if resume else {"step": 0}
    )
    image_table = embed_images_once(run, align, model, stream)
    position = restore_position(run, stream, saved)
    announce(run, align, stream)

    # loop
    outcome = train_loop(run, model, optimizer, align, tokenizer, position, image_table)

    # export
    return finish(run, align, tokenizer, stream.total_rows, outcome)


if __name__ == "__main__":
    raise SystemExit(main())
