"""`make demo-emoji`: an English ALIGN model, then a multilingual one made from it by the
English-first transfer recipe, on real drawings named in 100+ languages, evaluated per language
on another artist's drawings.

    python data/emoji_set.py --fetch                   # once: the pinned npm packages
    python mling/demo_emoji.py --output demo-emoji-output [--steps N] [--heldout-languages L]

Like `make demo`, each stage runs the real entry point in a subprocess, on the output of the
stage before, offline (the packages come from the cache `data/emoji_set.py --fetch` filled):

    1 data/emoji_set.py                  OUT/emoji-set/  5 artists' drawings x every CLDR
                                                         language, Fluent Emoji held out
    2 tokenizer_training/build_vocab.py  OUT/vocab/      WordPiece on the set's names, one
                                                         vocabulary for both models
    3 (training rows)                    OUT/pairs-en/, OUT/pairs-mling/ (every language but
                                                         the --heldout-languages)
    4 mling/train.py                     OUT/en/         the paper's recipe, English rows
    5 mling/train.py                     OUT/mling/      the transfer recipe, from OUT/en/model
    6 eval/retrieval_set.py              OUT/eval/report.{json,md,csv,png}, every language, on
                                         --eval-images held-out drawings (OUT/heldout/)
    7 the summary                        OUT/report.{md,json}: the targets, met or not

The English model trains from scratch with the preset (the paper's recipe) on the English rows,
with `--positives image_id` (two artists' drawings of one emoji in a batch are not each other's
negatives). The multilingual model starts from it (TRANSFER_FLAGS, docs/training.md): both
towers from the English model, the image tower frozen and embedded once per drawing (a center
crop, no flip: the image-embedding cache), each drawing with --captions-per-image of its names
in a batch, its English one second. The
targets are judged on the drawings that every compared language names (the evaluation's shared
pool), so no language is ranked among fewer candidates than another.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from mling.common.cli import OneLineParser, one_line_errors
from mling.common.field_options import at_least, between, refuse_args
from mling.common.provenance import code_state
from mling.common.report import markdown_table, write_report
from mling.common.stages import StageRunner, entry_point
from mling.demo import resolve_preset

STAGES = 7
# What the summary measures (mling/common/provenance.py; `benchmarks/update_docs.py --check`).
MEASURED_MODULES = (
    "mling/demo_emoji.py",
    "mling/emoji_set/",
    "mling/vocab/",
    "mling/train.py",
    "mling/training/",
    "mling/evaluation/",
    "mling/configs/emoji.yaml",
)
MODELS = ("en", "mling")
# The targets the demo is held to (issue 21), judged on the evaluation's shared pool.
TARGETS = {
    "en_mR": 20.0,  # the English model clear of chance
    "mling_over_en": 0.95,  # the multilingual model's English / the English model's (paper 0.98x)
    "worst_over_english": 0.85,  # every trained language / the multilingual model's English
    "median_over_english": 0.9,  # the median trained language / the multilingual model's English
    "minutes": 15.0,  # the whole demo on 2 cores
}
# Five languages the multilingual model never sees, one per script family, each beside a
# trained language of its script: zero-shot transfer to an unseen language.
HELDOUT_LANGUAGES = ("gl", "mk", "ur", "mr", "zh-Hant")
# The transfer recipe's flags on top of the preset (docs/training.md, "The English-first
# transfer recipe"); the English model's folder comes first.
TRANSFER_FLAGS = (
    "--freeze", "image", "--crop", "center", "--flip", "false", "--anchor-language", "en",
)  # fmt: skip
NAMES_PER_DRAWING = 8  # --captions-per-image of the multilingual model
# --text-text-weight: off. At the demo's 800 steps the English anchor already pulls each name
# towards its English one through the frozen image embedding; the term left the trained
# languages where they were, cost English 4% and gave the held-out ones 1 mR
# (docs/ablations.md, row text-text-1)
TEXT_TEXT_WEIGHT = 0.0
POOL_MIN_IMAGES = 300  # a language naming fewer held-out drawings is reported apart


# the range of every numeric option (the stages check theirs again, but only when they start)
OPTION_CHECKS = {
    "--steps": at_least(1),
    "--seed": at_least(0),
    "--min-names": at_least(1),
    "--vocab-size": at_least(100),
    "--exemplar-share": between(0, 1),
    "--captions-per-image": at_least(1),
    "--text-text-weight": at_least(0),
    "--eval-images": at_least(0),
    "--pool-min-images": at_least(0),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
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
        "--heldout-languages",
        default=",".join(HELDOUT_LANGUAGES),
        help="comma-separated languages the multilingual model never trains on, reported as "
        "zero-shot transfer beside the English model's score ('' trains on every language)",
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
    parser.add_argument("--device", default="auto", help="evaluation device: auto, cpu, cuda")
    parser.add_argument(
        "--captions-per-image",
        type=int,
        default=NAMES_PER_DRAWING,
        help="the multilingual model's names per drawing in a batch, each in another language "
        "(train.py --captions-per-image)",
    )
    parser.add_argument(
        "--text-text-weight",
        type=float,
        default=TEXT_TEXT_WEIGHT,
        help="the multilingual model's text-text term (train.py --text-text-weight; 0: off)",
    )
    parser.add_argument(
        "--mling-flags",
        default="",
        help="more train.py flags for the multilingual model, e.g. '--lr 3e-3' (ablations)",
    )
    parser.add_argument(
        "--eval-images",
        type=int,
        default=1000,
        help="held-out drawings evaluated, a seeded sample (as Multi30k's and Flickr30k's 1k "
        "test sets); 0: all of them",
    )
    parser.add_argument(
        "--pool-min-images",
        type=int,
        default=POOL_MIN_IMAGES,
        help="eval/retrieval_set.py --pool-min-images: languages compared on the drawings all "
        "of those naming at least this many share",
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


def training_rows(
    pairs: Path, languages: list[str] | None, output: Path, exclude: tuple[str, ...] = ()
) -> int:
    """The set's rows in `languages` (None: all) but those in `exclude`, in the set's own
    (shuffled) order."""
    import pyarrow.dataset as ds

    from mling.pairs.shards import write_pair_shards

    dataset = ds.dataset(sorted(pairs.glob("part-*.parquet")), format="parquet")
    where = None if languages is None else ds.field("language").isin(languages)
    if exclude:
        kept = ~ds.field("language").isin(list(exclude))
        where = kept if where is None else where & kept
    table = dataset.to_table(filter=where)
    write_pair_shards(table.to_batches(), output, overwrite=True)  # the demo's own folder
    return table.num_rows


def summarize(report: dict, heldout: tuple[str, ...] = (), seconds: dict | None = None) -> dict:
    """The targets, judged on the evaluation's report.json: mR per model and language on the
    shared pool (the drawings every compared language names); languages named on fewer
    drawings, and every figure when the pool was refused, are not judged."""
    from mling.common.scripts import language_script
    from mling.evaluation.fairness import fairness_summary
    from mling.evaluation.recall import chance_mr

    pool = report.get("shared_pool") or {}
    judged = bool(pool) and pool.get("refused") is None
    own = _mr(report["models"])  # each language on the drawings it names: its own pool
    scores = _mr(pool["models"]) if judged else own  # the shared pool's when there is one
    en, mling = scores["en"].get("en"), scores["mling"].get("en")
    trained = {lang: s for lang, s in scores["mling"].items() if lang not in heldout}
    fair = fairness_summary(trained)
    english = fair["english"]
    median_ratio = fair["median"] / english if english and fair["median"] is not None else None
    misses: dict[str, list[str]] = {}
    for lang in fair["below"]:
        misses.setdefault(language_script(lang), []).append(lang)
    unseen = {
        lang: {
            "mling": scores["mling"].get(lang, own["mling"].get(lang)),
            "en_model": scores["en"].get(lang, own["en"].get(lang)),
            "pool": "shared" if judged and lang in scores["mling"] else "own",
        }
        for lang in heldout
        if lang in own["mling"]
    }
    seconds = seconds or {}
    transfer_ratio = (
        seconds["training mling"] / seconds["training en"]
        if seconds.get("training en") and "training mling" in seconds
        else None
    )
    ratio = mling / en if en and mling is not None else None
    images = (
        pool.get("images") if judged else max(d.get("images", 0) for d in report["data"].values())
    )
    return {
        "judged_on": "shared pool"
        if judged
        else (pool.get("refused") or "the evaluation made none"),
        "languages": len(own["mling"]),
        "compared_languages": len(scores["mling"]),
        "apart": pool.get("apart", {}),
        "moved": pool.get("moved", []),
        "trained_languages": len([lang for lang in own["mling"] if lang not in heldout]),
        "judged_languages": len(trained),
        "heldout_languages": list(heldout),
        "images": images,
        "chance_mR": chance_mr(images) if images else None,
        "en_model_en_mR": en,
        "mling_model_en_mR": mling,
        "mling_over_en": ratio,
        "mling_trained": fair,
        "median_over_english": median_ratio,
        "below_by_script": misses,
        "heldout": unseen,
        "training_ratio": transfer_ratio,
        "targets": TARGETS,
        "met": {
            "en_mR": judged and en is not None and en >= TARGETS["en_mR"],
            "mling_over_en": judged and (ratio or 0) >= TARGETS["mling_over_en"],
            "worst_over_english": judged
            and (fair["worst_ratio"] or 0) >= TARGETS["worst_over_english"],
            "median_over_english": judged and (median_ratio or 0) >= TARGETS["median_over_english"],
            "minutes": seconds.get("total", float("inf")) / 60 <= TARGETS["minutes"],
        },
    }


def _mr(models: dict) -> dict[str, dict[str, float]]:
    """{model: {language: metrics}} -> {model: {language: mR in percent}}, scored ones only."""
    return {
        model: {lang: r["mR"] for lang, r in by_language.items() if r.get("mR") is not None}
        for model, by_language in models.items()
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _yes(met: bool) -> str:
    return "yes" if met else "no"


def summary_markdown(summary: dict, args: argparse.Namespace, seconds: dict) -> str:
    fair, met, target = summary["mling_trained"], summary["met"], TARGETS
    english = fair["english"]
    below = "; ".join(
        f"{script}: {', '.join(langs)}" for script, langs in summary["below_by_script"].items()
    )
    rows = [
        ["English model, English mR", f">= {target['en_mR']:.0f}",
         _fmt(summary["en_model_en_mR"]), _yes(met["en_mR"])],
        ["multilingual model's English / English model's", f">= {target['mling_over_en']}x",
         f"{_fmt(summary['mling_model_en_mR'])} / {_fmt(summary['en_model_en_mR'])} = "
         f"{_fmt(summary['mling_over_en'], 2)}x", _yes(met["mling_over_en"])],
        ["worst trained language / multilingual model's English",
         f">= {target['worst_over_english']}x",
         f"{fair['worst_language']} {_fmt(fair['worst'])} / {_fmt(english)} = "
         f"{_fmt(fair['worst_ratio'], 2)}x", _yes(met["worst_over_english"])],
        ["median trained language / multilingual model's English",
         f">= {target['median_over_english']}x",
         f"{_fmt(fair['median'])} / {_fmt(english)} = "
         f"{_fmt(summary['median_over_english'], 2)}x", _yes(met["median_over_english"])],
        ["the whole demo, minutes", f"<= {target['minutes']:.0f}",
         _fmt(seconds.get("total", 0) / 60), _yes(met["minutes"])],
    ]  # fmt: skip
    heldout_rows = [
        [lang, _fmt(v["mling"]), _fmt(v["en_model"]), v["pool"]]
        for lang, v in summary["heldout"].items()
    ]
    stages = ("emoji set", "vocabulary", "training en", "training mling", "evaluation", "total")
    minutes = {k: f"{seconds[k] / 60:.1f}" for k in stages if k in seconds}
    moved = set(summary["moved"])
    few = ", ".join(f"{lang} ({n})" for lang, n in summary["apart"].items() if lang not in moved)
    shared_few = ", ".join(f"{lang} ({summary['apart'][lang]})" for lang in summary["moved"])
    if summary["judged_on"] == "shared pool":
        judged_on = (
            f"judged on the shared pool: the {summary['images']:,} drawings named in all "
            f"{summary['compared_languages']} compared languages, chance mR "
            f"{summary['chance_mR']:.2f}"
        )
        if few:
            judged_on += f"; apart, naming fewer than {args.pool_min_images} drawings: {few}"
        if shared_few:
            judged_on += (
                f"; apart, naming {args.pool_min_images} or more but sharing too few with the "
                f"rest (fewest first): {shared_few}"
            )
        judged_on += (
            f". The trained languages' targets are judged on the "
            f"{summary['judged_languages']} of them in the pool"
        )
    else:
        judged_on = (
            f"no target judged, no shared pool: {summary['judged_on']}; each language on the "
            "drawings it names"
        )
    return "\n\n".join(
        [
            "# The emoji demo",
            f"Preset `{args.config}`, {args.steps} steps per model, seed {args.seed}. The "
            "English model by the paper's recipe on the English names; the multilingual model "
            f"by the transfer recipe from it (image tower frozen and cached, "
            f"{args.captions_per_image} names per drawing, the English one second, text-text weight "
            f"{args.text_text_weight:g}) on {summary['trained_languages']} languages, "
            f"{len(summary['heldout_languages'])} held out. {summary['languages']} languages "
            f"evaluated on {args.eval_images:,} held-out drawings (Fluent Emoji flat, a seeded "
            f"sample); {judged_on}.",
            markdown_table(["target", "wanted", "measured", "met"], rows),
            f"Trained languages under {target['worst_over_english']}x the multilingual model's "
            f"English ({len(fair['below'])}), by script: {below or 'none'}.",
            "Held-out languages (never trained on), mR of each model:",
            markdown_table(["language", "multilingual", "English model", "pool"], heldout_rows),
            "Minutes: "
            + ", ".join(f"{stage} {value}" for stage, value in minutes.items())
            + f". The multilingual model's training took {_fmt(summary['training_ratio'], 2)}x "
            "the English model's. Per language, models side by side: `eval/report.md` in the "
            "output folder.",
        ]
    )


@one_line_errors("demo_emoji.py")
def main(argv: list[str] | None = None) -> int:
    # config
    args = parse_args(argv)
    refuse_args(args, OPTION_CHECKS)  # before the first stage: its options, not theirs
    resolve_preset(args)
    code = code_state(MEASURED_MODULES)  # before the stages run: the code they ran
    # Stages run in the user's working directory with the paths as the user gave them, so the
    # reports name `demo-emoji-output/en/model`, never a path of this machine.
    out = args.output
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    stages = StageRunner("demo_emoji.py", out / "logs", total=STAGES)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    emoji = out / "emoji-set"
    heldout = tuple(x.strip() for x in args.heldout_languages.split(",") if x.strip())

    # 1-2: the set and its vocabulary (one vocabulary: the multilingual model starts from the
    # English model's text tower)
    build = ["--output", str(emoji), "--overwrite"]
    build += ["--min-names", str(args.min_names), "--seed", str(args.seed)]
    build += ["--languages", args.languages] if args.languages else []
    build += ["--cache", args.cache] if args.cache else []
    build += ["--pins", args.pins] if args.pins else []
    seconds["emoji set"] = stages.run("emoji_set", entry_point("data/emoji_set.py", *build))
    vocab = ["--input", str(emoji / "pairs"), "--output", str(out / "vocab"), "--overwrite"]
    vocab += ["--vocab-size", str(args.vocab_size), "--lang-column", "language"]
    vocab += ["--seed", str(args.seed), "--exemplar-share", str(args.exemplar_share)]
    seconds["vocabulary"] = stages.run(
        "build_vocab", entry_point("tokenizer_training/build_vocab.py", *vocab)
    )

    # 3-5: training, the English model first: the multilingual one starts from it
    stages.announce("training rows")
    english = training_rows(emoji / "pairs", ["en"], out / "pairs-en")
    multilingual = training_rows(emoji / "pairs", None, out / "pairs-mling", exclude=heldout)
    print(f"      en: {english} rows; mling: {multilingual} rows", flush=True)
    common = ["--config", args.config, "--tokenizer", str(out / "vocab")]
    common += ["--max-steps", str(args.steps), "--seed", str(args.seed), "--overwrite"]
    common += ["--positives", "image_id"]
    paper = ["--train-data", str(out / "pairs-en"), "--output-dir", str(out / "en"), *common]
    seconds["training en"] = stages.run("train-en", entry_point("mling/train.py", *paper))
    model = str(out / "en" / "model")
    transfer = ["--train-data", str(out / "pairs-mling"), "--output-dir", str(out / "mling")]
    transfer += [*common, "--init-image", model, "--init-text", model, *TRANSFER_FLAGS]
    transfer += ["--captions-per-image", str(args.captions_per_image)]
    transfer += ["--text-text-weight", str(args.text_text_weight), *args.mling_flags.split()]
    seconds["training mling"] = stages.run("train-mling", entry_point("mling/train.py", *transfer))

    # 6: evaluation, every language of the set, both models in one report
    sample = sample_heldout(
        emoji / "heldout" / "captions.jsonl", args.eval_images, args.seed, out / "heldout"
    )
    evaluation = ["--captions", str(sample), "--images", str(emoji / "heldout" / "images")]
    evaluation += ["--device", args.device, "--output", str(out / "eval")]
    evaluation += ["--batch-size", "256", "--title", "Emoji, held-out drawings"]  # short names
    evaluation += ["--pool-min-images", str(args.pool_min_images)]
    for name in MODELS:
        evaluation += ["--model", str(out / name / "model"), "--name", name]
    seconds["evaluation"] = stages.run(
        "retrieval_set", entry_point("eval/retrieval_set.py", *evaluation)
    )

    # 7: summary
    seconds["total"] = time.perf_counter() - started
    report = json.loads((out / "eval" / "report.json").read_text(encoding="utf-8"))
    summary = summarize(report, heldout, seconds)
    summary |= {"config": {k: str(v) for k, v in vars(args).items()}, "seconds": seconds}
    summary["provenance"] = code
    markdown = summary_markdown(summary, args, seconds)
    write_report(out, "report", summary, markdown)
    stages.announce(f"report: {out / 'report.md'}")
    print(markdown.split("\n\n", 2)[2].split("\n\nMinutes")[0])
    print(f"demo_emoji.py: done in {seconds['total'] / 60:.1f} min -> {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
