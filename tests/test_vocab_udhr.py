"""The 100+-language fixture: UDHR samples of 755 languages in 157 scripts (gflanguages).

A vocabulary built on them must cut every language's text into known pieces (an [UNK] only
for a word over BERT's 100-character limit), where plain `BertWordPieceTokenizer` training on
the same sample loses whole scripts; and the slow tokenizer must agree with the fast one.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from mling.vocab.build_vocab import main
from mling.vocab.normalization import (
    MAX_WORD_CHARS,
    SLOW_FAST_EXCEPTIONS,
    NormalizationConfig,
    Pipeline,
    is_ordinary,
)

pytest.importorskip("gflanguages")


@pytest.fixture(scope="module")
def udhr(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    from tests.helpers.udhr_corpus import udhr_lines

    root = tmp_path_factory.mktemp("udhr")
    lines = udhr_lines()
    for language, texts in lines.items():
        (root / "corpus").mkdir(exist_ok=True)
        (root / "corpus" / f"{language}.txt").write_text("\n".join(texts), encoding="utf-8")
    args = ["--input", str(root / "corpus"), "--output", str(root / "vocab")]
    args += ["--lang-from-filename", "{lang}.txt", "--english", "en_Latn"]
    args += ["--vocab-size", "40000", "--holdout", "0", "--sample-out", str(root / "sample.txt")]
    # Coverage 1: every character seen enters the alphabet (0.9995 would drop the rarest
    # letter of a 2,000+ character text), so any [UNK] left would be a pipeline gap.
    args += ["--character-coverage", "1"]
    assert main(args) == 0
    # Balancing subsamples some lines away; the claims below are about the lines trained on.
    sampled = set((root / "sample.txt").read_text(encoding="utf-8").splitlines())
    kept = {lang: [t for t in texts if t in sampled] for lang, texts in lines.items()}
    return root, {lang: texts for lang, texts in kept.items() if texts}


def unk_words(tokenizer, texts: list[str]) -> list[str]:
    """The words that became [UNK], as written in the text."""
    found = []
    for text, encoding in zip(texts, tokenizer.encode_batch(texts), strict=True):
        for token, (start, end) in zip(encoding.tokens, encoding.offsets, strict=True):
            if token == "[UNK]":
                found.append(text[start:end])
    return found


def test_the_fixture_has_over_a_hundred_languages_and_scripts(udhr):
    root, lines = udhr
    report = json.loads((root / "vocab" / "report.json").read_text(encoding="utf-8"))
    assert len(lines) > 700 and len(report["sample"]["languages"]) >= len(lines)
    assert len(report["scripts"]) > 100
    assert report["alphabet"]["dropped"] == {}


def test_every_language_tokenizes_without_unk_but_for_over_long_words(udhr):
    from tokenizers import Tokenizer

    root, lines = udhr
    ours = Tokenizer.from_file(str(root / "vocab" / "tokenizer.json"))
    bad = {
        language: words
        for language, texts in lines.items()
        if (words := [w for w in unk_words(ours, texts) if len(w) <= MAX_WORD_CHARS])
    }
    assert bad == {}
    # The documented exception exists in this data: Lao writes 100+ character runs.
    assert any(len(w) > MAX_WORD_CHARS for w in unk_words(ours, lines["lo_Laoo"]))


def test_plain_training_on_the_same_sample_loses_whole_scripts(udhr):
    from tokenizers import BertWordPieceTokenizer

    root, lines = udhr
    plain = BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    plain.train([str(root / "sample.txt")], vocab_size=40000, show_progress=False)
    losing = [language for language, texts in lines.items() if unk_words(plain, texts)]
    assert len(losing) > 100  # its 1000-character alphabet cannot hold 157 scripts


def test_fast_and_slow_tokenizers_agree_on_ordinary_text_in_every_language(udhr):
    from transformers import AutoTokenizer
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    root, lines = udhr
    fast = AutoTokenizer.from_pretrained(root / "vocab")
    slow = BertTokenizerLegacy.from_pretrained(root / "vocab")
    ordinary = {lang: [t for t in texts if is_ordinary(t)] for lang, texts in lines.items()}
    assert sum(1 for texts in ordinary.values() if texts) > 700
    texts = [text for language in sorted(ordinary) for text in ordinary[language][:2]]
    assert fast(texts)["input_ids"] == [slow(text)["input_ids"] for text in texts]
    # Outside ordinary text they may differ: decomposed (NFD) input is one documented case.
    nfd = unicodedata.normalize("NFD", "Tiếng Việt có dấu")
    assert fast(nfd)["input_ids"] != slow(nfd)["input_ids"]


@pytest.mark.slow
def test_the_documented_exceptions_are_exactly_where_the_two_pipelines_differ():
    """Every assigned code point c, in "a{c}b", splits alike in Rust and in Python unless it
    is in SLOW_FAST_EXCEPTIONS. Fails when a tokenizers or Python upgrade moves the border."""
    from transformers.models.bert.tokenization_bert_legacy import BasicTokenizer

    pipeline = Pipeline(NormalizationConfig())
    basic = BasicTokenizer(do_lower_case=False, strip_accents=False)
    differing = set()
    for point in range(0x110000):
        char = chr(point)
        if 0xD800 <= point <= 0xDFFF or unicodedata.category(char) == "Cn":
            continue
        text = f"a{char}b"
        if unicodedata.is_normalized("NFC", text) and pipeline.words(text) != basic.tokenize(text):
            differing.add(point)
    documented = {p for first, last in SLOW_FAST_EXCEPTIONS for p in range(first, last + 1)}
    assert differing == documented
