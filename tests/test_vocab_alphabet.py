"""The alphabet rules: per-language coverage, CLDR exemplars, budgets, `##` forms."""

from __future__ import annotations

from collections import Counter

import pytest

from mling.vocab.alphabet import AlphabetConfig, coverage_set
from mling.vocab.alphabet import select_alphabet as select
from mling.vocab.exemplars import fitting_exemplars, gflanguages_exemplars, icu_exemplars
from mling.vocab.normalization import NormalizationConfig, Pipeline

PIPELINE = Pipeline(NormalizationConfig())


@pytest.mark.parametrize(
    ("coverage", "expected"),
    [(0.8, ["a", "b"]), (0.81, ["a", "b", "c"]), (1.0, ["a", "b", "c", "d"])],
)
def test_coverage_set_by_hand(coverage, expected):
    # a+b = 80 of 100 occurrences; c brings 95; d the last 5.
    assert coverage_set({"d": 5, "c": 15, "b": 30, "a": 50}, coverage) == expected


def test_coverage_ties_break_by_code_point():
    assert coverage_set({"y": 1, "x": 1, "z": 1}, 0.5) == ["x", "y"]


def test_exemplars_cover_whole_scripts_in_both_cases():
    assert {"ሀ", "ፐ", "።"} <= icu_exemplars("am")  # Ethiopic syllables and full stop
    assert {"a", "A", "z", "Z"} <= icu_exemplars("en_Latn")
    assert {"的", "权"} <= icu_exemplars("zh")
    assert {"՝", "Ա", "ա"} <= icu_exemplars("hy")  # Armenian comma: a punctuation exemplar
    assert icu_exemplars("xx") == frozenset()  # ICU does not know it: nothing, not English
    assert {"ƭ", "Ƭ", "ɓ"} <= gflanguages_exemplars("srr_Latn")  # Serer: not in CLDR


@pytest.mark.parametrize("exemplars", [icu_exemplars, gflanguages_exemplars])
def test_korean_exemplars_are_ks_x_1001_not_all_11172_syllables(exemplars):
    hangul = {c for c in exemplars("ko" if exemplars is icu_exemplars else "ko_Kore")}
    hangul = {c for c in hangul if "\uac00" <= c <= "\ud7a3"}
    assert len(hangul) == 2350
    assert "인" in hangul and "똠" not in hangul  # 똠 is a famous KS X 1001 omission


def test_only_exemplar_sets_that_fit_the_sampled_text_are_used():
    def same(text: str) -> str:
        return text

    # Kazakh written in Arabic script: CLDR's kk is Cyrillic, gflanguages has kk_Arab.
    arabic = Counter({"ق": 5, "ا": 9, "ز": 3, "ٴ": 1})
    chars, source = fitting_exemplars("kk", arabic, same)
    assert source == "gflanguages:kk_Arab" and "ٴ" in chars and "қ" not in chars
    assert fitting_exemplars("kk", Counter({"қ": 2, "а": 5}), same)[1] == "cldr:kk"
    # A language-ID label on a stray Latin line brings in no Japanese.
    assert fitting_exemplars("ja", Counter({"e": 5, "t": 3}), same) == (set(), None)


def test_pipeline_isolates_cjk_and_punctuation_only():
    chars = ["狗", ".", "。", "、", "「", "a", "ก", "ー", "é", "9", "€"]
    assert PIPELINE.isolated(chars) == {"狗", ".", "。", "、", "「"}


def test_letters_get_a_continuation_form_isolated_characters_do_not():
    counts = {"xx": Counter({"a": 5, "b": 3, "狗": 2, ".": 1})}
    alphabet = select(counts, {"xx": 10}, AlphabetConfig(exemplars=False), PIPELINE, 1000)
    assert alphabet.chars == [".", "a", "b", "狗"]
    assert alphabet.continuation == ["a", "b"]
    assert alphabet.slots == 6


def test_coverage_is_per_language_so_small_languages_keep_their_letters():
    # Pooled, Thai's two letters would be 2 of 10,002 occurrences and cut at 99.95%.
    counts = {"en": Counter({"e": 6000, "t": 4000}), "th": Counter({"ก": 1, "ข": 1})}
    config = AlphabetConfig(character_coverage=0.9995, exemplars=False)
    assert select(counts, {"en": 100, "th": 1}, config, PIPELINE, 1000).chars == [
        "e", "t", "ก", "ข"
    ]  # fmt: skip


def test_coverage_budget_drops_the_least_frequent_characters():
    counts = {"en": Counter({"e": 50, "t": 30, "a": 20})}
    config = AlphabetConfig(exemplars=False, max_share=0.5)
    alphabet = select(counts, {"en": 10}, config, PIPELINE, vocab_size=8)  # 4 slots: 2 letters
    assert alphabet.chars == ["e", "t"] and alphabet.dropped == {"coverage": 1}


def test_exemplar_sets_are_added_whole_or_not_at_all():
    counts = {"am": Counter({"ሰ": 3}), "en": Counter({"a": 3})}
    lines = {"am": 500, "en": 400}
    roomy = select(counts, lines, AlphabetConfig(exemplar_share=0.5), PIPELINE, 4000)
    assert {"ሀ", "ፐ"} <= set(roomy.chars) and roomy.by_rule["exemplar"] > 300
    # Too small for the Ethiopic syllabary (~560 slots), big enough for English's letters.
    tight = select(counts, lines, AlphabetConfig(exemplar_share=0.1), PIPELINE, 4000)
    assert "ሀ" not in tight.chars and "Z" in tight.chars and tight.dropped["exemplar"] > 250


def test_exemplars_need_enough_lines():
    counts = {"am": Counter({"ሰ": 3})}
    config = AlphabetConfig(exemplar_min_lines=100, exemplar_share=0.5)
    assert select(counts, {"am": 99}, config, PIPELINE, 4000).chars == ["ሰ"]


def test_exemplars_follow_the_normalizer():
    lower = Pipeline(NormalizationConfig(lowercase=True))
    counts = {"en": Counter({"a": 3})}
    alphabet = select(counts, {"en": 500}, AlphabetConfig(exemplar_share=0.5), lower, 4000)
    assert "a" in alphabet.chars and "A" not in alphabet.chars


def test_uncovered_share_is_reported_per_language():
    counts = {"en": Counter({"e": 99, "q": 1})}
    config = AlphabetConfig(character_coverage=0.99, exemplars=False)
    alphabet = select(counts, {"en": 10}, config, PIPELINE, 1000)
    assert alphabet.uncovered == {"en": pytest.approx(0.01)}
