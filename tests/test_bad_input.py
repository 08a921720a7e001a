"""Bad input, one line each and exit code 2, never a traceback: tokenizers, recipes, shards."""

from __future__ import annotations

import json

import pytest

import mling.train
from mling.filtering.filter import main as filter_main
from tests.helpers import train_fixtures
from tests.helpers.train_fixtures import tiny_argv

toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture


def last_line(capsys, prog: str) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith(f"{prog}: "), lines
    return lines[-1]


@pytest.mark.parametrize("junk", ["empty", "junk"])
def test_a_tokenizer_folder_that_is_not_one(tmp_path, toy_pairs, capsys, junk):
    folder = tmp_path / "vocab"
    folder.mkdir()
    if junk == "junk":
        (folder / "tokenizer.json").write_text("{not json")
    assert mling.train.main(tiny_argv(toy_pairs, folder, tmp_path / "run")) == 2
    assert "is not a tokenizer folder" in last_line(capsys, "train.py")


@pytest.mark.parametrize(
    ("text", "says"),
    [("- model\n- data\n", "holds a list, not sections"), ("model: [1, 2\n", "is not valid YAML")],
)
def test_a_recipe_file_that_is_not_one(tmp_path, toy_pairs, toy_tokenizer, capsys, text, says):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    argv = tiny_argv(toy_pairs, toy_tokenizer, tmp_path / "run")
    argv[argv.index("tiny")] = str(recipe)
    assert mling.train.main(argv) == 2
    assert says in last_line(capsys, "train.py")


@pytest.mark.parametrize("payload", [b"", b"PAR1 this is not parquet at all"])
def test_an_empty_or_garbage_parquet_shard(tmp_path, capsys, payload):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part-0.parquet").write_bytes(payload)
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--quiet"]
    assert filter_main(argv) == 2
    assert "cannot read parquet" in last_line(capsys, "filter.py")


def test_resume_after_a_half_written_metrics_line(tmp_path, toy_pairs, toy_tokenizer):
    run = tmp_path / "run"
    argv = tiny_argv(toy_pairs, toy_tokenizer, run, "--max-steps", "2", "--save-every", "1")
    assert mling.train.main(argv) == 0
    with (run / "metrics.jsonl").open("a") as metrics:
        metrics.write('{"step": 3, "lo')  # a kill -9 in the middle of a line
    argv = tiny_argv(toy_pairs, toy_tokenizer, run, "--max-steps", "3", "--resume", "latest")
    assert mling.train.main(argv) == 0
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_a_truncated_checkpoint_is_refused_and_latest_falls_back(
    tmp_path, toy_pairs, toy_tokenizer, capsys
):
    run = tmp_path / "run"
    argv = tiny_argv(toy_pairs, toy_tokenizer, run, "--max-steps", "3", "--save-every", "1")
    assert mling.train.main(argv) == 0
    weights = run / "checkpoints" / "step-00000003" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # a full disk, a crash mid-copy
    capsys.readouterr()

    explicit = tiny_argv(toy_pairs, toy_tokenizer, run, "--max-steps", "3")
    assert mling.train.main([*explicit, "--resume", str(weights.parent)]) == 2
    assert "is damaged: model.safetensors is cut short" in last_line(capsys, "train.py")

    assert mling.train.main([*explicit, "--resume", "latest"]) == 0
    err = capsys.readouterr().err
    assert "checkpoint step-00000003 is damaged" in err  # resumed from step 2, redid step 3
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_nan_and_infinite_sizes_and_a_megabyte_caption_get_reasons(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"key": "nan", "caption": "Un chat dort sur le tapis chaud", "width": float("nan")},
        {"key": "inf", "caption": "Ein Vogel fliegt über das Meer", "width": float("inf")},
        {"key": "huge", "caption": "слово " * 170_000, "width": 400.0},  # about 2 MB of UTF-8
        {"key": "ok", "caption": "馬が野原を走っている", "width": 400.0},
    ]
    rows = [
        {**row, "url": f"https://img.example/{row['key']}.jpg", "height": 300.0} for row in rows
    ]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in" / "part-0.parquet")
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--quiet"]
    assert filter_main([*argv, "--write-rejected"]) == 0
    rejected = pq.read_table(sorted((tmp_path / "out" / "rejected").glob("*.parquet")))
    reasons = dict(zip(rejected["key"].to_pylist(), rejected["reason"].to_pylist(), strict=True))
    assert reasons == {
        "nan": "size_not_numeric",
        "inf": "size_not_numeric",
        "huge": "too_many_words",
    }
