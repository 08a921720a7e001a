"""Export a trained model as a directory the Hugging Face ecosystem loads as it is.

    python mling/export.py --checkpoint OUTPUT_DIR/checkpoints/step-00010000 --output DIR

writes `config.json` + `model.safetensors` (AlignModel.from_pretrained), the tokenizer the
model was trained with and an EfficientNet image processor that reproduces the evaluation
transform (AlignProcessor.from_pretrained), so that
`transformers.pipeline("zero-shot-image-classification", model=DIR)` works offline.
Training calls export_model at the end, into OUTPUT_DIR/model.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file
from transformers import AlignConfig, AlignModel, AlignProcessor, AutoTokenizer

from mling.checkpoint import CheckpointError, resolve, save_tokenizer
from mling.recipe import recipe_from_dict
from mling.transforms import image_processor


def export_model(model: AlignModel, tokenizer, image_size: int, out_dir: str | Path) -> Path:
    """Save model + processor into out_dir, whole or not at all (temp dir, then rename)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        processor = AlignProcessor(image_processor=image_processor(image_size), tokenizer=tokenizer)
        processor.save_pretrained(tmp)
        save_tokenizer(tokenizer, tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def load_checkpoint_model(checkpoint: Path) -> tuple[AlignModel, object, int]:
    """A checkpoint directory -> (AlignModel with its weights, tokenizer, image size)."""
    import yaml

    model = AlignModel(AlignConfig.from_json_file(checkpoint / "config.json"))
    model.load_state_dict(load_file(str(checkpoint / "model.safetensors")), strict=True)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint / "tokenizer")
    recipe = recipe_from_dict(yaml.safe_load((checkpoint / "recipe.yaml").read_text("utf-8")))
    return model.eval(), tokenizer, recipe.model.image_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint", required=True, help="a checkpoint dir, or OUTPUT_DIR with 'latest'"
    )
    parser.add_argument("--output", required=True, type=Path, help="export directory (replaced)")
    args = parser.parse_args(argv)

    try:
        path = Path(args.checkpoint)
        checkpoint = (
            resolve("latest", path) if (path / "checkpoints").is_dir() else resolve(str(path), path)
        )
        if checkpoint is None:
            raise CheckpointError(f"{path}/checkpoints has no finished checkpoint yet")
    except CheckpointError as error:
        print(f"export.py: {error}", file=sys.stderr)
        return 2
    model, tokenizer, image_size = load_checkpoint_model(checkpoint)
    export_model(model, tokenizer, image_size, args.output)
    print(f"export.py: {checkpoint} -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
