"""Caption text as every part reads it: Unicode NFC, the form the vocabulary was trained on;
whitespace collapsed, in Arrow, exactly as Python's `" ".join(text.split())`."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

WHITESPACE = r"[\s\x{0B}\x{1C}-\x{1F}\x{85}\p{Z}]+"  # what Python str.isspace() calls space
# A caption needs its whitespace collapsed only when it has a space other than U+0020, two in a
# row, or one at either end; most have none, and the check costs a tenth of the replacement.
_SPACES_OTHER_THAN_SPACE = "".join(
    f"\\x{{{code:X}}}" for code in range(0x3001) if chr(code).isspace() and code != 0x20
)
NEEDS_COLLAPSE = rf"[{_SPACES_OTHER_THAN_SPACE}]|  |^ | $"


def nfc(caption: str) -> str:
    """Unicode NFC. The fast BERT tokenizer does not compose characters (the slow one does),
    so a decomposed "e + combining acute" would otherwise tokenize unlike the "é" of the
    vocabulary: web alt-text arrives in both forms."""
    return unicodedata.normalize("NFC", caption)


def collapse_whitespace(captions: pa.Array) -> pa.Array:
    """Every run of (Unicode) whitespace as one space, trimmed: `" ".join(text.split())` of each
    string, null stays null. (N,) -> (N,)."""
    import pyarrow.compute as pc

    needs = pc.fill_null(pc.match_substring_regex(captions, NEEDS_COLLAPSE), False)
    if pc.any(needs).as_py():
        collapsed = pc.replace_substring_regex(pc.filter(captions, needs), WHITESPACE, " ")
        captions = pc.replace_with_mask(captions, needs, collapsed)
    return pc.utf8_trim_whitespace(captions)
