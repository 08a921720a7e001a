"""Build a real multilingual image-text set: open emoji drawings named in 100+ languages by CLDR.

    python data/emoji_set.py --fetch                # the pinned packages into the cache
    python data/emoji_set.py --output emoji-set     # build from the cache (no network)

Sources (`mling/emoji_set/sources.py`): OpenMoji's drawings for training, Microsoft's Fluent
Emoji (flat) held out for evaluation, and the Unicode CLDR annotations for the names, each an
npm tarball at a pinned version and integrity. Writes:

    OUTPUT/pairs/part-*.parquet       training pairs: pair schema + language, image_id, emoji
    OUTPUT/heldout/captions.jsonl     the retrieval set on the held-out drawings, in the
    OUTPUT/heldout/images/*.png       JSONL format of eval/retrieval_set.py
    OUTPUT/README.md, licenses/       sources, versions, integrity and licenses
    OUTPUT/report.{json,md}           counts per language and script
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa

from mling.common.atomic import check_output, claim_output, staged_output, write_atomic
from mling.common.cli import add_overwrite_argument, one_line_errors
from mling.common.errors import InputError
from mling.common.processes import forked_map
from mling.emoji_set.cldr import read_annotations, script_of
from mling.emoji_set.drawings import READERS, Drawing, rasterize
from mling.emoji_set.emoji_report import copy_licenses, summarize, write_emoji_report, write_readme
from mling.emoji_set.selection import EMOJI_CHOICES, heldout_lines, pair_rows, select
from mling.emoji_set.sources import REGISTRY, cache_root, read_pins, tarballs
from mling.pairs.schema import PAIR_SCHEMA
from mling.pairs.shards import record_batches, write_pair_shards

EMOJI_SCHEMA = (
    PAIR_SCHEMA.append(pa.field("language", pa.string()))  # CLDR locale id: ja, sr-Latn
    .append(pa.field("image_id", pa.string()))  # the emoji's code points: rows of one image
    .append(pa.field("emoji", pa.string()))  # the emoji itself, for people reading rows
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, help="output folder (without it: only --fetch)")
    add_overwrite_argument(parser)
    parser.add_argument(
        "--fetch",
        action="store_true",
        help="download the pinned packages missing from the cache (the only network access)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="cache folder, tarballs in CACHE/npm/ (default $MLING_CACHE or ~/.cache/mling)",
    )
    parser.add_argument("--registry", default=REGISTRY, help="npm registry for --fetch")
    parser.add_argument("--pins", type=Path, help="JSON of the pinned packages (default built in)")
    parser.add_argument(
        "--languages",
        help="comma-separated CLDR locales (default: every locale without a region that names "
        "at least --min-names of the emoji)",
    )
    parser.add_argument("--min-names", type=int, default=100, help="see --languages")
    parser.add_argument(
        "--emoji",
        choices=EMOJI_CHOICES,
        default="shared",
        help="shared: emoji drawn in both sets, so each has a held-out ground truth; all: "
        "every training drawing with a name",
    )
    parser.add_argument(
        "--caption",
        choices=("name", "keywords"),
        default="name",
        help="caption of a training pair: the CLDR name, or the name and its keywords",
    )
    parser.add_argument("--image-px", type=int, default=64, help="side of the PNG images, pixels")
    parser.add_argument("--shard-rows", type=int, default=50_000)
    parser.add_argument(
        "--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes drawing"
    )
    return parser.parse_args(argv)


def _draw(svg: str, px: int) -> bytes:
    return rasterize(svg, px)


def draw_all(drawings: dict[str, Drawing], keys, px: int, workers: int) -> dict[str, bytes]:
    """key -> PNG bytes for `keys`, drawn by `workers` processes."""
    keys = list(keys)
    svgs = (drawings[k].svg for k in keys)
    return dict(zip(keys, forked_map(_draw, svgs, px, workers), strict=True))


def counted(rows, counts: Counter):
    """The rows, unchanged, counting them per language as they pass (the report's pairs are
    the rows written, not a second computation of them)."""
    for row in rows:
        counts[row["language"]] += 1
        yield row


@one_line_errors("emoji_set.py")
def main(argv: list[str] | None = None) -> int:
    # config
    args = parse_args(argv)
    if args.output is None and not args.fetch:
        raise InputError("give --output DIR to build the set, or --fetch to fill the cache")
    if args.image_px < 8:
        raise InputError(f"--image-px {args.image_px}: give at least 8")
    pins = read_pins(args.pins)
    cache = cache_root(args.cache)
    if args.output is not None:  # refuse a bad output before any download
        check_output(args.output, args.overwrite)
    started = time.perf_counter()

    # sources: every tarball present and matching its pin, or one line saying how to get it
    paths = tarballs(pins, cache, args.fetch, args.registry)
    if args.output is None:
        print(f"emoji_set.py: {len(paths)} packages in {cache / 'npm'}, integrity checked")
        return 0
    names = read_annotations([paths["names"], paths["names_derived"]])
    train_drawings = READERS[pins["train"].layout](paths["train"])
    heldout_drawings = READERS[pins["heldout"].layout](paths["heldout"])

    # selection
    languages = [x.strip() for x in (args.languages or "").split(",") if x.strip()] or None
    selection = select(
        names, set(train_drawings), set(heldout_drawings), args.emoji, languages, args.min_names
    )

    output = args.output
    with claim_output(output, args.overwrite), staged_output(output, args.overwrite) as tmp:
        # training pairs
        images = draw_all(train_drawings, selection.emoji, args.image_px, args.workers)
        train = pins["train"]
        spelled = {key: drawing.emoji for key, drawing in train_drawings.items()}
        rows = pair_rows(
            selection,
            names,
            images,
            spelled,
            args.image_px,
            f"npm:{train.name}@{train.version}",
            args.caption == "keywords",
        )
        written: Counter = Counter()
        shards = write_pair_shards(
            record_batches(counted(rows, written), EMOJI_SCHEMA, 4096),
            tmp / "pairs",
            args.shard_rows,
        )

        # held-out retrieval set
        heldout_images = draw_all(heldout_drawings, selection.heldout, args.image_px, args.workers)
        for key, png in heldout_images.items():
            write_atomic(tmp / "heldout" / "images" / f"{key}.png", png)
        lines = list(heldout_lines(selection, names, spelled))
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        write_atomic(tmp / "heldout" / "captions.jsonl", text.encode("utf-8"))

        # report and README
        per_language = {}
        for language in selection.languages:
            per_language[language] = {
                "script": script_of(language),
                "named": sum(1 for key in selection.emoji if key in names[language]),
                "pairs": written[language],
                "heldout_captions": sum(1 for line in lines if language in line["captions"]),
            }
        summary = {
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "registry": args.registry,
            "sources": {key: {**vars(p), "url": p.url(args.registry)} for key, p in pins.items()},
            "emoji": len(selection.emoji),
            "heldout_images": len(selection.heldout),
            "languages": len(selection.languages),
            "shards": len(shards),
            "per_language": per_language,
            **summarize(per_language, {k: v["script"] for k, v in per_language.items()}),
            "seconds": round(time.perf_counter() - started, 1),
        }
        licenses = copy_licenses(paths, tmp)
        write_readme(tmp, pins, summary, licenses)
        write_emoji_report(tmp, summary)
    print(
        f"emoji_set.py: {summary['pairs']} pairs ({summary['emoji']} emoji x {summary['languages']} "
        f"languages), {summary['heldout_images']} held-out images, {summary['seconds']} s "
        f"-> {output}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
