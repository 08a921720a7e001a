"""The row-wise pre-pass: what can only be computed one row at a time, done once, in Arrow.

It reads pair-schema batches and writes one features row per input row (`FEATURES_SCHEMA`):
the first malformed-row reason the row has (all but `duplicate_key`, which needs the engine),
validated caption and sizes, the normalized caption, the image identity, the near-duplicate
flag, and ICU unigrams for captions that need the dictionary path. Everything across rows
(counts, joins, the vocabulary) is left to the SQL engine; language ID comes after the decisions
(`mling/filtering/language_pass.py`), on the rows that need a label.

Rows are independent here, so chunks of input go to forked worker processes (`workers`), each
writing its own features file; the row ids come from the chunk's place in the input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mling.common.errors import InputError
from mling.common.processes import forked_map
from mling.common.text import collapse_whitespace
from mling.filtering.image_hash import EvalSet, phash_bytes, sha256_hex
from mling.filtering.reasons import ImageFilterConfig, passes_size, prepass_names
from mling.filtering.segment import ENGINE_NEEDS_DICTIONARY_PATTERN, icu_unigrams
from mling.pairs.schema import PAIR_COLUMNS, STATUS_COLUMN, STATUS_OK, as_text, image_type_problem

FEATURES_SCHEMA = pa.schema(
    [
        ("row_id", pa.int64()),  # position in the input, 0-based, in reading order
        ("key", pa.string()),
        ("caption", pa.string()),  # null unless the caption is valid text
        ("caption_norm", pa.string()),  # lowercased, whitespace collapsed: alt-text identity
        ("malformed", pa.string()),  # first malformed reason from this pass, else null
        ("width", pa.int64()),  # px; null unless a valid whole number
        ("height", pa.int64()),
        ("identity", pa.string()),  # "sha256:<hex>", else "url:<url>", else "key:<key>"
        ("near_eval", pa.bool_()),  # near-duplicate of an evaluation image
        ("dictionary_words", pa.list_(pa.string())),  # ICU unigrams; null: the engine's regex
        ("has_image", pa.bool_()),  # the row carries image bytes
    ]
)


@dataclass
class RowContext:
    """What the pre-pass needs besides the rows."""

    image: ImageFilterConfig
    eval_set: EvalSet | None = None  # None or empty: no near-duplicate check


# C0 control characters but tab, line feed and carriage return, and DEL (RE2 syntax).
CONTROL_CHARACTERS = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


def _reason(mask: pa.Array, name: str) -> pa.Array:
    """A string array: `name` where mask is true, null elsewhere (null mask counts as false)."""
    return pc.if_else(pc.fill_null(mask, False), pa.scalar(name), pa.scalar(None, pa.string()))


def first_reason(checks: dict[str, pa.Array]) -> pa.Array:
    """Per row, the first pre-pass reason, in `REASONS` order, whose check (a bool mask) is
    true; null when none is. `checks` holds one mask per reason the pre-pass computes."""
    names = prepass_names()
    if set(checks) != set(names):
        raise AssertionError(f"the pre-pass computes {sorted(checks)}, the records say {names}")
    return pc.coalesce(*(_reason(checks[name], name) for name in names))


def _decode(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Binary or unvalidated string values -> (text, invalid mask), decoding row by row."""
    texts, invalid = [], []
    for value in pc.cast(values, pa.binary()).to_pylist():
        try:
            texts.append(None if value is None else value.decode("utf-8"))
            invalid.append(False)
        except UnicodeDecodeError:
            texts.append(None)
            invalid.append(True)
    return pa.array(texts, pa.string()), pa.array(invalid)


def caption_text(column: pa.Array) -> tuple[pa.Array, dict[str, pa.Array]]:
    """(caption as valid text or null, the caption checks' masks) for one batch column."""
    kind = column.type
    no = pa.array([False] * len(column))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            column.validate(full=True)  # parquet readers do not check UTF-8
            text, invalid = pc.cast(column, pa.string()), no
        except pa.ArrowInvalid:
            text, invalid = _decode(column)
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        text, invalid = _decode(column)
    elif pa.types.is_null(kind):
        text, invalid = pa.nulls(len(column), pa.string()), no
    else:
        checks = {
            "missing_caption": column.is_null(),
            "caption_not_text": column.is_valid(),
            "invalid_utf8": no,
        }
        return pa.nulls(len(column), pa.string()), checks
    blank = pc.or_kleene(text.is_null(), pc.equal(pc.utf8_trim_whitespace(text), ""))
    # The webdataset reader decodes bad bytes to U+FFFD, which valid alt-text never contains.
    replaced = pc.fill_null(pc.match_substring(text, "\ufffd"), False)
    checks = {
        "missing_caption": pc.and_(blank, pc.invert(invalid)),
        "caption_not_text": no,
        "invalid_utf8": pc.or_(invalid, replaced),
    }
    bad = pc.or_(checks["missing_caption"], checks["invalid_utf8"])
    return pc.if_else(bad, pa.scalar(None, pa.string()), text), checks


def size_values(column: pa.Array) -> tuple[pa.Array, dict[str, pa.Array]]:
    """(size in px as int64 or null, the size checks' masks) for one batch column."""
    kind = column.type
    missing = column.is_null()
    if pa.types.is_integer(kind):
        values = pc.cast(column, pa.int64())
        numeric = column.is_valid()
    elif pa.types.is_floating(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        parsed = [_whole_number(v) for v in column.to_pylist()]
        values = pa.array(parsed, pa.int64())
        numeric = values.is_valid()
    else:
        values = pa.nulls(len(column), pa.int64())
        numeric = pa.array([False] * len(column))
    checks = {
        "missing_size": missing,
        "size_not_numeric": pc.invert(numeric),
        "size_not_positive": pc.fill_null(pc.less_equal(values, 0), False),
    }
    return values, checks


def _whole_number(value: float | str | None) -> int | None:
    """640, 640.0 and " 640 " are sizes; 640.5, "NaN", "big" and None are not."""
    if isinstance(value, str):
        value = value.strip()
        if not value.lstrip("+-").isdigit():
            return None
        return int(value)
    if value is None or not math.isfinite(value) or value != int(value):
        return None
    return int(value)


def _image_bytes(column: pa.Array) -> tuple[pa.Array, dict[int, bytes]]:
    """(B,) bool: the row carries image bytes; and those bytes by row, for those rows only."""
    kind = column.type
    if pa.types.is_null(kind):
        return pa.array([False] * len(column)), {}
    problem = image_type_problem(kind)  # the readers refuse these first, naming the file
    if problem:
        raise InputError(problem)
    if not (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
        column = pc.cast(column, pa.large_binary())  # text or a view: its bytes, as stored
    has = pc.fill_null(pc.greater(pc.binary_length(column), 0), False)
    rows = np.flatnonzero(has.to_numpy(zero_copy_only=False))
    return has, dict(zip(rows.tolist(), column.take(rows).to_pylist(), strict=True))


def normalize_captions(captions: pa.Array) -> pa.Array:
    """Lowercase and collapse every run of (Unicode) whitespace to one space, trimmed."""
    return pc.utf8_lower(collapse_whitespace(captions))


def row_features(batch: pa.RecordBatch, first_row_id: int, context: RowContext) -> pa.RecordBatch:
    """One pair-schema batch (B rows) -> B features rows (`FEATURES_SCHEMA`)."""
    count = batch.num_rows
    keys = as_text(batch.column("key"))  # a number, a list: as text, as the output writes it
    missing_key = pc.or_kleene(keys.is_null(), pc.equal(keys, ""))
    caption, caption_checks = caption_text(batch.column("caption"))
    width, width_checks = size_values(batch.column("width"))
    height, height_checks = size_values(batch.column("height"))
    status = batch.column(STATUS_COLUMN) if STATUS_COLUMN in batch.schema.names else None
    failed = (
        pc.not_equal(as_text(status), STATUS_OK)
        if status is not None and not pa.types.is_null(status.type)
        else pa.array([False] * count)
    )
    # Arrow code per check; which one a row reports follows the records' order.
    malformed = first_reason(
        {
            "download_failed": failed,
            "missing_key": missing_key,
            **caption_checks,
            **{name: pc.or_(width_checks[name], height_checks[name]) for name in width_checks},
            "caption_control_characters": pc.match_substring_regex(caption, CONTROL_CHARACTERS),
        }
    )

    has_image, images = _image_bytes(batch.column("image"))
    digests: list[str | None] = [None] * count
    for i, data in images.items():
        digests[i] = sha256_hex(data)
    digest = pa.array(digests, pa.string())
    urls = batch.column("url")
    urls = urls if pa.types.is_string(urls.type) else pa.nulls(count, pa.string())
    urls = pc.if_else(pc.equal(urls, ""), pa.scalar(None, pa.string()), urls)
    # The image identity: bytes when the row has them, else the URL, else the row's own key.
    identity = pc.coalesce(
        pc.binary_join_element_wise("sha256:", digest, ""),
        pc.binary_join_element_wise("url:", urls, ""),
        pc.binary_join_element_wise("key:", pc.fill_null(keys, "None"), ""),
    )

    near = pa.array([False] * count)
    eval_set = context.eval_set
    if eval_set:
        url_list = urls.to_pylist()
        sizes_ok = zip(width.to_pylist(), height.to_pylist(), strict=True)
        # Images the size filters drop anyway are never decoded.
        hashed = [
            phash_bytes(images[i])
            if i in images and w and h and w > 0 and h > 0 and passes_size(w, h, context.image)
            else None
            for i, (w, h) in enumerate(sizes_ok)
        ]
        flags = eval_set.near(hashed, digests, context.image.eval_radius).tolist()
        near = pa.array(
            [
                n or (d is None and u in eval_set.urls)
                for n, d, u in zip(flags, digests, url_list, strict=True)
            ]
        )

    # ICU for the captions the engines' regular expression cannot segment, and only those.
    routed = pc.fill_null(pc.match_substring_regex(caption, ENGINE_NEEDS_DICTIONARY_PATTERN), False)
    words: list[list[str] | None] = [None] * count
    routed_rows = np.flatnonzero(routed.to_numpy(zero_copy_only=False))
    segmented: dict[str, list[str]] = {}  # alt-text repeats a lot: segment each text once
    for i, text in zip(routed_rows, caption.take(routed_rows).to_pylist(), strict=True):
        found = segmented.get(text)
        words[i] = found if found is not None else segmented.setdefault(text, icu_unigrams(text))
    dictionary_words = pa.array(words, pa.list_(pa.string()))

    columns = {
        "row_id": pa.array(range(first_row_id, first_row_id + count), pa.int64()),
        "key": keys,
        "caption": caption,
        "caption_norm": normalize_captions(caption),
        "malformed": malformed,
        "width": width,
        "height": height,
        "identity": identity,
        "near_eval": near,
        "dictionary_words": dictionary_words,
        "has_image": has_image,
    }
    return pa.RecordBatch.from_pydict(columns, schema=FEATURES_SCHEMA)


@dataclass
class PrepassResult:
    rows: int  # input rows read
    rows_with_image: int  # rows that carry image bytes
    files: list[Path]  # features shards written, in row_id order
    file_rows: list[int]  # rows in each of those files
    extra_fields: dict[str, pa.DataType]  # columns beyond the pair schema, across all inputs


def _features_file(
    task: tuple[list[pa.RecordBatch], int, Path], context: RowContext
) -> tuple[int, int]:
    """Features of consecutive input batches -> one parquet file. Returns (rows, with image)."""
    batches, row_id, path = task
    features = []
    for batch in batches:
        features.append(row_features(batch, row_id, context))
        row_id += batch.num_rows
    table = pa.Table.from_batches(features, schema=FEATURES_SCHEMA)
    pq.write_table(table, path)
    return table.num_rows, pc.sum(table.column("has_image")).as_py() or 0


def _chunks(
    batches: Iterable[pa.RecordBatch],
    extras: dict[str, pa.DataType],
    chunk_rows: int,
    chunk_bytes: int,
) -> Iterator[list[pa.RecordBatch]]:
    """Consecutive batches, grouped up to chunk_rows rows or chunk_bytes bytes, pair columns
    only; records every extra column's type in `extras` on the way."""
    chunk: list[pa.RecordBatch] = []
    rows = size = 0
    for batch in batches:
        for field in batch.schema:
            if field.name not in PAIR_COLUMNS:
                # Inputs that disagree on an extra column's type get it as text.
                known = extras.setdefault(field.name, field.type)
                if known != field.type and not pa.types.is_null(field.type):
                    extras[field.name] = field.type if pa.types.is_null(known) else pa.string()
        batch = batch.select(list(PAIR_COLUMNS)).append_column(
            STATUS_COLUMN,
            batch.column(STATUS_COLUMN)
            if STATUS_COLUMN in batch.schema.names
            else pa.nulls(batch.num_rows, pa.string()),
        )
        chunk.append(batch)
        rows, size = rows + batch.num_rows, size + batch.nbytes
        if rows >= chunk_rows or size >= chunk_bytes:
            yield chunk
            chunk, rows, size = [], 0, 0
    if chunk:
        yield chunk


MAX_CHUNK_ROWS = 262_144  # rows per features file at most: a worker's memory
MIN_CHUNK_ROWS = 16_384  # at least: a file's fixed cost stays small beside its rows


def chunk_rows_for(total_rows: int | None, workers: int) -> int:
    """Rows per features file: about four files per worker, so the row-wise passes (this one
    and language ID, one task per file) end with every core busy rather than one finishing
    the last large file alone. MAX_CHUNK_ROWS when the total is unknown (webdataset input)."""
    if total_rows is None or workers <= 1:
        return MAX_CHUNK_ROWS
    return max(MIN_CHUNK_ROWS, min(MAX_CHUNK_ROWS, -(-total_rows // (4 * workers))))


def write_features(
    batches: Iterable[pa.RecordBatch],
    out_dir: Path,
    context: RowContext,
    workers: int = 1,
    chunk_rows: int = MAX_CHUNK_ROWS,
    chunk_bytes: int = 128 << 20,
    on_batch: Callable[[int], None] | None = None,
) -> PrepassResult:
    """Stream input batches -> `out_dir/features-*.parquet`, one file per chunk of input.

    With workers > 1, chunks are processed by that many forked processes while this one reads
    ahead; at most two chunks per worker are in flight, so memory stays bounded.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    extras: dict[str, pa.DataType] = {}
    files: list[Path] = []

    def tasks() -> Iterator[tuple[list[pa.RecordBatch], int, Path]]:
        first_row_id = 0
        for chunk in _chunks(batches, extras, chunk_rows, chunk_bytes):
            files.append(out_dir / f"features-{len(files):05d}.parquet")
            yield chunk, first_row_id, files[-1]
            first_row_id += sum(batch.num_rows for batch in chunk)

    # Forked workers inherit the context (the evaluation set's hashes) in place.
    file_rows, with_image = [], 0
    for rows, images in forked_map(_features_file, tasks(), context, workers):
        file_rows.append(rows)
        with_image += images
        if on_batch is not None:
            on_batch(rows)
    if not files:  # no input rows: one empty file so the engines see the schema
        files.append(out_dir / "features-00000.parquet")
        file_rows.append(0)
        pq.write_table(FEATURES_SCHEMA.empty_table(), files[-1])
    return PrepassResult(
        rows=sum(file_rows),
        rows_with_image=with_image,
        files=files,
        file_rows=file_rows,
        extra_fields=extras,
    )
