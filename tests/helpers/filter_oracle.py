"""The same filters as `data/filter.py`, written the straightforward way: one pandas DataFrame,
one process, a Python call per caption. The benchmark's baseline, and a second opinion in the
tests: both implementations must give every row the same reason.

It reads parquet only and holds everything in memory; use `data/filter.py` for real data.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mling.filtering.reasons import (
    ImageFilterConfig,
    TextFilterConfig,
    reason_names,
    vocabulary_min_count,
)
from mling.filtering.segment import unigrams


def _whole(value: object) -> float:
    """A size as a float, NaN when it is not a whole number (strings are parsed)."""
    if isinstance(value, bool) or value is None:
        return np.nan
    if isinstance(value, str):
        text = value.strip()
        return float(int(text)) if text.lstrip("+-").isdigit() else np.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return np.nan
    return number if np.isfinite(number) and number == int(number) else np.nan


def filter_reasons(
    paths: Sequence[str | Path], image: ImageFilterConfig, text: TextFilterConfig
) -> pd.Series:
    """The reason for every input row (None: kept), in input order."""
    frame = pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
    count = len(frame)
    checks: dict[str, pd.Series] = {}

    key = frame["key"]
    status = frame["status"] if "status" in frame else pd.Series([None] * count)
    checks["download_failed"] = status.notna() & (status.astype(str) != "success")
    checks["missing_key"] = key.isna() | (key.astype(str) == "")
    checks["duplicate_key"] = key.duplicated(keep="first") & ~checks["missing_key"]
    caption = frame["caption"].astype(object) if "caption" in frame else pd.Series([None] * count)
    is_text = caption.map(lambda c: isinstance(c, str))
    is_bytes = caption.map(lambda c: isinstance(c, bytes))
    decoded = caption.map(lambda c: _utf8(c) if isinstance(c, bytes) else c)
    blank = caption.isna() | decoded.map(lambda c: isinstance(c, str) and not c.strip())
    checks["missing_caption"] = blank
    checks["caption_not_text"] = ~is_text & ~is_bytes & caption.notna()
    checks["invalid_utf8"] = decoded.map(
        lambda c: c is False or (isinstance(c, str) and "\ufffd" in c)
    )
    width, height = frame["width"].map(_whole), frame["height"].map(_whole)
    checks["missing_size"] = frame["width"].isna() | frame["height"].isna()
    checks["size_not_numeric"] = width.isna() | height.isna()
    checks["size_not_positive"] = (width <= 0) | (height <= 0)
    control = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
    checks["caption_control_characters"] = decoded.map(
        lambda c: isinstance(c, str) and bool(control.search(c))
    )
    malformed = pd.concat(list(checks.values()), axis=1).any(axis=1)
    ok = ~malformed
    texts = decoded.where(ok, "").map(lambda c: c if isinstance(c, str) else "")

    shorter, longer = np.minimum(width, height), np.maximum(width, height)
    checks["image_too_small"] = ok & (shorter <= image.min_side)
    checks["aspect_ratio"] = ok & (longer >= image.max_aspect_ratio * shorter)
    images = frame["image"] if "image" in frame else pd.Series([None] * count)
    urls = frame["url"] if "url" in frame else pd.Series([None] * count)
    identity = [
        f"sha256:{hashlib.sha256(b).hexdigest()}" if b else (f"url:{u}" if u else f"key:{k}")
        for b, u, k in zip(images, urls, key, strict=True)
    ]
    identity = pd.Series(identity)
    checks["image_many_alt_texts"] = ok & (
        identity.map(identity[ok].value_counts()) > image.max_alt_texts
    )
    checks["near_duplicate_eval"] = pd.Series(False, index=frame.index)

    normalized = texts.str.lower().str.split().str.join(" ")
    images_per_text = identity[ok].groupby(normalized[ok]).nunique()
    checks["alt_text_shared"] = ok & (normalized.map(images_per_text) > text.max_images)
    words = texts.where(ok, "").map(unigrams)
    tokens = words.map(lambda w: w + [f"{a} {b}" for a, b in zip(w, w[1:], strict=False)])
    exploded = tokens[ok].explode().dropna()
    counts = exploded.value_counts()
    min_count = vocabulary_min_count(counts.tolist(), text.vocabulary_size)
    rarest = exploded.map(counts).groupby(level=0).min().reindex(frame.index)
    checks["rare_token"] = ok & (rarest < min_count)
    word_count = words.map(len)
    checks["too_few_words"] = ok & (word_count < text.min_words)
    checks["too_many_words"] = ok & (word_count > text.max_words)

    reasons = pd.Series([None] * count, dtype=object)
    for name in reversed(reason_names()):  # the first failing check in order wins
        reasons[checks[name].fillna(False).to_numpy(dtype=bool)] = name
    return reasons


def _utf8(value: bytes) -> str | bool:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return False
