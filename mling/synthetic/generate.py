"""Generate a synthetic, multilingual, noisy image-alt-text corpus and a Multi30k-layout test set.

    python data/synthetic.py --output demo-output/synthetic --pairs 30000 --seed 0

Writes, deterministically for a seed (no downloads):

    OUTPUT/pairs/part-*.parquet        the noisy corpus, pair schema with image bytes, plus
                                       `synthetic_noise` and `synthetic_language`
    OUTPUT/multi30k/data/task{1,2}/... the test set in the official Multi30k layout
    OUTPUT/images/*.jpg                the test images (--images for eval/multi30k.py, and
                                       --eval-images for data/filter.py's near-duplicate check)
    OUTPUT/report.{json,md,png}        what was generated: rows per noise kind and language

Scenes are in `mling/synthetic/scenes.py`, captions in `mling/synthetic/captions.py`, noise in `mling/synthetic/noise.py`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, fields
from functools import partial
from multiprocessing import get_context

import pyarrow as pa

from mling.common.atomic import claim_output, staged_output
from mling.common.cli import OneLineParser, add_overwrite_argument, one_line_errors
from mling.common.errors import InputError, file_system_errors
from mling.common.field_options import at_least, between, refuse_args
from mling.common.storage import local_path
from mling.pairs.schema import PAIR_SCHEMA
from mling.pairs.shards import record_batches, write_pair_shards
from mling.synthetic.captions import LANGUAGES, PHRASINGS
from mling.synthetic.noise import KINDS, NoiseRates
from mling.synthetic.row_plan import LANGUAGE_WEIGHTS, RowPlan, SceneConfig, build_row, plan_corpus
from mling.synthetic.synthetic_multi30k import write_multi30k
from mling.synthetic.synthetic_report import write_synthetic_report

CORPUS_SCHEMA = PAIR_SCHEMA.append(pa.field("synthetic_noise", pa.string())).append(
    pa.field("synthetic_language", pa.string())
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="output folder (local)")
    add_overwrite_argument(parser)
    parser.add_argument(
        "--pairs", type=int, default=30_000, help="rows in the noisy corpus (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="same seed, same output (default: %(default)s)"
    )
    parser.add_argument(
        "--image-px",
        type=int,
        default=SceneConfig.image_px,
        help="side of the stored images, pixels, 16 or more (default: %(default)s)",
    )
    parser.add_argument(
        "--test-images",
        type=int,
        default=1000,
        help="images in the Multi30k-layout test set; the real one has 1000 (default: %(default)s)",
    )
    parser.add_argument(
        "--two-groups",
        type=float,
        default=SceneConfig.two_groups,
        help="fraction of scenes with two groups of objects (default: %(default)s)",
    )
    parser.add_argument(
        "--reuse-threshold",
        type=int,
        default=1000,
        help="each reused image gets more alt-texts than this; pass the same "
        "number to data/filter.py when you scale it down (default: %(default)s)",
    )
    parser.add_argument(
        "--noise",
        action="append",
        default=[],
        metavar="KIND=RATE",
        help="override a noise rate (repeatable), e.g. mismatched=0.1; kinds and default rates: "
        + ", ".join(f"{kind}={getattr(NoiseRates(), kind)}" for kind in KINDS),
    )
    parser.add_argument(
        "--shard-rows",
        type=int,
        default=10_000,
        help="rows per parquet shard (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes rendering images (default: %(default)s: the CPUs, at most 2)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    args.output = local_path(args.output, "--output", "write it here, then copy it")
    return args


# the range of every numeric option, checked before any work
OPTION_CHECKS = {
    "--pairs": at_least(1),
    "--seed": at_least(0),
    "--image-px": at_least(16),
    "--test-images": at_least(1),
    "--two-groups": between(0, 1),
    "--reuse-threshold": at_least(1),
    "--shard-rows": at_least(1),
    "--workers": at_least(1),
}


def noise_rates(specs: list[str]) -> NoiseRates:
    rates = NoiseRates()
    for spec in specs:
        kind, _, value = spec.partition("=")
        if kind not in KINDS:
            raise InputError(f"unknown noise kind {kind!r}; choose from {', '.join(KINDS)}")
        try:
            setattr(rates, kind, float(value))
        except ValueError:
            raise InputError(f"--noise {spec!r}: write KIND=RATE, e.g. {kind}=0.05") from None
        if not 0 <= getattr(rates, kind) <= 1:  # nan too
            raise InputError(f"--noise {spec}: a rate is a fraction of the pairs, 0 to 1")
    return rates


def build_rows(plans: list[RowPlan], seed: int, scenes: SceneConfig, workers: int, quiet: bool):
    """Rows in plan order, built by `workers` processes; the output does not depend on it."""
    from tqdm import tqdm

    build = partial(build_row, seed=seed, scenes=scenes)
    bar = tqdm(
        total=len(plans), desc="synthetic pairs", unit="pair", disable=quiet, file=sys.stderr
    )
    if workers <= 1:
        for plan in plans:
            yield build(plan)
            bar.update()
    else:
        # spawn, not fork: callers (tests, the demo) may have torch threads running
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for row in pool.map(build, plans, chunksize=256):
                yield row
                bar.update()
    bar.close()


@one_line_errors("synthetic.py")
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # a full disk, a read-only folder, a size limit: one line naming the file
    with file_system_errors(args.output):
        return build(args)


def build(args: argparse.Namespace) -> int:
    # config
    refuse_args(args, OPTION_CHECKS)
    rates = noise_rates(args.noise)
    scenes = SceneConfig(image_px=args.image_px, two_groups=args.two_groups)
    started = time.perf_counter()
    output = args.output
    with claim_output(output, args.overwrite), staged_output(output, args.overwrite) as tmp:
        # test set first: the near-duplicate noise copies its images
        write_multi30k(tmp / "multi30k", tmp / "images", args.test_images, args.seed, scenes)

        # corpus
        plans = plan_corpus(args.pairs, args.seed, rates, args.test_images, args.reuse_threshold)
        rows = build_rows(plans, args.seed, scenes, args.workers, args.quiet)
        shards = write_pair_shards(
            record_batches(rows, CORPUS_SCHEMA, 2048), tmp / "pairs", args.shard_rows
        )

        # report
        noise = Counter(plan.kind for plan in plans)
        languages = Counter(plan.language for plan in plans)
        summary = {
            "config": {**vars(args), "output": str(output), "rates": asdict(rates)},
            "scene": asdict(scenes),
            "pairs": args.pairs,
            "noise": {k: noise.get(k, 0) for k in ("clean", *KINDS)},
            "noise_rates": {f.name: getattr(rates, f.name) for f in fields(rates)},
            "languages": {k: languages.get(k, 0) for k in (*LANGUAGES, "und")},
            "language_weights": LANGUAGE_WEIGHTS,
            "phrasings_per_language": PHRASINGS,
            "reused_images": len({p.ref for p in plans if p.kind == "reused_image"}),
            "test_images": args.test_images,
            "shards": len(shards),
            "seconds": round(time.perf_counter() - started, 1),
        }
        write_synthetic_report(tmp, summary)
    print(
        f"synthetic.py: {args.pairs} pairs ({noise['clean']} clean) in {len(shards)} shard(s), "
        f"{args.test_images} test images, {summary['seconds']} s -> {output}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
