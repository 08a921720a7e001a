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

No lowercasing and no accent stripping by default: case is information in most scripts, and
"stripping accents" (NFD, then dropping combining marks) deletes Vietnamese tones, Devanagari
vowel signs and Thai, Hebrew and Arabic marks. Both are options.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tokenizers import normalizers, pre_tokenizers

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4, in this order
UNK = "[UNK]"
CONTINUATION = "##"  # prefix of a piece that continues a word
MAX_WORD_CHARS = 100  # BERT's max_input_chars_per_word: a longer word is one [UNK]
MODEL_MAX_LENGTH = 64  # tokens per caption, [CLS] and [SEP] included (the ALIGN paper's length)


@dataclass(frozen=True)
class NormalizationConfig:
    lowercase: bool = False  # fold case, as BERT "uncased"; off keeps case information
    strip_accents: bool = False  # NFD then drop combining marks; off keeps tones and vowel signs


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
        return [word for word, _ in self.pre_tokenizer.pre_tokenize_str(self.normalize(text))]

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
