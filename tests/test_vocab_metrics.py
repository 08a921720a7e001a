"""Per-language metrics on a hand-made vocabulary whose every count can be checked by hand."""

from __future__ import annotations

import pytest

from mling.vocab.metrics import count_words, measure, script_shares, spread, token_script
from mling.vocab.normalization import SPECIAL_TOKENS, NormalizationConfig
from mling.vocab.tokenizer_dir import bert_tokenizer

TOKENS = [*SPECIAL_TOKENS, "a", "##b", "dog", ".", "ก", "##ข", "##ค", "狗", "x"]


@pytest.fixture(scope="module")
def tokenizer():
    return bert_tokenizer(TOKENS, NormalizationConfig())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("A brown dog runs, across 12 fields.", 7),  # punctuation is not a word, 12 is
        ("สุนัขวิ่งบนหญ้า", 4),  # Thai: no spaces, ICU's dictionary finds 4 words
        ("一只狗在草地上跑", 6),  # Chinese: 一只 狗 在 草地 上 跑
        ("ውሻ፡በሣር፡ላይ", 3),  # Ethiopic wordspace separates words
        ("한국어 문장입니다.", 2),
    ],
)
def test_words_are_icu_words_in_every_script(text, words):
    assert count_words(text) == words


def test_measure_counts_tokens_unk_and_words_by_hand(tokenizer):
    # "dog ab." -> dog a ##b .   "xyz" -> [UNK] (z is not in the vocabulary)
    metrics = measure(tokenizer, ["dog ab.", "xyz"], ["dog", None])
    assert metrics.tokens == 5
    assert metrics.punctuation_tokens == 1
    assert metrics.unk_tokens == 1 and metrics.unk_chars == 3
    assert metrics.chars == 9 and metrics.words == 3
    assert metrics.unk_rate == pytest.approx(1 / 5)
    assert metrics.unk_char_rate == pytest.approx(3 / 9)
    assert metrics.fertility == pytest.approx(4 / 3)
    # Only the first line has an English version: 4 tokens against "dog", 1 token.
    assert metrics.parallel_lines == 1 and metrics.parity == pytest.approx(4.0)
    assert metrics.parity_unk_as_chars == pytest.approx(4.0)  # no [UNK] in that line
    assert metrics.script == "Latin"


def test_a_phrase_without_spaces_is_cut_into_pieces_not_unk(tokenizer):
    metrics = measure(tokenizer, ["กขค"])
    assert (metrics.tokens, metrics.unk_tokens, metrics.script) == (3, 0, "Thai")


def test_words_over_the_bert_limit_are_counted_as_long_word_unks(tokenizer):
    metrics = measure(tokenizer, ["a" + "ข" * 100, "กข"])
    assert metrics.unk_tokens == 1 and metrics.long_word_unks == 1
    assert metrics.unk_chars == 101


def test_parity_counts_an_unk_as_the_characters_it_hides(tokenizer):
    # "xyz ab" -> [UNK] a ##b: 3 tokens, or 5 when [UNK] costs its 3 characters; "dog" is 1.
    metrics = measure(tokenizer, ["xyz ab"], ["dog"])
    assert metrics.parity == pytest.approx(3.0)
    assert metrics.parity_unk_as_chars == pytest.approx(5.0)


def test_no_parity_without_english(tokenizer):
    assert measure(tokenizer, ["dog"]).parity is None


@pytest.mark.parametrize(
    ("token", "script"),
    [("##ก", "Thai"), ("狗", "Han"), ("a1", "Latin"), ("12", "Common"), ("aб", "Mixed")],
)
def test_token_script(token, script):
    assert token_script(token) == script


def test_script_shares_leave_special_tokens_out():
    assert script_shares(TOKENS) == {"Latin": 4, "Thai": 3, "Common": 1, "Han": 1}


def test_spread_names_the_worst_language():
    summary = spread({"en": 1.0, "th": 3.0, "de": 2.0, "xx": None})
    assert summary["median"] == 2.0 and summary["mean"] == 2.0
    assert (summary["worst"], summary["worst_language"]) == (3.0, "th")
    assert (summary["best"], summary["best_language"]) == (1.0, "en")
    assert summary["languages"] == 3
    assert spread({}) == {"languages": 0}
