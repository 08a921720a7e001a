"""The text pipeline every vocabulary here is trained with and read with: BERT's, unchanged.

Unchanged on purpose. transformers 5 rebuilds `BertTokenizer` (= `BertTokenizerFast`) from
`vocab.txt` and three flags (`do_lower_case`, `strip_accents`, `tokenize_chinese_chars`), so
any extra step written into `tokenizer.json` would be dropped at load time, and the slow
`BertTokenizerLegacy` must split text the same way. What that pipeline does, per script:

- cleaning drops NUL, U+FFFD and control/format characters (Cc, Cf: also ZWJ, ZWNJ and the
  zero-width space) and turns every other whitespace into a space;
- each CJK ideograph becomes a word of its own (BERT's rule, from Nov 2018);
- each punctuation character (Unicode P*, ASCII symbols) becomes a word of its own;
- everything else between spaces is one word: a Latin word, a Hangul eojeol, but also a whole
  Thai, Lao, Khmer or Myanmar phrase and a run of kana between two kanji.

Scripts written without spaces are therefore handled in the vocabulary, not in the pipeline:
the trainer sees exactly the words above, so it learns pieces of those phrases both at the start
(`ข้อ`) and inside (`##ความ`), and WordPiece's greedy longest match cuts a phrase into them.
Such a word becomes `[UNK]` only when (a) one of its characters is outside the alphabet, which
the alphabet rule (`alphabet.py`) prevents by giving every letter a word-initial and a `##` form,
or (b) it is longer than `MAX_WORD_CHARS`, BERT's limit, which both tokenizers share and which
the report counts separately (`long_word_unk`): it happens in Lao and Javanese-script text.

Fast and slow agree on "ordinary text", and we test it on 700+ languages: text in NFC (the
slow tokenizer applies NFC, the fast one does not) whose characters Python's Unicode 14 tables
know, less `SLOW_FAST_EXCEPTIONS`, the 375 code points where the two libraries' Unicode tables
disagree (punctuation and format characters of Unicode 10-14, two category changes, and
U+2B820-U+2B91F, which only the slow tokenizer splits as CJK). `is_ordinary` tells.

No lowercasing and no accent stripping by default: case is information in most scripts, and
"stripping accents" (NFD, then dropping combining marks) deletes Vietnamese tones, Devanagari
vowel signs and Thai, Hebrew and Arabic marks. Both are options.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from tokenizers import normalizers, pre_tokenizers

from mling.common.field_options import option

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4, in this order
UNK = "[UNK]"
CONTINUATION = "##"  # prefix of a piece that continues a word
MAX_WORD_CHARS = 100  # BERT's max_input_chars_per_word: a longer word is one [UNK]
MODEL_MAX_LENGTH = 64  # tokens per caption, [CLS] and [SEP] included (the ALIGN paper's length)

# Code points (first, last) that the Rust tokenizer and the slow Python tokenizer classify
# differently (tokenizers 0.23 vs Python 3.11's unicodedata), found by tokenizing "a{c}b" with
# both for every assigned code point; tests/test_vocab_udhr.py re-checks the list.
SLOW_FAST_EXCEPTIONS = (
    (0x061D, 0x061D), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x09FD, 0x09FD), (0x0A76, 0x0A76),
    (0x0C77, 0x0C77), (0x0C84, 0x0C84), (0x166D, 0x166D), (0x1B7D, 0x1B7E), (0x2E43, 0x2E4F),
    (0x2E52, 0x2E5D), (0x10EAD, 0x10EAD), (0x10F55, 0x10F59), (0x10F86, 0x10F89),
    (0x110CD, 0x110CD), (0x111C9, 0x111C9), (0x1144B, 0x1144F), (0x1145A, 0x1145B),
    (0x1145D, 0x1145D), (0x11660, 0x1166C), (0x116B9, 0x116B9), (0x1183B, 0x1183B),
    (0x11944, 0x11946), (0x119E2, 0x119E2), (0x11A3F, 0x11A46), (0x11A9A, 0x11A9C),
    (0x11A9E, 0x11AA2), (0x11C41, 0x11C45), (0x11C70, 0x11C71), (0x11EF7, 0x11EF8),
    (0x11FFF, 0x11FFF), (0x12FF1, 0x12FF2), (0x13430, 0x13438), (0x16E97, 0x16E9A),
    (0x16FE2, 0x16FE2), (0x1E95E, 0x1E95F), (0x2B820, 0x2B91F),
)  # fmt: skip
_EXCEPTION_CHARS = frozenset(
    chr(point) for first, last in SLOW_FAST_EXCEPTIONS for point in range(first, last + 1)
)


@dataclass(frozen=True)
class NormalizationConfig:
    """BERT's two text flags (options of build_vocab.py); both off keeps every script's marks."""

    lowercase: bool = option(False, "fold case, as BERT uncased (off keeps case information)")
    strip_accents: bool = option(
        False, "NFD, then drop combining marks (off keeps tones and vowel signs)"
    )


def bert_normalizer(config: NormalizationConfig) -> normalizers.Normalizer:
    """BERT's normalizer with explicit flags (None would tie accents to lowercasing)."""
    return normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=config.strip_accents,
        lowercase=config.lowercase,
    )


def bert_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """Split on whitespace and around every punctuation character."""
    return pre_tokenizers.BertPreTokenizer()


def is_ordinary(text: str) -> bool:
    """True for text the fast and slow tokenizers must tokenize alike (see the module doc)."""
    return unicodedata.is_normalized("NFC", text) and not any(
        char in _EXCEPTION_CHARS or unicodedata.category(char) == "Cn" for char in text
    )


class Pipeline:
    """The normalizer and pre-tokenizer together, for text that Python must see as words."""

    def __init__(self, config: NormalizationConfig):
        self.config = config
        self.normalizer = bert_normalizer(config)
        self.pre_tokenizer = bert_pre_tokenizer()

    def normalize(self, text: str) -> str:
        return self.normalizer.normalize_str(text)

    def words(self, text: str) -> list[str]:
        """The words WordPiece will see in `text`, in order."""
        return self.cut(self.normalize(text))

    def cut(self, normalized: str) -> list[str]:
        """The words of text that is already normalized (pre-tokenizer only)."""
        return [word for word, _ in self.pre_tokenizer.pre_tokenize_str(normalized)]

    def isolated(self, chars: Iterable[str]) -> set[str]:
        """Characters the pipeline always cuts out as a word of their own (CJK, punctuation).

        They never occur inside a word, so they need no `##` form. Asking the Rust pipeline
        itself, rather than re-implementing its tables, keeps us right where Python's and
        Rust's Unicode versions differ.
        """
        isolated = set()
        for char in chars:
            if self.words(f"a{char}a") == ["a", char, "a"]:
                isolated.add(char)
        return isolated
