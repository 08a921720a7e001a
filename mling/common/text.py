"""Caption text as every part reads it: Unicode NFC, the form the vocabulary was trained on."""

from __future__ import annotations

import unicodedata


def nfc(caption: str) -> str:
    """Unicode NFC. The fast BERT tokenizer does not compose characters (the slow one does),
    so a decomposed "e + combining acute" would otherwise tokenize unlike the "é" of the
    vocabulary: web alt-text arrives in both forms."""
    return unicodedata.normalize("NFC", caption)
