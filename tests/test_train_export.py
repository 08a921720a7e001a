"""The export loads offline in AlignModel, AlignProcessor and the zero-shot pipeline, and
reproduces the training model's embeddings on the evaluation transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

import mling.export
import mling.train
import mling.training.model_export
from mling.training.model import DualEncoder
from mling.training.transforms import eval_crop, to_model_pixels
from tests.helpers import train_fixtures
from tests.helpers.one_line import error_line
from tests.helpers.toy_pairs import RGB, toy_caption
from tests.helpers.train_fixtures import tiny_argv

toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, toy_pairs, toy_tokenizer) -> Path:
    output = tmp_path_factory.mktemp("export_run")
    assert mling.train.main(tiny_argv(toy_pairs, toy_tokenizer, output, "--max-steps", "3")) == 0
    return output


def square_picture(background: int, square: int, side: int = 40) -> Image.Image:
    pixels = np.empty((side, side, 3), dtype=np.uint8)
    pixels[:] = RGB[background]
    pixels[side // 4 : -side // 4, side // 4 : -side // 4] = RGB[square]
    return Image.fromarray(pixels)


def test_align_model_and_processor_load_the_export(run_dir, toy_tokenizer):
    from transformers import AlignModel, AlignProcessor

    model = AlignModel.from_pretrained(run_dir / "model").eval()
    processor = AlignProcessor.from_pretrained(run_dir / "model")
    assert processor.image_processor.crop_size == {"height": 32, "width": 32}
    assert processor.image_processor.size == {"height": 38, "width": 38}  # 32 * 346 / 289
    assert (run_dir / "model" / "vocab.txt").read_text() == (
        toy_tokenizer / "vocab.txt"
    ).read_text()
    captions = [toy_caption("ja", 0, 2), toy_caption("ar", 1, 3)]
    inputs = processor(text=captions, images=[square_picture(0, 2)], return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits_per_image.shape == (1, 2)
    assert out.image_embeds.shape == (1, 80) and out.text_embeds.shape == (2, 80)  # 320 x 0.25


def test_export_reproduces_the_training_embeddings(run_dir):
    from transformers import AlignModel, AlignProcessor

    checkpoint = run_dir / "checkpoints" / "step-00000003"
    align, tokenizer, image_size = mling.training.model_export.load_checkpoint_model(checkpoint)
    picture = square_picture(3, 4)
    pixels = to_model_pixels(torch.from_numpy(eval_crop(picture, image_size))[None])
    tokens = tokenizer(
        [toy_caption("th", 3, 4)], padding="max_length", max_length=12, return_tensors="pt"
    )
    with torch.no_grad():
        image_embeds, text_embeds, _, _ = DualEncoder(align)(
            pixels, tokens["input_ids"], tokens["attention_mask"]
        )

    model = AlignModel.from_pretrained(run_dir / "model").eval()
    processor = AlignProcessor.from_pretrained(run_dir / "model")
    inputs = processor(text=[toy_caption("th", 3, 4)], images=[picture], return_tensors="pt")
    with torch.no_grad():
        image = model.get_image_features(pixel_values=inputs["pixel_values"])
        text = model.get_text_features(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
        )
    image = getattr(image, "pooler_output", image)  # transformers 5 returns an output object
    text = getattr(text, "pooler_output", text)
    torch.testing.assert_close(F.normalize(image, dim=-1), image_embeds, atol=2e-3, rtol=0)
    torch.testing.assert_close(F.normalize(text, dim=-1), text_embeds, atol=1e-5, rtol=0)


def test_zero_shot_pipeline_runs_offline(run_dir):
    from transformers import pipeline

    classify = pipeline("zero-shot-image-classification", model=str(run_dir / "model"))
    labels = [toy_caption("de", 0, 1), toy_caption("ru", 2, 3), toy_caption("zh", 4, 5)]
    result = classify(square_picture(0, 1), candidate_labels=labels)
    assert sorted(r["label"] for r in result) == sorted(labels)
    assert sum(r["score"] for r in result) == pytest.approx(1.0, abs=1e-4)


def test_export_command_from_a_checkpoint_or_a_run(run_dir, tmp_path):
    final = load_file(str(run_dir / "model" / "model.safetensors"))
    assert mling.export.main(["--checkpoint", str(run_dir), "--output", str(tmp_path / "a")]) == 0
    step = run_dir / "checkpoints" / "step-00000003"
    assert mling.export.main(["--checkpoint", str(step), "--output", str(tmp_path / "b")]) == 0
    for out in ("a", "b"):
        exported = load_file(str(tmp_path / out / "model.safetensors"))
        assert exported.keys() == final.keys()
        assert all(torch.equal(exported[k], final[k]) for k in final)


def test_export_command_explains_a_wrong_path(tmp_path, capsys):
    assert mling.export.main(["--checkpoint", str(tmp_path), "--output", str(tmp_path / "x")]) == 2
    error_line(capsys, "export.py", "is not a checkpoint")
