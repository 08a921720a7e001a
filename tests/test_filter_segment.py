"""Unigrams the same way for every language: ICU word breaks, and the engines' regex path.

The regular expression the engines run must give exactly ICU's unigrams on every caption it
is allowed to see (`needs_dictionary` False); the rest go to ICU itself.
"""

from __future__ import annotations

import pytest

from mling.filtering.filter_sql import _literal
from mling.filtering.segment import (
    ENGINE_NEEDS_DICTIONARY_PATTERN,
    ENGINE_SPACED_PATTERN,
    ENGINE_WORD_PATTERN,
    icu_unigrams,
    needs_dictionary,
    regex_unigrams,
    space_unigrams,
    spaced_unigrams,
    unigrams,
)

# (language, caption, unigrams): counted by hand, punctuation is never a unigram.
CASES = [
    ("en", "A brown dog runs across the green grass.", 8),
    ("de", "Ein brauner Hund läuft über das grüne Gras.", 8),
    ("fr", "Un chien brun court sur l'herbe verte.", 7),  # l'herbe is one word (WB6/7)
    ("cs", "Hnědý pes běží po zelené trávě.", 6),
    ("ru", "Коричневая собака бежит по зелёной траве.", 6),
    ("el", "Ένας καφέ σκύλος τρέχει στο πράσινο γρασίδι.", 7),
    ("ar", "كلب بني يركض على العشب الأخضر.", 6),
    ("he", "כלב חום רץ על הדשא הירוק.", 6),
    ("hi", "एक भूरा कुत्ता हरी घास पर दौड़ रहा है।", 9),  # combining vowel signs stay inside
    ("th", "สุนัขสีน้ำตาลวิ่งบนหญ้าสีเขียว", 8),  # no spaces: dictionary
    ("ja", "茶色の犬が緑の芝生の上を走っている。", 13),
    ("zh", "一只棕色的狗在绿色的草地上奔跑。", 10),
    ("ko", "갈색 개가 푸른 잔디 위를 달린다.", 6),
    ("am", "ቡናማ ውሻ በአረንጓዴ ሣር ላይ ይሮጣል።", 6),
    ("vi", "Một con chó nâu chạy trên bãi cỏ xanh.", 9),
    ("tr", "Kahverengi bir köpek yeşil çimenlerde koşuyor.", 6),
]

# Word-break corner cases, with ICU's answer written out.
CORNERS = [
    ("3.14 and 1,000 cats", ["3.14", "and", "1,000", "cats"]),  # WB11/12
    ("U.S.A. don't e-mail", ["U.S.A", "don't", "e", "mail"]),  # WB6/7; hyphen splits
    ("a1.2 1.a", ["a1.2", "1", "a"]),  # WB9/10 join letters and numbers
    ("😀 ok!", ["ok"]),  # emoji are not words
    ("", []),
]


@pytest.mark.parametrize(("language", "caption", "expected"), CASES, ids=[c[0] for c in CASES])
def test_unigram_counts_in_sixteen_languages(language, caption, expected):
    assert len(unigrams(caption)) == expected


def test_scripts_without_spaces_are_one_word_to_a_space_splitter():
    assert len(space_unigrams("茶色の犬が緑の芝生の上を走っている。")) == 1
    assert len(space_unigrams("สุนัขสีน้ำตาลวิ่งบนหญ้าสีเขียว")) == 1
    assert unigrams("茶色の犬")[:2] == ["茶色", "の"]


@pytest.mark.parametrize(("text", "expected"), CORNERS)
def test_corner_cases_match_icu_and_regex(text, expected):
    assert icu_unigrams(text) == expected
    assert not needs_dictionary(text)
    assert regex_unigrams(text) == expected


@pytest.mark.parametrize(
    ("text", "routed"),
    [
        ("plain Latin text", False),
        ("Ελληνικά και русский", False),
        ("한국어 문장", False),  # Hangul syllables: the regex chains them like ICU's rules
        ("東京タワー", True),  # Han and Katakana: dictionary
        ("ภาษาไทย", True),  # Thai: dictionary
        ("IMG_1234.jpg", True),  # `_` joins words with status quirks: ICU decides
        ('צה"ל', True),  # Hebrew letter before a quote (WB7b/c)
        ("𝐀𝐁𝐂 bold math", True),  # word characters beyond the BMP
        ("👍🏽 ok", True),  # a skin tone is a combining mark beyond the BMP
    ],
)
def test_which_captions_take_the_icu_path(text, routed):
    assert needs_dictionary(text) is routed


def _udhr_lines() -> list[str]:
    gflanguages = pytest.importorskip("gflanguages")
    lines = []
    for language in gflanguages.LoadLanguages().values():
        if language.HasField("sample_text"):
            sample = language.sample_text
            for text in (sample.specimen_16, sample.specimen_21, sample.tester):
                lines.extend(line for line in text.split("\n") if line)
    return lines


def test_regex_equals_icu_on_udhr_text_in_hundreds_of_languages():
    lines = _udhr_lines()
    checked = [line for line in lines if not needs_dictionary(line)]
    assert len(checked) > 4000  # the regex path really covers most of the world's scripts
    mismatches = [line for line in checked if regex_unigrams(line) != icu_unigrams(line)]
    assert mismatches == []


# Captions the fast path splits on spaces, one per script (12), and ones it must leave alone.
SPACED = {
    "Latin": "Ein brauner Hund läuft über das grüne Gras",
    "Vietnamese": "Một con chó nâu chạy trên bãi cỏ xanh",  # combining marks in NFD too
    "Cyrillic": "Коричневая собака бежит по зелёной траве",
    "Greek": "Ένας καφέ σκύλος τρέχει στο πράσινο γρασίδι",
    "Arabic": "كلب بني يركض على العشب الأخضر",
    "Hebrew": "כלב חום רץ על הדשא הירוק",
    "Devanagari": "एक भूरा कुत्ता हरी घास पर दौड़ रहा है",
    "Bengali": "একটি বাদামী কুকুর সবুজ ঘাসে দৌড়াচ্ছে",
    "Tamil": "ஒரு பழுப்பு நாய் பச்சை புல்லில் ஓடுகிறது",
    "Hangul": "갈색 개가 푸른 잔디 위를 달린다",
    "Ethiopic": "ቡናማ ውሻ በአረንጓዴ ሣር ላይ ይሮጣል",
    "Armenian": "Շագանակագույն շունը վազում է կանաչ խոտի վրա",
    "Georgian": "ყავისფერი ძაღლი მწვანე ბალახზე დარბის",
    "digits": "3 dogs on 2 lawns in 2024",
}
NOT_SPACED = [
    "A brown dog runs.",  # punctuation
    "two  spaces",
    " leading",
    "trailing ",
    "l'herbe verte",  # a middle character
    "3.5 cm",
    "tab\there",
    "line\n",
    "",
]


@pytest.mark.parametrize("script", list(SPACED))
def test_fast_path_splits_plain_captions_exactly_like_icu(script):
    import unicodedata

    for text in (SPACED[script], unicodedata.normalize("NFD", SPACED[script])):
        assert not needs_dictionary(text)
        assert spaced_unigrams(text) == icu_unigrams(text) == text.split(" ")


@pytest.mark.parametrize("text", NOT_SPACED)
def test_fast_path_leaves_other_captions_to_the_expression(text):
    assert spaced_unigrams(text) is None


def test_fast_path_equals_icu_on_udhr_and_random_text():
    import random

    rng = random.Random(0)
    alphabet = "aé1٣ж" + "\u0301\u093f\u00ad" + "가각" + "'.:,_-" + "  \t"
    randoms = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(20000)
    ]
    lines = _udhr_lines() + [text for _, text, _ in CASES] + randoms
    taken = 0
    for line in lines:
        if needs_dictionary(line):
            continue
        fast = spaced_unigrams(line)
        if fast is not None:
            taken += 1
            assert fast == icu_unigrams(line), line
    assert taken > 1000  # the fast path is really taken, on real text and random text alike


def test_duckdb_runs_the_same_regex_and_routing_as_python():
    import duckdb
    import pyarrow as pa

    lines = _udhr_lines()[:1500] + [text for _, text, _ in CASES] + [text for text, _ in CORNERS]
    lines += [*SPACED.values(), *NOT_SPACED]
    texts = pa.table({"i": list(range(len(lines))), "t": lines})  # noqa: F841 (read by DuckDB)
    rows = duckdb.sql(
        f"SELECT i, regexp_extract_all(t, {_literal(ENGINE_WORD_PATTERN)}) AS words, "
        f"regexp_matches(t, {_literal(ENGINE_NEEDS_DICTIONARY_PATTERN)}) AS routed, "
        f"regexp_matches(t, {_literal(ENGINE_SPACED_PATTERN)}) AS spaced, "
        "string_split(t, ' ') AS pieces FROM texts ORDER BY i"
    ).fetchall()
    for i, words, routed, spaced, pieces in rows:
        assert routed == needs_dictionary(lines[i]), lines[i]
        assert spaced == (spaced_unigrams(lines[i]) is not None), lines[i]
        if not routed:
            assert words == icu_unigrams(lines[i]), lines[i]
            if spaced:
                assert pieces == words, lines[i]
