"""A 700-language test corpus from the Universal Declaration of Human Rights samples that the
`gflanguages` package ships (755 languages, 157 scripts; no download).

Each language has a few paragraphs. `udhr_lines` gives them as lines; `synthetic_lines`
makes as many caption-length lines as a test or benchmark needs by cutting windows of ICU word
segments out of a text (spaces and punctuation kept), so scripts without spaces get realistic
lines too. Splitting each text into a training part and a held-out part first keeps held-out
windows honest: they contain words and characters the training part may never show.
"""

from __future__ import annotations

import functools
import random

from mling.common.errors import InputError


@functools.cache
def udhr_lines() -> dict[str, list[str]]:
    """Language id (gflanguages style: 'th_Thai', 'zh_Hans') -> distinct sample lines."""
    try:
        import gflanguages
    except ImportError as error:
        raise InputError("the UDHR corpus needs gflanguages: pip install gflanguages") from error
    fields = [field.name for field in gflanguages.SampleTextProto.DESCRIPTOR.fields]
    out: dict[str, list[str]] = {}
    for language, proto in sorted(gflanguages.LoadLanguages().items()):
        if not proto.HasField("sample_text"):
            continue
        lines: dict[str, None] = {}
        for name in fields:
            if name.startswith(("masthead", "poster_lg", "poster_sm", "note")):
                continue  # single letters, short fragments, notes in English
            for line in getattr(proto.sample_text, name).split("\n"):
                if line.strip():
                    lines.setdefault(line.strip())
        if lines:
            out[language] = list(lines)
    return out


def segments(text: str) -> list[str]:
    """ICU word-break segments of `text`: words, spaces and punctuation, in order."""
    import icu

    iterator = icu.BreakIterator.createWordInstance(icu.Locale.getRoot())
    iterator.setText(text)
    start, out = 0, []
    for end in iterator:
        out.append(text[start:end])
        start = end
    return out


def split_text(lines: list[str], held_out: float = 0.2) -> tuple[list[str], list[str]]:
    """The segments of a language's text, cut into a training part and a held-out tail."""
    parts = segments(" ".join(lines))
    cut = max(1, int(len(parts) * (1 - held_out)))
    return parts[:cut], parts[cut:]


def synthetic_lines(
    parts: list[str], count: int, rng: random.Random, min_words: int = 4, max_words: int = 14
) -> list[str]:
    """`count` lines, each a window of consecutive segments holding min..max words."""
    words = [i for i, part in enumerate(parts) if part.strip()]
    if not words:
        return []
    out = []
    for _ in range(count):
        first = rng.randrange(len(words))
        last = min(len(words) - 1, first + rng.randint(min_words, max_words) - 1)
        line = "".join(parts[words[first] : words[last] + 1]).strip()
        if line:
            out.append(line)
    return out
