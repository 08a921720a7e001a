"""The balanced sample: two streaming passes over the corpus, memory bounded by the budget.

Pass 1 (census) labels every line, sets aside held-out lines for the report, counts lines and
bytes per language and the characters of each language (for the alphabet rule, which works
within a language, so sampling rates do not change it; up to `CHAR_COUNT_LIMIT` characters per
language: frequencies, not completeness, matter there, since a character the count misses is
rarer than the coverage rule keeps anyway). Labels go to a small cache file (2 bytes a line)
so language ID runs once. Pass 2 reads the corpus again and draws `sample_copies` for each
remaining line; it yields each read batch's sampled lines once, grouped by their number of
copies, straight to the trainer (which counts each word that many times): the sample is never
held, nor expanded.

Held-out lines are chosen by a seeded 64-bit hash (xxh3) of the text (of its English
counterpart in parallel data, so all translations of a sentence fall on the same side), never
by position: duplicates of a held-out line are held out too, so no held-out sentence is ever
trained on. The sampling draws come from one seeded generator in corpus order: same input and
seed, same sample.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xxhash

from mling.common.field_options import at_least, between, option
from mling.vocab.balance import sample_copies
from mling.vocab.corpus_reader import CorpusConfig, Source, iter_corpus
from mling.vocab.forked import ForkedStream
from mling.vocab.labels import Labeler
from mling.vocab.normalization import Pipeline

HELD_OUT = 0xFFFF  # label-cache code of a held-out line
MAX_LANGUAGES = 0xFFFF  # label codes are uint16
CHAR_COUNT_LIMIT = 10_000_000  # characters counted per language for the alphabet rule
_UINT64 = 2**64


@dataclass(frozen=True)
class SamplingConfig:
    """The language-balanced sample and the held-out lines (options of build_vocab.py)."""

    alpha: float = option(
        0.3, "p_l ~ n_l^alpha: 0 = every language alike, 1 = natural", check=at_least(0)
    )
    max_sentences: int = option(10_000_000, "lines in the sample, at most", check=at_least(1))
    max_bytes: int = option(
        1_000_000_000, "UTF-8 bytes in the sample, at most; 1e9 reads too", check=at_least(1)
    )
    seed: int = option(0, "seeds the held-out hash and the sampling draws", check=at_least(0))
    holdout: float = option(
        0.05,
        "share of distinct sentences held out for the report, never trained on",
        check=between(0, 1, open_high=True),
    )
    report_lines: int = option(
        1000, "held-out lines kept per language for the report", check=at_least(1)
    )


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
    workers: int = 2,
) -> Census:
    """Pass 1: label, hold out, count. Writes one uint16 code per valid line to label_cache.

    The sources are cut into `workers` runs of about equal bytes; all but the first are read
    by child processes while this one reads the first, and the parts are merged in corpus
    order, into exactly what one pass over all sources would give.
    """
    runs = _split_sources(sources, workers)
    caches = [label_cache] + [label_cache.with_name(f"{label_cache.name}.{i}") for i in
                              range(1, len(runs))]  # fmt: skip
    children = [
        ForkedStream(  # no items, just the part as its result
            lambda: iter(()),
            functools.partial(_census_in_child, run, corpus, sampling, labeler, cache),
        )
        for run, cache in zip(runs[1:], caches[1:], strict=True)
    ]
    with contextlib.ExitStack() as stack:
        for child in children:
            stack.enter_context(child)
        parts = [_census_part(runs[0], corpus, sampling, labeler, label_cache)]
        for child in children:
            parts.append(child.wait())
            sys.stderr.write(parts[-1].warnings)
    return _merge_parts(parts, caches, sampling.report_lines)


@dataclass
class _Part:
    """The census of a run of consecutive sources, label codes local to it."""

    languages: list[str]  # local code -> language, in order of first appearance
    lines: np.ndarray  # training lines per local code
    nbytes: np.ndarray  # their bytes
    # local code -> (characters counted before, characters, counts) per batch, while the
    # part's own count is under CHAR_COUNT_LIMIT (an earlier part may leave less room)
    char_batches: dict[int, list[tuple[int, int, dict[int, int]]]]
    held_out: dict[str, HeldOut]
    held_out_total: int
    skipped: Counter[str]
    label_sources: Counter[str]
    warnings: str = ""  # what a child part would have printed on stderr


def _split_sources(sources: list[Source], workers: int) -> list[list[Source]]:
    """Consecutive runs of sources of about equal bytes (at least one run)."""
    sizes = [source.path.stat().st_size if source.path.is_file() else 0 for source in sources]
    total = sum(sizes)
    runs: list[list[Source]] = [[]]
    done = 0
    for source, size in zip(sources, sizes, strict=True):
        if runs[-1] and len(runs) < workers and done >= total * len(runs) / workers:
            runs.append([])
        runs[-1].append(source)
        done += size
    return runs


def _census_in_child(
    sources: list[Source],
    corpus: CorpusConfig,
    sampling: SamplingConfig,
    labeler: Labeler,
    label_cache: Path,
) -> _Part:
    sys.stderr = io.StringIO()  # warnings go back to the parent, printed in corpus order
    part = _census_part(sources, corpus, sampling, labeler, label_cache)
    part.warnings = sys.stderr.getvalue()
    return part


def _census_part(
    sources: list[Source],
    corpus: CorpusConfig,
    sampling: SamplingConfig,
    labeler: Labeler,
    label_cache: Path,
) -> _Part:
    codes_of: dict[str, int] = {}
    lines = np.zeros(0, dtype=np.int64)
    nbytes = np.zeros(0, dtype=np.int64)
    char_batches: dict[int, list[tuple[int, int, dict[int, int]]]] = {}
    counted: Counter[int] = Counter()
    held_out: dict[str, HeldOut] = {}
    held_out_total = 0
    skipped: Counter[str] = Counter()
    sources_before = Counter(labeler.sources)
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
                before = counted[code]
                if before < CHAR_COUNT_LIMIT:
                    joined = "\n".join([batch.texts[i] for i in indices])
                    counted[code] += len(joined)
                    entry = (before, len(joined), count_characters(joined))
                    char_batches.setdefault(code, []).append(entry)
            for index in np.flatnonzero(held).tolist():
                held_out_total += 1
                kept = held_out.setdefault(languages[index], HeldOut())
                if len(kept.texts) < sampling.report_lines:
                    kept.texts.append(batch.texts[index])
                    kept.english.append(batch.english[index])
            cache.write(np.where(held, HELD_OUT, codes).astype(np.uint16).tobytes())
    return _Part(
        languages=list(codes_of),
        lines=lines,
        nbytes=nbytes,
        char_batches=char_batches,
        held_out=held_out,
        held_out_total=held_out_total,
        skipped=skipped,
        label_sources=Counter(labeler.sources) - sources_before,
    )


def _merge_parts(parts: list[_Part], caches: list[Path], report_lines: int) -> Census:
    """One census from the parts, in corpus order; the first part's codes are already global
    and its cache is the label cache, the others' caches are recoded and appended to it."""
    codes_of: dict[str, int] = {}
    for part in parts:
        for language in part.languages:
            codes_of.setdefault(language, len(codes_of))
    if len(codes_of) >= MAX_LANGUAGES:
        raise ValueError(f"more than {MAX_LANGUAGES - 1} language labels")
    lines = np.zeros(len(codes_of), dtype=np.int64)
    nbytes = np.zeros(len(codes_of), dtype=np.int64)
    char_counts: dict[int, Counter[int]] = {}
    counted: Counter[int] = Counter()
    held_out: dict[str, HeldOut] = {}
    held_out_total = 0
    skipped: Counter[str] = Counter()
    label_sources: Counter[str] = Counter()
    for index, part in enumerate(parts):
        recode = np.array([codes_of[language] for language in part.languages], dtype=np.int64)
        lines[recode[: len(part.lines)]] += part.lines
        nbytes[recode[: len(part.nbytes)]] += part.nbytes
        for local, entries in part.char_batches.items():
            code = int(recode[local])
            start = counted[code]  # counted by the parts before this one
            for before, size, counts in entries:
                # the batches one pass would count: those that start under the limit
                if start + before < CHAR_COUNT_LIMIT:
                    char_counts.setdefault(code, Counter()).update(counts)
                    counted[code] += size
        for language, kept in part.held_out.items():
            merged = held_out.setdefault(language, HeldOut())
            room = report_lines - len(merged.texts)
            merged.texts.extend(kept.texts[:room])
            merged.english.extend(kept.english[:room])
        held_out_total += part.held_out_total
        skipped.update(part.skipped)
        label_sources.update(part.label_sources)
        if index:
            local = np.fromfile(caches[index], dtype=np.uint16).astype(np.int64)
            table = np.append(recode, HELD_OUT)  # HELD_OUT is past every local code
            codes = table[np.where(local == HELD_OUT, len(recode), local)]
            with open(caches[0], "ab") as cache:
                cache.write(codes.astype(np.uint16).tobytes())
            caches[index].unlink()
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
        label_sources=label_sources,
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
) -> Iterator[tuple[list[str], int]]:
    """Pass 2: the sample as (lines, copies) groups: every line of `lines` is sampled `copies`
    times. Groups come per read batch, in corpus order; each sampled line is in one group.

    The sample is never expanded in memory: the trainer needs each line once with its weight.
    Counts into `stats` as it goes; also writes the expanded sample (each line `copies` times,
    in corpus order) to `copy_to` when given.
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
            if not copies.any():
                continue
            texts = batch.texts
            picked = np.repeat(train, copies)  # line indices, each as often as it is sampled
            sizes = np.fromiter(map(len, map(str.encode, texts)), np.int64, len(batch))
            for code, indices in _by_code(codes, picked):
                language = census.languages[code]
                stats.lines[language] += len(indices)
                stats.bytes[language] += int(sizes[indices].sum()) + len(indices)  # + newlines
            if copy:
                copy.write("\n".join([texts[i] for i in picked.tolist()]) + "\n")
            for count in np.unique(copies[copies > 0]).tolist():
                yield [texts[i] for i in train[copies == count].tolist()], count
