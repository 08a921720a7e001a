"""Benchmark the filter: the pipeline against a single-process pandas implementation of the same
filters on the same synthetic rows, language-ID rows/s per core, and peak memory at scale.

    python data/bench_filter.py                       # 1M rows, about 3 minutes on 2 cores
    python data/bench_filter.py --memory-rows 10000000  # adds the 10M-row peak-memory run

Writes bench-output/filter/bench_filter.{json,md}. Both implementations read the same parquet
in the same run; the ratio compares rows per second on this machine at this moment.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

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


def _filter_argv(inputs: list[Path], output: Path, vocabulary_size: int, lid: bool) -> list[str]:
    argv = [
        "--input",
        *map(str, inputs),
        "--output",
        str(output),
        "-K",
        str(vocabulary_size),
        "--quiet",
    ]
    return argv + ([] if lid else ["--no-language-id"])


def main(argv: list[str] | None = None) -> int:
    # config
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed runs of each; medians reported"
    )
    parser.add_argument(
        "--vocabulary-size", type=int, default=20_000, help="K, low so rare_token works"
    )
    parser.add_argument("--memory-rows", type=int, default=0, help="also measure peak memory here")
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB memory limit for that run")
    parser.add_argument("--output", default="bench-output/filter")
    args = parser.parse_args(argv)
    from data.filter import main as filter_main
    from data.filter_pandas import filter_reasons
    from data.filters import ImageFilterConfig, TextFilterConfig
    from data.language_id import LanguageIdentifier
    from mling.report import markdown_table, write_report

    out = Path(args.output)
    text = TextFilterConfig(vocabulary_size=args.vocabulary_size)

    # data
    inputs = write_synthetic(out / f"synthetic-{args.rows}", args.rows)
    captions = pq.read_table(inputs[0], columns=["caption"]).column("caption").to_pylist()[:200_000]

    # pandas baseline vs pipeline, same rows, same process
    timings: dict[str, list[float]] = {"pandas": [], "filters": [], "filters+lid": []}
    for _ in range(args.repeats):
        start = time.perf_counter()
        reasons = filter_reasons(inputs, ImageFilterConfig(), text)
        timings["pandas"].append(time.perf_counter() - start)
        for name, lid in (("filters", False), ("filters+lid", True)):
            start = time.perf_counter()
            filter_main(_filter_argv(inputs, out / "kept", args.vocabulary_size, lid))
            timings[name].append(time.perf_counter() - start)
    kept = sum(pq.ParquetFile(p).metadata.num_rows for p in (out / "kept").glob("part-*.parquet"))
    agree = int(reasons.isna().sum()) == kept

    # language ID alone, one core
    identifier = LanguageIdentifier()
    lid_seconds = []
    for _ in range(3):
        start = time.perf_counter()
        identifier.predict(captions)
        lid_seconds.append(time.perf_counter() - start)

    medians = {name: statistics.median(values) for name, values in timings.items()}
    rows_per_s = {name: args.rows / seconds for name, seconds in medians.items()}
    data = {
        "rows": args.rows,
        "cores": os.cpu_count(),
        "vocabulary_size": args.vocabulary_size,
        "seconds": medians,
        "rows_per_second": rows_per_s,
        "speedup_vs_pandas": {name: rows_per_s[name] / rows_per_s["pandas"] for name in rows_per_s},
        "kept_rows_agree": agree,
        "language_id_rows_per_second_per_core": len(captions) / statistics.median(lid_seconds),
    }
    table = [
        (
            name,
            f"{medians[name]:.1f}",
            f"{rows_per_s[name]:,.0f}",
            f"{data['speedup_vs_pandas'][name]:.2f}x",
        )
        for name in ("pandas", "filters", "filters+lid")
    ]
    markdown = [
        f"# Filter benchmark: {args.rows:,} synthetic rows, {os.cpu_count()} cores, K={args.vocabulary_size:,}",
        "",
        markdown_table(["implementation", "seconds (median)", "rows/s", "vs pandas"], table),
        "",
        f"Kept sets agree (pandas vs pipeline): {'yes' if agree else 'NO'}.",
        f"Language ID: {data['language_id_rows_per_second_per_core']:,.0f} rows/s on one core.",
    ]

    # peak memory at scale, in a child process so its RSS is its own
    if args.memory_rows:
        big = write_synthetic(out / f"synthetic-{args.memory_rows}", args.memory_rows)
        command = [sys.executable, str(Path(__file__).with_name("filter.py"))]
        command += _filter_argv(big, out / "kept-big", args.vocabulary_size, lid=False)
        command += ["--memory-limit", args.memory_limit]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        input_mib = sum(p.stat().st_size for p in big) / 2**20
        data["memory"] = {
            "rows": args.memory_rows,
            "peak_rss_mib": peak_mib,
            "seconds": seconds,
            "input_mib": input_mib,
        }
        markdown += [
            "",
            f"Peak memory on {args.memory_rows:,} rows ({input_mib:,.0f} MiB of parquet, DuckDB memory "
            f"limit {args.memory_limit}, no language ID): {peak_mib:,.0f} MiB RSS, {seconds:.0f} s.",
        ]
    write_report(out, "bench_filter", data, "\n".join(markdown))
    print("\n".join(markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
