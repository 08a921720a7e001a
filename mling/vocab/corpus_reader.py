"""Reading a corpus: text lines from every format users have, streamed, with a reason for each
line or file left out.

Formats: plain text or gzip, one sentence per line; JSONL, parquet, TSV (WIT's `.tsv.gz`) and
webdataset tar shards with a text column (the pair schema's `caption` by default); datasets
written with `datasets.save_to_disk`. Files, directories (read flat, as everywhere in the toolkit) and globs
(`**` recurses), on disk or behind a URL (`s3://bucket/captions/*.jsonl.gz`, streamed).

Bad input never stops a run and is never lost silently: an empty, binary or unreadable file is
skipped with a one-line warning, a bad line is skipped with a reason (`invalid_utf8`,
`control_chars`, `too_long`, ...), and the counts go into the report. A path that does not
exist is a one-line error naming it. Memory is one chunk and one batch, whatever the line
lengths: a line longer than `max_line_bytes` is dropped while it is being read.
"""

from __future__ import annotations

import functools
import glob
import gzip
import itertools
import json
import re
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mling.common.atomic import check_published
from mling.common.errors import InputError
from mling.common.field_options import at_least, option
from mling.common.storage import URL, arrow_source, as_path, glob_paths, open_file
from mling.pairs.shards import expand_braces
from mling.vocab.labels import (
    clean_label,
    compile_filename_pattern,
    filename_language,
    sibling_path,
)

CHUNK_BYTES = 1 << 20  # read size; a line may span chunks
SNIFF_BYTES = 8192  # a NUL byte here marks a file as binary (UTF-16 included)
DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
KNOWN_SUFFIXES = (".txt", ".gz", ".jsonl", ".ndjson", ".parquet", ".tar", ".tsv")  # in folders
# C0 controls other than tab/newline/CR, and DEL: never in real text, always in binary junk.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])

# Reasons a line is left out ("blank" is harmless and not warned about).
BLANK = "blank"
INVALID_UTF8 = "invalid_utf8"
CONTROL_CHARS = "control_chars"
TOO_LONG = "too_long"
NOT_TEXT = "not_text"
MISSING_TEXT = "missing_text"
INVALID_JSON = "invalid_json"
# Reasons a whole file is left out; counted per file.
FILE_EMPTY = "file_empty"
FILE_BINARY = "file_binary"
FILE_UNREADABLE = "file_unreadable"
FILE_IGNORED = "file_ignored"


@dataclass(frozen=True)
class CorpusConfig:
    """What is read, and how each line gets its language. A field with help is an option of
    build_vocab.py (mling/common/field_options.py)."""

    inputs: tuple[str, ...] = option(
        help="text/.gz/JSONL/parquet/tar files, directories, globs, datasets.save_to_disk "
        "directories, URLs",
        flag="--input",
    )
    text_column: str = option("caption", "JSONL/parquet/tar/datasets field holding the text")
    lang_column: str | None = option(
        None, "field holding a language code per line; without one, fastText lid.176 labels it"
    )
    english_column: str | None = option(
        None, "field holding the English version of each line, for parity"
    )
    lang_from_filename: str | None = option(
        None, "read the language from file names, e.g. '*.{lang}.gz'", metavar="PATTERN"
    )
    parallel_files: bool = option(
        False, "text files named alike but for the language are line-aligned translations"
    )
    english: str = option("en", "language code of the parity reference")
    max_line_bytes: int = option(
        16_384, "longer lines are skipped as too_long (UTF-8 bytes)", check=at_least(1)
    )
    batch_lines: int = 8192  # rows per LineBatch from columnar files (text: one read chunk)


@dataclass(frozen=True)
class Source:
    path: Path | URL
    kind: str  # "text", "jsonl", "parquet", "tar", "tsv" or "datasets"
    language: str | None = None  # read from the file name
    english_path: Path | None = None  # line-aligned English text file (parallel corpus)


@dataclass
class LineBatch:
    """Valid lines of one file; the three lists have one entry per line."""

    texts: list[str] = field(default_factory=list)
    languages: list[str | None] = field(default_factory=list)  # None: language ID decides
    english: list[str | None] = field(default_factory=list)  # None: no English counterpart

    def add(self, text: str, language: str | None, english: str | None) -> None:
        self.texts.append(text)
        self.languages.append(language)
        self.english.append(english)

    def __len__(self) -> int:
        return len(self.texts)


def warn(message: str) -> None:
    print(f"build_vocab.py: {message}", file=sys.stderr)


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith(".tar"):
        return "tar"
    if name.endswith((".tsv", ".tsv.gz")):  # a header line, then rows (WIT)
        return "tsv"
    return "text"


def _is_dataset_dir(path: Path) -> bool:
    return any((path / marker).is_file() for marker in DATASET_MARKERS)


def _walk(directory: Path, skipped: Counter[str]) -> list[Source]:
    """Sources directly inside a directory: known files, and `save_to_disk` directories.

    Directories are read flat, as everywhere in the toolkit, so a filter output's `rejected/`
    and `webdataset/` never leak in; a `**` glob recurses.
    """
    sources, subfolders = [], []
    for path in sorted(directory.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            if _is_dataset_dir(path):
                sources.append(Source(path, "datasets"))
            else:
                subfolders.append(path.name)
        elif path.name.lower().endswith(KNOWN_SUFFIXES):
            sources.append(Source(path, _kind(path)))
        else:
            skipped[FILE_IGNORED] += 1
    if subfolders:
        warn(
            f"not reading {len(subfolders)} folders inside {directory} (e.g. {subfolders[0]}/); "
            f"directories are read flat, pass '{directory}/**/*' to recurse"
        )
    return sources


def _expand(raw: str, skipped: Counter[str]) -> list[Source]:
    matches = glob_paths(raw) if glob.has_magic(raw) else [as_path(raw)]
    if not matches or not matches[0].exists():
        raise InputError(f"input not found: {raw}")
    sources = []
    for match in matches:
        if match.is_dir() and _is_dataset_dir(match):
            sources.append(Source(match, "datasets"))
        elif match.is_dir():
            sources.extend(_walk(match, skipped))
        else:
            sources.append(Source(match, _kind(match)))
    check_published(source.path for source in sources)
    return sources


def discover(config: CorpusConfig, skipped: Counter[str]) -> list[Source]:
    """Expand inputs into sources, labelled and paired by file name where a pattern is given.

    With parallel_files, a text file in language l is paired with the file whose name differs
    only in l -> English when that file exists and has as many lines (Multi30k task 1's
    train.de.gz / train.en.gz; not task 2, whose captions are independent).
    """
    sources: list[Source] = []
    for raw in config.inputs:
        for name in expand_braces(str(raw)):  # shards/{00000..00099}.tar, as webdataset writes
            sources.extend(_expand(name, skipped))
    sources = list(dict.fromkeys(sources))
    if not config.lang_from_filename:
        return sources
    regex = compile_filename_pattern(config.lang_from_filename)
    labelled, unaligned = [], []
    for source in sources:
        language = filename_language(source.path, regex)
        english_path = None
        if config.parallel_files and language not in (None, config.english):
            candidate = sibling_path(source.path, regex, config.english)
            if source.kind == "text" and candidate and candidate.is_file():
                if _count_lines(source.path) == _count_lines(candidate):
                    english_path = candidate
                else:
                    unaligned.append(source.path.name)
        labelled.append(Source(source.path, source.kind, language, english_path))
    if unaligned:
        warn(
            f"{len(unaligned)} files have a different line count than their English sibling "
            f"and are not treated as parallel (e.g. {unaligned[0]})"
        )
    unmatched = sum(1 for s in labelled if s.language is None)
    if unmatched:
        warn(
            f"{unmatched} files do not match --lang-from-filename; their lines are labelled "
            "by --lang-column or language ID"
        )
    return labelled


def _open_binary(path: Path | URL):
    file = open_file(path)  # local or a URL, streamed
    if file.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=file, mode="rb")  # the file closes when this is collected
    return file


@functools.cache
def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    try:
        with _open_binary(path) as file:
            while chunk := file.read(CHUNK_BYTES):
                count += chunk.count(b"\n")
                last = chunk[-1:]
    except (OSError, EOFError, zlib.error):
        return -1
    return count + (last != b"\n")


def _raw_chunks(file, max_bytes: int) -> Iterator[list[bytes | None]]:
    """Lines without their newline, one list per read; None for a line over max_bytes.

    A long line is dropped while it is read, so memory never holds more than a chunk.
    """
    pending: list[bytes] = []
    pending_bytes = 0
    overflow = False
    while chunk := file.read(CHUNK_BYTES):
        parts: list[bytes | None] = chunk.split(b"\n")
        tail = parts.pop()
        if parts and (pending or overflow):
            long = overflow or pending_bytes + len(parts[0]) > max_bytes
            parts[0] = None if long else b"".join(pending) + parts[0]
            pending, pending_bytes, overflow = [], 0, False
        elif parts and len(parts[0]) > max_bytes:
            parts[0] = None
        if len(parts) > 1 and max(map(len, parts[1:])) > max_bytes:
            parts[1:] = [None if len(p) > max_bytes else p for p in parts[1:]]
        if not overflow:
            pending.append(tail)
            pending_bytes += len(tail)
            if pending_bytes > max_bytes:
                pending, pending_bytes, overflow = [], 0, True
        if parts:
            yield parts
    if overflow:
        yield [None]
    elif pending_bytes:
        yield [b"".join(pending)]


def _decode_lines(raws: list[bytes | None], skipped: Counter[str]) -> list[str | None]:
    """Decoded, stripped lines; None where a line is skipped (reason counted)."""
    if None not in raws:
        blob = b"\n".join(raws)
        if len(blob.translate(None, _CONTROL_BYTES)) == len(blob) and b"\r" not in blob:
            try:
                lines = blob.decode("utf-8").split("\n")
            except UnicodeDecodeError:
                pass
            else:  # the common case, with no Python work per line but the strip
                stripped = [line.strip() or None for line in lines]
                if None in stripped:
                    skipped[BLANK] += stripped.count(None)
                return stripped
    out: list[str | None] = []
    for raw in raws:
        if raw is None:
            skipped[TOO_LONG] += 1
            out.append(None)
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            skipped[INVALID_UTF8] += 1
            out.append(None)
            continue
        text, reason = check_text(line, len(raw))
        if reason:
            skipped[reason] += 1
        out.append(text)
    return out


def check_text(text: object, max_bytes: int) -> tuple[str | None, str | None]:
    """(clean text, None) for a usable line, (None, reason) otherwise. Line breaks inside a
    caption become spaces: the sample file is one sentence per line."""
    if text is None:
        return None, MISSING_TEXT
    if not isinstance(text, str):
        return None, NOT_TEXT
    if len(text) * 4 > max_bytes and len(text.encode("utf-8", "replace")) > max_bytes:
        return None, TOO_LONG
    if _CONTROL.search(text):
        return None, CONTROL_CHARS
    text = text.strip()
    if not text:
        return None, BLANK
    if "\n" in text or "\r" in text:
        text = " ".join(text.splitlines())
    return text, None


def _text_lines(path: Path, max_bytes: int, skipped: Counter[str]) -> Iterator[list[str | None]]:
    """Lines of a text file, a chunk at a time; None for each skipped line, so that parallel
    files stay aligned."""
    try:
        file = _open_binary(path)
    except OSError as error:
        skipped[FILE_UNREADABLE] += 1
        warn(f"skipping {path}: cannot open ({error})")
        return
    with file:
        try:
            head = file.peek(SNIFF_BYTES)[:SNIFF_BYTES]
        except (OSError, EOFError, zlib.error) as error:
            skipped[FILE_UNREADABLE] += 1
            warn(f"skipping {path}: cannot read ({error})")
            return
        if not head:
            skipped[FILE_EMPTY] += 1
            warn(f"skipping {path}: empty file")
            return
        if b"\x00" in head:
            skipped[FILE_BINARY] += 1
            warn(f"skipping {path}: binary file (NUL bytes; if it is UTF-16, convert it to UTF-8)")
            return
        first = True
        try:
            for raws in _raw_chunks(file, max_bytes):
                if first and raws[0] is not None:
                    raws[0] = raws[0].removeprefix(b"\xef\xbb\xbf")  # UTF-8 byte order mark
                first = False
                yield _decode_lines(raws, skipped)
        except (OSError, EOFError, zlib.error) as error:
            skipped[FILE_UNREADABLE] += 1
            warn(f"stopped reading {path}: {error}")


def _read_text(source: Source, config: CorpusConfig, skipped: Counter[str]) -> Iterator[LineBatch]:
    partner = None
    if source.english_path:
        chunks = _text_lines(source.english_path, config.max_line_bytes, Counter())
        partner = itertools.chain.from_iterable(chunks)
    for lines in _text_lines(source.path, config.max_line_bytes, skipped):
        if partner is None:
            texts = [line for line in lines if line is not None]
            yield LineBatch(texts, [source.language] * len(texts), [None] * len(texts))
            continue
        batch = LineBatch()
        english_lines = itertools.islice(partner, len(lines))  # the partner has as many lines
        for line, english in itertools.zip_longest(lines, english_lines):
            if line is not None:
                batch.add(line, source.language, english)
        yield batch


def _add_rows(
    batch: LineBatch,
    texts: list,
    languages: list | None,
    english: list | None,
    source: Source,
    config: CorpusConfig,
    skipped: Counter[str],
) -> None:
    for index, value in enumerate(texts):
        text, reason = check_text(value, config.max_line_bytes)
        if reason:
            skipped[reason] += 1
            continue
        language = clean_label(languages[index]) if languages else None
        counterpart = english[index] if english else None
        counterpart = (counterpart.strip() or None) if isinstance(counterpart, str) else None
        batch.add(text, language or source.language, counterpart)


def _read_jsonl(source: Source, config: CorpusConfig, skipped: Counter[str]) -> Iterator[LineBatch]:
    for lines in _text_lines(source.path, config.max_line_bytes, skipped):
        batch = LineBatch()
        for line in lines:
            if line is None:
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict):
                skipped[INVALID_JSON] += 1
                continue
            _add_rows(
                batch,
                [row.get(config.text_column)],
                [row.get(config.lang_column)] if config.lang_column else None,
                [row.get(config.english_column)] if config.english_column else None,
                source,
                config,
                skipped,
            )
        if batch:
            yield batch


def _columns(source: Source, config: CorpusConfig, available: list[str]) -> list[str]:
    """The text column (required) and the label/English columns this source has."""
    if config.text_column not in available:
        raise InputError(
            f"{source.path} has no column {config.text_column!r} (it has: "
            f"{', '.join(available)}); pass --text-column NAME"
        )
    optional = (config.lang_column, config.english_column)
    return [config.text_column] + [c for c in optional if c and c in available]


def _table_batch(
    columns: dict[str, list], source: Source, config: CorpusConfig, skipped: Counter[str]
) -> LineBatch:
    batch = LineBatch()
    _add_rows(
        batch,
        columns[config.text_column],
        columns.get(config.lang_column) if config.lang_column else None,
        columns.get(config.english_column) if config.english_column else None,
        source,
        config,
        skipped,
    )
    return batch


def _read_parquet(
    source: Source, config: CorpusConfig, skipped: Counter[str]
) -> Iterator[LineBatch]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(arrow_source(source.path))
    except Exception as error:  # pyarrow raises several types for a damaged file
        skipped[FILE_UNREADABLE] += 1
        warn(f"skipping {source.path}: cannot read parquet ({error})")
        return
    columns = _columns(source, config, parquet.schema_arrow.names)
    if parquet.metadata.num_rows == 0:
        skipped[FILE_EMPTY] += 1
        warn(f"skipping {source.path}: no rows")
        return
    try:
        # Only the text columns are read: image bytes stay on disk.
        for batch in parquet.iter_batches(batch_size=config.batch_lines, columns=columns):
            yield _table_batch(batch.to_pydict(), source, config, skipped)
    except OSError as error:
        skipped[FILE_UNREADABLE] += 1
        warn(f"stopped reading {source.path}: {error}")


def _read_pairs(source: Source, config: CorpusConfig, skipped: Counter[str]) -> Iterator[LineBatch]:
    """A webdataset tar or a TSV, through the pair readers."""
    from mling.pairs.shards import iter_pair_batches

    batches = iter_pair_batches([source.path], batch_rows=config.batch_lines)
    while True:
        try:
            record_batch = next(batches)
        except StopIteration:
            return
        except InputError as error:  # a damaged tar or TSV
            skipped[FILE_UNREADABLE] += 1
            warn(f"stopped reading {error}")
            return
        columns = _columns(source, config, record_batch.schema.names)
        values = {name: record_batch.column(name).to_pylist() for name in columns}
        yield _table_batch(values, source, config, skipped)


def _read_datasets(
    source: Source, config: CorpusConfig, skipped: Counter[str]
) -> Iterator[LineBatch]:
    from mling.pairs.shards import load_saved_dataset

    loaded = load_saved_dataset(source.path)  # its damaged JSON files: one line
    splits = [loaded[name] for name in sorted(loaded)] if hasattr(loaded, "keys") else [loaded]
    for split in splits:
        columns = _columns(source, config, split.column_names)
        for values in split.select_columns(columns).iter(batch_size=config.batch_lines):
            yield _table_batch(values, source, config, skipped)


_READERS = {
    "text": _read_text,
    "jsonl": _read_jsonl,
    "parquet": _read_parquet,
    "tar": _read_pairs,
    "tsv": _read_pairs,
    "datasets": _read_datasets,
}


def iter_corpus(
    sources: list[Source], config: CorpusConfig, skipped: Counter[str]
) -> Iterator[LineBatch]:
    """Valid lines of every source, in order, in batches; skip reasons counted in `skipped`."""
    for source in sources:
        yield from _READERS[source.kind](source, config, skipped)
