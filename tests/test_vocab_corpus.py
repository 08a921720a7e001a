"""Reading corpora: every format, file-name labels, parallel files, and bad input."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mling.common.errors import InputError
from mling.pairs.shards import write_webdataset_shards
from mling.vocab import corpus_reader as corpus_module
from mling.vocab.corpus_reader import CorpusConfig, discover, iter_corpus
from mling.vocab.labels import compile_filename_pattern, filename_language, sibling_path

LINES = ["Ein Hund läuft.", "สุนัขวิ่งบนหญ้า", "一只狗在草地上跑", "Собака бежит."]


def read(inputs: list[Path], **options) -> tuple[list[tuple], Counter]:
    """(text, language, english) rows and skip counts, as the build sees them."""
    config = CorpusConfig(inputs=tuple(map(str, inputs)), **options)
    skipped: Counter[str] = Counter()
    rows = []
    for batch in iter_corpus(discover(config, skipped), config, skipped):
        rows += list(zip(batch.texts, batch.languages, batch.english, strict=True))
    return rows, skipped


@pytest.mark.parametrize("chunk_bytes", [3, 7, 64, 1 << 20])
def test_text_lines_and_bad_lines_whatever_the_chunking(tmp_path, monkeypatch, chunk_bytes):
    monkeypatch.setattr(corpus_module, "CHUNK_BYTES", chunk_bytes)
    path = tmp_path / "mixed.txt"
    path.write_bytes(
        b"\xef\xbb\xbfFirst line\r\n"  # BOM and CRLF
        + "สุนัขวิ่งบนหญ้า\n".encode()
        + b"   \n"  # blank
        + b"bad \xff\xfe utf-8\n"
        + b"bell \x07 in text\n"
        + b"x" * 200
        + b"\n"  # over max_line_bytes
        + "一只狗在草地上跑".encode()  # no final newline
    )
    rows, skipped = read([path], max_line_bytes=100)
    assert [text for text, _, _ in rows] == ["First line", "สุนัขวิ่งบนหญ้า", "一只狗在草地上跑"]
    assert skipped == Counter(blank=1, invalid_utf8=1, control_chars=1, too_long=1)


def test_a_line_of_megabytes_is_skipped_without_being_held(tmp_path):
    path = tmp_path / "huge.txt.gz"
    with gzip.open(path, "wb") as file:
        file.write(b"before\n" + b"a" * 3_000_000 + b"\nafter\n")
    rows, skipped = read([path])
    assert [text for text, _, _ in rows] == ["before", "after"]
    assert skipped == Counter(too_long=1)


def test_empty_binary_and_corrupt_files_are_skipped_with_a_count(tmp_path, capsys):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "utf16.txt").write_bytes("Hund\n".encode("utf-16"))
    (tmp_path / "broken.gz").write_bytes(gzip.compress(b"Hund\nKatze\n" * 500)[:60])
    (tmp_path / "good.txt").write_text("Katze\n", encoding="utf-8")
    (tmp_path / "torn.parquet").write_bytes(b"PAR1 not really parquet")
    rows, skipped = read([tmp_path])
    assert [text for text, _, _ in rows] == ["Katze"]
    assert skipped == Counter(file_empty=1, file_binary=2, file_unreadable=2)
    err = capsys.readouterr().err
    assert "empty file" in err and "binary file" in err and "broken.gz" in err


def test_missing_path_is_one_line_naming_it(tmp_path):
    with pytest.raises(InputError, match=r"^input not found: .*nowhere\.txt$"):
        read([tmp_path / "nowhere.txt"])


def test_jsonl_with_language_and_english_columns(tmp_path):
    rows = [
        {"caption": "Ein Hund.", "language": "de", "english": "A dog."},
        {"caption": "Un chien.", "language": "fr"},
        {"caption": 12, "language": "de"},  # a number is not text
        {"text": "no caption"},
    ]
    path = tmp_path / "pairs.jsonl"
    lines = [json.dumps(row, ensure_ascii=False) for row in rows] + ["{not json"]
    path.write_text("\n".join(lines), encoding="utf-8")
    got, skipped = read([path], lang_column="language", english_column="english")
    assert got == [("Ein Hund.", "de", "A dog."), ("Un chien.", "fr", None)]
    assert skipped == Counter(not_text=1, missing_text=1, invalid_json=1)


def test_parquet_reads_only_the_text_columns(tmp_path):
    table = pa.table(
        {
            "caption": LINES + [None, "line\nbreak"],
            "language": ["de", "th", "zh", "ru", "en", "en"],
            "image": [b"\xff\xd8" * 1000] * 6,
        }
    )
    pq.write_table(table, tmp_path / "part-00000.parquet")
    rows, skipped = read([tmp_path], lang_column="language")
    languages = ["de", "th", "zh", "ru"]
    assert rows[:4] == [(text, lang, None) for text, lang in zip(LINES, languages, strict=True)]
    assert rows[4] == ("line break", "en", None)  # one sentence per sample line
    assert skipped == Counter(missing_text=1)


def test_directories_are_read_flat_like_everywhere_in_the_toolkit(tmp_path, capsys):
    # A filter output: kept pairs on top, rejected ones and a webdataset copy in folders.
    (tmp_path / "rejected").mkdir()
    pq.write_table(pa.table({"caption": LINES[:2]}), tmp_path / "part-00000.parquet")
    pq.write_table(pa.table({"caption": ["spam spam"]}), tmp_path / "rejected" / "part-0.parquet")
    rows, _ = read([tmp_path])
    assert [text for text, _, _ in rows] == LINES[:2]
    assert "not reading 1 folders" in capsys.readouterr().err
    rows, _ = read([tmp_path / "**" / "*.parquet"])
    assert sorted(text for text, _, _ in rows) == sorted([*LINES[:2], "spam spam"])


def test_missing_column_is_an_error_that_says_what_to_pass(tmp_path):
    pq.write_table(pa.table({"TEXT": LINES}), tmp_path / "laion.parquet")
    with pytest.raises(InputError, match="has no column 'caption'.*--text-column"):
        read([tmp_path / "laion.parquet"])
    rows, _ = read([tmp_path / "laion.parquet"], text_column="TEXT")
    assert [text for text, _, _ in rows] == LINES


def test_datasets_save_to_disk_and_webdataset_tar(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"caption": LINES[:2], "language": ["de", "th"]}).save_to_disk(
        tmp_path / "hf"
    )
    batch = pa.RecordBatch.from_pydict({"key": ["0", "1"], "caption": LINES[2:]})
    write_webdataset_shards([batch], tmp_path / "wds")
    rows, _ = read([tmp_path / "hf", tmp_path / "wds"], lang_column="language")
    assert rows == [
        (LINES[0], "de", None),
        (LINES[1], "th", None),
        (LINES[2], None, None),
        (LINES[3], None, None),
    ]


def test_filename_patterns():
    regex = compile_filename_pattern("*.{lang}.gz")
    assert filename_language(Path("raw/train.de.gz"), regex) == "de"
    assert filename_language(Path("raw/train.de.txt"), regex) is None
    assert sibling_path(Path("raw/train.de.gz"), regex, "en") == Path("raw/train.en.gz")
    assert filename_language(Path("udhr/th_Thai.txt"), compile_filename_pattern("{lang}.txt"))
    custom = compile_filename_pattern(r"wiki-(?P<lang>[a-z]+)-\d+\.txt$")
    assert filename_language(Path("wiki-ja-0001.txt"), custom) == "ja"
    with pytest.raises(InputError, match=r"exactly one \{lang\}"):
        compile_filename_pattern("*.txt")


def test_parallel_files_pair_line_by_line_only_when_aligned(tmp_path):
    (tmp_path / "train.en.txt").write_text("A dog.\nA cat.\n", encoding="utf-8")
    (tmp_path / "train.de.txt").write_text("Ein Hund.\n\nEine Katze.\n", encoding="utf-8")
    (tmp_path / "more.en.txt").write_text("One.\n", encoding="utf-8")
    (tmp_path / "more.de.txt").write_text("Eins.\nZwei.\n", encoding="utf-8")
    options = {"lang_from_filename": "*.{lang}.txt", "parallel_files": True}
    (tmp_path / "train.en.txt").write_text("A dog.\n\nA cat.\n", encoding="utf-8")
    rows, _ = read([tmp_path], **options)
    assert ("Ein Hund.", "de", "A dog.") in rows and ("Eine Katze.", "de", "A cat.") in rows
    assert ("Eins.", "de", None) in rows  # 2 lines against 1: not parallel
    rows, _ = read([tmp_path], lang_from_filename="*.{lang}.txt")
    assert ("Ein Hund.", "de", None) in rows  # pairing is opt-in
