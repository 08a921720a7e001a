"""How much each language's captions share with the English captions of the same images, in
spelling: sacrebleu's corpus chrF (character n-grams, F-score with beta 2, 0 to 100).

A model can find the right image for a caption it never learned to read when the caption spells
its words as English does (names, loanwords, cognates, numbers: "Hund" and "hound" little, "taxi"
and "taxi" fully). High chrF and a high mR may be transfer through shared spelling; low chrF and
a high mR is transfer through meaning. No model is needed: only the evaluation set's captions.
For zero-shot classification the class names play the captions' part: each language's names of
a class against the English names of the same class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mling.evaluation.caption_sets import CaptionSet

ENGLISH = "en"
# chrF of a language is computed on at most this many of its captions, evenly spaced through
# the set: the corpus score moves by a few tenths past 1,000, and at 100+ languages of 3,000
# captions the full computation was a fifth of an evaluation's time
MAX_CAPTIONS = 1000


@dataclass(frozen=True)
class Overlap:
    """chrF of one language against English, or why there is none."""

    chrf: float | None  # corpus chrF, 0-100; None when there is nothing to compare
    captions: int  # captions compared: those whose image has an English caption, at most
    # MAX_CAPTIONS
    reason: str = ""  # why chrf is None


def english_captions(sets: Sequence[CaptionSet], english: str = ENGLISH) -> dict[Path, list[str]]:
    """{image path: its English captions}, from the English set among `sets` (empty if none)."""
    by_image: dict[Path, list[str]] = {}
    for caption_set in sets:
        if caption_set.language == english:
            for caption, index in zip(caption_set.captions, caption_set.text_to_image, strict=True):
                by_image.setdefault(caption_set.images[index], []).append(caption)
    return by_image


def chrf_against(captions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus chrF of `captions` (M,) against `references` (M, each one or more captions).

    Each caption is scored against all of its references (sacrebleu keeps the best-matching
    one per caption); the statistics are summed over the corpus before the F-score."""
    import sacrebleu

    most = max(len(refs) for refs in references)
    # sacrebleu takes references as streams, one per reference slot; None fills a slot that
    # an image with fewer English captions lacks
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(most)]
    return sacrebleu.corpus_chrf(list(captions), streams).score


def spelling_overlap(sets: Sequence[CaptionSet], english: str = ENGLISH) -> Mapping[str, Overlap]:
    """{language: Overlap} for every set: its captions against the English captions of the same
    image files, corpus-level, on at most MAX_CAPTIONS of them (evenly spaced). English itself,
    and languages whose images have no English caption, get chrf None with the reason."""
    reference = english_captions(sets, english)
    overlaps = {}
    for caption_set in sets:
        if caption_set.language == english:
            overlaps[english] = Overlap(None, len(caption_set.captions), "the reference")
            continue
        if not reference:
            overlaps[caption_set.language] = Overlap(None, 0, "no English captions in the set")
            continue
        pairs = [
            (caption, reference[caption_set.images[index]])
            for caption, index in zip(caption_set.captions, caption_set.text_to_image, strict=True)
            if caption_set.images[index] in reference
        ]
        if not pairs:
            why = "no English caption for its images"
            overlaps[caption_set.language] = Overlap(None, 0, why)
            continue
        if len(pairs) > MAX_CAPTIONS:
            step = len(pairs) / MAX_CAPTIONS
            pairs = [pairs[int(k * step)] for k in range(MAX_CAPTIONS)]
        captions, references = zip(*pairs, strict=True)
        overlaps[caption_set.language] = Overlap(chrf_against(captions, references), len(pairs))
    return overlaps


def name_overlap(
    names: Mapping[str, Sequence[Sequence[str]]], english: str = ENGLISH
) -> Mapping[str, Overlap]:
    """{language: C lists of class names} -> {language: Overlap}: every name of class c against
    all English names of class c, corpus-level (`captions` counts names). The names, not the
    prompts: templates are written anew in each language and would score their own spelling."""
    if english not in names:
        return {language: Overlap(None, 0, "no English class names") for language in names}
    overlaps = {}
    for language, classes in names.items():
        if language == english:
            overlaps[language] = Overlap(None, sum(map(len, classes)), "the reference")
            continue
        pairs = [(name, names[english][c]) for c, members in enumerate(classes) for name in members]
        captions, references = zip(*pairs, strict=True)
        overlaps[language] = Overlap(chrf_against(captions, references), len(pairs))
    return overlaps
