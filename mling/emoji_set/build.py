"""Build a real multilingual image-text set: open emoji drawings named in 100+ languages by CLDR.

    python data/emoji_set.py --fetch                # the pinned packages into the cache
    python data/emoji_set.py --output emoji-set     # build from the cache (no network)

Sources (`mling/emoji_set/sources.py`): five artists' drawings for training (OpenMoji,
EmojiOne 1 and 2, Firefox OS, Streamline), Microsoft's Fluent Emoji (flat) held out for
evaluation, and the Unicode CLDR annotations for the names, each an npm tarball at a pinned
version and integrity. Writes:

    OUTPUT/pairs/part-*.parquet       training pairs, one per (drawing, language), shuffled:
                                      pair schema + language, image_id (the emoji), emoji
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
from mling.common.cli import (
    OneLineParser,
    add_overwrite_argument,
    environment_epilog,
    one_line_errors,
)
from mling.common.errors import InputError, file_system_errors
from mling.common.field_options import at_least, refuse_args
from mling.common.processes import forked_map
from mling.emoji_set.cldr import read_annotations, script_of
from mling.emoji_set.drawings import READERS, Drawing, rasterize
from mling.emoji_set.emoji_report import copy_licenses, summarize, write_emoji_report, write_readme
from mling.emoji_set.selection import EMOJI_CHOICES, ORDERS, heldout_lines, pair_rows, select
from mling.emoji_set.sources import (
    PINS,
    REGISTRY,
    cache_root,
    read_pins,
    tarballs,
    training_sets,
)
from mling.pairs.schema import PAIR_SCHEMA
from mling.pairs.shards import record_batches, write_pair_shards

EMOJI_SCHEMA = (
    PAIR_SCHEMA.append(pa.field("language", pa.string()))  # CLDR locale id: ja, sr-Latn
    .append(pa.field("image_id", pa.string()))  # the emoji's code points: rows of one emoji
    .append(pa.field("emoji", pa.string()))  # the emoji itself, for people reading rows
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        description=__doc__.split("\n\n")[0],
        epilog=environment_epilog(
            "the cache is $MLING_CACHE when set, else $XDG_CACHE_HOME/mling (~/.cache/mling)"
        ),
    )
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
        help="cache folder, tarballs in CACHE/npm/ (default: $MLING_CACHE, else "
        "$XDG_CACHE_HOME/mling, else ~/.cache/mling)",
    )
    parser.add_argument(
        "--registry", default=REGISTRY, help="npm registry for --fetch (default: %(default)s)"
    )
    parser.add_argument("--pins", type=Path, help="JSON of the pinned packages (default built in)")
    parser.add_argument(
        "--languages",
        help="comma-separated CLDR locales (default: every locale without a region that names "
        "at least --min-names of the emoji)",
    )
    parser.add_argument(
        "--min-names", type=int, default=100, help="see --languages (default: %(default)s)"
    )
    parser.add_argument(
        "--emoji",
        choices=EMOJI_CHOICES,
        default="shared",
        help="shared: emoji drawn in both sets, so each has a held-out ground truth; all: "
        "every training drawing with a name (default: %(default)s)",
    )
    parser.add_argument(
        "--caption",
        choices=("name", "keywords"),
        default="name",
        help="caption of a training pair: the CLDR name, or the name and its keywords "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--drawings",
        help="comma-separated training sets (default: all): "
        + ", ".join(set_labels(PINS).values()),
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the rows' order (default: %(default)s)"
    )
    parser.add_argument(
        "--order",
        choices=ORDERS,
        default="rows",
        help="rows: every row shuffled on its own (default); drawings: drawings shuffled, each "
        "with its languages side by side (for training with --group-rows)",
    )
    parser.add_argument(
        "--image-px",
        type=int,
        default=64,
        help="side of the PNG images, pixels, 8 or more (default: %(default)s)",
    )
    parser.add_argument(
        "--shard-rows",
        type=int,
        default=50_000,
        help="training pairs per parquet shard (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes drawing (default: %(default)s: the CPUs, at most 2)",
    )
    return parser.parse_args(argv)


# the range of every numeric option, checked before any work
OPTION_CHECKS = {
    "--min-names": at_least(1),
    "--seed": at_least(0),
    "--image-px": at_least(8),
    "--shard-rows": at_least(1),
    "--workers": at_least(1),
}

# Rows are shuffled, so one shard holds every drawing many times over: a dictionary big enough
# for all of them (6,000 PNGs of 2 kB) stores each once instead of once per row (10x smaller).
DICTIONARY_BYTES = 64 << 20


def set_labels(pins) -> dict[str, str]:
    """Training set key -> its short name: "train" -> "openmoji", "train-fxemoji" -> "fxemoji"."""
    return {
        key: key.removeprefix("train-") if key != "train" else pins[key].name.rsplit("/", 1)[-1]
        for key in training_sets(pins)
    }


def chosen_sets(flag: str | None, known: dict[str, str]) -> list[str]:
    """--drawings as a list of set names (default: all), one InputError line for an unknown one."""
    if not flag:
        return list(known)
    chosen = [name.strip() for name in flag.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if unknown or not chosen:
        raise InputError(
            f"--drawings {flag!r}: {', '.join(unknown) or 'none given'}; "
            f"choose from {', '.join(known)}"
        )
    return list(dict.fromkeys(chosen))


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
    args = parse_args(argv)
    # a full disk, a read-only folder, a size limit: one line naming the file
    with file_system_errors(args.output):
        return build(args)


def build(args: argparse.Namespace) -> int:
    # config
    if args.output is None and not args.fetch:
        raise InputError("give --output DIR to build the set, or --fetch to fill the cache")
    refuse_args(args, OPTION_CHECKS)
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
    english = {key: annotation.name for key, annotation in names.get("en", {}).items()}
    drawn_by = {label: key for key, label in set_labels(pins).items()}
    train_sets = chosen_sets(args.drawings, drawn_by)
    train_drawings = {
        label: READERS[pins[drawn_by[label]].layout](paths[drawn_by[label]], english)
        for label in train_sets
    }
    heldout_drawings = READERS[pins["heldout"].layout](paths["heldout"], english)

    # selection
    languages = [x.strip() for x in (args.languages or "").split(",") if x.strip()] or None
    trained = set().union(*train_drawings.values())
    selection = select(names, trained, set(heldout_drawings), args.emoji, languages, args.min_names)

    output = args.output
    with claim_output(output, args.overwrite), staged_output(output, args.overwrite) as tmp:
        # training pairs
        images = {
            label: draw_all(drawings, sorted(set(selection.emoji) & set(drawings)),
                            args.image_px, args.workers)
            for label, drawings in train_drawings.items()
        }  # fmt: skip
        spelled = {}
        for drawings in train_drawings.values():
            for key, drawing in drawings.items():
                spelled.setdefault(key, drawing.emoji)
        urls = {
            label: f"npm:{pins[drawn_by[label]].name}@{pins[drawn_by[label]].version}"
            for label in train_sets
        }
        rows = pair_rows(
            selection,
            names,
            images,
            spelled,
            args.image_px,
            urls,
            args.caption == "keywords",
            args.seed,
            args.order,
        )
        written: Counter = Counter()
        shards = write_pair_shards(
            record_batches(counted(rows, written), EMOJI_SCHEMA, 4096),
            tmp / "pairs",
            args.shard_rows,
            dictionary_pagesize_limit=DICTIONARY_BYTES,
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
            "training_sets": {label: drawn_by[label] for label in train_sets},
            "drawings": {label: len(images[label]) for label in train_sets},
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
        f"emoji_set.py: {summary['pairs']} pairs ({sum(summary['drawings'].values())} drawings "
        f"of {summary['emoji']} emoji x {summary['languages']} languages), "
        f"{summary['heldout_images']} held-out images, {summary['seconds']} s -> {output}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
