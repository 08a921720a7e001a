"""Multi30k zero-shot image-text retrieval in en/de/fr/cs, models side by side (ALIGN Table 11).

    python eval/multi30k.py --model runs/mling/model --model runs/en/model \
        --multi30k multi30k-dataset --images flickr30k-images --output eval-out

Writes eval-out/report.{json,md,csv,png} and prints the mR table. Defaults follow the paper:
the 1,000-image test_2016 split, en/de with 5 captions per image (task 2), fr/cs with 1 (task 1).
"""

from __future__ import annotations

import argparse
import sys
import time

from data.pairs import InputError
from eval.embed import add_model_arguments, embed_config, language_list, model_names
from eval.image_files import check_images
from eval.multi30k_data import LANGUAGES, SOURCES, SPLITS, comparability_note, read_multi30k
from eval.retrieval_eval import evaluate_retrieval
from eval.retrieval_report import MULTI30K_REFERENCE, write_retrieval_report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--multi30k", required=True, help="clone of github.com/multi30k/dataset")
    parser.add_argument("--images", required=True, help="folder of the split's images")
    parser.add_argument("--split", default="test_2016", choices=SPLITS)
    parser.add_argument(
        "--languages", type=language_list, default=",".join(LANGUAGES), help="comma-separated"
    )
    parser.add_argument(
        "--captions",
        default="auto",
        choices=SOURCES,
        help="auto: task2's 5 captions for en/de where the split has them, task1 otherwise",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    # config
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        cfg = embed_config(args)
        models = model_names(args.model, args.name)

        # data: every language's captions, then every image checked once before any model runs
        sets = [
            read_multi30k(args.multi30k, lang, args.split, args.captions, args.images)
            for lang in args.languages
        ]
        check_images(
            [path for caption_set in sets for path in caption_set.images],
            args.workers,
            hint="pass --images pointing at the folder that holds the split's image files",
        )

        # evaluate
        results = evaluate_retrieval(models, sets, cfg)
    except InputError as error:
        print(f"multi30k.py: {error}", file=sys.stderr)
        return 2

    # report
    note = comparability_note(args.split, len(sets[0].images))
    paths, table = write_retrieval_report(
        args.output,
        f"Multi30k zero-shot retrieval, {args.split}",
        results,
        {s.language: s.describe() for s in sets},
        reference=MULTI30K_REFERENCE if args.split == "test_2016" else None,
        notes=[note] if note else [],
    )
    print(table)
    if note:
        print(f"note: {note}")
    print(f"report: {paths['md']} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
