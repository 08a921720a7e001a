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

from mling.common.atomic import claim_output
from mling.common.cli import (
    OneLineParser,
    add_overwrite_argument,
    environment_epilog,
    one_line_errors,
)
from mling.common.storage import local_path
from mling.training.checkpoint import CheckpointError, resolve
from mling.training.finite import check_finite
from mling.training.model_card import DEFAULT_LICENSE, model_card
from mling.training.model_export import export_model, load_checkpoint_model, push_to_hub
from mling.training.recipe import load_recipe


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

    path = Path(args.checkpoint)
    advice = "pass a run folder (OUTPUT_DIR) or one of its checkpoints/step-N folders"
    checkpoint = (
        resolve("latest", path)
        if (path / "checkpoints").is_dir()
        else resolve(str(path), path, f"--checkpoint: {advice}")
    )
    if checkpoint is None:
        raise CheckpointError(f"{path}/checkpoints has no finished checkpoint yet")
    model, tokenizer, image_size = load_checkpoint_model(checkpoint)
    check_finite(model, f"checkpoint {checkpoint}")  # a run that diverged before it stopped
    run_dir = checkpoint.parent.parent  # OUTPUT_DIR/checkpoints/step-N: its evals/ are beside
    card = model_card(load_recipe(checkpoint / "recipe.yaml"), None, run_dir, args.license)
    with claim_output(args.output, args.overwrite, inputs=[checkpoint]):
        export_model(model, tokenizer, image_size, args.output, card, args.overwrite)
    print(f"export.py: {checkpoint} -> {args.output}")
    if args.push_to_hub:
        print(f"export.py: uploaded to {push_to_hub(args.output, args.push_to_hub)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
