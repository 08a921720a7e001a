"""Fixtures shared by every test: offline Hugging Face, a tiny multilingual tokenizer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.multilingual import ALL_CAPTIONS
from tests.helpers.tiny_model import build_tiny_tokenizer

# Set before any test imports transformers: nothing in the test suite may reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def hf_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with the hub switched off, even if one re-reads the environment."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory AutoTokenizer loads: BertTokenizerFast, ~1k WordPiece vocab, 64 tokens."""
    # Each caption twice, so every word reaches the trainer's min_frequency and stays whole.
    return build_tiny_tokenizer(tmp_path_factory.mktemp("tiny_tokenizer"), ALL_CAPTIONS * 2)
