"""The pair schema: image-text pairs as img2dataset writes them, and how other layouts map onto it.

Every part of the toolkit reads and writes these columns; `--column-preset` and `--column
SRC=DEST` (the same two flags on every entry point that reads pairs) rename a source's columns.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

import pyarrow as pa

from mling.common.cli import deprecated_flag
from mling.common.errors import InputError

PAIR_SCHEMA = pa.schema(
    [
        ("key", pa.string()),  # unique id of the pair
        ("caption", pa.string()),  # the alt-text, any language
        ("url", pa.string()),  # where the image came from; null when unknown
        ("width", pa.int64()),  # original image width, pixels
        ("height", pa.int64()),  # original image height, pixels
        ("image", pa.binary()),  # encoded JPEG/PNG bytes; null when not downloaded
    ]
)
PAIR_COLUMNS = tuple(PAIR_SCHEMA.names)

COLUMN_PRESETS: dict[str, dict[str, str]] = {
    # img2dataset writes the sizes after its resize as width/height and the originals beside
    # them: the filters judge the originals, the resized ones stay as resized_*.
    "img2dataset": {
        "original_width": "width",
        "original_height": "height",
        "width": "resized_width",
        "height": "resized_height",
        "jpg": "image",
    },
    # LAION-400M names its rows SAMPLE_ID, COYO-700M id; LAION-5B and WIT have no key column
    # (the readers name each row by its file and number).
    "laion": {
        "TEXT": "caption",
        "URL": "url",
        "WIDTH": "width",
        "HEIGHT": "height",
        "SAMPLE_ID": "key",
    },
    "wit": {
        "caption_alt_text_description": "caption",
        "image_url": "url",
        "original_width": "width",
        "original_height": "height",
    },
    "coyo": {"text": "caption", "id": "key"},
}

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")

# Downloaders record each row's outcome: img2dataset's `status` is "success" when the image was
# fetched ("failed_to_download", "failed_to_resize", ... otherwise). Read where present.
STATUS_COLUMN = "status"
STATUS_OK = "success"


def as_text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column of any type as text: Arrow's cast where it has one, else each value's `str()`
    (a list key `[1]` -> "[1]"), bytes that are not UTF-8 with U+FFFD. For the columns read as
    text (key, status) whatever a source stored in them."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    try:
        return column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    return pa.array(
        [
            value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
            for value in column.to_pylist()
        ],
        pa.string(),
        mask=column.is_null().to_numpy(zero_copy_only=False),
    )


def image_type_problem(kind: pa.DataType) -> str | None:
    """Why an `image` column of this type cannot hold encoded images, or None: images are bytes
    (text is taken as bytes), or absent (null)."""
    readable = (
        pa.types.is_null,
        pa.types.is_binary,
        pa.types.is_large_binary,
        pa.types.is_binary_view,
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_string_view,
    )
    if any(test(kind) for test in readable):
        return None
    return (
        f"its image column holds {kind}, not encoded image bytes (JPEG/PNG); map the column of "
        "bytes with --column SRC=image, or rename this one"
    )


# Columns that tell a layout apart, checked in order; the first whose columns are all present
# (and that would rename something) is the layout. WIT has original_width/height too, but
# no downloader's status.
SIGNATURES: tuple[tuple[str, frozenset[str]], ...] = (
    ("img2dataset", frozenset({"original_width", "original_height", "status"})),
    ("wit", frozenset({"caption_alt_text_description"})),
    ("laion", frozenset({"TEXT", "URL"})),
    ("coyo", frozenset({"text", "url", "image_phash"})),
)


def detect_preset(names: Iterable[str]) -> str | None:
    """The column preset a source's column names call for, or None for the pair schema."""
    names = set(names)
    for preset, needed in SIGNATURES:
        if needed <= names:
            return preset
    return None


def column_map(preset: str | None = None, specs: Iterable[str] | None = None) -> dict[str, str]:
    """Source column -> pair-schema column, from a preset and `SRC=DEST` flags (flags win)."""
    mapping: dict[str, str] = {}
    if preset:
        if preset not in COLUMN_PRESETS:
            names = ", ".join(sorted(COLUMN_PRESETS))
            raise InputError(f"unknown column preset {preset!r}; choose one of: {names}")
        mapping.update(COLUMN_PRESETS[preset])
    for spec in specs or ():
        source, sep, dest = spec.partition("=")
        if not sep or not source or dest not in PAIR_COLUMNS:
            raise InputError(
                f"bad --column {spec!r}: write SOURCE=DEST with DEST one of {', '.join(PAIR_COLUMNS)}"
            )
        mapping[source] = dest
    return mapping


def add_column_arguments(parser: argparse.ArgumentParser, old_preset_flag: bool = False) -> None:
    """`--column-preset NAME` and `--column SRC=DEST` (repeatable), as every entry point spells
    them (`parser` may be an argument group). `old_preset_flag` keeps the filter's old spelling
    `--preset` for one release, with a one-line notice."""
    help_preset = "source layout: " + ", ".join(
        f"{name} ({', '.join(f'{s}->{d}' for s, d in mapping.items())})"
        for name, mapping in sorted(COLUMN_PRESETS.items())
    )
    parser.add_argument("--column-preset", choices=sorted(COLUMN_PRESETS), help=help_preset)
    if old_preset_flag:
        parser.add_argument(
            "--preset",
            dest="column_preset",
            choices=sorted(COLUMN_PRESETS),
            action=deprecated_flag("--column-preset"),
            help=argparse.SUPPRESS,
        )
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="SRC=DEST",
        help="rename a source column to a pair column (repeatable; wins over the preset)",
    )
