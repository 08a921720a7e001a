"""The balanced sample: two streaming passes over the corpus, memory bounded by the budget.

Pass 1 (census) labels every line, sets aside held-out lines for the report and counts lines
and bytes per language; labels go to a small cache file (2 bytes a line) so language ID runs
once. Pass 2 reads the corpus again and writes each remaining line `sample_copies` times into a
text file, the trainer's only input, while counting its normalized characters per language
for the alphabet rule.

Held-out lines are chosen by a keyed hash of the text (of its English counterpart in parallel
data, so all translations of a sentence fall on the same side), never by position: duplicates
of a held-out line are held out too, so no held-out sentence is ever trained on. The sampling
draws come from one seeded generator in corpus order: same input and seed, same sample.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tokenizer_training.balance import sample_copies
from tokenizer_training.corpus import CorpusConfig, Source, iter_corpus
from tokenizer_training.labels import Labeler
from tokenizer_training.normalization import Pipeline

HELD_OUT = np.uint16(0xFFFF)  # label-cache code of a held-out line
MAX_LANGUAGES = 0xFFFF  # label codes are uint16


@dataclass(frozen=True)
class SamplingConfig:
    alpha: float = 0.3  # exponent of the smoothing; 1 = natural distribution
    max_sentences: int = 10_000_000  # lines in the sample, at most
    max_bytes: int = 1_000_000_000  # UTF-8 bytes in the sample, at most
    seed: int = 0  # seeds the held-out hash and the sampling draws
    holdout: float = 0.05  # share of distinct sentences held out for the report
    report_lines: int = 1000  # held-out lines kept per language for the report


@dataclass
class HeldOut:
    """Held-out lines of one language, and their English counterparts (None if unknown)."""

    texts: list[str] = field(default_factory=list)
    english: list[str | None] = field(default_factory=list)


@dataclass
class Census:
    languages: list[str]  # label code -> language
    lines: dict[str, int]  # training lines per language (held-out excluded)
    bytes: dict[str, int]  # their UTF-8 bytes
    held_out: dict[str, HeldOut]  # lines for the report, at most report_lines each
    held_out_total: int  # held-out lines, kept or not
    skipped: Counter[str]  # reason -> lines (or files, for file_* reasons)
    label_sources: Counter[str]  # "given" / "language_id" -> lines


@dataclass
class SampleStats:
    lines: dict[str, int]  # sampled lines per language, copies included
    bytes: dict[str, int]  # their UTF-8 bytes
    char_counts: dict[str, Counter[str]]  # normalized character occurrences per language


def is_held_out(key: str, seed: int, fraction: float) -> bool:
    """A keyed 64-bit hash of `key` below fraction * 2^64: deterministic, order-independent."""
    digest = hashlib.blake2b(
        key.encode("utf-8"), digest_size=8, salt=seed.to_bytes(8, "little", signed=True)
    ).digest()
    return int.from_bytes(digest, "little") < fraction * 2.0**64


def take_census(
    sources: list[Source],
    corpus: CorpusConfig,
    sampling: SamplingConfig,
    labeler: Labeler,
    label_cache: Path,
) -> Census:
    """Pass 1: label, hold out, count. Writes one uint16 code per valid line to label_cache."""
    codes: dict[str, int] = {}
    lines: Counter[str] = Counter()
    nbytes: Counter[str] = Counter()
    held_out: dict[str, HeldOut] = {}
    held_out_total = 0
    skipped: Counter[str] = Counter()
    with open(label_cache, "wb") as cache:
        for batch in iter_corpus(sources, corpus, skipped):
            languages = labeler.fill(batch.texts, batch.languages)
            out = np.empty(len(batch), dtype=np.uint16)
            for i, (text, language, english) in enumerate(
                zip(batch.texts, languages, batch.english, strict=True)
            ):
                key = english if english is not None else text
                if is_held_out(key, sampling.seed, sampling.holdout):
                    out[i] = HELD_OUT
                    held_out_total += 1
                    kept = held_out.setdefault(language, HeldOut())
                    if len(kept.texts) < sampling.report_lines:
                        kept.texts.append(text)
                        kept.english.append(english)
                    continue
                code = codes.setdefault(language, len(codes))
                if code >= MAX_LANGUAGES:
                    raise ValueError(f"more than {MAX_LANGUAGES - 1} language labels")
                out[i] = code
                lines[language] += 1
                nbytes[language] += len(text.encode("utf-8"))
            out.tofile(cache)
    return Census(
        languages=list(codes),
        lines=dict(lines),
        bytes=dict(nbytes),
        held_out=held_out,
        held_out_total=held_out_total,
        skipped=skipped,
        label_sources=labeler.sources,
    )


def write_sample(
    sources: list[Source],
    corpus: CorpusConfig,
    census: Census,
    rates: dict[str, float],
    seed: int,
    pipeline: Pipeline,
    label_cache: Path,
    sample_path: Path,
) -> SampleStats:
    """Pass 2: write each training line `copies` times to sample_path; count characters."""
    rate_of_code = np.array([rates.get(language, 0.0) for language in census.languages] + [0.0])
    generator = np.random.Generator(np.random.PCG64(seed))
    lines: Counter[str] = Counter()
    nbytes: Counter[str] = Counter()
    char_counts: dict[str, Counter[str]] = {}
    with open(label_cache, "rb") as cache, open(sample_path, "w", encoding="utf-8") as out:
        for batch in iter_corpus(sources, corpus, Counter()):
            codes = np.fromfile(cache, dtype=np.uint16, count=len(batch))
            train = np.flatnonzero(codes != HELD_OUT)
            copies = sample_copies(rate_of_code[codes[train]], generator.random(len(train)))
            by_language: dict[str, list[str]] = {}
            for index, count in zip(train.tolist(), copies.tolist(), strict=True):
                if count == 0:
                    continue
                language = census.languages[codes[index]]
                # A caption's own newlines would split it into two training lines.
                text = " ".join(batch.texts[index].splitlines())
                out.write((text + "\n") * count)
                by_language.setdefault(language, []).extend([text] * count)
            for language, texts in by_language.items():
                joined = "\n".join(texts)
                lines[language] += len(texts)
                nbytes[language] += len(joined.encode("utf-8")) + 1
                counts = char_counts.setdefault(language, Counter())
                counts.update(pipeline.normalize(joined))
    for counts in char_counts.values():
        counts.pop(" ", None)
    return SampleStats(lines=dict(lines), bytes=dict(nbytes), char_counts=char_counts)
