"""Fixtures shared by every test: offline Hugging Face, a tiny multilingual tokenizer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.multilingual import ALL_CAPTIONS

# Set before any test imports transformers: nothing in the test suite may reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def hf_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with the hub switched off, even if one re-reads the environment."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def build_tiny_tokenizer(out_dir: Path, vocab_size: int = 1000) -> Path:
    """Train a WordPiece BertTokenizerFast on the multilingual captions, in-process, offline."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast
    from transformers.models.bert.tokenization_bert import load_vocab

    trainer = BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    # Repeat the captions so every word reaches min_frequency and stays a whole piece.
    trainer.train_from_iterator(ALL_CAPTIONS * 2, vocab_size=vocab_size, min_frequency=1)
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(out_dir))
    tokenizer = BertTokenizerFast(
        vocab=dict(load_vocab(out_dir / "vocab.txt")),
        do_lower_case=False,
        strip_accents=False,
        model_max_length=64,
    )
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory AutoTokenizer loads: BertTokenizerFast, ~1k WordPiece vocab, 64 tokens."""
    return build_tiny_tokenizer(tmp_path_factory.mktemp("tiny_tokenizer"))
