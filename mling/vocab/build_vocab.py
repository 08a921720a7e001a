"""Build a multilingual WordPiece vocabulary that treats every language fairly.

    python tokenizer_training/build_vocab.py --input CORPUS [CORPUS ...] --output DIR \\
        [--vocab-size 250000] [--lang-column language | --lang-from-filename '*.{lang}.gz']

Streams the corpus twice (census, then a language-balanced sample bounded by --max-sentences
and --max-bytes), chooses the alphabet per language, trains WordPiece with HF `tokenizers`
(or a sentencepiece unigram vocabulary with --algorithm unigram), writes a directory that
`AutoTokenizer.from_pretrained` loads as a `BertTokenizerFast`, and reports per language on
held-out lines. `--report-only --tokenizer DIR [DIR ...]` reports on existing vocabularies.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import glob
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mling.common.atomic import check_output, claim_output, publish_dir, staging_dir
from mling.common.cli import (
    OneLineParser,
    add_overwrite_argument,
    environment_epilog,
    one_line_errors,
)
from mling.common.errors import InputError, file_system_errors
from mling.common.field_options import add_options, at_least, from_args, option
from mling.common.storage import STORAGE_ENVIRONMENT, URL, as_path, local_path
from mling.pairs.schema import add_column_arguments, column_map
from mling.pairs.shards import expand_inputs, layout_columns
from mling.vocab.alphabet import AlphabetConfig, select_alphabet
from mling.vocab.balance import sampling_rates
from mling.vocab.corpus_reader import CorpusConfig, discover
from mling.vocab.forked import ForkedStream
from mling.vocab.labels import Labeler
from mling.vocab.normalization import NormalizationConfig, Pipeline
from mling.vocab.sample import (
    SampleStats,
    SamplingConfig,
    iter_sample,
    normalized_counts,
    take_census,
)
from mling.vocab.tokenizer_dir import load_tokenizer, save_vocabulary
from mling.vocab.vocab_report import (
    build_report,
    evaluate,
    preload_plotting,
    summary_lines,
    target_line,
    write_build_report,
    write_compare_report,
)
from mling.vocab.wordpiece import train_wordpiece, word_sequences

PROG = "build_vocab.py"
MIN_VOCAB_SIZE = 100  # tokens, the 5 special ones included: room for a small alphabet at least


def _room_for_an_alphabet(vocab_size: int) -> str | None:
    if vocab_size >= MIN_VOCAB_SIZE:  # 10 would build, and turn nearly all text to [UNK]
        return None
    return (
        f"leaves no room for an alphabet; give at least {MIN_VOCAB_SIZE} "
        "(BERT's is 30522, ALIGN's multilingual one 250000)"
    )


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The trainer (options of build_vocab.py)."""

    vocab_size: int = option(
        250_000,
        "tokens in all, specials and alphabet included; ALIGN's multilingual size",
        check=_room_for_an_alphabet,
    )
    algorithm: str = option(
        "wordpiece",
        "wordpiece (HF tokenizers) or unigram (sentencepiece, exported as WordPiece tokens)",
        choices=("wordpiece", "unigram"),
    )
    min_frequency: int = option(2, "a pair seen fewer times is never merged", check=at_least(1))
    max_token_chars: int | None = option(
        None,
        "longest learned piece, characters; none: no limit for wordpiece, sentencepiece's 16 "
        "for unigram",
        check=at_least(1),
    )
    min_train_lines: int = option(
        200,
        "languages with fewer training lines are reported but not held to the [UNK] target",
        check=at_least(0),
    )


# report.json's "configs" and --help's groups, in order: every field with help is an option
CONFIGS = {
    "corpus": (CorpusConfig, "what is read, and each line's language"),
    "sampling": (SamplingConfig, "the language-balanced sample and the held-out lines"),
    "alphabet": (AlphabetConfig, "which characters the vocabulary holds"),
    "normalization": (NormalizationConfig, "BERT's text flags"),
    "train": (TrainConfig, "the vocabulary trainer"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog=environment_epilog(STORAGE_ENVIRONMENT),
    )
    paths = parser.add_argument_group("output and input layout")
    paths.add_argument(
        "--output", type=as_path, help="vocabulary directory (report.* goes inside), or a URL"
    )
    add_overwrite_argument(paths)
    add_column_arguments(paths)  # for pairs in a foreign layout: the source of `caption`
    paths.add_argument("--lid-model", help="fastText lid.176 model (default: the bundled one)")
    paths.add_argument("--sample-out", help="also keep the balanced sample text here (local)")
    for name, (config, title) in CONFIGS.items():
        add_options(parser, config, f"{name}: {title}")
    report = parser.add_argument_group("report only")
    report.add_argument(
        "--report-only",
        action="store_true",
        help="report on existing vocabularies (--tokenizer) instead of building",
    )
    report.add_argument("--tokenizer", nargs="+", type=Path, help="vocabulary directories")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.report_only and not args.tokenizer:
        parser.error("--report-only needs --tokenizer DIR [DIR ...]")
    if not args.report_only and not args.output:
        parser.error("--output DIR is required")
    if args.report_only and not args.output and len(args.tokenizer) > 1:
        parser.error("comparing several vocabularies needs --output DIR for the report")
    args.sample_out = local_path(args.sample_out, "--sample-out")
    return args


def report_only(args: argparse.Namespace, configs: dict[str, Any]) -> int:
    """Every input line is an evaluation line (up to --report-lines per language)."""
    corpus = configs["corpus"]
    tokenizers = {}
    for directory in args.tokenizer:
        name = directory.name if directory.name not in tokenizers else str(directory)
        tokenizers[name] = load_tokenizer(directory)
    output = local_path(args.output, "--output with --report-only") or args.tokenizer[0]
    everything = dataclasses.replace(configs["sampling"], holdout=1.0)
    skipped: Counter[str] = Counter()
    sources = discover(corpus, skipped)
    with tempfile.TemporaryDirectory(prefix=".build_vocab-") as work:
        census = take_census(
            sources, corpus, everything, Labeler(args.lid_model), Path(work) / "labels.u16"
        )
    census.skipped.update(skipped)
    if not census.held_out:
        raise InputError(f"no usable lines in {' '.join(corpus.inputs)}")
    report = {
        "inputs": list(corpus.inputs),
        "skipped": {k: v for k, v in sorted(census.skipped.items()) if v},
        "tokenizers": {
            name: evaluate(tok, census.held_out, english=corpus.english)
            for name, tok in tokenizers.items()
        },
    }
    written = write_compare_report(output, report)
    for name, evaluation in report["tokenizers"].items():
        print(f"{PROG}: {name} ({evaluation['vocab_size']} tokens)")
        print("\n".join(summary_lines(evaluation)))
    print(f"{PROG}: report in {written['md']}")
    return 0


def build(args: argparse.Namespace, configs: dict[str, Any]) -> int:
    # config
    corpus, sampling, train = configs["corpus"], configs["sampling"], configs["train"]
    normalization, alphabet_config = configs["normalization"], configs["alphabet"]
    output: Path | URL = args.output  # a URL is staged here, then uploaded
    inputs = [as_path(raw) for raw in corpus.inputs if not glob.has_magic(raw)]
    check_output(output, args.overwrite, inputs)
    pipeline = Pipeline(normalization)
    timer = StageTimer()
    # the output's lock, held until the scratch is gone: a refused build leaves nothing
    with claim_output(output, args.overwrite, inputs):
        children = contextlib.ExitStack()  # the sample's child process, ended on any error
        staged = staging_dir(output)
        work = staging_dir(output, "work")
        plotting = None
        try:
            # data: pass 1, census (labels, held-out lines, lines and characters per language)
            skipped: Counter[str] = Counter()
            sources = discover(corpus, skipped)
            labels = work / "labels.u16"
            census = take_census(sources, corpus, sampling, Labeler(args.lid_model), labels)
            census.skipped.update(skipped)
            if not census.lines:
                raise InputError(
                    f"no usable lines in {' '.join(corpus.inputs)} "
                    f"(skipped: {dict(census.skipped) or 'none'})"
                )
            rates = sampling_rates(
                census.lines,
                census.bytes,
                sampling.alpha,
                sampling.max_sentences,
                sampling.max_bytes,
            )
            timer.lap("census")

            # data: pass 2 streams the balanced sample, as counted words for WordPiece, from a
            # child process that starts now, so it runs while the alphabet is chosen and while the
            # Rust trainer counts; the unigram trainer reads a file, written here
            stats = SampleStats()
            if args.sample_out:
                args.sample_out.parent.mkdir(parents=True, exist_ok=True)
            sample_file = args.sample_out or (
                work / "sample.txt" if train.algorithm == "unigram" else None
            )
            sample = iter_sample(
                sources, corpus, census, rates, sampling.seed, labels, stats, sample_file
            )
            if train.algorithm == "wordpiece":
                words = ForkedStream(lambda: word_sequences(sample, pipeline), lambda: stats)
                children.enter_context(words)

            # alphabet (per language, so it needs the census, not the sample)
            expected = {lang: census.lines[lang] * rate for lang, rate in rates.items()}
            alphabet = select_alphabet(
                normalized_counts(census.char_counts, pipeline),
                expected,
                alphabet_config,
                pipeline,
                train.vocab_size,
            )
            timer.lap("alphabet")

            # train
            plotting = preload_plotting()
            try:
                if train.algorithm == "unigram":
                    from mling.vocab.unigram import train_unigram

                    collections.deque(sample, maxlen=0)  # the sentencepiece trainer reads a file
                    tokens = train_unigram(
                        [sample_file], alphabet, normalization, train.vocab_size,
                        train.max_token_chars, work, corpus.max_line_bytes,
                    )  # fmt: skip
                else:
                    tokens = train_wordpiece(
                        words, alphabet, train.vocab_size, train.min_frequency,
                        train.max_token_chars,
                    )  # fmt: skip
                    stats = words.result
            except ValueError as error:
                raise InputError(str(error)) from error
            timer.lap("sample_and_train")

            # save
            tokenizer = save_vocabulary(tokens, staged, normalization)
            timer.lap("save")

            # report (held-out lines, through the tokenizer that tokenizer.json holds)
            evaluation = evaluate(
                tokenizer,
                census.held_out,
                census.lines,
                train.min_train_lines,
                corpus.english,
                tokens,
            )
            report = build_report(evaluation, output, configs, census, rates, stats, alphabet)
            timer.lap("evaluate")
            report["timings_s"], report["cpu_s"] = timer.timings(), timer.cpu()
            write_build_report(staged, report)
            publish_dir(staged, output, args.overwrite)
        finally:
            children.close()
            if plotting:  # no thread may outlive a build: a later build forks
                plotting.join()
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(staged, ignore_errors=True)

    print(
        f"{PROG}: wrote {output} ({len(tokens)} tokens, {train.algorithm}) in "
        f"{report['timings_s']['total']:.1f} s from {report['sample']['lines']} sampled lines "
        f"in {len(census.lines)} languages"
    )
    print("\n".join(summary_lines(evaluation)))
    print(target_line(evaluation["unk_target"]))
    bad = {k: v for k, v in census.skipped.items() if k != "blank"}
    if bad:
        details = ", ".join(f"{k} {v}" for k, v in sorted(bad.items()))
        print(f"  skipped input: {details} (see {output / 'report.md'})")
    return 0


class StageTimer:
    """Wall-clock and CPU seconds (all threads, and child processes once they have ended) per
    stage, in the order they ran."""

    def __init__(self) -> None:
        self._last = (time.perf_counter(), _cpu_seconds())
        self._laps: dict[str, tuple[float, float]] = {}

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), _cpu_seconds())
        self._laps[name] = (now[0] - self._last[0], now[1] - self._last[1])
        self._last = now

    def timings(self) -> dict[str, float]:
        """{stage: wall seconds, ..., total}: the report's timings_s."""
        laps = {name: round(wall, 3) for name, (wall, _) in self._laps.items()}
        return laps | {"total": round(sum(laps.values()), 3)}

    def cpu(self) -> dict[str, float]:
        """{stage: CPU seconds, ..., total}: the report's cpu_s."""
        laps = {name: round(cpu, 3) for name, (_, cpu) in self._laps.items()}
        return laps | {"total": round(sum(laps.values()), 3)}


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _pair_columns(args: argparse.Namespace) -> dict[str, str]:
    """The column mapping of the inputs when they are pair shards (flags, else their layout)."""
    if args.column_preset or args.column:
        return column_map(args.column_preset, args.column)
    try:
        pairs = (".parquet", ".tar", ".arrow", ".tsv", ".tsv.gz")  # not text lines
        shards = [p for p in expand_inputs(args.inputs) if p.name.endswith(pairs)]
        return layout_columns(shards, None, None)[0]
    except InputError:  # text, JSONL or `datasets` inputs (or a damaged shard, named later)
        return {}


@one_line_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configs = {name: from_args(config, args) for name, (config, _) in CONFIGS.items()}
    # Pairs in another layout (`--column-preset laion`, `--column TEXT=caption`, or recognized
    # from their columns) name the column that the pair schema calls `caption`; an explicit
    # --text-column wins.
    renamed = [src for src, dest in _pair_columns(args).items() if dest == "caption"]
    if renamed and configs["corpus"].text_column == CorpusConfig.text_column:
        configs["corpus"] = dataclasses.replace(configs["corpus"], text_column=renamed[-1])
    # a full disk, a read-only folder, a size limit: one line naming the file
    with file_system_errors(args.output):
        return report_only(args, configs) if args.report_only else build(args, configs)


if __name__ == "__main__":
    raise SystemExit(main())
