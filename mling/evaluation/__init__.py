"""Zero-shot evaluation: Multi30k and other retrieval sets, zero-shot classification, per language."""
