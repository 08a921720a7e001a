"""Language labels: from a column, from the file name, or from fastText lid.176 when absent.

A file-name pattern is written with a `{lang}` placeholder and shell wildcards, matched against
the file name (or, when it contains '/', the end of the path): `'*.{lang}.gz'` reads `de` from
Multi30k's `train.de.gz`, `'{lang}.txt'` reads `th_Thai` from `th_Thai.txt`. A regular
expression with a `(?P<lang>...)` group works too.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from mling.common.errors import InputError

LANG_PLACEHOLDER = "{lang}"


def compile_filename_pattern(pattern: str) -> re.Pattern[str]:
    """`{lang}` + wildcards (or a regex with a `lang` group) -> a regex searched on the path."""
    if "(?P<lang>" in pattern:
        return re.compile(pattern)
    if pattern.count(LANG_PLACEHOLDER) != 1:
        raise InputError(
            f"--lang-from-filename {pattern!r} needs exactly one {LANG_PLACEHOLDER}, "
            "e.g. '*.{lang}.gz' or '{lang}.txt'"
        )
    parts = []
    for piece in re.split(r"(\{lang\}|\*|\?)", pattern):
        if piece == LANG_PLACEHOLDER:
            parts.append(r"(?P<lang>[^/.]+)")
        elif piece == "*":
            parts.append(r"[^/]*")
        elif piece == "?":
            parts.append(r"[^/]")
        else:
            parts.append(re.escape(piece))
    return re.compile(r"(?:^|/)" + "".join(parts) + r"$")


def filename_language(path: Path, regex: re.Pattern[str]) -> str | None:
    """The language code the pattern reads from `path`, or None when it does not match."""
    match = regex.search(path.as_posix())
    return match.group("lang") if match else None


def sibling_path(path: Path, regex: re.Pattern[str], language: str) -> Path | None:
    """`path` with its language part replaced: where the parallel file in `language` would be."""
    text = path.as_posix()
    match = regex.search(text)
    if not match:
        return None
    start, end = match.span("lang")
    return Path(text[:start] + language + text[end:])


def clean_label(value: object) -> str | None:
    """A given label as a code, or None when it is missing or blank."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class Labeler:
    """Fills in missing labels with language ID; counts where every label came from."""

    def __init__(self, lid_model: str | None = None):
        self.lid_model = lid_model
        self._identifier = None
        self.sources: Counter[str] = Counter()  # "given" or "language_id" -> lines

    def fill(self, texts: list[str], languages: list[str | None]) -> list[str]:
        """Labels for `texts`: the given ones, language ID for the rest."""
        if None not in languages:
            self.sources["given"] += len(texts)
            return list(languages)
        missing = [i for i, language in enumerate(languages) if language is None]
        self.sources["given"] += len(texts) - len(missing)
        if not missing:
            return list(languages)
        if self._identifier is None:
            from mling.common.language_id import LanguageIdentifier

            self._identifier = LanguageIdentifier(self.lid_model)
        predicted, _ = self._identifier.predict([texts[i] for i in missing])
        self.sources["language_id"] += len(missing)
        filled = list(languages)
        for index, language in zip(missing, predicted, strict=True):
            filled[index] = language
        return filled
