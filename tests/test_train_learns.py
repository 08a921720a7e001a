"""A tiny CPU run on separable toy pairs: the loss falls well below its start in 200 steps and
the exported model retrieves the right image for captions in several scripts."""

from __future__ import annotations

import io
import json
from itertools import permutations

import numpy as np
import pytest
import torch
from PIL import Image

import mling.train
from tests.helpers import train_fixtures
from tests.helpers.toy_pairs import toy_caption, toy_image, write_toy_shards
from tests.helpers.train_fixtures import tiny_argv

toy_tokenizer = train_fixtures.toy_tokenizer  # fixture


@pytest.mark.slow
def test_tiny_run_learns_the_toy_corpus(tmp_path, toy_tokenizer):
    from transformers import AlignModel, AlignProcessor

    write_toy_shards(tmp_path / "pairs", 2000, side=32, shard_rows=1000)
    argv = tiny_argv(tmp_path / "pairs", toy_tokenizer, tmp_path / "run", "--batch-size", "32")
    argv += [
        "--max-steps",
        "200",
        "--warmup-steps",
        "20",
        "--log-every",
        "20",
        "--num-workers",
        "1",
    ]
    assert mling.train.main(argv) == 0

    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert records[0]["loss"] == pytest.approx(2 * np.log(32), abs=0.3)  # chance: log B, twice
    assert records[-1]["loss"] < 0.75 * records[0]["loss"]
    assert records[-1]["temperature"] < 0.5  # learned: colder than its 1.0 start

    # Text -> image retrieval among the 30 classes, on images the run never saw.
    model = AlignModel.from_pretrained(tmp_path / "run" / "model").eval()
    processor = AlignProcessor.from_pretrained(tmp_path / "run" / "model")
    classes = list(permutations(range(6), 2))
    rng = np.random.default_rng(123)
    images = [Image.open(io.BytesIO(toy_image(a, b, 32, rng))) for a, b in classes]
    for language in ("en", "ru", "ja"):
        captions = [toy_caption(language, a, b) for a, b in classes]
        with torch.no_grad():
            out = model(**processor(text=captions, images=images, return_tensors="pt"))
        top1 = (out.logits_per_text.argmax(dim=1) == torch.arange(len(classes))).float().mean()
        assert top1.item() >= 0.2, language  # chance is 1/30
