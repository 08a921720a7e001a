"""The filters' pure parts, on cases checkable by hand: vocabulary threshold, sizes, reasons."""

from __future__ import annotations

import numpy as np
import pytest

from mling.filtering.image_hash import within_radius
from mling.filtering.reasons import (
    ImageFilterConfig,
    malformed_names,
    passes_size,
    reason_names,
    vocabulary_min_count,
)
from tests.helpers.fairness import retention_table


@pytest.mark.parametrize(
    ("counts", "k", "expected"),
    [
        ([5, 5, 3, 2, 2, 1], 4, 3),  # 5,5,3 fit (3 tokens); the tie at 2 would make 5 > 4
        ([5, 5, 3, 2, 2, 1], 5, 2),  # exactly 5 tokens with count >= 2
        ([5, 5, 3, 2, 2, 1], 100, 1),  # K above the distinct count: every token is in
        ([5, 5, 3], 1, 6),  # not even the top tie fits: every token is rare
        ([], 10, 1),
    ],
)
def test_vocabulary_min_count(counts, k, expected):
    assert vocabulary_min_count(counts, k) == expected


@pytest.mark.parametrize(
    ("width", "height", "kept"),
    [(201, 201, True), (200, 400, False), (201, 602, True), (201, 603, False), (603, 201, False)],
)
def test_size_filters_at_their_boundaries(width, height, kept):
    assert passes_size(width, height, ImageFilterConfig()) is kept


def test_malformed_reasons_come_first_and_names_are_unique():
    names, malformed = reason_names(), malformed_names()
    assert names[: len(malformed)] == malformed
    assert len(set(names)) == len(names)
    assert names.index("image_too_small") < names.index("rare_token")


def test_hamming_radius():
    hashes = np.array([0b1011, 0xFFFF], dtype=np.uint64)
    eval_hashes = np.array([0b0000], dtype=np.uint64)
    assert within_radius(hashes, eval_hashes, 3).tolist() == [True, False]
    assert within_radius(hashes, eval_hashes, 2).tolist() == [False, False]


def test_length_filter_keeps_scripts_without_spaces_like_english():
    """The issue's fairness target: retention within 0.85x of English's for ja, zh and th,
    where splitting on spaces keeps almost none of them."""
    table = retention_table()
    for language in ("ja", "zh", "th"):
        assert table[language]["icu_vs_en"] >= 0.85, (language, table[language])
        assert table[language]["spaces"] < 0.10
    assert table["en"]["spaces"] > 0.85
