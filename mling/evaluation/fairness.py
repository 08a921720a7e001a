"""How fair one model is across languages, in a handful of numbers a reader can hold at 100+
languages: its English score, the median, the worst language and its ratio to English, and the
languages that fall below a share of English (0.85x by default)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping

ENGLISH = "en"
BELOW = 0.85  # a language under this share of the model's English score is called out


def fairness_summary(
    scores: Mapping[str, float | None], english: str = ENGLISH, below: float = BELOW
) -> dict:
    """{language: score} -> {"languages", "english", "mean", "median", "worst", "worst_language",
    "worst_ratio", "below"}.

    Languages with no score (None) are left out. `worst` is over every scored language, English
    included; `worst_ratio` is worst / English and `below` lists, worst first, the languages
    whose score is under `below` x English; both need an English score above 0 (else None and
    [])."""
    scored = {language: s for language, s in scores.items() if s is not None}
    reference = scored.get(english)
    summary: dict = {"languages": len(scored), "english": reference, "below": []}
    if not scored:
        return summary | dict.fromkeys(("mean", "median", "worst", "worst_language", "worst_ratio"))
    worst_language = min(scored, key=lambda language: (scored[language], language))
    worst = scored[worst_language]
    usable = reference is not None and reference > 0
    summary |= {
        "mean": statistics.fmean(scored.values()),
        "median": statistics.median(scored.values()),
        "worst": worst,
        "worst_language": worst_language,
        "worst_ratio": worst / reference if usable else None,
    }
    if usable:
        low = [language for language, s in scored.items() if s < below * reference]
        summary["below"] = sorted(low, key=lambda language: (scored[language], language))
    return summary
