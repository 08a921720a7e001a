"""Image-text retrieval on any captioned image set (Crossmodal-3600, XTD10, Flickr30K/COCO
Karpathy splits, your own JSONL), per language, models side by side.

    python eval/retrieval_set.py --model runs/mling/model --captions xm3600/captions.jsonl \
        --format xm3600 --images xm3600/images --languages en,de,ja,sw --output xm-out

Formats are described in mling/evaluation/caption_sets.py. Writes the same report as
eval/multi30k.py. A language ranks only the images it names, so languages are compared on the
images shared by those naming at least --pool-min-images (mling/evaluation/shared_pool.py).
"""

from __future__ import annotations

import argparse

from mling.common.hub import Source
from mling.evaluation.caption_sets import FORMATS, CaptionSet, read_caption_file
from mling.evaluation.embed import EmbedConfig, language_list
from mling.evaluation.evaluator import Outcome, run_evaluator
from mling.evaluation.image_files import check_images
from mling.evaluation.retrieval_report import write_retrieval_report
from mling.evaluation.score_models import evaluate_retrieval
from mling.evaluation.shared_pool import add_pool_argument, shared_pool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--captions", required=True, help="caption file")
    parser.add_argument("--images", required=True, help="folder the image paths are relative to")
    parser.add_argument(
        "--format",
        default="jsonl",
        choices=FORMATS,
        help="caption file layout, see mling/evaluation/caption_sets.py (default: %(default)s)",
    )
    parser.add_argument(
        "--languages",
        type=language_list,
        default=[],
        help="comma-separated (default: every language found)",
    )
    parser.add_argument(
        "--language",
        default="en",
        help="language of captions that carry none: karpathy, bare jsonl (default: %(default)s)",
    )
    parser.add_argument(
        "--split",
        default="test",
        help="karpathy split: train, val, test, restval (default: %(default)s)",
    )
    parser.add_argument("--title", help="report title (default: the caption file's name)")
    add_pool_argument(parser)


def read(args: argparse.Namespace) -> list[CaptionSet]:
    """The caption file's sets, then every image checked once, before any model runs."""
    sets = read_caption_file(
        args.captions, args.images, args.format, args.languages, args.split, args.language
    )
    check_images(sets[0].images, args.workers, hint="check --images and the caption file's paths")
    return sets


def evaluate(
    args: argparse.Namespace, sets: list[CaptionSet], models: dict[str, Source], cfg: EmbedConfig
) -> Outcome:
    # evaluate
    # languages are compared on the images they all name; each also on its own
    pool = shared_pool(sets, args.pool_min_images) if args.pool_min_images else None
    results, pool = evaluate_retrieval({n: s.path for n, s in models.items()}, sets, cfg, pool=pool)

    # report
    title = args.title or f"Image-text retrieval, {sets[0].name}"
    paths, table = write_retrieval_report(
        args.output,
        title,
        results,
        {s.language: s.describe() for s in sets},
        sources=models,
        sets=sets,
        pool=pool,
    )
    return Outcome(paths, table)


def main(argv: list[str] | None = None) -> int:
    return run_evaluator(
        "retrieval_set.py", __doc__.split("\n\n")[0], add_arguments, read, evaluate, argv
    )


if __name__ == "__main__":
    raise SystemExit(main())
