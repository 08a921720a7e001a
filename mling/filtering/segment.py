"""Unigrams the same way for every language: Unicode word segmentation (ICU's word break rules).

A unigram is a segment that ICU's word break iterator tags as a word (a number, letters, kana
or ideographs); spaces, punctuation and emoji are not unigrams. ICU finds words in Thai, Lao,
Khmer, Myanmar, Chinese and Japanese with dictionaries, where splitting on spaces finds one
"word" per phrase.

The dictionary path costs a Python loop over boundaries, so only captions that contain a
character of a script written without spaces take it. Captions of plain words separated by
single spaces (most of them, in any alphabet) are split on the space, once a regular expression
has checked that they are; every other caption goes through one compiled regular expression that encodes the same rules (UAX #29 as ICU tailors it: letters
joined by `'`, `.`, `:` and `·` between letters, numbers by `.` and `,` between digits,
`_` joining both, combining marks attached). Its character classes are built from ICU's own
property sets, so both paths agree on every Unicode version ICU ships; `test_filter_segment`
checks that they give identical unigrams on UDHR text in hundreds of languages.
"""

from __future__ import annotations

import re
from functools import lru_cache

import icu

# Word break statuses (ICU's UBRK_WORD_*): below 100 is "none" (spaces, punctuation, emoji).
_WORD_STATUS_MIN = 100


def _char_class(pattern: str, escape: str) -> str:
    """An ICU UnicodeSet pattern -> the body of a regex character class, every code point
    escaped (`escape` formats one), so the class reads the same in RE2, Java and Python."""
    parts = []
    for start, end in icu.UnicodeSet(pattern).ranges():
        low, high = escape.format(ord(start)), escape.format(ord(end))
        parts.append(low if start == end else f"{low}-{high}")
    return "".join(parts)


# Characters ICU hands to a dictionary break engine (its word.txt `$dictionary`: scripts written
# without spaces), other ideographs,
# and the zero-width joiner (emoji sequences, Sinhala and Malayalam conjuncts). Captions with
# one of these, with `_`-like joiners (WB13, whose status quirks the expression leaves out) or
# with a Hebrew letter before a quote (WB7a-c) take the ICU path.
_DICTIONARY = (
    r"[[:LineBreak=Complex_Context:][:Han:][:Hiragana:][:WB=Katakana:][:Ideographic:]"
    r"[:WB=ZWJ:]]"
)
_HANGUL = r"[\uac00-\ud7a3]"
_LETTER = rf"[[[:WB=ALetter:][:WB=Hebrew_Letter:]]-{_DICTIONARY}-{_HANGUL}]"


_BMP = r"[\u0000-\uFFFF]"
# Word-relevant classes (WB4 Extend and Format, letters, numbers, `_`, middle characters).
_EXTEND = "[[:WB=Extend:][:WB=Format:]]"
_NUMBER = "[:WB=Numeric:]"
_JOINER = "[:WB=ExtendNumLet:]"
_MID_LETTER = "[[:WB=MidLetter:][:WB=MidNumLet:][:WB=Single_Quote:]]"
_MID_NUMBER = "[[:WB=MidNum:][:WB=MidNumLet:][:WB=Single_Quote:]]"
_WORD_CHARS = f"[{_EXTEND}{_LETTER}{_NUMBER}{_JOINER}{_MID_LETTER}{_MID_NUMBER}]"


def _patterns(escape: str, end: str) -> tuple[str, str, str]:
    """(word, needs_dictionary, spaced) regular expressions with code points written by `escape`
    and `end` anchoring the end of the text.

    The word expression covers the Basic Multilingual Plane only: RE2 runs classes with
    4-byte UTF-8 sequences 30x slower, and a caption with a word character beyond it (rare:
    historic scripts, math letters, an emoji skin tone after a letter) goes to ICU instead.
    """

    def chars(pattern: str) -> str:
        return f"[{_char_class(f'[{pattern}&{_BMP}]', escape)}]"

    ex = f"{chars(_EXTEND)}*"  # WB4: marks and format characters attach to what precedes
    letter, number = f"{chars(_LETTER)}{ex}", f"{chars(_NUMBER)}{ex}"
    mid_letter, mid_number = f"{chars(_MID_LETTER)}{ex}", f"{chars(_MID_NUMBER)}{ex}"
    # Letters joined by a middle character only between letters (WB6/7), numbers likewise
    # (WB11/12), and letter and number runs join each other (WB9/10). Each class appears
    # twice: RE2 slows down sharply as the compiled expression grows.
    letters = f"(?:{letter})+(?:{mid_letter}(?:{letter})+)*"
    numbers = f"(?:{number})+(?:{mid_number}(?:{number})+)*"
    # Hangul syllables chain only with each other in ICU's rules (no dictionary ships for
    # them), and a mark after one ends the word with status none: such captions go to ICU.
    hangul = f"[{_char_class(_HANGUL, escape)}]+"
    word = f"(?:{letters}|{numbers})+|{hangul}"
    hebrew = _char_class("[:WB=Hebrew_Letter:]", escape)
    quotes = _char_class("[[:WB=Single_Quote:][:WB=Double_Quote:]]", escape)
    beyond_bmp = _char_class(f"[{_WORD_CHARS}-{_BMP}]", escape)
    routed = _char_class(f"[{_DICTIONARY}{_JOINER}]", escape)
    needs = f"[{routed}{beyond_bmp}]|[{hebrew}]{ex}[{quotes}]|{hangul}{chars(_EXTEND)}"
    # The fast path: words of letters, numbers and marks (no middle characters, `'` or `.`),
    # or of Hangul syllables, each separated by exactly one space. For such a caption the word
    # expression finds exactly the space-separated pieces, so splitting on " " is enough; a
    # search anchored by ^ and \z (not $, which Java lets match before a final newline).
    start = chars(f"[{_LETTER}{_NUMBER}]")
    rest = chars(f"[{_LETTER}{_NUMBER}{_EXTEND}]")
    piece = f"(?:{start}{rest}*|{hangul})"
    spaced = f"^{piece}(?: {piece})*{end}"
    return word, needs, spaced


# RE2 (DuckDB) and Java (Spark) both read `\x{HHHH}` and `\z`; Python reads `\UHHHHHHHH`, `\Z`.
ENGINE_WORD_PATTERN, ENGINE_NEEDS_DICTIONARY_PATTERN, ENGINE_SPACED_PATTERN = _patterns(
    "\\x{{{:X}}}", "\\z"
)
_PY_WORD, _PY_NEEDS, _PY_SPACED = (re.compile(p) for p in _patterns("\\U{:08X}", "\\Z"))


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@lru_cache(maxsize=1)
def _break_iterator() -> icu.BreakIterator:
    """The root-locale word break iterator; one per process (ICU iterators are not shared)."""
    return icu.BreakIterator.createWordInstance(icu.Locale.getRoot())


def icu_unigrams(text: str) -> list[str]:
    """Unigrams by ICU's word break iterator (dictionaries for Thai, Chinese, Japanese, ...)."""
    iterator = _break_iterator()
    iterator.setText(text)
    # ICU offsets count UTF-16 code units; they equal Python indices only without astral chars.
    astral = not text.isascii() and _ASTRAL.search(text) is not None
    units = text.encode("utf-16-le") if astral else b""
    words = []
    start = iterator.first()
    for end in iterator:
        if iterator.getRuleStatus() >= _WORD_STATUS_MIN:
            piece = units[2 * start : 2 * end].decode("utf-16-le") if astral else text[start:end]
            words.append(piece)
        start = end
    return words


def regex_unigrams(text: str) -> list[str]:
    """Unigrams by the engines' regular expression, run by Python's `re` (for tests: slower
    than ICU here). Equal to `icu_unigrams` on text where `needs_dictionary` is False."""
    return _PY_WORD.findall(text)


def spaced_unigrams(text: str) -> list[str] | None:
    """The engines' fast path: `text.split(" ")` when every piece between single spaces is a
    plain word (letters, numbers and marks, or Hangul), else None. Equal to `regex_unigrams`
    (and so to `icu_unigrams`) wherever it is not None."""
    return text.split(" ") if _PY_SPACED.search(text) else None


def needs_dictionary(text: str) -> bool:
    """True when `text` has a character that only ICU's iterator segments right."""
    return _PY_NEEDS.search(text) is not None


def unigrams(text: str) -> list[str]:
    """The caption's unigrams in order, the same way for every language (ICU's word breaks).

    >>> unigrams("A dog's toy, 3.5 cm.")
    ["A", "dog's", "toy", "3.5", "cm"]
    >>> unigrams("茶色の犬")
    ["茶色", "の", "犬"]
    """
    return icu_unigrams(text)


def space_unigrams(text: str) -> list[str]:
    """The naive count the issue warns about: split on whitespace. Used only for comparison."""
    return text.split()
