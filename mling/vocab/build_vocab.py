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

from mling.common.atomic import check_output, claim_output, publish_dir, staging_dir
from mling.common.cli import add_overwrite_argument, one_line_errors
from mling.common.errors import InputError
from mling.common.storage import URL, as_path, local_path
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


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    vocab_size: int = 250_000  # tokens, specials and alphabet included (the ALIGN-mling size)
    algorithm: str = "wordpiece"  # "wordpiece" (HF tokenizers) or "unigram" (sentencepiece)
    min_frequency: int = 2  # a pair seen fewer times is never merged
    max_token_chars: int | None = None  # longest learned piece (chars); None: no limit for
    # WordPiece, sentencepiece's 16 for unigram
    min_train_lines: int = 200  # languages with fewer training lines are not held to the target


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    paths = parser.add_argument_group("input and output")
    paths.add_argument(
        "--input",
        nargs="+",
        required=True,
        help="text/.gz/JSONL/parquet/tar files, "
        "directories, globs, datasets.save_to_disk directories",
    )
    paths.add_argument(
        "--output", type=as_path, help="vocabulary directory (report.* goes inside), or a URL"
    )
    add_overwrite_argument(paths)
    paths.add_argument("--text-column", default="caption", help="JSONL/parquet/tar/datasets text")
    add_column_arguments(paths)  # for pairs in a foreign layout: the source of `caption`
    paths.add_argument("--lang-column", help="column with a language code per line")
    paths.add_argument(
        "--lang-from-filename",
        metavar="PATTERN",
        help="read the language from file names, e.g. '*.{lang}.gz'",
    )
    paths.add_argument(
        "--parallel-files",
        action="store_true",
        help="text files named alike but for the language are line-aligned translations",
    )
    paths.add_argument("--english-column", help="column with the English version (for parity)")
    paths.add_argument("--english", default="en", help="code of the parity reference language")
    paths.add_argument("--lid-model", help="fastText lid.176 model (default: the bundled one)")
    paths.add_argument(
        "--max-line-bytes", type=int, default=16_384, help="longer lines are skipped"
    )
    paths.add_argument("--sample-out", help="also keep the balanced sample text here (local)")
    sampling = parser.add_argument_group("language balancing")
    sampling.add_argument("--alpha", type=float, default=0.3, help="p_l ~ n_l^alpha; 1 = natural")
    sampling.add_argument("--max-sentences", type=int, default=10_000_000)
    sampling.add_argument("--max-bytes", type=float, default=1e9, help="sample size, UTF-8 bytes")
    sampling.add_argument("--seed", type=int, default=0)
    sampling.add_argument("--holdout", type=float, default=0.05, help="share held out for report")
    sampling.add_argument("--report-lines", type=int, default=1000, help="per language")
    vocab = parser.add_argument_group("vocabulary")
    vocab.add_argument("--vocab-size", type=int, default=250_000)
    vocab.add_argument("--algorithm", choices=("wordpiece", "unigram"), default="wordpiece")
    vocab.add_argument("--min-frequency", type=int, default=2)
    vocab.add_argument("--max-token-chars", type=int, help="longest learned piece, characters")
    vocab.add_argument("--character-coverage", type=float, default=0.9995, help="per language")
    vocab.add_argument("--no-exemplars", action="store_true", help="no exemplar characters")
    vocab.add_argument("--exemplar-min-lines", type=int, default=100)
    vocab.add_argument(
        "--max-alphabet-share", type=float, default=0.5, help="of the vocabulary, coverage rule"
    )
    vocab.add_argument(
        "--exemplar-share", type=float, default=0.1, help="of the vocabulary, exemplars"
    )
    vocab.add_argument("--lowercase", action="store_true", help="fold case (BERT uncased)")
    vocab.add_argument("--strip-accents", action="store_true", help="drop combining marks")
    vocab.add_argument(
        "--min-train-lines",
        type=int,
        default=200,
        help="languages under this are reported but not held to the [UNK] target",
    )
    report = parser.add_argument_group("report only")
    report.add_argument(
        "--report-only",
        action="store_true",
        help="report on existing vocabularies (--tokenizer) instead of building",
    )
    report.add_argument("--tokenizer", nargs="+", type=Path, help="vocabulary directories")
    args = parser.parse_args(argv)
    if args.report_only and not args.tokenizer:
        parser.error("--report-only needs --tokenizer DIR [DIR ...]")
    if not args.report_only and not args.output:
        parser.error("--output DIR is required")
    if args.report_only and not args.output and len(args.tokenizer) > 1:
        parser.error("comparing several vocabularies needs --output DIR for the report")
    args.sample_out = local_path(args.sample_out, "--sample-out")
    return args


def report_only(args: argparse.Namespace, corpus: CorpusConfig) -> int:
    """Every input line is an evaluation line (up to --report-lines per language)."""
    tokenizers = {}
    for directory in args.tokenizer:
        name = directory.name if directory.name not in tokenizers else str(directory)
        tokenizers[name] = load_tokenizer(directory)
    output = local_path(args.output, "--output with --report-only") or args.tokenizer[0]
    everything = SamplingConfig(holdout=1.0, report_lines=args.report_lines, seed=args.seed)
    skipped: Counter[str] = Counter()
    sources = discover(corpus, skipped)
    with tempfile.TemporaryDirectory(prefix=".build_vocab-") as work:
        census = take_census(
            sources, corpus, everything, Labeler(args.lid_model), Path(work) / "labels.u16"
        )
    census.skipped.update(skipped)
    if not census.held_out:
        raise InputError(f"no usable lines in {' '.join(args.input)}")
    report = {
        "inputs": list(args.input),
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


def build(args: argparse.Namespace, corpus: CorpusConfig) -> int:
    # config
    normalization = NormalizationConfig(lowercase=args.lowercase, strip_accents=args.strip_accents)
    sampling = SamplingConfig(
        alpha=args.alpha,
        max_sentences=args.max_sentences,
        max_bytes=int(args.max_bytes),
        seed=args.seed,
        holdout=args.holdout,
        report_lines=args.report_lines,
    )
    alphabet_config = AlphabetConfig(
        character_coverage=args.character_coverage,
        exemplars=not args.no_exemplars,
        exemplar_min_lines=args.exemplar_min_lines,
        exemplar_share=args.exemplar_share,
        max_share=args.max_alphabet_share,
    )
    train = TrainConfig(
        vocab_size=args.vocab_size,
        algorithm=args.algorithm,
        min_frequency=args.min_frequency,
        max_token_chars=args.max_token_chars,
        min_train_lines=args.min_train_lines,
    )
    configs = {
        "corpus": corpus,
        "normalization": normalization,
        "sampling": sampling,
        "alphabet": alphabet_config,
        "train": train,
    }
    if train.vocab_size < MIN_VOCAB_SIZE:  # 10 would build, and turn nearly all text to [UNK]
        raise InputError(
            f"--vocab-size {train.vocab_size} leaves no room for an alphabet; give at least "
            f"{MIN_VOCAB_SIZE} (BERT's is 30522, ALIGN's multilingual one 250000)"
        )
    output: Path | URL = args.output  # a URL is staged here, then uploaded
    inputs = [as_path(raw) for raw in args.input if not glob.has_magic(raw)]
    check_output(output, args.overwrite, inputs)
    pipeline = Pipeline(normalization)
    timer = StageTimer()
    # the output's lock and the sample's child process, both released on any error
    children = contextlib.ExitStack()
    children.enter_context(claim_output(output, args.overwrite, inputs))
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
                f"no usable lines in {' '.join(args.input)} "
                f"(skipped: {dict(census.skipped) or 'none'})"
            )
        rates = sampling_rates(
            census.lines, census.bytes, sampling.alpha, sampling.max_sentences, sampling.max_bytes
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
            tokenizer, census.held_out, census.lines, train.min_train_lines, corpus.english, tokens
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
        shards = [p for p in expand_inputs(args.input) if p.name.endswith(pairs)]
        return layout_columns(shards, None, None)[0]
    except InputError:  # text, JSONL or `datasets` inputs (or a damaged shard, named later)
        return {}


@one_line_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Pairs in another layout (`--column-preset laion`, `--column TEXT=caption`, or recognized
    # from their columns) name the column that the pair schema calls `caption`; an explicit
    # --text-column wins.
    renamed = [src for src, dest in _pair_columns(args).items() if dest == "caption"]
    corpus = CorpusConfig(
        inputs=tuple(args.input),
        text_column=renamed[-1] if renamed and args.text_column == "caption" else args.text_column,
        lang_column=args.lang_column,
        english_column=args.english_column,
        lang_from_filename=args.lang_from_filename,
        parallel_files=args.parallel_files,
        english=args.english,
        max_line_bytes=args.max_line_bytes,
    )
    return report_only(args, corpus) if args.report_only else build(args, corpus)


if __name__ == "__main__":
    raise SystemExit(main())
