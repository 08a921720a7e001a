"""Real inputs as they are: img2dataset's own output (made by img2dataset itself, see
tests/fixtures/img2dataset/make.py), parquet and webdataset, read without flags."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

import mling.train
from mling.filtering.filter import main as filter_main
from mling.pairs.shards import expand_inputs, iter_pair_batches, layout_columns
from mling.training.loader import index_sources, train_columns
from tests.helpers import train_fixtures
from tests.helpers.train_fixtures import tiny_argv

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "img2dataset"
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture
# Judged on the original sizes (the resized ones are 64 px: all "too small"); the row whose
# image answered 404 has its own reason.
EXPECTED = {
    "0000000": None,  # 640 x 480
    "0000001": None,  # 300 x 420
    "0000002": "image_too_small",  # 150 x 150
    "0000003": "aspect_ratio",  # 1200 x 300
    "0000004": None,  # 500 x 500
    "0000005": "download_failed",  # HTTP 404
}


def reasons(out: Path) -> dict[str, str | None]:
    kept = pq.read_table(sorted(out.glob("part-*.parquet")), columns=["key"])
    found = {key: None for key in kept.column("key").to_pylist()}
    shards = sorted((out / "rejected").glob("part-*.parquet"))
    rejected = pq.read_table(shards, columns=["key", "reason"]).to_pylist()
    return found | {row["key"]: row["reason"] for row in rejected}


def test_img2dataset_output_is_recognized_and_each_row_read_once():
    for layout in ("parquet", "webdataset"):
        files = expand_inputs([FIXTURES / layout])
        mapping, preset = layout_columns(files, None, None)
        assert preset == "img2dataset"
        rows = [r for b in iter_pair_batches([FIXTURES / layout], mapping) for r in b.to_pylist()]
        assert sorted(r["key"] for r in rows) == sorted(EXPECTED)  # the sidecar adds only the 404
        by_key = {r["key"]: r for r in rows}
        assert (by_key["0000003"]["width"], by_key["0000003"]["height"]) == (1200, 300)
        assert by_key["0000003"]["resized_width"] == 256
        assert by_key["0000000"]["image"][:2] == b"\xff\xd8"  # the JPEG bytes, from `jpg`


def test_the_filter_reads_img2dataset_output_without_flags(tmp_path):
    for layout in ("parquet", "webdataset"):
        out = tmp_path / layout
        argv = ["--input", str(FIXTURES / layout), "--output", str(out), "--write-rejected"]
        assert filter_main([*argv, "--quiet"]) == 0
        assert reasons(out) == EXPECTED
        report = json.loads((out / "report.json").read_text())
        assert report["settings"]["columns"]["preset"] == "img2dataset"
        assert report["accounting"]["input_rows"] == 6
        assert sorted(p.name for p in (out / "webdataset").glob("*.tar"))  # images carried over


def test_training_reads_img2dataset_output_without_flags(tmp_path, toy_tokenizer, capsys):
    for layout in ("parquet", "webdataset"):
        mapping, preset = train_columns([FIXTURES / layout], None, [])
        assert preset == "img2dataset"
        counted = sum(sum(s.part_rows) for s in index_sources([FIXTURES / layout], mapping))
        assert counted == (6 if layout == "parquet" else 5)  # the tar holds the fetched five
    argv = tiny_argv(FIXTURES / "webdataset", toy_tokenizer, tmp_path / "run", "--max-steps", "1")
    assert mling.train.main([*argv, "--batch-size", "4"]) == 0
    assert "input layout img2dataset, recognized from its columns" in capsys.readouterr().err
