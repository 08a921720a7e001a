"""A trained model as a directory the Hugging Face ecosystem loads as it is.

`export_model` writes `config.json` + `model.safetensors` (AlignModel.from_pretrained), the tokenizer the
model was trained with and an EfficientNet image processor that reproduces the evaluation
transform (AlignProcessor.from_pretrained), so that
`transformers.pipeline("zero-shot-image-classification", model=DIR)` works offline.
Training calls export_model at the end, into OUTPUT_DIR/model. Weights holding a NaN or an
infinity are never exported, whoever asks (`mling.training.finite`); a write the file system
refuses is one line naming the folder, and an earlier export there stays as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors.torch import load_file
from transformers import AlignConfig, AlignModel, AlignProcessor, AutoTokenizer

from mling.common.atomic import staged_output
from mling.common.errors import InputError, file_system_errors
from mling.training.checkpoint import save_tokenizer
from mling.training.finite import check_finite
from mling.training.recipe import load_recipe
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
    an earlier export there is replaced only with `overwrite`. NonFiniteError (one line) for
    weights holding NaN or infinity: nothing is written."""
    out_dir = Path(out_dir)
    check_finite(model, "the model")
    with (
        file_system_errors(out_dir),
        no_progress_bars(),
        staged_output(out_dir, overwrite) as staged,
    ):
        # the weights on the host: safetensors reads a tensor's storage, which a tensor on XLA
        # (a TPU) does not expose
        weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        model.save_pretrained(staged, safe_serialization=True, state_dict=weights)
        processor = AlignProcessor(image_processor=image_processor(image_size), tokenizer=tokenizer)
        processor.save_pretrained(staged)
        save_tokenizer(tokenizer, staged)
        if card is not None:
            (staged / "README.md").write_text(card, encoding="utf-8")
    return out_dir


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """transformers' bar for writing one shard is noise on stderr (where one-line errors go)."""
    from transformers.utils import logging

    shown = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            logging.enable_progress_bar()


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
    recipe = load_recipe(checkpoint / "recipe.yaml")  # junk there is one line
    model = AlignModel(AlignConfig.from_json_file(checkpoint / "config.json"))
    model.load_state_dict(load_file(str(checkpoint / "model.safetensors")), strict=True)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint / "tokenizer")
    return model.eval(), tokenizer, recipe.model.image_size
