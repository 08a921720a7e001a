"""The row-wise pre-pass: what can only be computed one row at a time, done once, in Arrow.

It reads pair-schema batches and writes one features row per input row (`FEATURES_SCHEMA`):
the first malformed-row reason the row has (all but `duplicate_key`, which needs the engine),
validated caption and sizes, the normalized caption, the image identity, the near-duplicate
flag, ICU unigrams for captions that need the dictionary path, and the language label.
Everything across rows (counts, joins, the vocabulary) is left to the SQL engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data.filters import ImageFilterConfig, passes_size
from data.image_hash import EvalSet, phash_bytes, sha256_hex
from data.pairs import PAIR_COLUMNS
from data.segment import ENGINE_NEEDS_DICTIONARY_PATTERN, icu_unigrams

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
        ("language", pa.string()),  # ISO code from language ID, "und" when none
        ("language_score", pa.float32()),
        ("has_image", pa.bool_()),  # the row carries image bytes
    ]
)
_WHITESPACE = r"[\s\x{0B}\x{1C}-\x{1F}\x{85}\p{Z}]+"  # what Python str.isspace() calls space


@dataclass
class RowContext:
    """What the pre-pass needs besides the rows."""

    image: ImageFilterConfig
    eval_set: EvalSet | None = None  # None or empty: no near-duplicate check
    identify: Callable[[list[str]], tuple[list[str], list[float]]] | None = None  # language ID


def _reason(mask: pa.Array, name: str) -> pa.Array:
    """A string array: `name` where mask is true, null elsewhere (null mask counts as false)."""
    return pc.if_else(pc.fill_null(mask, False), pa.scalar(name), pa.scalar(None, pa.string()))


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


def caption_text(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(caption as valid text or null, first caption reason or null) for one batch column."""
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
        not_text = column.is_valid()
        reasons = pc.coalesce(
            _reason(column.is_null(), "missing_caption"), _reason(not_text, "caption_not_text")
        )
        return pa.nulls(len(column), pa.string()), reasons
    blank = pc.or_kleene(text.is_null(), pc.equal(pc.utf8_trim_whitespace(text), ""))
    blank = pc.and_(blank, pc.invert(invalid))
    # The webdataset reader decodes bad bytes to U+FFFD, which valid alt-text never contains.
    replaced = pc.fill_null(pc.match_substring(text, "\ufffd"), False)
    reasons = pc.coalesce(
        _reason(blank, "missing_caption"), _reason(pc.or_(invalid, replaced), "invalid_utf8")
    )
    return pc.if_else(reasons.is_null(), text, pa.scalar(None, pa.string())), reasons


def size_values(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(size in px as int64 or null, first size reason or null) for one batch column."""
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
    reasons = pc.coalesce(
        _reason(missing, "missing_size"),
        _reason(pc.invert(numeric), "size_not_numeric"),
        _reason(pc.less_equal(values, 0), "size_not_positive"),
    )
    return values, reasons


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


def normalize_captions(captions: pa.Array) -> pa.Array:
    """Lowercase and collapse every run of (Unicode) whitespace to one space, trimmed."""
    collapsed = pc.replace_substring_regex(pc.utf8_lower(captions), _WHITESPACE, " ")
    return pc.utf8_trim_whitespace(collapsed)


def row_features(batch: pa.RecordBatch, first_row_id: int, context: RowContext) -> pa.RecordBatch:
    """One pair-schema batch (B rows) -> B features rows (`FEATURES_SCHEMA`)."""
    count = batch.num_rows
    keys = batch.column("key")
    keys = keys if pa.types.is_string(keys.type) else pc.cast(keys, pa.string())
    missing_key = pc.or_kleene(keys.is_null(), pc.equal(keys, ""))
    caption, caption_reason = caption_text(batch.column("caption"))
    width, width_reason = size_values(batch.column("width"))
    height, height_reason = size_values(batch.column("height"))
    malformed = pc.coalesce(
        _reason(missing_key, "missing_key"), caption_reason, width_reason, height_reason
    )

    images = batch.column("image").to_pylist()
    digests = [sha256_hex(image) if image else None for image in images]
    urls = batch.column("url")
    urls = urls.to_pylist() if pa.types.is_string(urls.type) else [None] * count
    key_list = keys.to_pylist()
    identity = [
        f"sha256:{d}" if d else (f"url:{u}" if u else f"key:{k}")
        for d, u, k in zip(digests, urls, key_list, strict=True)
    ]

    near = [False] * count
    eval_set = context.eval_set
    if eval_set:
        sizes_ok = zip(width.to_pylist(), height.to_pylist(), strict=True)
        # Images the size filters drop anyway are never decoded.
        hashed = [
            phash_bytes(image)
            if image and w and h and w > 0 and h > 0 and passes_size(w, h, context.image)
            else None
            for image, (w, h) in zip(images, sizes_ok, strict=True)
        ]
        near = eval_set.near(hashed, digests, context.image.eval_radius).tolist()
        near = [
            n or (d is None and u in eval_set.urls)
            for n, d, u in zip(near, digests, urls, strict=True)
        ]

    routed = pc.fill_null(pc.match_substring_regex(caption, ENGINE_NEEDS_DICTIONARY_PATTERN), False)
    texts = caption.to_pylist()
    dictionary_words = pa.array(
        [icu_unigrams(t) if r else None for t, r in zip(texts, routed.to_pylist(), strict=True)],
        pa.list_(pa.string()),
    )

    if context.identify is not None:
        valid = [i for i, t in enumerate(texts) if t is not None]
        labels, scores = context.identify([texts[i] for i in valid])
        language, language_score = ["und"] * count, [0.0] * count
        for i, label, score in zip(valid, labels, scores, strict=True):
            language[i], language_score[i] = label, score
    else:
        language, language_score = ["und"] * count, [0.0] * count

    columns = {
        "row_id": pa.array(range(first_row_id, first_row_id + count), pa.int64()),
        "key": keys,
        "caption": caption,
        "caption_norm": normalize_captions(caption),
        "malformed": malformed,
        "width": width,
        "height": height,
        "identity": pa.array(identity, pa.string()),
        "near_eval": pa.array(near, pa.bool_()),
        "dictionary_words": dictionary_words,
        "language": pa.array(language, pa.string()),
        "language_score": pa.array(language_score, pa.float32()),
        "has_image": pa.array([bool(image) for image in images]),
    }
    return pa.RecordBatch.from_pydict(columns, schema=FEATURES_SCHEMA)


@dataclass
class PrepassResult:
    rows: int  # input rows read
    rows_with_image: int  # rows that carry image bytes
    files: list[Path]  # features shards written
    extra_fields: dict[str, pa.DataType]  # columns beyond the pair schema, across all inputs


def write_features(
    batches: Iterable[pa.RecordBatch],
    out_dir: Path,
    context: RowContext,
    file_rows: int = 1_000_000,
    on_batch: Callable[[int], None] | None = None,
) -> PrepassResult:
    """Stream input batches -> `out_dir/features-*.parquet`, `file_rows` rows per file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = with_image = 0
    files: list[Path] = []
    extras: dict[str, pa.DataType] = {}
    writer: pq.ParquetWriter | None = None
    writer_rows = 0
    for batch in batches:
        for field in batch.schema:
            if field.name not in PAIR_COLUMNS:
                # Inputs that disagree on an extra column's type get it as text.
                known = extras.setdefault(field.name, field.type)
                if known != field.type and not pa.types.is_null(field.type):
                    extras[field.name] = field.type if pa.types.is_null(known) else pa.string()
        features = row_features(batch, rows, context)
        if writer is None or writer_rows >= file_rows:
            if writer is not None:
                writer.close()
            files.append(out_dir / f"features-{len(files):05d}.parquet")
            writer, writer_rows = pq.ParquetWriter(files[-1], FEATURES_SCHEMA), 0
        writer.write_batch(features)
        writer_rows += features.num_rows
        rows += features.num_rows
        with_image += pc.sum(features.column("has_image")).as_py() or 0
        if on_batch is not None:
            on_batch(features.num_rows)
    if writer is None:  # no input rows: one empty file so the engines see the schema
        files.append(out_dir / "features-00000.parquet")
        pq.write_table(FEATURES_SCHEMA.empty_table(), files[-1])
    else:
        writer.close()
    return PrepassResult(rows=rows, rows_with_image=with_image, files=files, extra_fields=extras)
