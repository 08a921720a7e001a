"""Language balancing: how many sampled copies each line of each language gets.

Exponential smoothing as in XLM-R (Conneau et al., 2020): language l with n_l lines is sampled
with probability p_l = n_l^alpha / sum_k n_k^alpha. alpha = 1 keeps the natural distribution,
alpha = 0 samples every language equally, the default 0.3 sits between. The sample has a
budget in lines and in bytes, so the trainer's memory is bounded by the budget rather than by
the corpus; a language whose share exceeds its data is repeated (rate > 1), one whose share
is smaller is subsampled (rate < 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np


def smoothed_shares(counts: Mapping[str, int], alpha: float) -> dict[str, float]:
    """p_l = n_l^alpha / sum_k n_k^alpha over languages with n_l > 0. Shares sum to 1."""
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    weights = {lang: float(n) ** alpha for lang, n in counts.items() if n > 0}
    total = sum(weights.values())
    return {lang: weight / total for lang, weight in weights.items()}


def sampling_rates(
    counts: Mapping[str, int],
    bytes_per_language: Mapping[str, int],
    alpha: float,
    max_lines: int,
    max_bytes: int,
) -> dict[str, float]:
    """Expected sampled copies per line, per language.

    The sample has min(max_lines, sum n_l) lines split by the smoothed shares, then is scaled
    down as a whole if its expected size exceeds max_bytes (bytes per line measured per
    language). Returns rate_l = sampled_l / n_l, which may exceed 1.
    """
    shares = smoothed_shares(counts, alpha)
    lines = min(max_lines, sum(counts[lang] for lang in shares))
    sampled = {lang: lines * share for lang, share in shares.items()}
    expected_bytes = sum(
        sampled[lang] * bytes_per_language[lang] / counts[lang] for lang in sampled
    )
    if expected_bytes > max_bytes:
        scale = max_bytes / expected_bytes
        sampled = {lang: value * scale for lang, value in sampled.items()}
    return {lang: sampled[lang] / counts[lang] for lang in sampled}


def sample_copies(rate: float | np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Copies of each line: floor(rate) always, one more with probability frac(rate).

    `uniforms` are draws in [0, 1), one per line; the expected copies equal `rate` exactly.
    """
    rate = np.asarray(rate, dtype=np.float64)
    whole = np.floor(rate)
    return (whole + (uniforms < rate - whole)).astype(np.int64)


def effective_alpha(counts: Mapping[str, int], sampled: Mapping[str, float]) -> float | None:
    """The alpha a sample actually realises: slope of log(sampled share) on log(n).

    A check for the report: close to the requested alpha unless languages were capped.
    None when fewer than two languages differ in size.
    """
    pairs = [
        (math.log(counts[lang]), math.log(sampled[lang]))
        for lang in sampled
        if counts[lang] > 0 and sampled[lang] > 0
    ]
    if len({x for x, _ in pairs}) < 2:
        return None
    xs, ys = np.array(pairs).T
    return float(np.polyfit(xs, ys, 1)[0])
