"""Which characters enter the vocabulary as single-character tokens.

WordPiece turns a whole word into `[UNK]` when one of its characters is missing, and in a
script without spaces a "word" is a phrase, so the alphabet decides most of the [UNK] rate.
Three rules:

1. Coverage, per language (as sentencepiece's `character_coverage`, but per language rather
   than over the pooled corpus, so a small language's letters are not outvoted by English
   noise): the most frequent characters covering `character_coverage` of that language's
   character occurrences in the sample. Ranked by their highest share in any one language.
2. Exemplars: the CLDR exemplar characters (ICU's standard and auxiliary sets, both cases) of
   every language with at least `exemplar_min_lines` sampled lines. They cover the letters a
   small sample has not happened to show yet, e.g. the 3,600 everyday hanzi for `zh`, the
   Ethiopic syllabary for `am`. For Korean, CLDR lists all 11,172 Hangul syllables; we take the
   2,350 of KS X 1001 (via Python's `euc_kr` codec), which cover 99.9% of modern text.
   A language's set is added whole, largest language first, while the characters it adds fit
   in `exemplar_share` of the vocabulary; a set that does not fit is skipped and reported.
3. Budget: a character that can occur inside a word takes two slots (itself and its `##`
   form), one the pipeline always isolates (CJK ideographs, punctuation) takes one. Coverage
   characters may fill `max_share` of the vocabulary, so merges always keep the rest; past
   that, the least frequent are dropped and reported.

Every kept character gets both forms (except isolated ones), so no word made of kept
characters can ever become `[UNK]` (short of BERT's 100-character word limit).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tokenizer_training.normalization import Pipeline

# Exemplar sets CLDR makes larger than everyday use, narrowed to a legacy national standard.
_EXEMPLAR_REPERTOIRE = {"ko": "euc_kr"}
_MAX_EXEMPLARS = 8000  # a set larger than this (and without a repertoire) is not used


@dataclass(frozen=True)
class AlphabetConfig:
    character_coverage: float = 0.9995  # per language, share of character occurrences covered
    exemplars: bool = True  # add CLDR exemplar characters for well-represented languages
    exemplar_min_lines: int = 100  # sampled lines a language needs before its exemplars count
    exemplar_share: float = 0.1  # most of the vocabulary exemplar characters may add (slots)
    max_share: float = 0.5  # most of the vocabulary coverage characters may take (slots)


@dataclass
class Alphabet:
    chars: list[str]  # single characters, sorted by code point
    continuation: list[str]  # those that also get a `##` form, sorted
    by_rule: dict[str, int] = field(default_factory=dict)  # "coverage"/"exemplar" -> chars
    dropped: dict[str, int] = field(default_factory=dict)  # rule -> chars over the budget
    uncovered: dict[str, float] = field(default_factory=dict)  # language -> share of its
    # character occurrences left outside the alphabet (in the sample)

    @property
    def slots(self) -> int:
        return len(self.chars) + len(self.continuation)


def coverage_set(counts: Mapping[str, int], coverage: float) -> list[str]:
    """Most frequent characters whose occurrences reach `coverage` of the total.

    Ties are broken by code point so the result is deterministic. coverage >= 1 keeps all.
    """
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    total = sum(counts.values())
    kept, covered = [], 0
    for char, count in ranked:
        if coverage < 1 and covered >= coverage * total:
            break
        kept.append(char)
        covered += count
    return kept


@functools.cache
def _icu_languages() -> frozenset[str]:
    import icu

    return frozenset(name.split("_")[0] for name in icu.Locale.getAvailableLocales())


@functools.cache
def exemplar_characters(language: str) -> frozenset[str]:
    """CLDR exemplar characters of `language` (standard + auxiliary, upper and lower case).

    Empty when ICU has no data for the language (it would fall back to English otherwise).
    """
    import icu

    base = language.replace("-", "_").split("_")[0].lower()
    if base not in _icu_languages():
        return frozenset()
    data = icu.LocaleData(language.replace("-", "_"))
    chars: set[str] = set()
    for kind in (
        icu.ULocaleDataExemplarSetType.ES_STANDARD,
        icu.ULocaleDataExemplarSetType.ES_AUXILIARY,
    ):
        for item in data.getExemplarSet(0, kind):
            for char in item:
                chars.update({char, char.upper(), char.lower()})
    chars = {char for char in chars if len(char) == 1 and not char.isspace()}
    codec = _EXEMPLAR_REPERTOIRE.get(base)
    if codec:
        chars = {char for char in chars if _encodable(char, codec)}
    if len(chars) > _MAX_EXEMPLARS:
        return frozenset()
    return frozenset(chars)


def _encodable(char: str, codec: str) -> bool:
    """One character of the codec's double-byte table (Python's euc_kr spells the 8,822 other
    Hangul syllables as 8-byte jamo sequences; those do not count)."""
    try:
        return len(char.encode(codec)) <= 2
    except UnicodeEncodeError:
        return False


def select_alphabet(
    char_counts: Mapping[str, Counter[str]],
    sampled_lines: Mapping[str, int],
    config: AlphabetConfig,
    pipeline: Pipeline,
    vocab_size: int,
) -> Alphabet:
    """Apply the three rules to per-language character counts from the sample."""
    # Rule 1: per-language coverage, ranked by the character's best share in any language.
    best_share: dict[str, float] = {}
    for counts in char_counts.values():
        total = sum(counts.values())
        for char in coverage_set(counts, config.character_coverage):
            best_share[char] = max(best_share.get(char, 0.0), counts[char] / total)
    covered = sorted(best_share, key=lambda char: (-best_share[char], char))
    # Rule 2: exemplar sets of well-represented languages, largest language first.
    exemplar_sets: list[list[str]] = []
    if config.exemplars:
        languages = sorted(sampled_lines, key=lambda lang: (-sampled_lines[lang], lang))
        for language in languages:
            if sampled_lines[language] >= config.exemplar_min_lines:
                # The exemplars go through the same normalizer as the text (case, accents).
                normalized = {
                    char
                    for exemplar in exemplar_characters(language)
                    for char in pipeline.normalize(exemplar)
                    if not char.isspace()
                }
                exemplar_sets.append(sorted(normalized))
    # Rule 3: the budgets, two slots for a character that can sit inside a word.
    candidates = set(covered).union(*exemplar_sets)
    isolated = pipeline.isolated(sorted(candidates))

    def cost(chars: Iterable[str]) -> int:
        return sum(1 if char in isolated else 2 for char in chars)

    kept: list[str] = []
    by_rule: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    slots, limit = 0, int(config.max_share * vocab_size)
    for char in covered:
        if slots + cost(char) > limit:
            dropped["coverage"] += 1
            continue
        kept.append(char)
        slots += cost(char)
    by_rule["coverage"] = len(kept)
    kept_set = set(kept)
    added, limit = 0, int(config.exemplar_share * vocab_size)
    for chars in exemplar_sets:
        new = [char for char in chars if char not in kept_set]
        if added + cost(new) > limit:
            dropped["exemplar"] += len(new)
            continue
        kept.extend(new)
        kept_set.update(new)
        added += cost(new)
        by_rule["exemplar"] += len(new)
    uncovered = {
        language: sum(n for char, n in counts.items() if char not in kept_set)
        / max(1, sum(counts.values()))
        for language, counts in sorted(char_counts.items())
    }
    return Alphabet(
        chars=sorted(kept),
        continuation=sorted(char for char in kept if char not in isolated),
        by_rule=dict(by_rule),
        dropped=dict(dropped),
        uncovered=uncovered,
    )
