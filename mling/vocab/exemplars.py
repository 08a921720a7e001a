"""Exemplar characters: the letters, marks and punctuation a language is written with.

Two sources. CLDR through ICU (standard, auxiliary and punctuation sets) knows ~240 languages
well: 3,675 everyday hanzi for `zh`, 2,386 characters for `ja`. Google Fonts' language data
(gflanguages, largely from Hyperglot) knows ~1,000 language-script pairs more: Kazakh in
Arabic script, Serer, Sorani. The first set that fits the text actually sampled for the label
(it holds at least half of the letters seen) is used, which skips a wrong default script
(`kk` is Cyrillic in CLDR) and a language-ID label on a few stray lines.

CLDR lists all 11,172 Hangul syllables for Korean; we keep the 2,350 of KS X 1001 (two bytes
in Python's `euc_kr`, which spells the others as 8-byte jamo sequences), which cover 99.9% of
modern text.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping

_REPERTOIRE = {"ko": "euc_kr"}  # language -> codec whose double-byte table narrows the set
MAX_SET = 8000  # characters; a larger set (without a repertoire) is not used
MIN_FIT = 0.5  # share of the sampled letters a set must hold to be used
_RANGE = re.compile(r"^(.)-(.)$")
_EXEMPLAR_BLOCK = re.compile(r"^exemplar_chars \{.*?^\}", re.MULTILINE | re.DOTALL)
_ES_PUNCTUATION = 3  # ICU's ULOCDATA_ES_PUNCTUATION, which PyICU's enum does not name


def _base(language: str) -> str:
    return language.replace("-", "_").split("_")[0].lower()


def _finish(language: str, chars: set[str]) -> frozenset[str]:
    """Both cases, single characters only, narrowed to the repertoire, empty when too big."""
    out = set()
    for char in chars:
        out.update({char, char.upper(), char.lower()})
    out = {char for char in out if len(char) == 1 and not char.isspace()}
    codec = _REPERTOIRE.get(_base(language))
    if codec:
        out = {char for char in out if _double_byte(char, codec)}
    return frozenset(out) if len(out) <= MAX_SET else frozenset()


def _double_byte(char: str, codec: str) -> bool:
    try:
        return len(char.encode(codec)) <= 2
    except UnicodeEncodeError:
        return False


@functools.cache
def _icu_languages() -> frozenset[str]:
    import icu

    return frozenset(name.split("_")[0] for name in icu.Locale.getAvailableLocales())


@functools.cache
def icu_exemplars(language: str) -> frozenset[str]:
    """CLDR standard + auxiliary + punctuation exemplars; empty when ICU lacks the language
    (ICU would otherwise fall back to the root locale's Latin letters)."""
    import icu

    if _base(language) not in _icu_languages():
        return frozenset()
    data = icu.LocaleData(language.replace("-", "_"))
    kinds = icu.ULocaleDataExemplarSetType
    chars = {
        char
        for kind in (kinds.ES_STANDARD, kinds.ES_AUXILIARY, _ES_PUNCTUATION)
        for item in data.getExemplarSet(0, kind)
        for char in item
    }
    return _finish(language, chars)


@functools.cache
def _gflanguages() -> dict[str, object]:
    """gflanguages id -> its textproto file, parsed only when asked for (parsing all 1,693
    with the pure-Python protobuf parser takes over a second)."""
    try:
        from importlib.resources import files

        folder = files("gflanguages.data").joinpath("languages")
    except ModuleNotFoundError:  # pragma: no cover - a dependency of the project
        return {}
    return {
        entry.name.removesuffix(".textproto"): entry
        for entry in folder.iterdir()
        if entry.name.endswith(".textproto")
    }


def _parse_gf(text: str) -> set[str]:
    """gflanguages notation: space-separated items, 'a-z' ranges, '{ch}' clusters, '◌̃' marks."""
    chars = set()
    for item in text.split():
        item = item.strip("{}").replace("\u25cc", "")
        match = _RANGE.match(item)
        if match:
            chars.update(map(chr, range(ord(match[1]), ord(match[2]) + 1)))
        else:
            chars.update(item)
    return chars


@functools.cache
def gflanguages_exemplars(language_id: str) -> frozenset[str]:
    """Base, auxiliary, marks and punctuation exemplars of a gflanguages id ('kk_Arab')."""
    entry = _gflanguages().get(language_id)
    block = _EXEMPLAR_BLOCK.search(entry.read_text(encoding="utf-8")) if entry else None
    if block is None:
        return frozenset()
    from gflanguages import LanguageProto, text_format

    # Only the exemplar block goes through the (pure-Python, slow) protobuf text parser.
    proto = text_format.Parse(block.group(0), LanguageProto())
    sets = proto.exemplar_chars
    fields = (sets.base, sets.auxiliary, sets.marks, sets.punctuation)
    return _finish(language_id, set().union(*map(_parse_gf, fields)))


@functools.cache
def _gflanguages_by_base() -> dict[str, list[str]]:
    by_base: dict[str, list[str]] = {}
    for key in sorted(_gflanguages()):
        by_base.setdefault(_base(key), []).append(key)
    return by_base


def candidates(language: str) -> Iterator[tuple[str, frozenset[str]]]:
    """(source, characters) sets that may describe `language`: CLDR first, then gflanguages'
    id itself ('kk_Arab'), then its other scripts ('kk' -> kk_Arab, kk_Cyrl, kk_Latn)."""
    yield f"cldr:{language}", icu_exemplars(language)
    ids = [language] if language in _gflanguages() else []
    ids += [k for k in _gflanguages_by_base().get(_base(language), []) if k != language]
    for key in ids:
        yield f"gflanguages:{key}", gflanguages_exemplars(key)


def fitting_exemplars(
    language: str, counts: Mapping[str, int], normalize: Callable[[str], str]
) -> tuple[set[str], str | None]:
    """The first candidate set that holds >= MIN_FIT of the sampled letter occurrences.

    counts: normalized character -> occurrences in the language's sample. Exemplars go
    through `normalize` (the vocabulary's case and accent rules). Returns (chars, source), or
    (empty set, None) when no set fits.
    """
    letters = {c: n for c, n in counts.items() if unicodedata.category(c)[0] in "LM"}
    total = sum(letters.values())
    if not total:
        return set(), None
    for source, exemplars in candidates(language):
        normalized = {char for item in exemplars for char in normalize(item) if not char.isspace()}
        if normalized and sum(n for c, n in letters.items() if c in normalized) >= MIN_FIT * total:
            return normalized, source
    return set(), None
