"""Image-text retrieval on any captioned image set (Crossmodal-3600, XTD10, Flickr30K/COCO
Karpathy splits, your own JSONL), per language, models side by side.

    python eval/retrieval_set.py --model runs/mling/model --captions xm3600/captions.jsonl \
        --format xm3600 --images xm3600/images --languages en,de,ja,sw --output xm-out

Formats are described in eval/caption_sets.py. Writes the same report as eval/multi30k.py.
"""

from __future__ import annotations

import argparse
import sys
import time

from data.pairs import InputError
from eval.caption_sets import FORMATS, read_caption_file
from eval.embed import add_model_arguments, embed_config, language_list, model_names
from eval.image_files import check_images
from eval.retrieval_eval import evaluate_retrieval
from eval.retrieval_report import write_retrieval_report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--captions", required=True, help="caption file")
    parser.add_argument("--images", required=True, help="folder the image paths are relative to")
    parser.add_argument("--format", default="jsonl", choices=FORMATS)
    parser.add_argument(
        "--languages",
        type=language_list,
        default=[],
        help="comma-separated (default: every language found)",
    )
    parser.add_argument(
        "--language",
        default="en",
        help="language of captions that carry none (karpathy, bare jsonl)",
    )
    parser.add_argument("--split", default="test", help="karpathy split: train, val, test, restval")
    parser.add_argument("--title", help="report title (default: the caption file's name)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    # config
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        cfg = embed_config(args)
        models = model_names(args.model, args.name)

        # data
        sets = read_caption_file(
            args.captions, args.images, args.format, args.languages, args.split, args.language
        )
        check_images(
            sets[0].images, args.workers, hint="check --images and the caption file's paths"
        )

        # evaluate
        results = evaluate_retrieval(models, sets, cfg)
    except InputError as error:
        print(f"retrieval_set.py: {error}", file=sys.stderr)
        return 2

    # report
    title = args.title or f"Image-text retrieval, {sets[0].name}"
    paths, table = write_retrieval_report(
        args.output, title, results, {s.language: s.describe() for s in sets}
    )
    print(table)
    print(f"report: {paths['md']} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
