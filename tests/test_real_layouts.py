"""Real inputs as they are, read without flags: img2dataset's own output (made by img2dataset
itself, see tests/fixtures/img2dataset/make.py), LAION, COYO-700M and WIT metadata as published
(tests/fixtures/published/make.py), and `datasets` on disk (written by `datasets` in the test)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import mling.train
from mling.common.errors import InputError
from mling.filtering.pipeline import main as filter_main
from mling.pairs.shards import expand_inputs, iter_pair_batches, layout_columns
from mling.training.loader import index_sources, train_columns
from mling.vocab.build_vocab import main as build_vocab_main
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
    kept = [pq.read_table(p, columns=["key"]) for p in sorted(out.glob("part-*.parquet"))]
    found = {str(key): None for table in kept for key in table.column("key").to_pylist()}
    shards = sorted((out / "rejected").glob("part-*.parquet"))
    rejected = pq.read_table(shards, columns=["key", "reason"]).to_pylist()
    return found | {str(row["key"]): row["reason"] for row in rejected}


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


# ---- published metadata: LAION, COYO-700M, WIT (tests/fixtures/published/make.py says which
# rows are real and which follow the dataset cards) ----

PUBLISHED = Path(__file__).resolve().parent / "fixtures" / "published"
LAION_MULTI = "part-00000-5114fd87-297e-42b0-9d11-50f1df323dfa-c000_snappy"
WIT_0, WIT_1 = "wit_v1_train_all-00000-of-00010", "wit_v1_train_all-00001-of-00010"
# folder -> (layout, reason per key). Keys: LAION-400M's SAMPLE_ID and COYO's id where the file
# has them; the file's name and the row's number where it has none (LAION-5B, WIT).
PUBLISHED_EXPECTED = {
    "laion400m": (  # img2dataset's own test URL list: URL and TEXT, no sizes
        "laion",
        {f"test_1000-head-{i:09d}": "missing_size" for i in range(5)},
    ),
    "laion2b-multi": (
        "laion",
        {
            f"{LAION_MULTI}-000000000": None,  # de, 640 x 480
            f"{LAION_MULTI}-000000001": None,  # ja, 500 x 500
            f"{LAION_MULTI}-000000002": "aspect_ratio",  # ar, 1200 x 300
            f"{LAION_MULTI}-000000003": "size_not_positive",  # ru, LAION's 0 for unknown
            f"{LAION_MULTI}-000000004": "image_too_small",  # th, 120 x 90
            f"{LAION_MULTI}-000000005": None,  # el, 800 x 600
        },
    ),
    "coyo700m": (
        "coyo",
        {
            "841814333321": None,  # the card's example row
            "841814333322": None,
            "841814333323": "image_too_small",
            "841814333324": "aspect_ratio",
        },
    ),
    "wit": (
        "wit",
        {
            f"{WIT_0}-000000000": "missing_caption",  # real (fr): no alt-text
            f"{WIT_0}-000000001": None,  # real (nl): 1893 x 1173
            f"{WIT_1}-000000000": None,  # ja
            f"{WIT_1}-000000001": None,  # ar
            f"{WIT_1}-000000002": None,  # ru
            f"{WIT_1}-000000003": "image_too_small",  # hi, 90 x 60
        },
    ),
}


@pytest.mark.parametrize("folder", sorted(PUBLISHED_EXPECTED))
def test_published_metadata_is_recognized_by_every_reader_without_flags(folder):
    layout, expected = PUBLISHED_EXPECTED[folder]
    files = expand_inputs([PUBLISHED / folder])
    mapping, preset = layout_columns(files, None, None)
    assert preset == layout
    assert train_columns([PUBLISHED / folder], None, [])[1] == layout
    rows = [r for b in iter_pair_batches([PUBLISHED / folder], mapping) for r in b.to_pylist()]
    assert [str(r["key"]) for r in rows] == list(expected)  # every row once, in order, named
    assert all(r["caption"] is None or "\t" not in r["caption"] for r in rows)
    # metadata without images: training says so in one line, before any model is built
    with pytest.raises(InputError, match="image"):
        index_sources([PUBLISHED / folder], mapping)


def test_wit_keeps_its_original_sizes_and_multiline_fields():
    mapping, _ = layout_columns(expand_inputs([PUBLISHED / "wit"]), None, None)
    rows = [r for b in iter_pair_batches([PUBLISHED / "wit"], mapping) for r in b.to_pylist()]
    real = rows[1]
    assert (real["width"], real["height"]) == ("1893", "1173")  # TSV values stay text
    assert real["caption"] == "Perigrapha i-cinctum" and real["language"] == "nl"
    assert rows[0]["context_page_description"].count("\n") == 1  # a quoted field spans lines


def test_the_filter_reads_published_metadata_without_flags(tmp_path):
    for folder, (layout, expected) in PUBLISHED_EXPECTED.items():
        out = tmp_path / folder
        argv = ["--input", str(PUBLISHED / folder), "--output", str(out), "--write-rejected"]
        assert filter_main([*argv, "--quiet"]) == 0
        assert reasons(out) == expected
        report = json.loads((out / "report.json").read_text())
        assert report["settings"]["columns"]["preset"] == layout
        assert report["accounting"]["input_rows"] == len(expected)


def test_the_vocabulary_reads_published_metadata_without_flags(tmp_path):
    # WIT: five alt-texts and the real row without one; never the TSV's lines or other columns
    for folder, lines, skipped in (("wit", 5, {"missing_text": 1}), ("laion2b-multi", 6, {})):
        out = tmp_path / folder
        argv = ["--input", str(PUBLISHED / folder), "--output", str(out), "--vocab-size", "300"]
        assert build_vocab_main(argv) == 0
        corpus = json.loads((out / "report.json").read_text())["corpus"]
        assert (corpus["lines"], corpus["skipped"]) == (lines, skipped)
        vocab = (out / "vocab.txt").read_text(encoding="utf-8").split()
        assert "wikipedia" not in vocab and "http" not in vocab


# ---- `datasets` on disk, written by the `datasets` library itself ----

CAPTIONS = [
    "A brown dog runs across the green grass.",
    "Ein brauner Hund läuft über das grüne Gras.",
    "茶色の犬が緑の芝生の上を走っている。",
    "كلب بني يركض على العشب الأخضر.",
    "Коричневая собака бежит по зелёной траве.",
    "Ένας καφέ σκύλος τρέχει στο πράσινο γρασίδι.",
    "भूरा कुत्ता हरी घास पर दौड़ता है।",
    "สุนัขสีน้ำตาลวิ่งบนหญ้าสีเขียว",
]
SIZES = [(640, 480), (300, 420), (150, 150), (1200, 300), (500, 500), (400, 300), (320, 320)]
SIZES.append((256, 256))


@pytest.fixture(scope="module")
def saved_datasets(tmp_path_factory) -> Path:
    """save_to_disk and to_parquet of one Dataset: an Image() column (struct {bytes, path}) and
    a caption column, no key and no sizes."""
    import datasets
    from PIL import Image

    root = tmp_path_factory.mktemp("datasets")
    images = [Image.new("RGB", size, (30 * i, 90, 200 - 20 * i)) for i, size in enumerate(SIZES)]
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")})
    dataset = datasets.Dataset.from_dict({"image": images, "caption": CAPTIONS}, features=features)
    dataset.save_to_disk(str(root / "saved"))
    datasets.DatasetDict({"train": dataset}).save_to_disk(str(root / "dict"))
    (root / "parquet").mkdir()
    dataset.to_parquet(str(root / "parquet" / "train.parquet"))
    return root


def test_datasets_on_disk_are_read_as_pairs(saved_datasets):
    assert json.loads((saved_datasets / "saved" / "state.json").read_text())["_data_files"]
    for layout in ("saved", "dict", "parquet"):
        rows = [r for b in iter_pair_batches([saved_datasets / layout]) for r in b.to_pylist()]
        assert [r["caption"] for r in rows] == CAPTIONS
        assert all(r["image"][:2] == b"\x89P" for r in rows)  # PNG bytes out of the struct
        assert [(r["width"], r["height"]) for r in rows] == SIZES  # from the images' headers
        assert len({r["key"] for r in rows}) == len(CAPTIONS)


def test_the_filter_reads_datasets_on_disk_without_flags(saved_datasets, tmp_path):
    for layout in ("saved", "parquet"):
        out = tmp_path / layout
        argv = ["--input", str(saved_datasets / layout), "--output", str(out), "--write-rejected"]
        assert filter_main([*argv, "--quiet"]) == 0
        found = reasons(out)
        assert sorted(found.values(), key=str) == sorted(
            [None] * 6 + ["image_too_small", "aspect_ratio"], key=str
        )
        assert len(list((out / "webdataset").glob("*.tar"))) == 1  # the images carried over


def test_training_and_the_vocabulary_read_datasets_on_disk(saved_datasets, tmp_path, toy_tokenizer):
    for layout in ("saved", "dict", "parquet"):
        mapping, preset = train_columns([saved_datasets / layout], None, [])
        assert preset is None and mapping == {}
        counted = sum(sum(s.part_rows) for s in index_sources([saved_datasets / layout], mapping))
        assert counted == len(CAPTIONS)
        run = tmp_path / f"run-{layout}"
        argv = tiny_argv(saved_datasets / layout, toy_tokenizer, run, "--max-steps", "1")
        assert mling.train.main([*argv, "--batch-size", "4"]) == 0
    out = tmp_path / "vocab"
    argv = ["--input", str(saved_datasets / "saved"), "--output", str(out), "--vocab-size", "300"]
    assert build_vocab_main(argv) == 0
    assert json.loads((out / "report.json").read_text())["corpus"]["lines"] == len(CAPTIONS)
