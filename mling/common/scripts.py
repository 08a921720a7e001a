"""Writing systems, for grouping reports by script: of text, from its characters (ICU's Unicode
script property: the script a vocabulary token or a language's captions are written in), and of
a language code, from CLDR's likely subtags (the script a language is usually written in)."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

UNSCRIPTED = ("Common", "Inherited", "Unknown")  # digits, punctuation, combining marks, ...
KANA = ("Hiragana", "Katakana")
KANA_SHARE = 0.05  # this share of kana among a text's letters makes Han + kana Japanese (Jpan)
# codes ICU has no long name for: Japanese and Korean mix scripts, Hans/Hant are Han variants
COMPOUND_NAMES = {
    "Jpan": "Japanese",
    "Kore": "Korean",
    "Hans": "Simplified Han",
    "Hant": "Traditional Han",
    "Zyyy": "Common",
}
UNKNOWN = "Zzzz"  # ISO 15924 "uncoded script": a language code with no known script, or `und`
# lid.176 codes CLDR has no likely subtags for: Emilian-Romagnol, Nahuatl, Serbo-Croatian (the
# Latin spelling is the one on the web lid.176 learned from)
LATIN_WITHOUT_CLDR = ("eml", "nah", "sh")


@functools.cache
def char_script(char: str) -> str:
    """Unicode script name of one character: 'Latin', 'Han', 'Thai', 'Common', ..."""
    import icu

    return icu.Script.getScript(char).getName()


def script_counts(texts: Iterable[str]) -> Counter[str]:
    """Characters per script name in `texts`, Common/Inherited/Unknown left out."""
    counts: Counter[str] = Counter()
    for char, count in Counter("".join(texts)).items():
        counts[char_script(char)] += count
    for name in UNSCRIPTED:
        counts.pop(name, None)
    return counts


def main_script(texts: Iterable[str]) -> str:
    """The most frequent script among the characters of `texts` (Common/Inherited aside)."""
    counts = script_counts(texts)
    return counts.most_common(1)[0][0] if counts else "Common"


def script_code(texts: Iterable[str]) -> str:
    """ISO 15924 code of the script `texts` are mostly written in: 'Latn', 'Arab', 'Deva',
    'Hang'; Japanese (Han with kana) is 'Jpan', text with no letters 'Zyyy'."""
    import icu

    counts = script_counts(texts)
    if not counts:
        return "Zyyy"
    kana = sum(counts[name] for name in KANA)
    if kana and kana >= KANA_SHARE * sum(counts.values()):
        # Japanese mixes Han, hiragana and katakana in every sentence; one group, not three
        return "Jpan"
    name = counts.most_common(1)[0][0]
    return icu.Script(icu.Script.getCode(name)[0]).getShortName()


def script_name(code: str) -> str:
    """'Arab' -> 'Arabic', 'Jpan' -> 'Japanese': the English name of an ISO 15924 code."""
    import icu

    if code in COMPOUND_NAMES:
        return COMPOUND_NAMES[code]
    codes = icu.Script.getCode(code)
    return icu.Script(codes[0]).getName() if codes else code


def language_script(code: str) -> str:
    """ISO 15924 code of the script a language code is usually written in, by CLDR's likely
    subtags: 'ja' -> 'Jpan', 'zh' -> 'Hans', 'sr' -> 'Cyrl', 'sr-Latn' -> 'Latn'; 'und' and
    codes CLDR does not know -> 'Zzzz'."""
    import icu

    if code in LATIN_WITHOUT_CLDR:
        return "Latn"
    if code == "und":
        # CLDR's likely subtags would make "undetermined" English, Latin
        return UNKNOWN
    likely = icu.Locale(code.replace("-", "_"))
    likely.addLikelySubtags()
    return likely.getScript() or UNKNOWN


def group_by_script(
    languages: Sequence[str], scripts: Mapping[str, str]
) -> list[tuple[str, list[str]]]:
    """[(ISO 15924 code, languages)]: the largest group first (ties by code), each group's
    languages in their order in `languages`; a language missing from `scripts` is 'Zzzz'."""
    groups: dict[str, list[str]] = {}
    for language in languages:
        groups.setdefault(scripts.get(language, UNKNOWN), []).append(language)
    return sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
