"""One record per filter: a record added in a fixture reaches the SQL of both engines, the
options, the report and its order; the docs table is the records; thresholds are range-checked."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks import update_docs
from mling.common.field_options import at_least, option
from mling.filtering import reasons
from mling.filtering.filter_sql import COUNTS, DUCKDB, SPARK, stages
from mling.filtering.pipeline import _parser, main
from mling.filtering.prepass import FEATURES_SCHEMA, RowContext, row_features
from mling.filtering.reasons import (
    ImageFilterConfig,
    Reason,
    TextFilterConfig,
    filter_configs,
    filters,
    reason_names,
)
from tests.helpers.filter_cases import GOOD, outcomes, pair_row
from tests.helpers.one_line import error_line

ROOT = Path(__file__).resolve().parents[1]

ALL_DIGITS = Reason(
    "caption_all_digits",
    "text",
    "caption holds only digits and spaces",
    "caption is only ASCII digits and spaces: a date or a file number",
    predicate="trim(translate(caption, '0123456789', '')) = ''",
    reads=("caption",),
)
TOO_LONG = Reason(
    "caption_too_long",
    "text",
    "caption longer than max_caption_chars characters",
    "caption longer than max_caption_chars characters",
    predicate="length(caption) > {max_caption_chars}",
    reads=("caption",),
    field="max_caption_chars",
)


@dataclass(frozen=True)
class TextWithLength(TextFilterConfig):
    max_caption_chars: int = option(200, "characters; dropped above", check=at_least(1))


@pytest.fixture
def added(monkeypatch):
    """Two records appended to the text group (one with a threshold), as a newcomer would."""
    monkeypatch.setattr(reasons, "REASONS", (*reasons.REASONS, ALL_DIGITS, TOO_LONG))
    monkeypatch.setattr(reasons, "TextFilterConfig", TextWithLength)


def test_every_threshold_belongs_to_one_filter_and_every_predicate_reads_known_columns():
    named = [reason.field for reason in filters() if reason.field]
    configs = [
        item.name for config in (ImageFilterConfig, TextFilterConfig) for item in fields(config)
    ]
    assert sorted(named) == sorted(configs) and len(set(named)) == len(named)
    readable = set(FEATURES_SCHEMA.names) | set(COUNTS)
    for reason in reasons.REASONS:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", reason.name), reason.name
        assert reason.group in ("malformed", "image", "text")
        if reason.group == "malformed":
            assert not reason.predicate and not reason.field, reason.name
        else:
            assert reason.predicate and set(reason.reads) <= readable, reason.name


def test_the_prepass_gives_the_first_malformed_reason_in_the_records_order():
    """Width and height are checked together: a row with a width that is no number and no
    height at all is `missing_size`, the earlier record, whichever side fails which check."""
    batch = pa.RecordBatch.from_pylist(
        [
            {"key": "a", "caption": "Собака бежит по траве", "width": "big", "height": None},
            {"key": "b", "caption": "犬が芝生の上を走る", "width": "0", "height": "tall"},
            {"key": "", "caption": "A\x00 dog", "width": "300", "height": "0"},
        ]
    )
    batch = batch.append_column("url", pa.nulls(3, pa.string()))
    batch = batch.append_column("image", pa.nulls(3, pa.binary()))
    features = row_features(batch, 0, RowContext(image=ImageFilterConfig()))
    malformed = features.column("malformed").to_pylist()
    assert malformed == ["missing_size", "size_not_numeric", "missing_key"]


def test_docs_reasons_table_is_made_from_the_records(monkeypatch):
    page = (ROOT / "docs" / "filter.md").read_text(encoding="utf-8")
    blocks = [
        m[0] for m in update_docs.BLOCK.finditer(page) if m["source"] == "mling.filtering.reasons"
    ]
    assert len(blocks) == 1
    assert update_docs.update(blocks[0], []) == blocks[0], "run python -m benchmarks.update_docs"
    assert (
        "| 18 | `too_many_words` | more than max_words unigrams | engine | `--max-words 20` |"
        in blocks[0]
    )
    # a record the table lacks is a difference the test above would catch
    monkeypatch.setattr(reasons, "REASONS", (*reasons.REASONS, ALL_DIGITS))
    assert "| 19 | `caption_all_digits` |" in update_docs.update(blocks[0], [])


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (
            ["--max-aspect-ratio", "-1"],
            "--max-aspect-ratio -1.0: must be above 1",
        ),
        (
            ["--max-aspect-ratio", "nan"],
            "--max-aspect-ratio nan: must be a finite number",
        ),
        (["--max-words", "0"], "--max-words 0: must be at least 1"),
        (
            ["--min-words", "10", "--max-words", "3"],
            "--max-words 3: must be at least --min-words (10)",
        ),
        (["--eval-radius", "-1"], "--eval-radius -1: must be between 0 and 64"),
        (["--eval-radius", "65"], "--eval-radius 65: must be between 0 and 64"),
        (["-K", "0"], "--vocabulary-size 0: must be at least 1"),
        (["--min-side", "-5"], "--min-side -5: must be at least 0"),
        (["--workers", "0"], "--workers 0: must be at least 1"),
        (["--shard-rows", "0"], "--shard-rows 0: must be at least 1"),
    ],
)
def test_numeric_options_out_of_range_are_one_line_and_exit_2(tmp_path, capsys, flags, says):
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--quiet"]
    assert main([*argv, *flags]) == 2
    assert error_line(capsys, "filter.py") == f"filter.py: {says}"
    assert not (tmp_path / "out").exists()


def test_an_added_record_is_in_the_sql_of_both_engines(added):
    image, text = filter_configs(vars(_parser().parse_args(["--input", "i", "--output", "o"])))
    for dialect in (DUCKDB, SPARK):
        sql = {stage.name: stage.sql for stage in stages(image, text, dialect)}
        assert "f.caption" in sql["rows"]  # the narrow table carries what the predicate reads
        decision = " ".join(sql["decisions"].split())
        assert "(trim(translate(caption, '0123456789', '')) = '')" in decision
        assert "(length(caption) > 200), false) AS caption_too_long" in decision
        case = decision[decision.index("CASE WHEN malformed") :]
        order = [case.index(f"WHEN {name} THEN") for name in reasons.filter_names()]
        assert order == sorted(order) and reasons.filter_names()[-2:] == (
            "caption_all_digits",
            "caption_too_long",
        )


def test_an_added_threshold_is_an_option_with_its_help_default_and_range(added, tmp_path, capsys):
    text_help = _parser().format_help().split("text filters:")[1].split("engine and run:")[0]
    assert "--max-caption-chars MAX_CAPTION_CHARS" in text_help
    assert "characters; dropped above (default: 200)" in " ".join(text_help.split())
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]
    _, text = filter_configs(vars(_parser().parse_args([*argv, "--max-caption-chars", "60"])))
    assert text.max_caption_chars == 60 and text.max_words == 20
    assert main([*argv, "--max-caption-chars", "0"]) == 2
    error_line(capsys, "filter.py", "--max-caption-chars 0: must be at least 1")


def _write_added_fixture(directory: Path) -> dict[str, list[str | None]]:
    """The good captions in every script, and rows for the two added reasons; key -> expected."""
    rows = [
        (pair_row(f"kept-{lang}", text, f"https://img.example/{lang}.jpg"), None)
        for lang, text in GOOD.items()
    ]
    rows += [
        (pair_row("date", "2024 07 15", "https://img.example/d.jpg"), "caption_all_digits"),
        (pair_row("number", "12345 678 90 1", "https://img.example/n.jpg"), "caption_all_digits"),
        # one word: too_few_words comes first in the order, so it is this row's reason
        (pair_row("digit", "7", "https://img.example/7.jpg"), "too_few_words"),
        (
            pair_row(
                "long-el",
                "Ένας μεγάλος καφέ σκύλος τρέχει γρήγορα στο πράσινο γρασίδι του πάρκου δίπλα στη θάλασσα.",
                "https://img.example/el.jpg",
            ),
            "caption_too_long",
        ),
    ]
    directory.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([row for row, _ in rows]), directory / "part-0.parquet")
    return {row["key"]: [reason] for row, reason in rows}


def _run(tmp_path: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    argv = ["--input", str(tmp_path / "in"), "--output", str(out), "--write-rejected", "--quiet"]
    assert main([*argv, "--no-language-id", "--max-caption-chars", "60", *extra]) == 0
    return out


def test_an_added_record_is_in_the_report_with_its_count_in_its_order(added, tmp_path):
    expected = _write_added_fixture(tmp_path / "in")
    out = _run(tmp_path, "out")
    assert outcomes(out) == expected
    report = json.loads((out / "report.json").read_text())
    assert report["reason_order"] == list(reason_names())
    assert report["reason_order"][-3:] == [
        "too_many_words",
        "caption_all_digits",
        "caption_too_long",
    ]
    dropped = report["dropped_by_reason"]
    assert (
        dropped["caption_all_digits"],
        dropped["caption_too_long"],
        dropped["too_few_words"],
    ) == (2, 1, 1)
    assert report["settings"]["text"]["max_caption_chars"] == 60
    markdown = (out / "report.md").read_text()
    legend = markdown.index("| caption_all_digits | caption holds only digits and spaces | 2 |")
    assert markdown.index("| too_few_words |") < legend < markdown.index("| caption_too_long |")
    assert (
        "| caption_all_digits | caption_too_long |" in markdown
    )  # each filter alone, per language


@pytest.mark.slow
def test_an_added_record_runs_the_same_on_spark(added, tmp_path):
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java 17 on PATH")
    expected = _write_added_fixture(tmp_path / "in")
    spark = _run(tmp_path, "spark", "--engine", "spark", "--spark-master", "local[2]")
    assert outcomes(spark) == expected
    duck = json.loads((_run(tmp_path, "duck") / "report.json").read_text())
    report = json.loads((spark / "report.json").read_text())
    assert report["dropped_by_reason"] == duck["dropped_by_reason"]
