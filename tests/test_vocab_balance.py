"""Language balancing math on cases small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from mling.vocab.balance import effective_alpha, sample_copies, sampling_rates, smoothed_shares
from mling.vocab.sample import held_out_mask


def test_smoothed_shares_by_hand():
    # sqrt(100) = 10, sqrt(1) = 1: English gets 10/11, Amharic 1/11 instead of 1/101.
    shares = smoothed_shares({"en": 100, "am": 1}, alpha=0.5)
    assert shares == pytest.approx({"en": 10 / 11, "am": 1 / 11})


@pytest.mark.parametrize(
    ("alpha", "expected"),
    [(1.0, {"en": 0.75, "th": 0.25}), (0.0, {"en": 0.5, "th": 0.5})],
)
def test_alpha_one_is_natural_and_zero_is_uniform(alpha, expected):
    assert smoothed_shares({"en": 300, "th": 100}, alpha) == pytest.approx(expected)


def test_languages_without_lines_get_no_share():
    assert smoothed_shares({"en": 4, "ko": 0}, 0.3) == {"en": 1.0}


def test_rates_repeat_small_languages_and_subsample_large_ones():
    # 101 lines split 10:1 -> en 91.82 of its 100 lines, am 9.18 copies of its one line.
    rates = sampling_rates(
        {"en": 100, "am": 1}, {"en": 1000, "am": 10}, 0.5, max_lines=10**9, max_bytes=10**9
    )
    assert rates == pytest.approx({"en": 101 * 10 / 11 / 100, "am": 101 / 11})


def test_line_budget_caps_the_sample():
    rates = sampling_rates(
        {"en": 100, "am": 1}, {"en": 1000, "am": 10}, 0.5, max_lines=11, max_bytes=10**9
    )
    assert rates == pytest.approx({"en": 0.1, "am": 1.0})  # 10 + 1 lines


def test_byte_budget_scales_the_whole_sample_down():
    # Line budget alone: en 10 lines of 10 bytes, am 1 line of 10 bytes = 110 bytes.
    free = sampling_rates({"en": 100, "am": 1}, {"en": 1000, "am": 10}, 0.5, 11, 10**9)
    capped = sampling_rates({"en": 100, "am": 1}, {"en": 1000, "am": 10}, 0.5, 11, 55)
    assert capped == pytest.approx({lang: rate / 2 for lang, rate in free.items()})


def test_copies_are_floor_plus_one_with_the_fraction():
    copies = sample_copies(2.25, np.array([0.1, 0.3, 0.0, 0.99]))
    assert copies.tolist() == [3, 2, 3, 2]
    assert sample_copies(0.0, np.array([0.0, 0.5])).tolist() == [0, 0]


def test_copies_average_exactly_the_rate_on_even_draws():
    uniforms = (np.arange(1000) + 0.5) / 1000
    assert sample_copies(np.full(1000, 2.25), uniforms).mean() == 2.25
    assert sample_copies(np.full(1000, 0.3), uniforms).mean() == 0.3


def test_effective_alpha_recovers_the_smoothing():
    counts = {"en": 10_000, "de": 1000, "th": 100, "am": 10}
    rates = sampling_rates(counts, dict(counts), 0.3, max_lines=10**9, max_bytes=10**12)
    sampled = {lang: counts[lang] * rates[lang] for lang in counts}
    assert effective_alpha(counts, sampled) == pytest.approx(0.3)
    assert effective_alpha({"en": 5}, {"en": 5.0}) is None


def test_held_out_mask_is_deterministic_and_order_independent():
    keys = [f"caption {i}" for i in range(4000)]
    mask = held_out_mask(keys, seed=3, fraction=0.25)
    assert mask.tolist() == held_out_mask(keys, seed=3, fraction=0.25).tolist()
    assert held_out_mask(keys[::-1], seed=3, fraction=0.25).tolist() == mask.tolist()[::-1]
    assert 0.22 < mask.mean() < 0.28
    assert mask.tolist() != held_out_mask(keys, seed=4, fraction=0.25).tolist()
    assert not held_out_mask(keys, 0, 0.0).any() and held_out_mask(keys, 0, 1.0).all()
