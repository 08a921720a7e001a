"""The vocabulary directory: what `AutoTokenizer.from_pretrained(DIR)` and BERT code expect.

`vocab.txt` (one token per line, line number = id) beside `tokenizer.json` (the same tokens in
the BERT pipeline) and `tokenizer_config.json` (class `BertTokenizer`, the pipeline flags,
`model_max_length` 64). transformers 5 builds a `BertTokenizer` (alias `BertTokenizerFast`) from
these; the slow `BertTokenizerLegacy` reads `vocab.txt`. The directory appears whole: it is
written beside the target and renamed into place.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, processors

from mling.common.errors import InputError
from mling.vocab.normalization import (
    CONTINUATION,
    MAX_WORD_CHARS,
    MODEL_MAX_LENGTH,
    SPECIAL_TOKENS,
    UNK,
    NormalizationConfig,
    bert_normalizer,
    bert_pre_tokenizer,
)

VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
_SPECIAL_NAMES = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")


def bert_tokenizer(tokens: list[str], normalization: NormalizationConfig) -> Tokenizer:
    """A `tokenizers.Tokenizer` with BERT's pipeline over `tokens` (ids = positions)."""
    if list(tokens[: len(SPECIAL_TOKENS)]) != list(SPECIAL_TOKENS):
        raise ValueError(f"the vocabulary must start with {' '.join(SPECIAL_TOKENS)}")
    if len(set(tokens)) != len(tokens):
        raise ValueError("the vocabulary has duplicate tokens")
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = Tokenizer(
        models.WordPiece(
            vocab,
            unk_token=UNK,
            continuing_subword_prefix=CONTINUATION,
            max_input_chars_per_word=MAX_WORD_CHARS,
        )
    )
    tokenizer.normalizer = bert_normalizer(normalization)
    tokenizer.pre_tokenizer = bert_pre_tokenizer()
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece(prefix=CONTINUATION)
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS])
    return tokenizer


def save_vocabulary(
    tokens: list[str], out_dir: Path, normalization: NormalizationConfig
) -> Tokenizer:
    """Write vocab.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json.

    Returns the Rust tokenizer that tokenizer.json holds.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    bad = [token for token in tokens if token.split() != [token]]  # empty or with whitespace
    if bad:
        raise ValueError(f"tokens with whitespace cannot go into vocab.txt: {bad[:5]}")
    (out_dir / VOCAB_FILE).write_text("\n".join(tokens) + "\n", encoding="utf-8")
    tokenizer = bert_tokenizer(tokens, normalization)
    # written by Python, so a full disk is an OSError naming the file
    (out_dir / TOKENIZER_FILE).write_text(tokenizer.to_str(pretty=True), encoding="utf-8")
    special = dict(zip(_SPECIAL_NAMES, SPECIAL_TOKENS, strict=True))
    config = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": normalization.lowercase,
        "strip_accents": normalization.strip_accents,
        "tokenize_chinese_chars": True,
        "model_max_length": MODEL_MAX_LENGTH,
        "clean_up_tokenization_spaces": False,
        **special,
    }
    for name, payload in ((CONFIG_FILE, config), (SPECIAL_TOKENS_FILE, special)):
        text = json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        (out_dir / name).write_text(text, encoding="utf-8")
    return tokenizer


def load_tokenizer(directory: Path) -> Tokenizer:
    """The Rust tokenizer of a vocabulary directory: tokenizer.json, else vocab.txt + flags."""
    directory = Path(directory)
    if (directory / TOKENIZER_FILE).is_file():
        return Tokenizer.from_file(str(directory / TOKENIZER_FILE))
    if not (directory / VOCAB_FILE).is_file():
        raise InputError(f"no {TOKENIZER_FILE} or {VOCAB_FILE} in {directory}")
    config = {}
    if (directory / CONFIG_FILE).is_file():
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    lowercase = bool(config.get("do_lower_case", True))
    strip = config.get("strip_accents")
    normalization = NormalizationConfig(lowercase, lowercase if strip is None else bool(strip))
    tokens = (directory / VOCAB_FILE).read_text(encoding="utf-8").split("\n")[:-1]
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token=UNK))
    tokenizer.normalizer = bert_normalizer(normalization)
    tokenizer.pre_tokenizer = bert_pre_tokenizer()
    return tokenizer
