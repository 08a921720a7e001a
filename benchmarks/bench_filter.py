"""Benchmark the filter: the pipeline against a pandas implementation of the same filters that
labels every row's language with the same model, on two corpora and two sizes; where the
pipeline's time goes, stage by stage; language ID on one core and on all; peak memory at scale.

    python -m benchmarks.bench_filter                  # both corpora, 300k and 1M rows, 3 runs: ~15 min
    python -m benchmarks.bench_filter --rows 100000 --repeats 1 --corpora real_text   # ~1 min
    python -m benchmarks.bench_filter --memory-rows 1000000 3000000 10000000   # adds peak memory

Corpora (`benchmarks/filter_corpora.py`): `real_text`, real sentences in the 112 languages
lid.176 knows (UDHR, and Multi30k's captions when ../shared is there) at about 60% kept, and
`synthetic`, made-up words in 11 languages at about 12% kept. Writes
bench-output/filter/bench_filter.{json,md}. Both implementations read the same parquet in the
same process, runs interleaved; each ratio compares the two on this machine at that moment, and
the 1-minute load average at each start is recorded beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mling.common.provenance import code_state
from mling.common.stages import StageRunner, python_module

# What the benchmark measures (mling/common/provenance.py; `benchmarks/update_docs.py --check`).
MEASURED_MODULES = (
    "mling/filtering/",
    "mling/common/language_id.py",
    "mling/common/processes.py",
    "mling/common/text.py",
)

# The pipeline's variants: without language ID (against pandas without it), and as by default
# (every kept row labelled, the dropped rows' languages estimated from a sample per reason;
# against pandas labelling every row).
VARIANTS = {"filters": ["--no-language-id"], "filters+lid": []}
# K per corpus: lowered on the synthetic words so that `rare_token` drops rows; the default
# (100M tokens) on real text, where no corpus this size has a rare token to drop.
VOCABULARY = {"synthetic": 20_000, "real_text": None}
# The report's stages, grouped as a user reads them; "outside" is the rest of the run.
STAGE_GROUPS = {
    "start": ("start",),
    "pre-pass": ("pre-pass",),
    "SQL": ("engine start", "aggregates"),  # and every stage of filter_sql.py
    "language ID": ("language ID",),
    "write": ("write kept", "write webdataset", "write rejected"),
    "report": ("report",),
}


def _filter_argv(inputs: list[Path], output: Path, vocabulary_size: int | None, *extra: str):
    argv = ["--input", *map(str, inputs), "--output", str(output)]
    argv += ["-K", str(vocabulary_size)] if vocabulary_size else []
    # every run writes the same folder: the benchmark's own
    return [*argv, "--quiet", "--overwrite", *extra]


def stage_seconds(report: dict) -> dict[str, float]:
    """The report's stages summed into STAGE_GROUPS; every stage not named there is SQL."""
    named = {stage: group for group, stages in STAGE_GROUPS.items() for stage in stages}
    out = dict.fromkeys(STAGE_GROUPS, 0.0)
    for entry in report["stages"]:
        out[named.get(entry["stage"], "SQL")] += entry["seconds"]
    return out


def pandas_with_language_id(inputs: list[Path], image, text) -> tuple[float, float, object]:
    """The pandas implementation, then its captions labelled one model call per row (as
    `Series.map` would, the same model and the same prefix as the pipeline's). Returns
    (seconds filtering, seconds labelling, a frame of key, reason, language)."""
    import pandas as pd

    from mling.common.language_id import LanguageIdentifier
    from tests.helpers.filter_oracle import filter_reasons

    start = time.perf_counter()
    reasons = filter_reasons(inputs, image, text)
    filtered = time.perf_counter()
    frame = pd.concat([pd.read_parquet(p, columns=["key", "caption"]) for p in inputs])
    predict = LanguageIdentifier().predict  # a fresh one: nothing remembered from the last run
    languages = frame["caption"].map(lambda caption: predict([caption])[0][0])
    labelled = time.perf_counter()
    frame = pd.DataFrame(
        {"key": frame["key"].to_numpy(), "reason": reasons.to_numpy(), "language": languages}
    )
    return filtered - start, labelled - filtered, frame


def language_id_per_core(captions: list[str], repeats: int = 3) -> dict[str, float]:
    """Rows per CPU-second of one process labelling `captions` (CPU time, so other jobs on the
    machine count against it less), and per wall-second alongside."""
    from mling.common.language_id import LanguageIdentifier

    cpu, wall = [], []
    for _ in range(repeats):
        identifier = LanguageIdentifier()  # a fresh one: nothing remembered from the last run
        identifier.predict(["a first call, not timed"])
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        identifier.predict(captions)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return {
        "rows_per_cpu_second": len(captions) / statistics.median(cpu),
        "rows_per_wall_second": len(captions) / statistics.median(wall),
    }


def language_id_prefix_agreement(lengths=(150, 250, 400), windows: int = 10) -> list[dict] | None:
    """How often lid.176 on the first MAX_CHARS characters gives the full text's label, on
    UDHR text (gflanguages, the dev extra) in the languages lid.176 labels right on the whole
    sample; `windows` random windows of each length per language. None without gflanguages."""
    try:
        import gflanguages
    except ImportError:
        return None
    import random

    from mling.common.language_id import MAX_CHARS, LanguageIdentifier

    full_text = LanguageIdentifier(max_chars=1 << 30)
    prefix = LanguageIdentifier()
    samples = []
    for code, language in sorted(gflanguages.LoadLanguages().items()):
        if language.HasField("sample_text"):
            sample = language.sample_text
            fields = (sample.specimen_16, sample.specimen_21, sample.tester, sample.specimen_32)
            samples.append((code.split("_")[0], " ".join(" ".join(f.split()) for f in fields)))
    labels, _ = full_text.predict([text for _, text in samples])
    known = [
        (code, text) for (code, text), label in zip(samples, labels, strict=True) if label == code
    ]
    rng = random.Random(0)
    rows = []
    for length in lengths:
        texts, truth = [], []
        for code, text in known:
            for _ in range(windows):
                start = rng.randrange(max(1, len(text) - length))
                texts.append(text[start : start + length])
                truth.append(code)
        whole, _ = full_text.predict(texts)
        first, _ = prefix.predict(texts)
        rows.append(
            {
                "languages": len(known),
                "text_chars": length,
                "prefix_chars": MAX_CHARS,
                "agreement": sum(a == b for a, b in zip(whole, first, strict=True)) / len(texts),
                "accuracy_full": sum(a == b for a, b in zip(whole, truth, strict=True))
                / len(texts),
                "accuracy_prefix": sum(a == b for a, b in zip(first, truth, strict=True))
                / len(texts),
            }
        )
    return rows


def peak_memory(args: list[str], logs: Path, name: str, interval: float = 0.05) -> tuple:
    """Run the filter with `args` as a stage (its output in LOGS/NAME.log); returns (seconds,
    peak memory of the process and all its children together (proportional set size: shared
    pages split among their sharers), peak RSS of the largest single process), both in MiB."""
    import psutil

    peaks = {"tree": 0, "single": 0}

    def sample(running: Mapping[str, subprocess.Popen]) -> None:
        for process in running.values():
            try:
                parent = psutil.Process(process.pid)
                members = [parent, *parent.children(recursive=True)]
                # PSS splits the pages forked workers share with their parent among them.
                peaks["tree"] = max(peaks["tree"], sum(m.memory_full_info().pss for m in members))
                peaks["single"] = max(peaks["single"], *(m.memory_info().rss for m in members))
            except psutil.Error:
                pass  # a worker ended between listing and reading it

    stages = StageRunner("bench_filter.py", logs, echo=False)
    stage = stages.stage(name, python_module("mling.filtering.pipeline", args, isolated=False))
    seconds = stages.run_together([stage], watch=sample, every=interval)[name]
    return seconds, peaks["tree"] / 2**20, peaks["single"] / 2**20


def fixed_cost(inputs: list[Path], out: Path, repeats: int = 3) -> float:
    """Median seconds of a whole `data/filter.py` run, as a user starts it (a new interpreter,
    its imports, the model's load, the report), on a 1,000-row slice of `inputs`."""
    tiny = out / "fixed-cost" / "part-00000.parquet"
    tiny.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pq.ParquetFile(inputs[0]).read_row_group(0).slice(0, 1_000), tiny)
    stages = StageRunner("bench_filter.py", out / "logs", echo=False)
    command = python_module(
        "mling.filtering.pipeline", _filter_argv([tiny], out / "kept-tiny", None)
    )
    return statistics.median(stages.run("fixed-cost", command) for _ in range(repeats))


def compare(corpus: str, rows: int, out: Path, repeats: int) -> dict:
    """pandas (with and without language ID) and the pipeline's variants on one corpus at one
    size, interleaved `repeats` times; then language ID's stage on one worker and on all."""
    from benchmarks.filter_corpora import CORPORA, write_shards
    from mling.filtering.pipeline import main as filter_main
    from mling.filtering.reasons import ImageFilterConfig, TextFilterConfig
    from tests.helpers.filter_oracle import filter_reasons

    k = VOCABULARY[corpus]
    text = TextFilterConfig(vocabulary_size=k) if k else TextFilterConfig()
    inputs = write_shards(out / f"{corpus}-{rows}", rows, CORPORA[corpus])
    outputs = {name: out / f"kept-{corpus}-{i}" for i, name in enumerate(VARIANTS)}

    def run_filter(argv: list[str]) -> tuple[float, dict]:  # a failed run is no measurement
        start = time.perf_counter()
        if filter_main(argv) != 0:
            raise SystemExit(f"bench_filter.py: filter.py {' '.join(argv)} failed (above)")
        seconds = time.perf_counter() - start
        return seconds, json.loads(
            (Path(argv[argv.index("--output") + 1]) / "report.json").read_text()
        )

    # one untimed run of each on a slice first, so imports count against neither
    warmup = out / "warmup" / "part-00000.parquet"
    warmup.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pq.ParquetFile(inputs[0]).read_row_group(0).slice(0, 10_000), warmup)
    filter_reasons([warmup], ImageFilterConfig(), text)
    run_filter(_filter_argv([warmup], out / "kept-warmup", k))

    timings: dict[str, list[float]] = {"pandas": [], "pandas+lid": []}
    timings |= {name: [] for name in VARIANTS}
    stages: list[dict[str, float]] = []
    load = []
    for _ in range(repeats):
        load.append(os.getloadavg()[0])
        filtering, labelling, frame = pandas_with_language_id(inputs, ImageFilterConfig(), text)
        timings["pandas"].append(filtering)
        timings["pandas+lid"].append(filtering + labelling)
        for name, extra in VARIANTS.items():
            seconds, report = run_filter(_filter_argv(inputs, outputs[name], k, *extra))
            timings[name].append(seconds)
        # the default run's stages, and the rest of its wall time
        spent = stage_seconds(report)
        stages.append({**spent, "outside": seconds - sum(spent.values()), "total": seconds})

    # the same kept rows, with the same labels, on both sides
    kept = frame[frame["reason"].isna()].sort_values("key")
    ours = pq.read_table(
        sorted(outputs["filters+lid"].glob("part-*.parquet")), columns=["key", "language"]
    )
    ours = ours.sort_by("key")
    kept_agree = all(
        sorted(
            pq.read_table(sorted(path.glob("part-*.parquet")), columns=["key"])
            .column("key")
            .to_pylist()
        )
        == kept["key"].tolist()
        for path in outputs.values()
    )
    labels_agree = ours.column("language").to_pylist() == kept["language"].tolist()
    captions = pa.concat_arrays(
        [pq.read_table(p, columns=["caption"]).column("caption").combine_chunks() for p in inputs]
    )

    # language ID's stage with one worker and with every core, interleaved
    lid = {"1": [], str(os.cpu_count()): []}
    for _ in range(repeats):
        for workers in lid:
            argv = _filter_argv(inputs, outputs["filters+lid"], k, "--workers", workers)
            _, report = run_filter(argv)
            lid[workers].append(stage_seconds(report)["language ID"])
    lid_seconds = {workers: statistics.median(values) for workers, values in lid.items()}
    sampled = report["language_figures"]
    return {
        "corpus": corpus,
        "rows": rows,
        "vocabulary_size": k,
        "kept_share": len(kept) / rows,
        "distinct_captions": len(pc.unique(captions)),
        "load_average_1min": load,
        "seconds": {name: statistics.median(values) for name, values in timings.items()},
        "seconds_each": timings,
        "stages": {name: statistics.median(s[name] for s in stages) for name in stages[0]},
        "kept_rows_agree": kept_agree,
        "kept_labels_agree": labels_agree,
        "labelled_rows": len(kept) + sampled["labelled_dropped_rows"],
        "language_id_seconds_by_workers": lid_seconds,
        "language_id_speedup": lid_seconds["1"] / lid_seconds[str(os.cpu_count())],
    }


def main(argv: list[str] | None = None) -> int:
    # config
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[300_000, 1_000_000], help="sizes to compare at"
    )
    parser.add_argument(
        "--corpora",
        nargs="+",
        choices=["real_text", "synthetic"],
        default=["real_text", "synthetic"],
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs of each, interleaved; medians reported"
    )
    parser.add_argument(
        "--memory-rows",
        type=int,
        nargs="*",
        default=[],
        help="also measure peak memory at these row counts, e.g. 1000000 3000000 10000000",
    )
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB memory limit for those runs")
    parser.add_argument("--output", default="bench-output/filter")
    args = parser.parse_args(argv)
    from benchmarks.filter_corpora import CORPORA, write_shards
    from mling.common.language_id import MAX_CHARS
    from mling.common.report import markdown_table, write_report

    code = code_state(MEASURED_MODULES)
    out = Path(args.output)

    # the comparisons, smallest first
    results = [
        compare(corpus, rows, out, args.repeats)
        for rows in sorted(args.rows)
        for corpus in args.corpora
    ]
    per_core = {}
    for corpus in args.corpora:
        inputs = write_shards(out / f"{corpus}-{min(args.rows)}", min(args.rows), CORPORA[corpus])
        captions = pq.read_table(inputs[0], columns=["caption"]).column("caption").to_pylist()
        per_core[corpus] = {
            **language_id_per_core(captions[:200_000]),
            "mean_caption_chars": statistics.mean(map(len, captions[:200_000])),
        }
    agreement = language_id_prefix_agreement()
    startup = fixed_cost(
        write_shards(out / f"real_text-{min(args.rows)}", min(args.rows), CORPORA["real_text"]), out
    )
    data = {
        "provenance": code,
        "cores": os.cpu_count(),
        "repeats": args.repeats,
        "comparisons": results,
        "language_id_per_core": per_core,
        "language_id_prefix_agreement": agreement,
        "fixed_cost_seconds_1000_rows": startup,
    }

    # report
    cores = os.cpu_count()
    table = []
    for r in results:
        s = r["seconds"]
        table.append(
            (
                r["corpus"].replace("_", " "),
                f"{r['rows']:,}",
                f"{r['kept_share']:.0%}",
                f"{r['distinct_captions']:,}",
                f"{s['pandas+lid']:.1f}",
                f"{s['filters+lid']:.1f}",
                f"**{s['pandas+lid'] / s['filters+lid']:.2f}x**",
                f"{s['pandas']:.1f}",
                f"{s['filters']:.1f}",
                f"{s['pandas'] / s['filters']:.2f}x",
            )
        )
    markdown = [
        f"# Filter benchmark: two corpora, {cores} cores",
        "",
        markdown_table(
            [
                "corpus",
                "rows",
                "kept",
                "distinct captions",
                "pandas + LID, s",
                "ours + LID, s",
                "ratio",
                "pandas, s",
                "ours, no LID, s",
                "ratio",
            ],
            table,
        ),
        "",
        f"Medians of {args.repeats} interleaved runs. 1-minute load average at each start: "
        + "; ".join(
            f"{r['corpus']} {r['rows']:,}: {', '.join(f'{x:.1f}' for x in r['load_average_1min'])}"
            for r in results
        )
        + ".",
        "Each run's ratio with language ID (pandas and ours in the same repeat): "
        + "; ".join(
            f"{r['corpus']} {r['rows']:,}: "
            + ", ".join(
                f"{p / o:.2f}x"
                for p, o in zip(
                    r["seconds_each"]["pandas+lid"], r["seconds_each"]["filters+lid"], strict=True
                )
            )
            for r in results
        )
        + ".",
        "Kept sets the same (pandas and both variants, by key): "
        + ("yes" if all(r["kept_rows_agree"] for r in results) else "NO")
        + "; kept rows' language labels the same as pandas': "
        + ("yes" if all(r["kept_labels_agree"] for r in results) else "NO")
        + ".",
        "",
        "Where the time goes (ours with language ID, medians; `outside` is the run's wall time "
        "minus its stages):",
        "",
        markdown_table(
            ["corpus", "rows", *STAGE_GROUPS, "outside", "total", "outside share"],
            [
                (
                    r["corpus"].replace("_", " "),
                    f"{r['rows']:,}",
                    *(f"{r['stages'][name]:.2f}" for name in STAGE_GROUPS),
                    f"{r['stages']['outside']:.2f}",
                    f"{r['stages']['total']:.2f}",
                    f"{r['stages']['outside'] / r['stages']['total']:.1%}",
                )
                for r in results
            ],
        ),
        "",
        "Rows per second of each stage (input rows over the stage's seconds; language ID labels "
        "the kept rows and the sample):",
        "",
        markdown_table(
            ["corpus", "rows", *STAGE_GROUPS, "labelled rows"],
            [
                (
                    r["corpus"].replace("_", " "),
                    f"{r['rows']:,}",
                    *(
                        f"{r['rows'] / r['stages'][name]:,.0f}" if r["stages"][name] else "—"
                        for name in STAGE_GROUPS
                    ),
                    f"{r['labelled_rows']:,}",
                )
                for r in results
            ],
        ),
        "",
        f"Language ID's stage on 1 worker and on {cores} (`--workers`, medians of "
        f"{args.repeats}): "
        + "; ".join(
            f"{r['corpus']} {r['rows']:,}: {r['language_id_seconds_by_workers']['1']:.2f} s and "
            f"{r['language_id_seconds_by_workers'][str(cores)]:.2f} s, **{r['language_id_speedup']:.2f}x**"
            for r in results
        )
        + ".",
        "Language ID alone in one process, rows per CPU-second: "
        + "; ".join(
            f"{corpus.replace('_', ' ')} {v['rows_per_cpu_second']:,.0f} "
            f"(captions of {v['mean_caption_chars']:.0f} characters on average)"
            for corpus, v in per_core.items()
        )
        + ".",
        f"A whole run as a user starts it (`python data/filter.py`, a new interpreter, 1,000 rows): "
        f"{startup:.2f} s, the fixed cost of every run.",
    ]
    if agreement:
        markdown += [
            "",
            f"Language ID on the first {MAX_CHARS} characters against the whole text (UDHR text, "
            f"{agreement[0]['languages']} languages lid.176 knows, 10 windows each):",
            "",
            markdown_table(
                ["text length", "same label", "accuracy, whole text", "accuracy, prefix"],
                [
                    (
                        f"{row['text_chars']} chars",
                        f"{row['agreement']:.1%}",
                        f"{row['accuracy_full']:.1%}",
                        f"{row['accuracy_prefix']:.1%}",
                    )
                    for row in agreement
                ],
            ),
        ]
    if args.memory_rows:
        markdown += memory_section(args, out, data)
    write_report(out, "bench_filter", data, "\n".join(markdown))
    print("\n".join(markdown))
    if not all(r["kept_rows_agree"] and r["kept_labels_agree"] for r in results):
        print("bench_filter.py: the two implementations disagree (above)")
        return 1
    return 0


def memory_section(args, out: Path, data: dict) -> list[str]:
    """Peak memory by row count, each run in a child process (synthetic rows, no language ID,
    no image bytes); records the runs in data["memory"], returns the Markdown lines."""
    from benchmarks.filter_corpora import synthetic_pairs, write_shards
    from mling.common.report import markdown_table

    largest = max(args.memory_rows)
    shards = write_shards(out / "synthetic-memory", largest, synthetic_pairs)
    memory = []
    for rows in sorted(args.memory_rows):
        if rows % 1_000_000:
            raise SystemExit("bench_filter.py: --memory-rows must be whole millions")
        used = shards[: rows // 1_000_000]
        command = _filter_argv(
            used, out / "kept-memory", VOCABULARY["synthetic"], "--no-language-id"
        )
        command += ["--memory-limit", args.memory_limit]
        seconds, tree_mib, single_mib = peak_memory(command, out / "logs", f"memory-{rows}")
        memory.append(
            {
                "rows": rows,
                "input_mib": sum(p.stat().st_size for p in used) / 2**20,
                "seconds": seconds,
                "peak_pss_all_processes_mib": tree_mib,
                "peak_rss_largest_process_mib": single_mib,
            }
        )
    data["memory"] = {"memory_limit": args.memory_limit, "runs": memory}
    headers = ["rows", "input parquet", "seconds", "rows/s", "peak, all processes", "peak, largest"]
    return [
        "",
        f"Peak memory (synthetic rows, DuckDB `--memory-limit {args.memory_limit}`, no language "
        "ID, no image bytes; memory of the filter and its pre-pass workers together, as PSS, "
        "sampled every 50 ms; and the largest single process's RSS):",
        "",
        markdown_table(
            headers,
            [
                (
                    f"{m['rows']:,}",
                    f"{m['input_mib']:,.0f} MiB",
                    f"{m['seconds']:.0f}",
                    f"{m['rows'] / m['seconds']:,.0f}",
                    f"{m['peak_pss_all_processes_mib']:,.0f} MiB",
                    f"{m['peak_rss_largest_process_mib']:,.0f} MiB",
                )
                for m in memory
            ],
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
