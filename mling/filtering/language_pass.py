"""Language ID after the decisions: every kept row, and a seeded sample of each reason's dropped rows.

Training and the vocabulary builder read the kept rows' `language` and `language_score`, so
every kept row is labelled. The report's per-language figures of the dropped rows come from a
sample (`mling/filtering/language_estimate.py`): of each reason's dropped rows, the `per_reason`
whose seeded hash of the row id is smallest, a simple random sample that does not depend on the
engine, the workers or the order of the input files; a reason with fewer rows is labelled whole.
`per_reason=None` labels every row (exact figures).

The decisions (in row_id order) are zipped with the pre-pass's features files (same order, the
caption already validated), so the input is not read again. This process reads each features
file's chosen captions as the model's lines (`LanguageIdentifier.arrow_lines`), keeps the
distinct ones it has not labelled yet, and splits them evenly over the forked workers, which only
run the model; it then writes the labelled decisions the output stage reads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mling.common.language_id import CACHE_LINES, UNDETERMINED, LanguageIdentifier
from mling.common.processes import forked_map
from mling.filtering.filter_output import DecisionCursor
from mling.filtering.reasons import KEPT, filter_names

ALL_KEYS = (1 << 64) - 1  # a threshold every key is under: the whole reason is labelled
LABELLED_SCHEMA = pa.schema(
    [
        ("row_id", pa.int64()),
        ("reason", pa.string()),  # null: kept
        ("language", pa.string()),  # null: a dropped row outside the sample
        ("language_score", pa.float32()),
    ]
)


@dataclass(frozen=True)
class LanguageSample:
    per_reason: int | None = 10_000  # dropped rows labelled per reason; None: every row
    seed: int = 0  # of the row-id hash that picks them


def row_keys(row_ids: np.ndarray, seed: int) -> np.ndarray:
    """(N,) uint64 pseudo-random keys of row ids (splitmix64): distinct for distinct ids, the
    same on every run with the same seed."""
    gamma = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        x = (row_ids.astype(np.uint64) + np.uint64(1)) * gamma
        x += np.uint64((seed * 0xD1B54A32D192ED03) % (1 << 64))
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _reason_codes(reasons: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """(N,) int codes into the returned names, -1 for kept (null)."""
    if isinstance(reasons, pa.ChunkedArray):
        reasons = reasons.combine_chunks()
    encoded = pc.dictionary_encode(reasons)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    return codes, encoded.dictionary.to_pylist()


def sample_thresholds(decision_files: list[Path], sample: LanguageSample) -> dict[str, int]:
    """reason -> the largest key in its sample: a dropped row is labelled when its key is at most
    its reason's threshold. One streaming pass over the decisions, memory per reason bounded."""
    n = sample.per_reason
    if n is None:
        return {}
    candidates: dict[str, list[np.ndarray]] = {}  # reason -> keys, trimmed to the n smallest
    seen: dict[str, int] = {}  # reason -> rows
    for path in decision_files:
        for batch in pq.ParquetFile(path).iter_batches(
            batch_size=1 << 20, columns=["row_id", "reason"]
        ):
            keys = row_keys(batch.column("row_id").to_numpy(), sample.seed)
            codes, names = _reason_codes(batch.column("reason"))
            for code, name in enumerate(names):
                found = candidates.setdefault(name, [])
                found.append(keys[codes == code])
                seen[name] = seen.get(name, 0) + len(found[-1])
                if sum(map(len, found)) > 4 * n:
                    found[:] = [np.partition(np.concatenate(found), n - 1)[:n]]
    thresholds = {}
    for name, found in candidates.items():
        if seen[name] <= n:
            thresholds[name] = ALL_KEYS
        else:
            thresholds[name] = int(np.partition(np.concatenate(found), n - 1)[n - 1])
    return thresholds


@dataclass
class LabelledRows:
    files: list[Path]  # LABELLED_SCHEMA, row_id order
    # (reason or "kept", language) -> {"rows": labelled rows, filter: rows of them failing it}
    groups: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    def add(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            entry = self.groups.setdefault((row["reason"], row["language"]), {})
            for name, value in row.items():
                if name not in ("reason", "language"):
                    entry[name] = entry.get(name, 0) + int(value or 0)


@dataclass
class _File:
    """One features file between its new lines' departure to the workers and their labels'
    return: (N,) = the file's rows, (D,) = the distinct lines of its chosen rows."""

    decisions: pa.Table  # (N,) row_id, reason, the filters
    label: np.ndarray  # (N,) bool: kept, or in its reason's sample
    chosen: pa.Array  # (N,) bool: labelled by the model (`label` and a caption)
    indices: pa.Array  # (chosen rows,) int32 into the distinct lines
    lines: pa.Array  # (D,) string
    new: pa.Array  # (D,) bool: not labelled before, so sent to the workers
    known: tuple[pa.Array, pa.Array]  # (D,) language, score of the lines labelled before
    pieces: int  # the new lines' pieces, one per worker
    out_path: Path
    labels: list[tuple[list[str], list[float]]] = field(default_factory=list)  # per piece

    def new_labels(self) -> tuple[pa.Array, pa.Array]:
        """(new lines,) language, score: the workers' answers, in line order."""
        languages = [language for piece in self.labels for language in piece[0]]
        scores = [score for piece in self.labels for score in piece[1]]
        return pa.array(languages, pa.string()), pa.array(scores, pa.float32())

    def table(self, languages: pa.Array, scores: pa.Array) -> pa.Table:
        """LABELLED_SCHEMA for the file's rows, from the (D,) lines' labels: the model's where
        chosen, `und` (score 0) where labelled without a caption, null elsewhere."""
        label = pa.array(self.label)
        language = pc.if_else(label, pa.scalar(UNDETERMINED), pa.scalar(None, pa.string()))
        score = pc.if_else(label, pa.scalar(0.0, pa.float32()), pa.scalar(None, pa.float32()))
        if len(self.lines):
            language = pc.replace_with_mask(language, self.chosen, languages.take(self.indices))
            score = pc.replace_with_mask(score, self.chosen, scores.take(self.indices))
        return pa.table(
            {
                "row_id": self.decisions.column("row_id"),
                "reason": self.decisions.column("reason"),
                "language": language,
                "language_score": score,
            },
            schema=LABELLED_SCHEMA,
        )


def _predict_piece(lines: pa.Array, identifier: LanguageIdentifier | None) -> tuple[list, list]:
    return identifier.predict_lines(lines.to_pylist()) if len(lines) else ([], [])


def _groups(decisions: pa.Table, label: np.ndarray, language: pa.Array) -> list[dict[str, Any]]:
    """The labelled rows grouped by (reason or "kept", language), with each filter's sum."""
    filters = filter_names()
    rows = decisions.select(["reason", *filters]).append_column("language", language)
    rows = rows.filter(pa.array(label))
    rows = rows.set_column(0, "reason", pc.fill_null(rows.column("reason"), KEPT))
    aggregates = [("reason", "count")] + [(name, "sum") for name in filters]
    grouped = rows.group_by(["reason", "language"]).aggregate(aggregates)
    renames = {"reason_count": "rows", **{f"{name}_sum": name for name in filters}}
    return [
        {renames.get(name, name): value for name, value in row.items()}
        for row in grouped.to_pylist()
    ]


def label_rows(
    decision_files: list[Path],
    features_files: list[Path],
    file_rows: list[int],
    out_dir: Path,
    identifier: LanguageIdentifier | None,
    sample: LanguageSample,
    workers: int = 1,
) -> LabelledRows:
    """Label every kept row and the sampled dropped rows -> `out_dir/labelled-*.parquet`
    (`LABELLED_SCHEMA`, one file per features file, row_id order). Without an `identifier`
    every row is `und`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    thresholds = sample_thresholds(decision_files, sample) if identifier is not None else {}
    result = LabelledRows(files=[])
    # Each distinct line is labelled once (within a file, and across files while this process
    # remembers it), and a file's new lines are split evenly over the workers: every worker
    # has the same work, which a file per worker would not give. Lines stay Arrow arrays here:
    # this process's share of the stage is what keeps the workers from using every core.
    seen = [pa.array([], pa.string()), pa.array([], pa.string()), pa.array([], pa.float32())]
    waiting: deque[_File] = deque()

    def pieces() -> Iterator[pa.Array]:
        cursor = DecisionCursor(decision_files, ["row_id", "reason", *filter_names()])
        for features_path, count in zip(features_files, file_rows, strict=True):
            if count == 0:
                continue
            decisions = cursor.take(count).combine_chunks()
            label = np.ones(count, dtype=bool)
            if thresholds:
                codes, names = _reason_codes(decisions.column("reason"))
                limits = np.array([thresholds[name] for name in names] + [ALL_KEYS], np.uint64)
                keys = row_keys(decisions.column("row_id").to_numpy(), sample.seed)
                label = keys <= limits[codes]  # code -1 (kept) takes the last: ALL_KEYS
            out_path = out_dir / f"labelled-{len(result.files):05d}.parquet"
            result.files.append(out_path)
            chosen, indices, lines = pa.array(label), pa.array([], pa.int32()), seen[0][:0]
            if identifier is not None and label.any():
                features = pq.read_table(features_path, columns=["row_id", "caption"])
                if not features.column("row_id").equals(decisions.column("row_id")):
                    raise RuntimeError("filter: features and decisions out of step")
                captions = features.column("caption").combine_chunks()
                chosen = pc.and_(chosen, captions.is_valid())  # no caption: `und`
                encoded = pc.dictionary_encode(identifier.arrow_lines(captions.filter(chosen)))
                indices, lines = encoded.indices, encoded.dictionary
            where = pc.index_in(lines, value_set=seen[0])  # null: a new line
            new = where.is_null()
            unknown = lines.filter(new)
            size = max(1, -(-len(unknown) // workers))
            parts = [unknown.slice(i, size) for i in range(0, len(unknown), size)] or [unknown]
            known = (seen[1].take(where), seen[2].take(where))
            waiting.append(
                _File(decisions, label, chosen, indices, lines, new, known, len(parts), out_path)
            )
            yield from parts

    def finish(file: _File) -> None:
        languages, scores = file.new_labels()
        if len(seen[0]) + len(languages) > CACHE_LINES:
            seen[:] = [array.slice(0, 0) for array in seen]
        new_lines = file.lines.filter(file.new)
        seen[:] = [
            pa.concat_arrays([old, added])
            for old, added in zip(seen, (new_lines, languages, scores), strict=True)
        ]
        table = file.table(
            pc.replace_with_mask(file.known[0], file.new, languages),
            pc.replace_with_mask(file.known[1], file.new, scores),
        )
        pq.write_table(table, file.out_path)
        result.add(_groups(file.decisions, file.label, table.column("language")))

    for labels in forked_map(_predict_piece, pieces(), identifier, workers if identifier else 1):
        waiting[0].labels.append(labels)
        if len(waiting[0].labels) == waiting[0].pieces:
            finish(waiting.popleft())
    return result
