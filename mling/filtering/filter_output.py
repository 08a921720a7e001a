"""Join the engine's decisions back onto the input rows: kept and rejected pairs.

The decisions come out of the engine ordered by row_id, and the input is read again in the
same order, so the two streams zip together without a join; every row's `row_id` is checked.

Both carry `width` and `height` as the filter read them (`prepass.size_values`: `"640"` and
`640.0` are 640, anything not a whole number is null). Rejected rows also keep each size as
found, as text (`width_found`: `"640.5"`, `"big"`, `"NaN"`), so a reader sees why a row was
dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mling.common.errors import InputError
from mling.filtering.prepass import size_values
from mling.pairs.schema import PAIR_SCHEMA

DECISION_COLUMNS = ["row_id", "reason", "language", "language_score"]
SIZES = ("width", "height")
# Rejected rows only: each size as found in the input, as text; null where it was absent.
FOUND_FIELDS = {f"{name}_found": pa.string() for name in SIZES}


class DecisionCursor:
    """Hands out the next n decisions from parquet files already in row_id order."""

    def __init__(self, files: list[Path], columns: list[str] = DECISION_COLUMNS):
        self._batches = (
            batch
            for path in files
            for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536, columns=columns)
        )
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    def take(self, count: int) -> pa.Table:
        while self._pending_rows < count:
            batch = next(self._batches, None)
            if batch is None:
                raise InputError(
                    "the input has more rows than when it was first read: it changed while "
                    "filtering; rerun once it is complete"
                )
            self._pending.append(batch)
            self._pending_rows += batch.num_rows
        table = pa.Table.from_batches(self._pending)
        head, rest = table.slice(0, count), table.slice(count)
        self._pending = rest.to_batches()
        self._pending_rows = rest.num_rows
        return head


def labelled_batches(
    batches: Iterable[pa.RecordBatch], decision_files: list[Path]
) -> Iterator[pa.Table]:
    """Input batches with `reason`, `language` and `language_score` columns appended."""
    cursor = DecisionCursor(decision_files)
    row_id = 0
    for batch in batches:
        decisions = cursor.take(batch.num_rows)
        expected = pa.array(range(row_id, row_id + batch.num_rows), pa.int64())
        if not decisions.column("row_id").combine_chunks().equals(expected):
            raise InputError(
                "the input's rows are not those first read: it changed while filtering; rerun "
                "once it is complete"
            )
        row_id += batch.num_rows
        table = pa.Table.from_batches([batch])
        for name in ("reason", "language", "language_score"):
            if name in table.column_names:
                table = table.drop_columns([name])
            table = table.append_column(name, decisions.column(name))
        yield table


def _cast_column(values: pa.ChunkedArray, target: pa.DataType) -> pa.Array:
    """Cast one pair column; values no cast can carry (bad UTF-8, "big" as a width) become
    readable strings or nulls, so rejected rows of any shape can be written side by side."""
    values = values.combine_chunks()
    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    out = []
    for value in values.to_pylist():
        if isinstance(value, bytes) and target == pa.string():
            value = value.decode("utf-8", errors="replace")
        try:
            out.append(pa.scalar(value, target).as_py() if value is not None else None)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            out.append(str(value) if target == pa.string() else None)
    return pa.array(out, target)


def _found(values: pa.ChunkedArray) -> pa.Array:
    """Values as found, as text: 640, 640.5, "big", " 640 " -> "640", "640.5", "big", " 640 "."""
    return pa.array(
        [v if v is None or isinstance(v, str) else str(v) for v in values.to_pylist()], pa.string()
    )


def as_pair_schema(
    table: pa.Table, extras: dict[str, pa.DataType], as_found: bool = False
) -> pa.Table:
    """Pair columns cast to `PAIR_SCHEMA` types (the sizes as the filter read them), then, with
    `as_found`, the sizes as found (FOUND_FIELDS), then `extras` (absent ones as nulls), so
    every shard has one schema whatever each input file had."""
    found = FOUND_FIELDS if as_found else {}
    fields = [*PAIR_SCHEMA, *(pa.field(name, kind) for name, kind in {**found, **extras}.items())]
    columns = {}
    for field in fields:
        source = field.name.removesuffix("_found") if field.name in found else field.name
        if source not in table.column_names:
            columns[field.name] = pa.nulls(table.num_rows, field.type)
        elif field.name in found:
            columns[field.name] = _found(table.column(source))
        elif field.name in SIZES:
            columns[field.name] = size_values(table.column(source).combine_chunks())[0]
        else:
            columns[field.name] = _cast_column(table.column(source), field.type)
    return pa.table(columns)


def split_kept(
    tables: Iterable[pa.Table], kept: bool, extras: dict[str, pa.DataType]
) -> Iterator[pa.RecordBatch]:
    """The kept rows, or the rejected rows (with their sizes as found, FOUND_FIELDS), in the
    pair schema plus `extras`."""
    for table in tables:
        mask = pc.is_null(table.column("reason")) if kept else pc.is_valid(table.column("reason"))
        chosen = table.filter(mask)
        if chosen.num_rows:
            yield from as_pair_schema(chosen, extras, as_found=not kept).to_batches()
