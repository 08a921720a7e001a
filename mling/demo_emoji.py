"""`make demo-emoji`: English and multilingual ALIGN side by side on real drawings named in 100+
languages, evaluated per language on another artist's drawings.

    python data/emoji_set.py --fetch                   # once: the pinned npm packages
    python mling/demo_emoji.py --output demo-emoji-output [--steps N] [--train-languages L]

Like `make demo`, each stage runs the real entry point in a subprocess, on the output of the
stage before, offline (the packages come from the cache `data/emoji_set.py --fetch` filled):

    1 data/emoji_set.py                  OUT/emoji-set/  5 artists' drawings x every CLDR
                                                         language, Fluent Emoji held out
    2 tokenizer_training/build_vocab.py  OUT/vocab/      WordPiece on the set's names
    3 (training rows)                    OUT/pairs-en/, OUT/pairs-mling/
    4 mling/train.py, two runs at once   OUT/{en,mling}/ (model/ inside each)
    5 eval/retrieval_set.py              OUT/eval/report.{json,md,csv,png}, every language,
                                         on --eval-images held-out drawings (OUT/heldout/)
    6 the summary                        OUT/report.{md,json}: the issue's targets, met or not

Both models train with the same preset, steps and seed, and with `--positives image_id` (two
artists' drawings of one emoji in a batch are not each other's negatives): `en` on the English
rows only (as ALIGN-EN), `mling` on the rows of --train-languages (default: every language of
the set), each drawing with --captions-per-image of its names (docs/ablations.md). The English
rows have one name per emoji, so K slots would repeat it: the same loss, K times the text
compute; `en` gets K = 1.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from mling.common.report import markdown_table, write_report
from mling.demo import resolve_preset, run_stage, train_all

STAGES = 6
MODELS = ("en", "mling")
# The targets the demo is held to (issue 14): the English model clear of chance, the
# multilingual model's English near the English model's, its trained languages near its English.
TARGETS = {"en_mR": 20.0, "mling_over_en": 0.6, "worst_over_english": 0.8}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("demo-emoji-output"))
    parser.add_argument("--config", default="emoji", help="training preset (mling/configs)")
    parser.add_argument(
        "--steps", type=int, help="optimizer steps per model (default: the preset's max_steps)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--languages",
        help="comma-separated CLDR locales of the set (default: every language naming at "
        "least --min-names emoji)",
    )
    parser.add_argument("--min-names", type=int, default=100)
    parser.add_argument(
        "--train-languages",
        help="comma-separated languages the multilingual model trains on (default: all of the "
        "set); every language of the set is evaluated",
    )
    parser.add_argument("--vocab-size", type=int, default=32000, help="WordPiece vocabulary")
    parser.add_argument(
        "--exemplar-share",
        type=float,
        default=0.4,
        help="build_vocab.py --exemplar-share: room for the everyday hanzi and hangul, so no "
        "language with 200 names loses 0.5%% of its tokens to [UNK]",
    )
    parser.add_argument("--cache", help="npm tarball cache (default $MLING_CACHE, ~/.cache/mling)")
    parser.add_argument("--pins", help="data/emoji_set.py --pins (default: its built-in pins)")
    parser.add_argument(
        "--parallel", type=int, default=2, help="training runs at once (they share the cores)"
    )
    parser.add_argument("--device", default="auto", help="evaluation device: auto, cpu, cuda")
    parser.add_argument(
        "--captions-per-image",
        type=int,
        default=4,
        help="the multilingual model's names per drawing in a batch, each in another language "
        "(train.py --captions-per-image; 1: the paper's one caption per row)",
    )
    parser.add_argument(
        "--eval-images",
        type=int,
        default=1000,
        help="held-out drawings evaluated, a seeded sample (as Multi30k's and Flickr30k's 1k "
        "test sets); 0: all of them",
    )
    return parser.parse_args(argv)


def sample_heldout(captions: Path, images: int, seed: int, output: Path) -> Path:
    """`images` lines of the held-out captions.jsonl, a seeded sample in file order, written
    to output/captions.jsonl (all of them for 0 or more than there are)."""
    import random

    lines = captions.read_text(encoding="utf-8").splitlines()
    if 0 < images < len(lines):
        keep = sorted(random.Random(seed).sample(range(len(lines)), images))
        lines = [lines[i] for i in keep]
    output.mkdir(parents=True, exist_ok=True)
    (output / "captions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return output / "captions.jsonl"


def training_rows(pairs: Path, languages: list[str] | None, output: Path) -> int:
    """The set's rows in `languages` (None: all), in the set's own (shuffled) order."""
    import pyarrow.dataset as ds

    from mling.pairs.shards import write_pair_shards

    dataset = ds.dataset(sorted(pairs.glob("part-*.parquet")), format="parquet")
    where = None if languages is None else ds.field("language").isin(languages)
    table = dataset.to_table(filter=where)
    write_pair_shards(table.to_batches(), output, overwrite=True)  # the demo's own folder
    return table.num_rows


def summarize(report: dict, train_languages: list[str] | None) -> dict:
    """The targets from the evaluation's report.json: mR per model and language."""
    from mling.evaluation.fairness import fairness_summary

    scores = {  # mR in percent, as the report writes it
        model: {lang: r["mR"] for lang, r in by_language.items() if r.get("mR") is not None}
        for model, by_language in report["models"].items()
    }
    en, mling = scores["en"].get("en"), scores["mling"].get("en")
    trained = {
        lang: s
        for lang, s in scores["mling"].items()
        if not train_languages or lang in train_languages
    }
    fair = fairness_summary(trained)
    unseen = {lang: s for lang, s in scores["mling"].items() if lang not in trained}
    images = max(d.get("images", 0) for d in report["data"].values())
    return {
        "languages": len(scores["mling"]),
        "trained_languages": len(trained),
        "images": images,
        "chance_mR": 100 * _chance(images),
        "en_model_en_mR": en,
        "mling_model_en_mR": mling,
        "mling_over_en": mling / en if en else None,
        "mling_trained": fair,
        "mling_unseen_median": fair_median(unseen),
        "targets": TARGETS,
        "met": {
            "en_mR": en is not None and en >= TARGETS["en_mR"],
            "mling_over_en": bool(en) and mling / en >= TARGETS["mling_over_en"],
            "worst_over_english": (fair["worst_ratio"] or 0) >= TARGETS["worst_over_english"],
        },
    }


def fair_median(scores: dict[str, float]) -> float | None:
    import statistics

    return statistics.median(scores.values()) if scores else None


def _chance(images: int) -> float:
    """mR of a random ranking over `images` candidates: mean of k/N for k = 1, 5, 10."""
    return (1 + 5 + 10) / 3 / images if images else 0.0


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def summary_markdown(summary: dict, args: argparse.Namespace, seconds: dict) -> str:
    fair = summary["mling_trained"]
    met = summary["met"]
    rows = [
        ["English model, English mR", f">= {TARGETS['en_mR']:.0f}",
         _fmt(summary["en_model_en_mR"]), "yes" if met["en_mR"] else "no"],
        ["multilingual model's English / English model's", f">= {TARGETS['mling_over_en']}x",
         f"{_fmt(summary['mling_model_en_mR'])} / {_fmt(summary['en_model_en_mR'])} = "
         f"{_fmt(summary['mling_over_en'], 2)}x", "yes" if met["mling_over_en"] else "no"],
        ["multilingual model's worst trained language / its English",
         f">= {TARGETS['worst_over_english']}x",
         f"{fair['worst_language']} {_fmt(fair['worst'])} / {_fmt(fair['english'])} = "
         f"{_fmt(fair['worst_ratio'], 2)}x", "yes" if met["worst_over_english"] else "no"],
    ]  # fmt: skip
    stages = ("emoji set", "vocabulary", "training", "evaluation", "total")  # in run order,
    # also when read back from report.json (whose keys are sorted)
    minutes = {k: f"{seconds[k] / 60:.1f}" for k in stages if k in seconds}
    return "\n\n".join(
        [
            "# The emoji demo",
            f"Preset `{args.config}`, {args.steps} steps, seed {args.seed}, both models with "
            f"`--positives image_id`, the multilingual one with {args.captions_per_image} names "
            f"per drawing (`--captions-per-image`). {summary['images']:,} held-out drawings "
            f"(Fluent Emoji flat, a seeded sample), {summary['languages']} languages evaluated, "
            f"the multilingual model trained on {summary['trained_languages']}; chance is mR "
            f"{summary['chance_mR']:.2f}. Multilingual model: median {_fmt(fair['median'])} over "
            f"its trained languages, {len(fair['below'])} below 0.85x its English.",
            markdown_table(["target", "wanted", "measured", "met"], rows),
            "Minutes: "
            + ", ".join(f"{stage} {value}" for stage, value in minutes.items())
            + ". Per language, models side by side: `eval/report.md` in the output folder.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    # config
    args = parse_args(argv)
    resolve_preset(args)
    out = args.output.resolve()
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    emoji = out / "emoji-set"
    train_languages = (
        [x.strip() for x in args.train_languages.split(",") if x.strip()]
        if args.train_languages
        else None
    )

    # 1-2: the set and its vocabulary
    build = ["data/emoji_set.py", "--output", str(emoji), "--overwrite"]
    build += ["--min-names", str(args.min_names), "--seed", str(args.seed)]
    build += ["--languages", args.languages] if args.languages else []
    build += ["--cache", str(Path(args.cache).resolve())] if args.cache else []
    build += ["--pins", str(Path(args.pins).resolve())] if args.pins else []
    seconds["emoji set"] = run_stage(1, "emoji_set", build, logs, STAGES)
    vocab = ["tokenizer_training/build_vocab.py", "--input", str(emoji / "pairs")]
    vocab += ["--output", str(out / "vocab"), "--overwrite", "--vocab-size", str(args.vocab_size)]
    vocab += ["--lang-column", "language", "--seed", str(args.seed)]
    vocab += ["--exemplar-share", str(args.exemplar_share)]
    seconds["vocabulary"] = run_stage(2, "build_vocab", vocab, logs, STAGES)

    # 3-4: training
    print(f"[3/{STAGES}] training rows", flush=True)
    data = {"en": out / "pairs-en", "mling": out / "pairs-mling"}
    english = training_rows(emoji / "pairs", ["en"], data["en"])
    multilingual = training_rows(emoji / "pairs", train_languages, data["mling"])
    print(f"      en: {english} rows; mling: {multilingual} rows", flush=True)
    print(f"[4/{STAGES}] mling/train.py --config {args.config} --max-steps {args.steps}, x2")
    shared = ["--positives", "image_id"]
    flags = {
        "en": [*shared, "--captions-per-image", "1"],
        "mling": [*shared, "--captions-per-image", str(args.captions_per_image)],
    }
    seconds["training"] = train_all(data, args, out, flags)

    # 5: evaluation, every language of the set, both models in one report
    heldout = emoji / "heldout"
    sample = sample_heldout(
        heldout / "captions.jsonl", args.eval_images, args.seed, out / "heldout"
    )
    evaluation = ["eval/retrieval_set.py", "--captions", str(sample)]
    evaluation += ["--images", str(heldout / "images"), "--device", args.device]
    evaluation += ["--batch-size", "256", "--output", str(out / "eval")]  # short names
    evaluation += ["--title", "Emoji, held-out drawings"]
    for name in MODELS:
        evaluation += ["--model", str(out / name / "model"), "--name", name]
    seconds["evaluation"] = run_stage(5, "retrieval_set", evaluation, logs, STAGES)

    # 6: summary
    seconds["total"] = time.perf_counter() - started
    report = json.loads((out / "eval" / "report.json").read_text(encoding="utf-8"))
    summary = summarize(report, train_languages)
    summary |= {"config": {k: str(v) for k, v in vars(args).items()}, "seconds": seconds}
    markdown = summary_markdown(summary, args, seconds)
    paths = write_report(out, "report", summary, markdown)
    print(f"[6/{STAGES}] report: {paths['md']}")
    print(markdown.split("\n\n", 2)[2].split("\n\nMinutes")[0])
    print(f"demo_emoji.py: done in {seconds['total'] / 60:.1f} min -> {paths['md']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
