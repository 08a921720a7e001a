"""The dropped rows' languages, estimated from a sample: counts, Wilson intervals, rounding that adds up.

For one reason with `total` dropped rows, of which `sampled` were labelled (a simple random
sample, `mling/filtering/language_pass.py`) and `x` got language l, the estimate of l's rows is
`total * x / sampled`, rounded by largest remainder so that the languages add up to `total`;
its 95% interval is the Wilson score interval of the proportion x / sampled, with the
finite-population correction (z scaled by sqrt((total - sampled) / (total - 1))), times `total`.
A sample of every row gives the exact count and an interval of width zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

Z95 = 1.959963984540054  # standard normal quantile of 0.975: two-sided 95%


def wilson_interval(
    successes: int, trials: int, population: int | None = None, z: float = Z95
) -> tuple[float, float]:
    """Wilson score interval of the proportion successes / trials, as (low, high) in [0, 1].

    With `population` (N rows sampled without replacement), z is scaled by the finite-population
    correction sqrt((N - n) / (N - 1)): a sample of the whole population gives the proportion
    itself. No trials: (0, 1), nothing is known.
    """
    if trials <= 0:
        return 0.0, 1.0
    if population is not None and population > 1:
        z *= math.sqrt(max(population - trials, 0) / (population - 1))
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    center = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def largest_remainder(shares: Mapping[str, float], total: int) -> dict[str, int]:
    """Non-negative shares that sum to `total` -> whole numbers that sum to `total`: each share's
    floor, then one more to the largest remainders (ties: the larger share, then the name)."""
    floors = {name: math.floor(share) for name, share in shares.items()}
    left = total - sum(floors.values())
    order = sorted(shares, key=lambda name: (-(shares[name] - floors[name]), -shares[name], name))
    for name in order[: max(left, 0)]:
        floors[name] += 1
    return floors


@dataclass(frozen=True)
class Estimate:
    count: int  # rows, rounded so that the estimates of one total add up to it
    low: int  # 95% interval, rows
    high: int


def count_interval(successes: int, sampled: int, total: int) -> tuple[int, int]:
    """The Wilson interval (with finite-population correction) of successes / sampled, as rows of
    `total`: never fewer than the `successes` seen, never more than `total` less the others seen."""
    if sampled >= total:
        return successes, successes
    low, high = wilson_interval(successes, sampled, total)
    # The 1e-9 keeps float noise (0.99999999 rows) from widening the interval by a row.
    low_rows = math.floor(total * low + 1e-9)
    high_rows = math.ceil(total * high - 1e-9)
    return max(successes, low_rows), min(total - (sampled - successes), high_rows)


def estimate_counts(sample: Mapping[str, int], total: int) -> dict[str, Estimate]:
    """Rows per language of one reason's `total` dropped rows, from the labels of a sample.

    `sample` maps language -> labelled rows in the sample (its sum is the sample size).
    """
    sampled = sum(sample.values())
    if sampled == 0:
        return {}
    counts = largest_remainder(
        {language: total * x / sampled for language, x in sample.items()}, total
    )
    return {
        language: Estimate(counts[language], *count_interval(x, sampled, total))
        for language, x in sample.items()
    }
