"""Embedding options: model names, languages, devices, and the cache keyed by model and data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from mling.common.errors import InputError
from mling.evaluation.embed import EmbedConfig, Embedder, language_list, model_names, resolve_device
from tests.helpers.multilingual import CAPTIONS
from tests.helpers.tiny_model import build_tiny_align


def test_model_names_from_folders_or_flags(tmp_path):
    exports = [tmp_path / "runs/mling/model", tmp_path / "baselines/align-en"]
    for folder in exports:
        folder.mkdir(parents=True)
        (folder / "config.json").write_text('{"model_type": "align"}')
        save_file({"w": torch.zeros(1)}, folder / "model.safetensors")  # whole, as checked
    # mling/train.py exports to OUTPUT_DIR/model: the run's folder names it
    named = model_names(exports, [])
    assert {name: s.path for name, s in named.items()} == {
        "mling": exports[0],
        "align-en": exports[1],
    }
    assert all(s.hub_id is None for s in named.values())
    assert list(model_names(exports, ["多言語", "English"])) == ["多言語", "English"]
    with pytest.raises(InputError, match="two models are named 'x'; tell them apart"):
        model_names(exports, ["x", "x"])


def test_language_list():
    assert language_list(" en, de,,ja ") == ["en", "de", "ja"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line():
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(InputError, match="torch sees no CUDA GPU; pass --device auto or cpu"):
        resolve_device("cuda")


def test_cache_hits_only_for_the_same_captions(tmp_path, tiny_tokenizer_dir):
    model = build_tiny_align(tmp_path / "model", tiny_tokenizer_dir)
    log: list[str] = []
    embedder = Embedder(model, EmbedConfig(batch_size=4, cache_dir=tmp_path / "cache"), log.append)
    first = embedder.texts(CAPTIONS["el"])
    assert first.shape == (6, 80)
    torch.testing.assert_close(first.norm(dim=1), torch.ones(6))
    again = embedder.texts(CAPTIONS["el"])
    assert torch.equal(first, again) and log[-1] == "  text embeddings from the cache"
    other = embedder.texts(CAPTIONS["el"][:5] + ["Ένας σκύλος."])
    assert "cache" not in log[-1]
    torch.testing.assert_close(other[:5], first[:5])  # batching does not change embeddings
    assert len(list(Path(tmp_path / "cache").iterdir())) == 2
