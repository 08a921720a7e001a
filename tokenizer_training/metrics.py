"""How fair a vocabulary is, per language, on held-out lines.

- `[UNK]` rate: share of tokens that are `[UNK]`, and share of characters they swallow (a
  whole word becomes one `[UNK]`, so the character share is the stricter number).
- fertility: WordPiece tokens per word, punctuation left out on both sides. Words come from
  ICU's word break iterator, which segments Thai, Lao, Khmer, Myanmar, Chinese and Japanese
  with dictionaries, so "word" means the same thing in every script.
- parity: tokens(line) / tokens(its English version), summed over the parallel lines of a
  language (Petrov et al., 2023). 1.0 is English's own cost; 2.0 means twice the tokens, so
  half the text fits in the model's 64 tokens.
- script share: how many vocabulary tokens are written in each Unicode script.
"""

from __future__ import annotations

import functools
import statistics
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from tokenizers import Tokenizer

from tokenizer_training.normalization import CONTINUATION, MAX_WORD_CHARS, SPECIAL_TOKENS, UNK

SCRIPT_SAMPLE_LINES = 50  # lines per language used to name its main script


@dataclass
class LanguageMetrics:
    lines: int = 0
    chars: int = 0  # non-space characters
    words: int = 0  # ICU words: letters, digits or ideographs (punctuation excluded)
    tokens: int = 0  # WordPiece tokens, [CLS] and [SEP] excluded
    punctuation_tokens: int = 0  # single punctuation characters among them
    unk_tokens: int = 0
    unk_chars: int = 0  # characters of words that became [UNK]
    long_word_unks: int = 0  # [UNK]s from words over MAX_WORD_CHARS characters
    parallel_lines: int = 0  # lines with an English counterpart
    parallel_tokens: int = 0  # their tokens
    english_tokens: int = 0  # tokens of their English counterparts
    script: str = "Common"  # most frequent script of the text

    @property
    def unk_rate(self) -> float | None:
        return self.unk_tokens / self.tokens if self.tokens else None

    @property
    def unk_char_rate(self) -> float | None:
        return self.unk_chars / self.chars if self.chars else None

    @property
    def fertility(self) -> float | None:
        pieces = self.tokens - self.punctuation_tokens
        return pieces / self.words if self.words else None

    @property
    def parity(self) -> float | None:
        return self.parallel_tokens / self.english_tokens if self.english_tokens else None

    def as_dict(self) -> dict:
        rates = {
            "unk_rate": self.unk_rate,
            "unk_char_rate": self.unk_char_rate,
            "fertility": self.fertility,
            "parity": self.parity,
        }
        return asdict(self) | rates


@functools.cache
def _word_iterator():
    import icu

    return icu.BreakIterator.createWordInstance(icu.Locale.getRoot())


def count_words(text: str) -> int:
    """Words by ICU's word break rules: segments with a letter, digit, kana or ideograph."""
    iterator = _word_iterator()
    iterator.setText(text)
    words = 0
    for _ in iterator:
        if iterator.getRuleStatus() >= 100:  # UBRK_WORD_NONE is 0..99: spaces, punctuation
            words += 1
    return words


@functools.cache
def char_script(char: str) -> str:
    """Unicode script name of one character: 'Latin', 'Han', 'Thai', 'Common', ..."""
    import icu

    return icu.Script.getScript(char).getName()


def token_script(token: str) -> str:
    """Script of a vocabulary token; 'Common' for digits/punctuation, 'Mixed' for several."""
    text = token[len(CONTINUATION) :] if token.startswith(CONTINUATION) and token != "##" else token
    scripts = {char_script(char) for char in text} - {"Common", "Inherited"}
    if not scripts:
        return "Common"
    return scripts.pop() if len(scripts) == 1 else "Mixed"


def main_script(texts: Iterable[str]) -> str:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(char_script(char) for char in text if not char.isspace())
    for name in ("Common", "Inherited", "Unknown"):
        counts.pop(name, None)
    return counts.most_common(1)[0][0] if counts else "Common"


def _token_counts(tokenizer: Tokenizer, texts: list[str]) -> list[int]:
    return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]


def measure(
    tokenizer: Tokenizer, texts: list[str], english: list[str | None] | None = None
) -> LanguageMetrics:
    """Metrics of one language's lines; english[i] is the English version of texts[i]."""
    metrics = LanguageMetrics(lines=len(texts), script=main_script(texts[:SCRIPT_SAMPLE_LINES]))
    unk_id = tokenizer.token_to_id(UNK)
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    for text, encoding in zip(texts, encodings, strict=True):
        metrics.chars += len("".join(text.split()))
        metrics.words += count_words(text)
        metrics.tokens += len(encoding.ids)
        metrics.punctuation_tokens += sum(
            1
            for token in encoding.tokens
            if len(token) == 1 and unicodedata.category(token).startswith("P")
        )
        if unk_id in encoding.ids:
            for token_id, (start, end) in zip(encoding.ids, encoding.offsets, strict=True):
                if token_id == unk_id:
                    metrics.unk_tokens += 1
                    metrics.unk_chars += end - start
                    metrics.long_word_unks += end - start > MAX_WORD_CHARS
    if english:
        pairs = [(i, en) for i, en in enumerate(english) if en]
        if pairs:
            ours = [len(encodings[i].ids) for i, _ in pairs]
            theirs = _token_counts(tokenizer, [en for _, en in pairs])
            metrics.parallel_lines = len(pairs)
            metrics.parallel_tokens = sum(ours)
            metrics.english_tokens = sum(theirs)
    return metrics


def script_shares(tokens: Iterable[str]) -> dict[str, int]:
    """Vocabulary tokens per script (special tokens left out), largest first."""
    counts = Counter(token_script(token) for token in tokens if token not in SPECIAL_TOKENS)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def spread(values: Mapping[str, float | None], higher_is_worse: bool = True) -> dict:
    """Median, mean, best and worst (with its language) of per-language values; None skipped."""
    known = {lang: value for lang, value in values.items() if value is not None}
    if not known:
        return {"languages": 0}
    pick = max if higher_is_worse else min
    worst = pick(sorted(known), key=known.__getitem__)
    best = (min if higher_is_worse else max)(sorted(known), key=known.__getitem__)
    return {
        "languages": len(known),
        "median": statistics.median(known.values()),
        "mean": statistics.fmean(known.values()),
        "worst": known[worst],
        "worst_language": worst,
        "best": known[best],
        "best_language": best,
    }
