"""Multi30k zero-shot image-text retrieval in en/de/fr/cs, models side by side (ALIGN Table 11).

    python eval/multi30k.py --model runs/mling/model --model runs/en/model \
        --multi30k multi30k-dataset --images flickr30k-images --output eval-out

Writes eval-out/report.{json,md,csv,png} and prints the mR table. Defaults follow the paper:
the 1,000-image test_2016 split, en/de with 5 captions per image (task 2), fr/cs with 1 (task 1).
"""

from __future__ import annotations

import argparse

from mling.common.hub import Source
from mling.evaluation.caption_sets import CaptionSet
from mling.evaluation.embed import EmbedConfig, language_list
from mling.evaluation.evaluator import Outcome, run_evaluator
from mling.evaluation.image_files import check_images
from mling.evaluation.multi30k_data import (
    LANGUAGES,
    SOURCES,
    SPLITS,
    comparability_note,
    read_multi30k,
)
from mling.evaluation.retrieval_report import MULTI30K_REFERENCE, write_retrieval_report
from mling.evaluation.score_models import evaluate_retrieval
from mling.evaluation.shared_pool import add_pool_argument, shared_pool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--multi30k", required=True, help="clone of github.com/multi30k/dataset")
    parser.add_argument("--images", required=True, help="folder of the split's images")
    parser.add_argument(
        "--split",
        default="test_2016",
        choices=SPLITS,
        help="the split's images and captions (default: %(default)s, the paper's 1,000 images)",
    )
    parser.add_argument(
        "--languages",
        type=language_list,
        default=",".join(LANGUAGES),
        help="comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--captions",
        default="auto",
        choices=SOURCES,
        help="auto: task2's 5 captions for en/de where the split has them, task1 otherwise "
        "(default: %(default)s)",
    )
    add_pool_argument(parser)  # every language names every image: the pool is the whole split


def read(args: argparse.Namespace) -> list[CaptionSet]:
    """Every language's captions, then every image checked once, before any model runs."""
    sets = [
        read_multi30k(args.multi30k, lang, args.split, args.captions, args.images)
        for lang in args.languages
    ]
    check_images(
        [path for caption_set in sets for path in caption_set.images],
        args.workers,
        hint="pass --images pointing at the folder that holds the split's image files",
    )
    return sets


def evaluate(
    args: argparse.Namespace, sets: list[CaptionSet], models: dict[str, Source], cfg: EmbedConfig
) -> Outcome:
    # evaluate
    # languages are compared on the images they all name; each also on its own
    pool = shared_pool(sets, args.pool_min_images) if args.pool_min_images else None
    results, pool = evaluate_retrieval({n: s.path for n, s in models.items()}, sets, cfg, pool=pool)

    # report
    note = comparability_note(args.split, len(sets[0].images))
    paths, table = write_retrieval_report(
        args.output,
        f"Multi30k zero-shot retrieval, {args.split}",
        results,
        {s.language: s.describe() for s in sets},
        reference=MULTI30K_REFERENCE if args.split == "test_2016" else None,
        notes=[note] if note else [],
        sources=models,
        sets=sets,
        pool=pool,
    )
    return Outcome(paths, table, [note] if note else [])


def main(argv: list[str] | None = None) -> int:
    return run_evaluator(
        "multi30k.py", __doc__.split("\n\n")[0], add_arguments, read, evaluate, argv
    )


if __name__ == "__main__":
    raise SystemExit(main())
