"""Fixtures of the training tests: a toy corpus in ten languages, its vocabulary, tiny runs.

Import the fixtures into a test module (`from tests.train_fixtures import toy_pairs, ...`).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.helpers.toy_pairs import build_toy_tokenizer, write_toy_shards

TOY_ROWS = 480  # pairs in the session corpus: 2 parquet shards of 240
TOY_CORRUPT = 3  # the first rows of the first shard have truncated JPEG bytes


@pytest.fixture(scope="session")
def toy_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_toy_tokenizer(tmp_path_factory.mktemp("toy_tokenizer"))


@pytest.fixture(scope="session")
def toy_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toy") / "pairs"
    write_toy_shards(out, TOY_ROWS, side=24, shard_rows=TOY_ROWS // 2, corrupt=TOY_CORRUPT)
    return out


def tiny_argv(data: Path, tokenizer: Path, output: Path, *extra: str) -> list[str]:
    """train.main arguments for a seconds-long CPU run: 16 pairs of 32 px images per step."""
    return [
        "--config", "tiny",
        "--train-data", str(data),
        "--tokenizer", str(tokenizer),
        "--output-dir", str(output),
        "--image-size", "32",
        "--batch-size", "16",
        "--max-length", "12",
        "--num-workers", "0",
        "--warmup-steps", "2",
        "--log-every", "1",
        "--save-every", "0",
        "--cpu", "true",
        *extra,
    ]  # fmt: skip


def free_port() -> int:
    """A TCP port nobody listens on now, for a launched run's rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
