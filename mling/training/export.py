"""A trained model as a directory the Hugging Face ecosystem loads as it is.

`export_model` writes `config.json` + `model.safetensors` (AlignModel.from_pretrained), the tokenizer the
model was trained with and an EfficientNet image processor that reproduces the evaluation
transform (AlignProcessor.from_pretrained), so that
`transformers.pipeline("zero-shot-image-classification", model=DIR)` works offline.
Training calls export_model at the end, into OUTPUT_DIR/model.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file
from transformers import AlignConfig, AlignModel, AlignProcessor, AutoTokenizer

from mling.common.atomic import staged_output
from mling.training.checkpoint import save_tokenizer
from mling.training.recipe import recipe_from_dict
from mling.training.transforms import image_processor


def export_model(model: AlignModel, tokenizer, image_size: int, out_dir: str | Path) -> Path:
    """Save model + processor into out_dir, whole or not at all (temp dir, then rename)."""
    out_dir = Path(out_dir)
    with staged_output(out_dir) as staged:
        model.save_pretrained(staged, safe_serialization=True)
        processor = AlignProcessor(image_processor=image_processor(image_size), tokenizer=tokenizer)
        processor.save_pretrained(staged)
        save_tokenizer(tokenizer, staged)
    return out_dir


def load_checkpoint_model(checkpoint: Path) -> tuple[AlignModel, object, int]:
    """A checkpoint directory -> (AlignModel with its weights, tokenizer, image size)."""
    import yaml

    model = AlignModel(AlignConfig.from_json_file(checkpoint / "config.json"))
    model.load_state_dict(load_file(str(checkpoint / "model.safetensors")), strict=True)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint / "tokenizer")
    recipe = recipe_from_dict(yaml.safe_load((checkpoint / "recipe.yaml").read_text("utf-8")))
    return model.eval(), tokenizer, recipe.model.image_size
