"""Benchmark the filter: the pipeline against a single-process pandas implementation of the same
filters on the same synthetic rows, language-ID rows/s per core, and peak memory at scale.

    python -m benchmarks.bench_filter                  # 1M rows, 3 interleaved runs: ~8 min on 2 cores
    python -m benchmarks.bench_filter --rows 100000 --repeats 1   # a quick look, ~30 s
    python -m benchmarks.bench_filter --memory-rows 1000000 3000000 10000000   # adds peak memory

Writes bench-output/filter/bench_filter.{json,md}. Both implementations read the same parquet
in the same process, runs interleaved; the ratio compares rows per second on this machine at
this moment, and the 1-minute load average at each start is recorded beside it. The pandas
implementation labels no language: it is the one baseline of every variant of the pipeline.
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

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mling.common.provenance import code_state
from mling.common.stages import StageRunner, python_module

# What the benchmark measures (mling/common/provenance.py; `benchmarks/update_docs.py --check`).
MEASURED_MODULES = (
    "mling/filtering/",
    "mling/common/language_id.py",
    "mling/common/processes.py",
)

# Letters per language; no-space scripts are written without spaces, as in real alt-text.
ALPHABETS = {
    "en": ("abcdefghijklmnopqrstuvwxyz", " "),
    "de": ("abcdefghijklmnopqrstuvwxyzäöüß", " "),
    "fr": ("abcdefghijklmnopqrstuvwxyzéèàç", " "),
    "ru": ("абвгдежзийклмнопрстуфхцчшщыэюя", " "),
    "el": ("αβγδεζηθικλμνξοπρστυφχψω", " "),
    "ar": ("ابتثجحخدذرزسشصضطظعغفقكلمنهوي", " "),
    "hi": ("कखगघचछजझटठडढणतथदधनपफबभमयरलवशसह", " "),
    "ko": ("가나다라마바사아자차카타파하고노도로모보소오조", " "),
    "ja": ("あいうえおかきくけこさしすせそたちつてとなにぬねの日本語写真東京山川", ""),
    "zh": ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动", ""),
    "th": ("กขคงจฉชซญดตถทธนบปผพฟภมยรลวศษสหอฮะาิีึืุู", ""),
}


# Shares of rows, roughly a multilingual web crawl's: English first, 10% in no-space scripts.
SHARES = {
    "en": 0.40,
    "de": 0.08,
    "fr": 0.08,
    "ru": 0.08,
    "el": 0.04,
    "ar": 0.06,
    "hi": 0.06,
    "ko": 0.10,
    "ja": 0.04,
    "zh": 0.04,
    "th": 0.02,
}


def synthetic_pairs(rows: int, seed: int = 0) -> pa.Table:
    """`rows` pair-schema rows without image bytes: 11 languages, Zipf-distributed words
    (2-8 letters, 1-3 characters in Chinese and Japanese), about 9 words a caption (geometric,
    1-30), sizes 64-1600 px, one image with many alt-texts, 2% shared alt-texts, 0.01%
    duplicate keys."""
    rng = np.random.default_rng(seed)
    vocab = {}
    for language, (letters, _) in ALPHABETS.items():
        chars = np.array(list(letters))
        low, high = (1, 4) if language in ("ja", "zh") else (2, 9)
        vocab[language] = [
            "".join(rng.choice(chars, size=n)) for n in rng.integers(low, high, size=5000)
        ]
    languages = list(ALPHABETS)
    row_language = rng.choice(len(languages), size=rows, p=[SHARES[name] for name in languages])
    word_counts = np.clip(rng.geometric(1 / 9, size=rows), 1, 30)
    ranks = np.minimum(rng.zipf(1.3, size=int(word_counts.sum())) - 1, 4999)
    captions, start = [], 0
    for language, count in zip(row_language, word_counts, strict=True):
        name = languages[language]
        words = vocab[name]
        captions.append(ALPHABETS[name][1].join(words[r] for r in ranks[start : start + count]))
        start += count
    shared = rng.random(rows) < 0.02
    for i in np.flatnonzero(shared):
        captions[i] = f"stock photo {i % 40}"
    image_ids = rng.integers(0, rows, size=rows)
    image_ids[rng.random(rows) < 0.002] = 7  # one image with ~0.2% of all alt-texts
    keys = [f"{i:09d}" for i in range(rows)]
    for i in rng.choice(rows, size=max(rows // 10_000, 1), replace=False):
        keys[i] = keys[0]  # duplicate keys
    return pa.table(
        {
            "key": keys,
            "caption": captions,
            "url": [f"https://img.example/{i}.jpg" for i in image_ids],
            "width": rng.integers(64, 1600, size=rows),
            "height": rng.integers(64, 1600, size=rows),
            "image": pa.nulls(rows, pa.binary()),
        }
    )


def write_synthetic(out_dir: Path, rows: int, shard_rows: int = 1_000_000) -> list[Path]:
    """Parquet shards of synthetic rows, reused when already there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, start in enumerate(range(0, rows, shard_rows)):
        path = out_dir / f"part-{index:05d}.parquet"
        if not path.exists():
            table = synthetic_pairs(min(shard_rows, rows - start), seed=index)
            table = table.set_column(
                0, "key", pa.array([f"{index}-{k}" for k in table.column("key").to_pylist()])
            )
            pq.write_table(table, path)
        paths.append(path)
    return paths


# The pipeline's variants, each timed against the pandas implementation: no language ID; the
# default (every kept row labelled, dropped rows' languages estimated from a sample per reason);
# every row labelled (exact language figures).
VARIANTS = {
    "filters": ["--no-language-id"],
    "filters+lid": [],
    "filters+lid, every row": ["--language-sample", "all"],
}


def _filter_argv(inputs: list[Path], output: Path, vocabulary_size: int, *extra: str) -> list[str]:
    argv = [
        "--input",
        *map(str, inputs),
        "--output",
        str(output),
        "-K",
        str(vocabulary_size),
        "--quiet",
        "--overwrite",  # every run writes the same folder: the benchmark's own
        *extra,
    ]
    return argv


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


def main(argv: list[str] | None = None) -> int:
    # config
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="100000 for a quick run")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs of each, interleaved; medians reported"
    )
    parser.add_argument(
        "--vocabulary-size", type=int, default=20_000, help="K, low so rare_token works"
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
    from mling.common.language_id import MAX_CHARS
    from mling.common.report import markdown_table, write_report
    from mling.filtering.pipeline import main as filter_main
    from mling.filtering.reasons import ImageFilterConfig, TextFilterConfig
    from tests.helpers.filter_oracle import filter_reasons

    code = code_state(MEASURED_MODULES)
    out = Path(args.output)
    text = TextFilterConfig(vocabulary_size=args.vocabulary_size)

    # data
    inputs = write_synthetic(out / f"synthetic-{args.rows}", args.rows)
    captions = pq.read_table(inputs[0], columns=["caption"]).column("caption").to_pylist()[:200_000]

    # pandas baseline vs pipeline, same rows, same process, interleaved so load hits all alike;
    # one untimed run of each on a small slice first, so imports count against neither
    warmup = out / "warmup" / "part-00000.parquet"
    warmup.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pq.ParquetFile(inputs[0]).read_row_group(0).slice(0, 10_000), warmup)
    filter_reasons([warmup], ImageFilterConfig(), text)

    def run_filter(argv: list[str]) -> None:  # a failed run is no measurement
        if filter_main(argv) != 0:
            raise SystemExit(f"bench_filter.py: filter.py {' '.join(argv)} failed (above)")

    run_filter(_filter_argv([warmup], out / "kept-warmup", args.vocabulary_size))
    timings: dict[str, list[float]] = {"pandas": [], **{name: [] for name in VARIANTS}}
    outputs = {name: out / f"kept-{i}" for i, name in enumerate(VARIANTS)}
    load = []
    for _ in range(args.repeats):
        load.append(os.getloadavg()[0])
        start = time.perf_counter()
        reasons = filter_reasons(inputs, ImageFilterConfig(), text)
        timings["pandas"].append(time.perf_counter() - start)
        for name, extra in VARIANTS.items():
            start = time.perf_counter()
            run_filter(_filter_argv(inputs, outputs[name], args.vocabulary_size, *extra))
            timings[name].append(time.perf_counter() - start)

    # the same kept rows everywhere: pandas, and each variant (by key); the same labels on the
    # kept rows whether the dropped rows are sampled or all labelled
    keys = pa.concat_arrays(
        [pq.read_table(p, columns=["key"]).column("key").combine_chunks() for p in inputs]
    )
    pandas_kept = sorted(keys.filter(pa.array(reasons.isna().to_numpy())).to_pylist())
    del reasons
    kept_tables = {
        name: pq.read_table(
            sorted(path.glob("part-*.parquet")), columns=["key", "language", "language_score"]
        )
        for name, path in outputs.items()
    }
    agree = all(sorted(t.column("key").to_pylist()) == pandas_kept for t in kept_tables.values())
    labels_agree = kept_tables["filters+lid"].equals(kept_tables["filters+lid, every row"])
    sampled = json.loads((outputs["filters+lid"] / "report.json").read_text())["language_figures"]
    del kept_tables, pandas_kept

    # language ID alone, one process
    lid = language_id_per_core(captions)
    agreement = language_id_prefix_agreement()

    medians = {name: statistics.median(values) for name, values in timings.items()}
    # each run's ratio, pandas and the pipeline side by side in the same repeat
    speedup_each = {
        name: [p / t for p, t in zip(timings["pandas"], timings[name], strict=True)]
        for name in VARIANTS
    }
    rows_per_s = {name: args.rows / seconds for name, seconds in medians.items()}
    data = {
        "provenance": code,
        "rows": args.rows,
        "cores": os.cpu_count(),
        "repeats": args.repeats,
        "load_average_1min": load,
        "vocabulary_size": args.vocabulary_size,
        "seconds": medians,
        "seconds_each": timings,
        "rows_per_second": rows_per_s,
        "speedup_vs_pandas": {name: rows_per_s[name] / rows_per_s["pandas"] for name in rows_per_s},
        "speedup_each_run": speedup_each,
        "kept_rows_agree": agree,
        "kept_labels_sampled_equal_exact": labels_agree,
        "language_sample": {
            key: sampled[key]
            for key in ("sample_per_reason", "seed", "labelled_dropped_rows", "dropped_rows")
        },
        "language_id_rows_per_second_per_core": lid["rows_per_cpu_second"],
        "language_id_rows_per_wall_second_one_process": lid["rows_per_wall_second"],
        "language_id_mean_caption_chars": statistics.mean(map(len, captions)),
        "language_id_prefix_agreement": agreement,
    }
    table = [
        (
            name,
            f"{medians[name]:.1f}",
            f"{rows_per_s[name]:,.0f}",
            f"{data['speedup_vs_pandas'][name]:.2f}x",
        )
        for name in ("pandas", *VARIANTS)
    ]
    markdown = [
        f"# Filter benchmark: {args.rows:,} synthetic rows, {os.cpu_count()} cores, "
        f"K={args.vocabulary_size:,}",
        "",
        markdown_table(["implementation", "seconds (median)", "rows/s", "vs pandas"], table),
        "",
        f"Medians of {args.repeats} interleaved runs; 1-minute load average at each start: "
        f"{', '.join(f'{x:.1f}' for x in load)}.",
        "Each run's ratio (pandas and the pipeline in the same repeat): "
        + "; ".join(
            f"{name} {', '.join(f'{r:.2f}x' for r in ratios)}"
            for name, ratios in speedup_each.items()
        )
        + ".",
        f"Kept sets agree (pandas and every variant, by key): {'yes' if agree else 'NO'}; kept "
        f"rows' labels the same with the sample as with every row labelled: "
        f"{'yes' if labels_agree else 'NO'}.",
        f"`filters+lid` labels every kept row and, for the report's estimates, "
        f"{sampled['labelled_dropped_rows']:,} of the {sampled['dropped_rows']:,} dropped rows "
        f"(at most {sampled['sample_per_reason']:,} per reason, seed {sampled['seed']}); "
        "`filters+lid, every row` is `--language-sample all`.",
        f"Language ID: {lid['rows_per_cpu_second']:,.0f} rows per CPU-second in one process "
        f"({lid['rows_per_wall_second']:,.0f} rows/s wall), on {len(captions):,} synthetic "
        f"captions of {data['language_id_mean_caption_chars']:.0f} characters on average.",
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

    # peak memory by row count, each run in a child process (no language ID, no image bytes)
    if args.memory_rows:
        largest = max(args.memory_rows)
        shards = write_synthetic(out / "synthetic-memory", largest)
        memory = []
        for rows in sorted(args.memory_rows):
            if rows % 1_000_000:
                raise SystemExit("bench_filter.py: --memory-rows must be whole millions")
            used = shards[: rows // 1_000_000]
            command = _filter_argv(
                used, out / "kept-memory", args.vocabulary_size, "--no-language-id"
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
        markdown += [
            "",
            f"Peak memory (DuckDB `--memory-limit {args.memory_limit}`, no language ID, no image "
            "bytes; memory of the filter and its pre-pass workers together, as PSS, sampled "
            "every 50 ms; and the largest single process's RSS):",
            "",
            markdown_table(
                [
                    "rows",
                    "input parquet",
                    "seconds",
                    "rows/s",
                    "peak, all processes",
                    "peak, largest",
                ],
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
    write_report(out, "bench_filter", data, "\n".join(markdown))
    print("\n".join(markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
