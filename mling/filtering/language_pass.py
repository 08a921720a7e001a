"""Language ID after the decisions: every kept row, and a seeded sample of each reason's dropped rows.

Training and the vocabulary builder read the kept rows' `language` and `language_score`, so
every kept row is labelled. The report's per-language figures of the dropped rows come from a
sample (`mling/filtering/language_estimate.py`): of each reason's dropped rows, the `per_reason`
whose seeded hash of the row id is smallest, a simple random sample that does not depend on the
engine, the workers or the order of the input files; a reason with fewer rows is labelled whole.
`per_reason=None` labels every row (exact figures).

The decisions (in row_id order) are zipped with the pre-pass's features files (same order, the
caption already validated), so the input is not read again; each features file is one task for
the forked workers, which write the labelled decisions the output stage reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mling.common.language_id import UNDETERMINED
from mling.common.processes import forked_map
from mling.filtering.filter_output import DecisionCursor
from mling.filtering.reasons import KEPT, filter_names

Identify = Callable[[list[str]], tuple[list[str], list[float]]]
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


def _label_chunk(
    task: tuple[Path, pa.Table, Path], identify: Identify | None
) -> list[dict[str, Any]]:
    """Label one features file's rows where `label` is set; write the labelled decisions to
    `out_path`; return the labelled rows grouped by (reason, language) with filter sums."""
    features_path, decisions, out_path = task
    label = decisions.column("label").combine_chunks()
    language = pc.if_else(label, pa.scalar(UNDETERMINED), pa.scalar(None, pa.string()))
    score = pc.if_else(label, pa.scalar(0.0, pa.float32()), pa.scalar(None, pa.float32()))
    if identify is not None and pc.any(label).as_py():
        features = pq.read_table(features_path, columns=["row_id", "caption"])
        if not features.column("row_id").equals(decisions.column("row_id")):
            raise RuntimeError("filter: features and decisions out of step")
        captions = features.column("caption").combine_chunks()
        chosen = pc.and_(label, captions.is_valid())  # no valid caption: `und`, as set above
        found, found_scores = identify(captions.filter(chosen).to_pylist())
        language = pc.replace_with_mask(language, chosen, pa.array(found, pa.string()))
        score = pc.replace_with_mask(score, chosen, pa.array(found_scores, pa.float32()))
    labelled = pa.table(
        {
            "row_id": decisions.column("row_id"),
            "reason": decisions.column("reason"),
            "language": language,
            "language_score": score,
        },
        schema=LABELLED_SCHEMA,
    )
    pq.write_table(labelled, out_path)
    filters = filter_names()
    rows = decisions.select(["reason", *filters]).append_column("language", language)
    rows = rows.filter(label)
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
    identify: Identify | None,
    sample: LanguageSample,
    workers: int = 1,
) -> LabelledRows:
    """Label every kept row and the sampled dropped rows -> `out_dir/labelled-*.parquet`
    (`LABELLED_SCHEMA`, one file per features file, row_id order). Without `identify` every
    row is `und`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    thresholds = sample_thresholds(decision_files, sample) if identify is not None else {}
    result = LabelledRows(files=[])

    def tasks() -> Iterator[tuple[Path, pa.Table, Path]]:
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
            result.files.append(out_dir / f"labelled-{len(result.files):05d}.parquet")
            yield features_path, decisions.append_column("label", pa.array(label)), result.files[-1]

    for groups in forked_map(_label_chunk, tasks(), identify, workers if identify else 1):
        result.add(groups)
    return result
