"""Writing systems of text, from its characters (ICU's Unicode script property): the script a
vocabulary token or a language's captions are written in, for grouping reports by script."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable

UNSCRIPTED = ("Common", "Inherited", "Unknown")  # digits, punctuation, combining marks, ...
KANA = ("Hiragana", "Katakana")
KANA_SHARE = 0.05  # this share of kana among a text's letters makes Han + kana Japanese (Jpan)
COMPOUND_NAMES = {"Jpan": "Japanese", "Zyyy": "Common"}  # codes ICU has no long name for


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
