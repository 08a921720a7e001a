"""Which characters enter the vocabulary as single-character tokens.

WordPiece turns a whole word into `[UNK]` when one of its characters is missing, and in a
script without spaces a "word" is a phrase, so the alphabet decides most of the [UNK] rate.
Three rules:

1. Coverage, per language (as sentencepiece's `character_coverage`, but per language rather
   than over the pooled corpus, so a small language's letters are not outvoted by English
   noise): the most frequent characters covering `character_coverage` of that language's
   character occurrences in the sample. Ranked by their highest share in any one language.
2. Exemplars (`exemplars.py`: CLDR, else gflanguages) of every language with at least
   `exemplar_min_lines` sampled lines. They cover the letters a small sample has not happened
   to show yet, e.g. the 3,600 everyday hanzi for `zh`, the Ethiopic syllabary for `am`.
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

from mling.common.field_options import at_least, between, option
from mling.vocab.exemplars import fitting_exemplars
from mling.vocab.normalization import Pipeline


@dataclass(frozen=True)
class AlphabetConfig:
    """Which characters the vocabulary holds (options of build_vocab.py)."""

    character_coverage: float = option(
        0.9995, "per language, share of character occurrences covered", check=between(0, 1)
    )
    exemplars: bool = option(  # on: add exemplar characters for well-represented languages
        True, "leave out the exemplar characters (CLDR) of well-represented languages"
    )
    exemplar_min_lines: int = option(
        100, "sampled lines a language needs before its exemplars count", check=at_least(0)
    )
    exemplar_share: float = option(
        0.1, "largest share of the vocabulary exemplar characters add", check=between(0, 1)
    )
    max_share: float = option(
        0.5,
        "largest share of the vocabulary coverage characters take",
        flag="--max-alphabet-share",
        check=between(0, 1),
    )


@dataclass
class Alphabet:
    chars: list[str]  # single characters, sorted by code point
    continuation: list[str]  # those that also get a `##` form, sorted
    by_rule: dict[str, int] = field(default_factory=dict)  # "coverage"/"exemplar" -> chars
    dropped: dict[str, int] = field(default_factory=dict)  # rule -> chars over the budget
    uncovered: dict[str, float] = field(default_factory=dict)  # language -> share of its
    # character occurrences left outside the alphabet (in the sample)
    exemplar_sources: dict[str, str] = field(default_factory=dict)  # language -> set used

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
    sources: dict[str, str | None] = {}
    if config.exemplars:
        # The exemplars go through the same normalizer as the text (case, accents).
        normalize = functools.cache(pipeline.normalize)
        languages = sorted(sampled_lines, key=lambda lang: (-sampled_lines[lang], lang))
        for language in languages:
            if sampled_lines[language] >= config.exemplar_min_lines:
                chars, sources[language] = fitting_exemplars(
                    language, char_counts.get(language, {}), normalize
                )
                exemplar_sets.append(sorted(chars))
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
        exemplar_sources={lang: found for lang, found in sources.items() if found},
    )
