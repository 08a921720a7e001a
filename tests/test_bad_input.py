"""Bad input, one line each and exit code 2, never a traceback: tokenizers, recipes, shards,
columns, `datasets` folders, checkpoints, inputs that match nothing, options no run can use;
and docs/bad-input.md, whose every row names a test that exists."""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from pathlib import Path

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

ROOT = Path(__file__).resolve().parents[1]
toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture


@pytest.mark.parametrize("junk", ["empty", "junk"])
def test_a_tokenizer_folder_that_is_not_one(tmp_path, toy_pairs, capsys, junk):
    folder = tmp_path / "vocab"
    folder.mkdir()
    if junk == "junk":
        (folder / "tokenizer.json").write_text("{not json")
    assert mling.train.main(tiny_argv(toy_pairs, folder, tmp_path / "run")) == 2
    assert "is not a tokenizer folder" in error_line(capsys, "train.py")


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
    assert says in error_line(capsys, "train.py")


@pytest.mark.parametrize("payload", [b"", b"PAR1 this is not parquet at all"])
def test_an_empty_or_garbage_parquet_shard(tmp_path, capsys, payload):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part-0.parquet").write_bytes(payload)
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--quiet"]
    assert filter_main(argv) == 2
    assert "cannot read parquet" in error_line(capsys, "filter.py")


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
    assert "is damaged: model.safetensors is cut short" in error_line(capsys, "train.py")

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
    assert says in error_line(capsys, "filter.py")
    assert not (tmp_path / "out").exists()


def test_a_datasets_dict_without_a_train_split_is_one_line(tmp_path, capsys):
    import datasets

    split = datasets.Dataset.from_dict({"caption": ["Ein Hund läuft", "犬が走る"]})
    datasets.DatasetDict({"test": split}).save_to_disk(str(tmp_path / "dict"))
    capsys.readouterr()  # the fixture's own progress bar
    argv = ["--input", str(tmp_path / "dict"), "--output", str(tmp_path / "out"), "--quiet"]
    assert filter_main(argv) == 2
    assert "has splits ['test'] but no 'train'" in error_line(capsys, "filter.py")


def test_a_column_named_twice_is_one_line(tmp_path, capsys):
    """Stored twice (pyarrow writes it), or twice once renamed (`--column TEXT=caption` beside
    a caption column): never a KeyError traceback."""
    (tmp_path / "twice").mkdir()
    names = ["key", "caption", "caption"]
    arrays = [pa.array(["a"]), pa.array(["Un chat dort"]), pa.array(["A cat sleeps"])]
    pq.write_table(pa.Table.from_arrays(arrays, names=names), tmp_path / "twice" / "p.parquet")
    argv = ["--input", str(tmp_path / "twice"), "--output", str(tmp_path / "o1"), "--quiet"]
    assert filter_main(argv) == 2
    assert "has two columns named 'caption'" in error_line(capsys, "filter.py")
    with pytest.raises(InputError, match="two columns named 'caption'"):
        index_sources([tmp_path / "twice"], {})

    (tmp_path / "renamed").mkdir()
    table = GOOD_PAIRS.append_column("TEXT", pa.array(["Ein Hund", "犬"]))
    pq.write_table(table, tmp_path / "renamed" / "p.parquet")
    argv = ["--input", str(tmp_path / "renamed"), "--output", str(tmp_path / "o2"), "--quiet"]
    assert filter_main([*argv, "--column", "TEXT=caption"]) == 2
    assert "named 'caption' after renaming" in error_line(capsys, "filter.py")


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
        assert "input not found" in error_line(capsys, "filter.py")
        assert build_vocab_main(["--input", missing, "--output", str(tmp_path / "v")]) == 2
        assert "input not found" in error_line(capsys, "build_vocab.py")
        with pytest.raises(InputError, match="input not found"):
            train_columns([missing], None, [])


@pytest.mark.parametrize("size", ["0", "10"])
def test_a_vocabulary_too_small_for_an_alphabet_is_refused(tmp_path, capsys, size):
    corpus = tmp_path / "c.txt"
    corpus.write_text("Ein Hund läuft\n犬が走る\nكلب يركض\n", encoding="utf-8")
    argv = ["--input", str(corpus), "--output", str(tmp_path / "v"), "--vocab-size", size]
    assert build_vocab_main(argv) == 2
    assert f"--vocab-size {size}: leaves no room for an alphabet" in error_line(
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
        assert f"--batch-rows {rows}: must be at least 1" in error_line(capsys, "filter.py")
    argv = ["--multi30k", str(tmp_path), "--images", str(tmp_path), "--model", str(tmp_path)]
    assert multi30k.main([*argv, "--output", str(tmp_path / "eval"), "--batch-size", "0"]) == 2
    assert "--batch-size 0: must be at least 1" in error_line(capsys, "multi30k.py")
    assert multi30k.main([*argv, "--output", str(tmp_path / "eval"), "--workers", "0"]) == 2
    assert "--workers 0: must be at least 1" in error_line(capsys, "multi30k.py")
    assert not (tmp_path / "eval").exists()


# ---- options out of range, on every entry point that declares its own ----


@pytest.mark.parametrize(
    ("entry", "argv", "says"),
    [
        ("synthetic", ["--workers", "-3"], "--workers -3: must be at least 1"),
        ("synthetic", ["--pairs", "0"], "--pairs 0: must be at least 1"),
        ("synthetic", ["--two-groups", "1.5"], "--two-groups 1.5: must be between 0 and 1"),
        ("synthetic", ["--two-groups", "nan"], "--two-groups nan: must be a finite number"),
        ("synthetic", ["--reuse-threshold", "0"], "--reuse-threshold 0: must be at least 1"),
        ("synthetic", ["--shard-rows", "0"], "--shard-rows 0: must be at least 1"),
        ("synthetic", ["--seed", "-1"], "--seed -1: must be at least 0"),
        ("synthetic", ["--noise", "mismatched=2"], "--noise mismatched=2: a rate is a fraction"),
        ("synthetic", ["--noise", "mismatched=-0.1"], "--noise mismatched=-0.1: a rate is a"),
        ("synthetic", ["--noise", "mismatched=0.9"], "--noise: noise rates add up to more than 1"),
        ("demo", ["--parallel", "0"], "--parallel 0: must be at least 1"),
        ("demo", ["--steps", "0"], "--steps 0: must be at least 1"),
        ("demo", ["--filter-vocabulary", "0"], "--filter-vocabulary 0.0: must be above 0"),
        ("demo_emoji", ["--eval-images", "-1"], "--eval-images -1: must be at least 0"),
        ("demo_emoji", ["--exemplar-share", "2"], "--exemplar-share 2.0: must be between 0 and 1"),
        ("multi30k", ["--pool-min-images", "-1"], "-1 is negative; pass 0 to turn the pool off"),
    ],
)
def test_an_option_out_of_range_is_one_line_before_any_work(tmp_path, capsys, entry, argv, says):
    from mling import demo, demo_emoji
    from mling.evaluation import multi30k
    from mling.synthetic import generate

    mains = {"synthetic": generate.main, "demo": demo.main, "demo_emoji": demo_emoji.main}
    mains["multi30k"] = multi30k.main
    progs = {"synthetic": "synthetic.py", "multi30k": "multi30k.py"}
    out = ["--output", str(tmp_path / "out")]
    if entry == "multi30k":
        out += ["--multi30k", str(tmp_path), "--images", str(tmp_path), "--model", str(tmp_path)]
    assert mains[entry]([*argv, *out]) == 2
    error_line(capsys, progs.get(entry, f"{entry}.py"), says)
    assert not (tmp_path / "out").exists()


# ---- `datasets` folders whose JSON files are junk or of another shape ----


@pytest.mark.parametrize("name", ["state.json", "dataset_info.json", "dataset_dict.json"])
@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "(Expecting property name"),
        ("[1, 2]", "(a JSON object), not a list"),
        ("null", "(a JSON object), not null"),
    ],
)
def test_a_datasets_folder_with_a_junk_json_file_is_one_line(tmp_path, capsys, name, text, says):
    import datasets

    split = datasets.Dataset.from_dict({"caption": ["Ein Hund läuft", "犬が走る", "كلب يركض"]})
    folder = tmp_path / "saved"
    if name == "dataset_dict.json":
        datasets.DatasetDict({"train": split}).save_to_disk(str(folder))
        damaged = folder / name
    else:
        split.save_to_disk(str(folder))
        damaged = folder / name
    damaged.write_text(text)
    capsys.readouterr()  # the fixture's own progress bar
    argv = ["--input", str(folder), "--output", str(tmp_path / "vocab"), "--vocab-size", "200"]
    assert build_vocab_main(argv) == 2
    assert str(damaged) in error_line(capsys, "build_vocab.py", says)
    assert not (tmp_path / "vocab").exists()
    with pytest.raises(InputError, match=re.escape(says)):  # the pair readers: training's
        list(iter_pair_batches([folder]))


def test_a_datasets_state_file_without_its_files_is_one_line(tmp_path, capsys):
    folder = tmp_path / "saved"
    folder.mkdir()
    for files in ('{"_data_files": 5}', '{"_data_files": [{"filename": 5}]}', "{}"):
        (folder / "state.json").write_text(files)
        argv = ["--input", str(folder), "--output", str(tmp_path / "vocab")]
        assert build_vocab_main(argv) == 2
        error_line(capsys, "build_vocab.py", f'{folder / "state.json"}: "_data_files" must')


# ---- a checkpoint damaged since training wrote it, given to the export ----


def test_a_damaged_checkpoint_is_one_line_for_the_export(
    tmp_path, toy_pairs, toy_tokenizer, capsys
):
    import shutil

    import mling.export

    run = tmp_path / "run"
    assert mling.train.main(tiny_argv(toy_pairs, toy_tokenizer, run, "--max-steps", "1")) == 0
    (checkpoint,) = (run / "checkpoints").glob("step-*")
    header = b"\x10" + b"\0" * 7 + b'{"a": {}}       '
    damages = {
        "model.safetensors": (lambda c: (c / "model.safetensors").write_bytes(header),
                              "model.safetensors has no readable header"),
        "config.json": (lambda c: (c / "config.json").write_text("{junk"),
                        "config.json is not a model config"),
        "config.json list": (lambda c: (c / "config.json").write_text("[1]"),
                             "config.json must be a JSON object (AlignConfig), not a list"),
        "recipe.yaml": (lambda c: (c / "recipe.yaml").write_text("- model\n"),
                        "recipe.yaml holds a list, not sections"),
        "tokenizer/": (lambda c: shutil.rmtree(c / "tokenizer"), "has no tokenizer/ folder"),
        "config.json of another model": (
            lambda c: (c / "config.json").write_text('{"model_type": "align", "text_config": 5}'),
            "does not load"),
    }  # fmt: skip
    for name, (damage, says) in damages.items():
        copy = tmp_path / name.replace(" ", "-").replace("/", "")
        shutil.copytree(checkpoint, copy)
        damage(copy)
        capsys.readouterr()
        argv = ["--checkpoint", str(copy), "--output", str(tmp_path / "export")]
        assert mling.export.main(argv) == 2, name
        assert str(copy) in error_line(capsys, "export.py", says), name
        assert not (tmp_path / "export").exists(), name


# ---- docs/bad-input.md: every row backed by a test that exists ----


def _named_tests(cell: str, above: str | None) -> list[tuple[str | None, str | None]]:
    """(test file, test name or None for the whole file) named in a table cell; a bare name
    is in the file named before it, or in the row above's file ("same" refers to that row)."""
    named, current = [], above
    for item in re.findall(r"`([^`]+)`", cell):
        file, _, name = item.partition("::")
        if file.endswith(".py"):
            current = file
            named.append((file, name or None))
        elif item.startswith("test_"):
            named.append((current, item))
    return named


def test_every_test_the_bad_input_page_names_exists_and_the_count_is_true():
    page = (ROOT / "docs" / "bad-input.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith("| ") and "---" not in line]
    rows = rows[1:]  # the header
    match = re.search(r"^(\d+) kinds of bad input, each with its test", page, re.MULTILINE)
    assert match and int(match.group(1)) == len(rows), "the count at the top is not the table's"
    above = None
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        tests = _named_tests(cells[-1], above)
        assert tests or cells[-1] == "same", row
        for file, name in tests:
            assert file is not None, f"{name}: which file? ({row})"
            source = (ROOT / "tests" / file).read_text(encoding="utf-8")
            assert name is None or f"def {name}(" in source, f"{file}::{name} does not exist"
        above = tests[-1][0] if tests else above
