"""ALIGN's alt-text filters: their thresholds and the order of their reasons.

Every input row ends kept or dropped with exactly one reason: the first check it fails in
`REASONS` order. The order is part of the interface (reports and `--write-rejected` output
name these reasons), so new checks are appended within their group, never reordered:

 1. malformed rows: `download_failed` (the downloader's `status` is not "success": no image
    was fetched, whatever else the row holds, so this reason comes first), `missing_key`,
    `duplicate_key` (a key seen in an earlier row; the first stays), `missing_caption` (null or blank), `caption_not_text`, `invalid_utf8`,
    `missing_size`, `size_not_numeric`, `size_not_positive`, `caption_control_characters`
    (NUL and other C0 controls but tab and newlines: binary junk, never alt-text);
 2. image filters: `image_too_small` (shorter side <= 200 px), `aspect_ratio` (longer/shorter
    >= 3), `image_many_alt_texts` (the image has more than 1000 alt-texts),
    `near_duplicate_eval` (a near-duplicate of an evaluation image);
 3. text filters: `alt_text_shared` (the normalized alt-text belongs to more than 10 distinct
    images), `rare_token` (a unigram or bigram outside the K most frequent),
    `too_few_words` (< 3 unigrams), `too_many_words` (> 20 unigrams).

The frequency statistics (alt-texts per image, images per alt-text, the vocabulary) are
counted over the well-formed rows, independent of the other filters, so each filter is one
predicate per row and the order only decides which reason a row that fails several gets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    name: str  # the reason as written in reports and rejected shards
    group: str  # "malformed", "image" or "text"
    meaning: str  # one line for the report legend


REASONS: tuple[Reason, ...] = (
    Reason("download_failed", "malformed", "the downloader's status is not success"),
    Reason("missing_key", "malformed", "key is null or empty"),
    Reason("duplicate_key", "malformed", "key already used by an earlier row"),
    Reason("missing_caption", "malformed", "caption is null, absent or blank"),
    Reason("caption_not_text", "malformed", "caption is stored as a non-text value"),
    Reason("invalid_utf8", "malformed", "caption bytes are not valid UTF-8"),
    Reason("missing_size", "malformed", "width or height is null or absent"),
    Reason("size_not_numeric", "malformed", "width or height is not a whole number"),
    Reason("size_not_positive", "malformed", "width or height is zero or negative"),
    Reason("caption_control_characters", "malformed", "caption holds NUL or other control bytes"),
    Reason("image_too_small", "image", "shorter side at most min_side pixels"),
    Reason("aspect_ratio", "image", "longer/shorter side at least max_aspect_ratio"),
    Reason("image_many_alt_texts", "image", "image has more than max_alt_texts alt-texts"),
    Reason("near_duplicate_eval", "image", "near-duplicate of an evaluation image"),
    Reason("alt_text_shared", "text", "alt-text shared by more than max_images images"),
    Reason("rare_token", "text", "a unigram or bigram outside the K most frequent"),
    Reason("too_few_words", "text", "fewer than min_words unigrams"),
    Reason("too_many_words", "text", "more than max_words unigrams"),
)
REASON_NAMES: tuple[str, ...] = tuple(reason.name for reason in REASONS)
MALFORMED: tuple[str, ...] = tuple(r.name for r in REASONS if r.group == "malformed")
FILTERS: tuple[str, ...] = tuple(r.name for r in REASONS if r.group != "malformed")
KEPT = "kept"


@dataclass(frozen=True)
class ImageFilterConfig:
    min_side: int = 200  # px; kept when the shorter side is strictly larger
    max_aspect_ratio: float = 3.0  # longer/shorter side; kept when strictly smaller
    max_alt_texts: int = 1000  # rows sharing one image (sha256 of bytes, else URL); dropped above
    eval_radius: int = 6  # bits of the 64-bit pHash; near-duplicate when distance <= radius


@dataclass(frozen=True)
class TextFilterConfig:
    max_images: int = 10  # distinct images sharing one normalized alt-text; dropped above
    vocabulary_size: int = 100_000_000  # K unigrams and bigrams, most frequent first
    min_words: int = 3  # unigrams; kept from min_words ...
    max_words: int = 20  # ... to max_words inclusive


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
