"""Export a training checkpoint as a model directory the Hugging Face ecosystem loads as it is.

    python mling/export.py --checkpoint OUTPUT_DIR/checkpoints/step-00010000 --output DIR

writes `config.json` + `model.safetensors` (AlignModel.from_pretrained), the tokenizer the
model was trained with and an EfficientNet image processor that reproduces the evaluation
transform (AlignProcessor.from_pretrained), so that
`transformers.pipeline("zero-shot-image-classification", model=DIR)` works offline.
Training itself exports into OUTPUT_DIR/model at the end.
"""

from __future__ import annotations

from pathlib import Path

from transformers.utils import logging as hf_logging

from mling.common.atomic import claim_output
from mling.common.cli import (
    OneLineParser,
    add_overwrite_argument,
    environment_epilog,
    one_line_errors,
)
from mling.common.errors import file_system_error, file_system_errors, first_line
from mling.common.json_shapes import expect, read_json
from mling.common.storage import local_path
from mling.common.weights import safetensors_problem
from mling.training.checkpoint import CheckpointError, resolve
from mling.training.finite import check_finite
from mling.training.model_card import DEFAULT_LICENSE, model_card
from mling.training.model_export import export_model, load_checkpoint_model, push_to_hub
from mling.training.recipe import load_recipe

# what loading a damaged checkpoint raises from torch, safetensors, transformers and YAML
LOAD_ERRORS = (OSError, ValueError, TypeError, KeyError, AttributeError, RuntimeError)


def find_checkpoint(path: Path) -> Path:
    """--checkpoint as a checkpoint folder: itself, or a run folder's newest whole one."""
    if (path / "model.safetensors").is_file():  # its header read before anything trusts it
        problem = safetensors_problem(path / "model.safetensors")
        if problem:
            raise CheckpointError(f"checkpoint {path} is damaged: {problem}")
    try:
        latest = (path / "checkpoints").is_dir()
        advice = "--checkpoint: pass a run folder (OUTPUT_DIR) or one of its checkpoints/step-N"
        checkpoint = resolve("latest", path) if latest else resolve(str(path), path, advice)
    except (KeyError, TypeError) as error:  # a header of the wrong shape in a run's checkpoint
        raise CheckpointError(
            f"a checkpoint under {path} is damaged ({type(error).__name__}: {error}); pass "
            "--checkpoint OUTPUT_DIR/checkpoints/step-N of a whole one"
        ) from None
    if checkpoint is None:
        raise CheckpointError(f"{path}/checkpoints has no finished checkpoint yet")
    return checkpoint


def load_checkpoint(checkpoint: Path):
    """(AlignModel, tokenizer, image size) of a checkpoint folder, or one line naming the
    checkpoint and what did not load (a file the training run wrote, damaged since)."""
    from huggingface_hub.errors import StrictDataclassError
    from safetensors import SafetensorError

    config = checkpoint / "config.json"
    expect(read_json(config, "a model config"), dict, str(config), "a JSON object (AlignConfig)")
    if not (checkpoint / "tokenizer").is_dir():
        raise CheckpointError(f"checkpoint {checkpoint} has no tokenizer/ folder; pick another")
    try:
        return load_checkpoint_model(checkpoint)
    except (*LOAD_ERRORS, SafetensorError, StrictDataclassError) as error:
        if file_system_error(error) is not None:
            raise  # a file we may not read: named as such
        raise CheckpointError(
            f"checkpoint {checkpoint} does not load ({first_line(error)}); export another "
            "checkpoint"
        ) from None


@one_line_errors("export.py")
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        description=__doc__.split("\n\n")[0],
        epilog=environment_epilog(
            "--push-to-hub uploads with huggingface_hub: HF_TOKEN (or `hf auth login`) says who "
            "you are, HF_HUB_OFFLINE=1 forbids uploading"
        ),
    )
    parser.add_argument(
        "--checkpoint", required=True, help="a checkpoint dir, or OUTPUT_DIR with 'latest'"
    )
    parser.add_argument("--output", required=True, help="export directory (local)")
    add_overwrite_argument(parser)
    parser.add_argument(
        "--license",
        default=DEFAULT_LICENSE,
        help="the model card's license field, the data's (default: %(default)s)",
    )
    parser.add_argument("--push-to-hub", metavar="REPO", help="also upload it (a hub id)")
    args = parser.parse_args(argv)
    args.output = local_path(args.output, "--output", "publish with --push-to-hub, or copy it")

    # a full disk, a read-only folder, a size limit: one line naming the file
    with file_system_errors(args.output):
        checkpoint = find_checkpoint(Path(args.checkpoint))
        recipe = load_recipe(checkpoint / "recipe.yaml")
        model, tokenizer, image_size = load_checkpoint(checkpoint)
        check_finite(model, f"checkpoint {checkpoint}")  # a run that diverged before it stopped
        run_dir = checkpoint.parent.parent  # OUTPUT_DIR/checkpoints/step-N: its evals/ beside
        card = model_card(recipe, None, run_dir, args.license)
        hf_logging.disable_progress_bar()  # stderr holds the one line a refusal prints
        with claim_output(args.output, args.overwrite, inputs=[checkpoint]):
            export_model(model, tokenizer, image_size, args.output, card, args.overwrite)
    print(f"export.py: {checkpoint} -> {args.output}")
    if args.push_to_hub:
        print(f"export.py: uploaded to {push_to_hub(args.output, args.push_to_hub)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
