"""The filter end to end on DuckDB: one row per reason, the accounting identity, language-ID
independence, agreement with the pandas implementation, idempotence, and bad input."""

from __future__ import annotations

import io
import json
import random
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mling.filtering.pipeline import main
from mling.filtering.reasons import ImageFilterConfig, TextFilterConfig, reason_names
from tests.helpers.filter_cases import (
    GOOD,
    outcomes,
    pair_row,
    reason_rows,
    run,
    write_reason_fixture,
)
from tests.helpers.filter_oracle import filter_reasons
from tests.helpers.one_line import error_line


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("filter")
    expected = write_reason_fixture(tmp_path / "in")
    return tmp_path, expected, run(tmp_path, "out")


def test_every_row_gets_its_reason(fixture_run):
    _, expected, out = fixture_run
    expected = {key: sorted(v, key=str) for key, v in expected.items()}
    expected["None"] = expected.pop(None)  # the key-less row is read back as null
    found = outcomes(out)
    found["None"] = found.pop(None)
    assert found == expected


def test_report_proves_the_accounting(fixture_run):
    _, expected, out = fixture_run
    report = json.loads((out / "report.json").read_text())
    rows = sum(len(v) for v in expected.values())
    accounting = report["accounting"]
    assert accounting["input_rows"] == rows
    assert accounting["kept"] + accounting["dropped"] == rows
    assert accounting["kept_plus_dropped_equals_input"] and accounting["written_equals_kept"]
    assert report["reason_order"] == list(reason_names())
    assert sum(report["dropped_by_reason"].values()) == accounting["dropped"]
    languages = {entry["language"] for entry in report["languages"]}
    assert {"ja", "th", "ru", "ar"} <= languages
    assert sum(entry["rows"] for entry in report["languages"]) == rows
    assert (out / "report.md").read_text().startswith("# Filter report")
    assert (out / "report.png").stat().st_size > 0


def test_kept_shards_use_the_pair_schema(fixture_run):
    _, _, out = fixture_run
    kept = pq.read_table(sorted(out.glob("part-*.parquet")))
    assert kept.schema.field("width").type == pa.int64()
    assert kept.schema.field("caption").type == pa.string()
    assert {"language", "language_score", "similarity"} <= set(kept.column_names)
    assert "reason" not in kept.column_names
    row = kept.filter(pa.compute.equal(kept.column("key"), "text-size")).to_pylist()[0]
    assert (row["width"], row["height"]) == (640, 480)


def test_pandas_implementation_agrees(fixture_run):
    tmp_path, expected, _ = fixture_run
    files = sorted((tmp_path / "in").glob("*.parquet"))
    reasons = filter_reasons(
        files, ImageFilterConfig(max_alt_texts=3), TextFilterConfig(max_images=2)
    ).tolist()
    flat = [reason for row, reason in reason_rows()]
    # pandas knows no evaluation set; its near-duplicate row is kept instead.
    flat = [None if reason == "near_duplicate_eval" else reason for reason in flat]
    assert reasons[: len(flat)] == flat
    assert reasons[len(flat) :] == [
        None,
        "size_not_numeric",
        "invalid_utf8",
        None,
        "caption_not_text",
    ]


def test_kept_set_ignores_language_labels(fixture_run, monkeypatch):
    tmp_path, _, out = fixture_run

    from mling.common.language_id import MAX_CHARS, LanguageIdentifier

    class RandomLanguages(LanguageIdentifier):  # the real lines, random labels
        def __init__(self, model_path=None):
            self.max_chars, self.random = MAX_CHARS, random.Random(0)

        def predict_lines(self, lines):
            return [self.random.choice(["en", "ja", "sw", "und"]) for _ in lines], [
                self.random.random() for _ in lines
            ]

    monkeypatch.setattr("mling.common.language_id.LanguageIdentifier", RandomLanguages)
    stubbed = run(tmp_path, "out-stub")
    assert outcomes(stubbed) == outcomes(out)
    languages = pq.read_table(sorted(stubbed.glob("part-*.parquet"))).column("language").to_pylist()
    assert set(languages) <= {"en", "ja", "sw", "und"}


def test_rerun_gives_the_same_output(fixture_run):
    tmp_path, _, out = fixture_run
    again = run(tmp_path, "out", "--overwrite")  # over our previous output: replaced whole
    assert again == out
    first = pq.read_table(sorted(out.glob("part-*.parquet")))
    rerun = pq.read_table(sorted(run(tmp_path, "out-again").glob("part-*.parquet")))
    assert rerun.equals(first)
    assert not list(tmp_path.glob(".out*"))  # no staging or scratch directory left behind


def test_rare_tokens_are_dropped_with_a_small_vocabulary(tmp_path):
    captions = ["the dog runs home"] * 5 + ["the cat runs home"] * 3 + ["the zebra runs home"]
    rows = [pair_row(f"r{i}", c, f"https://img.example/{i}.jpg") for i, c in enumerate(captions)]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in" / "part-0.parquet")
    # Token counts: the, runs, home, "runs home" 9; dog, "the dog", "dog runs" 5; the three
    # "cat" tokens 3; "zebra" tokens 1. K = 8 holds the 7 tokens of counts 9 and 5 but not the
    # tied group of 3 (10 > 8): "cat" and "zebra" rows are rare.
    out = tmp_path / "out"
    assert (
        main(
            [
                "--input",
                str(tmp_path / "in"),
                "--output",
                str(out),
                "-K",
                "8",
                "--max-images",
                "100",
                "--write-rejected",
                "--quiet",
            ]
        )
        == 0
    )
    found = outcomes(out)
    assert [key for key, r in found.items() if r == ["rare_token"]] == [
        f"r{i}" for i in range(5, 9)
    ]
    report = json.loads((out / "report.json").read_text())
    assert report["vocabulary"]["min_count"] == 5 and report["vocabulary"]["vocabulary_tokens"] == 7


def _jpeg(seed: int, size: int = 256, quality: int = 90) -> bytes:
    """A smooth random picture (a 4x4 color grid upsampled), JPEG-encoded."""
    import numpy as np
    from PIL import Image

    grid = np.random.default_rng(seed).integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(grid).resize((size, size), Image.BICUBIC).save(
        buffer, format="JPEG", quality=quality
    )
    return buffer.getvalue()


def test_webdataset_input_with_image_bytes_and_eval_images(tmp_path):
    from mling.pairs.shards import write_webdataset_shards

    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    (eval_dir / "1007129816.jpg").write_bytes(_jpeg(0))
    rows = [
        {**pair_row(f"pic{i}", GOOD[lang], None, 400, 300), "image": _jpeg(i + 1)}
        for i, lang in enumerate(["en", "ja", "th", "ru"])
    ]
    # The evaluation image resized and saved at a lower quality: other bytes, same picture.
    rows.append(
        {**pair_row("near-eval", GOOD["de"], None, 400, 300), "image": _jpeg(0, 200, quality=50)}
    )
    write_webdataset_shards([pa.RecordBatch.from_pylist(rows)], tmp_path / "in")
    with tarfile.open(tmp_path / "in" / "extra.tar", "w") as tar:  # bad UTF-8 in a .txt
        for name, payload in [
            ("badtext.txt", b"caf\xe9 noir et sucre"),
            ("badtext.json", b'{"width": 400, "height": 300}'),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    out = tmp_path / "out"
    argv = [
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(out),
        "--eval-images",
        str(eval_dir),
        "--write-rejected",
        "--quiet",
    ]
    assert main(argv) == 0
    found = outcomes(out)
    assert found["near-eval"] == ["near_duplicate_eval"]
    assert found["badtext"] == ["invalid_utf8"]
    assert all(found[f"pic{i}"] == [None] for i in range(4))
    shards = sorted((out / "webdataset").glob("*.tar"))
    with tarfile.open(shards[0]) as tar:
        assert sorted(name for name in tar.getnames() if name.endswith(".jpg")) == [
            f"pic{i}.jpg" for i in range(4)
        ]


def test_missing_input_is_one_line_error(tmp_path, capsys):
    assert main(["--input", str(tmp_path / "nope"), "--output", str(tmp_path / "out")]) == 2
    error_line(capsys, "filter.py", "input not found")
    assert not (tmp_path / "out").exists()


def test_layouts_are_recognized_from_their_columns_or_named_by_flag(tmp_path, capsys):
    """LAION's columns need no flag (the report says which mapping it used); a layout nobody
    recognizes names the flags that fix it; the old --preset spelling still works."""
    (tmp_path / "laion").mkdir()
    table = pa.table(
        {
            "key": ["a", "b"],
            "TEXT": [GOOD["en"], GOOD["ja"]],
            "URL": ["https://a/1.jpg", "https://a/2.jpg"],
            "WIDTH": [640, 640],
            "HEIGHT": [480, 480],
        }
    )
    pq.write_table(table, tmp_path / "laion" / "part-0.parquet")
    argv = ["--input", str(tmp_path / "laion"), "--output", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 0
    assert pq.read_table(sorted((tmp_path / "out").glob("part-*.parquet"))).num_rows == 2
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["settings"]["columns"]["preset"] == "laion"
    assert report["settings"]["columns"]["detected"] is True
    assert "laion (recognized from its columns)" in (tmp_path / "out" / "report.md").read_text()

    (tmp_path / "odd").mkdir()
    pq.write_table(
        table.rename_columns(["key", "alt", "u", "w", "h"]), tmp_path / "odd" / "p.parquet"
    )
    odd = ["--input", str(tmp_path / "odd"), "--output", str(tmp_path / "odd-out"), "--quiet"]
    capsys.readouterr()  # the runs above
    assert main(odd) == 2
    error_line(capsys, "filter.py", "--column-preset")
    assert (
        main([*odd, "--column", "alt=caption", "--column", "w=width", "--column", "h=height"]) == 0
    )
    # the old spelling works for one release, and says which one to use
    assert main([*argv, "--preset", "laion", "--overwrite"]) == 0
    assert "--preset is deprecated; use --column-preset" in capsys.readouterr().err


def test_bad_eval_hash_line_is_one_line_error(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    pq.write_table(
        pa.Table.from_pylist([pair_row("a", GOOD["en"])]), tmp_path / "in" / "part-0.parquet"
    )
    (tmp_path / "hashes.txt").write_text("not-a-hash\n")
    argv = [
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(tmp_path / "out"),
        "--eval-hashes",
        str(tmp_path / "hashes.txt"),
    ]
    assert main(argv) == 2
    error_line(capsys, "filter.py", "hashes.txt:1")


def test_summary_names_the_output_as_given(fixture_run, tmp_path, monkeypatch, capsys):
    source = fixture_run[0] / "in"
    monkeypatch.chdir(tmp_path)
    argv = ["--input", str(source), "--output", "kept/", "--quiet", "--no-language-id"]
    assert main(argv) == 0
    assert capsys.readouterr().err.strip().endswith("; report at kept/report.md")
