"""ALIGN's alt-text filters, one record each: name, order, predicate, threshold, doc sentence.

Every input row ends kept or dropped with exactly one reason: the first check it fails in
`REASONS` order. The order is part of the interface (reports and `--write-rejected` output
name these reasons), so new checks are added within their group, never reordered. Everything
else is made from these records: the decision SQL on both engines (`filter_sql.py`), the
command-line options (`pipeline.py`: one per threshold, its type, default, help and range from
the config field the record names), the report's reason order (`filter_report.py`) and the
reasons table in docs/filter.md (`reasons_table`, kept in step by `benchmarks/update_docs.py`).

The malformed-row checks come first and are computed in Arrow by the pre-pass (`prepass.py`),
in this order; `duplicate_key` alone needs the engine. The frequency statistics (alt-texts per
image, images per alt-text, the vocabulary) are counted over the well-formed rows, independent
of the other filters, so each filter is one predicate per row and the order only decides which
reason a row that fails several gets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import Field, dataclass, fields
from typing import Any

from mling.common.errors import InputError
from mling.common.field_options import above, at_least, between, check_fields, option
from mling.common.report import markdown_table

PREPASS, ENGINE = "prepass", "engine"  # where a reason's check is computed


@dataclass(frozen=True)
class Reason:
    name: str  # as written in reports and rejected shards; a SQL identifier, never renamed
    group: str  # "malformed", "image" or "text"
    meaning: str  # one line for the report legend
    doc: str  # when a row is dropped: the reasons table of docs/filter.md
    computed: str = ENGINE  # PREPASS (Arrow, prepass.py) or ENGINE (SQL, filter_sql.py)
    # Image and text filters: a condition in SQL both engines speak, true when the row fails,
    # over the columns in `reads` (the pre-pass's features, or filter_sql.COUNTS) and the
    # threshold as {field}. It is only asked of well-formed rows.
    predicate: str = ""
    reads: tuple[str, ...] = ()
    field: str | None = None  # its threshold: a field of ImageFilterConfig or TextFilterConfig


REASONS: tuple[Reason, ...] = (
    Reason(
        "download_failed",
        "malformed",
        "the downloader's status is not success",
        "the downloader's `status` (img2dataset's) is not `success`: no image was fetched",
        PREPASS,
    ),
    Reason("missing_key", "malformed", "key is null or empty", "key null or empty", PREPASS),
    Reason(
        "duplicate_key",
        "malformed",
        "key already used by an earlier row",
        "an earlier row has the same key (the first stays)",
    ),
    Reason(
        "missing_caption",
        "malformed",
        "caption is null, absent or blank",
        "caption null, absent or blank",
        PREPASS,
    ),
    Reason(
        "caption_not_text",
        "malformed",
        "caption is stored as a non-text value",
        "caption stored as a number or other non-text",
        PREPASS,
    ),
    Reason(
        "invalid_utf8",
        "malformed",
        "caption bytes are not valid UTF-8",
        "caption bytes not valid UTF-8 (U+FFFD from webdataset `.txt` too)",
        PREPASS,
    ),
    Reason(
        "missing_size",
        "malformed",
        "width or height is null or absent",
        "width or height null/absent",
        PREPASS,
    ),
    Reason(
        "size_not_numeric",
        "malformed",
        "width or height is not a whole number",
        'width or height not a whole number (`"640"` and `640.0` are fine)',
        PREPASS,
    ),
    Reason(
        "size_not_positive",
        "malformed",
        "width or height is zero or negative",
        "width or height ≤ 0",
        PREPASS,
    ),
    Reason(
        "caption_control_characters",
        "malformed",
        "caption holds NUL or other control bytes",
        "caption holds NUL or another C0 control (not tab or newlines): binary junk, never "
        "alt-text",
        PREPASS,
    ),
    Reason(
        "image_too_small",
        "image",
        "shorter side at most min_side pixels",
        "shorter side ≤ min_side",
        predicate="least(width, height) <= {min_side}",
        reads=("width", "height"),
        field="min_side",
    ),
    Reason(
        "aspect_ratio",
        "image",
        "longer/shorter side at least max_aspect_ratio",
        "longer/shorter ≥ max_aspect_ratio",
        predicate="greatest(width, height) >= {max_aspect_ratio} * least(width, height)",
        reads=("width", "height"),
        field="max_aspect_ratio",
    ),
    Reason(
        "image_many_alt_texts",
        "image",
        "image has more than max_alt_texts alt-texts",
        "the image (sha256 of bytes, else URL) has > max_alt_texts alt-texts",
        predicate="alt_texts > {max_alt_texts}",
        reads=("alt_texts",),
        field="max_alt_texts",
    ),
    Reason(
        "near_duplicate_eval",
        "image",
        "near-duplicate of an evaluation image",
        "pHash (the pre-pass's) within eval_radius bits of an evaluation image "
        "(`--eval-images DIR`, `--eval-hashes FILE`); without bytes, exact URL/sha256",
        predicate="near_eval",
        reads=("near_eval",),
        field="eval_radius",
    ),
    Reason(
        "alt_text_shared",
        "text",
        "alt-text shared by more than max_images images",
        "the alt-text (lowercased, whitespace collapsed) belongs to > max_images distinct images",
        predicate="images > {max_images}",
        reads=("images",),
        field="max_images",
    ),
    Reason(
        "rare_token",
        "text",
        "a unigram or bigram outside the K most frequent",
        "a unigram or bigram outside the K most frequent of the dataset",
        predicate="has_rare_token",
        reads=("has_rare_token",),
        field="vocabulary_size",
    ),
    Reason(
        "too_few_words",
        "text",
        "fewer than min_words unigrams",
        "fewer than min_words unigrams",
        predicate="word_count < {min_words}",
        reads=("word_count",),
        field="min_words",
    ),
    Reason(
        "too_many_words",
        "text",
        "more than max_words unigrams",
        "more than max_words unigrams",
        predicate="word_count > {max_words}",
        reads=("word_count",),
        field="max_words",
    ),
)
KEPT = "kept"


# Read at call time, so a record added to REASONS (a test's fixture) is seen everywhere.
def reason_names() -> tuple[str, ...]:
    """Every reason, in order: the report's order and the decision's."""
    return tuple(reason.name for reason in REASONS)


def malformed_names() -> tuple[str, ...]:
    return tuple(reason.name for reason in REASONS if reason.group == "malformed")


def prepass_names() -> tuple[str, ...]:
    """The reasons the pre-pass computes in Arrow, in order."""
    return tuple(reason.name for reason in REASONS if reason.computed == PREPASS)


def filters() -> tuple[Reason, ...]:
    """The image and text filters, in order: one predicate each over well-formed rows."""
    return tuple(reason for reason in REASONS if reason.group != "malformed")


def filter_names() -> tuple[str, ...]:
    return tuple(reason.name for reason in filters())


class _Thresholds:
    """Every threshold checked when the config is made, from options or any mapping: one
    line, exit 2."""

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class ImageFilterConfig(_Thresholds):
    min_side: int = option(
        200, "px; kept when the shorter side is strictly larger", check=at_least(0)
    )
    max_aspect_ratio: float = option(
        3.0, "longer/shorter side; kept when strictly smaller", check=above(1)
    )
    max_alt_texts: int = option(
        1000, "rows sharing one image (sha256 of bytes, else URL); dropped above", check=at_least(1)
    )
    eval_radius: int = option(
        6, "bits of the 64-bit pHash; near-duplicate when distance <= radius", check=between(0, 64)
    )


@dataclass(frozen=True)
class TextFilterConfig(_Thresholds):
    max_images: int = option(
        10, "distinct images sharing one normalized alt-text; dropped above", check=at_least(1)
    )
    vocabulary_size: int = option(
        100_000_000,
        "K unigrams and bigrams, most frequent first",
        check=at_least(1),
        aliases=("-K",),
    )
    min_words: int = option(3, "unigrams; kept from this many ...", check=at_least(0))
    max_words: int = option(20, "... up to this many, inclusive", check=at_least(1))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_words < self.min_words:
            raise InputError(
                f"--max-words {self.max_words}: must be at least --min-words ({self.min_words})"
            )


def flag(name: str) -> str:
    """A config field's option: `min_side` -> `--min-side`."""
    return "--" + name.replace("_", "-")


def _config(group: str) -> type:
    # Looked up at call time, like REASONS.
    return ImageFilterConfig if group == "image" else TextFilterConfig


@dataclass(frozen=True)
class Option:
    """A filter's threshold on the command line, made from its record and its config field."""

    field: str
    flags: tuple[str, ...]  # as users type them: --min-side; --vocabulary-size, -K
    kind: type  # int or float
    default: int | float
    help: str
    group: str  # "image" or "text": the --help section


def options() -> list[Option]:
    """One option per filter with a threshold, in reason order."""
    found = []
    for reason in filters():
        if reason.field is None:
            continue
        config = _config(reason.group)
        item: Field | None = next((f for f in fields(config) if f.name == reason.field), None)
        if item is None:
            raise AssertionError(f"{reason.name}: {config.__name__} has no field {reason.field}")
        flags = (flag(item.name), *item.metadata.get("aliases", ()))
        kind = type(item.default)
        found.append(
            Option(item.name, flags, kind, item.default, item.metadata["help"], reason.group)
        )
    return found


def filter_configs(values: Mapping[str, Any]) -> tuple[ImageFilterConfig, TextFilterConfig]:
    """(ImageFilterConfig, TextFilterConfig) from parsed options (or any mapping with every
    field); InputError, in one line, for a value out of its range."""
    image, text = (
        config(**{item.name: values[item.name] for item in fields(config)})
        for config in (_config("image"), _config("text"))
    )
    return image, text


def thresholds(*configs: Any) -> dict[str, int | float]:
    """Field name -> value, as the field's type, of every threshold: the SQL's {field}s."""
    values = {}
    for config in configs:
        for item in fields(config):
            values[item.name] = type(item.default)(getattr(config, item.name))
    return values


def reasons_table() -> str:
    """The reasons table of docs/filter.md, in Markdown: every record, in order."""
    shown = {o.field: o for o in options()}
    rows = []
    for number, reason in enumerate(REASONS, 1):
        option = shown.get(reason.field or "")
        cell = ""
        if option is not None:
            default = f"{option.default:g}" if option.kind is float else str(option.default)
            cell = f"`{option.flags[0]} {default}`" + "".join(f" (`{f}`)" for f in option.flags[1:])
        where = "pre-pass" if reason.computed == PREPASS else "engine"
        rows.append((number, f"`{reason.name}`", reason.doc, where, cell))
    return markdown_table(["#", "reason", "dropped when", "computed in", "option (default)"], rows)


def passes_size(width: int, height: int, config: ImageFilterConfig) -> bool:
    """The two image-size filters for one image of `width` x `height` pixels (both > 0)."""
    shorter, longer = min(width, height), max(width, height)
    return shorter > config.min_side and longer < config.max_aspect_ratio * shorter


def vocabulary_min_count(counts: list[int], vocabulary_size: int) -> int:
    """The smallest count a token needs to be in the vocabulary of the K most frequent.

    `counts` holds one occurrence count per distinct token. A tie at the K-th place leaves the
    whole tied group out (the vocabulary may hold fewer than K tokens), so membership never
    depends on how tokens sort, which would favour one script's code points over another's.
    Returns a count above every token's when not even the most frequent group fits.

    >>> vocabulary_min_count([5, 5, 3, 2, 2, 1], 4)
    3
    """
    tokens_with = Counter(counts)
    covered = 0
    threshold = max(counts, default=0) + 1
    for count in sorted(tokens_with, reverse=True):
        covered += tokens_with[count]
        if covered > vocabulary_size:
            break
        threshold = count
    return threshold
