"""The balanced sample: two streaming passes over the corpus, memory bounded by the budget.

Pass 1 (census) labels every line, sets aside held-out lines for the report, counts lines and
bytes per language and the characters of each language (for the alphabet rule, which works
within a language, so sampling rates do not change it; up to `CHAR_COUNT_LIMIT` characters per
language: frequencies, not completeness, matter there, since a character the count misses is
rarer than the coverage rule keeps anyway). Labels go to a small cache file (2 bytes a line)
so language ID runs once. Pass 2 reads the corpus again and yields each remaining line
`sample_copies` times, in batches, straight into the trainer: the sample is never held.

Held-out lines are chosen by a seeded 64-bit hash (xxh3) of the text (of its English
counterpart in parallel data, so all translations of a sentence fall on the same side), never
by position: duplicates of a held-out line are held out too, so no held-out sentence is ever
trained on. The sampling draws come from one seeded generator in corpus order: same input and
seed, same sample.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xxhash

from tokenizer_training.balance import sample_copies
from tokenizer_training.corpus import CorpusConfig, Source, iter_corpus
from tokenizer_training.labels import Labeler
from tokenizer_training.normalization import Pipeline

HELD_OUT = 0xFFFF  # label-cache code of a held-out line
MAX_LANGUAGES = 0xFFFF  # label codes are uint16
CHAR_COUNT_LIMIT = 10_000_000  # characters counted per language for the alphabet rule
_UINT64 = 2**64


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
    char_counts: dict[str, Counter[int]]  # code point -> occurrences in training lines
    held_out: dict[str, HeldOut]  # lines for the report, at most report_lines each
    held_out_total: int  # held-out lines, kept or not
    skipped: Counter[str]  # reason -> lines (or files, for file_* reasons)
    label_sources: Counter[str]  # "given" / "language_id" -> lines


@dataclass
class SampleStats:
    """Filled while the sample streams by."""

    lines: Counter[str] = field(default_factory=Counter)  # sampled lines, copies included
    bytes: Counter[str] = field(default_factory=Counter)  # their UTF-8 bytes


def held_out_mask(keys: list[bytes] | list[str], seed: int, fraction: float) -> np.ndarray:
    """(N,) bool: a seeded 64-bit hash of each key below fraction * 2^64. Order-independent."""
    if fraction >= 1:
        return np.ones(len(keys), dtype=bool)
    if keys and isinstance(keys[0], str):
        keys = list(map(str.encode, keys))
    limit = np.uint64(int(fraction * _UINT64))
    hashes = np.fromiter(
        map(xxhash.xxh3_64_intdigest, keys, itertools.repeat(seed % _UINT64)),
        dtype=np.uint64,
        count=len(keys),
    )
    return hashes < limit


def _add_at(total: np.ndarray, codes: np.ndarray, weights: np.ndarray | None = None):
    """total + bincount(codes), growing total when new codes appeared."""
    counts = np.bincount(codes, weights=weights, minlength=len(total))
    if len(counts) > len(total):
        total = np.concatenate([total, np.zeros(len(counts) - len(total), dtype=total.dtype)])
    return total + counts.astype(total.dtype)


def take_census(
    sources: list[Source],
    corpus: CorpusConfig,
    sampling: SamplingConfig,
    labeler: Labeler,
    label_cache: Path,
) -> Census:
    """Pass 1: label, hold out, count. Writes one uint16 code per valid line to label_cache."""
    codes_of: dict[str, int] = {}
    lines = np.zeros(0, dtype=np.int64)
    nbytes = np.zeros(0, dtype=np.int64)
    char_counts: dict[int, Counter[int]] = {}
    counted: Counter[int] = Counter()
    held_out: dict[str, HeldOut] = {}
    held_out_total = 0
    skipped: Counter[str] = Counter()
    with open(label_cache, "wb") as cache:
        for batch in iter_corpus(sources, corpus, skipped):
            if not batch:
                continue
            languages = labeler.fill(batch.texts, batch.languages)
            if languages.count(languages[0]) == len(languages):  # one file, one language
                codes = np.full(len(batch), codes_of.setdefault(languages[0], len(codes_of)))
            else:
                codes = np.fromiter(
                    (codes_of.setdefault(language, len(codes_of)) for language in languages),
                    dtype=np.int64,
                    count=len(batch),
                )
            if len(codes_of) >= MAX_LANGUAGES:
                raise ValueError(f"more than {MAX_LANGUAGES - 1} language labels")
            encoded = list(map(str.encode, batch.texts))
            keys = encoded
            if batch.english.count(None) < len(batch):
                keys = [
                    t if en is None else en.encode()
                    for t, en in zip(encoded, batch.english, strict=True)
                ]
            held = held_out_mask(keys, sampling.seed, sampling.holdout)
            train = np.flatnonzero(~held)
            sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(batch))
            lines = _add_at(lines, codes[train])
            nbytes = _add_at(nbytes, codes[train], sizes[train])
            for code, indices in _by_code(codes, train):
                if counted[code] < CHAR_COUNT_LIMIT:
                    joined = "\n".join([batch.texts[i] for i in indices])
                    counted[code] += len(joined)
                    char_counts.setdefault(code, Counter()).update(count_characters(joined))
            for index in np.flatnonzero(held).tolist():
                held_out_total += 1
                kept = held_out.setdefault(languages[index], HeldOut())
                if len(kept.texts) < sampling.report_lines:
                    kept.texts.append(batch.texts[index])
                    kept.english.append(batch.english[index])
            np.where(held, HELD_OUT, codes).astype(np.uint16).tofile(cache)
    languages = list(codes_of)
    for counts in char_counts.values():
        counts.pop(ord("\n"), None)
    return Census(
        languages=languages,
        lines={languages[c]: int(n) for c, n in enumerate(lines) if n},
        bytes={languages[c]: int(n) for c, n in enumerate(nbytes) if lines[c]},
        char_counts={languages[c]: counts for c, counts in sorted(char_counts.items())},
        held_out=held_out,
        held_out_total=held_out_total,
        skipped=skipped,
        label_sources=labeler.sources,
    )


def _by_code(codes: np.ndarray, indices: np.ndarray) -> list[tuple[int, list[int]]]:
    """(code, the indices with that code), for the codes present among `indices`."""
    if indices.size == 0:
        return []
    selected = codes[indices]
    if selected[0] == selected[-1] and (selected == selected[0]).all():
        return [(int(selected[0]), indices.tolist())]
    return [(int(c), indices[selected == c].tolist()) for c in np.unique(selected)]


def count_characters(text: str) -> dict[int, int]:
    """Code point -> occurrences in `text`, counted in numpy (a bincount over UTF-32)."""
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    if points.size == 0:
        return {}
    if points.max() < 0x10000:
        counts = np.bincount(points)
        present = np.flatnonzero(counts)
        return dict(zip(present.tolist(), counts[present].tolist(), strict=True))
    values, counts = np.unique(points, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def normalized_counts(
    raw: Mapping[str, Counter[int]], pipeline: Pipeline
) -> dict[str, Counter[str]]:
    """Code-point counts per language -> counts of the characters the normalizer makes of
    them (case folding, accent stripping; removed control characters and spaces vanish)."""
    cache: dict[int, str] = {}
    out: dict[str, Counter[str]] = {}
    for language, counts in raw.items():
        normalized = out.setdefault(language, Counter())
        for point, count in counts.items():
            if point not in cache:
                cache[point] = "".join(pipeline.normalize(chr(point)).split())
            for char in cache[point]:
                normalized[char] += count
    return out


def iter_sample(
    sources: list[Source],
    corpus: CorpusConfig,
    census: Census,
    rates: Mapping[str, float],
    seed: int,
    label_cache: Path,
    stats: SampleStats,
    copy_to: Path | None = None,
) -> Iterator[list[str]]:
    """Pass 2: batches of sampled lines, each training line `copies` times, in corpus order.

    Counts into `stats` as it goes; also writes the lines to `copy_to` when given.
    """
    rate_of_code = np.array([rates.get(language, 0.0) for language in census.languages])
    generator = np.random.Generator(np.random.PCG64(seed))
    with contextlib.ExitStack() as stack:
        cache = stack.enter_context(open(label_cache, "rb"))
        copy = stack.enter_context(open(copy_to, "w", encoding="utf-8")) if copy_to else None
        for batch in iter_corpus(sources, corpus, Counter()):
            if not batch:
                continue
            codes = np.fromfile(cache, dtype=np.uint16, count=len(batch)).astype(np.int64)
            train = np.flatnonzero(codes != HELD_OUT)
            copies = sample_copies(rate_of_code[codes[train]], generator.random(len(train)))
            picked = np.repeat(train, copies)  # line indices, each as often as it is sampled
            if picked.size == 0:
                continue
            texts = [batch.texts[i] for i in picked.tolist()]
            sizes = np.fromiter(map(len, map(str.encode, batch.texts)), np.int64, len(batch))
            for code, indices in _by_code(codes, picked):
                language = census.languages[code]
                stats.lines[language] += len(indices)
                stats.bytes[language] += int(sizes[indices].sum()) + len(indices)  # + newlines
            if copy:
                copy.write("\n".join(texts) + "\n")
            yield texts
