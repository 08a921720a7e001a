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
from mling.common.errors import InputError
from mling.training.checkpoint import save_tokenizer
from mling.training.recipe import recipe_from_dict
from mling.training.transforms import image_processor


def export_model(
    model: AlignModel,
    tokenizer,
    image_size: int,
    out_dir: str | Path,
    card: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Save model + processor (+ the model card as README.md) into out_dir, whole or not at all;
    an earlier export there is replaced only with `overwrite`."""
    out_dir = Path(out_dir)
    with staged_output(out_dir, overwrite) as staged:
        model.save_pretrained(staged, safe_serialization=True)
        processor = AlignProcessor(image_processor=image_processor(image_size), tokenizer=tokenizer)
        processor.save_pretrained(staged)
        save_tokenizer(tokenizer, staged)
        if card is not None:
            (staged / "README.md").write_text(card, encoding="utf-8")
    return out_dir


def push_to_hub(model_dir: Path, repo_id: str) -> str:
    """Upload an exported model folder to the hub repository `repo_id` (created if needed).
    Returns the commit's URL. Offline or refused: one InputError line."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type="model", exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(model_dir),
            repo_type="model",
            commit_message="Upload an ALIGN model exported by mling-align",
        )
    except OfflineModeIsEnabled:
        raise InputError(
            f"--push-to-hub {repo_id}: HF_HUB_OFFLINE=1 forbids uploading; the model is in "
            f"{model_dir}, upload it later with `hf upload {repo_id} {model_dir}`"
        ) from None
    except HfHubHTTPError as error:
        raise InputError(f"--push-to-hub {repo_id}: the hub answered {error}") from None
    return str(getattr(commit, "commit_url", commit))


def load_checkpoint_model(checkpoint: Path) -> tuple[AlignModel, object, int]:
    """A checkpoint directory -> (AlignModel with its weights, tokenizer, image size)."""
    import yaml

    model = AlignModel(AlignConfig.from_json_file(checkpoint / "config.json"))
    model.load_state_dict(load_file(str(checkpoint / "model.safetensors")), strict=True)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint / "tokenizer")
    recipe = recipe_from_dict(yaml.safe_load((checkpoint / "recipe.yaml").read_text("utf-8")))
    return model.eval(), tokenizer, recipe.model.image_size
