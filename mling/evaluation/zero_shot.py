"""Zero-shot image classification with prompt ensembling, in any language, models side by side.

    python eval/zero_shot.py --model runs/mling/model --images imagenette/val \
        --classes classes.json --output zs-out

`--images` holds one subfolder per class (or pass --labels FILE.jsonl); `--classes` gives class
names and templates per language (see mling/evaluation/zero_shot_data.py); without it the
folder names are the English class names. Writes zs-out/report.{json,md,csv,png} and prints the
fairness summary (and the top-1 table, up to 20 languages).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import torch

from mling.common.hub import Source
from mling.evaluation.classification import (
    class_prompts,
    ensemble_class_embeds,
    label_ranks,
    top_k_accuracy,
)
from mling.evaluation.embed import EmbedConfig, Embedder, language_list
from mling.evaluation.evaluator import Outcome, run_evaluator
from mling.evaluation.image_files import check_images
from mling.evaluation.zero_shot_data import (
    ClassPrompts,
    LabelledImages,
    read_class_prompts,
    read_labelled_images,
)
from mling.evaluation.zero_shot_report import write_zero_shot_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, help="image folder, one subfolder per class")
    parser.add_argument("--labels", help='JSONL of {"image": PATH, "label": CLASS} under --images')
    parser.add_argument(
        "--classes",
        help="JSON with class names and templates per language (default: the folder names, "
        "as English class names)",
    )
    parser.add_argument(
        "--languages",
        type=language_list,
        default=[],
        help="comma-separated (default: every templates language)",
    )
    parser.add_argument(
        "--title", default="Zero-shot classification", help="report title (default: %(default)s)"
    )


@dataclass(frozen=True)
class ZeroShotData:
    labelled: LabelledImages
    prompts: ClassPrompts
    labels: torch.Tensor  # (N,) class index of each image


def read(args: argparse.Namespace) -> ZeroShotData:
    """The labelled images and the class prompts, then every image checked once."""
    labelled = read_labelled_images(args.images, args.labels)
    prompts = read_class_prompts(args.classes, labelled.labels, args.languages or None)
    check_images(labelled.images, args.workers)
    index = {c: i for i, c in enumerate(prompts.classes)}
    return ZeroShotData(labelled, prompts, torch.tensor([index[x] for x in labelled.labels]))


def evaluate(
    args: argparse.Namespace, data: ZeroShotData, models: dict[str, Source], cfg: EmbedConfig
) -> Outcome:
    labelled, prompts, labels = data.labelled, data.prompts, data.labels

    # evaluate: images once per model, one classifier per language
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, source in models.items():
        embedder = Embedder(source.path, cfg)
        print(f"{name}: {source.describe()} on {embedder.device}", file=sys.stderr)
        image_embeds = embedder.images(labelled.images)
        results[name] = {}
        for language, templates in prompts.templates.items():
            texts, prompt_to_class = class_prompts(prompts.names[language], templates)
            class_embeds = ensemble_class_embeds(
                embedder.texts(texts), prompt_to_class, len(prompts.classes)
            )
            ranks = label_ranks(image_embeds, class_embeds, labels)
            results[name][language] = top_k_accuracy(ranks, num_classes=len(prompts.classes))

    # report
    counts = {
        "images": len(labelled.images),
        "classes": len(prompts.classes),
        "templates": {lang: len(t) for lang, t in prompts.templates.items()},
    }
    paths, table = write_zero_shot_report(args.output, args.title, results, counts, models, prompts)
    return Outcome(paths, table)


def main(argv: list[str] | None = None) -> int:
    return run_evaluator(
        "zero_shot.py", __doc__.split("\n\n")[0], add_arguments, read, evaluate, argv
    )


if __name__ == "__main__":
    raise SystemExit(main())
