"""build_vocab.py's options are its configs' fields: old spellings work, bad values are one line.

Every spelling users type still parses into the same config, and a value out of range is one
line on stderr and exit code 2."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from mling.common.field_options import add_options, from_args, integer, option
from mling.vocab.alphabet import AlphabetConfig
from mling.vocab.build_vocab import build_parser, main, parse_args
from mling.vocab.corpus_reader import CorpusConfig
from mling.vocab.normalization import NormalizationConfig
from mling.vocab.sample import SamplingConfig
from tests.helpers.one_line import error_line

# every flag the hand-written parser had, as the docs, the demos and the benchmarks type them
SPELLINGS = [
    "--input", "--output", "--overwrite", "--text-column", "--column-preset", "--column",
    "--lang-column", "--lang-from-filename", "--parallel-files", "--english-column", "--english",
    "--lid-model", "--max-line-bytes", "--sample-out", "--alpha", "--max-sentences", "--max-bytes",
    "--seed", "--holdout", "--report-lines", "--vocab-size", "--algorithm", "--min-frequency",
    "--max-token-chars", "--character-coverage", "--no-exemplars", "--exemplar-min-lines",
    "--max-alphabet-share", "--exemplar-share", "--lowercase", "--strip-accents",
    "--min-train-lines", "--report-only", "--tokenizer",
]  # fmt: skip


def test_every_spelling_of_the_old_parser_is_an_option():
    assert sorted(set(SPELLINGS) - set(build_parser()._option_string_actions)) == []


def test_flags_fill_the_configs_as_before():
    args = parse_args(
        ["--input", "a.txt", "b.gz", "--output", "v", "--max-bytes", "2e8", "--alpha", "0.5"]
        + ["--no-exemplars", "--max-alphabet-share", "0.25", "--lowercase", "--seed", "7"]
        + ["--lang-from-filename", "*.{lang}.gz", "--max-sentences", "1_000"]
    )
    assert from_args(CorpusConfig, args) == CorpusConfig(
        inputs=("a.txt", "b.gz"), lang_from_filename="*.{lang}.gz"
    )
    assert from_args(SamplingConfig, args) == SamplingConfig(
        alpha=0.5, max_sentences=1000, max_bytes=200_000_000, seed=7
    )
    assert from_args(AlphabetConfig, args) == AlphabetConfig(exemplars=False, max_share=0.25)
    assert from_args(NormalizationConfig, args) == NormalizationConfig(lowercase=True)
    defaults = parse_args(["--input", "a.txt", "--output", "v"])
    assert from_args(SamplingConfig, defaults) == SamplingConfig()
    assert from_args(AlphabetConfig, defaults) == AlphabetConfig()


@pytest.mark.parametrize(
    ("flag", "value", "reason"),
    [
        ("--holdout", "1", "--holdout 1.0: must be 0 or more, under 1"),
        ("--alpha", "nan", "--alpha nan: must be a finite number"),
        ("--alpha", "-0.1", "--alpha -0.1: must be at least 0"),
        ("--max-sentences", "0", "--max-sentences 0: must be at least 1"),
        ("--max-bytes", "-5", "--max-bytes -5: must be at least 1"),
        ("--seed", "-1", "--seed -1: must be at least 0"),
        ("--report-lines", "0", "--report-lines 0: must be at least 1"),
        ("--max-line-bytes", "0", "--max-line-bytes 0: must be at least 1"),
        ("--character-coverage", "1.5", "--character-coverage 1.5: must be between 0 and 1"),
        ("--max-alphabet-share", "inf", "--max-alphabet-share inf: must be a finite number"),
        ("--min-frequency", "0", "--min-frequency 0: must be at least 1"),
        ("--max-token-chars", "0", "--max-token-chars 0: must be at least 1"),
        ("--vocab-size", "99", "--vocab-size 99: leaves no room for an alphabet"),
    ],
)
def test_a_value_out_of_range_is_one_line_and_exit_2(tmp_path, capsys, flag, value, reason):
    corpus = tmp_path / "c.txt"
    corpus.write_text("Ein Hund läuft\n犬が走る\nكلب يركض\n", encoding="utf-8")
    argv = ["--input", str(corpus), "--output", str(tmp_path / "v"), flag, value]
    assert main(argv) == 2
    assert error_line(capsys, "build_vocab.py").startswith(f"build_vocab.py: {reason}")
    assert not (tmp_path / "v").exists()


def test_integer_takes_whole_numbers_in_any_spelling():
    assert [integer(text) for text in ("250000", "250_000", "2.5e5", "1e9")] == [
        250_000,
        250_000,
        250_000,
        1_000_000_000,
    ]
    for text in ("2.5", "inf", "nan", "many"):
        with pytest.raises(ValueError):
            integer(text)


def test_field_options_on_a_toy_config():
    @dataclass(frozen=True)
    class Toy:
        paths: tuple[str, ...] = option(help="files")
        share: float = option(0.5, "share of 100%, in (0, 1]")
        languages: str | None = option(None, "e.g. ja,th,ar", metavar="CODES")
        cased: bool = option(True, "fold case")
        kind: str = option("a", "a or b", choices=("a", "b"))
        scratch: int = 3  # no help: no option

    parser = argparse.ArgumentParser(prog="toy")
    add_options(parser, Toy, "toy")
    args = parser.parse_args(["--paths", "ja.txt", "th.txt", "--no-cased", "--kind", "b"])
    assert from_args(Toy, args, scratch=4) == Toy(("ja.txt", "th.txt"), 0.5, None, False, "b", 4)
    shown = parser.format_help()
    assert "share of 100%, in (0, 1] (default: 0.5)" in shown  # % reaches the user unharmed
    assert "--languages CODES" in shown and "--scratch" not in shown
    with pytest.raises(SystemExit):
        parser.parse_args([])  # --paths is required: no default
    with pytest.raises(TypeError, match="help"):
        option(1)
