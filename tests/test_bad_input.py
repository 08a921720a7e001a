"""Bad input, one line each and exit code 2, never a traceback: tokenizers, recipes, shards,
columns, inputs that match nothing, sizes no run can use."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mling.train
from mling.common.errors import InputError
from mling.filtering.pipeline import main as filter_main
from mling.pairs.shards import iter_pair_batches
from mling.training.loader import index_sources, train_columns
from mling.vocab.build_vocab import main as build_vocab_main
from tests.helpers import train_fixtures
from tests.helpers.one_line import error_line
from tests.helpers.train_fixtures import tiny_argv

toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture


def last_line(capsys, prog: str) -> str:
    return error_line(capsys, prog)


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


# ---- damaged shards, in every format the readers take ----


def _tar_bytes(samples: list[tuple[str, str, bytes]]) -> bytes:
    """A tar of (key, extension, payload) members, in that order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for key, extension, payload in samples:
            info = tarfile.TarInfo(f"{key}.{extension}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


GOOD_PAIRS = pa.table(
    {
        "key": ["a", "b"],
        "caption": ["Un chat dort sur le tapis chaud", "Собака бежит по зелёной траве"],
        "url": ["https://img.example/a.jpg", "https://img.example/b.jpg"],
        "width": [400, 500],
        "height": [300, 400],
    }
)
GOOD_TAR = _tar_bytes(
    [(k, e, p) for k in ("a", "b") for e, p in (("txt", b"Ein Hund"), ("jpg", b"x" * 3000))]
)
DAMAGED = {  # name: ({file: bytes}, what the one line says)
    "garbage .tar": ({"part-0.tar": bytes(range(256)) * 20}, "cannot read webdataset shard"),
    "empty .tar": ({"part-0.tar": b""}, "cannot read webdataset shard"),
    "tar cut mid-member": ({"part-0.tar": GOOD_TAR[:2000]}, "cannot read webdataset shard"),
    "parquet cut short": (
        {"part-0.parquet": _parquet_bytes(GOOD_PAIRS)[:-300]},
        "cannot read parquet",
    ),
    "garbage .tsv.gz": ({"wit.tsv.gz": bytes(range(256)) * 2}, "cannot read TSV"),
    "tsv.gz cut short": (
        {"wit.tsv.gz": gzip.compress(b"caption_alt_text_description\timage_url\n" * 99)[:50]},
        "cannot read TSV",
    ),
    "`datasets` folder, junk state.json": (
        {"state.json": b"{not json", "data-00000-of-00001.arrow": b""},
        "is not a `datasets` state file",
    ),
    "`datasets` folder, garbage Arrow": (
        {
            "state.json": b'{"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}',
            "data-00000-of-00001.arrow": bytes(range(256)),
        },
        "cannot read Arrow file",
    ),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_a_damaged_shard_is_one_line_whatever_its_format(tmp_path, capsys, damage):
    files, says = DAMAGED[damage]
    (tmp_path / "in").mkdir()
    for name, payload in files.items():
        (tmp_path / "in" / name).write_bytes(payload)
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--quiet"]
    assert filter_main(argv) == 2
    assert says in last_line(capsys, "filter.py")
    assert not (tmp_path / "out").exists()


def test_a_datasets_dict_without_a_train_split_is_one_line(tmp_path, capsys):
    import datasets

    split = datasets.Dataset.from_dict({"caption": ["Ein Hund läuft", "犬が走る"]})
    datasets.DatasetDict({"test": split}).save_to_disk(str(tmp_path / "dict"))
    capsys.readouterr()  # the fixture's own progress bar
    argv = ["--input", str(tmp_path / "dict"), "--output", str(tmp_path / "out"), "--quiet"]
    assert filter_main(argv) == 2
    assert "has splits ['test'] but no 'train'" in last_line(capsys, "filter.py")


def test_a_column_named_twice_is_one_line(tmp_path, capsys):
    """Stored twice (pyarrow writes it), or twice once renamed (`--column TEXT=caption` beside
    a caption column): never a KeyError traceback."""
    (tmp_path / "twice").mkdir()
    names = ["key", "caption", "caption"]
    arrays = [pa.array(["a"]), pa.array(["Un chat dort"]), pa.array(["A cat sleeps"])]
    pq.write_table(pa.Table.from_arrays(arrays, names=names), tmp_path / "twice" / "p.parquet")
    argv = ["--input", str(tmp_path / "twice"), "--output", str(tmp_path / "o1"), "--quiet"]
    assert filter_main(argv) == 2
    assert "has two columns named 'caption'" in last_line(capsys, "filter.py")
    with pytest.raises(InputError, match="two columns named 'caption'"):
        index_sources([tmp_path / "twice"], {})

    (tmp_path / "renamed").mkdir()
    table = GOOD_PAIRS.append_column("TEXT", pa.array(["Ein Hund", "犬"]))
    pq.write_table(table, tmp_path / "renamed" / "p.parquet")
    argv = ["--input", str(tmp_path / "renamed"), "--output", str(tmp_path / "o2"), "--quiet"]
    assert filter_main([*argv, "--column", "TEXT=caption"]) == 2
    assert "named 'caption' after renaming" in last_line(capsys, "filter.py")


def test_a_sample_missing_a_member_is_a_counted_row(tmp_path):
    """A webdataset sample without its .txt is a row without a caption (missing_caption); one
    without its image is a row without one (training skips it as missing_image)."""
    (tmp_path / "in").mkdir()
    members = [("a", "txt", "Ein Hund läuft".encode()), ("a", "jpg", b"x" * 100)]
    members += [("b", "jpg", b"y" * 100)]  # no caption
    members += [("c", "txt", b"Un chat dort sur le tapis chaud")]  # no image
    (tmp_path / "in" / "part-0.tar").write_bytes(_tar_bytes(members))
    rows = [r for b in iter_pair_batches([tmp_path / "in"]) for r in b.to_pylist()]
    assert [(r["key"], r["caption"] is None, r["image"] is None) for r in rows] == [
        ("a", False, False),
        ("b", True, False),
        ("c", False, True),
    ]
    out = tmp_path / "out"
    argv = ["--input", str(tmp_path / "in"), "--output", str(out), "--quiet", "--write-rejected"]
    assert filter_main(argv) == 0
    rejected = pq.read_table(sorted((out / "rejected").glob("*.parquet"))).to_pylist()
    assert {r["key"]: r["reason"] for r in rejected}["b"] == "missing_caption"


def test_globs_and_brace_ranges_that_match_nothing_are_one_line(tmp_path, capsys):
    for pattern in ("nothing-*.parquet", "shards/{00000..00003}.tar"):
        missing = str(tmp_path / pattern)
        argv = ["--input", missing, "--output", str(tmp_path / "out"), "--quiet"]
        assert filter_main(argv) == 2
        assert "input not found" in last_line(capsys, "filter.py")
        assert build_vocab_main(["--input", missing, "--output", str(tmp_path / "v")]) == 2
        assert "input not found" in last_line(capsys, "build_vocab.py")
        with pytest.raises(InputError, match="input not found"):
            train_columns([missing], None, [])


@pytest.mark.parametrize("size", ["0", "10"])
def test_a_vocabulary_too_small_for_an_alphabet_is_refused(tmp_path, capsys, size):
    corpus = tmp_path / "c.txt"
    corpus.write_text("Ein Hund läuft\n犬が走る\nكلب يركض\n", encoding="utf-8")
    argv = ["--input", str(corpus), "--output", str(tmp_path / "v"), "--vocab-size", size]
    assert build_vocab_main(argv) == 2
    assert f"--vocab-size {size}: leaves no room for an alphabet" in last_line(
        capsys, "build_vocab.py"
    )
    assert not (tmp_path / "v").exists()


def test_a_filter_that_keeps_nothing_of_pairs_with_images_publishes_an_empty_output(tmp_path):
    """It used to stop at the webdataset stage with 'no .parquet/.tar files in: '."""
    (tmp_path / "in").mkdir()
    rows = GOOD_PAIRS.append_column("image", pa.array([b"\xff\xd8 jpeg", b"\xff\xd8 jpeg 2"]))
    rows = rows.set_column(1, "caption", pa.array(["Hund", "犬"]))  # too few words, both
    pq.write_table(rows, tmp_path / "in" / "part-0.parquet")
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--quiet"]
    assert filter_main(argv) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["accounting"]["input_rows"] == 2 and not list(
        (tmp_path / "out").glob("*.parquet")
    )


def test_non_positive_batch_sizes_are_refused_by_the_filter_and_the_evaluators(tmp_path, capsys):
    from mling.evaluation import multi30k

    (tmp_path / "in").mkdir()
    pq.write_table(GOOD_PAIRS, tmp_path / "in" / "part-0.parquet")
    for rows in ("0", "-1"):
        argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--quiet"]
        assert filter_main([*argv, "--batch-rows", rows]) == 2
        assert f"--batch-rows {rows}: must be at least 1" in last_line(capsys, "filter.py")
    argv = ["--multi30k", str(tmp_path), "--images", str(tmp_path), "--model", str(tmp_path)]
    assert multi30k.main([*argv, "--output", str(tmp_path / "eval"), "--batch-size", "0"]) == 2
    assert "--batch-size 0: must be at least 1" in last_line(capsys, "multi30k.py")
    assert multi30k.main([*argv, "--output", str(tmp_path / "eval"), "--workers", "0"]) == 2
    assert "--workers 0: must be at least 1" in last_line(capsys, "multi30k.py")
    assert not (tmp_path / "eval").exists()
