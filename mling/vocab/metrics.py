"""How fair a vocabulary is, per language, on held-out lines.

- `[UNK]` rate: share of tokens that are `[UNK]`, and share of characters they swallow (a
  whole word becomes one `[UNK]`, so the character share is the stricter number).
- fertility: WordPiece tokens per word, punctuation left out on both sides. Words come from
  ICU's word break iterator, which segments Thai, Lao, Khmer, Myanmar, Chinese and Japanese
  with dictionaries, so "word" means the same thing in every script.
- parity: tokens(line) / tokens(its English version), summed over the parallel lines of a
  language (Petrov et al., 2023). 1.0 is English's own cost; 2.0 means twice the tokens, so
  half the text fits in the model's 64 tokens. An [UNK] makes a whole word one token, so a
  vocabulary that cannot read a script looks cheap; `parity_unk_as_chars` counts each [UNK]
  as the characters it hides (the cost of spelling them out) to compare fairly.
- script share: how many vocabulary tokens are written in each Unicode script.
"""

from __future__ import annotations

import functools
import itertools
import statistics
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from tokenizers import Tokenizer

from mling.common.scripts import char_script, main_script
from mling.vocab.normalization import CONTINUATION, MAX_WORD_CHARS, SPECIAL_TOKENS, UNK

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
    parallel_unk_extra: int = 0  # sum over their [UNK]s of (characters hidden - 1)
    english_unk_extra: int = 0  # the same for the English counterparts
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

    @property
    def parity_unk_as_chars(self) -> float | None:
        if not self.english_tokens:
            return None
        ours = self.parallel_tokens + self.parallel_unk_extra
        return ours / (self.english_tokens + self.english_unk_extra)

    def as_dict(self) -> dict:
        rates = {
            "unk_rate": self.unk_rate,
            "unk_char_rate": self.unk_char_rate,
            "fertility": self.fertility,
            "parity": self.parity,
            "parity_unk_as_chars": self.parity_unk_as_chars,
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


def token_script(token: str) -> str:
    """Script of a vocabulary token; 'Common' for digits/punctuation, 'Mixed' for several."""
    text = token[len(CONTINUATION) :] if token.startswith(CONTINUATION) and token != "##" else token
    scripts = set(map(char_script, text))
    scripts.discard("Common")
    scripts.discard("Inherited")
    if not scripts:
        return "Common"
    return scripts.pop() if len(scripts) == 1 else "Mixed"


def vocabulary(tokenizer: Tokenizer) -> list[str]:
    """Tokens in id order."""
    vocab = tokenizer.get_vocab()
    return sorted(vocab, key=vocab.__getitem__)


def punctuation_ids(tokens: list[str]) -> frozenset[int]:
    """Ids of single-punctuation-character tokens (left out of fertility)."""
    return frozenset(
        index
        for index, token in enumerate(tokens)
        if len(token) == 1 and unicodedata.category(token).startswith("P")
    )


def measure_languages(
    tokenizer: Tokenizer,
    groups: Mapping[str, tuple[list[str], list[str | None] | None]],
    tokens: list[str] | None = None,
) -> dict[str, LanguageMetrics]:
    """Metrics per language; groups[lang] = (texts, English versions or None).

    All lines go through the Rust tokenizer in one batch; per-token work is C-level counting.
    `tokens` (the vocabulary in id order) saves reading it back from the tokenizer.
    """
    unk_id = tokenizer.token_to_id(UNK)
    punctuation = punctuation_ids(tokens or vocabulary(tokenizer))
    order = [(lang, texts, english) for lang, (texts, english) in groups.items() if texts]
    all_texts = [text for _, texts, _ in order for text in texts]
    pairs = [
        (lang, i, en)
        for lang, _, english in order
        for i, en in enumerate(english or ())
        if en is not None
    ]
    encodings = tokenizer.encode_batch(all_texts, add_special_tokens=False)
    english = tokenizer.encode_batch([en for _, _, en in pairs], add_special_tokens=False)
    results: dict[str, LanguageMetrics] = {}
    ids_of: dict[str, list[list[int]]] = {}
    extra_of: dict[str, list[int]] = {}
    start = 0
    for lang, texts, _ in order:
        mine = encodings[start : start + len(texts)]
        start += len(texts)
        ids = [encoding.ids for encoding in mine]
        flat = list(itertools.chain.from_iterable(ids))
        metrics = LanguageMetrics(lines=len(texts), script=main_script(texts[:SCRIPT_SAMPLE_LINES]))
        metrics.chars = len("".join("".join(texts).split()))
        metrics.words = sum(map(count_words, texts))
        metrics.tokens = len(flat)
        metrics.punctuation_tokens = sum(map(punctuation.__contains__, flat))
        metrics.unk_tokens = flat.count(unk_id)
        spans = [_unk_spans(encoding, unk_id) for encoding in mine] if metrics.unk_tokens else []
        metrics.unk_chars = sum(map(sum, spans))
        metrics.long_word_unks = sum(span > MAX_WORD_CHARS for line in spans for span in line)
        extra_of[lang] = [sum(line) - len(line) for line in spans] or [0] * len(texts)
        results[lang], ids_of[lang] = metrics, ids
    for (lang, index, _), encoding in zip(pairs, english, strict=True):
        metrics = results[lang]
        metrics.parallel_lines += 1
        metrics.parallel_tokens += len(ids_of[lang][index])
        metrics.english_tokens += len(encoding.ids)
        metrics.parallel_unk_extra += extra_of[lang][index]
        hidden = _unk_spans(encoding, unk_id) if unk_id in encoding.ids else []
        metrics.english_unk_extra += sum(hidden) - len(hidden)
    return results


def _unk_spans(encoding, unk_id: int) -> list[int]:
    """Characters hidden by each [UNK] of an encoding."""
    return [
        end - begin
        for token_id, (begin, end) in zip(encoding.ids, encoding.offsets, strict=True)
        if token_id == unk_id
    ]


def measure(
    tokenizer: Tokenizer, texts: list[str], english: list[str | None] | None = None
) -> LanguageMetrics:
    """Metrics of one language's lines; english[i] is the English version of texts[i]."""
    return measure_languages(tokenizer, {"": (texts, english)}).get("", LanguageMetrics())


def script_shares(tokens: Iterable[str]) -> dict[str, int]:
    """Vocabulary tokens per script (special tokens left out), largest first."""
    tokens = [token for token in tokens if token not in SPECIAL_TOKENS]
    for char in set("".join(tokens)):
        char_script(char)  # warm the cache once per distinct character
    counts = Counter(map(token_script, tokens))
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
